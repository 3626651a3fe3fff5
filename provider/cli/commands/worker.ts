import type { Command } from "commander";
import { setTimeout as delay } from "node:timers/promises";
import type { ComposedRotationEngine } from "../../compose/rotation";
import { DsopsError } from "../../core/errors";
import { evaluateDue, rotateIfDue, rotateRegistered } from "./rotation-run";
import type { RegisteredPolicies } from "./worker-policies";

/**
 * `dsops worker`: a pool of rotation workers on PostgreSQL through pg-boss. `--scheduler` makes the
 * due decision of `rotation run --due` (the same function) and queues each due rotation as a job
 * whose singleton key is `<env>/<variable>@<due instant>` on an `exclusive` queue: however many
 * schedulers run, a due rotation is queued once. Workers take jobs (SKIP LOCKED), rotate through
 * the same path as `rotation run --due` (the due decision asked again under the rotation lock),
 * are retried with exponential backoff, and land in the dead-letter queue after the retries.
 * SIGTERM: take no new job, finish the running ones, exit 0. `--once`: until no job is left.
 */

import { QUEUE, DEAD_LETTER, SCHEMA, databaseUrl } from "./worker-queue";
import type { WorkerOutcome } from "../../metrics/worker";

export { QUEUE, DEAD_LETTER };

interface WorkerFlags {
  databaseUrl?: string;
  concurrency: string;
  scheduler?: boolean;
  once?: boolean;
  env?: string;
  jobTimeout: string;
  retryLimit: string;
  interval: string;
  metricsListen?: string;
}

interface RotationJob {
  env: string;
  variable: string;
  /** A registered RotationPolicy's id (dsops:scheduler): rotated on its own configuration. */
  policy?: string;
  /** ISO-8601: the due instant the job was queued for. */
  dueAt: string;
}

export interface Boss {
  start(): Promise<unknown>;
  stop(o: { graceful: boolean; close: boolean; timeout: number }): Promise<void>;
  on(event: "error", fn: (e: Error) => void): unknown;
  getQueue(name: string): Promise<unknown>;
  createQueue(name: string, o: Record<string, unknown>): Promise<void>;
  send(name: string, data: object, o: Record<string, unknown>): Promise<string | null>;
  fetch(name: string, o: Record<string, unknown>): Promise<Array<{ id: string; data: RotationJob }>>;
  complete(name: string, id: string, data?: object): Promise<unknown>;
  fail(name: string, id: string, data?: object): Promise<unknown>;
  supervise(name?: string): Promise<void>;
  getDb(): { executeSql(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };
}

const out = (line: string) => process.stdout.write(`${line}\n`);

export function register(program: Command): void {
  program
    .command("worker")
    .description("rotation worker pool on PostgreSQL (pg-boss): --scheduler queues due rotations once, workers rotate them with retries and a dead-letter queue")
    .option("--database-url <url>", "PostgreSQL of the job queue: a postgresql:// URL or a store:// reference holding one (default $DSOPS_WORKER_DATABASE_URL)")
    .option("--concurrency <n>", "jobs this process runs at once (0: schedule only)", "1")
    .option("--scheduler", "also make the due decision of every rotation and queue the due ones (every --interval; once with --once)")
    .option("--interval <duration>", "how often the scheduler makes its pass", "1m")
    .option("-e, --env <env>", "only schedule this env's rotations")
    .option("--once", "one scheduler pass, then work until no job is queued, retrying or running; then exit")
    .option("--job-timeout <duration>", "a job running longer (its worker died) is given to another worker; set by the scheduler that queues it", "15m")
    .option("--retry-limit <n>", "retries of a failing job (exponential backoff) before it goes to the dead-letter queue; set by the scheduler that queues it", "3")
    .option("--metrics-listen <host:port>", "serve Prometheus metrics (queue depth by state, oldest waiting job, runs by outcome, rotation metrics) at http://<host:port>/metrics")
    .action(async (o: WorkerFlags, cmd: Command) => {
      const { parseDuration } = require("../../core/duration") as typeof import("../../core/duration");
      const concurrency = intFlag(cmd, "--concurrency", o.concurrency, 0);
      const retryLimit = intFlag(cmd, "--retry-limit", o.retryLimit, 0);
      const jobTimeout = Math.max(1, Math.round(parseDuration(o.jobTimeout, "--job-timeout") / 1000));
      const intervalMs = parseDuration(o.interval, "--interval");
      if (o.metricsListen !== undefined) {
        try {
          (require("./worker-metrics") as typeof import("./worker-metrics")).parseListen(o.metricsListen);
        } catch (e) {
          cmd.error(`error: ${(e as Error).message}`, { exitCode: 2, code: "dsops.badListen" });
        }
      }
      const raw = o.databaseUrl ?? process.env.DSOPS_WORKER_DATABASE_URL;
      if (!raw) cmd.error("error: say which PostgreSQL holds the job queue: --database-url <url|store://…> or DSOPS_WORKER_DATABASE_URL", { exitCode: 2, code: "dsops.missingDatabaseUrl" });
      if (!o.scheduler && concurrency === 0) cmd.error("error: --concurrency 0 without --scheduler does nothing", { exitCode: 2, code: "dsops.nothingToDo" });
      const { composeRotation } = require("../../compose/rotation") as typeof import("../../compose/rotation");
      const { workerConfig, RegisteredPolicies } = require("./worker-policies") as typeof import("./worker-policies");
      const config = workerConfig(cmd, raw as string, o.env);
      if (o.env && !Object.hasOwn(config.envs, o.env)) throw new DsopsError(`--env ${o.env}: no such env in dsops.yaml (envs: ${Object.keys(config.envs).join(", ")})`);
      const url = await databaseUrl(cmd, raw as string);
      const onEvent = (m: string) => process.stderr.write(`${m}\n`);
      const engine = composeRotation(config, { onEvent });
      const policies = new RegisteredPolicies(url, onEvent);
      try {
        await runWorker(engine, url, { ...o, concurrency, retryLimit, jobTimeout, intervalMs, policies });
      } finally {
        await engine.close();
        await policies.close();
      }
    });
}

function intFlag(cmd: Command, flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) cmd.error(`error: ${flag} ${text}: expected a whole number >= ${min}`, { exitCode: 2, code: "dsops.badNumber" });
  return n;
}

