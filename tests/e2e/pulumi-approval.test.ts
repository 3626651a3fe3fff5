import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileHistory } from "../../provider/rotation/history/file";
import type { ApprovalRecord } from "../../provider/rotation/governance";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * RotationPolicy with `approval` through the real Pulumi CLI (file backend), a real PostgreSQL 15
 * and the embedded file store: due → `up` warns "waiting for approval" and does not rotate
 * (status waiting-for-approval); `dsops rotation approve` by another user → preview shows the
 * update, `up` rotates (the old password no longer logs in). Time moves with DSOPS_CLOCK.
 */
describe("Pulumi end to end: RotationPolicy waits for approval (real PostgreSQL 15)", function () {
  this.timeout(300_000);
  let pg: RunningPostgres | undefined;
  let project: PulumiProject | undefined;
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const T0 = "2026-11-02T12:00:00Z";
  const DUE = "2026-12-05T12:00:00Z";
  const initial = `Pw-${randomBytes(12).toString("base64url")}`;
  const values = new Set<string>([initial]);
  const store = () => new FileStore("local", { type: "file", path: join(project?.dir ?? "", "secrets.store") }, { configDir: project?.dir ?? "", clock: new ManualClock(Date.parse(T0)), env: { DSOPS_FILE_KEY: FILE_KEY } });
  const env = (at: string) => ({ DSOPS_CLOCK: at, DSOPS_USER: "pipeline" });
  const canLogin = (password: string) => (pg as RunningPostgres).canLogin("app_ap", password);

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    values.add(pg.adminPassword);
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query(`CREATE ROLE ${escapeIdentifier("app_ap")} LOGIN PASSWORD ${escapeLiteral(scramVerifier(initial))}`);
    await admin.end();
    project = new PulumiProject(
      "dsops-approval",
      `"use strict";
const dsops = require("@dsops/pulumi");
const policy = new dsops.RotationPolicy("db", {
  secret: "store://local/app/db", target: "app-db", strategy: "single-user", user: "app_ap",
  schedule: { every: "30d" }, approval: { approvers: ["alice"], expires: "24h" },
});
exports.status = policy.status;
exports.lastResult = policy.lastResult;
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    project.write("dsops.yaml", `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }\n`);
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await store().put("app/db", new Secret(initial));
    project.ok(["stack", "init", "appr"]);
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

  it("due: up warns waiting for approval and does not rotate; approved by another user: preview shows the update and up rotates", async () => {
    const p = project as PulumiProject;
    p.ok(["up", "--yes", "--skip-preview"], env(T0));
    const waiting = p.ok(["up", "--yes"], env(DUE));
    assert.match(waiting.stdout + waiting.stderr, /rotation due since 2026-12-02T12:00:00\.000Z, waiting for approval: (no request yet|apr-\S+ pending \(0 of 1 granted)/);
    // No change: the policy's outputs stay as they were (a refresh would show waiting-for-approval).
    assert.equal(p.outputs().status, "current");
    assert.equal((await store().get({ key: "app/db", version: "current" })).value.reveal(), initial);
    assert.ok(await canLogin(initial));
    const requests = (await new FileHistory(join(p.dir, "dsops-rotation-history.jsonl"), new ManualClock(0)).list({ governance: true })) as unknown as ApprovalRecord[];
    assert.equal(requests.length, 1);
    assert.equal(requests[0].status, "pending");
    assert.equal(requests[0].requestedBy, "pipeline");

    const approved = await dsopsRun(["rotation", "approve", requests[0].id, "--reason", "CAB-7"], { cwd: p.dir, env: { DSOPS_CLOCK: DUE, DSOPS_USER: "alice", DSOPS_FILE_KEY: FILE_KEY } });
    p.transcript.push(approved.stdout, approved.stderr);
    assert.equal(approved.status, 0, approved.stderr);
    assert.deepEqual(p.previewSummary(env(DUE)), { same: 1, update: 1 });
    p.ok(["up", "--yes", "--skip-preview"], env(DUE));
    const now = (await store().get({ key: "app/db", version: "current" })).value.reveal();
    values.add(now);
    assert.notEqual(now, initial);
    assert.ok(await canLogin(now), "the new password does not log in");
    assert.ok(!(await canLogin(initial)), "the old password still logs in");
    assert.equal(p.outputs().status, "rotated");
  });
});
