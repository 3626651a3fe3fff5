import * as z from "zod";
import { tryParseDuration } from "../core/duration";
import { suggest } from "../core/suggest";
import { rotationEventTypes } from "./types";

/**
 * The `notifications:` block of dsops.yaml and the per-variable `rotation.notifications`
 * (zod only: the config loader checks them without loading any notifier's client library).
 * Fields holding a credential (webhook URLs, routing keys, SMTP passwords, HMAC keys) may be a
 * `store://` reference, resolved when a notification is sent, or `${ENV_VAR}`.
 */

const eventList = z.array(z.enum(rotationEventTypes)).min(1);

/** Common to every channel. */
const channelBase = {
  /** Events this channel gets (default: every event). */
  events: eventList.optional(),
  /** Milliseconds one delivery attempt may take (default 5000). */
  timeout_ms: z.number().int().positive().max(300000).optional(),
  /** dsops's spelling: seconds one delivery attempt may take (or a duration, `2s`, `500ms`), at most 300 s; wins over `timeout_ms`. */
  timeout: z
    .custom<number | string>((v) => {
      const ms = typeof v === "number" || typeof v === "string" ? tryParseDuration(v) : undefined;
      return ms !== undefined && ms > 0 && ms <= 300000;
    }, "expected a number of seconds (or a duration: 500ms, 2s) above 0 and at most 300")
    .optional(),
  enabled: z.boolean().default(true),
};

/** dsops's `retry:` of an HTTP channel: attempts in all (1 = no retry), and the first wait (a duration; doubled each time). */
export const retrySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(11).optional(),
  backoff: z
    .custom<number | string>((v) => {
      const ms = typeof v === "number" || typeof v === "string" ? tryParseDuration(v) : undefined;
      return ms !== undefined && ms <= 600000;
    }, "expected a duration (500ms, 2s, 1m) or a number of seconds, at most 10m")
    .optional(),
});
export type RetrySettings = z.infer<typeof retrySchema>;

/** The milliseconds one attempt of a channel may take: dsops's `timeout` (seconds), else `timeout_ms`, else 5 s. */
export function channelTimeoutMs(s: { timeout?: number | string; timeout_ms?: number }): number {
  return s.timeout !== undefined ? (tryParseDuration(s.timeout) ?? 5000) : (s.timeout_ms ?? 5000);
}

/** Further attempts and first backoff of an HTTP channel: dsops's `retry:` over ours (or the channel's defaults). */
export function channelRetry(retry: RetrySettings | undefined, dflt: { retries: number; backoffMs: number }): { retries: number; backoffMs: number } {
  return {
    retries: retry?.max_attempts !== undefined ? retry.max_attempts - 1 : dflt.retries,
    backoffMs: retry?.backoff !== undefined ? (tryParseDuration(retry.backoff) ?? dflt.backoffMs) : dflt.backoffMs,
  };
}

/** Slack mentions: our list (failure and rollback alike), or dsops's `{on_failure, on_rollback}` (each one mention or a list). */
export type SlackMentionsSetting = string[] | { on_failure?: string | string[]; on_rollback?: string | string[] };
const MENTION_KEYS = ["on_failure", "on_rollback"];
const isMention = (m: unknown) => typeof m === "string" && m.trim().length > 0;

/** Checks the mentions field by hand: a zod union would report every shape as "wrong shape". */
function checkMentions(v: unknown, ctx: z.RefinementCtx): void {
  const list = (xs: unknown, at: PropertyKey[]) => {
    if (typeof xs === "string") {
      if (!isMention(xs)) ctx.addIssue({ code: "custom", path: at, message: "expected a mention (here, channel, U…, S…), got an empty string" });
      return;
    }
    if (!Array.isArray(xs)) return ctx.addIssue({ code: "custom", path: at, message: "expected a mention or a list of mentions (here, channel, U…, S…)" });
    xs.forEach((m, i) => {
      if (!isMention(m)) ctx.addIssue({ code: "custom", path: [...at, i], message: "expected a mention (here, channel, U…, S…)" });
    });
  };
  if (Array.isArray(v)) return list(v, []);
  if (v === null || typeof v !== "object") return ctx.addIssue({ code: "custom", message: "expected a list of mentions, or { on_failure, on_rollback } (each a mention or a list)" });
  for (const [k, x] of Object.entries(v)) {
    if (MENTION_KEYS.includes(k)) list(x, [k]);
    else {
      const hint = suggest(k, MENTION_KEYS);
      ctx.addIssue({ code: "custom", path: [k], message: `unknown key "${k}" (${hint ? `did you mean "${hint}"?` : `expected one of: ${MENTION_KEYS.join(", ")}`})` });
    }
  }
}

export const slackSettingsSchema = z.strictObject({
  ...channelBase,
  /** Incoming webhook URL (or `store://…`). */
  webhook_url: z.string().min(1),
  channel: z.string().optional(),
  username: z.string().optional(),
  icon_emoji: z.string().optional(),
  /**
   * Mentioned on failure and rollback: `here`, `channel`, user ids `U…`, group ids `S…`, or
   * literal `<…>` forms. A list (both events), or dsops's `{on_failure, on_rollback}` (each a
   * list or one mention).
   */
  mentions: z
    .custom<SlackMentionsSetting>()
    .superRefine(checkMentions)
    .default([]),
  /** dsops's `retry: {max_attempts, backoff}` (default 2 attempts, 250 ms apart). */
  retry: retrySchema.optional(),
});

