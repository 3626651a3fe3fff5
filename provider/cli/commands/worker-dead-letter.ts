import type { ComposedRotationEngine } from "../../compose/rotation";
import type { VariableRotation } from "../../rotation/settings";
import type { RotationEvent } from "../../rotation/events";

/**
 * `dsops worker`'s dead-letter consumer: a rotation job that exhausted its retries (failed, or
 * its worker died on the last attempt and the job expired) is copied by pg-boss into the queue
 * `dsops-rotation-dead`. A worker takes that copy, sends the rotation's `dead-lettered` event
 * through its notification channels (env/variable, attempts, the last error as the engine
 * scrubbed it: never a value), then completes the copy (kept as the record of the dead job).
 */

/** The dead-letter copy of a job, as read from pg-boss's table. */
export interface DeadJob {
  /** The copy's id (in the dead-letter queue). */
  id: string;
  data: { env: string; variable: string; dueAt?: string };
  /** The original job's id, its retry count and its last output (`{error}` from our fail, `{value:{message}}` from an expiry). */
  sourceId?: string;
  sourceRetryCount?: number;
  sourceOutput?: unknown;
}

/** The last error of a job's output, shortened; undefined when none was recorded. */
export function lastError(output: unknown): string | undefined {
  if (!output || typeof output !== "object") return typeof output === "string" ? output.slice(0, 500) : undefined;
  const o = output as Record<string, unknown>;
  const v = (o.value && typeof o.value === "object" ? (o.value as Record<string, unknown>) : undefined) ?? {};
  const text = [o.error, o.message, v.error, v.message].find((x): x is string => typeof x === "string");
  return text?.slice(0, 500);
}

/** The `dead-lettered` event of a dead job (names, counts and the scrubbed error only). */
export function deadLetteredEvent(engine: ComposedRotationEngine, job: DeadJob, now: number): RotationEvent {
  const { env, variable } = job.data;
  const v = engine.config.envs[env]?.[variable];
  const spec = v?.spec.rotation as VariableRotation | undefined;
  const error = lastError(job.sourceOutput);
  return {
    type: "dead-lettered",
    title: "Rotation dead-lettered",
    service: spec?.service ?? "-",
    env,
    variable,
    secret: v?.ref ? `store://${v.ref.store}/${v.ref.key}` : "-",
    at: new Date(now).toISOString(),
    status: "dead-lettered",
    attempts: (job.sourceRetryCount ?? 0) + 1,
    jobId: job.sourceId ?? job.id,
    ...(job.data.dueAt ? { dueAt: job.data.dueAt } : {}),
    ...(error ? { error } : {}),
    reason: "the job exhausted its retries and was moved to the dead-letter queue dsops-rotation-dead",
  };
}

/**
 * Send the `dead-lettered` event of `job` through the variable's channels (its
 * `rotation.notifications`) and wait for the deliveries, at most `notifications.wait_ms`.
 * Returns how many channels it went to.
 */
export async function notifyDeadLettered(engine: ComposedRotationEngine, job: DeadJob, now: number): Promise<number> {
  const hub = engine.notifications;
  if (!hub) return 0;
  const spec = engine.config.envs[job.data.env]?.[job.data.variable]?.spec.rotation as VariableRotation | undefined;
  const sent = hub.emit(deadLetteredEvent(engine, job, now), spec?.notifications);
  if (sent.length) await hub.settle();
  return sent.length;
}
