import { randomUUID } from "node:crypto";
import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
import { esc, smtpSender } from "./email";
import { post, safeUrl } from "./http";
import { channelRetry, channelTimeoutMs, type NotificationsSettings } from "./settings";
import { webhookSignature } from "./webhook";

/**
 * A leak incident as the notification channels get it (`dsops leak report --notify`): names,
 * kinds and places only, never a value. Plain data, so the ops layers need not know each other.
 */
export interface IncidentNotice {
  readonly id: string;
  readonly status: string;
  readonly severity: string;
  readonly summary: string;
  readonly type?: string;
  readonly description?: string;
  readonly secrets: readonly string[];
  readonly files?: readonly string[];
  readonly commits?: readonly string[];
  readonly created: string;
  readonly by?: string;
}

/** One channel's outcome. */
export interface IncidentDelivery {
  readonly channel: string;
  readonly ok: boolean;
  readonly detail: string;
}

function incidentText(i: IncidentNotice): string {
  const facts: Array<[string, string]> = [
    ["Severity", i.severity],
    ["Status", i.status],
    ...(i.type ? [["Type", i.type] as [string, string]] : []),
    ...(i.secrets.length ? [["Secrets", i.secrets.join(", ")] as [string, string]] : []),
    ...(i.files?.length ? [["Files", i.files.join(", ")] as [string, string]] : []),
    ...(i.commits?.length ? [["Commits", i.commits.join(", ")] as [string, string]] : []),
    ...(i.by ? [["Reported by", i.by] as [string, string]] : []),
  ];
  return [`Secret leak ${i.id}: ${i.summary}`, ...(i.description ? [i.description] : []), ...facts.map(([k, v]) => `${k}: ${v}`)].join("\n");
}

/**
 * Send an incident through the configured channels that can carry one: Slack (a text message)
 * and each webhook (`{type: "incident", title, incident}` as JSON, `x-dsops-event: incident`,
 * signed like rotation events; a webhook's `template:` is for rotation events and is not used).
 * A channel's `enabled: false` is honoured; its `events:` filter (rotation events) is not applied.
 * Email sends one message at once (whatever its `batch_mode`: an incident does not wait for a
 * digest); PagerDuty triggers an Events v2 incident (see pagerdutyIncidentPayload). Never throws:
 * each channel has its outcome.
 */
