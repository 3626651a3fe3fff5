import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { ComplianceReport, CredentialReport } from "../../provider/report/types";
import { systemClock } from "../../provider/core/clock";
import { FileHistory, defaultHistoryPath } from "../../provider/rotation/history/index";
import type { RotationRecord } from "../../provider/rotation/types";
import { ChromiumPage, haveChromium } from "../support/chromium";
import { dsops, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * `dsops report compliance` through the built binary, fed by real rotations of PostgreSQL 15
 * roles (a server the test starts on a loopback port): rotations at different (DSOPS_CLOCK)
 * times, one that fails (a role that does not exist), one rolled back (a verification query
 * refused), one overdue, one past PCI's 90 days, waivers active and expired. The JSON, CSV and
 * Markdown reports are checked for content; the HTML report is opened in Debian's headless
 * Chromium (DevTools protocol): no console error, no request leaves the file, the tiles and
 * table show the history's numbers, the filters work after a real click; its screenshot is
 * saved to test-artefacts/compliance-report.png (ignored by git). Bad input exits non-zero and
 * writes nothing. Every report and output is searched for the values used.
 */

const NOW = "2026-11-20T12:00:00Z";
const ROOT = join(__dirname, "..", "..", "..");
const ARTEFACTS = join(ROOT, "test-artefacts");

describe("dsops report compliance (real PostgreSQL 15 rotations, headless Chromium)", function () {
  this.timeout(180_000);
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
  let dir: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const reports: string[] = [];
  /** The browser, closed in `after` too (a test that times out must not leave it running). */
  let browser: ChromiumPage | undefined;

  function cli(args: string[], opts: { at?: string; input?: string } = {}): CliResult {
    const r = dsops(args, { cwd: dir, ...(opts.input !== undefined ? { input: opts.input } : {}), env: { DSOPS_CLOCK: opts.at ?? NOW } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  /** Read the current value (kept for the searches, its output not). */
  function remember(env: string, v: string): void {
    const r = ok(cli(["get", "--env", env, "--var", v]));
    outputs.pop();
    values.add(r.stdout.replace(/\n$/, ""));
  }
  function read(file: string): string {
    const text = readFileSync(join(dir, file), "utf8");
    reports.push(text);
    return text;
  }
  function report(args: string[], file: string): string {
    ok(cli(["report", "compliance", ...args, "--out", file]));
    return read(file);
  }
  const cred = (r: ComplianceReport, env: string, v: string): CredentialReport => {
    const c = r.credentials.find((x) => x.env === env && x.variable === v);
    assert.ok(c, `${env}/${v} in the report`);
    return c;
  };
  const verdict = (c: CredentialReport, control: string) => c.controls.find((x) => x.control === control);

  const ttl = (user: string, extra: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user, ttl: "30d", ...extra });
  const config = (waivers: unknown[]) => ({
    version: 1,
    secretStores: { local: { type: "file", path: "./secrets.store" } },
    services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg?.port, database: "postgres", admin: "store://local/pg/admin" } },
    envs: {
      prod: {
        DB_APP: { from: "store://local/app/app", metadata: { owner: "team-payments" }, rotation: ttl("role_app") },
        DB_LOGIN: { from: "store://local/app/login", metadata: { owner: "team-payments" }, rotation: { service: "app-db", strategy: "alternating-users", users: ["role_la", "role_lb"], ttl: "60d" } },
        DB_OLD: { from: "store://local/app/old", metadata: { owner: "ops" }, rotation: ttl("role_old", { ttl: "180d" }) },
        DB_GHOST: { from: "store://local/app/ghost", rotation: ttl("role_ghost") },
        DB_VERIFY: { from: "store://local/app/verify", metadata: { owner: "ops" }, rotation: ttl("role_verify", { verification: { query: "SELECT * FROM guarded" } }) },
        DB_MANUAL: { from: "store://local/app/manual", metadata: { owner: "ops" }, rotation: { service: "app-db", strategy: "single-user", user: "role_manual" } },
      },
      staging: {
        DB_STAGE: { from: "store://local/app/stage", metadata: { owner: "team-web" }, rotation: ttl("role_stage", { windows: [{ schedule: "0 2 * * 6", duration: "4h" }] }) },
      },
    },
    compliance: { waivers },
  });
  const WAIVERS = [
    { credential: "prod/DB_MANUAL", control: "pci-dss-8.6.3", reason: "vendor appliance: rotated by hand each quarter", approver: "ciso@example.com", expires: "2027-01-31", ticket: "SEC-42" },
    { credential: "staging/DB_STAGE", control: "pci-dss-8.6.3", reason: "migration freeze", approver: "lead@example.com", expires: "2026-11-01" },
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-report-"));
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    values.add(pg.adminPassword);
    await admin.query("CREATE TABLE guarded (x int)"); // no grants: DB_VERIFY's verification query fails
    writeFileSync(join(dir, "dsops.yaml"), JSON.stringify(config(WAIVERS)));
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
    const initial = async (role: string, key: string, json = false) => {
      const pw = `Init-${role}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin?.query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(cli(["secrets", "set", "--store", "local", "--key", key], { input: json ? JSON.stringify({ username: role, password: pw }) : pw, at: "2026-05-01T00:00:00Z" }));
    };
    for (const [role, key] of [["role_app", "app/app"], ["role_old", "app/old"], ["role_verify", "app/verify"], ["role_manual", "app/manual"], ["role_stage", "app/stage"]]) await initial(role, key);
    await initial("role_la", "app/login", true);
    await admin.query("CREATE ROLE role_lb LOGIN");
    const ghost = `Init-ghost-${Math.random().toString(36).slice(2)}`;
    values.add(ghost);
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/ghost"], { input: ghost, at: "2026-05-01T00:00:00Z" }));

    const rotate = (env: string, v: string, at: string) => cli(["secrets", "rotate", "--env", env, "--var", v], { at });
    ok(rotate("prod", "DB_OLD", "2026-06-01T08:00:00Z"));
    ok(rotate("staging", "DB_STAGE", "2026-09-01T08:00:00Z"));
    ok(rotate("prod", "DB_APP", "2026-10-01T08:00:00Z"));
    remember("prod", "DB_APP");
    ok(rotate("prod", "DB_LOGIN", "2026-11-01T08:00:00Z"));
    ok(rotate("prod", "DB_APP", "2026-11-10T08:00:00Z"));
    ok(rotate("prod", "DB_MANUAL", "2026-11-12T08:00:00Z"));
    assert.notEqual(rotate("prod", "DB_GHOST", "2026-11-15T08:00:00Z").status, 0, "a role that does not exist: the rotation fails");
    assert.notEqual(rotate("prod", "DB_VERIFY", "2026-11-16T08:00:00Z").status, 0, "a refused verification: rolled back");
    for (const [env, v] of [["prod", "DB_APP"], ["prod", "DB_LOGIN"], ["prod", "DB_OLD"], ["prod", "DB_MANUAL"], ["prod", "DB_VERIFY"], ["staging", "DB_STAGE"]]) remember(env, v);
  });

  after(async () => {
    await browser?.close();
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("JSON: every rotated credential with owner, age, last rotation, result, policy and a verdict per control, from the history", () => {
    const r = JSON.parse(report(["--format", "json"], "report.json")) as ComplianceReport;
    const history = JSON.parse(ok(cli(["rotation", "history", "--json"])).stdout) as RotationRecord[];
    assert.equal(r.kind, "dsops.compliance-report");
    assert.equal(r.generatedAt, "2026-11-20T12:00:00.000Z");
    assert.equal(r.framework, "all");
    assert.equal(r.credentials.length, 7);
    assert.equal(r.rotations.length, history.length);
    assert.equal(r.summary.rotations.total, history.length);
    assert.equal(r.summary.rotations.failed, history.filter((h) => h.status === "failed").length);
    assert.equal(r.summary.rotations.rolledBack, history.filter((h) => h.status === "rolled-back").length);
    assert.equal(r.summary.rotations.rolledBack, 1);
    assert.equal(r.summary.rotations.running, history.filter((h) => h.status === "running").length);
    assert.deepEqual(r.controls.map((c) => c.id), ["pci-dss-8.3.9", "pci-dss-8.6.3", "pci-dss-3.6", "pci-dss-3.7", "soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"]);

    const app = cred(r, "prod", "DB_APP");
    assert.equal(app.owner, "team-payments");
    assert.equal(app.kind, "password");
    assert.equal(app.policy.strategy, "single-user");
    assert.equal(app.policy.maxAge, "30d");
    assert.equal(app.issuedFrom, "rotation");
    assert.equal(app.age, "10d");
    assert.equal(app.ageMs, Date.parse(NOW) - Date.parse(app.issuedAt ?? ""));
    assert.equal(app.result, "succeeded");
    assert.equal(app.rotations.succeeded, 2);
    assert.equal(app.lastRotation?.id, history.find((h) => h.variable === "DB_APP")?.id);
    assert.ok(app.versions.current, "the store's current version id");
    assert.equal(app.compliant, true);
    for (const id of ["pci-dss-8.3.9", "pci-dss-8.6.3", "soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"]) assert.equal(verdict(app, id)?.verdict, "pass", `${id}: ${verdict(app, id)?.reason}`);
    for (const id of ["pci-dss-3.6", "pci-dss-3.7"]) assert.equal(verdict(app, id)?.verdict, "not-applicable");
    assert.match(verdict(app, "pci-dss-3.6")?.reason ?? "", /not a cryptographic key \(password\)/);

    const login = cred(r, "prod", "DB_LOGIN");
    assert.equal(login.policy.strategy, "alternating-users");
    assert.equal(verdict(login, "soc2-cc6.3")?.verdict, "pass");
    assert.match(verdict(login, "soc2-cc6.3")?.reason ?? "", /the previous user role_la keeps its password until the next rotation changes it/);

    const old = cred(r, "prod", "DB_OLD");
    assert.equal(verdict(old, "pci-dss-8.6.3")?.verdict, "pass", "within its own 180d period");
    assert.equal(verdict(old, "pci-dss-8.3.9")?.verdict, "fail");
    assert.match(verdict(old, "pci-dss-8.3.9")?.reason ?? "", /change period 180d .*longer than 90 days/);

    const ghost = cred(r, "prod", "DB_GHOST");
    // The engine leaves the record of a rotation whose apply failed unfinished (the next run resumes or rolls it back).
    assert.equal(ghost.result, history.find((h) => h.variable === "DB_GHOST")?.status);
    assert.equal(verdict(ghost, "soc2-cc7.2")?.verdict, "fail");
    assert.match(verdict(ghost, "soc2-cc7.2")?.reason ?? "", /rotation rot-\S+ .*(failed|unfinished).*role "role_ghost" does not exist/);
    assert.equal(ghost.overdue, true, "never rotated: its age is the store's date of its version (1 May)");
    assert.equal(verdict(ghost, "soc2-cc6.2")?.verdict, "fail");
    assert.match(verdict(ghost, "soc2-cc6.2")?.reason ?? "", /no owner: set metadata\.owner on envs\.prod\.DB_GHOST/);
    assert.equal(verdict(ghost, "soc2-cc6.3")?.verdict, "not-applicable");

    const verify = cred(r, "prod", "DB_VERIFY");
    assert.equal(verify.result, "rolled-back");
    assert.equal(verify.rotations.rolledBack, 1);
    assert.equal(verdict(verify, "soc2-cc7.2")?.verdict, "fail");
    assert.equal(verify.issuedFrom, "store", "never rotated for good: its age comes from the store's version metadata");

    const manual = cred(r, "prod", "DB_MANUAL");
    const m863 = verdict(manual, "pci-dss-8.6.3");
    assert.equal(m863?.verdict, "fail");
    assert.match(m863?.reason ?? "", /no change period/);
    assert.deepEqual(m863?.waiver, { approver: "ciso@example.com", expires: "2027-01-31", reason: "vendor appliance: rotated by hand each quarter", ticket: "SEC-42" });
    assert.equal(manual.compliant, false, "8.3.9 fails too, with no waiver");

    const stage = cred(r, "staging", "DB_STAGE");
    assert.equal(stage.overdue, true);
    assert.equal(stage.dueAt, "2026-10-01T08:00:00.000Z");
    assert.equal(stage.policy.windows.length, 1);
    const s863 = verdict(stage, "pci-dss-8.6.3");
    assert.equal(s863?.verdict, "fail");
    assert.equal(s863?.waiver, undefined, "an expired waiver excuses nothing");
    assert.equal(s863?.expiredWaiver?.approver, "lead@example.com");

    assert.deepEqual(r.waivers.map((w) => [w.credential, w.status, w.covers]), [
      ["prod/DB_MANUAL", "active", ["prod/DB_MANUAL pci-dss-8.6.3"]],
      ["staging/DB_STAGE", "expired", ["staging/DB_STAGE pci-dss-8.6.3"]],
    ]);
    assert.equal(r.summary.waivers.active, 1);
    assert.equal(r.summary.waivers.expired, 1);
    assert.equal(r.summary.controls.waived, 1);
    assert.equal(r.summary.credentials, 7);
    assert.equal(r.summary.compliant + r.summary.failing, 7);
    assert.equal(r.summary.compliant, r.credentials.filter((c) => c.controls.every((x) => x.verdict !== "fail" || x.waiver)).length);
    assert.equal(r.summary.overdue, 3, "DB_STAGE, and DB_GHOST and DB_VERIFY (never rotated for good)");
  });

  it("--framework and --env narrow the controls and credentials; the format follows --out's extension; --strict exits 1 on an unwaived failure", () => {
    const pci = JSON.parse(report(["--framework", "pci-dss", "--env", "staging"], "pci.json")) as ComplianceReport;
    assert.deepEqual(pci.controls.map((c) => c.id), ["pci-dss-8.3.9", "pci-dss-8.6.3", "pci-dss-3.6", "pci-dss-3.7"]);
    assert.deepEqual(pci.credentials.map((c) => `${c.env}/${c.variable}`), ["staging/DB_STAGE"]);
    assert.equal(pci.env, "staging");
    assert.ok(pci.rotations.every((x) => x.env === "staging"));
    const strict = cli(["report", "compliance", "--strict", "--out", "strict.md"]);
    assert.equal(strict.status, 1, "--strict: a control fails without a waiver");
    assert.match(strict.stderr, /--strict: \d+ control failure\(s\) without an active waiver/);
    assert.match(read("strict.md"), /^# Compliance report/, "the report is written all the same");
    const soc = JSON.parse(report(["--framework", "soc2", "--format", "json"], "soc2.out")) as ComplianceReport;
    assert.deepEqual(soc.controls.map((c) => c.id), ["soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"]);
  });

  it("CSV: one row per credential and control with the verdict, reason and waiver", () => {
    const text = report(["--format", "csv"], "report.csv");
    const lines = text.trimEnd().split("\r\n");
    assert.match(lines[0], /^env,variable,owner,kind,store,service,target_type,strategy,max_age,age,issued_at,due_at,overdue,last_rotation,last_rotation_at,result,control,verdict,reason,waiver_approver,waiver_expires,waiver_reason,expired_waiver$/);
    assert.equal(lines.length, 1 + 7 * 8);
    const row = lines.find((l) => l.startsWith("prod,DB_MANUAL,") && l.includes(",pci-dss-8.6.3,")) ?? "";
    assert.match(row, /,fail \(waived\),.*,ciso@example\.com,2027-01-31,vendor appliance: rotated by hand each quarter,/);
    const stage = lines.find((l) => l.startsWith("staging,DB_STAGE,") && l.includes(",pci-dss-8.6.3,")) ?? "";
    assert.match(stage, /,fail,.*lead@example\.com \(expired 2026-11-01\)$/);
  });

  it("Markdown: summary, credentials, verdicts, waivers (the expired one too) and rotations", () => {
    const text = report(["--format", "md"], "report.md");
    const s = (JSON.parse(read("report.json")) as ComplianceReport).summary;
    assert.match(text, /^# Compliance report \(PCI-DSS v4\.0 and SOC 2\)/);
    assert.ok(text.includes(`| 7 | ${s.compliant} | ${s.failing} | 3 | ${s.controls.pass} | ${s.controls.fail} | 1 | ${s.controls.notApplicable} | ${s.rotations.total} | ${s.rotations.failed} | 1 | 1 | 1 | 0 |`), "the summary row");
    assert.match(text, /\| prod \| DB_GHOST \| - \| password \| local \| single-user \| 30d \|/);
    assert.match(text, /\| staging\/DB_STAGE \| pci-dss-8\.6\.3 \| expired \| lead@example\.com \| 2026-11-01 \| migration freeze \|/);
    assert.match(text, /\| prod\/DB_MANUAL \| pci-dss-8\.6\.3 \| active \| ciso@example\.com \|/);
    assert.match(text, /\| prod \| DB_VERIFY \| rotate \| rolled-back \|/);
  });

  it("HTML in headless Chromium: no console error, no request, tiles and table from the history, filters work; screenshot saved", async () => {
    // npm test installs it (scripts/peers/install-db.sh): never skipped.
    assert.ok(haveChromium(), "Debian's chromium is missing: run scripts/peers/install-db.sh (apt-get install chromium)");
    report(["--format", "html"], "report.html");
    const json = JSON.parse(read("report.json")) as ComplianceReport;
    const page = await ChromiumPage.launch();
    browser = page;
    try {
      const url = pathToFileURL(join(dir, "report.html")).href;
      await page.open(url);
      const tiles = await page.evaluate<Record<string, string>>(`Object.fromEntries([...document.querySelectorAll("[data-tile]")].map((t) => [t.dataset.tile, t.querySelector(".v").textContent]))`);
      assert.equal(tiles.credentials, "7");
      assert.equal(tiles.rotations, String(json.summary.rotations.total));
      assert.equal(tiles.failed, String(json.summary.rotations.failed));
      assert.equal(tiles["rolled-back"], "1");
      assert.equal(tiles.unfinished, String(json.summary.rotations.running));
      assert.equal(tiles.failing, String(json.summary.failing));
      assert.equal(tiles.overdue, "3");
      assert.equal(tiles["expired-waivers"], "1");
      assert.equal(await page.evaluate<number>(`document.querySelectorAll("#age-chart .age-row").length`), 7);
      const bars = await page.evaluate<number>(`[...document.querySelectorAll("#timeline rect.bar")].reduce((n, b) => n + Number(b.dataset.count), 0)`);
      assert.equal(bars, json.summary.rotations.total, "the timeline counts every rotation");
      const visible = () => page.evaluate<string[]>(`[...document.querySelectorAll("tr.cred")].filter((r) => !r.hidden).map((r) => r.cells[0].textContent + "/" + r.cells[1].querySelector("b").textContent)`);
      assert.equal((await visible()).length, 7);
      assert.equal(await page.evaluate<string>(`document.getElementById("shown").textContent`), "7 of 7 credentials");

      await page.click('[data-filter-status="failing"]');
      const failing = json.credentials.filter((c) => !c.compliant).map((c) => `${c.env}/${c.variable}`);
      assert.deepEqual(await visible(), failing);
      assert.equal(await page.evaluate<string>(`document.getElementById("shown").textContent`), `${failing.length} of 7 credentials`);

      await page.evaluate(`(() => { const s = document.getElementById("f-env"); s.value = "staging"; s.dispatchEvent(new Event("change")); })()`);
      assert.deepEqual(await visible(), ["staging/DB_STAGE"]);
      assert.equal(await page.evaluate<number>(`[...document.querySelectorAll("tr.findings-row")].filter((r) => !r.hidden).length`), 1, "a hidden credential's findings are hidden with it");
      await page.click('[data-filter-status=""]');
      await page.evaluate(`(() => { const s = document.getElementById("f-env"); s.value = ""; s.dispatchEvent(new Event("change")); const c = document.getElementById("f-control"); c.value = "soc2-cc7.2"; c.dispatchEvent(new Event("change")); })()`);
      assert.deepEqual((await visible()).sort(), ["prod/DB_GHOST", "prod/DB_VERIFY"]);
      await page.evaluate(`(() => { const c = document.getElementById("f-control"); c.value = ""; c.dispatchEvent(new Event("change")); })()`);
      assert.equal(await page.evaluate<number>(`document.querySelectorAll("#waivers tr.waiver.expired").length`), 1);

      mkdirSync(ARTEFACTS, { recursive: true });
      await page.screenshot(join(ARTEFACTS, "compliance-report.png"));
      assert.ok(readFileSync(join(ARTEFACTS, "compliance-report.png")).subarray(1, 4).toString() === "PNG");
      assert.deepEqual(page.errors, [], "no console error");
      assert.deepEqual(page.requests.filter((u) => u !== url), [], "no request leaves the file");
    } finally {
      await page.close();
    }
  });

  it("getComplianceReport (the Pulumi function) gives the same JSON as the CLI", async () => {
    const cliJson = report(["--format", "json"], "same.json");
    const saved = { cwd: process.cwd(), clock: process.env.DSOPS_CLOCK };
    process.env.DSOPS_CLOCK = NOW;
    try {
      process.chdir(dir);
      const sdk = require("../../sdk/index") as typeof import("../../sdk/index");
      const r = await sdk.getComplianceReport({ configFile: join(dir, "dsops.yaml") });
      assert.equal(r.json, cliJson);
      assert.equal(r.report.summary.credentials, 7);
      // Without configFile or config: the provider's dsops:configFile (the stack's configuration), as the plugin and the dynamic providers read it.
      const ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
      const fn = require("../../provider/dynamic/compliance") as typeof import("../../provider/dynamic/compliance");
      ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
      try {
        assert.equal((await fn.readComplianceReport({})).json, cliJson);
      } finally {
        ctx.configure(() => undefined);
      }
      await assert.rejects(sdk.getComplianceReport({ configFile: "dsops.yaml", framework: "iso" as "all" }), /getComplianceReport: framework: /);
    } finally {
      process.chdir(saved.cwd);
      if (saved.clock === undefined) delete process.env.DSOPS_CLOCK;
      else process.env.DSOPS_CLOCK = saved.clock;
    }
  });

  it("bad input exits non-zero naming the flag or field, and writes nothing (the earlier report stays whole)", () => {
    const before = read("report.json");
    const tmpFiles = () => readdirSync(dir).filter((f) => f.endsWith(".tmp"));
    const bad = (args: string[], code: number, re: RegExp) => {
      const r = cli(["report", "compliance", ...args]);
      assert.equal(r.status, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(read("report.json"), before);
      assert.deepEqual(tmpFiles(), []);
    };
    bad(["--framework", "iso27001", "--out", "report.json"], 2, /--framework.*iso27001.*pci-dss, soc2, all/s);
    bad(["--format", "pdf", "--out", "report.json"], 2, /--format.*pdf/s);
    bad([], 2, /--out/);
    bad(["--out", "missing/report.html"], 1, /--out missing\/report\.html: the folder .*missing does not exist/);
    assert.equal(existsSync(join(dir, "missing")), false, "the folder is not created");
    bad(["--out", "/proc/dsops-report.html"], 1, /--out \/proc\/dsops-report\.html: cannot write the report/);
    bad(["--env", "nope", "--out", "report.json"], 1, /env: unknown env "nope" \(envs: prod, staging\)/);
    const withWaivers = (file: string, waivers: unknown[]) => writeFileSync(join(dir, file), JSON.stringify(config(waivers)));
    withWaivers("bad-expiry.yaml", [{ ...WAIVERS[0], expires: "soon" }]);
    bad(["-c", "bad-expiry.yaml", "--out", "report.json"], 1, /compliance\.waivers\.0\.expires|compliance\.waivers\[0\]\.expires/);
    withWaivers("bad-control.yaml", [{ ...WAIVERS[0], control: "pci-dss-99" }]);
    bad(["-c", "bad-control.yaml", "--out", "report.json"], 1, /compliance\.waivers(\.0|\[0\])\.control/);
    const { approver: _a, ...noApprover } = WAIVERS[0];
    withWaivers("no-approver.yaml", [noApprover]);
    bad(["-c", "no-approver.yaml", "--out", "report.json"], 1, /compliance\.waivers(\.0|\[0\])\.approver/);
    withWaivers("unknown-credential.yaml", [WAIVERS[0], { ...WAIVERS[0], credential: "prod/NOPE" }]);
    bad(["-c", "unknown-credential.yaml", "--out", "report.json"], 1, /compliance\.waivers\[1\]\.credential: "prod\/NOPE" is not a rotated variable/);
  });

  it("a store whose metadata cannot be read (wrong key) fails CC6.1 naming the store, and the report is still written", () => {
    const r = dsops(["report", "compliance", "--format", "json", "--out", "wrong-key.json"], { cwd: dir, env: { DSOPS_CLOCK: NOW, DSOPS_FILE_KEY: "not-the-key-of-this-store" } });
    outputs.push(r);
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(read("wrong-key.json")) as ComplianceReport;
    const app = cred(rep, "prod", "DB_APP");
    assert.ok(app.problem, "the problem is kept");
    assert.equal(verdict(app, "soc2-cc6.1")?.verdict, "fail");
    assert.match(verdict(app, "soc2-cc6.1")?.reason ?? "", /the store's version metadata could not be read: .*store "local"/);
    assert.equal(app.lastRotation?.status, "succeeded", "the history is still read");
  });

  it("approvals and break-glass records in the history are listed; a break-glass window with no rotation after it fails CC6.3", async () => {
    // Records in the shape provider/rotation/governance.ts keeps in the rotation history (COORD-r5.md), written through the history module.
    const history = new FileHistory(defaultHistoryPath(dir), systemClock);
    const common = (v: string) => ({ secret: `store://local/app/${v === "DB_OLD" ? "old" : "app"}`, env: "prod", variable: v, service: "app-db", targetType: "postgresql" });
    const save = (rec: Record<string, unknown>) => history.save(rec as unknown as RotationRecord);
    await save({
      id: "apr-1", kind: "approval", ...common("DB_APP"), status: "used", requestedBy: "scheduler@ci", startedAt: "2026-11-09T08:00:00.000Z", expiresAt: "2026-11-10T08:00:00.000Z",
      required: 1, approvers: ["alice"], decisions: [{ by: "alice", identity: "os", decision: "granted", reason: "planned rotation", at: "2026-11-09T09:00:00.000Z" }],
      finishedAt: "2026-11-09T09:00:00.000Z", reason: "due",
    });
    await save({
      id: "bg-1", kind: "breakglass", ...common("DB_OLD"), status: "closed", openedBy: "bob@laptop", startedAt: "2026-11-17T08:00:00.000Z", reason: "incident INC-7: read the db password",
      ttl: "1h", expiresAt: "2026-11-17T09:00:00.000Z", rotate: false, finishedAt: "2026-11-17T09:00:00.000Z", closedHow: "expired",
    });
    const r = JSON.parse(report(["--format", "json"], "governance.json")) as ComplianceReport;
    assert.deepEqual(r.governance.map((g) => [g.id, g.kind, g.at, g.who]), [
      ["apr-1", "approval-requested", "2026-11-09T08:00:00.000Z", "scheduler@ci"],
      ["apr-1", "approval-granted", "2026-11-09T09:00:00.000Z", "alice"],
      ["bg-1", "breakglass-opened", "2026-11-17T08:00:00.000Z", "bob@laptop"],
      ["bg-1", "breakglass-closed", "2026-11-17T09:00:00.000Z", undefined],
    ]);
    assert.equal(r.summary.breakGlass, 1);
    assert.equal(r.summary.approvals, 2);
    assert.equal(r.rotations.length, (JSON.parse(read("report.json")) as ComplianceReport).rotations.length, "governance records are not rotations");
    const old = verdict(cred(r, "prod", "DB_OLD"), "soc2-cc6.3");
    assert.equal(old?.verdict, "fail");
    assert.match(old?.reason ?? "", /break-glass bg-1 \(opened 2026-11-17T08:00:00.000Z by bob@laptop\) ended at 2026-11-17T09:00:00.000Z and no successful rotation has replaced the credential/);
    assert.equal(verdict(cred(r, "prod", "DB_APP"), "soc2-cc6.3")?.verdict, "pass");
    const md = report(["--format", "md"], "governance.md");
    assert.match(md, /\| 2026-11-17T08:00:00.000Z \| breakglass-opened \| prod\/DB_OLD \| bob@laptop \| incident INC-7: read the db password \| 2026-11-17T09:00:00.000Z \|/);
    const html = report(["--format", "html"], "governance.html");
    assert.match(html, /data-tile="break-glass"><div class="v">1</);
    assert.equal((html.match(/<tr class="gov"/g) ?? []).length, 4);
    // A rotation after the window replaces the credential: CC6.3 passes again.
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "DB_OLD"], { at: "2026-11-18T08:00:00Z" }));
    remember("prod", "DB_OLD");
    const after = JSON.parse(report(["--format", "json"], "governance-after.json")) as ComplianceReport;
    assert.equal(verdict(cred(after, "prod", "DB_OLD"), "soc2-cc6.3")?.verdict, "pass");
  });

  it("no report holds a secret value", () => {
    assert.ok(reports.length >= 6);
    assert.ok(values.size >= 10);
    for (const text of reports) for (const v of values) assert.ok(!text.includes(v), "a report holds a secret value");
  });
});
