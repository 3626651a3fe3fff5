import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
import type { VariableRotation } from "./settings";
import type { RotationEvent, RotationEventBus, VariableNotificationSettings } from "./events";

/**
 * The ports through which the rotation engine reaches the operations around it: notifications,
 * metrics and health checks. The interfaces live here; the implementations live above
 * (provider/notify, provider/metrics, provider/health), and provider/compose/rotation.ts plugs
 * them in. An engine built without a port does without it (a rotation with `rotation.health`
 * checks refuses to start without a health port rather than skip them).
 */

/** Sends rotation events to the configured channels (provider/notify's `Notifications`). */
export interface NotifyPort {
  /** Send in the background; never throws into the engine. */
  emit(event: RotationEvent, perVariable?: VariableNotificationSettings): unknown;
  /** Wait (capped) for the deliveries in flight. */
  settle(): Promise<unknown>;
}

/**
 * What a generated value must meet besides its target's rules: dsops's `policies:` (patterns and
 * complexity, provider/guard) of the variable's env. The problems name the rules, never the
 * value; a value with problems is drawn again (a bounded number of times).
 */
export interface ValuePolicyPort {
  problems(env: string, value: string): readonly string[];
}

/** Counts rotation events and health checks (provider/metrics's `DsopsMetrics`). */
export interface MetricsPort {
  observe(event: RotationEvent): void;
  healthCheck(labels: { service: string; env: string; check: string; type: string }, healthy: boolean, seconds: number): void;
}

/** What a health check knows about the rotation it checks. */
export interface HealthContext {
  readonly service: string;
  readonly env: string;
  readonly variable: string;
  /** `store://<store>/<key>` (a name). */
  readonly secret: string;
  readonly rotationId: string;
  readonly strategy: string;
  readonly oldVersionId?: string;
  readonly newVersionId?: string;
  readonly oldPrincipal?: string;
  readonly newPrincipal?: string;
  readonly configDir: string;
  /** Log in at the service with the new credential and run `query` (throws when it fails); absent when the target cannot verify. */
  readonly sql?: (query: string, timeoutMs: number) => Promise<void>;
}

/** `rotation.health` checks and a `monitor:` block, as the configuration gives them. */
export type HealthChecks = NonNullable<VariableRotation["health"]>;
export type HealthMonitor = VariableRotation["monitor"];

/** One check's result in a round. */
export interface HealthCheckResult {
  readonly check: string;
  readonly type: string;
  readonly healthy: boolean;
  readonly seconds: number;
}

/** Runs health checks for the monitoring period (provider/health's `monitorHealth`). */
export interface HealthPort {
  monitor(
    checks: HealthChecks,
    monitor: HealthMonitor,
    ctx: HealthContext,
    o: { clock: Clock; onResult?: (r: HealthCheckResult, round: number) => void; onRound?: (round: number, failed: string | undefined) => void },
  ): Promise<{ readonly healthy: boolean; readonly failure?: string }>;
}

/** Subscribe a notify and a metrics port to the engine's bus (metrics count first, then the channels get the event). */
export function connectPorts(bus: RotationEventBus, ports: { notify?: NotifyPort; metrics?: MetricsPort }): void {
  const { notify, metrics } = ports;
  if (metrics) {
    bus.on("rotation", ({ event }) => metrics.observe(event));
    bus.on("health-check", (h) => metrics.healthCheck({ service: h.service, env: h.env, check: h.check, type: h.type }, h.healthy, h.seconds));
  }
  if (notify) {
    bus.on("rotation", ({ event, notifications }) => {
      try {
        notify.emit(event, notifications);
      } catch (err) {
        process.stderr.write(`warning: rotation event ${event.type} not sent: ${errorMessage(err)}\n`);
      }
    });
    bus.onRunEnd(async () => {
      try {
        await notify.settle();
      } catch (e) {
        process.stderr.write(`warning: notifications: ${errorMessage(e)}\n`);
      }
    });
  }
}
