import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * A RotationPolicy declared in Pulumi rotates on schedule with nobody running `up` (issue 13):
 * the real Pulumi CLI (file backend) registers the policy in the scheduler's PostgreSQL
 * (`dsops:scheduler`, a real PostgreSQL 15 that also holds the rotated role), DSOPS_CLOCK moves
 * past the due date, a real `dsops worker --scheduler --once` process (no dsops.yaml) rotates the
 * role's password; Pulumi's preview then shows no change and refresh reads the new rotation;
 * destroy unregisters it. Bad settings and a database that is down fail `up` with a clear error.
 */
describe("Pulumi end to end: RotationPolicy registered with the scheduler, rotated by dsops worker", function () {
  this.timeout(600000);
  let pg: RunningPostgres;
  let admin: Client;
  let project: PulumiProject;
  let workDir: string;
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const values = new Set<string>();
  const printed: CliResult[] = [];
  const T0 = "2026-11-02T12:00:00Z";
  const T1 = "2026-12-05T12:00:00Z";
  const at = (iso: string, extra: NodeJS.ProcessEnv = {}) => ({ DSOPS_CLOCK: iso, ...extra });
  const pw = (tag: string) => `Pw-${tag}-${randomBytes(12).toString("base64url")}`;
  let schedUrl: string;
  const POLICY_ID = "dsops-sched/sched/db-login";
  let writeConfig: (appDbExtra?: string) => void;

  const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse(T0)), env: { DSOPS_FILE_KEY: FILE_KEY } });

  async function current(key: string): Promise<{ value: string; version: string }> {
    const got = await store().get({ key, version: "current" });
    const value = got.value.reveal();
    values.add(value);
    return { value, version: got.versionId };
  }

  async function rows(): Promise<Array<{ id: string; secret: string; definition: unknown; text: string }>> {
    const t = await admin.query<{ t: string | null }>("SELECT to_regclass('dsops_worker.policies')::text AS t");
    if (!t.rows[0].t) return [];
    const r = await admin.query<{ id: string; secret: string; definition: unknown; text: string }>("SELECT id, secret, definition, row_to_json(p)::text AS text FROM dsops_worker.policies p ORDER BY id");
    return r.rows;
  }

  function policyState(): Record<string, unknown> {
    const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; outputs: Record<string, unknown> }> } };
    const r = state.deployment.resources.find((x) => x.type.endsWith("dsops:RotationPolicy") && x.urn.endsWith("::db-login"));
    assert.ok(r, "no RotationPolicy db-login in state");
    return r.outputs;
  }

  async function worker(args: string[], when: string): Promise<CliResult> {
    const r = await dsopsRun(["worker", ...args], { cwd: workDir, env: at(when, { DSOPS_WORKER_DATABASE_URL: schedUrl, DSOPS_FILE_KEY: FILE_KEY }) });
    printed.push(r);
    return r;
  }

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    values.add(pg.adminPassword);
    schedUrl = pg.connectionString(pg.adminUser, pg.adminPassword);
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    workDir = mkdtempSync(join(tmpdir(), "dsops-sched-worker-"));

    project = new PulumiProject(
      "dsops-sched",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const policy = new dsops.RotationPolicy("db-login", {
  secret: "store://local/app/sched", target: "app-db", user: "sched_app", strategy: "single-user",
  schedule: { every: "30d" },
  windows: [{ schedule: "0 0 * * *", duration: "24h", blackouts: [{ start: "2026-12-24", end: "2026-12-27", reason: "holiday freeze" }] }],
});
if (cfg.get("withLiteral")) {
  new dsops.RotationPolicy("literal", { secret: "store://local/app/lit", target: "lit-db", user: "sched_lit", strategy: "single-user", schedule: { every: "30d" } });
}
exports.status = policy.status;
exports.lastRotatedAt = policy.lastRotatedAt;
exports.currentVersionId = policy.currentVersionId;
exports.nextDueAt = policy.nextDueAt;
exports.lastResult = policy.lastResult;
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    const litPassword = pw("literal-admin");
    values.add(litPassword);
    writeConfig = (appDbExtra = "") =>
      project.write(
        "dsops.yaml",
        [
          "secretStores:",
          "  local: { type: file, path: ./secrets.store }",
          `  lit: { type: literal, values: { "pg/admin": ${JSON.stringify(JSON.stringify({ username: pg.adminUser, password: litPassword }))} } }`,
          "services:",
          `  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin"${appDbExtra} }`,
          `  lit-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://lit/pg/admin" }`,
          "",
        ].join("\n"),
      );
    writeConfig();
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const p0 = pw("p0");
    values.add(p0);
    await admin.query(`CREATE ROLE sched_app LOGIN PASSWORD ${escapeLiteral(scramVerifier(p0))}`);
    await s.put("app/sched", new Secret(p0));
    const l0 = pw("l0");
    values.add(l0);
    await admin.query(`CREATE ROLE sched_lit LOGIN PASSWORD ${escapeLiteral(scramVerifier(l0))}`);
    await s.put("app/lit", new Secret(l0));
    project.ok(["stack", "init", "sched"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
  });

  after(async () => {
    for (const r of printed) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "a worker output holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    project?.cleanup();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("a postgresql:// URL with a password in dsops:scheduler is refused, naming the setting; nothing is registered", async () => {
    // Pulumi itself writes the stack's configuration into its checkpoint (the reason such a URL is
    // refused): this value is searched in what was printed, not in the state.
    const literal = pw("url");
    // Not recorded: the command line holds the URL (the error output is recorded and searched).
    project.run(["config", "set", "dsops:scheduler", JSON.stringify({ database: `postgresql://${pg.adminUser}:${literal}@127.0.0.1:${pg.port}/postgres` })], {}, false);
    const r = project.run(["up", "--yes", "--skip-preview"], at(T0));
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /dsops:scheduler\.database: a postgresql:\/\/ URL with a password is refused/);
    assert.deepEqual(await rows(), []);
    assert.ok(!project.transcript.join("\n").includes(literal), "the refused URL's password was printed");
    project.assertNoLeak([...values]);
  });

  it("the scheduler database down at up: a clear error, a non-zero exit, no row", async () => {
    project.ok(["config", "set", "dsops:scheduler", JSON.stringify({ database: "env:DSOPS_E2E_SCHEDULER_URL" })]);
    const down = `postgresql://${pg.adminUser}:${pg.adminPassword}@127.0.0.1:1/postgres`;
    const r = project.run(["up", "--yes", "--skip-preview"], at(T0, { DSOPS_E2E_SCHEDULER_URL: down }));
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /RotationPolicy store:\/\/local\/app\/sched: dsops:scheduler: scheduler database: cannot register policy dsops-sched\/sched\/db-login: .*ECONNREFUSED/);
    assert.deepEqual(await rows(), []);
    const none = project.run(["up", "--yes", "--skip-preview"], at(T0));
    assert.notEqual(none.status, 0);
    assert.match(none.stdout + none.stderr, /stack config dsops:scheduler: environment variable DSOPS_E2E_SCHEDULER_URL is not set/);
    project.assertNoLeak([...values]);
  });

  it("up registers the policy's definition (references, schedule, windows; no value in the row or the state)", async () => {
    project.ok(["up", "--yes", "--skip-preview"], at(T0, { DSOPS_E2E_SCHEDULER_URL: schedUrl }));
    const [row, ...more] = await rows();
    assert.equal(more.length, 0);
    assert.equal(row.id, POLICY_ID);
    assert.equal(row.secret, "store://local/app/sched");
    const def = row.definition as { dir: string; schedule: unknown; windows: unknown[]; config: { secretStores: Record<string, unknown>; services: Record<string, { admin: string }>; envs: { pulumi: { SECRET: { rotation: Record<string, unknown> } } } } };
    assert.deepEqual(def.schedule, { every: "30d" });
    assert.equal(def.windows.length, 1);
    assert.deepEqual(Object.keys(def.config.secretStores), ["local"], "only the stores the policy uses");
    assert.deepEqual(Object.keys(def.config.services), ["app-db"]);
    assert.equal(def.config.services["app-db"].admin, "store://local/pg/admin");
    assert.equal(def.config.envs.pulumi.SECRET.rotation.ttl, "30d");
    assert.equal(def.dir, project.dir);
    for (const v of values) assert.ok(!row.text.includes(v), "the registered row holds a secret value");
    assert.equal(project.outputs().status, "current");
    assert.match(String(policyState().schedulerRegistration), /^dsops-sched\/sched\/db-login [0-9a-f]{16}$/);
    // Registered again with nothing changed: no update.
    assert.deepEqual(project.previewSummary(at(T0, { DSOPS_E2E_SCHEDULER_URL: schedUrl })), { same: 2 });
    project.assertNoLeak([...values]);
  });

  it("a credential-like setting holding a literal is refused at registration, naming it; nothing is half-written", async () => {
    project.ok(["config", "set", "withLiteral", "1"]);
    const r = project.run(["up", "--yes", "--skip-preview"], at(T0, { DSOPS_E2E_SCHEDULER_URL: schedUrl }));
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /cannot register the policy with the scheduler: secretStores\.lit\.values holds a literal value/);
    assert.deepEqual((await rows()).map((x) => x.id), [POLICY_ID]);
    project.ok(["config", "rm", "withLiteral"]);
    project.assertNoLeak([...values]);
  });

  it("a changed definition (dsops.yaml's service settings) shows the policy as an update and re-registers it, without rotating", async () => {
    const env = at(T0, { DSOPS_E2E_SCHEDULER_URL: schedUrl });
    const before = await admin.query<{ u: Date }>("SELECT updated_at AS u FROM dsops_worker.policies WHERE id = $1", [POLICY_ID]);
    const version = (await current("app/sched")).version;
    writeConfig(", connect_timeout_ms: 7000");
    assert.deepEqual(project.previewSummary(env), { same: 1, update: 1 });
    project.ok(["up", "--yes", "--skip-preview"], env);
    const [row] = await rows();
    assert.equal((row.definition as { config: { services: Record<string, { connect_timeout_ms?: number }> } }).config.services["app-db"].connect_timeout_ms, 7000);
    const after = await admin.query<{ u: Date }>("SELECT updated_at AS u FROM dsops_worker.policies WHERE id = $1", [POLICY_ID]);
    assert.ok(after.rows[0].u.getTime() >= before.rows[0].u.getTime());
    assert.equal((await current("app/sched")).version, version, "re-registering does not rotate");
    assert.deepEqual(project.previewSummary(env), { same: 2 });
  });

  it("dsops worker --scheduler --once (no dsops.yaml) rotates the due policy; a policy it cannot use is reported blocked, the others go on", async () => {
    // A registration this worker cannot use: its store is unknown to it.
    await admin.query(
      `INSERT INTO dsops_worker.policies (id, project, stack, name, secret, definition, updated_at) VALUES ('other/stack/ghost', 'other', 'stack', 'ghost', 'store://vault-prod/app/ghost', $1, now())`,
      [JSON.stringify({ version: 1, secret: "store://vault-prod/app/ghost", dir: "/", schedule: { every: "1d" }, windows: [], config: { secretStores: {}, services: { db: { type: "postgresql", host: "127.0.0.1", database: "postgres", admin: "store://vault-prod/pg" } }, envs: { pulumi: { SECRET: { from: "store://vault-prod/app/ghost", rotation: { service: "db", user: "ghost", ttl: "1d" } } } } } })],
    );
    const before = await current("app/sched");
    // Not due yet at T0: nothing queued.
    const early = await worker(["--scheduler", "--once"], T0);
    assert.equal(early.status, 0, early.stdout + early.stderr);
    assert.doesNotMatch(early.stdout, /queued policy:/);
    assert.match(early.stderr, /no dsops\.yaml at .*serving the RotationPolicy definitions registered in the database/);

    const r = await worker(["--scheduler", "--once"], T1);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^queued policy:dsops-sched\/sched\/db-login \(due 2026-12-02T12:00:00\.000Z\) job /m);
    assert.match(r.stdout, /^policy:dsops-sched\/sched\/db-login: rotated \(version \d+\) job /m);
    assert.match(r.stderr, /scheduler: policy:other\/stack\/ghost: blocked: [\s\S]*vault-prod/);
    const after = await current("app/sched");
    assert.notEqual(after.version, before.version);
    assert.notEqual(after.value, before.value);
    assert.ok(await pg.canLogin("sched_app", after.value), "the role logs in with the rotated password");
    assert.ok(!(await pg.canLogin("sched_app", before.value)), "single-user: the old password no longer works");
    const hist = await admin.query<{ status: string; record: { newVersionId: string } }>("SELECT status, record FROM dsops_rotation_history WHERE secret = 'store://local/app/sched'");
    assert.deepEqual(hist.rows.map((x) => [x.status, x.record.newVersionId]), [["succeeded", after.version]]);
    const key = await admin.query<{ k: string }>("SELECT singleton_key AS k FROM dsops_worker.job WHERE name = 'dsops-rotation'");
    assert.deepEqual(key.rows.map((x) => x.k), ["policy:dsops-sched/sched/db-login@2026-12-02T12:00:00.000Z"]);

    // A second pass: rotated, not due any more; nothing queued.
    const again = await worker(["--scheduler", "--once"], T1);
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /queued policy:dsops-sched/);
  });

  it("after the worker's rotation preview shows no change; refresh reads the new rotation (lastRotatedAt, version) as the policy's, not drift", async () => {
    const env = at(T1, { DSOPS_E2E_SCHEDULER_URL: schedUrl });
    assert.deepEqual(project.previewSummary(env), { same: 2 }, "a rotation by a worker is not drift");
    const before = project.outputs();
    assert.equal(before.lastRotatedAt, "2026-11-02T12:00:00.000Z", "the state still holds the age of the version it saw at up");
    project.ok(["refresh", "--yes", "--skip-preview"], env);
    const after = await current("app/sched");
    const st = policyState();
    assert.equal(st.lastRotatedAt, "2026-12-05T12:00:00.000Z");
    assert.equal(st.currentVersionId, after.version);
    assert.equal(st.status, "rotated");
    assert.match(String(st.lastResult), /^rotated rot-[^ ]+ by the scheduler \(outside pulumi up\): version \d+ → \d+$/);
    assert.equal(st.nextDueAt, "2027-01-04T12:00:00.000Z");
    assert.deepEqual(project.previewSummary(env), { same: 2 });
    project.assertNoLeak([...values]);
  });

  it("dsops rotation run --due --database-url includes the registered policies (a cron pass); preview stays clean", async () => {
    const T2 = "2027-01-05T12:00:00Z";
    const before = await current("app/sched");
    const r = await dsopsRun(["rotation", "run", "--due", "--database-url", schedUrl], { cwd: project.dir, env: at(T2, { DSOPS_FILE_KEY: FILE_KEY }) });
    printed.push({ ...r, stdout: r.stdout, stderr: r.stderr });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /dsops-sched\/sched\/db-login\s+policy\s+-\s+due now\s+rotated \(version \d+\)/);
    assert.match(r.stdout, /other\/stack\/ghost\s+policy\s+-\s+blocked \(/);
    const after = await current("app/sched");
    assert.notEqual(after.version, before.version);
    assert.ok(await pg.canLogin("sched_app", after.value));
    const hist = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM dsops_rotation_history WHERE secret = 'store://local/app/sched' AND status = 'succeeded'");
    assert.equal(hist.rows[0].n, 2);
    assert.deepEqual(project.previewSummary(at(T2, { DSOPS_E2E_SCHEDULER_URL: schedUrl })), { same: 2 });
  });

  it("a due rotation made by pulumi up goes to the same history: the worker's next pass finds it not due", async () => {
    const T3 = "2027-02-10T12:00:00Z";
    const env = at(T3, { DSOPS_E2E_SCHEDULER_URL: schedUrl });
    const before = await current("app/sched");
    assert.deepEqual(project.previewSummary(env), { same: 1, update: 1 });
    project.ok(["up", "--yes", "--skip-preview"], env);
    const after = await current("app/sched");
    assert.notEqual(after.version, before.version);
    assert.ok(await pg.canLogin("sched_app", after.value));
    const hist = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM dsops_rotation_history WHERE secret = 'store://local/app/sched' AND status = 'succeeded'");
    assert.equal(hist.rows[0].n, 3, "pulumi up recorded its rotation in the scheduler database");
    const r = await worker(["--scheduler", "--once"], T3);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /policy:dsops-sched/);
    assert.equal((await current("app/sched")).version, after.version);
    project.assertNoLeak([...values]);
  });

  it("destroy unregisters the policy; the secret and the role stay", async () => {
    project.ok(["destroy", "--yes", "--skip-preview"], at(T1, { DSOPS_E2E_SCHEDULER_URL: schedUrl }));
    assert.deepEqual((await rows()).map((x) => x.id), ["other/stack/ghost"]);
    const still = await current("app/sched");
    assert.ok(await pg.canLogin("sched_app", still.value));
    project.assertNoLeak([...values]);
  });
});
