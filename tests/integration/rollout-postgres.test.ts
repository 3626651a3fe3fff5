// The discovery endpoint is a local HTTP server started by the test; every instance is a real PostgreSQL 15 server on its own loopback port.
import { strict as assert } from "node:assert";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock, systemClock, type Clock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import type { RotationEvent } from "../../provider/notify/types";
import { composeRotation, type ComposedRotationEngine } from "../../provider/compose/rotation";
import { RotationError, type RotationResult } from "../../provider/rotation/engine";
import type { RolloutRecord } from "../../provider/rotation/rollout/plan";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsops } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Gradual rollout of one rotated password to four PostgreSQL servers (the same role on each):
 * percentage and canary waves, health checks between waves, the three failure policies, a
 * process killed between waves and within one, service groups, and discovery over HTTP.
 */
describe("rotation rollout: one credential, four real PostgreSQL instances", function () {
  this.timeout(240000);
  const N = 4;
  const pgs: RunningPostgres[] = [];
  const admins: Client[] = [];
  let dir: string;
  let discovery: Server;
  let discoveryUrl = "";
  let discoveryBody = "[]";
  const discoveryAuth: string[] = [];
  const DISCOVERY_TOKEN = "disc-token-" + Math.random().toString(36).slice(2);
  const env = { DSOPS_FILE_KEY: "rollout-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "roller" };
  /** Every password that ever existed here (searched for in records, events and output at the end). */
  const values = new Set<string>([DISCOVERY_TOKEN]);
  const outputs: string[] = [];
  const allEvents: RotationEvent[] = [];
  let n = 0;

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const inst = (i: number) => `pg-${i + 1}`;

  const canLogin = (i: number, user: string, password: string) => pgs[i].canLogin(user, password);
  /** On which instances the password logs in. */
  const worksOn = async (user: string, pw: string) => {
    const out: string[] = [];
    for (let i = 0; i < N; i++) if (await canLogin(i, user, pw)) out.push(inst(i));
    return out;
  };
  const all = Array.from({ length: N }, (_, i) => inst(i));
  const stored = async (key: string, version = "current") => {
    const v = (await store().get({ key, version })).value.reveal();
    values.add(v);
    return v;
  };
  /** `ALTER ROLE "<user>" … PASSWORD` statements each server has run so far. */
  const alters = (user: string) => pgs.map((p) => p.log().split(`ALTER ROLE "${user}" WITH PASSWORD`).length - 1);
  function history(): RolloutRecord[] {
    const m = new Map<string, RolloutRecord>();
    for (const l of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RolloutRecord).id, JSON.parse(l) as RolloutRecord);
    return [...m.values()];
  }
  const recordsOf = (user: string) => history().filter((r) => r.secret === `store://local/app/${user}`);

  /**
   * A fresh role (same password on every server; `guarded` readable everywhere except on the
   * instances in `noGrant`) and dsops.yaml with variable X rotated with `rollout`.
   */
  async function setup(o: { rollout: string; rotation?: string; noGrant?: number[]; instances?: string; clock?: Clock; alternating?: boolean }) {
    const user = `r${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    for (const role of o.alternating ? [`${user}_a`, `${user}_b`] : [user])
      for (let i = 0; i < N; i++) {
        await admins[i].query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
        if (!o.noGrant?.includes(i)) await admins[i].query(`GRANT SELECT ON guarded TO ${escapeIdentifier(role)}`);
      }
    await store().put(`app/${user}`, new Secret(o.alternating ? JSON.stringify({ username: `${user}_a`, password: pw }) : pw));
    const instances =
      o.instances ??
      `[${pgs.map((p, i) => `{ name: ${inst(i)}, port: ${p.port}, admin: "store://local/pg/admin-${i}"${i === 2 ? ", labels: { canary: true, tier: web }" : i === 3 ? ", labels: { tier: web }" : ", labels: { tier: db }"} }`).join(", ")}]`;
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pgs[0].port}, database: postgres, admin: "store://local/pg/admin-0" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation:
        service: app-db
        ${o.alternating ? `strategy: alternating-users\n        users: [${user}_a, ${user}_b]` : `user: ${user}`}
${o.rotation ? `        ${o.rotation}\n` : ""}        rollout: { instances: ${instances}, ${o.rollout} }
`.replace("rollout: { instances: DISCOVERY, ", "rollout: { ");
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const events: RotationEvent[] = [];
    const progress: string[] = [];
    const engine = composeRotation(config, {
      env: { ...process.env, ...env },
      clock: o.clock ?? systemClock,
      metrics: false,
      onRotationEvent: (e) => {
        events.push(e);
        allEvents.push(e);
      },
      onEvent: (m) => {
        progress.push(m);
        outputs.push(m);
      },
    });
    return { user, pw, engine, events, progress };
  }

  async function rotate(engine: ComposedRotationEngine): Promise<{ result?: RotationResult; error?: unknown }> {
    try {
      return { result: await engine.rotate("prod", "X") };
    } catch (error) {
      outputs.push(String(error));
      return { error };
    }
  }
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = dsops(args, { cwd: dir, env: { ...env, ...extra } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  /** The order in which instances took the new credential, from the progress lines. */
  const appliedOrder = (progress: string[]) => progress.map((m) => /instance (\S+): new credential applied and verified/.exec(m)?.[1]).filter((x): x is string => !!x);

  before(async () => {
    for (let i = 0; i < N; i++) pgs.push(await startPostgres());
    dir = mkdtempSync(join(tmpdir(), "dsops-rollout-"));
    for (const [i, p] of pgs.entries()) {
      const c = new Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" });
      await c.connect();
      await c.query("CREATE TABLE guarded (x int)");
      admins.push(c);
      values.add(p.adminPassword);
      await store().put(`pg/admin-${i}`, new Secret(JSON.stringify({ username: p.adminUser, password: p.adminPassword })));
    }
    await store().put("discovery/token", new Secret(DISCOVERY_TOKEN));
    discovery = createServer((req, res) => {
      discoveryAuth.push(req.headers.authorization ?? "");
      if (req.headers.authorization !== `Bearer ${DISCOVERY_TOKEN}`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(discoveryBody);
    });
    await new Promise<void>((r) => discovery.listen(0, "127.0.0.1", r));
    discoveryUrl = `http://127.0.0.1:${(discovery.address() as { port: number }).port}/instances`;
  });
  after(async () => {
    for (const a of admins) await a.end().catch(() => undefined);
    await new Promise((r) => discovery?.close(r));
    for (const p of pgs) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("percentage waves (default 5/25/50/100): every instance takes the new password, wave by wave; the old one is refused everywhere", async () => {
    const { user, pw, engine, events, progress } = await setup({ rollout: "strategy: percentage" });
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    const now = await stored(`app/${user}`);
    assert.notEqual(now, pw);
    assert.deepEqual(await worksOn(user, now), all);
    assert.deepEqual(await worksOn(user, pw), []);
    const rec = recordsOf(user)[0];
    // 4 instances: 5% → 1, 25% → 1 (nothing new), 50% → 2, 100% → 4; the canary-labelled one leads.
    assert.deepEqual(rec.rollout?.waves.map((w) => [w.label, w.instances]), [["5%", ["pg-3"]], ["50%", ["pg-1"]], ["100%", ["pg-2", "pg-4"]]]);
    assert.equal(rec.rollout?.wave, 3);
    assert.deepEqual([...(rec.rollout?.verified ?? [])].sort(), all);
    assert.deepEqual(appliedOrder(progress), ["pg-3", "pg-1", "pg-2", "pg-4"]);
    assert.deepEqual(alters(user), [1, 1, 1, 1], "each instance was set once");
    assert.deepEqual(events.map((e) => e.type), ["started", "completed"]);
  });

  it("canary: the instance labelled canary: true is its own first wave; custom waves for the rest; monitoring between waves on the project clock", async () => {
    const clock = new ManualClock(Date.parse("2026-06-01T00:00:00Z"));
    const { user, engine, progress } = await setup({
      rollout: "strategy: canary, waves: [50, 100], monitor: { period: 2m, interval: 1m, failures: 2 }",
      rotation: `health: [{ type: sql, name: guarded, query: "SELECT count(*) FROM guarded" }]`,
      clock,
    });
    let done = false;
    let out: { result?: RotationResult; error?: unknown } = {};
    void rotate(engine).then((x) => ((out = x), (done = true)));
    while (!done) {
      if (clock.sleepers > 0) clock.advance(60000);
      await new Promise((r) => setImmediate(r));
    }
    await engine.close();
    assert.equal(out.result?.record.status, "succeeded", String(out.error));
    const rec = recordsOf(user)[0];
    assert.deepEqual(rec.rollout?.waves.map((w) => [w.label, w.instances]), [["canary", ["pg-3"]], ["50%", ["pg-1", "pg-2"]], ["100%", ["pg-4"]]]);
    assert.equal(appliedOrder(progress)[0], "pg-3", "the canary first");
    // Two monitored gaps between waves (3 rounds in 2 minutes each), one round after the last wave (rotation.monitor unset).
    assert.ok(Date.parse(rec.finishedAt as string) - Date.parse(rec.startedAt) >= 4 * 60000);
    assert.equal(progress.filter((m) => /wave 1\/3 \(canary\): health round \d: healthy/.test(m)).length, 3);
    assert.equal(progress.filter((m) => /wave 2\/3 \(50%\): health round \d: healthy/.test(m)).length, 3);
    assert.equal(progress.filter((m) => /wave 3\/3/.test(m) && /health round/.test(m)).length, 0);
    assert.equal(progress.filter((m) => /rotation \S+: health round 1: healthy$/.test(m)).length, 1);
    assert.deepEqual(await worksOn(user, await stored(`app/${user}`)), all);
  });

  const failing = { rollout: "waves: [25, 50, 100]", rotation: `health: [{ type: sql, query: "SELECT count(*) FROM guarded" }]\n        monitor: { failures: 1 }` };

  it("rollback_all: the health checks fail after wave 2 → waves 1 and 2 get the old password back, waves 3+ were never touched", async () => {
    const { user, pw, engine, events } = await setup({ ...failing, noGrant: [0] }); // pg-1 is wave 2 (pg-3, the canary, leads)
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, /rolled back: rollout wave 2\/3 \(50%\) failed: pg-1: health checks after wave 2\/3 \(50%\) failed: .*pg-1: .*permission denied for table guarded/);
    assert.equal(await stored(`app/${user}`), pw, "the old version is still current");
    assert.equal((await store().stagesOf(`app/${user}`)).pending, undefined, "the pending version is dropped");
    assert.deepEqual(await worksOn(user, pw), all, "the old password works on every instance");
    const rec = recordsOf(user)[0];
    assert.equal(rec.status, "rolled-back");
    assert.deepEqual(rec.rollout?.applied, ["pg-3", "pg-1"]);
    assert.deepEqual(rec.rollout?.restored, ["pg-3", "pg-1"]);
    assert.deepEqual(alters(user), [2, 0, 2, 0], "pg-2 and pg-4 (wave 3) were never changed");
    assert.deepEqual(events.map((e) => [e.type, e.trigger]), [["started", undefined], ["rollback", "automatic"]]);
  });

  it("rollback_all: an instance whose verification fails in wave 2 rolls back wave 1 and the instances of wave 2 done before it", async () => {
    const { user, pw, engine } = await setup({ rollout: "waves: [25, 100]", rotation: `verification: { query: "SELECT count(*) FROM guarded" }`, noGrant: [1] });
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, /rollout wave 2\/2 \(100%\) failed: pg-2: service "app-db\[pg-2\]": check as "r\d+" failed: permission denied for table guarded/);
    assert.deepEqual(await worksOn(user, pw), all);
    assert.deepEqual(recordsOf(user)[0].rollout?.restored, ["pg-3", "pg-1", "pg-2"]);
    assert.deepEqual(alters(user), [2, 2, 2, 0], "pg-4 (after the failure) was never changed");
  });

  it("continue: the failed instance keeps the old password, the others take the new one; the rotation succeeds and says which was left", async () => {
    const { user, pw, engine, events } = await setup({ ...failing, rollout: "waves: [25, 50, 100], on_failure: continue", noGrant: [0] });
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    const now = await stored(`app/${user}`);
    assert.notEqual(now, pw);
    assert.deepEqual(await worksOn(user, now), ["pg-2", "pg-3", "pg-4"]);
    assert.deepEqual(await worksOn(user, pw), ["pg-1"]);
    const rec = recordsOf(user)[0];
    assert.deepEqual(rec.rollout?.failed.map((f) => [f.instance, f.wave]), [["pg-1", 2]]);
    assert.match(rec.error ?? "", /^rollout: 1 instance\(s\) left on the old credential: pg-1 \(health checks after wave 2\/3/);
    assert.deepEqual(events.map((e) => e.type), ["started", "completed"]);
    assert.match(events[1].error ?? "", /pg-1/);
  });

  it("stop: halts at wave 2 (the record stays open); fixed and run again it resumes at wave 2 without touching wave 1", async () => {
    const { user, pw, engine, events } = await setup({ ...failing, rollout: "waves: [25, 50, 100], on_failure: stop", noGrant: [0] });
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, /rollout halted at wave 2\/3 \(50%\): pg-1: /);
    const rec = recordsOf(user)[0];
    assert.equal(rec.status, "running");
    assert.equal(rec.rollout?.halted?.wave, 2);
    assert.equal(await stored(`app/${user}`), pw, "not promoted");
    const pending = await stored(`app/${user}`, (await store().stagesOf(`app/${user}`)).pending as string);
    assert.deepEqual(await worksOn(user, pending), ["pg-3"], "wave 1 keeps the new password");
    assert.deepEqual(await worksOn(user, pw), ["pg-1", "pg-2", "pg-4"], "the failed instance has the old one back");
    assert.deepEqual(events.map((e) => e.type), ["started", "failed"]);
    // Fix pg-1, run again (the CLI): the rollout resumes at wave 2.
    await admins[0].query(`GRANT SELECT ON guarded TO ${escapeIdentifier(user)}`);
    const before = alters(user);
    const again = cli(["secrets", "rotate", "--env", "prod", "--var", "X"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /left unfinished/);
    const after = alters(user);
    assert.equal(after[2] - before[2], 0, "wave 1 (pg-3) not set again");
    assert.deepEqual(after.map((a, i) => a - before[i]), [1, 1, 0, 1]);
    const now = await stored(`app/${user}`);
    assert.equal(now, pending);
    assert.deepEqual(await worksOn(user, now), all);
    const done = recordsOf(user)[0];
    assert.equal(done.status, "succeeded");
    assert.equal(done.resumedBy?.length, 1);
  });

  it("stop, then `dsops rotation rollback`: the old password goes back on the instances of the waves done", async () => {
    const { user, pw, engine } = await setup({ ...failing, rollout: "waves: [25, 50, 100], on_failure: stop", noGrant: [0] });
    try {
      const r = await rotate(engine);
      assert.ok(r.error instanceof RotationError);
      assert.deepEqual(await worksOn(user, pw), ["pg-1", "pg-2", "pg-4"]);
      const rb = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "X", "--reason", "halted rollout"]);
      assert.equal(rb.status, 0, rb.stderr);
    } finally {
      await engine.close();
    }
    assert.deepEqual(await worksOn(user, pw), all);
    assert.equal(await stored(`app/${user}`), pw);
    assert.equal((await store().stagesOf(`app/${user}`)).pending, undefined);
    const rec = recordsOf(user)[0];
    assert.equal(rec.status, "rolled-back");
    assert.match(rec.error ?? "", /rolled back by hand: halted rollout$/);
  });

  it("a process killed between waves (after:wave:1) and within one (before:instance:pg-4) resumes at the right wave", async () => {
    const { user, pw } = await setup({ rollout: "waves: [25, 50, 100]" });
    const killed = cli(["secrets", "rotate", "--env", "prod", "--var", "X"], { DSOPS_FAULT: "after:wave:1" });
    assert.equal(killed.status, null, `expected a kill: ${killed.stderr}`);
    assert.deepEqual(alters(user), [0, 0, 1, 0], "wave 1 (pg-3) done");
    const rec = recordsOf(user)[0];
    assert.equal(rec.status, "running");
    assert.equal(rec.rollout?.wave, 1);
    const pending = await stored(`app/${user}`, rec.newVersionId as string);
    const again = cli(["secrets", "rotate", "--env", "prod", "--var", "X"]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(alters(user), [1, 1, 1, 1], "wave 1 not repeated");
    assert.deepEqual(await worksOn(user, pending), all);
    assert.equal(await stored(`app/${user}`), pending);

    // Killed in wave 3 right before pg-4's apply (its progress already saved): pg-2 (same wave) is done, pg-4 is set on resume.
    const k2 = cli(["secrets", "rotate", "--env", "prod", "--var", "X"], { DSOPS_FAULT: "before:instance:pg-4" });
    assert.equal(k2.status, null, k2.stderr);
    const open = recordsOf(user).find((r) => r.status === "running") as RolloutRecord;
    assert.equal(open.rollout?.wave, 2);
    assert.deepEqual(open.rollout?.applied, ["pg-3", "pg-1", "pg-2", "pg-4"]);
    assert.deepEqual(open.rollout?.verified, ["pg-3", "pg-1", "pg-2"]);
    const a2 = cli(["secrets", "rotate", "--env", "prod", "--var", "X"]);
    assert.equal(a2.status, 0, a2.stderr);
    assert.deepEqual(alters(user), [2, 2, 2, 2]);
    const now = await stored(`app/${user}`);
    assert.deepEqual(await worksOn(user, now), all);
    assert.deepEqual(await worksOn(user, pw), []);
  });

  it("health checks after the last wave fail → every instance gets the old password back (a rollback record through the engine)", async () => {
    const { user, pw, engine, events } = await setup({ ...failing, noGrant: [3] }); // pg-4 is in the last wave: checked only after promote
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, /rolled back: health checks failed: .*pg-4: .*permission denied for table guarded/);
    assert.equal(await stored(`app/${user}`), pw);
    assert.deepEqual(await worksOn(user, pw), all);
    const rb = recordsOf(user).find((x) => x.kind === "rollback") as RolloutRecord;
    assert.equal(rb.status, "succeeded");
    assert.deepEqual(rb.rollout?.waves[0].instances, ["pg-3", "pg-1", "pg-2", "pg-4"]);
    assert.deepEqual(events.map((e) => [e.type, e.trigger]), [["started", undefined], ["rollback", "health"]]);
  });

  it("manual rollback (CLI) after a rollout puts the previous version on every instance", async () => {
    const { user, pw, engine } = await setup({ rollout: "strategy: all" });
    try {
      assert.equal((await rotate(engine)).result?.record.status, "succeeded");
    } finally {
      await engine.close();
    }
    const rotated = await stored(`app/${user}`);
    assert.deepEqual(await worksOn(user, rotated), all);
    const rb = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "X", "--reason", "app broke"]);
    assert.equal(rb.status, 0, rb.stderr);
    assert.equal(await stored(`app/${user}`), pw);
    assert.deepEqual(await worksOn(user, pw), all);
    assert.deepEqual(await worksOn(user, rotated), []);
  });

  it("alternating-users: the stored current credential logs in on every instance at every instant of the rollout", async () => {
    const clock = new ManualClock(Date.parse("2026-06-01T00:00:00Z"));
    const { user, pw, engine } = await setup({ alternating: true, rollout: "waves: [25, 50, 100], monitor: { period: 1m, interval: 1m }", rotation: `health: [{ type: sql }]`, clock });
    let done = false;
    let out: { result?: RotationResult; error?: unknown } = {};
    void rotate(engine).then((x) => ((out = x), (done = true)));
    let checks = 0;
    while (!done) {
      if (clock.sleepers > 0) {
        const cur = JSON.parse(await stored(`app/${user}`)) as { username: string; password: string };
        values.add(cur.password);
        assert.deepEqual(await worksOn(cur.username, cur.password), all, "current works everywhere mid-rollout");
        checks++;
        clock.advance(60000);
      }
      await new Promise((r) => setImmediate(r));
    }
    await engine.close();
    assert.equal(out.result?.record.status, "succeeded", String(out.error));
    assert.ok(checks >= 2, `checked between waves (${checks})`);
    const cur = JSON.parse(await stored(`app/${user}`)) as { username: string; password: string };
    values.add(cur.password);
    assert.equal(cur.username, `${user}_b`);
    assert.deepEqual(await worksOn(cur.username, cur.password), all);
    assert.deepEqual(await worksOn(`${user}_a`, pw), all, "the old user keeps working until the next rotation (alternating-users does not revoke)");
  });

  it("groups: rotated in dependency order (db before web), each group in its own waves", async () => {
    const { user, engine, progress } = await setup({
      rollout: "strategy: canary, groups: [{ name: web, selector: { tier: web }, depends_on: [db] }, { name: db, selector: { tier: db } }]",
    });
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    const rec = recordsOf(user)[0];
    assert.deepEqual(rec.rollout?.waves.map((w) => [w.group, w.label, w.instances]), [
      ["db", "rest", ["pg-1", "pg-2"]],
      ["web", "canary", ["pg-3"]],
      ["web", "rest", ["pg-4"]],
    ]);
    assert.deepEqual(appliedOrder(progress), ["pg-1", "pg-2", "pg-3", "pg-4"]);
    assert.deepEqual(await worksOn(user, await stored(`app/${user}`)), all);
  });

  it("discovery: the instances come from an HTTP endpoint (bearer token from the store); the list is kept in the record", async () => {
    discoveryBody = JSON.stringify({
      instances: pgs.map((p, i) => ({ name: `d${i}`, labels: { canary: i === 1 }, port: p.port, admin: `store://local/pg/admin-${i}` })),
    });
    const { user, engine } = await setup({
      instances: "DISCOVERY",
      rollout: `discovery: { endpoint: "${discoveryUrl}?region=x", headers: { authorization: "store://local/discovery/bearer" } }, strategy: canary`,
    });
    await store().put("discovery/bearer", new Secret(`Bearer ${DISCOVERY_TOKEN}`));
    let r;
    try {
      r = await rotate(engine);
    } finally {
      await engine.close();
    }
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    assert.equal(discoveryAuth[discoveryAuth.length - 1], `Bearer ${DISCOVERY_TOKEN}`);
    const rec = recordsOf(user)[0];
    assert.deepEqual(rec.rollout?.waves.map((w) => w.instances), [["d1"], ["d0", "d2", "d3"]]);
    assert.deepEqual(rec.rollout?.instances.map((i) => i.settings.port), pgs.map((p) => p.port));
    assert.deepEqual(await worksOn(user, await stored(`app/${user}`)), all);

    // A bad answer is an error before anything changes.
    discoveryBody = JSON.stringify([{ labels: {} }]);
    const bad = await setup({ instances: "DISCOVERY", rollout: `discovery: { endpoint: "${discoveryUrl}", headers: { authorization: "store://local/discovery/bearer" } }` });
    let e: unknown;
    try {
      await bad.engine.rotate("prod", "X");
    } catch (x) {
      e = x;
      outputs.push(String(x));
    } finally {
      await bad.engine.close();
    }
    assert.match(String(e), /rollout\.discovery: http:\/\/127\.0\.0\.1:\d+\/instances: instance 0\.name: /);
    assert.deepEqual(await worksOn(bad.user, bad.pw), all);
  });

  it("dry run: lists the waves and changes nothing", async () => {
    const { user, pw } = await setup({ rollout: "strategy: canary" });
    const r = cli(["secrets", "rotate", "--env", "prod", "--var", "X", "--dry-run"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wave 1\/2 \(canary\): set the password of "r\d+" on pg-3/);
    assert.match(r.stdout, /wave 2\/2 \(rest\): set the password of "r\d+" on pg-1, pg-2, pg-4/);
    assert.deepEqual(alters(user), [0, 0, 0, 0]);
    assert.deepEqual(await worksOn(user, pw), all);
  });

  it("config errors: no instances, waves not ascending or not ending at 100, a group cycle, an instance with a type", () => {
    const mk = (rollout: string) => () =>
      parseConfig(`version: 1
secretStores: { local: { type: file, path: ./s.store } }
services: { db: { type: postgresql, admin: "store://local/a" } }
envs: { prod: { X: { from: "store://local/x", rotation: { service: db, user: u, rollout: ${rollout} } } } }
`, { file: join(dir, "other.yaml"), env: { ...process.env, ...env } });
    assert.throws(mk("{ strategy: all }"), /give the instances \(instances: \[\.\.\.\]\) or where to discover them/);
    assert.throws(mk("{ instances: [{ name: a }], waves: [50, 40] }"), /each larger than the one before/);
    assert.throws(mk("{ instances: [{ name: a }], waves: [50] }"), /the last wave must be 100/);
    assert.throws(mk("{ instances: [{ name: a }], groups: [{ name: x, selector: {}, depends_on: [y] }, { name: y, selector: {}, depends_on: [x] }] }"), /in a cycle: x → y → x/);
    assert.throws(mk("{ instances: [{ name: a, type: redis }] }"), /an instance has the type of its service/);
  });

  it("no value in records, events or output", () => {
    const text = [readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8"), JSON.stringify(allEvents), ...outputs].join("\n");
    assert.ok(values.size > 10);
    for (const v of values) assert.ok(!text.includes(v), "a secret value appears in records, events or output");
  });
});
