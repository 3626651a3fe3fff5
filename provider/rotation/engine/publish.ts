import { errorMessage } from "../../core/errors";
import { RotationError, RotationInProgressError } from "../errors";
import { eventTitles, type RotationEvent, type RotationEventType } from "../events";
import type { RotationRecord } from "../types";
import type { EngineContext } from "./context";
import type { Subject } from "./wiring";

/** The rotation events of a run, published on the engine's bus (../events.ts): metrics, listeners and notifications subscribe there. */

/** Build the event of a record and publish it (metrics, the `onRotationEvent` hook and the notifiers subscribe). Never throws. */
export function emit(ctx: EngineContext, type: Exclude<RotationEventType, "due-soon">, subject: Subject, rec: RotationRecord | undefined, extra: Partial<RotationEvent> = {}): void {
  try {
    const now = ctx.clock.now();
    const e: RotationEvent = {
      type,
      title: eventTitles[type],
      service: subject.target.name,
      env: subject.env,
      variable: subject.variable,
      secret: subject.secret,
      at: new Date(now).toISOString(),
      ...(rec
        ? {
            rotationId: rec.id,
            strategy: rec.strategy,
            status: rec.status,
            ...(rec.oldVersionId ? { oldVersionId: rec.oldVersionId } : {}),
            ...(rec.newVersionId ? { newVersionId: rec.newVersionId } : {}),
            ...(rec.oldPrincipal ? { oldPrincipal: rec.oldPrincipal } : {}),
            ...(rec.newPrincipal ? { newPrincipal: rec.newPrincipal } : {}),
            who: rec.who,
            ...(rec.reason ? { reason: rec.reason } : {}),
            ...(rec.error && type !== "started" ? { error: rec.error } : {}),
            ...(type !== "started" ? { durationSeconds: Math.max(0, (now - Date.parse(rec.startedAt)) / 1000) } : {}),
          }
        : { who: ctx.who }),
      ...extra,
    };
    ctx.bus.emit("rotation", { event: e, ...(subject.policy.notifications ? { notifications: subject.policy.notifications } : {}) });
  } catch (err) {
    process.stderr.write(`warning: rotation event ${type} not sent: ${errorMessage(err)}\n`);
  }
}

/** A rotation (or manual rollback) ended in an error: send `failed`, unless a `rollback` event already told. */
export async function failedEvent(ctx: EngineContext, subject: Subject, e: unknown, id: string | undefined, strategy: string, reason: string | undefined): Promise<void> {
  if (e instanceof RotationInProgressError) return;
  let rec: RotationRecord | undefined;
  if (e instanceof RotationError && e.recordId) rec = await subject.history.get(e.recordId).catch(() => undefined);
  if (rec?.status === "rolled-back" || (rec?.kind === "rollback" && rec.status === "succeeded")) return;
  if (rec) emit(ctx, "failed", subject, rec, rec.error ? {} : { error: errorMessage(e) });
  else emit(ctx, "failed", subject, undefined, { ...(id ? { rotationId: id } : {}), strategy, ...(reason ? { reason } : {}), error: errorMessage(e) });
}
