import { createHmac, randomUUID } from "node:crypto";
import { renderTemplate } from "../engine/template";
import { post } from "./http";
import { channelRetry, channelTimeoutMs, webhookSettingsSchema } from "./settings";
import type { Notifier, NotifierContext, RotationEvent } from "./types";
import { parseSettings, wants } from "./util";

/** `sha256=<hex>` of the body under `key`: what a receiver recomputes to check a delivery. */
export function webhookSignature(key: string, body: string): string {
  return `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;
}

/** Every field a template may name; absent ones are "" (a template serves every event type). */
const FIELDS = ["type", "title", "service", "env", "variable", "secret", "at", "rotationId", "strategy", "status", "oldVersionId", "newVersionId", "oldPrincipal", "newPrincipal", "who", "reason", "error", "durationSeconds", "trigger", "dueAt", "attempts", "jobId", "approvalId", "breakGlassId", "expiresAt"] as const satisfies ReadonlyArray<keyof RotationEvent>;

/** The template variables of an event: every field as a string (`.type`, `.service`, `.env`, `.newVersionId` …; "" when absent), `.json` the whole event. */
export function templateVariables(e: RotationEvent): Record<string, string> {
  const vars: Record<string, string> = Object.fromEntries(FIELDS.map((f) => [f, ""]));
  for (const [k, v] of Object.entries(e)) if (v !== undefined) vars[k] = String(v);
  vars.json = JSON.stringify(e);
  return vars;
}

/** A generic webhook: method, headers, body template, HMAC signature, timeout, retries with backoff. */
export function createWebhookNotifier(raw: unknown, ctx: NotifierContext, path: string): Notifier {
  const s = parseSettings(webhookSettingsSchema, raw, path);
  const template = s.template ?? s.payload_template;
  const templateName = `${path}.${s.template !== undefined ? "template" : "payload_template"}`;
  const retry = channelRetry(s.retry, { retries: s.retries, backoffMs: s.backoff_ms });
  const name = `webhook:${s.name ?? path.replace(/^.*\[(\d+)\]$/, "$1")}`;
  return {
    type: "webhook",
    name,
    accepts: (e) => s.enabled && wants(s.events, e),
    async send(e) {
      const body = template ? renderTemplate(template, templateVariables(e), { name: templateName, env: {} }) : JSON.stringify(e);
      const url = await ctx.resolveSetting(s.url);
      const key = s.secret ? await ctx.resolveSetting(s.secret) : undefined;
      const delivery = randomUUID();
      await post(url, {
        method: s.method,
        headers: {
          "content-type": s.content_type,
          "user-agent": "dsops-webhook",
          "x-dsops-event": e.type,
          "x-dsops-delivery": delivery,
          ...s.headers,
          ...(key ? { [s.signature_header]: webhookSignature(key, body) } : {}),
        },
        body,
        timeoutMs: channelTimeoutMs(s),
        ...retry,
        clock: ctx.clock,
      });
    },
  };
}
