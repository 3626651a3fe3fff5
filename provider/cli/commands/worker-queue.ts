import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import type { QueueSample, WorkerQueueState } from "../../metrics/worker";
import { printJson, table } from "../util";

/**
 * The worker queue as operators see it: `dsops rotation queue` (the jobs waiting, running,
 * retrying, failed and dead, read straight from pg-boss's table; never starts or migrates the
 * queue) and the sample behind `dsops worker --metrics-listen`'s queue gauges.
 */

export const QUEUE = "dsops-rotation";
export const DEAD_LETTER = "dsops-rotation-dead";
export const SCHEMA = "dsops_worker";

/** Runs one SQL statement (pg-boss's `executeSql`, or a `pg` client's `query`). */
export type Sql = (text: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;

/** One job as `dsops rotation queue` lists it. */
export interface QueueRow {
  env: string;
  variable: string;
  /** waiting (created) | retrying (retry) | running (active) | failed | dead (dead-letter queue) */
  state: "waiting" | "retrying" | "running" | "failed" | "dead";
  /** The due instant the job was queued for (ISO-8601). */
  dueAt?: string;
  /** Attempts made (the running one counts). */
  attempts: number;
  /** Attempts it may have in all (1 + retries). */
  maxAttempts: number;
  createdAt: string;
  startedAt?: string;
  /** retrying: when the next attempt may start. */
  nextAttemptAt?: string;
  /** The last error recorded (scrubbed by the engine; shortened). */
  lastError?: string;
  jobId: string;
}

const STATE: Record<string, QueueRow["state"]> = { created: "waiting", retry: "retrying", active: "running", failed: "failed" };
const isoOf = (v: unknown): string | undefined => (v instanceof Date ? v.toISOString() : typeof v === "string" ? new Date(v).toISOString() : undefined);

/** The error text of a job's output (`{error}` from our fail, `{value:{message}}` from pg-boss's expiry). */
function errorOf(output: unknown): string | undefined {
  if (!output || typeof output !== "object") return undefined;
  const o = output as Record<string, unknown>;
  const v = (o.value && typeof o.value === "object" ? (o.value as Record<string, unknown>) : undefined) ?? {};
  const text = [o.error, o.message, v.error, v.message].find((x): x is string => typeof x === "string");
  return text?.slice(0, 500);
}

/**
 * The jobs not done: the rotation queue's waiting, retrying, running and failed ones (a failed
 * job already copied to the dead-letter queue is listed once, as dead), and every dead-letter copy.
 */
export async function queueRows(sql: Sql): Promise<QueueRow[]> {
  const r = await sql(
    `SELECT j.id::text AS id, j.name, j.state::text AS state, j.data, j.retry_count, j.retry_limit, j.created_on, j.started_on, j.start_after, j.output,
            j.source_id::text AS source_id, j.source_retry_count, j.source_output
       FROM ${SCHEMA}.job j
      WHERE (j.name = $1 AND j.state IN ('created', 'retry', 'active', 'failed')
             AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.job d WHERE d.name = $2 AND d.source_id = j.id))
         OR j.name = $2
      ORDER BY j.created_on, j.id`,
    [QUEUE, DEAD_LETTER],
  );
  return r.rows.map((x) => {
    const data = (x.data ?? {}) as { env?: string; variable?: string; dueAt?: string };
    const dead = x.name === DEAD_LETTER;
    const retries = Number(dead ? (x.source_retry_count ?? 0) : x.retry_count);
    const state = dead ? "dead" : (STATE[String(x.state)] ?? "failed");
    const lastError = errorOf(dead ? x.source_output : x.output);
    return {
      env: data.env ?? "?",
      variable: data.variable ?? "?",
      state,
      ...(data.dueAt ? { dueAt: data.dueAt } : {}),
      // pg-boss counts a retry when it is queued: a retrying job has made retry_count + 1 attempts.
      attempts: state === "waiting" ? retries : retries + 1,
      maxAttempts: dead ? retries + 1 : Number(x.retry_limit) + 1,
      createdAt: isoOf(x.created_on) ?? "",
      ...(x.started_on && state === "running" ? { startedAt: isoOf(x.started_on) } : {}),
      ...(state === "retrying" ? { nextAttemptAt: isoOf(x.start_after) } : {}),
      ...(lastError ? { lastError } : {}),
      jobId: String(dead ? (x.source_id ?? x.id) : x.id),
    } as QueueRow;
  });
}

/** Counts by state and the age of the oldest waiting job (the database's clock), for the worker's gauges. */
export async function queueSample(sql: Sql): Promise<QueueSample> {
  const r = await sql(
    `SELECT CASE WHEN name = $2 THEN 'dead' ELSE state::text END AS state, count(*)::int AS n,
            COALESCE(EXTRACT(EPOCH FROM (now() - min(created_on) FILTER (WHERE name = $1 AND state IN ('created', 'retry')))), 0)::float8 AS oldest
       FROM ${SCHEMA}.job WHERE name = $1 OR name = $2 GROUP BY 1`,
    [QUEUE, DEAD_LETTER],
  );
  const counts: Record<WorkerQueueState, number> = { created: 0, retry: 0, active: 0, failed: 0, dead: 0 };
  let oldest = 0;
  for (const x of r.rows) {
    const s = String(x.state) as WorkerQueueState;
    if (s in counts) counts[s] += Number(x.n);
    oldest = Math.max(oldest, Number(x.oldest ?? 0));
  }
  return { counts, oldestWaitingSeconds: oldest };
}

/** The URL as given, or the value of the store:// reference that holds it (never printed). */
export async function databaseUrl(cmd: Command, raw: string): Promise<string> {
  if (!raw.startsWith("store://")) return raw;
  const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
  const { withResolver } = require("../util") as typeof import("../util");
  const ref = parseStoreUri(raw);
  return withResolver(cmd, async (r) => (await r.resolveRef(ref)).value.reveal());
}

/** `dsops rotation queue`. */
export function registerQueue(rotation: Command): void {
  rotation
    .command("queue")
    .description("the dsops worker job queue: waiting, running, retrying, failed and dead rotation jobs")
    .option("--database-url <url>", "PostgreSQL of the job queue: a postgresql:// URL or a store:// reference holding one (default $DSOPS_WORKER_DATABASE_URL)")
    .option("--json", "machine-readable output")
    .action(async (o: { databaseUrl?: string; json?: boolean }, cmd: Command) => {
      const raw = o.databaseUrl ?? process.env.DSOPS_WORKER_DATABASE_URL;
      if (!raw) cmd.error("error: say which PostgreSQL holds the job queue: --database-url <url|store://…> or DSOPS_WORKER_DATABASE_URL", { exitCode: 2, code: "dsops.missingDatabaseUrl" });
      const { Client } = require("pg") as typeof import("pg");
      const client = new Client({ connectionString: await databaseUrl(cmd, raw as string), application_name: "dsops rotation queue" });
      client.on("error", () => undefined);
      try {
        await client.connect();
      } catch (e) {
        throw new DsopsError(`--database-url: cannot connect to the job queue's PostgreSQL: ${(e as Error).message}`, { hint: "check the URL (or DSOPS_WORKER_DATABASE_URL) and that the server is up" });
      }
      try {
        const has = await client.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [`${SCHEMA}.job`]);
        const rows = has.rows[0]?.t ? await queueRows((text, values) => client.query(text, values)) : [];
        if (o.json) return printJson(rows);
        if (!has.rows[0]?.t) {
          process.stdout.write(`no job queue in this database yet (the schema ${SCHEMA} is created when a dsops worker first starts)\n`);
          return;
        }
        if (!rows.length) {
          process.stdout.write("no rotation job waiting, running, retrying, failed or dead\n");
          return;
        }
        const t = [["VARIABLE", "DUE", "STATE", "ATTEMPTS", "STARTED/CREATED", "LAST ERROR"]];
        for (const x of rows)
          t.push([
            `${x.env}/${x.variable}`,
            x.dueAt ?? "-",
            x.state + (x.nextAttemptAt ? ` (next ${x.nextAttemptAt})` : ""),
            `${x.attempts}/${x.maxAttempts}`,
            x.startedAt ? `started ${x.startedAt}` : `created ${x.createdAt}`,
            x.lastError ? (x.lastError.length > 100 ? `${x.lastError.slice(0, 99)}…` : x.lastError).replace(/\s+/g, " ") : "-",
          ]);
        process.stdout.write(table(t));
      } finally {
        await client.end().catch(() => undefined);
      }
    });
}
