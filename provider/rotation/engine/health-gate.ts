import { scrub } from "../../core/secret";
import { DsopsError, errorMessage } from "../../core/errors";
import { RotationError } from "../errors";
import { progressOf, waveName, type RolloutProgress, type RolloutRecord } from "../rollout/plan";
import type { HealthCheckResult, HealthContext, HealthPort, HealthSqlAccess } from "../ports";
import { SqlTarget } from "../targets/sql";
import type { Target } from "../targets/types";
import type { RotationRecord } from "../types";
import { newRotationId, type EngineContext, type RunState } from "./context";
import { emit } from "./publish";
import { recordSubject } from "./wiring";

/**
 * The health gate (`rotation.health`, through the health port): checks after promote and
 * between rollout waves; checks that keep failing roll the rotation back (a rollback record run
 * by the manual rollback machine, reached through `ctx.ops`).
 */

/** The health port, or the error that says the engine was built without one (checked before a rotation starts). */
export function healthPortOf(ctx: EngineContext, path: string): HealthPort {
  if (ctx.health) return ctx.health;
  throw new DsopsError(`${path}.health: this rotation engine has no health checker, so the health checks cannot run`, {
    hint: "build the engine with composeRotation() (provider/compose/rotation), which plugs in provider/health, or pass healthChecks: false to skip them",
  });
}

/** A check's result, published on the bus (metrics count it). */
export function observed(ctx: EngineContext, st: RunState): (r: HealthCheckResult) => void {
  const { subject } = st;
  return (r) => ctx.bus.emit("health-check", { service: subject.target.name, env: subject.env, check: r.check, type: r.type, healthy: r.healthy, seconds: r.seconds });
}

/**
 * `rotation.health`: with the new credential current, check at once and then for the
 * monitoring period; `monitor.failures` consecutive failed rounds roll the rotation back.
 */
export async function healthGate(ctx: EngineContext, st: RunState): Promise<void> {
  const { subject, rec } = st;
  const checks = subject.policy.health;
  if (!checks?.length || !ctx.healthChecks) return;
  const health = healthPortOf(ctx, subject.path);
  ctx.log(`${subject.secret}: rotation ${rec.id}: ${checks.length} health check(s)`);
  const outcome = await health.monitor(
    checks,
    subject.policy.monitor,
    healthContext(ctx, st),
    {
      clock: ctx.clock,
      onResult: observed(ctx, st),
      onRound: (round, failed) => ctx.log(`${subject.secret}: rotation ${rec.id}: health round ${round}: ${failed ? `unhealthy (${scrub(failed, st.secrets)})` : "healthy"}`),
    },
  );
  if (outcome.healthy) return;
  await healthRollback(ctx, st, scrub(outcome.failure ?? "unhealthy", st.secrets));
}

/** Health checks failed after promote: make the old version current again (a rollback record), revoke a created credential, record and tell. */
export async function healthRollback(ctx: EngineContext, st: RunState, why: string): Promise<never> {
  const { rec, subject } = st;
  rec.error = `health checks failed: ${why}`;
  if (!rec.oldVersionId) {
    rec.status = "failed";
    rec.finishedAt = ctx.nowIso();
    await subject.history.save(rec);
    throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${rec.error}; there is no previous version to roll back to`, rec.id);
  }
  ctx.log(`${subject.secret}: rotation ${rec.id}: ${rec.error}; rolling back to version ${rec.oldVersionId}`);
  rec.status = "rolled-back";
  rec.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
  const rb: RotationRecord = {
    id: newRotationId(ctx.clock),
    kind: "rollback",
    ...recordSubject(subject),
    strategy: "rollback",
    base: st.strategy.shape.name,
    who: ctx.who,
    reason: `automatic: health checks failed after rotation ${rec.id}`,
    startedAt: ctx.nowIso(),
    status: "running",
    steps: [],
    ...(rec.newVersionId ? { oldVersionId: rec.newVersionId } : {}),
    newVersionId: rec.oldVersionId,
  };
  const p = progressOf(rec);
  if (p) (rb as RolloutRecord).rollout = { ...p, waves: [{ label: "all", instances: [...p.verified] }], wave: 0, applied: [], verified: [], failed: [], restored: [] };
  try {
    await ctx.ops.runManualRollback(subject, rb);
  } catch (e) {
    rec.status = "failed";
    rec.error = `${rec.error}; the rollback ${rb.id} failed: ${scrub(errorMessage(e), st.secrets)}`;
    await subject.history.save(rec);
    throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${rec.error}`, rec.id);
  }
  // A credential minted next to the old one (two-secret) is revoked: the old one is current again.
  const minted = st.pending;
  if (st.plan.apply === "create" && minted && minted.principal !== st.plan.old?.principal && subject.target.revoke)
    await subject.target.revoke(minted).catch((e: unknown) => ctx.log(`${subject.secret}: could not revoke ${minted.principal}: ${scrub(errorMessage(e), st.secrets)}`));
  emit(ctx, "rollback", subject, rec, { trigger: "health", status: "rolled-back" });
  throw new RotationError(`${subject.secret}: rotation ${rec.id} rolled back: ${rec.error}`, rec.id, {
    hint: `rollback ${rb.id} made version ${rec.oldVersionId} current again; see \`dsops secrets history\``,
  });
}

