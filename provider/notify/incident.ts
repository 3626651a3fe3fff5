import { randomUUID } from "node:crypto";
import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
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
 * Email and PagerDuty are reported as not carrying incidents (yet). Never throws: each channel
 * has its outcome.
 */
export async function sendIncident(
  settings: NotificationsSettings | undefined,
  incident: IncidentNotice,
  ctx: { clock: Clock; resolveSetting(value: string): Promise<string> },
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
  if (settings.email?.enabled) out.push({ channel: "email", ok: false, detail: "email does not carry incidents yet (Slack and webhooks do)" });
  if (settings.pagerduty?.enabled) out.push({ channel: "pagerduty", ok: false, detail: "PagerDuty does not carry incidents yet (Slack and webhooks do)" });
  return out;
}
