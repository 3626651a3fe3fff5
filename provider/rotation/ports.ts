import type { Clock } from "../core/clock";
import { errorMessage } from "../core/errors";
import type { Secret } from "../core/secret";
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
  /** The new credential, for HTTP checks that authenticate with it (`auth:`); only ever sent as a request header. */
  readonly credential?: { readonly principal: string; readonly secret: Secret };
  /** The SQL servers the rotation changed (one, or one per rollout instance), for the SQL health check types; absent for other targets. */
  readonly databases?: readonly HealthSqlAccess[];
}

/** A connection a SQL health check runs statements on (rows by column name; `$1` or `?` placeholders, the dialect's). */
export interface HealthSqlConnection {
  query(sql: string, values?: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  end(): Promise<void>;
}

/** Another server of a SQL service (a replica), reached with the service's other settings (database, TLS). */
export interface HealthSqlEndpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * A SQL service as the SQL health checks see it: logins built by the engine, so the credential
 * stays in the engine. Errors name the service and the server and never carry a password.
 */
export interface HealthSqlAccess {
  readonly dialect: "postgresql" | "mysql";
  /** The service (or `service[instance]` in a rollout), in messages. */
  readonly service: string;
  /** The server the service's settings name. */
  readonly endpoint: HealthSqlEndpoint;
  /** Log in as the rotated principal with the new credential, at the service or at `at`. */
  login(timeoutMs: number, at?: HealthSqlEndpoint): Promise<HealthSqlConnection>;
  /** Log in as the service's admin (its `admin` credential), at the service or at `at`. */
  admin(timeoutMs: number, at?: HealthSqlEndpoint): Promise<HealthSqlConnection>;
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
