// The rotations, the SQL health checks and the rollbacks run on a real PostgreSQL 15 primary with a real streaming standby (pg_basebackup -R), and on a real MariaDB.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { composeRotation } from "../../provider/compose/rotation";
import { DsopsMetrics } from "../../provider/metrics/index";
import { RotationError } from "../../provider/rotation/engine";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import type { Connection } from "mysql2/promise";
import { nativePasswordHash } from "../../provider/rotation/targets/mysql";
import { haveMariaDb, startMariaDb, type RunningMariaDb } from "../support/mariadb";
import { dsopsRun } from "../support/cli";
import { havePostgres, startPostgres, startStandby, type RunningPostgres, type RunningStandby } from "../support/postgres";

describe("SQL health types (connection, query_latency, connection_pool, replication_lag, replication_connection) on a real PostgreSQL primary and streaming standby", function () {
  this.timeout(180000);
  let pg: RunningPostgres;
  let standby: RunningStandby;
  let admin: Client;
  let dir: string;
  const env = { DSOPS_FILE_KEY: "sqlhealth-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "health" };
  const values = new Set<string>();
  const messages: string[] = [];
  let n = 0;
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  /** A fresh role and variable whose rotation has these health checks (a YAML flow list) and one failed round to roll back. */
  async function setup(health: string) {
    const user = `sh${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    await admin.query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
    await store().put(`app/${user}`, new Secret(pw));
    const yaml = configFor(user, health);
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const metrics = new DsopsMetrics();
    const engine = composeRotation(config, { env: { ...process.env, ...env }, clock: systemClock, metrics });
    return { user, pw, engine, metrics };
  }

  const configFor = (user: string, health: string) => `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation: { service: app-db, user: ${user}, health: ${health}, monitor: { failures: 1 } }
`;

  const current = async (user: string) => {
    const v = (await store().get({ key: `app/${user}`, version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  const previous = async (user: string) => {
    const v = (await store().get({ key: `app/${user}`, version: "previous" })).value.reveal();
    values.add(v);
    return v;
  };

  /** Rotate expecting a health rollback: the error, and the old password is current and logs in at the primary, the rotated one does not. */
  async function rolledBack(s: Awaited<ReturnType<typeof setup>>): Promise<string> {
    let err: unknown;
    try {
      await s.engine.rotate("prod", "X");
    } catch (e) {
      err = e;
    } finally {
      await s.engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    const message = (err as Error).message;
    messages.push(message);
    assert.match(message, /rolled back: health checks failed: 1 consecutive failed health check round\(s\): /);
    assert.equal(await current(s.user), s.pw, "the store holds the old value again");
    assert.equal(await pg.canLogin(s.user, s.pw), true, "the old password logs in at the primary");
    const rotated = await previous(s.user);
    assert.notEqual(rotated, s.pw);
    assert.equal(await pg.canLogin(s.user, rotated), false, "the rotated password no longer logs in");
    return message;
  }

  before(async function () {
    if (!havePostgres()) this.skip();
    // max_connections 20 (17 for users that are not superusers): connection_pool can exhaust it.
    pg = await startPostgres({ maxConnections: 20 });
    standby = await startStandby(pg, { maxConnections: 20 });
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE TABLE writes (x int); GRANT SELECT ON writes TO PUBLIC");
    dir = mkdtempSync(join(tmpdir(), "dsops-sqlhealth-"));
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await standby?.stop();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("every type is healthy on a healthy primary and streaming standby: the rotation succeeds and the new password logs in at both", async () => {
    const replicas = `[{ host: 127.0.0.1, port: ${standby.port} }]`;
    const s = await setup(
      `[{ type: connection, name: connection-test, max_connect_ms: 10000 }, { type: query_latency, name: query-performance, threshold_ms: 5000, query: "SELECT count(*) FROM writes" }, ` +
        `{ type: connection_pool, name: pool, connections: 4, max_connections: 100, warning_threshold_pct: 95 }, { type: replication_lag, name: lag, max_lag_seconds: 30, replicas: ${replicas} }, ` +
        `{ type: replication_connection, name: replica-login, replicas: ${replicas} }, { type: active_transactions, name: transaction-count, max_transactions: 50 }]`,
    );
    let rec: RotationRecord;
    try {
      rec = (await s.engine.rotate("prod", "X")).record;
    } finally {
      await s.engine.close();
    }
    assert.equal(rec.status, "succeeded", rec.error);
    const now = await current(s.user);
    assert.notEqual(now, s.pw);
    assert.equal(await pg.canLogin(s.user, now), true);
    assert.equal(await standby.canLogin(s.user, now), true, "the rotated password works at the standby");
    assert.ok(pg.log().includes("SELECT count(*) FROM writes"), "query_latency ran its query at the server");
    const status = await s.metrics.registry.getSingleMetricAsString("dsops_health_check_status");
    for (const [check, type] of [["connection-test", "connection"], ["query-performance", "query_latency"], ["pool", "connection_pool"], ["lag", "replication_lag"], ["replica-login", "replication_connection"], ["transaction-count", "active_transactions"]])
      assert.ok(status.includes(`dsops_health_check_status{service="app-db",env="prod",check="${check}",type="${type}"} 1`), `${check} ran and was healthy:\n${status}`);
  });

  it("query_latency: a query slower than threshold_ms (pg_sleep) rolls the rotation back", async () => {
    const s = await setup(`[{ type: query_latency, name: query-performance, threshold_ms: 200, query: "SELECT pg_sleep(1.5)" }]`);
    const m = await rolledBack(s);
    assert.match(m, /query-performance: service "app-db": query "SELECT pg_sleep\(1\.5\)" took \d+ ms \(threshold_ms 200\)/);
  });

  it("query_latency: a query that fails as the rotated user rolls back and says why", async () => {
    await admin.query("CREATE TABLE IF NOT EXISTS private_t (x int)");
    const s = await setup(`[{ type: query_latency, query: "SELECT * FROM private_t" }]`);
    const m = await rolledBack(s);
    assert.match(m, /query_latency-0: service "app-db": query "SELECT \* FROM private_t" failed: .*permission denied for table private_t/);
  });

  it("connection_pool: more connections in use than max_connections allows → exhausted, rolled back", async () => {
    const s = await setup(`[{ type: connection_pool, name: pool-exhaustion-check, connections: 3, max_connections: 3 }]`);
    const m = await rolledBack(s);
    assert.match(m, /pool-exhaustion-check: service "app-db": connection pool exhausted: \d+ connections in use, max_connections allows 3 \(with 3 opened by this check\)/);
  });

  it("connection_pool: the server's own max_connections too low for the pool → logins refused, rolled back", async () => {
    const s = await setup(`[{ type: connection_pool, name: pool, connections: 25 }]`);
    const m = await rolledBack(s);
    assert.match(m, /pool: service "app-db": \d+ of 25 concurrent logins with the new credential failed: service "app-db" at 127\.0\.0\.1:\d+: login as "sh\d+" failed: .*(too many clients|connection slots are reserved)/);
    // the check closed its connections: the pool is usable again
    assert.equal(await pg.canLogin(s.user, s.pw), true);
  });

  it("active_transactions: more open transactions than max_transactions → rolled back", async () => {
    const open = await Promise.all([1, 2, 3].map(async () => {
      const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
      await c.connect();
      await c.query("BEGIN");
      await c.query("SELECT txid_current()");
      return c;
    }));
    try {
      const s = await setup(`[{ type: active_transactions, name: transaction-count, max_transactions: 2 }]`);
      const m = await rolledBack(s);
      assert.match(m, /transaction-count: service "app-db": \d+ open transactions \(max_transactions 2\)/);
    } finally {
      for (const c of open) await c.query("COMMIT").then(() => c.end());
    }
  });

  it("replication_lag: replay paused at the standby while the primary writes → lag over max_lag, rolled back", async () => {
    await standby.catchUp();
    const sb = new Client({ host: standby.host, port: standby.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await sb.connect();
    try {
      await sb.query("SELECT pg_wal_replay_pause()");
      await admin.query("INSERT INTO writes SELECT generate_series(1, 1000)");
      const s = await setup(`[{ type: replication_lag, name: replica-lag-check, max_lag: 2s, replicas: [{ port: ${standby.port} }] }]`);
      const m = await rolledBack(s);
      assert.match(
        m,
        new RegExp(`replica-lag-check: service "app-db": replica 127\\.0\\.0\\.1:${standby.port} lags more than 2 s: it has not replayed the primary's WAL up to [0-9A-F]+/[0-9A-F]+ \\(\\d+ bytes behind; replay is paused; last transaction replayed: `),
      );
    } finally {
      await sb.query("SELECT pg_wal_replay_resume()").catch(() => undefined);
      await sb.end();
    }
    await standby.catchUp();
  });

  it("replication_connection and replication_lag: a replica that is no standby (the primary itself) fails, rolled back", async () => {
    const s = await setup(`[{ type: replication_connection, name: rc, replicas: [{ port: ${pg.port} }] }, { type: replication_lag, name: rl, replicas: [{ port: ${pg.port} }] }]`);
    const m = await rolledBack(s);
    assert.match(m, new RegExp(`rc: service "app-db": replica 127\\.0\\.0\\.1:${pg.port} is not a standby \\(pg_is_in_recovery\\(\\) is false\\)`));
    assert.match(m, new RegExp(`rl: service "app-db": replica 127\\.0\\.0\\.1:${pg.port} is not a standby`));
  });

  it("through the CLI: `dsops secrets rotate` runs the checks; healthy → exit 0, query_latency over threshold → exit 1 naming the check, the service and the cause, no password", async () => {
    const replicas = `[{ port: ${standby.port} }]`;
    const ok = await setup(
      `[{ type: replication_connection, name: replica-login, replicas: ${replicas} }, { type: replication_lag, name: lag, max_lag: 30s, replicas: ${replicas} }, { type: connection_pool, connections: 2, warning_threshold_pct: 1 }]`,
    );
    await ok.engine.close();
    const a = await dsopsRun(["secrets", "rotate", "--env", "prod", "--var", "X"], { cwd: dir, env });
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stderr, /warning: service "app-db": \d+% of the connections in use \(\d+ of 17; warning_threshold_pct 1\)/, "over warning_threshold_pct: a warning, and still healthy");
    const now = await current(ok.user);
    assert.notEqual(now, ok.pw);
    assert.equal(await standby.canLogin(ok.user, now), true);
    const bad = await setup(`[{ type: query_latency, name: query-performance, threshold_ms: 100, query: "SELECT pg_sleep(1)" }]`);
    await bad.engine.close();
    const b = await dsopsRun(["secrets", "rotate", "--env", "prod", "--var", "X"], { cwd: dir, env });
    assert.equal(b.status, 1, b.stderr);
    assert.match(b.stderr, /query-performance: service "app-db": query "SELECT pg_sleep\(1\)" took \d+ ms \(threshold_ms 100\)/);
    assert.equal(await current(bad.user), bad.pw);
    assert.equal(await pg.canLogin(bad.user, bad.pw), true);
    const rotated = await previous(bad.user);
    for (const v of [ok.pw, now, bad.pw, rotated, pg.adminPassword]) assert.ok(!(a.stdout + a.stderr + b.stdout + b.stderr).includes(v), "no password in the CLI's output");
  });

  it("in a rollout, each check runs at every instance and its failure names the instance", async () => {
    const s = await setup(`[{ type: query_latency, name: slow, threshold_ms: 100, query: "SELECT pg_sleep(1)" }], rollout: { strategy: all, instances: [{ name: a, port: ${pg.port} }, { name: b, port: ${pg.port} }] }`);
    let err: unknown;
    try {
      await s.engine.rotate("prod", "X");
    } catch (e) {
      err = e;
    } finally {
      await s.engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    messages.push((err as Error).message);
    assert.match((err as Error).message, /slow: service "app-db\[a\]": query "SELECT pg_sleep\(1\)" took \d+ ms \(threshold_ms 100\); service "app-db\[b\]": query "SELECT pg_sleep\(1\)" took \d+ ms/);
    assert.equal(await current(s.user), s.pw);
    assert.equal(await pg.canLogin(s.user, s.pw), true);
  });

  it("replication_connection: the standby killed → the check fails naming the replica, the rotation rolls back (old password at the primary, old value in the store)", async () => {
    const s = await setup(`[{ type: replication_connection, name: replica-login, timeout_ms: 5000, replicas: [{ host: 127.0.0.1, port: ${standby.port} }] }]`);
    standby.kill();
    const m = await rolledBack(s);
    assert.match(m, new RegExp(`replica-login: service "app-db": replica 127\\.0\\.0\\.1:${standby.port}: service "app-db" at 127\\.0\\.0\\.1:${standby.port}: admin login as "postgres" failed: .*ECONNREFUSED`));
  });

  it("no password in the rotation history, the errors, nor the servers' statement logs", () => {
    const text = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8") + messages.join("\n") + pg.log() + standby.log();
    assert.ok(values.size >= 10, String(values.size));
    for (const v of values) assert.ok(!text.includes(v), "a password is in the history or an error");
    assert.ok(!text.includes(pg.adminPassword));
  });
});

