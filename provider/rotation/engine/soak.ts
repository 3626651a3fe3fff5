import { DsopsError } from "../../core/errors";
import { scrub } from "../../core/secret";
import type { RotationStrategyName } from "../settings";
import { resolveStrategy } from "../strategies/index";
import type { EngineContext, RunState } from "./context";
import { healthContext, healthPortOf, observed } from "./health-gate";
import { readStage } from "./step";
import type { Subject } from "./wiring";

/** How a soak watches a rotated secret's health checks. */
export interface SoakOptions {
  /** How long to keep checking after the first round (0: one round). */
  readonly periodMs: number;
  readonly intervalMs: number;
  /** Consecutive failed rounds that end the soak as unhealthy. */
  readonly failures: number;
}

/** The end of a soak: healthy, or the failure (never a value); `checks` is 0 when the secret has no health checks. */
export interface SoakOutcome {
  readonly healthy: boolean;
  readonly failure?: string;
  readonly checks: number;
}

/**
 * Soak (multi-environment chains, ../chain): watch the `rotation.health` checks of a secret
 * rotated earlier by rotation `rotationId`, with the credential current now, through the same
 * health port and context as the health gate after a rotation. Changes nothing: what to do
 * with an unhealthy outcome is the caller's.
 */
export async function soakWatch(ctx: EngineContext, subject: Subject, rotationId: string, o: SoakOptions): Promise<SoakOutcome> {
  const checks = subject.policy.health;
  if (!checks?.length || !ctx.healthChecks) return { healthy: true, checks: 0 };
  const rec = await subject.history.get(rotationId);
  if (!rec) throw new DsopsError(`${subject.secret}: rotation ${rotationId} is not in the history of ${subject.path}`);
  const current = await readStage(subject, "current");
  if (!current) throw new DsopsError(`${subject.secret}: no current version to watch`);
  const strategy = resolveStrategy(subject.policy, rec.strategy as RotationStrategyName);
  const plan = strategy.plan({ policy: subject.policy, target: subject.target, current: current.value, path: subject.path });
  const st: RunState = { subject, strategy, rec, plan, ...(plan.old ? { pending: plan.old } : {}), secrets: [current.value] };
  const outcome = await healthPortOf(ctx, subject.path).monitor(checks, { period: `${Math.max(0, Math.round(o.periodMs))}ms`, interval: `${Math.max(1, Math.round(o.intervalMs))}ms`, failures: o.failures }, healthContext(ctx, st), {
    clock: ctx.clock,
    onResult: observed(ctx, st),
    onRound: (round, failed) => ctx.log(`${subject.secret}: soak after rotation ${rec.id}: health round ${round}: ${failed ? `unhealthy (${scrub(failed, st.secrets)})` : "healthy"}`),
  });
  return outcome.healthy ? { healthy: true, checks: checks.length } : { healthy: false, failure: scrub(outcome.failure ?? "unhealthy", st.secrets), checks: checks.length };
}
