import type { Clock } from "../core/clock";

/**
 * Rotation events and the notifier interface. An event carries names, version ids, principals
 * (user names, key ids), statuses and errors the engine already scrubbed: never a secret value.
 */

/** What happened. `due-soon` comes from `dsops secrets due --notify`, the others from the engine. */
export const rotationEventTypes = ["started", "completed", "failed", "rollback", "due-soon"] as const;
export type RotationEventType = (typeof rotationEventTypes)[number];

/** One rotation event (the payload every notifier formats; plain data, JSON-safe). */
export interface RotationEvent {
  readonly type: RotationEventType;
  /** Human title: `Rotation started`, `Rotation failed` … */
  readonly title: string;
  /** The service (rotation target) name. */
  readonly service: string;
  readonly env: string;
  readonly variable: string;
  /** `store://<store>/<key>`: the secret's name, never its value. */
  readonly secret: string;
  /** ISO-8601, from the project clock. */
  readonly at: string;
  readonly rotationId?: string;
  readonly strategy?: string;
  /** The record's status (`succeeded`, `grace`, `rolled-back`, `failed`) once known. */
  readonly status?: string;
  readonly oldVersionId?: string;
  readonly newVersionId?: string;
  readonly oldPrincipal?: string;
  readonly newPrincipal?: string;
  /** `user@host` that ran it. */
  readonly who?: string;
  readonly reason?: string;
  /** Why it failed or rolled back (scrubbed by the engine). */
  readonly error?: string;
  /** Seconds from start to this event (completed, failed, rollback). */
  readonly durationSeconds?: number;
  /** rollback: `automatic` (failed verification), `health` (health checks), `manual`. */
  readonly trigger?: "automatic" | "health" | "manual";
  /** due-soon: when the rotation is due (ISO-8601). */
  readonly dueAt?: string;
}

export const eventTitles: Readonly<Record<RotationEventType, string>> = {
  started: "Rotation started",
  completed: "Rotation completed",
  failed: "Rotation failed",
  rollback: "Rotation rolled back",
  "due-soon": "Rotation due soon",
};

/** The notifier types (`notifications:` keys; `webhooks` is a list of `webhook`s). */
export const notifierTypes = ["slack", "email", "pagerduty", "webhook"] as const;
export type NotifierType = (typeof notifierTypes)[number];

/** What a notifier gets from the dispatcher. */
export interface NotifierContext {
  readonly clock: Clock;
  /** Folder relative paths are resolved against (the config's folder). */
  readonly configDir: string;
  /** A setting that may be a `store://` reference (webhook URLs, routing keys, passwords, HMAC keys), resolved on use. */
  resolveSetting(value: string): Promise<string>;
  /** Report a problem that is not a failed delivery (stderr in the CLI). */
  warn(message: string): void;
}

/** One configured channel. `send` throws when the delivery failed for good (after its own retries). */
export interface Notifier {
  readonly type: NotifierType;
  /** `slack`, `email`, `pagerduty`, `webhook:<name>`: what per-variable `channels:` lists. */
  readonly name: string;
  /** Whether this channel wants the event at all (its `events:` and type-specific rules). */
  accepts(event: RotationEvent): boolean;
  send(event: RotationEvent): Promise<void>;
  /** Send what is queued and due (email digests); `force` sends it whether due or not. Returns how many events went out. */
  flush?(force?: boolean): Promise<number>;
  close?(): Promise<void>;
}

/** Builds the notifier(s) of one `notifications:` entry from its raw settings (checked by its own zod schema). */
export type NotifierFactory = (settings: unknown, ctx: NotifierContext, path: string) => Notifier;