describe("SQL health types on a real MariaDB (connection, query_latency, connection_pool; replication types refused)", function () {
  this.timeout(180000);
  let db: RunningMariaDb;
  let admin: Connection;
  let dir: string;
  const env = { DSOPS_FILE_KEY: "sqlhealth-my-" + Math.random().toString(36).slice(2), DSOPS_USER: "health" };
  let n = 0;
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function rotate(health: string): Promise<{ user: string; pw: string; error?: Error }> {
    const user = `mh${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    await admin.query("CREATE USER ?@'%' IDENTIFIED BY PASSWORD ?", [user, nativePasswordHash(pw)]);
    await store().put(`app/${user}`, new Secret(pw));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: mysql, host: 127.0.0.1, port: ${db.port}, admin: "store://local/mysql/admin" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation: { service: app-db, user: ${user}, health: ${health}, monitor: { failures: 1 } }
`;
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const engine = composeRotation(config, { env: { ...process.env, ...env }, clock: systemClock });
    try {
      await engine.rotate("prod", "X");
      return { user, pw };
    } catch (e) {
      return { user, pw, error: e as Error };
    } finally {
      await engine.close();
    }
  }
  const current = async (user: string) => (await store().get({ key: `app/${user}`, version: "current" })).value.reveal();

  before(async function () {
    if (!haveMariaDb()) this.skip();
    db = await startMariaDb();
    admin = await db.connect(db.adminUser, db.adminPassword);
    dir = mkdtempSync(join(tmpdir(), "dsops-sqlhealth-my-"));
    await store().put("mysql/admin", new Secret(JSON.stringify({ username: db.adminUser, password: db.adminPassword })));
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connection, query_latency and connection_pool are healthy: the rotation succeeds", async () => {
    const r = await rotate(
      `[{ type: connection, max_connect_ms: 10000 }, { type: query_latency, threshold_ms: 5000, query: "SELECT 42" }, { type: connection_pool, connections: 3 }, { type: active_transactions, max_transactions: 50 }]`,
    );
    assert.equal(r.error, undefined, String(r.error));
    const now = await current(r.user);
    assert.notEqual(now, r.pw);
    assert.equal(await db.canLogin(r.user, now), true);
    assert.ok(db.log().includes("SELECT 42"), "query_latency ran its query at the server");
  });

  it("query_latency over threshold_ms (SELECT SLEEP) and connection_pool over max_connections roll back to the old password", async () => {
    const slow = await rotate(`[{ type: query_latency, name: slow, threshold_ms: 200, query: "SELECT SLEEP(1.5)" }]`);
    assert.ok(slow.error instanceof RotationError, String(slow.error));
    assert.match(slow.error.message, /slow: service "app-db": query "SELECT SLEEP\(1\.5\)" took \d+ ms \(threshold_ms 200\)/);
    assert.equal(await current(slow.user), slow.pw);
    assert.equal(await db.canLogin(slow.user, slow.pw), true);
    const pool = await rotate(`[{ type: connection_pool, name: pool, connections: 2, max_connections: 2 }]`);
    assert.ok(pool.error instanceof RotationError, String(pool.error));
    assert.match(pool.error.message, /pool: service "app-db": connection pool exhausted: \d+ connections in use, max_connections allows 2/);
    assert.equal(await current(pool.user), pool.pw);
    assert.equal(await db.canLogin(pool.user, pool.pw), true);
  });

  it("active_transactions: more open InnoDB transactions than max_transactions → rolled back", async () => {
    await admin.query("CREATE TABLE IF NOT EXISTS mysql.dsops_trx_t (x int) ENGINE=InnoDB");
    const open: Connection[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await db.connect(db.adminUser, db.adminPassword);
            await c.query("START TRANSACTION");
      await c.query("INSERT INTO mysql.dsops_trx_t VALUES (1)");
      open.push(c);
    }
    try {
      const r = await rotate(`[{ type: active_transactions, name: trx, max_transactions: 2 }]`);
      assert.ok(r.error instanceof RotationError, String(r.error));
      assert.match(r.error.message, /trx: service "app-db": \d+ open transactions \(max_transactions 2\)/);
      assert.equal(await current(r.user), r.pw);
    } finally {
      for (const c of open) await c.query("ROLLBACK").then(() => c.end());
    }
  });

  it("replication_lag on a MySQL service fails saying it checks PostgreSQL replicas", async () => {
    const r = await rotate(`[{ type: replication_lag, replicas: [{ port: ${db.port} }] }]`);
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match(r.error.message, /replication_lag-0: service "app-db": replication_lag checks PostgreSQL streaming replicas; this service is mysql/);
    assert.equal(await current(r.user), r.pw);
  });
});

