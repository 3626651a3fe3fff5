import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildComplianceReport } from "../../provider/report/build";
import { renderReport } from "../../provider/report/formats";
import type { ComplianceInput, CredentialFacts } from "../../provider/report/types";
import type { RotationRecord, StepRecord } from "../../provider/rotation/types";

/** The report's verdicts from plain data (no store, no server): keys, grace periods, cron periods, waivers, escaping. */
const NOW = Date.parse("2026-11-20T12:00:00Z");

function facts(variable: string, over: Partial<CredentialFacts> = {}): CredentialFacts {
  return {
    env: "prod",
    variable,
    secret: `store://vault/app/${variable.toLowerCase()}`,
    store: "vault",
    storeType: "vault",
    service: "iam",
    targetType: "aws.iam",
    kind: "key",
    owner: "team-keys",
    policy: { strategy: "two-secret", ttl: "30d", windows: [], healthChecks: 0 },
    versions: { current: "3", updatedAt: "2026-11-01T00:00:00Z" },
    ...over,
  };
}

function rec(variable: string, at: string, over: Partial<RotationRecord> = {}, steps: Partial<Record<StepRecord["name"], StepRecord["outcome"]>> = {}): RotationRecord {
  return {
    id: `rot-${variable}-${at}`,
    kind: "rotate",
    secret: `store://vault/app/${variable.toLowerCase()}`,
    env: "prod",
    variable,
    service: "iam",
    targetType: "aws.iam",
    strategy: "two-secret",
    who: "ci@runner",
    startedAt: at,
    finishedAt: at,
    status: "succeeded",
    steps: Object.entries(steps).map(([name, outcome]) => ({ name: name as StepRecord["name"], startedAt: at, finishedAt: at, ...(outcome ? { outcome } : {}) })),
    ...over,
  };
}

const input = (over: Partial<ComplianceInput>): ComplianceInput => ({ now: NOW, framework: "all", credentials: [], records: [], waivers: [], ...over });
const verdictOf = (r: ReturnType<typeof buildComplianceReport>, variable: string, control: string) => r.credentials.find((c) => c.variable === variable)?.controls.find((c) => c.control === control);