async function runWorker(
  engine: ComposedRotationEngine,
  connectionString: string,
  o: { scheduler?: boolean; once?: boolean; env?: string; concurrency: number; retryLimit: number; jobTimeout: number; intervalMs: number; policies: RegisteredPolicies; metricsListen?: string },
): Promise<void> {
  const { PgBoss } = require("pg-boss") as { PgBoss: new (o: Record<string, unknown>) => Boss };
  const tick = Math.max(1, Math.min(60, Math.floor(o.jobTimeout / 2)));
  const boss = new PgBoss({ connectionString, schema: SCHEMA, application_name: "dsops worker", superviseIntervalSeconds: tick, monitorIntervalSeconds: tick, schedule: false });
  boss.on("error", (e) => process.stderr.write(`warning: job queue: ${e.message}\n`));
  try {
    await boss.start();
  } catch (e) {
    throw new DsopsError(`--database-url: cannot use the job queue's PostgreSQL: ${(e as Error).message}`, { hint: "check the URL (or DSOPS_WORKER_DATABASE_URL), that the server is up and that the user may create the schema dsops_worker" });
  }
  const served = await startMetrics(engine, boss, o.metricsListen);
  const count = (outcome: WorkerOutcome) => served?.metrics.count(outcome);
  let stopping = false;
  const onTerm = () => {
    if (!stopping) process.stderr.write("worker: stopping: no new job is taken; the running ones finish\n");
    stopping = true;
  };
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onTerm);
  try {
    await ensureQueue(boss, DEAD_LETTER, {});
    await ensureQueue(boss, QUEUE, { policy: "exclusive", retryLimit: o.retryLimit, retryDelay: 1, retryBackoff: true, retryDelayMax: 300, expireInSeconds: o.jobTimeout, deadLetter: DEAD_LETTER });
    const loops: Array<Promise<void>> = [];
    if (o.scheduler)
      loops.push(
        (async () => {
          for (;;) {
            await schedule(engine, boss, o);
            if (o.once || stopping) return;
            await pause(o.intervalMs, () => stopping);
            if (stopping) return;
          }
        })(),
      );
    // With --once the workers start after the pass, so "no job left" is not read before it queued.
    if (o.once) await Promise.all(loops.splice(0));
    for (let i = 0; i < o.concurrency; i++) loops.push(work(engine, boss, { once: !!o.once, stopping: () => stopping, policies: o.policies, count }));
    await Promise.all(loops);
  } finally {
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onTerm);
    await boss.stop({ graceful: true, close: true, timeout: 30_000 });
    await served?.close();
  }
}

/** `--metrics-listen`: the worker's metrics endpoint (./worker-metrics.ts), sampling the queue through pg-boss's pool. */
async function startMetrics(engine: ComposedRotationEngine, boss: Boss, listen: string | undefined) {
  if (listen === undefined) return undefined;
  const { serveWorkerMetrics } = require("./worker-metrics") as typeof import("./worker-metrics");
  try {
    return await serveWorkerMetrics(engine, (text, values) => boss.getDb().executeSql(text, values), listen);
  } catch (e) {
    await boss.stop({ graceful: false, close: true, timeout: 1000 });
    throw e;
  }
}