/** Health checks of one wave (`rotation.health`, monitored per `rollout.monitor`): a failure message, or undefined when healthy. */
export async function waveHealth(ctx: EngineContext, st: RunState, p: RolloutProgress, w: number, instances: string[]): Promise<string | undefined> {
  const { subject, rec } = st;
  const checks = subject.policy.health;
  if (!checks?.length || !ctx.healthChecks) return undefined;
  const outcome = await healthPortOf(ctx, subject.path).monitor(checks, subject.policy.rollout?.monitor ?? subject.policy.monitor, healthContext(ctx, st, instances), {
    clock: ctx.clock,
    onResult: observed(ctx, st),
    onRound: (round, failed) => ctx.log(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: health round ${round}: ${failed ? `unhealthy (${scrub(failed, st.secrets)})` : "healthy"}`),
  });
  return outcome.healthy ? undefined : scrub(outcome.failure ?? "unhealthy", st.secrets);
}

/** What the health checks know; in a rollout the sql check logs in at each of `instances` (default: every instance holding the new credential). */
export function healthContext(ctx: EngineContext, st: RunState, instances?: string[]): HealthContext {
  const { subject, rec } = st;
  const cred = st.pending;
  const p = progressOf(rec);
  let sql: HealthContext["sql"];
  const databases: HealthSqlAccess[] = [];
  if (cred) {
    const targets = p ? (instances ?? p.verified).map((n) => ctx.wiring.instanceTarget(subject, p, n)) : [subject.target];
    for (const t of targets) if (t instanceof SqlTarget) databases.push(t.healthAccess(cred));
  }
  if (cred && p) {
    const names = instances ?? p.verified;
    sql = async (query: string, timeoutMs: number) => {
      const errors: string[] = [];
      for (const n of names) {
        const t = ctx.wiring.instanceTarget(subject, p, n);
        if (!t.verify) continue;
        await t.verify(cred, { query, timeoutMs }).catch((e: unknown) => errors.push(`${n}: ${errorMessage(e)}`));
      }
      if (errors.length) throw new Error(errors.join("; "));
    };
  } else if (cred && subject.target.verify) {
    const target = subject.target;
    const verify = target.verify as NonNullable<Target["verify"]>;
    sql = (query: string, timeoutMs: number) => verify.call(target, cred, { query, timeoutMs });
  }
  return {
    service: subject.target.name,
    env: subject.env,
    variable: subject.variable,
    secret: subject.secret,
    rotationId: rec.id,
    strategy: rec.strategy,
    ...(rec.oldVersionId ? { oldVersionId: rec.oldVersionId } : {}),
    ...(rec.newVersionId ? { newVersionId: rec.newVersionId } : {}),
    ...(rec.oldPrincipal ? { oldPrincipal: rec.oldPrincipal } : {}),
    ...(rec.newPrincipal ? { newPrincipal: rec.newPrincipal } : {}),
    configDir: ctx.config.dir,
    ...(sql ? { sql } : {}),
    ...(cred ? { credential: cred } : {}),
    ...(databases.length ? { databases } : {}),
  };
}
