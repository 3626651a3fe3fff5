import { errorMessage } from "../core/errors";

/**
 * Rotation events and the engine's event bus. An event carries names, version ids, principals
 * (user names, key ids), statuses and errors the engine already scrubbed: never a secret value.
 * The engine publishes; notifications and metrics (provider/notify, provider/metrics) subscribe
 * through the ports of ./ports.ts, wired by provider/compose/rotation.ts. The rotation layer
 * never imports them.
 */

/**
 * What happened. `due-soon` comes from `dsops secrets due --notify`, `dead-lettered` from
 * `dsops worker` (a job that exhausted its retries), the others from the engine.
 */
export const rotationEventTypes = [
  "started",
  "completed",
  "failed",
  "rollback",
  "due-soon",
  "dead-lettered",
  // provider/rotation/governance.ts: approvals and break-glass.
  "approval-requested",
  "approval-granted",
  "approval-denied",
  "approval-expired",
  "breakglass-opened",
  "breakglass-closed",
] as const;
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
  /** due-soon: when the rotation is due (ISO-8601); dead-lettered: the due instant its job was queued for. */
  readonly dueAt?: string;
  /** dead-lettered: how many attempts the job had (the first run and its retries). */
  readonly attempts?: number;
  /** dead-lettered: the job's id in the worker queue. */
  readonly jobId?: string;
  /** approval-* and breakglass-*: the approval request's or break-glass's id, and when it expires (ISO-8601). */
  readonly approvalId?: string;
  readonly breakGlassId?: string;
  readonly expiresAt?: string;
}

export const eventTitles: Readonly<Record<RotationEventType, string>> = {
  started: "Rotation started",
  completed: "Rotation completed",
  failed: "Rotation failed",
  rollback: "Rotation rolled back",
  "due-soon": "Rotation due soon",
  "dead-lettered": "Rotation dead-lettered",
  "approval-requested": "Rotation approval requested",
  "approval-granted": "Rotation approved",
  "approval-denied": "Rotation denied",
  "approval-expired": "Rotation approval expired",
  "breakglass-opened": "Break-glass opened",
  "breakglass-closed": "Break-glass closed",
};

/** The per-variable notification settings (`rotation.notifications`, checked by provider/notify's schema) an event is sent under. */
export type VariableNotificationSettings = {
  readonly enabled?: boolean;
  readonly events?: RotationEventType[];
  readonly channels?: string[];
};

/** One health check's result, as the health gate reports it (metrics count it). */
export interface HealthCheckObserved {
  readonly service: string;
  readonly env: string;
  readonly check: string;
  readonly type: string;
  readonly healthy: boolean;
  readonly seconds: number;
}

/** The events of the bus, by name, with their payloads. */
export interface RotationEventMap {
  /** A rotation event (started, completed, failed, rollback), with the variable's notification settings. */
  readonly rotation: { readonly event: RotationEvent; readonly notifications?: VariableNotificationSettings };
  /** A health check ran (after promote, or between rollout waves). */
  readonly "health-check": HealthCheckObserved;
}

type Listener<K extends keyof RotationEventMap> = (payload: RotationEventMap[K]) => void;

/**
 * A small typed event bus. `emit` calls each listener in turn and never throws (a listener's
 * error is a warning: metrics and notifications never fail a rotation). `runEnded` awaits the
 * end-of-run hooks (deliveries in flight, the metrics textfile), each capped by its owner.
 */
export class RotationEventBus {
  private readonly listeners: { [K in keyof RotationEventMap]: Array<Listener<K>> } = { rotation: [], "health-check": [] };
  private readonly endHooks: Array<() => Promise<void>> = [];

  /** Subscribe; returns the unsubscribe function. */
  on<K extends keyof RotationEventMap>(name: K, listener: Listener<K>): () => void {
    const list = this.listeners[name] as Array<Listener<K>>;
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof RotationEventMap>(name: K, payload: RotationEventMap[K]): void {
    for (const l of [...(this.listeners[name] as Array<Listener<K>>)]) {
      try {
        l(payload);
      } catch {
        /* a listener never fails a rotation */
      }
    }
  }

  /** Run `hook` at the end of each command's run (rotate, rollback). */
  onRunEnd(hook: () => Promise<void>): void {
    this.endHooks.push(hook);
  }

  /** End of a run: every hook, in order; a failing hook is a warning on stderr. */
  async runEnded(): Promise<void> {
    for (const h of this.endHooks) {
      try {
        await h();
      } catch (e) {
        process.stderr.write(`warning: ${errorMessage(e)}\n`);
      }
    }
  }
}