async function ensureQueue(boss: Boss, name: string, options: Record<string, unknown>): Promise<void> {
  if (await boss.getQueue(name)) return;
  try {
    await boss.createQueue(name, options);
  } catch (e) {
    // Another worker created it meanwhile.
    if (!(await boss.getQueue(name))) throw e;
  }
}

/** One scheduler pass: every due rotation queued under `<env>/<variable>@<due instant>`. */
async function schedule(engine: ComposedRotationEngine, boss: Boss, o: { env?: string; jobTimeout: number; retryLimit: number; policies: RegisteredPolicies }): Promise<void> {
  // Registered RotationPolicy definitions (dsops:scheduler), unless --env narrows the pass to one env of dsops.yaml.
  await closeExpiredBreakGlassGrants(engine, o.env);
  const registered = o.env ? [] : (await o.policies.evaluate()).map((p) => ({ env: "", variable: "", policy: p.id, decision: p.decision, error: p.error }));
  for (const ev of [...(await evaluateDue(engine, o.env)), ...registered]) {
    const policy = "policy" in ev ? ev.policy : undefined;
    const name = policy ? `policy:${policy}` : `${ev.env}/${ev.variable}`;
    if (!ev.decision) {
      process.stderr.write(`scheduler: ${name}: ${policy ? "blocked" : "cannot decide"}: ${ev.error?.message ?? "unknown"}\n`);
      continue;
    }
    if (ev.decision.state !== "due") {
      if (ev.decision.state === "waiting" || ev.decision.state === "blocked") out(notQueued(name, ev.decision));
      continue;
    }
    const dueAt = new Date(ev.decision.dueAt).toISOString();
    const id = await boss.send(QUEUE, { env: ev.env, variable: ev.variable, dueAt, ...(policy ? { policy } : {}) } satisfies RotationJob, {
      singletonKey: `${name}@${dueAt}`,
      // A job keeps the timeout and retries of the scheduler that queued it.
      expireInSeconds: o.jobTimeout,
      retryLimit: o.retryLimit,
      retryDelay: 1,
      retryBackoff: true,
    });
    out(id ? `queued ${name} (due ${dueAt}) job ${id}` : `already queued ${name} (due ${dueAt})`);
  }
}

/**
 * Break-glass grants whose time ran out: closed by the scheduler pass, each credential rotated
 * (forced) here, as `rotation run --due` does (provider/rotation/governance.ts). A failure is
 * reported and the grant stays open for the next pass.
 */
async function closeExpiredBreakGlassGrants(engine: ComposedRotationEngine, env?: string): Promise<void> {
  const { closeExpiredBreakGlass } = require("../../rotation/governance") as typeof import("../../rotation/governance");
  const { osIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
  const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
  for (const c of await closeExpiredBreakGlass(governanceContext(engine), osIdentity(), env)) {
    const r = c.record;
    if (c.error) process.stderr.write(`scheduler: break-glass ${r.id} (${r.env}/${r.variable}) expired; its forced rotation failed: ${c.error instanceof Error ? c.error.message : String(c.error)}\n`);
    else out(`closed break-glass ${r.id} (${r.env}/${r.variable}): rotated ${r.forcedRotationId ?? "-"} ${r.forcedRotationStatus ?? ""}`);
  }
}

/** The scheduler's line for a due rotation it does not queue: its windows are closed, or a blackout (or a catalogue type) blocks it. */
function notQueued(name: string, d: import("../../rotation/due").RotationDecision): string {
  if (d.state === "blocked") return `not queued ${name}: blocked (${d.reason})`;
  if (d.state === "waiting") return `not queued ${name}: due but waiting for ${d.opensAt !== undefined ? `the window opening at ${new Date(d.opensAt).toISOString()}` : "a window (none opens)"}`;
  return `not queued ${name}`;
}

/** Jobs not finished yet: queued, waiting for a retry, or running (possibly on a dead worker until it expires); dead-letter copies not yet notified. */
async function unfinished(boss: Boss): Promise<number> {
  const r = await boss.getDb().executeSql(`SELECT count(*)::int AS n FROM ${SCHEMA}.job WHERE name = ANY($1) AND state < 'completed'`, [[QUEUE, DEAD_LETTER]]);
  return Number(r.rows[0]?.n ?? 0);
}

async function pause(ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!stop() && Date.now() < end) await delay(Math.min(500, end - Date.now()));
}