describe("compliance report: verdicts from plain data", () => {
  it("keys: 3.6 wants a custodian and a real store, 3.7 a cryptoperiod and the old key retired (a grace period that ended fails)", () => {
    const r = buildComplianceReport(
      input({
        credentials: [facts("KEY_OK"), facts("KEY_GRACE_OVER"), facts("KEY_RETIRE_FAILED"), facts("KEY_NO_OWNER", { owner: undefined as unknown as string }), facts("KEY_LITERAL", { store: "lit", storeType: "literal" })],
        records: [
          rec("KEY_OK", "2026-11-10T00:00:00.000Z", { oldPrincipal: "AKIAOLD" }, { retire: "ok" }),
          rec("KEY_GRACE_OVER", "2026-11-10T00:00:00.000Z", { status: "grace", retireAfter: "2026-11-11T00:00:00.000Z" }),
          rec("KEY_RETIRE_FAILED", "2026-11-10T00:00:00.000Z", {}, { retire: "failed" }),
        ],
      }),
    );
    assert.equal(verdictOf(r, "KEY_OK", "pci-dss-3.6")?.verdict, "pass");
    assert.equal(verdictOf(r, "KEY_OK", "pci-dss-3.7")?.verdict, "pass");
    assert.match(verdictOf(r, "KEY_OK", "pci-dss-3.7")?.reason ?? "", /the old credential \(AKIAOLD\) was revoked/);
    assert.equal(verdictOf(r, "KEY_OK", "pci-dss-8.3.9")?.verdict, "not-applicable");
    assert.equal(verdictOf(r, "KEY_OK", "pci-dss-8.6.3")?.verdict, "not-applicable");
    assert.equal(verdictOf(r, "KEY_GRACE_OVER", "pci-dss-3.7")?.verdict, "fail");
    assert.match(verdictOf(r, "KEY_GRACE_OVER", "soc2-cc6.3")?.reason ?? "", /grace period ended at 2026-11-11T00:00:00.000Z/);
    assert.equal(verdictOf(r, "KEY_RETIRE_FAILED", "soc2-cc6.3")?.verdict, "fail");
    assert.equal(verdictOf(r, "KEY_NO_OWNER", "pci-dss-3.6")?.verdict, "fail");
    assert.match(verdictOf(r, "KEY_NO_OWNER", "pci-dss-3.6")?.reason ?? "", /no key custodian: set metadata\.owner on envs\.prod\.KEY_NO_OWNER/);
    assert.equal(verdictOf(r, "KEY_LITERAL", "pci-dss-3.6")?.verdict, "fail");
    assert.equal(verdictOf(r, "KEY_LITERAL", "soc2-cc6.1")?.verdict, "fail");
  });

  it("a cron schedule gives the change period; without ttl or schedule there is none", () => {
    const pw = (v: string, policy: CredentialFacts["policy"]) => facts(v, { kind: "password", targetType: "postgresql", policy });
    const r = buildComplianceReport(
      input({
        credentials: [pw("MONTHLY", { strategy: "single-user", schedule: "0 0 1 * *", windows: [], healthChecks: 0 }), pw("HAND", { strategy: "single-user", windows: [], healthChecks: 0 })],
        records: [rec("MONTHLY", "2026-11-01T00:00:00.000Z", { strategy: "single-user" }), rec("HAND", "2026-11-01T00:00:00.000Z", { strategy: "single-user" })],
      }),
    );
    const monthly = r.credentials[0];
    assert.equal(monthly.policy.maxAge, "30d");
    assert.equal(monthly.dueAt, "2026-12-01T00:00:00.000Z");
    assert.equal(verdictOf(r, "MONTHLY", "pci-dss-8.3.9")?.verdict, "pass");
    assert.equal(r.credentials[1].policy.maxAge, undefined);
    assert.match(verdictOf(r, "HAND", "pci-dss-8.6.3")?.reason ?? "", /no change period/);
  });

  it("waivers: <env>/* and control * cover every failure of the env until they expire; expired ones are listed and excuse nothing", () => {
    const cred = facts("K", { owner: undefined as unknown as string });
    const base = { credential: "prod/*", control: "*" as const, reason: "r", approver: "ciso" };
    const active = buildComplianceReport(input({ credentials: [cred], waivers: [{ ...base, expires: "2026-11-20" }] }));
    assert.ok(active.credentials[0].controls.filter((c) => c.verdict === "fail").every((c) => c.waiver?.approver === "ciso"));
    assert.equal(active.credentials[0].compliant, true, "the waiver runs to the end of its day");
    assert.equal(active.waivers[0].status, "active");
    const expired = buildComplianceReport(input({ credentials: [cred], waivers: [{ ...base, expires: "2026-11-20T11:59:59Z" }] }));
    assert.equal(expired.credentials[0].compliant, false);
    assert.equal(expired.waivers[0].status, "expired");
    assert.ok(expired.waivers[0].covers.length > 0);
    assert.equal(expired.summary.controls.waived, 0);
  });

  it("--framework soc2 checks SOC 2 controls only; records of other kinds are not rotations", () => {
    const r = buildComplianceReport(input({ framework: "soc2", credentials: [facts("K")], records: [rec("K", "2026-11-10T00:00:00.000Z"), { ...rec("K", "2026-11-11T00:00:00.000Z"), kind: "approval" } as unknown as RotationRecord] }));
    assert.deepEqual(r.credentials[0].controls.map((c) => c.control), ["soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"]);
    assert.equal(r.rotations.length, 1);
  });

  it("CC7.2: a rollback injected by dsops chaos is no incident; a real one after it is", () => {
    const drill = rec("K", "2026-11-12T00:00:00.000Z", { status: "rolled-back", reason: "dsops chaos: verification-failure" });
    const ok = rec("K", "2026-11-10T00:00:00.000Z");
    const r = buildComplianceReport(input({ credentials: [facts("K")], records: [ok, drill] }));
    assert.equal(verdictOf(r, "K", "soc2-cc7.2")?.verdict, "pass");
    assert.match(verdictOf(r, "K", "soc2-cc7.2")?.reason ?? "", /1 chaos experiment rotation\(s\) not counted/);
    assert.equal(r.summary.rotations.chaos, 1);
    const real = rec("K", "2026-11-13T00:00:00.000Z", { status: "failed", error: "target refused" });
    assert.equal(verdictOf(buildComplianceReport(input({ credentials: [facts("K")], records: [ok, drill, real] })), "K", "soc2-cc7.2")?.verdict, "fail");
  });

  it("an empty configuration gives a report in every format (nothing divides by zero)", () => {
    const r = buildComplianceReport(input({}));
    assert.deepEqual([r.summary.credentials, r.summary.rotations.total], [0, 0]);
    for (const f of ["html", "json", "csv", "md"] as const) assert.ok(!/NaN|Infinity|undefined/.test(renderReport(r, f)), f);
  });

  it("the report's code cannot read a value: provider/report imports no store, resolver or secret type", () => {
    const dir = join(__dirname, "..", "..", "..", "provider", "report");
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    assert.ok(files.length >= 6, files.join(", "));
    for (const f of files) {
      const imports = [...readFileSync(join(dir, f), "utf8").matchAll(/(?:from |require\()"([^"]+)"/g)].map((m) => m[1]);
      const bad = imports.filter((i) => /stores|engine\/(resolve|index)|core\/secret|compose|dynamic/.test(i));
      assert.deepEqual(bad, [], `${f} imports ${bad.join(", ")}`);
    }
  });

  it("HTML escapes what the configuration says; CSV quotes and defuses formulas", () => {
    const r = buildComplianceReport(input({ credentials: [facts("K", { owner: '<img src=x onerror="alert(1)">' }), facts("F", { owner: "=HYPERLINK(\"http://x\")" })] }));
    const html = renderReport(r, "html");
    assert.ok(!html.includes("<img"), "no markup from the configuration");
    assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
    assert.ok(!/(src|href)=["']?https?:/i.test(html), "no external resource");
    const csv = renderReport(r, "csv");
    assert.ok(csv.includes(`"'=HYPERLINK(""http://x"")"`), csv.split("\r\n")[1]);
  });
});
