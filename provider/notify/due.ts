import type { DueSecret } from "../rotation/due";
import { eventTitles, type RotationEvent } from "./types";

/* Which secrets are due is the rotation layer's decision (provider/rotation/due.ts); this module only words the event. */
export type { DueSecret };

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
