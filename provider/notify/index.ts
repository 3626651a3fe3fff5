import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
import { notifierFactories } from "./registry";
import type { NotificationsSettings, VariableNotifications } from "./settings";
import type { NotifyPort } from "../rotation/ports";
import type { Notifier, NotifierContext, RotationEvent } from "./types";

export * from "./types";
export { notifierFactories } from "./registry";

/** What the hub reports about a delivery that failed for good. */
export interface DropReport {
  readonly channel: string;
  readonly event: RotationEvent;
  readonly message: string;
}

export interface NotificationsOptions {
  readonly clock: Clock;
  readonly configDir: string;
  /** Resolve a `store://` setting (the engine's resolver); plain strings pass through. */
  readonly resolveRef?: (ref: string) => Promise<string>;
  /** A delivery failed (after its retries) or timed out: default a line on stderr. */
  readonly onDropped?: (d: DropReport) => void;
  readonly warn?: (message: string) => void;
}

/**
 * The notification hub of one configuration: builds every configured channel, and sends each
 * event to the channels that want it, in the background. A delivery never throws into the
 * caller and never blocks it: `settle(capMs)` waits for what is in flight, at most `capMs`.
 */
export class Notifications implements NotifyPort {
  readonly notifiers: Notifier[] = [];
  readonly waitMs: number;
  private readonly abandoned = new Set<Promise<void>>();
  private readonly inflight = new Map<Promise<void>, { channel: string; event: RotationEvent }>();

  constructor(
    settings: NotificationsSettings | undefined,
    private readonly opts: NotificationsOptions,
  ) {
    this.waitMs = settings?.wait_ms ?? 10000;
    if (!settings) return;
    const ctx: NotifierContext = {
      clock: opts.clock,
      configDir: opts.configDir,
      resolveSetting: async (v) => (v.startsWith("store://") && opts.resolveRef ? opts.resolveRef(v) : v),
      warn: opts.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`)),
    };
    if (settings.slack) this.notifiers.push(notifierFactories.slack(settings.slack, ctx, "notifications.slack"));
    if (settings.email) this.notifiers.push(notifierFactories.email(settings.email, ctx, "notifications.email"));
    if (settings.pagerduty) this.notifiers.push(notifierFactories.pagerduty(settings.pagerduty, ctx, "notifications.pagerduty"));
    (settings.webhooks ?? []).forEach((w, i) => this.notifiers.push(notifierFactories.webhook(w, ctx, `notifications.webhooks[${i}]`)));
  }

  /** The channels an event goes to, given the variable's `rotation.notifications`. */
  channelsFor(event: RotationEvent, perVariable?: VariableNotifications): Notifier[] {
    if (perVariable?.enabled === false) return [];
    if (perVariable?.events && !perVariable.events.includes(event.type)) return [];
    const chosen = perVariable?.channels;
    return this.notifiers.filter((n) => n.accepts(event) && (!chosen || chosen.includes(n.name) || chosen.includes(n.type)));
  }

  /** Send `event` in the background; returns the delivery promises (which never reject). */
  emit(event: RotationEvent, perVariable?: VariableNotifications): Promise<void>[] {
    const out: Promise<void>[] = [];
    for (const n of this.channelsFor(event, perVariable)) {
      const holder: { p?: Promise<void> } = {};
      const p: Promise<void> = (async () => {
        try {
          await n.send(event);
        } catch (e) {
          if (!(holder.p && this.abandoned.has(holder.p))) this.drop({ channel: n.name, event, message: errorMessage(e) });
        }
      })().finally(() => {
        this.inflight.delete(p);
        this.abandoned.delete(p);
      });
      holder.p = p;
      this.inflight.set(p, { channel: n.name, event });
      out.push(p);
    }
    return out;
  }

  /** Deliveries still in flight. */
  get pending(): number {
    return this.inflight.size;
  }

  /**
   * Wait for the deliveries in flight, at most `capMs` (default `notifications.wait_ms`) of
   * real time; those still running then are reported dropped (they may still arrive later).
   * Returns how many were abandoned.
   */
  async settle(capMs = this.waitMs): Promise<number> {
    if (!this.inflight.size) return 0;
    const waiting = [...this.inflight.keys()];
    let timer: NodeJS.Timeout | undefined;
    const capped = await Promise.race([
      Promise.all(waiting).then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), capMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (!capped) return 0;
    const left = waiting.filter((p) => this.inflight.has(p));
    for (const p of left) {
      const d = this.inflight.get(p) as { channel: string; event: RotationEvent };
      this.inflight.delete(p);
      // Its own failure, should it come later, is not reported again.
      this.abandoned.add(p);
      this.drop({ ...d, message: `still in flight after ${capMs} ms; not waiting for it` });
    }
    return left.length;
  }

  /** Send due email digests (`force`: whatever is queued). */
  async flush(force = false): Promise<number> {
    let n = 0;
    for (const x of this.notifiers) if (x.flush) n += await x.flush(force);
    return n;
  }

  private drop(d: DropReport): void {
    if (this.opts.onDropped) this.opts.onDropped(d);
    else process.stderr.write(`warning: notification to ${d.channel} (${d.event.type} ${d.event.service}/${d.event.env}) dropped: ${d.message}\n`);
  }
}
