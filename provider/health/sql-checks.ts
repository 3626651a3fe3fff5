import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { errorMessage } from "../core/errors";
import type { HealthContext, HealthSqlAccess, HealthSqlConnection, HealthSqlEndpoint } from "../rotation/ports";
import { durationMs, type HealthCheckSettings } from "./settings";

/**
 * The SQL health types dsops's examples use, on the rotated SQL service (postgresql, mysql):
 * `connection`, `query_latency`, `connection_pool`, `active_transactions` (both dialects) and `replication_lag`,
 * `replication_connection` (PostgreSQL streaming replicas). Logins come from the engine
 * (`HealthContext.databases`): the new credential never reaches this file. In a rollout each
 * check runs at every instance. A failure says the service, the server and the cause.
 */

export type SqlHealthCheck = Extract<HealthCheckSettings, { type: "connection" | "query_latency" | "connection_pool" | "replication_lag" | "replication_connection" | "active_transactions" }>;

const SQL_HEALTH_TYPES: ReadonlySet<string> = new Set(["connection", "query_latency", "connection_pool", "replication_lag", "replication_connection", "active_transactions"]);

export const isSqlHealthCheck = (c: HealthCheckSettings): c is SqlHealthCheck => SQL_HEALTH_TYPES.has(c.type);

const at = (e: HealthSqlEndpoint) => `${e.host}:${e.port}`;

/** Open, use, always close. */
async function using<T>(open: Promise<HealthSqlConnection>, f: (c: HealthSqlConnection) => Promise<T>): Promise<T> {
  const c = await open;
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

/** Run a statement; its failure says what it was for. */
async function ask(c: HealthSqlConnection, sql: string, what: string, values?: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
  try {
    return await c.query(sql, values);
  } catch (e) {
    throw new Error(`${what} failed: ${errorMessage(e)}`, { cause: e });
  }
}

async function connection(c: Extract<SqlHealthCheck, { type: "connection" }>, db: HealthSqlAccess): Promise<string | undefined> {
  const t0 = performance.now();
  const conn = await db.login(c.timeout_ms);
  const ms = performance.now() - t0;
  try {
    await ask(conn, "SELECT 1", "SELECT 1 as the rotated user");
  } finally {
    await conn.end();
  }
  if (c.max_connect_ms !== undefined && ms > c.max_connect_ms) return `connecting with the new credential took ${Math.round(ms)} ms (max_connect_ms ${c.max_connect_ms})`;
  return undefined;
}

async function queryLatency(c: Extract<SqlHealthCheck, { type: "query_latency" }>, db: HealthSqlAccess): Promise<string | undefined> {
  return using(db.login(c.timeout_ms), async (conn) => {
    const t0 = performance.now();
    await ask(conn, c.query, `query "${c.query}"`);
    const ms = performance.now() - t0;
    return ms > c.threshold_ms ? `query "${c.query}" took ${Math.round(ms)} ms (threshold_ms ${c.threshold_ms})` : undefined;
  });
}

/** Connections in use at the server and how many it accepts from users that are not superusers. */
async function serverConnections(db: HealthSqlAccess, conn: HealthSqlConnection): Promise<{ inUse: number; max: number }> {
  if (db.dialect === "postgresql") {
    const [r] = await ask(
      conn,
      "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS in_use, " +
        "current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - coalesce(current_setting('reserved_connections', true)::int, 0) AS max",
      "reading the server's connections",
    );
    return { inUse: Number(r.in_use), max: Number(r.max) };
  }
  const [status] = await ask(conn, "SHOW GLOBAL STATUS LIKE 'Threads_connected'", "reading the server's connections");
  const [limit] = await ask(conn, "SELECT @@max_connections AS max", "reading max_connections");
  return { inUse: Number(status?.Value), max: Number(limit?.max) };
}

async function connectionPool(c: Extract<SqlHealthCheck, { type: "connection_pool" }>, db: HealthSqlAccess): Promise<string | undefined> {
  const logins = await Promise.allSettled(Array.from({ length: c.connections }, () => db.login(c.timeout_ms)));
  const open = logins.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = logins.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (failed.length) return `${failed.length} of ${c.connections} concurrent logins with the new credential failed: ${errorMessage(failed[0])}`;
    const { inUse, max } = await serverConnections(db, open[0]);
    const limit = c.max_connections !== undefined ? Math.min(c.max_connections, max) : max;
    const source = c.max_connections !== undefined && c.max_connections <= max ? "max_connections" : "the server's max_connections";
    if (inUse >= limit) return `connection pool exhausted: ${inUse} connections in use, ${source} allows ${limit} (with ${c.connections} opened by this check)`;
    const pct = Math.floor((inUse * 100) / limit);
    if (pct >= c.warning_threshold_pct) process.stderr.write(`warning: service "${db.service}": ${pct}% of the connections in use (${inUse} of ${limit}; warning_threshold_pct ${c.warning_threshold_pct})\n`);
    return undefined;
  } finally {
    await Promise.all(open.map((x) => x.end()));
  }
}

