import * as z from "zod";
import { durationMs, durationSchema } from "../core/duration";
import { httpApiCheckSchemas } from "./http-settings";

/**
 * `rotation.health` and `rotation.monitor` (zod only; the checks live in ./checks.ts).
 * Checks run right after the new credential is made current, then every `interval` for
 * `period`; `failures` consecutive failed rounds (a round fails when any check fails) roll the
 * rotation back through the engine.
 */

const base = {
  /** Names the check in messages and metrics (default `<type>-<index>`). */
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/).optional(),
  timeout_ms: z.number().int().positive().max(600000).default(10000),
};

export const sqlCheckSchema = z.strictObject({
  ...base,
  type: z.literal("sql"),
  /** Run as the rotated user, logged in with the new credential, at the service (default `SELECT 1`). */
  query: z.string().default("SELECT 1"),
});

export const httpCheckSchema = z.strictObject({
  ...base,
  type: z.literal("http"),
  url: z.string().url(),
  method: z.enum(["GET", "HEAD", "POST"]).default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  /** Healthy statuses (default any 2xx). */
  expect_status: z.union([z.number().int(), z.array(z.number().int()).min(1)]).optional(),
  /** Slower than this is unhealthy. */
  max_latency_ms: z.number().int().positive().optional(),
  /** A regular expression the body must match. */
  body_match: z.string().optional(),
});

export const scriptCheckSchema = z.strictObject({
  ...base,
  type: z.literal("script"),
  /** Program and arguments (no shell), or one string run by /bin/sh -c. Exit 0 = healthy. */
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  /** Extra environment (the DSOPS_* variables are always set; never the secret). */
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
});

/**
 * dsops's `kubernetes_pod_ready`: the pods of `namespace` matching `label_selector` are Ready
 * (their Ready condition), read through the official Kubernetes client with the kubeconfig
 * file and context (as rollout discovery `kubernetes`). Unhealthy when no pod matches, when a
 * pod is not Ready, or (with `min_ready`) when fewer than that many are.
 */
export const kubernetesPodReadyCheckSchema = z.strictObject({
  ...base,
  type: z.literal("kubernetes_pod_ready"),
  namespace: z.string().min(1).default("default"),
  label_selector: z.string().min(1),
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  /** At least this many Ready pods (the others may be starting); default: every matching pod. */
  min_ready: z.number().int().min(1).optional(),
});

/*
 * SQL health types (dsops's names and fields; implementations in ./sql-checks.ts). They log in at
 * the rotated SQL service (postgresql, mysql) with its own settings; `replicas` are other
 * servers of the same service (host and port; database and TLS as the service's).
 */

const replicaEndpoint = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535),
});

/** Log in with the new credential and run `SELECT 1`; slower than `max_connect_ms` to connect is unhealthy. */
export const connectionCheckSchema = z.strictObject({
  ...base,
  type: z.literal("connection"),
  max_connect_ms: z.number().int().positive().optional(),
});

/** Run `query` as the rotated user; slower than `threshold_ms` is unhealthy. */
export const queryLatencyCheckSchema = z.strictObject({
  ...base,
  type: z.literal("query_latency"),
  query: z.string().min(1).default("SELECT 1"),
  threshold_ms: z.number().int().positive().default(500),
});

/**
 * Open `connections` logins at once with the new credential (each must succeed), then compare
 * the server's connections in use with its limit (`max_connections`, or the server's own,
 * whichever is lower): at the limit is unhealthy, at `warning_threshold_pct` a warning.
 */
export const connectionPoolCheckSchema = z.strictObject({
  ...base,
  type: z.literal("connection_pool"),
  connections: z.number().int().min(1).max(500).default(1),
  max_connections: z.number().int().positive().optional(),
  warning_threshold_pct: z.number().min(1).max(100).default(80),
});

/** PostgreSQL: each replica must replay what the primary had written when the check began within `max_lag` (or `max_lag_seconds`; default 10 s). */
export const replicationLagCheckSchema = z.strictObject({
  ...base,
  type: z.literal("replication_lag"),
  replicas: z.array(replicaEndpoint).min(1),
  max_lag: durationSchema.optional(),
  max_lag_seconds: z.number().positive().optional(),
});

/** PostgreSQL: each replica is in recovery and streaming from the primary, and the rotated credential logs in there once it has been replayed. */
export const replicationConnectionCheckSchema = z.strictObject({
  ...base,
  type: z.literal("replication_connection"),
  replicas: z.array(replicaEndpoint).min(1),
});

/** Open transactions at the server (seen by the admin, this check's own session left out); more than `max_transactions` is unhealthy. */
export const activeTransactionsCheckSchema = z.strictObject({
  ...base,
  type: z.literal("active_transactions"),
  max_transactions: z.number().int().min(0).default(50),
});

export const sqlHealthTypeSchemas = [
  connectionCheckSchema,
  queryLatencyCheckSchema,
  connectionPoolCheckSchema,
  replicationLagCheckSchema,
  replicationConnectionCheckSchema,
  activeTransactionsCheckSchema,
] as const;

export const healthCheckSchema = z.discriminatedUnion("type", [
  sqlCheckSchema,
  httpCheckSchema,
  scriptCheckSchema,
  kubernetesPodReadyCheckSchema,
  // HTTP API checks (http_endpoint, response_time, error_rate, rate_limit): ./http-settings.ts
  ...httpApiCheckSchemas,
  // SQL health types (connection, query_latency, connection_pool, replication_*, active_transactions)
  ...sqlHealthTypeSchemas,
]);
export type HealthCheckSettings = z.infer<typeof healthCheckSchema>;

/** The monitoring window is the rotation's (provider/rotation/monitor.ts); re-exported for the checks. */
export { monitorSchema, type MonitorSettings } from "../rotation/monitor";

declare module "../rotation/settings" {
  interface RotationSections {
    /** Health checks run once the new credential is current; failures roll the rotation back. */
    health?: HealthCheckSettings[];
  }
}

export { durationMs };
