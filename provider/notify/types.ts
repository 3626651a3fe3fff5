import type { Clock } from "../core/clock";
import type { RotationEvent } from "../rotation/events";

/**
 * Rotation events and the notifier interface. An event carries names, version ids, principals
 * (user names, key ids), statuses and errors the engine already scrubbed: never a secret value.
 */

// The events are the rotation layer's (it publishes them); notifiers format them.
export { rotationEventTypes, eventTitles, type RotationEvent, type RotationEventType } from "../rotation/events";

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