/** The primary's current WAL position (as the admin, at the service). */
async function primaryLsn(db: HealthSqlAccess, timeoutMs: number): Promise<string> {
  return using(db.admin(timeoutMs), async (conn) => String((await ask(conn, "SELECT pg_current_wal_lsn()::text AS lsn", "reading the primary's WAL position (pg_current_wal_lsn)"))[0].lsn));
}

interface ReplayState {
  readonly standby: boolean;
  readonly caughtUp: boolean;
  readonly behind: number | undefined;
  readonly paused: boolean;
  readonly lastReplayedAt: Date | null;
}

async function replayState(conn: HealthSqlConnection, lsn: string): Promise<ReplayState> {
  const [r] = await ask(
    conn,
    "SELECT pg_is_in_recovery() AS standby, coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up, " +
      "pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::float8 AS behind, " +
      "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused, pg_last_xact_replay_timestamp() AS last_replayed_at",
    "reading the replica's replay position (pg_last_wal_replay_lsn)",
    [lsn],
  );
  return { standby: r.standby === true, caughtUp: r.caught_up === true, behind: r.behind === null ? undefined : Number(r.behind), paused: r.paused === true, lastReplayedAt: (r.last_replayed_at as Date | null) ?? null };
}

/** Poll the replica until it has replayed `lsn` or `withinMs` has passed; the last state seen. */
async function waitForReplay(conn: HealthSqlConnection, lsn: string, withinMs: number): Promise<ReplayState> {
  const t0 = performance.now();
  for (;;) {
    const s = await replayState(conn, lsn);
    if (!s.standby || s.caughtUp) return s;
    const left = withinMs - (performance.now() - t0);
    if (left <= 0) return s;
    await delay(Math.min(100, left));
  }
}

const notStandby = (r: HealthSqlEndpoint) => `replica ${at(r)} is not a standby (pg_is_in_recovery() is false)`;

function behindText(s: ReplayState): string {
  const parts = [s.behind !== undefined ? `${Math.round(s.behind)} bytes behind` : "nothing replayed yet"];
  if (s.paused) parts.push("replay is paused");
  parts.push(s.lastReplayedAt ? `last transaction replayed: ${s.lastReplayedAt.toISOString()}` : "no transaction replayed since it started");
  return parts.join("; ");
}

function postgresOnly(c: SqlHealthCheck, db: HealthSqlAccess): string | undefined {
  return db.dialect === "postgresql" ? undefined : `${c.type} checks PostgreSQL streaming replicas; this service is ${db.dialect}`;
}

async function replicationLag(c: Extract<SqlHealthCheck, { type: "replication_lag" }>, db: HealthSqlAccess): Promise<string | undefined> {
  const refused = postgresOnly(c, db);
  if (refused) return refused;
  const maxLagMs = c.max_lag !== undefined ? durationMs(c.max_lag) : c.max_lag_seconds !== undefined ? c.max_lag_seconds * 1000 : 10000;
  const lsn = await primaryLsn(db, c.timeout_ms);
  const failures = await Promise.all(
    c.replicas.map(async (r) => {
      try {
        return await using(db.admin(c.timeout_ms, r), async (conn) => {
          const s = await waitForReplay(conn, lsn, maxLagMs);
          if (!s.standby) return notStandby(r);
          return s.caughtUp ? undefined : `replica ${at(r)} lags more than ${maxLagMs / 1000} s: it has not replayed the primary's WAL up to ${lsn} (${behindText(s)})`;
        });
      } catch (e) {
        return `replica ${at(r)}: ${errorMessage(e)}`;
      }
    }),
  );
  const f = failures.filter((x): x is string => x !== undefined);
  return f.length ? f.join("; ") : undefined;
}

