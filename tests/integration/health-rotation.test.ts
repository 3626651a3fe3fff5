// HTTP health endpoints are a local HTTP server that records requests; the rotations, the SQL checks and the rollbacks run on a real PostgreSQL 15.
import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock, systemClock, type Clock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { DsopsMetrics } from "../../provider/metrics/index";
import type { RotationEvent } from "../../provider/notify/types";
import { composeRotation } from "../../provider/compose/rotation";
import { RotationError, type RotationResult } from "../../provider/rotation/engine";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";

describe("health checks after rotation: sql, http, script; monitoring; rollback through the engine (real PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let web: HttpReceiver;
  const env = { DSOPS_FILE_KEY: "health-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "health" };
  const values = new Set<string>();
  let n = 0;
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function canLogin(user: string, password: string): Promise<boolean> {
    const c = new Client({ host: pg.host, port: pg.port, user, password, database: "postgres" });
    c.on("error", () => undefined);
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** A fresh role and variable with this rotation block (YAML flow fields after `service, user`). */
  async function setup(rotationExtra: string, clock: Clock = systemClock) {
    const user = `h${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    await admin.query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
    await store().put(`app/${user}`, new Secret(pw));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation: { service: app-db, user: ${user}, ${rotationExtra} }
`;
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const events: RotationEvent[] = [];
    const metrics = new DsopsMetrics();
    const engine = composeRotation(config, { env: { ...process.env, ...env }, clock, metrics, onRotationEvent: (e) => events.push(e) });
    return { user, pw, engine, events, metrics };
  }

  /** Run a rotation on a ManualClock: advance it by `stepMs` whenever the engine sleeps on it, until the rotation ends. */
  async function drive(p: Promise<RotationResult>, clock: ManualClock, stepMs: number): Promise<{ result?: RotationResult; error?: unknown; advances: number }> {
    let done = false;
    let result: RotationResult | undefined;
    let error: unknown;
    p.then((r) => (result = r), (e: unknown) => (error = e)).finally(() => (done = true));
    let advances = 0;
    while (!done) {
      if (clock.sleepers > 0) {
        clock.advance(stepMs);
        advances++;
      }
      await new Promise((r) => setImmediate(r));
    }
    return { ...(result ? { result } : {}), ...(error ? { error } : {}), advances };
  }

  const current = async (user: string) => {
    const v = (await store().get({ key: `app/${user}`, version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  function records(): RotationRecord[] {
    const m = new Map<string, RotationRecord>();
    for (const l of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RotationRecord).id, JSON.parse(l) as RotationRecord);
    return [...m.values()];
  }

  before(async () => {
    pg = await startPostgres();
    web = await startHttpReceiver();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE TABLE guarded (x int)");
    dir = mkdtempSync(join(tmpdir(), "dsops-health-"));
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await web?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    web.reset();
    web.setBehaviour(() => 200);
    web.setBody("ok");
  });

  it("sql: logs in with the new credential and runs the query; healthy → succeeded, status gauge 1", async () => {
    const { user, pw, engine, metrics } = await setup(`health: [{ type: sql, name: whoami, query: "SELECT current_user" }]`);
    try {
      const r = await engine.rotate("prod", "X");
      assert.equal(r.record.status, "succeeded");
    } finally {
      await engine.close();
    }
    const now = await current(user);
    assert.notEqual(now, pw);
    assert.equal(await canLogin(user, now), true);
    assert.match(await metrics.registry.getSingleMetricAsString("dsops_health_check_status"), /dsops_health_check_status\{service="app-db",env="prod",check="whoami",type="sql"\} 1/);
    assert.match(await metrics.registry.getSingleMetricAsString("dsops_health_check_duration_seconds"), /dsops_health_check_duration_seconds_count\{service="app-db",env="prod",check="whoami",type="sql"\} 1/);
    assert.ok(pg.log().includes("SELECT current_user"), "the query ran at the server");
  });

  it("sql: a failing query rolls back through the engine: the old password is current and works again, the new one does not", async () => {
    const { user, pw, engine, events, metrics } = await setup(`health: [{ type: sql, query: "SELECT * FROM guarded" }], monitor: { failures: 1 }`);
    let err: unknown;
    try {
      await engine.rotate("prod", "X");
    } catch (e) {
      err = e;
    } finally {
      await engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    assert.match((err as Error).message, /rolled back: health checks failed: 1 consecutive failed health check round\(s\): sql-0: .*permission denied for table guarded/);
    const prev = (await store().get({ key: `app/${user}`, version: "previous" })).value.reveal();
    values.add(prev);
    assert.equal(await current(user), pw, "the old version is current again");
    assert.equal(await canLogin(user, pw), true);
    assert.equal(await canLogin(user, prev), false, "the rotated password no longer logs in");
    const recs = records().filter((r) => r.variable === "X" && r.secret === `store://local/app/${user}`);
    const rot = recs.find((r) => r.kind === "rotate") as RotationRecord;
    const rb = recs.find((r) => r.kind === "rollback") as RotationRecord;
    assert.equal(rot.status, "rolled-back");
    assert.match(rot.error ?? "", /^health checks failed: /);
    assert.equal(rb.status, "succeeded");
    assert.equal(rb.newVersionId, rot.oldVersionId);
    assert.equal(rb.reason, `automatic: health checks failed after rotation ${rot.id}`);
    assert.deepEqual(events.map((e) => [e.type, e.trigger]), [["started", undefined], ["rollback", "health"]]);
    assert.match(await metrics.registry.getSingleMetricAsString("dsops_rollback_total"), /dsops_rollback_total\{service="app-db",env="prod",trigger="health"\} 1/);
    assert.match(await metrics.registry.getSingleMetricAsString("dsops_health_check_status"), /check="sql-0",type="sql"\} 0/);
  });

  it("http: monitoring on the project clock; 3 consecutive failed rounds (of 5 one minute apart) roll back", async () => {
    const clock = new ManualClock(Date.parse("2026-06-01T00:00:00Z"));
    web.setBehaviour((i) => (i < 2 ? 200 : 503));
    const { user, pw, engine, events } = await setup(`health: [{ type: http, url: "${web.url}/healthz?token=abc", expect_status: 200 }], monitor: { period: 10m, interval: 1m, failures: 3 }`, clock);
    let out;
    try {
      out = await drive(engine.rotate("prod", "X"), clock, 60000);
    } finally {
      await engine.close();
    }
    assert.ok(out.error instanceof RotationError, String(out.error));
    assert.match((out.error as Error).message, /3 consecutive failed health check round\(s\): http-0: http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 503 \(expected 200\)/);
    assert.ok(!(out.error as Error).message.includes("token=abc"), "the query string is not shown");
    assert.equal(web.requests.length, 5);
    assert.equal(await current(user), pw);
    assert.deepEqual(events.map((e) => e.type), ["started", "rollback"]);
  });

  it("http: healthy for the whole period (4 rounds in 3 minutes) → succeeded; one failed round then healthy does not roll back", async () => {
    const clock = new ManualClock(Date.parse("2026-06-01T00:00:00Z"));
    const { engine } = await setup(`health: [{ type: http, url: "${web.url}/h", body_match: "^ok$" }], monitor: { period: 3m, interval: 1m, failures: 2 }`, clock);
    try {
      const a = await drive(engine.rotate("prod", "X"), clock, 60000);
      assert.equal(a.result?.record.status, "succeeded", String(a.error));
      assert.equal(web.requests.length, 4);
      web.reset();
      web.setBehaviour((i) => (i === 1 ? 500 : 200));
      const b = await drive(engine.rotate("prod", "X"), clock, 60000);
      assert.equal(b.result?.record.status, "succeeded", String(b.error));
      assert.equal(web.requests.length, 4);
    } finally {
      await engine.close();
    }
  });

  it("http: latency over max_latency_ms, and a body that does not match, are unhealthy", async () => {
    web.setBehaviour(() => ({ status: 200, delayMs: 300 }));
    const slow = await setup(`health: [{ type: http, url: "${web.url}/slow", max_latency_ms: 100 }], monitor: { failures: 1 }`);
    try {
      await assert.rejects(slow.engine.rotate("prod", "X"), /slow: answered in \d+ ms \(limit 100 ms\)/);
    } finally {
      await slow.engine.close();
    }
    assert.equal(await current(slow.user), slow.pw);
    web.setBehaviour(() => 200);
    web.setBody("status: degraded");
    const body = await setup(`health: [{ type: http, name: body, url: "${web.url}/status", body_match: "status: ok" }], monitor: { failures: 1 }`);
    try {
      await assert.rejects(body.engine.rotate("prod", "X"), /body: http:\/\/127\.0\.0\.1:\d+\/status: body does not match \/status: ok\//);
    } finally {
      await body.engine.close();
    }
    assert.equal(await current(body.user), body.pw);
  });

  it("script: exit 0 is healthy and gets DSOPS_* names and versions (never the secret); exit 3 rolls back", async () => {
    const script = join(dir, "check.sh");
    const out = join(dir, "check.out");
    writeFileSync(script, `#!/bin/sh\n{ echo "ARGS=$*"; env | grep '^DSOPS_' | grep -v '^DSOPS_FILE_KEY=' | sort; } > "${out}"\nexit "\${CHECK_EXIT:-0}"\n`);
    chmodSync(script, 0o755);
    const ok = await setup(`health: [{ type: script, command: ["${script}", "--quick"] }]`);
    let rec: RotationRecord;
    try {
      rec = (await ok.engine.rotate("prod", "X")).record;
    } finally {
      await ok.engine.close();
    }
    assert.equal(rec.status, "succeeded");
    const seen = readFileSync(out, "utf8");
    assert.match(seen, /^ARGS=--quick$/m);
    assert.match(seen, /^DSOPS_SERVICE_NAME=app-db$/m);
    assert.match(seen, /^DSOPS_ENV=prod$/m);
    assert.match(seen, /^DSOPS_VARIABLE=X$/m);
    assert.match(seen, new RegExp(`^DSOPS_NEW_VERSION=${rec.newVersionId}$`, "m"));
    assert.match(seen, new RegExp(`^DSOPS_OLD_VERSION=${rec.oldVersionId}$`, "m"));
    assert.match(seen, new RegExp(`^DSOPS_ROTATION_ID=${rec.id}$`, "m"));
    assert.match(seen, new RegExp(`^DSOPS_NEW_PRINCIPAL=${ok.user}$`, "m"));
    const newPw = await current(ok.user);
    assert.ok(!seen.includes(newPw) && !seen.includes(ok.pw), "no password reaches the script");

    const bad = await setup(`health: [{ type: script, name: smoke, command: "echo failing >&2; exit 3", env: { CHECK_EXIT: "3" } }], monitor: { failures: 1 }`);
    try {
      await assert.rejects(bad.engine.rotate("prod", "X"), /smoke: script "echo failing >&2; exit 3" exited 3: failing/);
    } finally {
      await bad.engine.close();
    }
    assert.equal(await current(bad.user), bad.pw);
    assert.equal(await canLogin(bad.user, bad.pw), true);
  });

  it("no value in the history's messages", () => {
    const text = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    assert.ok(values.size >= 10);
    for (const v of values) assert.ok(!text.includes(v));
  });
});
