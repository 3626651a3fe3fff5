import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { isAbsolute, resolve } from "node:path";
import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
import type { HealthContext, HealthPort } from "../rotation/ports";
import { runKubernetesPodReady } from "./kubernetes-check";
import { expectedText, httpAsk, plainUrl, statusExpected } from "./http";
import { isHttpApiCheck, runHttpApiCheck } from "./http-checks";
import { durationMs, type HealthCheckSettings, type MonitorSettings } from "./settings";
import { isSqlHealthCheck, runSqlHealthCheck } from "./sql-checks";

export * from "./settings";

/**
 * Health checks after a rotation: `sql` (log in with the new credential and run a query, through
 * the target), `http` (status, latency, body), `script` (exit 0 = healthy). Never given a value:
 * the sql check goes through the engine's callback, scripts get names and version ids only.
 * dsops's SQL types (`connection`, `query_latency`, `connection_pool`, `active_transactions`, `replication_lag`,
 * `replication_connection`) live in ./sql-checks.ts.
 */

export type { HealthContext };

export interface HealthResult {
  readonly check: string;
  readonly type: HealthCheckSettings["type"];
  readonly healthy: boolean;
  /** Why it is unhealthy (no value). */
  readonly message?: string;
  readonly seconds: number;
}

export const checkName = (c: HealthCheckSettings, i: number): string => c.name ?? `${c.type}-${i}`;

/** The DSOPS_* variables a script check gets (names and ids; never the secret). */
export function scriptEnv(ctx: HealthContext, check: string, attempt: number): Record<string, string> {
  const e: Record<string, string | undefined> = {
    DSOPS_SERVICE_NAME: ctx.service,
    DSOPS_ENV: ctx.env,
    DSOPS_VARIABLE: ctx.variable,
    DSOPS_SECRET_REF: ctx.secret,
    DSOPS_ROTATION_ID: ctx.rotationId,
    DSOPS_STRATEGY: ctx.strategy,
    DSOPS_OLD_VERSION: ctx.oldVersionId,
    DSOPS_NEW_VERSION: ctx.newVersionId,
    DSOPS_OLD_PRINCIPAL: ctx.oldPrincipal,
    DSOPS_NEW_PRINCIPAL: ctx.newPrincipal,
    DSOPS_HEALTH_CHECK: check,
    DSOPS_HEALTH_ATTEMPT: String(attempt),
  };
  return Object.fromEntries(Object.entries(e).filter((x): x is [string, string] => x[1] !== undefined));
}

async function runSql(c: Extract<HealthCheckSettings, { type: "sql" }>, ctx: HealthContext): Promise<string | undefined> {
  if (!ctx.sql) return `service "${ctx.service}" cannot log in with a credential (no sql check possible)`;
  await ctx.sql(c.query, c.timeout_ms);
  return undefined;
}

async function runHttp(c: Extract<HealthCheckSettings, { type: "http" }>): Promise<string | undefined> {
  const r = await httpAsk({ url: c.url, method: c.method, headers: c.headers, timeoutMs: c.timeout_ms });
  if ("error" in r) return r.error;
  if (!statusExpected(r.status, c.expect_status)) return `${plainUrl(c.url)}: HTTP ${r.status} (expected ${expectedText(c.expect_status)})`;
  if (c.max_latency_ms !== undefined && r.ms > c.max_latency_ms) return `${plainUrl(c.url)}: answered in ${Math.round(r.ms)} ms (limit ${c.max_latency_ms} ms)`;
  if (c.body_match !== undefined && !new RegExp(c.body_match).test(r.body)) return `${plainUrl(c.url)}: body does not match /${c.body_match}/`;
  return undefined;
}