export async function sendIncident(
  settings: NotificationsSettings | undefined,
  incident: IncidentNotice,
  ctx: { clock: Clock; resolveSetting(value: string): Promise<string>; configDir?: string },
): Promise<IncidentDelivery[]> {
  const out: IncidentDelivery[] = [];
  if (!settings) return out;
  const attempt = async (channel: string, where: () => Promise<string>, fn: () => Promise<void>) => {
    try {
      await fn();
      out.push({ channel, ok: true, detail: `sent to ${await where()}` });
    } catch (e) {
      out.push({ channel, ok: false, detail: errorMessage(e) });
    }
  };
  const s = settings.slack;
  if (s?.enabled) {
    await attempt(
      "slack",
      async () => safeUrl(await ctx.resolveSetting(s.webhook_url)),
      async () => {
        const url = await ctx.resolveSetting(s.webhook_url);
        const body = { text: incidentText(incident), ...(s.channel ? { channel: s.channel } : {}), ...(s.username ? { username: s.username } : {}), ...(s.icon_emoji ? { icon_emoji: s.icon_emoji } : {}) };
        await post(url, { headers: { "content-type": "application/json" }, body: JSON.stringify(body), timeoutMs: channelTimeoutMs(s), ...channelRetry(s.retry, { retries: 1, backoffMs: 250 }), clock: ctx.clock });
      },
    );
  }
  for (const [i, w] of (settings.webhooks ?? []).entries()) {
    if (!w.enabled) continue;
    const name = `webhook:${w.name ?? i}`;
    await attempt(
      name,
      async () => safeUrl(await ctx.resolveSetting(w.url)),
      async () => {
        const body = JSON.stringify({ type: "incident", title: `Secret leak ${incident.id}: ${incident.summary}`, incident });
        const url = await ctx.resolveSetting(w.url);
        const key = w.secret ? await ctx.resolveSetting(w.secret) : undefined;
        await post(url, {
          method: w.method,
          headers: {
            "content-type": "application/json",
            "user-agent": "dsops-webhook",
            "x-dsops-event": "incident",
            "x-dsops-delivery": randomUUID(),
            ...w.headers,
            ...(key ? { [w.signature_header]: webhookSignature(key, body) } : {}),
          },
          body,
          timeoutMs: channelTimeoutMs(w),
          ...channelRetry(w.retry, { retries: w.retries, backoffMs: w.backoff_ms }),
          clock: ctx.clock,
        });
      },
    );
  }
  const m = settings.email;
  if (m?.enabled) {
    const to = Array.isArray(m.to) ? m.to : [m.to];
    await attempt(
      "email",
      async () => to.join(", "),
      async () => {
        const send = smtpSender(m, { configDir: ctx.configDir ?? process.cwd(), resolveSetting: (v) => ctx.resolveSetting(v) }, "notifications.email");
        const text = incidentText(incident);
        const html = `<html><body><pre>${esc(text)}</pre></body></html>`;
        await send(`[dsops] Secret leak ${incident.id}: ${incident.summary}`, `${text}\n`, html, "incident");
      },
    );
  }
  const pd = settings.pagerduty;
  if (pd?.enabled) {
    await attempt(
      "pagerduty",
      async () => safeUrl(pd.events_url),
      async () => {
        const key = pd.routing_key ?? pd.integration_key;
        if (!key) throw new Error("notifications.pagerduty.routing_key: required");
        const body = pagerdutyIncidentPayload(incident, { routingKey: await ctx.resolveSetting(key), ...(pd.service_id ? { serviceId: pd.service_id } : {}) });
        await post(pd.events_url, { headers: { "content-type": "application/json" }, body: JSON.stringify(body), timeoutMs: channelTimeoutMs(pd), ...channelRetry(pd.retry, { retries: 2, backoffMs: 500 }), clock: ctx.clock });
      },
    );
  }
  return out;
}

/** PagerDuty's severity of an incident's (low → info, medium → warning, high → error, critical → critical). */
const PD_SEVERITY: Record<string, string> = { low: "info", medium: "warning", high: "error", critical: "critical" };

/**
 * The Events API v2 `trigger` of a leak incident: one PagerDuty incident per leak
 * (`dedup_key: dsops-leak-<id>`), its summary the title, the facts in `custom_details`.
 */
export function pagerdutyIncidentPayload(i: IncidentNotice, o: { routingKey: string; serviceId?: string }): Record<string, unknown> {
  return {
    routing_key: o.routingKey,
    event_action: "trigger",
    dedup_key: `dsops-leak-${i.id}`,
    client: "dsops",
    payload: {
      summary: `[dsops] Secret leak ${i.id}: ${i.summary}`.slice(0, 1024),
      source: "dsops/leak",
      severity: PD_SEVERITY[i.severity] ?? "error",
      timestamp: i.created,
      class: `leak${i.type ? `-${i.type}` : ""}`,
      custom_details: {
        incident: i.id,
        status: i.status,
        severity: i.severity,
        ...(i.type ? { type: i.type } : {}),
        ...(i.description ? { description: i.description } : {}),
        ...(i.secrets.length ? { secrets: i.secrets.join(", ") } : {}),
        ...(i.files?.length ? { files: i.files.join(", ") } : {}),
        ...(i.commits?.length ? { commits: i.commits.join(", ") } : {}),
        ...(i.by ? { reported_by: i.by } : {}),
        ...(o.serviceId ? { service_id: o.serviceId } : {}),
      },
    },
  };
}
