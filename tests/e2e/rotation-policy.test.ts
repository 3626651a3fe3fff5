import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * RotationPolicy and MaintenanceWindow with the real Pulumi CLI (file backend), a real
 * PostgreSQL 15 and the embedded file store; time moves with DSOPS_CLOCK.
 */
describe("Pulumi end to end: RotationPolicy and MaintenanceWindow on PostgreSQL", function () {
  this.timeout(600000);
  let pg: RunningPostgres;
  let admin: Client;
  let project: PulumiProject;
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const values = new Set<string>();

  const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse("2026-11-02T12:00:00Z")), env: { DSOPS_FILE_KEY: FILE_KEY } });
  const at = (iso: string) => ({ DSOPS_CLOCK: iso });
  const pw = (tag: string) => `Pw-${tag}-${randomBytes(12).toString("base64url")}`;

  const canLogin = (user: string, password: string) => pg.canLogin(user, password);

  async function setRole(user: string, password: string): Promise<void> {
    values.add(password);
    await admin.query(`ALTER ROLE ${escapeIdentifier(user)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
  }

  async function current(key: string): Promise<{ username: string; password: string } & { raw: string; version: string }> {
    const got = await store().get({ key, version: "current" });
    const raw = got.value.reveal();
    values.add(raw);
    let parsed: { username: string; password: string };
    try {
      parsed = JSON.parse(raw) as { username: string; password: string };
      values.add(parsed.password);
    } catch {
      parsed = { username: "", password: raw };
    }
    return { ...parsed, raw, version: got.versionId };
  }

  function policyState(name: string): Record<string, unknown> {
    const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; outputs: Record<string, unknown> }> } };
    const r = state.deployment.resources.find((x) => x.type.endsWith("dsops:RotationPolicy") && x.urn.endsWith(`::${name}`));
    assert.ok(r, `no RotationPolicy ${name} in state`);
    return r.outputs;
  }

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    for (const r of ["app_a", "app_b", "bad", "fresh"]) await admin.query(`CREATE ROLE ${r} LOGIN`);
    await admin.query("CREATE TABLE guarded (x int)");

    project = new PulumiProject(
      "dsops-rotation",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const login = new dsops.SecretReference("db-login", { ref: "store://local/app/db-login" });
const weekly = new dsops.MaintenanceWindow("weekly", {
  schedule: "0 2 * * SUN", duration: "4h", timezone: "Europe/Berlin",
  blackouts: [{ start: "2026-12-24", end: "2026-12-27", reason: "holiday freeze" }],
});
const policy = new dsops.RotationPolicy("db-login", {
  secret: login, target: "app-db", strategy: "alternating-users", users: ["app_a", "app_b"],
  schedule: { every: "30d" }, windows: [weekly], triggers: { n: cfg.get("trigger") || "0" },
  rollback: cfg.get("rollbackReason") ? { reason: cfg.get("rollbackReason") } : undefined,
});
if (cfg.get("withFresh")) {
  const fresh = new dsops.RotationPolicy("fresh", {
    secret: "store://local/app/fresh", target: "app-db", user: "fresh", strategy: "single-user",
    schedule: { cron: "0 3 1 * *", timezone: "UTC" }, rotateOnCreate: true,
    generator: { length: 24, format: "hex" },
  });
  exports.freshStatus = fresh.status;
  exports.freshNextDueAt = fresh.nextDueAt;
}
const bad = new dsops.RotationPolicy("bad", {
  secret: "store://local/app/bad",
  target: { type: "postgresql", host: "127.0.0.1", port: ${pg.port}, database: "postgres", admin: "store://local/pg/admin", user: "bad" },
  strategy: "single-user", schedule: { every: "3650d" }, verify: { query: "SELECT * FROM guarded" },
  triggers: { n: cfg.get("badTrigger") || "0" },
});
exports.value = policy.value;
exports.status = policy.status;
exports.nextDueAt = policy.nextDueAt;
exports.lastResult = policy.lastResult;
exports.loginVersion = login.versionId;
exports.windowOpen = weekly.isOpen;
exports.nextOpenAt = weekly.nextOpenAt;
exports.badStatus = bad.status;
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }\n`,
    );
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const a = pw("a0");
    await setRole("app_a", a);
    await setRole("app_b", pw("b0"));
    await s.put("app/db-login", new Secret(JSON.stringify({ username: "app_a", password: a })));
    const b = pw("bad0");
    await setRole("bad", b);
    await s.put("app/bad", new Secret(b));
    const f = pw("fresh0");
    await setRole("fresh", f);
    await s.put("app/fresh", new Secret(f));
    project.ok(["stack", "init", "rot"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    project?.cleanup();
  });

  it("creates without rotating; not due → no change", () => {
    project.ok(["up", "--yes", "--skip-preview"], at("2026-11-02T12:00:00Z"));
    const out = project.outputs();
    assert.equal(out.status, "current");
    assert.equal(out.nextDueAt, "2026-12-02T12:00:00.000Z");
    assert.equal(out.value, "[secret]");
    assert.equal(out.windowOpen, false);
    assert.equal(out.nextOpenAt, "2026-11-08T01:00:00.000Z");
    assert.deepEqual(project.previewSummary(at("2026-11-20T12:00:00Z")), { same: 5 });
  });

  it("due with every window closed → no change, and a warning naming the next opening", () => {
    const r = project.ok(["preview"], at("2026-12-03T12:00:00Z"));
    assert.match(r.stdout + r.stderr, /rotation due since 2026-12-02T12:00:00\.000Z, but every maintenance window is closed; next opening 2026-12-06T01:00:00\.000Z/);
    assert.deepEqual(project.previewSummary(at("2026-12-03T12:00:00Z")), { same: 5 });
  });

  it("due inside the window → preview shows the update with its reason → up rotates alternating users", async () => {
    const before = await current("app/db-login");
    const when = at("2026-12-06T02:00:00Z");
    assert.deepEqual(project.previewSummary(when), { same: 4, update: 1 });
    const diff = project.ok(["preview", "--diff"], when);
    assert.match(diff.stdout, /pendingRotation\s*:\s*"due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z"/);
    project.ok(["up", "--yes", "--skip-preview"], when);
    const after = await current("app/db-login");
    assert.equal(after.username, "app_b", "the inactive user became current");
    assert.notEqual(after.password, before.password);
    assert.ok(await canLogin("app_b", after.password), "the new credential works");
    assert.ok(await canLogin("app_a", before.password), "alternating users: the old user still works until its next turn");
    const secret = project.secretOutputs();
    values.add(String(secret.value));
    assert.equal(secret.value, after.raw, "the policy's value output is the rotated value, in the same up");
    const out = project.outputs();
    assert.equal(out.status, "rotated");
    assert.equal(out.nextDueAt, "2027-01-05T02:00:00.000Z");
    assert.match(String(out.lastResult), /^rotated rot-[^ ]+ \(due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z\): version \d+ → \d+$/);
    assert.deepEqual(project.previewSummary(when), { same: 5 }, "a rotation by the policy is not drift of the SecretReference");
    project.assertNoLeak([...values]);
  });

  it("a failed verification fails the update after rollback; the working credential stays current; the next up retries", async () => {
    const before = await current("app/bad");
    project.ok(["config", "set", "badTrigger", "1"]);
    const when = at("2026-12-06T03:00:00Z");
    const r = project.run(["up", "--yes", "--skip-preview"], when);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /RotationPolicy store:\/\/local\/app\/bad: .*(verif|guarded)/i);
    const still = await current("app/bad");
    assert.equal(still.version, before.version, "the stored current version is unchanged");
    assert.ok(await canLogin("bad", still.password), "and it still works");
    assert.equal(policyState("bad").triggers && (policyState("bad").triggers as { n: string }).n, "0", "state keeps the last good inputs");
    await admin.query("GRANT SELECT ON guarded TO bad");
    project.ok(["up", "--yes", "--skip-preview"], when);
    const rotated = await current("app/bad");
    assert.notEqual(rotated.version, before.version);
    assert.ok(await canLogin("bad", rotated.password));
    assert.ok(!(await canLogin("bad", before.password)), "single-user: the old password no longer works");
    assert.equal(project.outputs().badStatus, "rotated");
    project.assertNoLeak([...values]);
  });

  it("a provider killed during up: the next up converges and the current credential works", async () => {
    const before = await current("app/db-login");
    project.ok(["config", "set", "trigger", "1"]);
    const when = at("2026-12-06T03:30:00Z");
    const killed = project.run(["up", "--yes", "--skip-preview"], { ...when, DSOPS_FAULT: "after:apply" });
    assert.notEqual(killed.status, 0, "the provider process was killed after applying the new password");
    project.ok(["up", "--yes", "--skip-preview"], when);
    const after = await current("app/db-login");
    assert.notEqual(after.version, before.version);
    assert.equal(after.username, before.username === "app_a" ? "app_b" : "app_a");
    assert.ok(await canLogin(after.username, after.password));
    assert.match(String(project.outputs().lastResult), /^(rotated|finished interrupted) rot-/);
    assert.deepEqual(project.previewSummary(when), { same: 5 });
    project.assertNoLeak([...values]);
  });

  it("rollback input puts back the previous credential on the next up", async () => {
    const before = await current("app/db-login");
    const previous = (await store().get({ key: "app/db-login", version: "previous" })).value.reveal();
    values.add(previous);
    project.ok(["config", "set", "rollbackReason", "bad deploy"]);
    const when = at("2026-12-06T04:00:00Z");
    project.ok(["up", "--yes", "--skip-preview"], when);
    const after = await current("app/db-login");
    assert.notEqual(after.version, before.version);
    assert.equal(after.raw, previous, "the previous credential is current again");
    assert.ok(await canLogin(after.username, after.password));
    const out = project.outputs();
    assert.equal(out.status, "rolled-back");
    assert.match(String(out.lastResult), /^rolled back rot-[^ ]+ \(bad deploy\)/);
    project.ok(["config", "rm", "rollbackReason"]);
    assert.deepEqual(project.previewSummary(when), { same: 4, update: 1 }, "removing the request is a settings update only");
    project.ok(["up", "--yes", "--skip-preview"], when);
    assert.equal((await current("app/db-login")).version, after.version, "removing the request does not rotate");
  });

  it("rotateOnCreate rotates when the policy is created; a cron schedule sets the next due date", async () => {
    const before = await current("app/fresh");
    project.ok(["config", "set", "withFresh", "1"]);
    project.ok(["up", "--yes", "--skip-preview"], at("2026-12-06T04:30:00Z"));
    const after = await current("app/fresh");
    assert.notEqual(after.version, before.version);
    assert.match(after.password, /^[0-9a-f]{24}$/, "the generator settings were used");
    assert.ok(await canLogin("fresh", after.password));
    const out = project.outputs();
    assert.equal(out.freshStatus, "rotated");
    assert.equal(out.freshNextDueAt, "2027-01-01T03:00:00.000Z");
    project.assertNoLeak([...values]);
  });

  it("refresh reports a secret changed outside the policy; destroy leaves secret and users", async () => {
    const s = store();
    const manual = pw("manual");
    await setRole("app_a", manual);
    await s.put("app/db-login", new Secret(JSON.stringify({ username: "app_a", password: manual })));
    project.ok(["refresh", "--yes", "--skip-preview"], at("2026-12-07T12:00:00Z"));
    const st = policyState("db-login");
    assert.equal(st.status, "drifted");
    assert.match(String(st.lastResult), /changed outside the policy/);
    project.ok(["destroy", "--yes", "--skip-preview"], at("2026-12-07T12:00:00Z"));
    assert.equal((await current("app/db-login")).password, manual, "the secret is still there");
    assert.ok(await canLogin("app_a", manual), "and so is the user");
    project.assertNoLeak([...values]);
  });
});
