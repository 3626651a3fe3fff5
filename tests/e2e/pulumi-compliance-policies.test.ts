import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import type { ComplianceReport } from "../../provider/report/types";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { FileHistory } from "../../provider/rotation/history/file";
import type { BreakGlassRecord } from "../../provider/rotation/governance";
import type { RotationRecord } from "../../provider/rotation/types";
import { dsopsRun } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * The compliance report of a stack's own RotationPolicy resources, through the real Pulumi CLI
 * (file backend), a real PostgreSQL 15 and the embedded file store:
 * `getComplianceReportOutput({ policies: [db, cache] })` exported as a stack output lists both
 * policies (`pulumi/db`, `pulumi/cache`) with the cache's rotation (rotateOnCreate) and the db's
 * pending approval request; when time makes a verdict change, `pulumi preview` shows the output
 * change (no hidden drift); no value is in the state or the output. Time moves with DSOPS_CLOCK.
 */
describe("Pulumi end to end: getComplianceReport of the stack's RotationPolicy resources (real PostgreSQL 15)", function () {
  this.timeout(300_000);
  let pg: RunningPostgres | undefined;
  let project: PulumiProject | undefined;
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const T0 = "2026-11-02T12:00:00Z";
  const DUE = "2026-12-05T12:00:00Z";
  const initial = { db: `Pw-${randomBytes(12).toString("base64url")}`, cache: `Pw-${randomBytes(12).toString("base64url")}` };
  const values = new Set<string>(Object.values(initial));
  const store = () => new FileStore("local", { type: "file", path: join(project?.dir ?? "", "secrets.store") }, { configDir: project?.dir ?? "", clock: new ManualClock(Date.parse(T0)), env: { DSOPS_FILE_KEY: FILE_KEY } });
  const env = (at: string) => ({ DSOPS_CLOCK: at, DSOPS_USER: "pipeline" });
  const verdict = (r: ComplianceReport, variable: string, control: string) => r.credentials.find((c) => c.env === "pulumi" && c.variable === variable)?.controls.find((c) => c.control === control)?.verdict;

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    values.add(pg.adminPassword);
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    try {
      for (const k of ["db", "cache"] as const) await admin.query(`CREATE ROLE ${escapeIdentifier(`app_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(initial[k]))}`);
    } finally {
      await admin.end();
    }
    project = new PulumiProject(
      "dsops-compliance-policies",
      `"use strict";
const dsops = require("@dsops/pulumi");
const db = new dsops.RotationPolicy("db", {
  secret: "store://local/app/db", target: "app-db", strategy: "single-user", user: "app_db",
  schedule: { every: "30d" }, approval: { approvers: ["alice"], expires: "24h" },
});
// Rotated at creation; afterwards its only window (1 January) is shut, so it waits without a change.
const cache = new dsops.RotationPolicy("cache", {
  secret: "store://local/app/cache", target: "app-db", strategy: "single-user", user: "app_cache",
  schedule: { every: "30d" }, windows: [{ schedule: "0 2 1 1 *", duration: "1h" }], rotateOnCreate: true,
});
const report = dsops.getComplianceReportOutput({ policies: [db, cache], framework: "pci-dss" });
exports.json = report.json;
exports.dbVerdict = report.report.apply((r) => r.credentials.find((c) => c.variable === "db").controls.find((c) => c.control === "pci-dss-8.6.3").verdict);
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }\n` +
        // A waiver of the stack's dsops.yaml names a policy as pulumi/<name>.
        `compliance:\n  waivers:\n    - { credential: pulumi/db, control: pci-dss-8.6.3, reason: "CAB pending", approver: ciso@example.test, expires: "2027-01-31" }\n`,
    );
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await store().put("app/db", new Secret(initial.db));
    await store().put("app/cache", new Secret(initial.cache));
    project.ok(["stack", "init", "policies"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
  });

  after(async () => {
    try {
      project?.assertNoLeak([...values]);
    } finally {
      await pg?.stop();
      project?.cleanup();
    }
  });

  it("lists both policies with the rotation and the pending approval; a verdict change shows in preview; no value in state or output", async () => {
    const p = project as PulumiProject;
    p.ok(["up", "--yes", "--skip-preview"], env(T0));
    const rotated = (await store().get({ key: "app/cache", version: "current" })).value.reveal();
    values.add(rotated);
    assert.notEqual(rotated, initial.cache);
    let out = p.outputs(); // without --show-secrets: a secret would read "[secret]"
    assert.equal(out.dbVerdict, "pass");
    let report = JSON.parse(out.json as string) as ComplianceReport;
    assert.deepEqual(report.credentials.map((c) => `${c.env}/${c.variable} ${c.secret}`).sort(), ["pulumi/cache store://local/app/cache", "pulumi/db store://local/app/db"]);
    assert.equal(report.credentials.find((c) => c.variable === "cache")?.lastRotation?.status, "succeeded");
    assert.deepEqual(
      report.rotations.map((r) => `${r.env}/${r.variable}`),
      ["pulumi/cache"],
    );

    // A break-glass on the cache's secret, as the engine records it in the history next to the file store.
    const bg: BreakGlassRecord = {
      id: "bg-20261110-120000000-abc123", kind: "breakglass", secret: "store://local/app/cache", env: "pulumi", variable: "SECRET", service: "app-db", targetType: "postgresql",
      status: "open", openedBy: "dana", startedAt: "2026-11-10T12:00:00.000Z", reason: "INC-11 cache forensics", ttl: "1h", expiresAt: "2026-11-10T13:00:00.000Z", rotate: false,
      reads: [{ by: "dana", at: "2026-11-10T12:10:00.000Z", command: "dsops get" }],
    };
    await new FileHistory(join(p.dir, "dsops-rotation-history.jsonl"), new ManualClock(0)).save(bg as unknown as RotationRecord);
    // 33 days later: the db is overdue. Nothing changes in the stack's resources (db waits for approval, cache for its window), but the report's verdict does: preview shows it.
    const preview = p.ok(["preview", "--diff"], env(DUE));
    assert.match(preview.stdout, /dbVerdict\s*:\s*"pass"\s*=>\s*"fail"/, preview.stdout);
    p.ok(["up", "--yes", "--skip-preview"], env(DUE));
    out = p.outputs();
    assert.equal(out.dbVerdict, "fail");
    report = JSON.parse(out.json as string) as ComplianceReport;
    assert.equal(verdict(report, "db", "pci-dss-8.6.3"), "fail");
    const waived = report.credentials.find((c) => c.variable === "db")?.controls.find((c) => c.control === "pci-dss-8.6.3");
    assert.equal(waived?.waiver?.approver, "ciso@example.test", "the stack's waiver of pulumi/db applies");
    const asked = report.governance.filter((e) => e.kind === "approval-requested");
    assert.equal(asked.length, 1, JSON.stringify(report.governance));
    assert.equal(asked[0].env, "pulumi");
    assert.equal(asked[0].variable, "db");
    assert.equal(asked[0].secret, "store://local/app/db");
    assert.match(asked[0].id, /^apr-/);
    assert.equal(report.summary.approvals, 1);
    const glass = report.governance.filter((e) => e.id === bg.id);
    assert.deepEqual(
      glass.map((e) => [e.kind, `${e.env}/${e.variable}`, e.who]),
      [
        ["breakglass-opened", "pulumi/cache", "dana"],
        ["breakglass-read", "pulumi/cache", "dana"],
      ],
    );
    // No value in the exported state (the export is in the transcript assertNoLeak searches).
    assert.match(p.ok(["stack", "export"]).stdout, /dsops:index:RotationPolicy|RotationPolicy/);

    // The same JSON shape as the CLI's report.
    const cli = await dsopsRun(["report", "compliance", "--framework", "pci-dss", "--format", "json", "--out", "cli.json"], { cwd: p.dir, env: { ...env(DUE), DSOPS_FILE_KEY: FILE_KEY } });
    p.transcript.push(cli.stdout, cli.stderr);
    assert.equal(cli.status, 0, cli.stderr);
    const fromCli = JSON.parse(readFileSync(join(p.dir, "cli.json"), "utf8")) as ComplianceReport;
    assert.deepEqual(Object.keys(report).sort(), Object.keys(fromCli).sort());
    assert.equal(report.kind, fromCli.kind);
    assert.equal(report.version, fromCli.version);
    assert.deepEqual(Object.keys(report.summary).sort(), Object.keys(fromCli.summary).sort());
    assert.ok(!JSON.stringify(p.outputs()).includes("[secret]"), "the report output is a secret");
  });
});
