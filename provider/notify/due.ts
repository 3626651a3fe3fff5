import { DsopsError } from "../core/errors";
import type { VariableRotation } from "../rotation/settings";
import type { RotationEngine } from "../rotation/engine";
import { Window } from "../schedule/window";
import { eventTitles, type RotationEvent } from "./types";

/** A rotated secret whose next rotation falls within the lead time (or is overdue). */
export interface DueSecret {
  readonly env: string;
  readonly variable: string;
  readonly service: string;
  readonly secret: string;
  /** The cron of `rotation.schedule` (UTC). */
  readonly schedule: string;
  /** When the last rotation that made a version current finished (absent: never rotated). */
  readonly lastRotatedAt?: string;
  /** The first cron occurrence after the last rotation (never rotated: now). */
  readonly dueAt: string;
  readonly overdue: boolean;
}

/**
 * Secrets with a `rotation.schedule` whose rotation is due within `withinMs` of `now` (both on
 * the project clock): the due date is the schedule's first occurrence after the last rotation
 * in the history (a secret never rotated is due now). Secrets without a schedule are skipped.
 */
export async function dueSoon(engine: RotationEngine, o: { now: number; withinMs: number; env?: string }): Promise<DueSecret[]> {
  const out: DueSecret[] = [];
  for (const v of engine.rotated(o.env)) {
    const variable = engine.config.envs[v.env][v.variable];
    const policy = variable.spec.rotation as VariableRotation;
    if (!policy.schedule) continue;
    const secret = variable.ref ? `store://${variable.ref.store}/${variable.ref.key}` : "-";
    const cron = new Window({ schedule: policy.schedule, duration: "1m" }, `envs.${v.env}.${v.variable}.rotation.schedule`);
    const recs = await engine.history({ env: v.env, variable: v.variable });
    const last = recs.find((r) => r.secret === secret && r.kind === "rotate" && (r.status === "succeeded" || r.status === "grace"));
    const lastAt = last ? Date.parse(last.finishedAt ?? last.steps.find((s) => s.name === "promote")?.finishedAt ?? last.startedAt) : undefined;
    let due = o.now;
    if (lastAt !== undefined) {
      const next = cron.openings(lastAt + 60000).next();
      if (next.done) throw new DsopsError(`envs.${v.env}.${v.variable}.rotation.schedule: "${policy.schedule}" has no occurrence in the next two years`);
      due = next.value;
    }
    if (due > o.now + o.withinMs) continue;
    out.push({
      env: v.env,
      variable: v.variable,
      service: policy.service,
      secret,
      schedule: policy.schedule,
      ...(lastAt !== undefined ? { lastRotatedAt: new Date(lastAt).toISOString() } : {}),
      dueAt: new Date(due).toISOString(),
      overdue: due <= o.now,
    });
  }
  return out.sort((a, b) => (a.dueAt < b.dueAt ? -1 : a.dueAt > b.dueAt ? 1 : 0));
}

/** The `due-soon` event of a due secret. */
export function dueSoonEvent(d: DueSecret, now: number): RotationEvent {
  return {
    type: "due-soon",
    title: eventTitles["due-soon"],
    service: d.service,
    env: d.env,
    variable: d.variable,
    secret: d.secret,
    at: new Date(now).toISOString(),
    dueAt: d.dueAt,
    status: d.overdue ? "overdue" : "due-soon",
  };
}