async function work(engine: ComposedRotationEngine, boss: Boss, o: { once: boolean; stopping: () => boolean; policies: RegisteredPolicies; count: (outcome: WorkerOutcome) => void }): Promise<void> {
  // The dead-letter queue is looked at when idle and at most every second when busy (one query less per job).
  let deadCheckedAt = 0;
  while (!o.stopping()) {
    if (Date.now() - deadCheckedAt >= 1000) {
      deadCheckedAt = Date.now();
      if (await takeDeadLetter(engine, boss, o.policies)) {
        o.count("dead");
        deadCheckedAt = 0;
        continue;
      }
    }
    const [job] = await boss.fetch(QUEUE, { batchSize: 1 });
    if (!job) {
      deadCheckedAt = 0;
      if (o.once && (await unfinished(boss)) === 0) return;
      // Expire the jobs of dead workers (past --job-timeout) so they are retried.
      await boss.supervise(QUEUE).catch((e: Error) => process.stderr.write(`warning: job queue: expiring jobs of dead workers: ${e.message}\n`));
      await pause(500, o.stopping);
      continue;
    }
    const name = job.data.policy ? `policy:${job.data.policy}` : `${job.data.env}/${job.data.variable}`;
    try {
      const res = job.data.policy ? await rotateRegistered(o.policies, job.data.policy, "worker") : await rotateIfDue(engine, "worker", job.data.env, job.data.variable);
      // Held by a live run elsewhere: retried later (then found rotated, or finished here).
      if ("reason" in res && res.reason === "running elsewhere") throw new DsopsError(`${name}: its rotation is running elsewhere; retried later`);
      await boss.complete(QUEUE, job.id, res);
      o.count(res.result === "skipped" || res.result === "pending approval" || res.result === "denied" ? "skipped" : res.result === "rotated" || res.result.startsWith("soaking until") ? "rotated" : "failed");
      out(`${name}: ${res.result}${"reason" in res ? ` (${res.reason})` : res.versionId ? ` (version ${res.versionId})` : ""} job ${job.id}`);
    } catch (e) {
      const message = e instanceof DsopsError ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`;
      process.stderr.write(`worker: ${name}: failed (job ${job.id}; retried with backoff, then dead-lettered to ${DEAD_LETTER}): ${message}\n`);
      await boss.fail(QUEUE, job.id, { error: e instanceof DsopsError ? e.message : "internal error" });
      o.count("failed");
    }
  }
}

/**
 * One dead-letter copy, if any is waiting: its `dead-lettered` notification is sent, then the
 * copy is completed (it stays in `dsops-rotation-dead` as the record of the dead job). Returns
 * whether one was taken. See ./worker-dead-letter.ts.
 */
async function takeDeadLetter(engine: ComposedRotationEngine, boss: Boss, policies: RegisteredPolicies): Promise<boolean> {
  const [dead] = await boss.fetch(DEAD_LETTER, { batchSize: 1 });
  if (!dead) return false;
  const { notifyDeadLettered, lastError } = require("./worker-dead-letter") as typeof import("./worker-dead-letter");
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const r = await boss.getDb().executeSql(`SELECT source_id::text AS "sourceId", source_retry_count AS "sourceRetryCount", source_output AS "sourceOutput" FROM ${SCHEMA}.job WHERE name = $1 AND id = $2`, [DEAD_LETTER, dead.id]);
  const policy = dead.data.policy;
  const name = policy ? `policy:${policy}` : `${dead.data.env}/${dead.data.variable}`;
  try {
    // A registered RotationPolicy's job is notified through the channels of the policy's own configuration.
    let target = engine;
    let data: RotationJob = dead.data;
    if (policy) {
      const { POLICY_ENV, POLICY_VARIABLE } = require("../../compose/registered-policies") as typeof import("../../compose/registered-policies");
      target = await policies.engineFor(policy);
      data = { ...dead.data, env: POLICY_ENV, variable: POLICY_VARIABLE };
    }
    const job = { id: dead.id, data, ...(r.rows[0] ?? {}) } as import("./worker-dead-letter").DeadJob;
    const n = await notifyDeadLettered(target, job, clock().now());
    await boss.complete(DEAD_LETTER, dead.id, { notified: n });
    process.stderr.write(`worker: ${name}: dead-lettered after ${(job.sourceRetryCount ?? 0) + 1} attempt(s) (job ${job.sourceId ?? dead.id}): ${lastError(job.sourceOutput) ?? "no error recorded"}; notified ${n} channel(s)\n`);
  } catch (e) {
    await boss.fail(DEAD_LETTER, dead.id, { error: e instanceof DsopsError ? e.message : "internal error" });
  }
  return true;
}