function runScript(c: Extract<HealthCheckSettings, { type: "script" }>, ctx: HealthContext, name: string, attempt: number): Promise<string | undefined> {
  const [cmd, args] = typeof c.command === "string" ? ["/bin/sh", ["-c", c.command]] : [c.command[0], c.command.slice(1)];
  const cwd = c.cwd ? (isAbsolute(c.cwd) ? c.cwd : resolve(ctx.configDir, c.cwd)) : ctx.configDir;
  const shown = typeof c.command === "string" ? c.command : c.command.join(" ");
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...c.env, ...scriptEnv(ctx, name, attempt) }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString("utf8")).slice(-400)));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      done(`script "${shown}": no exit within ${c.timeout_ms} ms (killed)`);
    }, c.timeout_ms);
    child.on("error", (e) => {
      clearTimeout(timer);
      done(`script "${shown}": ${e.message}`);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return done(undefined);
      const tail = err.trim().split("\n").slice(-2).join(" | ").slice(0, 200);
      done(`script "${shown}" exited ${code ?? signal}${tail ? `: ${tail}` : ""}`);
    });
  });
}

/** Run one check; never throws. */
export async function runCheck(c: HealthCheckSettings, index: number, ctx: HealthContext, attempt = 1): Promise<HealthResult> {
  const name = checkName(c, index);
  const t0 = performance.now();
  let message: string | undefined;
  try {
    message = isSqlHealthCheck(c)
      ? await runSqlHealthCheck(c, ctx)
      : isHttpApiCheck(c)
        ? await runHttpApiCheck(c, ctx)
        : c.type === "kubernetes_pod_ready"
          ? await runKubernetesPodReady(c, ctx)
          : c.type === "sql"
            ? await runSql(c, ctx)
            : c.type === "http"
              ? await runHttp(c)
              : await runScript(c, ctx, name, attempt);
  } catch (e) {
    message = errorMessage(e);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { check: name, type: c.type, healthy: message === undefined, ...(message !== undefined ? { message: `${name}: ${message}` } : {}), seconds };
}

/** One round: every check at once; healthy when all are. */
export async function runRound(checks: readonly HealthCheckSettings[], ctx: HealthContext, attempt = 1): Promise<HealthResult[]> {
  return Promise.all(checks.map((c, i) => runCheck(c, i, ctx, attempt)));
}

export interface MonitorOutcome {
  readonly healthy: boolean;
  readonly rounds: number;
  /** The failures of the last round (when unhealthy). */
  readonly failure?: string;
}

/**
 * Check right away, then every `interval` of the project clock until `period` has passed and
 * the last round was healthy. `failures` consecutive failed rounds end it unhealthy (the engine
 * rolls back). A run that is unhealthy when the period ends keeps checking until it recovers or
 * reaches the limit: monitoring never ends on a failed round.
 */
export async function monitorHealth(
  checks: readonly HealthCheckSettings[],
  monitor: MonitorSettings | undefined,
  ctx: HealthContext,
  o: { clock: Clock; onResult?: (r: HealthResult, round: number) => void; onRound?: (round: number, failed: string | undefined) => void },
): Promise<MonitorOutcome> {
  const m = monitor ?? { period: 0, interval: "30s", failures: 3 };
  const periodMs = durationMs(m.period);
  const intervalMs = Math.max(durationMs(m.interval), 1);
  const start = o.clock.now();
  let consecutive = 0;
  for (let round = 1; ; round++) {
    const results = await runRound(checks, ctx, round);
    for (const r of results) o.onResult?.(r, round);
    const failed = results.filter((r) => !r.healthy).map((r) => r.message as string);
    const failure = failed.length ? failed.join("; ") : undefined;
    o.onRound?.(round, failure);
    consecutive = failure ? consecutive + 1 : 0;
    if (consecutive >= m.failures) return { healthy: false, rounds: round, failure: `${consecutive} consecutive failed health check round(s): ${failure}` };
    if (!failure && o.clock.now() - start >= periodMs) return { healthy: true, rounds: round };
    await o.clock.sleep(intervalMs);
  }
}

/** The health port the rotation engine runs its checks through (plugged in by provider/compose/rotation.ts). */
export const healthPort: HealthPort = { monitor: monitorHealth };
