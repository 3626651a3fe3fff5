// RotationPolicy `after` (multi-environment order) through the provider's handlers (check, create, update: what Pulumi calls), rotating roles of a real PostgreSQL 15.
import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { listPolicies, registerPolicy } from "../../provider/compose/registered-policies";
import { dsopsRun } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

describe("RotationPolicy after: a policy rotates only after its predecessor's successful rotation in an earlier stage has soaked (real PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let dir: string;
  const FILE_KEY = "policy-after-key-" + Math.random().toString(36).slice(2);
  let ctx: typeof import("../../provider/dynamic/context");
  let policy: typeof import("../../provider/dynamic/rotation-policy");
  const saved = { key: process.env.DSOPS_FILE_KEY, clock: process.env.DSOPS_CLOCK, cwd: "" };
  const values = new Set<string>();
  const texts: string[] = [];
  const store = (s: string) => new FileStore(s, { type: "file", path: join(dir, s, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });
  const current = async (s: string) => {
    const v = (await store(s).get({ key: "app", version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  const current2 = async (s: string) => {
    const v = (await store(s).get({ key: "app2", version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  const HOUR = 3_600_000;
  let t0 = 0;
  const setClock = (t: number) => (process.env.DSOPS_CLOCK = new Date(t).toISOString());

  const staging = () => ({ secret: "store://stg/app", target: "pg", strategy: "single-user", user: "app_stg", schedule: { every: "30d" } });
  const prod = (after: Record<string, unknown> = { policy: "store://stg/app", stage: "staging", soak: "1h" }) => ({
    secret: "store://prd/app",
    target: "pg",
    strategy: "single-user",
    user: "app_prd",
    schedule: { every: "30d" },
    after,
  });

  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), "dsops-policy-after-"));
    process.env.DSOPS_FILE_KEY = FILE_KEY;
    for (const s of ["admin", "stg", "prd"]) mkdirSync(join(dir, s));
    await store("admin").put("pg", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    values.add(pg.adminPassword);
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await c.connect();
    try {
      for (const s of ["stg", "prd"]) {
        const pw = `Init-${s}-${Math.random().toString(36).slice(2)}`;
        values.add(pw);
        await c.query(`CREATE ROLE ${escapeIdentifier(`app_${s}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
        await store(s).put("app", new Secret(pw));
      }
    } finally {
      await c.end();
    }
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  admin: { type: file, path: ./admin/secrets.store }
  stg: { type: file, path: ./stg/secrets.store }
  prd: { type: file, path: ./prd/secrets.store }
services:
  pg: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://admin/pg" }
`,
    );
    ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
    policy = require("../../provider/dynamic/rotation-policy") as typeof import("../../provider/dynamic/rotation-policy");
    const st = ctx.state as { cwd: string };
    saved.cwd = st.cwd;
    st.cwd = dir;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
    // Both values were stored now: 31 days later both policies are due.
    t0 = Date.now() + 31 * 24 * HOUR;
  });
  after(async () => {
    ctx?.configure(() => undefined);
    if (ctx) (ctx.state as { cwd: string }).cwd = saved.cwd;
    const dynamicDir = dirname(require.resolve("../../provider/dynamic/context"));
    for (const k of Object.keys(require.cache)) if (k.startsWith(dynamicDir + sep)) delete require.cache[k];
    for (const [k, v] of [["DSOPS_FILE_KEY", saved.key], ["DSOPS_CLOCK", saved.clock]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    const text = texts.join("\n");
    for (const v of values) assert.ok(!text.includes(v), "a value is in a message or a non-secret output");
  });

  it("check refuses a predecessor that is the policy itself (a cycle), a bad soak and an unknown store, naming after.*", async () => {
    setClock(t0);
    const self = await policy.rotationPolicy.check(undefined, prod({ policy: "store://prd/app", stage: "staging" }));
    assert.deepEqual(self.failures?.map((f) => f.property), ["after.policy"]);
    assert.match(self.failures?.[0].reason ?? "", /cannot wait for itself .*cycle/);
    const soak = await policy.rotationPolicy.check(undefined, prod({ policy: "store://stg/app", stage: "staging", soak: "soon" }));
    assert.deepEqual(soak.failures?.map((f) => f.property), ["after.soak"]);
    const unknown = await policy.rotationPolicy.check(undefined, prod({ policy: "store://nope/app", stage: "staging" }));
    assert.deepEqual(unknown.failures?.map((f) => f.property), ["after.policy"]);
    const missing = await policy.rotationPolicy.check(undefined, prod({ policy: "store://stg/app" }));
    assert.deepEqual(missing.failures?.map((f) => f.property), ["after.stage"]);
  });

  it("prod waits (preview: no update, a warning naming the predecessor) until staging rotated and soaked 1h; then up rotates it", async () => {
    setClock(t0 - 31 * 24 * HOUR + 1000);
    const createdStg = await policy.rotationPolicy.create((await policy.rotationPolicy.check(undefined, staging())).inputs);
    const createdPrd = await policy.rotationPolicy.create((await policy.rotationPolicy.check(undefined, prod())).inputs);
    const oldPrd = await current("prd");

    setClock(t0);
    // Due, window open (none), but staging has not rotated: no update, status waiting-for-predecessor.
    const c1 = await policy.rotationPolicy.check(createdPrd.outs, prod());
    assert.equal(c1.failures, undefined, JSON.stringify(c1.failures));
    assert.equal(c1.inputs.pendingRotation, "");
    assert.equal((await policy.rotationPolicy.diff("p", createdPrd.outs, c1.inputs)).changes, false, "preview shows no update");
    const warn = policy.waitingMessage(await policy.evaluate(prod() as never));
    texts.push(warn ?? "");
    assert.match(warn ?? "", /^rotation due since .*, but it waits for its predecessor store:\/\/stg\/app \(stage staging\): no successful rotation of it yet$/);
    const read1 = await policy.rotationPolicy.read("p", { ...createdPrd.outs });
    texts.push(String(read1.props.lastResult));
    assert.equal(read1.props.status, "waiting-for-predecessor");

    // staging rotates.
    const cs = await policy.rotationPolicy.check(createdStg.outs, staging());
    assert.match(String(cs.inputs.pendingRotation), /^due since/);
    const us = (await policy.rotationPolicy.update("s", createdStg.outs, cs.inputs)).outs as Record<string, unknown>;
    assert.equal(us.status, "rotated");
    texts.push(String(us.lastResult));

    // 59 minutes later: still soaking.
    setClock(t0 + HOUR - 60_000);
    const c2 = await policy.rotationPolicy.check(createdPrd.outs, prod());
    assert.equal(c2.inputs.pendingRotation, "");
    const w2 = policy.waitingMessage(await policy.evaluate(prod() as never)) ?? "";
    texts.push(w2);
    assert.match(w2, /waits for its predecessor store:\/\/stg\/app \(stage staging\): rotated rot-\S+ at .*, soaking until /);
    assert.equal(await current("prd"), oldPrd, "prod not rotated while staging soaks");

    // The soak has passed: prod's update rotates.
    setClock(t0 + HOUR);
    const c3 = await policy.rotationPolicy.check(createdPrd.outs, prod());
    assert.match(String(c3.inputs.pendingRotation), /^due since/);
    const up = (await policy.rotationPolicy.update("p", createdPrd.outs, c3.inputs)).outs as Record<string, unknown>;
    texts.push(String(up.lastResult), String(up.status));
    assert.equal(up.status, "rotated");
    const newPrd = await current("prd");
    assert.notEqual(newPrd, oldPrd);
    assert.equal(await pg.canLogin("app_prd", newPrd), true);
    assert.equal(await pg.canLogin("app_prd", oldPrd), false);

    // Due again 31 days later: prod waits for staging's next rotation (its last one is older than prod's).
    setClock(t0 + 32 * 24 * HOUR);
    const w3 = policy.waitingMessage(await policy.evaluate(prod() as never)) ?? "";
    texts.push(w3);
    assert.match(w3, /its last successful rotation \(rot-\S+, .*\) is not newer than this policy's/);
    texts.push(readFileSync(join(dir, "prd", "dsops-rotation-history.jsonl"), "utf8"), readFileSync(join(dir, "stg", "dsops-rotation-history.jsonl"), "utf8"));
  });

  it("registered policies (dsops:scheduler): the worker does not queue the successor until the predecessor rotated and soaked", async () => {
    delete process.env.DSOPS_CLOCK; // the values below are stored now
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await c.connect();
    const old: Record<string, string> = {};
    try {
      await c.query("CREATE DATABASE policy_after");
      for (const s of ["stg", "prd"]) {
        old[s] = `Init2-${s}-${Math.random().toString(36).slice(2)}`;
        values.add(old[s]);
        await c.query(`CREATE ROLE ${escapeIdentifier(`w_${s}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(old[s]))}`);
        await store(s).put("app2", new Secret(old[s]));
      }
    } finally {
      await c.end();
    }
    const url = pg.connectionString(pg.adminUser, pg.adminPassword, "policy_after");
    const definition = (s: string, after?: Record<string, string>) => ({
      version: 1 as const,
      secret: `store://${s}/app2`,
      dir,
      schedule: { every: "30d" },
      windows: [],
      config: {
        version: 1,
        secretStores: { admin: { type: "file", path: "./admin/secrets.store" }, [s]: { type: "file", path: `./${s}/secrets.store` } },
        services: { pg: { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://admin/pg" } },
        envs: { pulumi: { SECRET: { from: `store://${s}/app2`, rotation: { service: "pg", strategy: "single-user", user: `w_${s}`, ttl: "30d" } } } },
      },
      ...(after ? { after: after as { policy: string; stage: string; soak?: string } } : {}),
    });
    await registerPolicy(url, { id: "proj/staging/db", project: "proj", stack: "staging", name: "db", definition: definition("stg") });
    await registerPolicy(url, { id: "proj/prod/db", project: "proj", stack: "prod", name: "db", definition: definition("prd", { policy: "store://stg/app2", stage: "staging", soak: "1h" }) });
    const t = Date.now() + 31 * 24 * HOUR;
    const worker = async (at: number) => {
      const r = await dsopsRun(["worker", "--scheduler", "--once", "--retry-limit", "0"], { cwd: dir, env: { DSOPS_FILE_KEY: FILE_KEY, DSOPS_WORKER_DATABASE_URL: url, DSOPS_CLOCK: new Date(at).toISOString() } });
      texts.push(r.stdout, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout + r.stderr;
    };
    const p1 = await worker(t);
    assert.match(p1, /not queued policy:proj\/prod\/db: blocked \(waits for its predecessor store:\/\/stg\/app2 \(stage staging\): no successful rotation of it yet\)/);
    assert.match(p1, /policy:proj\/staging\/db: rotated/);
    assert.notEqual(await current2("stg"), old.stg);
    assert.equal(await current2("prd"), old.prd);
    const p2 = await worker(t + 30 * 60_000);
    assert.match(p2, /not queued policy:proj\/prod\/db: blocked \(waits for its predecessor .*soaking until /);
    assert.equal(await current2("prd"), old.prd);
    const p3 = await worker(t + HOUR);
    assert.match(p3, /policy:proj\/prod\/db: rotated/);
    const now = await current2("prd");
    assert.notEqual(now, old.prd);
    assert.equal(await pg.canLogin("w_prd", now), true);
  });
  it("after cycles across policies (A → B → A, and three) are refused where first knowable: the check (preview) of the policy that closes it, the scheduler's registration, the worker's pass; each error names the whole cycle", async () => {
    setClock(t0);
    const pol = (secret: string, pred: string, policyId?: string) => ({ ...prod({ policy: pred, stage: "earlier" }), secret, ...(policyId ? { policyId } : {}) });
    // The tests above checked prod after staging in this (the provider's) process: start from policies without after.
    for (const secret of ["store://stg/app", "store://prd/app", "store://admin/app"]) assert.equal((await policy.rotationPolicy.check(undefined, { ...staging(), secret })).failures, undefined);
    // Preview of one program: the second policy's check closes the cycle.
    const a = await policy.rotationPolicy.check(undefined, pol("store://stg/app", "store://prd/app"));
    assert.equal(a.failures, undefined, JSON.stringify(a.failures));
    const b = await policy.rotationPolicy.check(undefined, pol("store://prd/app", "store://stg/app"));
    assert.deepEqual(b.failures?.map((f) => f.property), ["after.policy"]);
    assert.equal(
      b.failures?.[0].reason,
      "the policies wait for each other in a cycle: store://prd/app (policy store://prd/app) → store://stg/app (policy store://stg/app) → store://prd/app (→: waits for); none of them would ever rotate",
    );
    // Three policies: the whole cycle is named.
    await policy.rotationPolicy.check(undefined, pol("store://stg/app", "store://prd/app"));
    await policy.rotationPolicy.check(undefined, pol("store://prd/app", "store://admin/app"));
    const c3 = await policy.rotationPolicy.check(undefined, pol("store://admin/app", "store://stg/app"));
    assert.match(c3.failures?.[0].reason ?? "", /cycle: store:\/\/admin\/app \(policy store:\/\/admin\/app\) → store:\/\/stg\/app \(policy store:\/\/stg\/app\) → store:\/\/prd\/app \(policy store:\/\/prd\/app\) → store:\/\/admin\/app /);
    // Breaking the cycle (stg without after) makes the others pass their check again.
    assert.equal((await policy.rotationPolicy.check(undefined, staging())).failures, undefined);
    assert.equal((await policy.rotationPolicy.check(undefined, pol("store://prd/app", "store://stg/app"))).failures, undefined);

    // The scheduler's registrations: the second one of a cycle is refused, nothing written for it.
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await c.connect();
    await c.query("CREATE DATABASE policy_cycle").finally(() => c.end());
    const url = pg.connectionString(pg.adminUser, pg.adminPassword, "policy_cycle");
    const def = (s: string, pred: string) => ({
      version: 1 as const,
      secret: `store://${s}/app3`,
      dir,
      schedule: { every: "30d" },
      windows: [],
      config: {
        version: 1,
        secretStores: { admin: { type: "file", path: "./admin/secrets.store" }, [s]: { type: "file", path: `./${s}/secrets.store` } },
        services: { pg: { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://admin/pg" } },
        envs: { pulumi: { SECRET: { from: `store://${s}/app3`, rotation: { service: "pg", strategy: "single-user", user: `cy_${s}`, ttl: "30d" } } } },
      },
      after: { policy: pred, stage: "earlier" },
    });
    await registerPolicy(url, { id: "proj/staging/db", project: "proj", stack: "staging", name: "db", definition: def("stg", "store://prd/app3") });
    await assert.rejects(registerPolicy(url, { id: "proj/prod/db", project: "proj", stack: "prod", name: "db", definition: def("prd", "store://stg/app3") }), (e: Error) => {
      texts.push(e.message);
      assert.equal(
        e.message,
        "after.policy: the policies wait for each other in a cycle: store://prd/app3 (policy proj/prod/db) → store://stg/app3 (policy proj/staging/db) → store://prd/app3 (→: waits for); none of them would ever rotate",
      );
      return true;
    });
    const rows = await listPolicies(url);
    assert.deepEqual(rows.map((r) => r.id), ["proj/staging/db"], "the refused registration wrote nothing");

    // The check (preview) of a policy of another stack that would close a cycle with a registered one.
    process.env.DSOPS_TEST_CYCLE_URL = url;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : k === "dsops:scheduler" ? "env:DSOPS_TEST_CYCLE_URL" : undefined));
    try {
      const other = await policy.rotationPolicy.check(undefined, pol("store://prd/app3", "store://stg/app3", "proj/prod/db"));
      assert.deepEqual(other.failures?.map((f) => f.property), ["after.policy"]);
      assert.match(other.failures?.[0].reason ?? "", /cycle: store:\/\/prd\/app3 \(policy proj\/prod\/db\) → store:\/\/stg\/app3 \(policy proj\/staging\/db\) → store:\/\/prd\/app3/);
    } finally {
      ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
      delete process.env.DSOPS_TEST_CYCLE_URL;
    }

    // A cycle written to the table by hand (or before cycles were refused): the worker blocks both, naming it, and goes on (exit 0).
    const c2 = new Client({ connectionString: url });
    await c2.connect();
    try {
      await c2.query(`INSERT INTO dsops_worker.policies (id, project, stack, name, secret, definition, updated_at) VALUES ($1, 'proj', 'prod', 'db', $2, $3, now())`, [
        "proj/prod/db",
        "store://prd/app3",
        JSON.stringify(def("prd", "store://stg/app3")),
      ]);
    } finally {
      await c2.end();
    }
    const w = await dsopsRun(["worker", "--scheduler", "--once", "--retry-limit", "0"], { cwd: dir, env: { DSOPS_FILE_KEY: FILE_KEY, DSOPS_WORKER_DATABASE_URL: url, DSOPS_CLOCK: new Date(t0).toISOString() } });
    texts.push(w.stdout, w.stderr);
    assert.equal(w.status, 0, w.stderr);
    for (const id of ["proj/prod/db", "proj/staging/db"])
      assert.match(w.stdout + w.stderr, new RegExp(`not queued policy:${id}: blocked \\(after: the policies wait for each other in a cycle: .*store://prd/app3.*store://stg/app3.* none of them would ever rotate\\)`));
    assert.doesNotMatch(w.stdout + w.stderr, /policy:proj\/\S+: rotated/);
  });
});
