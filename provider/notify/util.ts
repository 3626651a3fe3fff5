import type { z } from "zod";
import { ConfigError } from "../core/errors";
import type { RotationEvent, RotationEventType } from "./types";

/** Check one channel's settings; a problem names the field (`notifications.slack.webhook_url: …`). */
export function parseSettings<S extends z.ZodType>(schema: S, raw: unknown, path: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${[path, ...i.path.map(String)].join(".")}: ${i.message}`);
    throw new ConfigError(problems.join("; "), problems);
  }
  return r.data;
}

/** Whether a channel's `events:` list lets the event through (default all). */
export function wants(events: readonly RotationEventType[] | undefined, e: RotationEvent): boolean {
  return !events || events.includes(e.type);
}

/** The facts of an event as label/value pairs, for human-readable formats (never a value: the event holds none). */
export function eventFacts(e: RotationEvent): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ["Service", e.service],
    ["Environment", e.env],
    ["Secret", `${e.variable} (${e.secret})`],
  ];
  if (e.status) out.push(["Status", e.status]);
  if (e.strategy) out.push(["Strategy", e.strategy]);
  if (e.rotationId) out.push(["Rotation", e.rotationId]);
  if (e.oldVersionId || e.newVersionId) out.push(["Versions", `${e.oldVersionId ?? "-"} → ${e.newVersionId ?? "-"}`]);
  if (e.oldPrincipal || e.newPrincipal) out.push(["Principal", e.oldPrincipal && e.newPrincipal && e.oldPrincipal !== e.newPrincipal ? `${e.oldPrincipal} → ${e.newPrincipal}` : (e.newPrincipal ?? e.oldPrincipal ?? "-")]);
  if (e.trigger) out.push(["Trigger", e.trigger]);
  if (e.durationSeconds !== undefined) out.push(["Duration", `${e.durationSeconds.toFixed(1)} s`]);
  if (e.dueAt) out.push(["Due", e.dueAt]);
  if (e.attempts !== undefined) out.push(["Attempts", String(e.attempts)]);
  if (e.jobId) out.push(["Job", e.jobId]);
  if (e.approvalId) out.push(["Approval", e.approvalId]);
  if (e.breakGlassId) out.push(["Break-glass", e.breakGlassId]);
  if (e.expiresAt) out.push(["Expires", e.expiresAt]);
  if (e.who) out.push(["By", e.who]);
  if (e.reason) out.push(["Reason", e.reason]);
  return out;
}
