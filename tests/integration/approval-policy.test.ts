// The notification webhook is a local HTTP receiver (real HTTP wire protocol); the target is a real PostgreSQL 15.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { FileHistory } from "../../provider/rotation/history/file";
import type { ApprovalRecord } from "../../provider/rotation/governance";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";

/**
 * The RotationPolicy provider with `approval` (what `pulumi preview` and `up` call: check, diff,
 * update, read), on a real PostgreSQL 15: a due policy asks for approval at preview (recorded,
 * the webhook told), its update is no change and its status `waiting-for-approval`; `up` does
 * not rotate; once `dsops rotation approve` (another user, through the CLI on the same
 * dsops.yaml) granted it, preview shows the rotation and up rotates (the PG password changed,
 * the old one no longer logs in) and uses the request up. DSOPS_CLOCK moves time.
 */
describe("RotationPolicy with approval: preview waits for approval, up rotates only once approved (real PostgreSQL 15)", function () {
  this.timeout(120_000);
  let dir: string;
  let pg: RunningPostgres | undefined;
  let web: HttpReceiver | undefined;
  let ctx: typeof import("../../provider/dynamic/context");
  let policy: typeof import("../../provider/dynamic/rotation-policy");
  const FILE_KEY = "approval-policy-key-" + Math.random().toString(36).slice(2);
  const saved = { key: process.env.DSOPS_FILE_KEY, clock: process.env.DSOPS_CLOCK, user: process.env.DSOPS_USER, cwd: "" };
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const T0 = "2026-10-01T08:00:00.000Z";
  const DUE = "2026-11-05T08:00:00.000Z";
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });
  const inputs = () => ({ secret: "store://local/app/pw", target: "app-db", strategy: "single-user", user: "app_p", schedule: { every: "30d" }, approval: { approvers: ["alice"] } }) as Record<string, unknown>;
  const approvals = async () =>
    (await new FileHistory(join(dir, "dsops-rotation-history.jsonl"), systemClock).list({ governance: true })) as unknown as ApprovalRecord[];
  async function logsIn(password: string): Promise<boolean> {
    const c = new Client({ host: pg?.host, port: pg?.port, user: "app_p", password, database: "postgres" });
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  before(async () => {
    const started = await Promise.allSettled([startPostgres(), startHttpReceiver()] as const);
    if (started[0].status === "fulfilled") pg = started[0].value;
    if (started[1].status === "fulfilled") web = started[1].value;
    for (const s of started) if (s.status === "rejected") throw s.reason;
    if (!pg || !web) throw new Error("a server did not start");
    dir = mkdtempSync(join(tmpdir(), "dsops-approval-policy-"));
    process.env.DSOPS_FILE_KEY = FILE_KEY;
    process.env.DSOPS_CLOCK = T0;
    process.env.DSOPS_USER = "pipeline";
    const initial = "Init-" + Math.random().toString(36).slice(2);
    values.add(initial);
    values.add(pg.adminPassword);
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await c.connect();
    await c.query(`CREATE ROLE ${escapeIdentifier("app_p")} LOGIN PASSWORD ${escapeLiteral(scramVerifier(initial))}`);
    await c.end();
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await store().put("app/pw", new Secret(initial));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
notifications:
  webhooks:
    - { name: audit, url: "${web.url}/audit", retries: 0 }
`,
    );
    ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
    policy = require("../../provider/dynamic/rotation-policy") as typeof import("../../provider/dynamic/rotation-policy");
    const st = ctx.state as { cwd: string };
    saved.cwd = st.cwd;
    st.cwd = dir;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
  });
  after(async () => {
    try {
      for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
      for (const q of web?.requests ?? []) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a secret value");
    } finally {
      ctx?.configure(() => undefined);
      if (ctx) (ctx.state as { cwd: string }).cwd = saved.cwd;
      const dynamicDir = dirname(require.resolve("../../provider/dynamic/context"));
      for (const k of Object.keys(require.cache)) if (k.startsWith(dynamicDir + sep)) delete require.cache[k];
      for (const [k, v] of [
        ["DSOPS_FILE_KEY", saved.key],
        ["DSOPS_CLOCK", saved.clock],
        ["DSOPS_USER", saved.user],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      await Promise.allSettled([pg?.stop(), web?.close()]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("due: preview requests approval and shows no rotation (status waiting-for-approval, a warning); up does not rotate; approved: preview shows the rotation, up rotates", async () => {
    const rp = policy.rotationPolicy;
    const created = await rp.create((await rp.check(undefined, inputs())).inputs);
    const id = created.id;
    const before = (await store().get({ key: "app/pw", version: "current" })).value.reveal();

    // 35 days later: due, no window to wait for, but approval required.
    process.env.DSOPS_CLOCK = DUE;
    const checked = await rp.check(created.outs, inputs());
    assert.equal(checked.failures, undefined, JSON.stringify(checked.failures));
    assert.equal(checked.inputs.pendingRotation, "", "preview would rotate without approval");
    assert.deepEqual(await rp.diff(id, created.outs, checked.inputs), { changes: false });
    const requests = await approvals();
    assert.equal(requests.length, 1);
    const req = requests[0];
    assert.equal(req.status, "pending");
    assert.equal(req.requestedBy, "pipeline");
    assert.equal(req.policyPath, "RotationPolicy store://local/app/pw: approval");
    // Asked again (a second preview): the same request.
    await rp.check(created.outs, inputs());
    assert.equal((await approvals()).length, 1);
    await web?.waitFor(1, 10_000);
    assert.deepEqual(
      web?.requests.map((r) => (JSON.parse(r.body) as { type: string }).type),
      ["approval-requested"],
    );
    // What the SDK's preview warns, and the refreshed status.
    const message = policy.waitingMessage(await policy.evaluate(inputs() as never));
    assert.match(message ?? "", new RegExp(`waiting for approval: ${req.id} pending \\(0 of 1 granted`));
    const read = await rp.read(id, created.outs);
    assert.equal(read.props.status, "waiting-for-approval");
    // up anyway: settings updated, no rotation.
    const up = (await rp.update(id, created.outs, checked.inputs)) as { outs: Record<string, unknown> };
    assert.equal(up.outs.status, "waiting-for-approval");
    assert.equal((await store().get({ key: "app/pw", version: "current" })).value.reveal(), before);
    assert.ok(await logsIn(before));

    // The requester may not approve; another user may (the CLI on the same dsops.yaml finds the policy's request).
    const env = { DSOPS_CLOCK: DUE, DSOPS_FILE_KEY: FILE_KEY };
    const self = await dsopsRun(["rotation", "approve", req.id, "--reason", "mine"], { cwd: dir, env: { ...env, DSOPS_USER: "pipeline" } });
    outputs.push(self);
    assert.equal(self.status, 1, self.stderr);
    assert.match(self.stderr, /pipeline requested this rotation and may not approve it \(RotationPolicy store:\/\/local\/app\/pw: approval/);
    const ok = await dsopsRun(["rotation", "approve", req.id, "--reason", "CAB-12"], { cwd: dir, env: { ...env, DSOPS_USER: "alice" } });
    outputs.push(ok);
    assert.equal(ok.status, 0, ok.stderr);

    const again = await rp.check(up.outs, inputs());
    assert.match(String(again.inputs.pendingRotation), new RegExp(`^due since .*; approved \\(${req.id} by alice\\)$`));
    assert.deepEqual(await rp.diff(id, up.outs, again.inputs), { changes: true });
    const rotated = (await rp.update(id, up.outs, again.inputs)) as { outs: Record<string, unknown> };
    assert.equal(rotated.outs.status, "rotated");
    const now = String(rotated.outs.value);
    values.add(now);
    assert.notEqual(now, before);
    assert.ok(await logsIn(now), "the new password does not log in");
    assert.ok(!(await logsIn(before)), "the old password still logs in");
    const used = (await approvals()).find((a) => a.id === req.id);
    assert.equal(used?.status, "used");
    assert.equal(used?.decisions[0].by, "alice");
  });

  it("with dsops:scheduler the requests live in the scheduler's database: approvals/approve --database-url find them, and up rotates once approved", async () => {
    const url = (pg as RunningPostgres).connectionString(pg?.adminUser ?? "", pg?.adminPassword ?? "");
    process.env.DSOPS_TEST_SCHED_URL = url;
    try {
      ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : k === "dsops:scheduler" ? '{"database": "env:DSOPS_TEST_SCHED_URL"}' : undefined));
      const c = new Client({ host: pg?.host, port: pg?.port, user: pg?.adminUser, password: pg?.adminPassword, database: "postgres" });
      await c.connect();
      const initial = "Init2-" + Math.random().toString(36).slice(2);
      values.add(initial);
      await c.query(`CREATE ROLE ${escapeIdentifier("app_q")} LOGIN PASSWORD ${escapeLiteral(scramVerifier(initial))}`);
      await c.end();
      process.env.DSOPS_CLOCK = T0;
      await store().put("app/q", new Secret(initial));
      const rp = policy.rotationPolicy;
      const i = () => ({ ...inputs(), secret: "store://local/app/q", user: "app_q", policyId: "proj/stack/q" });
      const created = await rp.create((await rp.check(undefined, i())).inputs);
      process.env.DSOPS_CLOCK = DUE;
      const checked = await rp.check(created.outs, i());
      assert.equal(checked.inputs.pendingRotation, "");
      const cliEnv = { DSOPS_CLOCK: DUE, DSOPS_FILE_KEY: FILE_KEY, DSOPS_WORKER_URL: url };
      // Without --database-url the CLI does not see them; with it, it does.
      const without = await dsopsRun(["rotation", "approvals", "--json"], { cwd: dir, env: cliEnv });
      outputs.push(without);
      assert.equal((JSON.parse(without.stdout) as ApprovalRecord[]).filter((a) => a.secret === "store://local/app/q").length, 0);
      const listed = await dsopsRun(["rotation", "approvals", "--json", "--database-url", url], { cwd: dir, env: cliEnv });
      outputs.push(listed);
      assert.equal(listed.status, 0, listed.stderr);
      const req = (JSON.parse(listed.stdout) as ApprovalRecord[]).find((a) => a.secret === "store://local/app/q" && a.status === "pending");
      assert.ok(req, listed.stdout);
      const approved = await dsopsRun(["rotation", "approve", req.id, "--reason", "CAB-13", "--database-url", url], { cwd: dir, env: { ...cliEnv, DSOPS_USER: "alice" } });
      outputs.push(approved);
      assert.equal(approved.status, 0, approved.stderr);
      const again = await rp.check(created.outs, i());
      assert.match(String(again.inputs.pendingRotation), /approved \(apr-\S+ by alice\)$/);
      const rotated = (await rp.update(created.id, created.outs, again.inputs)) as { outs: Record<string, unknown> };
      const now = String(rotated.outs.value);
      values.add(now);
      assert.notEqual(now, initial);
      const q = new Client({ host: pg?.host, port: pg?.port, user: "app_q", password: initial, database: "postgres" });
      await assert.rejects(q.connect(), /password authentication failed/);
      await q.end().catch(() => undefined);
    } finally {
      delete process.env.DSOPS_TEST_SCHED_URL;
      ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
    }
  });
});
