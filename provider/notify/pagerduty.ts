import { ConfigError } from "../core/errors";
import { post } from "./http";
import { channelRetry, channelTimeoutMs, pagerdutySettingsSchema } from "./settings";
import type { Notifier, NotifierContext, RotationEvent } from "./types";
import { parseSettings, wants } from "./util";

/** The incident key of a service in an env: one incident per service and env, whatever the secret. */
export const pagerdutyDedupKey = (e: Pick<RotationEvent, "service" | "env">): string => `dsops-${e.service}-${e.env}`;

/** The Events v2 body of an event, or undefined when PagerDuty is not told about it. */
export function pagerdutyPayload(e: RotationEvent, o: { routingKey: string; severity: string; autoResolve: boolean; serviceId?: string }): Record<string, unknown> | undefined {
  // A break-glass is an incident of its own (a later successful rotation does not resolve it).
  const dedup_key = e.type === "breakglass-opened" ? `dsops-breakglass-${e.breakGlassId ?? e.secret}` : pagerdutyDedupKey(e);
  if (e.type === "completed") return o.autoResolve ? { routing_key: o.routingKey, event_action: "resolve", dedup_key } : undefined;
  if (e.type !== "failed" && e.type !== "rollback" && e.type !== "dead-lettered" && e.type !== "breakglass-opened") return undefined;
  return {
    routing_key: o.routingKey,
    event_action: "trigger",
    dedup_key,
    client: "dsops",
    payload: {
      summary: `[dsops] ${e.title}: ${e.service} (${e.env})${e.error ? `: ${e.error}` : ""}`.slice(0, 1024),
      source: `dsops/${e.secret}`,
      severity: o.severity,
      timestamp: e.at,
      component: e.service,
      group: e.env,
      class: `rotation-${e.type}`,
      custom_details: {
        variable: e.variable,
        secret: e.secret,
        ...(e.rotationId ? { rotation_id: e.rotationId } : {}),
        ...(e.strategy ? { strategy: e.strategy } : {}),
        ...(e.status ? { status: e.status } : {}),
        ...(e.oldVersionId ? { old_version: e.oldVersionId } : {}),
        ...(e.newVersionId ? { new_version: e.newVersionId } : {}),
        ...(e.newPrincipal ? { principal: e.newPrincipal } : {}),
        ...(e.trigger ? { trigger: e.trigger } : {}),
        ...(e.error ? { error: e.error } : {}),
        ...(e.who ? { who: e.who } : {}),
        ...(e.attempts !== undefined ? { attempts: e.attempts } : {}),
        ...(o.serviceId ? { service_id: o.serviceId } : {}),
      },
    },
  };
}

/** PagerDuty Events API v2: trigger on failure, rollback and dead-lettering, resolve on success (`auto_resolve`). */
export function createPagerdutyNotifier(raw: unknown, ctx: NotifierContext, path: string): Notifier {
  const s = parseSettings(pagerdutySettingsSchema, raw, path);
  const key = s.routing_key ?? s.integration_key;
  if (!key) throw new ConfigError(`${path}.routing_key: required`);
  return {
    type: "pagerduty",
    name: "pagerduty",
    accepts: (e) => s.enabled && (e.type === "failed" || e.type === "rollback" || e.type === "dead-lettered" || e.type === "breakglass-opened" || (e.type === "completed" && s.auto_resolve)) && wants(s.events, e),
    async send(e) {
      const routingKey = await ctx.resolveSetting(key);
      const body = pagerdutyPayload(e, { routingKey, severity: s.severity, autoResolve: s.auto_resolve, serviceId: s.service_id });
      if (!body) return;
      await post(s.events_url, { headers: { "content-type": "application/json" }, body: JSON.stringify(body), timeoutMs: channelTimeoutMs(s), ...channelRetry(s.retry, { retries: 2, backoffMs: 500 }), clock: ctx.clock });
    },
  };
}
