import { z } from "zod";
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
  /** Milliseconds one delivery attempt may take. */
  timeout_ms: z.number().int().positive().max(300000).default(5000),
  enabled: z.boolean().default(true),
};

export const slackSettingsSchema = z.strictObject({
  ...channelBase,
  /** Incoming webhook URL (or `store://…`). */
  webhook_url: z.string().min(1),
  channel: z.string().optional(),
  username: z.string().optional(),
  icon_emoji: z.string().optional(),
  /** Mentioned on failure and rollback: `here`, `channel`, user ids `U…`, group ids `S…`, or literal `<…>` forms. */
  mentions: z.array(z.string()).default([]),
});

export const emailSettingsSchema = z.strictObject({
  ...channelBase,
  smtp: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
    secure: z.boolean().default(false),
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
  content_type: z.string().default("application/json"),
  /** HMAC-SHA256 key (or `store://…`): the body is signed into `signature_header` as `sha256=<hex>`. */
  secret: z.string().optional(),
  signature_header: z.string().default("X-Dsops-Signature"),
  /** Further attempts after a failed one (network error, 408, 429, 5xx). */
  retries: z.number().int().min(0).max(10).default(3),
  /** First wait between attempts, doubled each time (project clock). */
  backoff_ms: z.number().int().min(0).max(600000).default(500),
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