describe("a SQL health type on a service that is not SQL (a script target)", function () {
  this.timeout(60000);
  it("plan warns; the rotation fails naming the check and the service, and rolls back to the old value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-sqlhealth-script-"));
    const env = { DSOPS_FILE_KEY: "sqlhealth-script-" + Math.random().toString(36).slice(2), DSOPS_USER: "health" };
    try {
      writeFileSync(join(dir, "rotate.sh"), '#!/bin/sh\ncat > /dev/null\necho \'{"success": true}\'\n', { mode: 0o755 });
      writeFileSync(
        join(dir, "dsops.yaml"),
        'secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  job: { type: script, command: ./rotate.sh }\nenvs:\n  dev:\n    TOKEN: { from: "store://s/app/token", rotation: { service: job, user: app, health: [{ type: connection, name: db-connection }], monitor: { failures: 1 } } }\n',
      );
      const plan = await dsopsRun(["plan", "--env", "dev"], { cwd: dir, env });
      assert.equal(plan.status, 0, plan.stderr);
      assert.match(plan.stderr, /envs\.dev\.TOKEN\.rotation\.health\[0\]\.type: a connection check needs a SQL service \(postgresql, mysql\); service "job" is script, so the check fails and every rotation rolls back/);
      const first = "Initial-script-value-1";
      assert.equal((await dsopsRun(["secrets", "set", "--store", "s", "--key", "app/token"], { cwd: dir, env, input: first })).status, 0);
      const r = await dsopsRun(["secrets", "rotate", "--env", "dev", "--var", "TOKEN"], { cwd: dir, env });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /db-connection: service "job" is not a SQL service \(postgresql, mysql\) with a new credential: a connection check cannot run there/);
      const now = await dsopsRun(["get", "--env", "dev", "--var", "TOKEN"], { cwd: dir, env });
      assert.equal(now.stdout.trim(), first, "the old value is current again");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
