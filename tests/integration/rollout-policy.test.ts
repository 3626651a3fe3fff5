// The webhook receiver and the health endpoint are a local HTTP server that records requests; the rotated instances are two real PostgreSQL 15 servers.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import type { RolloutRecord } from "../../provider/rotation/rollout/plan";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * The RotationPolicy resource's provider (check, create, update: what Pulumi calls) with the
 * `notify`, `health`, `monitor` and `rollout` inputs: a canary rollout to two PostgreSQL servers,
 * notifications filtered per policy, an HTTP health check that rolls an update back everywhere.
 */
describe("RotationPolicy provider: notify, health, monitor and rollout inputs (real PostgreSQL)", function () {
  this.timeout(120000);
  const pgs: RunningPostgres[] = [];
  let web: HttpReceiver;
  let dir: string;
  const FILE_KEY = "policy-rollout-key-" + Math.random().toString(36).slice(2);
  // Loaded in `before` (not at file load): the provider modules keep the folder they were loaded in.
  let ctx: typeof import("../../provider/dynamic/context");
  let rotationPolicy: (typeof import("../../provider/dynamic/rotation-policy"))["rotationPolicy"];
  const saved = { key: process.env.DSOPS_FILE_KEY, cwd: "" };
  const values = new Set<string>();
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });

  async function worksOn(user: string, password: string): Promise<number[]> {
    const out: number[] = [];
    for (const [i, p] of pgs.entries()) {
      const c = new Client({ host: p.host, port: p.port, user, password, database: "postgres" });
      c.on("error", () => undefined);
      try {
        await c.connect();
        out.push(i);
      } catch {
        /* refused */
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    return out;
  }

  const inputs = () => ({
    secret: "store://local/app/pw",
    target: "app-db",
    strategy: "single-user",
    user: "app",
    schedule: { every: "30d" },
    rotateOnCreate: true,
    notify: { channels: ["webhook:audit"], events: ["completed", "rollback"] },
    health: [{ type: "http", name: "api", url: `${web.url}/healthz` }],
    monitor: { failures: 1 },
    rollout: {
      strategy: "canary",
      instances: pgs.map((p, i) => ({ name: `db${i}`, port: p.port, admin: `store://local/pg/admin-${i}`, ...(i === 1 ? { labels: { canary: true } } : {}) })),
    },
  });

  before(async () => {
    for (let i = 0; i < 2; i++) pgs.push(await startPostgres());
    web = await startHttpReceiver();
    dir = mkdtempSync(join(tmpdir(), "dsops-policy-rollout-"));
    process.env.DSOPS_FILE_KEY = FILE_KEY;
    const initial = "Init-" + Math.random().toString(36).slice(2);
    values.add(initial);
    for (const [i, p] of pgs.entries()) {
      values.add(p.adminPassword);
      const c = new Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" });
      await c.connect();
      await c.query(`CREATE ROLE ${escapeIdentifier("app")} LOGIN PASSWORD ${escapeLiteral(scramVerifier(initial))}`);
      await c.end();
      await store().put(`pg/admin-${i}`, new Secret(JSON.stringify({ username: p.adminUser, password: p.adminPassword })));
    }
    await store().put("app/pw", new Secret(initial));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pgs[0].port}, database: postgres, admin: "store://local/pg/admin-0" }
notifications:
  webhooks:
    - { name: audit, url: "${web.url}/audit", retries: 0 }
    - { name: other, url: "${web.url}/other", retries: 0 }
`,
    );
    ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
    rotationPolicy = (require("../../provider/dynamic/rotation-policy") as typeof import("../../provider/dynamic/rotation-policy")).rotationPolicy;
    const st = ctx.state as { cwd: string };
    saved.cwd = st.cwd;
    st.cwd = dir;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
  });
  after(async () => {
    ctx?.configure(() => undefined);
    if (ctx) (ctx.state as { cwd: string }).cwd = saved.cwd;
    // The provider modules keep the folder they were loaded in (the Pulumi provider host's cwd):
    // drop them so a later test that loads them from another folder gets fresh ones.
    const dynamicDir = dirname(require.resolve("../../provider/dynamic/context"));
    for (const k of Object.keys(require.cache)) if (k.startsWith(dynamicDir + sep)) delete require.cache[k];
    if (saved.key === undefined) delete process.env.DSOPS_FILE_KEY;
    else process.env.DSOPS_FILE_KEY = saved.key;
    await web?.close();
    for (const p of pgs) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("check refuses bad notify, health and rollout inputs, naming the property", async () => {
    const bad = { ...inputs(), rollout: { ...inputs().rollout, on_failure: "panic" }, health: [{ type: "tcp" }], notify: { events: ["exploded"] } };
    const r = await rotationPolicy.check(undefined, bad);
    const props = (r.failures ?? []).map((f) => f.property).sort();
    assert.deepEqual(props, ["health.0.type", "notify.events.0", "rollout.on_failure"]);
  });

  it("create with rotateOnCreate: canary first, both instances take the new password; only the policy's channel and events are notified", async () => {
    web.reset();
    web.setBehaviour(() => 200);
    const i = inputs();
    const checked = await rotationPolicy.check(undefined, i);
    assert.equal(checked.failures, undefined, JSON.stringify(checked.failures));
    const { outs } = await rotationPolicy.create(checked.inputs);
    const value = String(outs.value);
    values.add(value);
    assert.equal(outs.status, "rotated");
    assert.deepEqual(await worksOn("app", value), [0, 1]);
    const paths = web.requests.map((r) => r.path);
    // Health: once between the waves (after the canary) and once after promote.
    assert.equal(paths.filter((p) => p === "/healthz").length, 2);
    assert.deepEqual(paths.filter((p) => p !== "/healthz"), ["/audit"], "only webhook:audit, only `completed`");
    const event = JSON.parse(web.requests.find((r) => r.path === "/audit")?.body ?? "{}") as { type?: string; service?: string };
    assert.equal(event.type, "completed");
    assert.equal(event.service, "app-db");
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as RolloutRecord);
    const last = recs[recs.length - 1];
    assert.equal(last.status, "succeeded");
    assert.deepEqual(last.rollout?.waves.map((w) => w.instances), [["db1"], ["db0"]], "the canary first");
  });

  it("update forced by triggers with an unhealthy endpoint: rolled back on every instance; the rollback is notified", async () => {
    web.reset();
    web.setBehaviour((_n, req) => (req.path === "/healthz" ? 503 : 200));
    const before = (await store().get({ key: "app/pw", version: "current" })).value.reveal();
    const olds = { ...inputs() };
    const news = { ...inputs(), triggers: { deploy: "2" } };
    const checked = await rotationPolicy.check(olds, news);
    assert.equal(checked.failures, undefined);
    await assert.rejects(rotationPolicy.update("policy:store://local/app/pw", olds, checked.inputs), /rolled back: rollout wave 1\/2 \(canary\) failed: db1: health checks after wave 1\/2 \(canary\) failed: .*HTTP 503/);
    assert.equal((await store().get({ key: "app/pw", version: "current" })).value.reveal(), before);
    assert.deepEqual(await worksOn("app", before), [0, 1]);
    assert.deepEqual(web.requests.filter((r) => r.path !== "/healthz").map((r) => (JSON.parse(r.body) as { type: string }).type), ["rollback"]);
    const all = web.requests.map((r) => r.body).join("\n");
    for (const v of values) assert.ok(!all.includes(v), "no value in a notification");
  });
});