async function replicationConnection(c: Extract<SqlHealthCheck, { type: "replication_connection" }>, db: HealthSqlAccess): Promise<string | undefined> {
  const refused = postgresOnly(c, db);
  if (refused) return refused;
  const lsn = await primaryLsn(db, c.timeout_ms);
  const failures = await Promise.all(
    c.replicas.map(async (r) => {
      try {
        const problem = await using(db.admin(c.timeout_ms, r), async (conn) => {
          const [w] = await ask(conn, "SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver", "reading the replica's WAL receiver (pg_stat_wal_receiver)");
          const s = await replayState(conn, lsn);
          if (!s.standby) return notStandby(r);
          if (w?.receiver !== "streaming") return `replica ${at(r)} is not streaming from the primary (WAL receiver: ${typeof w?.receiver === "string" ? w.receiver : "not running"})`;
          // The new password reaches the replica through the WAL: wait (up to timeout_ms) for it.
          const after = await waitForReplay(conn, lsn, c.timeout_ms);
          return after.caughtUp ? undefined : `replica ${at(r)} has not replayed the rotation within ${c.timeout_ms} ms (${behindText(after)})`;
        });
        if (problem) return problem;
        await using(db.login(c.timeout_ms, r), (conn) => ask(conn, "SELECT 1", `SELECT 1 as the rotated user at replica ${at(r)}`));
        return undefined;
      } catch (e) {
        return `replica ${at(r)}: ${errorMessage(e)}`;
      }
    }),
  );
  const f = failures.filter((x): x is string => x !== undefined);
  return f.length ? f.join("; ") : undefined;
}

/** Open transactions, as the admin sees them (other sessions' transactions are hidden from an ordinary user); this check's own session is not counted. */
async function activeTransactions(c: Extract<SqlHealthCheck, { type: "active_transactions" }>, db: HealthSqlAccess): Promise<string | undefined> {
  const [r] = await using(db.admin(c.timeout_ms), (conn) =>
    db.dialect === "postgresql"
      ? ask(conn, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()", "counting open transactions (pg_stat_activity)")
      : ask(conn, "SELECT count(*) AS n FROM information_schema.innodb_trx WHERE trx_mysql_thread_id <> CONNECTION_ID()", "counting open transactions (information_schema.innodb_trx)"),
  );
  const n = Number(r?.n);
  return n > c.max_transactions ? `${n} open transactions (max_transactions ${c.max_transactions})` : undefined;
}

async function runOne(c: SqlHealthCheck, db: HealthSqlAccess): Promise<string | undefined> {
  switch (c.type) {
    case "connection":
      return connection(c, db);
    case "query_latency":
      return queryLatency(c, db);
    case "connection_pool":
      return connectionPool(c, db);
    case "replication_lag":
      return replicationLag(c, db);
    case "replication_connection":
      return replicationConnection(c, db);
    case "active_transactions":
      return activeTransactions(c, db);
  }
}

/** Run a SQL health check at the service (each instance in a rollout): undefined when healthy, else why, naming the service. */
export async function runSqlHealthCheck(c: SqlHealthCheck, ctx: HealthContext): Promise<string | undefined> {
  const dbs = ctx.databases;
  if (!dbs?.length) return `service "${ctx.service}" is not a SQL service (postgresql, mysql) with a new credential: a ${c.type} check cannot run there`;
  const failures: string[] = [];
  for (const db of dbs) {
    const m = await runOne(c, db).catch((e: unknown) => errorMessage(e));
    if (m !== undefined) failures.push(m.startsWith(`service "${db.service}"`) ? m : `service "${db.service}": ${m}`);
  }
  return failures.length ? failures.join("; ") : undefined;
}
