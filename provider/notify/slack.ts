import { post } from "./http";
import { channelRetry, channelTimeoutMs, slackSettingsSchema } from "./settings";
import { parseSettings, eventFacts, wants } from "./util";
import type { Notifier, NotifierContext, RotationEvent } from "./types";

/** A Slack mention in the form Slack renders: `here` → `<!here>`, `U123` → `<@U123>`, `S123` → `<!subteam^S123>`. */
export function slackMention(m: string): string {
  const t = m.trim().replace(/^@/, "");
  if (t.startsWith("<")) return t;
  if (t === "here" || t === "channel" || t === "everyone") return `<!${t}>`;
  if (/^[UW][A-Z0-9]{2,}$/.test(t)) return `<@${t}>`;
  if (/^S[A-Z0-9]{2,}$/.test(t)) return `<!subteam^${t}>`;
  return `@${t}`;
}

/** Our list (failure and rollback alike), or dsops's `{on_failure, on_rollback}`. */
export type SlackMentions = string[] | { on_failure?: string | string[]; on_rollback?: string | string[] };

/** Who is mentioned in an event's message: nobody but on failure and rollback. */
export function mentionsFor(e: RotationEvent, m: SlackMentions | undefined): string[] {
  if (!m || (e.type !== "failed" && e.type !== "rollback" && e.type !== "dead-lettered")) return [];
  if (Array.isArray(m)) return m;
  const who = (e.type === "rollback" ? m.on_rollback : m.on_failure) ?? [];
  return typeof who === "string" ? [who] : who;
}

const ICONS: Record<RotationEvent["type"], string> = {
  started: ":arrows_counterclockwise:",
  completed: ":white_check_mark:",
  failed: ":x:",
  rollback: ":rewind:",
  "due-soon": ":alarm_clock:",
  "dead-lettered": ":skull:",
  "approval-requested": ":raised_hand:",
  "approval-granted": ":heavy_check_mark:",
  "approval-denied": ":no_entry:",
  "approval-expired": ":hourglass:",
  "breakglass-opened": ":rotating_light:",
  "breakglass-closed": ":lock:",
};

/** The Block Kit message of an event (plain data: tests and `--dry-run` can show it). */
export function slackPayload(e: RotationEvent, opts: { mentions?: SlackMentions; channel?: string; username?: string; icon_emoji?: string } = {}): Record<string, unknown> {
  const who = mentionsFor(e, opts.mentions);
  const mentions = who.length ? who.map(slackMention).join(" ") : "";
  const headline = `${e.title}: ${e.service} (${e.env})`;
  const fields = eventFacts(e).map(([k, v]) => ({ type: "mrkdwn", text: `*${k}:*\n${v}` }));
  const blocks: Array<Record<string, unknown>> = [
    { type: "header", text: { type: "plain_text", text: `${ICONS[e.type]} ${headline}`.slice(0, 150), emoji: true } },
    // Block Kit allows at most 10 fields in a section.
    ...chunk(fields, 10).map((f) => ({ type: "section", fields: f })),
  ];
  if (e.error) blocks.push({ type: "section", text: { type: "mrkdwn", text: `*Error:*\n\`\`\`${e.error.slice(0, 2900)}\`\`\`` } });
  if (mentions) blocks.push({ type: "section", text: { type: "mrkdwn", text: `${mentions} please look into this.` } });
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `dsops · ${e.type} · ${e.at}` }] });
  return {
    text: `${mentions ? mentions + " " : ""}[dsops] ${headline}`,
    blocks,
    ...(opts.channel ? { channel: opts.channel } : {}),
    ...(opts.username ? { username: opts.username } : {}),
    ...(opts.icon_emoji ? { icon_emoji: opts.icon_emoji } : {}),
  };
}

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** Slack incoming webhook. */
export function createSlackNotifier(raw: unknown, ctx: NotifierContext, path: string): Notifier {
  const s = parseSettings(slackSettingsSchema, raw, path);
  return {
    type: "slack",
    name: "slack",
    accepts: (e) => s.enabled && wants(s.events, e),
    async send(e) {
      const url = await ctx.resolveSetting(s.webhook_url);
      await post(url, {
        headers: { "content-type": "application/json" },
        body: JSON.stringify(slackPayload(e, s)),
        timeoutMs: channelTimeoutMs(s),
        ...channelRetry(s.retry, { retries: 1, backoffMs: 250 }),
        clock: ctx.clock,
      });
    },
  };
}