export const emailSettingsSchema = z.strictObject({
  ...channelBase,
  smtp: z.strictObject({
    host: z.string().min(1),
    /** Default 465 with `tls: true`, else 587. */
    port: z.number().int().min(1).max(65535).optional(),
    /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
    secure: z.boolean().default(false),
    /**
     * dsops's spelling, wins over `secure`/`require_tls`: `true` TLS from the first byte (default
     * port 465), `starttls` STARTTLS required, `false` plaintext (STARTTLS not even tried).
     */
    tls: z.custom<boolean | "starttls">((v) => v === true || v === false || v === "starttls", 'expected true, false or "starttls"').optional(),
    /** PEM file of the CA (or self-signed certificate) the server's certificate is checked against, relative to dsops.yaml. */
    ca_file: z.string().min(1).optional(),
    username: z.string().optional(),
    /** Or `store://…`. */
    password: z.string().optional(),
    /** Refuse plaintext: require STARTTLS. */
    require_tls: z.boolean().default(false),
    /** Check the server's certificate (default true). */
    tls_verify: z.boolean().default(true),
  }),
  from: z.string().min(1),
  to: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** `immediate` (default), or collect events into one digest per hour / day. */
  batch_mode: z.enum(["immediate", "hourly", "daily"]).default("immediate"),
  /** Where digest events wait (default `.dsops/email-queue.json` next to dsops.yaml); written mode 0600. */
  queue_path: z.string().optional(),
});

export const pagerdutySettingsSchema = z.strictObject({
  ...channelBase,
  /** Events v2 integration (routing) key (or `store://…`). `integration_key` is accepted as dsops's name. */
  routing_key: z.string().min(1).optional(),
  integration_key: z.string().min(1).optional(),
  /** Events API URL (default https://events.pagerduty.com/v2/enqueue). */
  events_url: z.string().url().default("https://events.pagerduty.com/v2/enqueue"),
  severity: z.enum(["critical", "error", "warning", "info"]).default("error"),
  /** Resolve the incident when a later rotation of the same service and env succeeds. */
  auto_resolve: z.boolean().default(true),
  /**
   * dsops's `service_id`: Events v2 routes by the routing key alone, so it selects nothing; it is
   * sent as `custom_details.service_id` (shown on the incident).
   */
  service_id: z.string().min(1).optional(),
  /** dsops's `retry: {max_attempts, backoff}` (default 3 attempts, 500 ms then 1 s). */
  retry: retrySchema.optional(),
});

export const webhookSettingsSchema = z.strictObject({
  ...channelBase,
  /** Names it in per-variable `channels:` (`webhook:<name>`) and in messages (default its index). */
  name: z.string().min(1).optional(),
  url: z.string().min(1),
  method: z.enum(["POST", "PUT", "PATCH"]).default("POST"),
  headers: z.record(z.string(), z.string()).default({}),
  /** Body: a Go template over the event's fields (`{{ .service }}`, `{{ .type }}` …); default the event as JSON. */
  template: z.string().optional(),
  /** dsops's name of `template` (same engine, same variables). */
  payload_template: z.string().optional(),
  content_type: z.string().default("application/json"),
  /** HMAC-SHA256 key (or `store://…`): the body is signed into `signature_header` as `sha256=<hex>`. */
  secret: z.string().optional(),
  signature_header: z.string().default("X-Dsops-Signature"),
  /** Further attempts after a failed one (network error, 408, 429, 5xx). */
  retries: z.number().int().min(0).max(10).default(3),
  /** First wait between attempts, doubled each time (project clock). */
  backoff_ms: z.number().int().min(0).max(600000).default(500),
  /** dsops's spelling: `max_attempts` counts every attempt (`retries` + 1), `backoff` is the first wait (a duration). */
  retry: retrySchema.optional(),
}).superRefine((w, ctx) => {
  if (w.template !== undefined && w.payload_template !== undefined) ctx.addIssue({ code: "custom", path: ["payload_template"], message: "give template or payload_template, not both (payload_template is dsops's name of template)" });
});

export const notificationsSchema = z.strictObject({
  /** The longest a run waits at its end for deliveries still in flight (they never fail it). */
  wait_ms: z.number().int().min(0).max(600000).default(10000),
  slack: slackSettingsSchema.optional(),
  email: emailSettingsSchema.optional(),
  pagerduty: pagerdutySettingsSchema.optional(),
  webhooks: z.array(webhookSettingsSchema).optional(),
});
export type NotificationsSettings = z.infer<typeof notificationsSchema>;

/** Per-variable `rotation.notifications`: which events go out, and to which channels. */
export const variableNotificationsSchema = z.looseObject({
  /** false: this variable sends nothing. */
  enabled: z.boolean().optional(),
  events: eventList.optional(),
  /** `slack`, `email`, `pagerduty`, `webhook` (every webhook) or `webhook:<name>`; default all. */
  channels: z.array(z.string().min(1)).optional(),
});
export type VariableNotifications = z.infer<typeof variableNotificationsSchema>;

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** Notification channels (`notifications:`). */
    notifications?: NotificationsSettings;
  }
}

declare module "../rotation/settings" {
  interface RotationSections {
    /** Which rotation events this variable sends, and to which channels (see `notifications:`). */
    notifications?: VariableNotifications;
  }
}
