import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { dirname } from "node:path";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RotationEvent } from "../rotation/events";
import type { MetricsPort } from "../rotation/ports";

/**
 * dsops's Prometheus metrics (names as dsops defines them), in a registry of their own (not
 * prom-client's global one). The rotation engine updates them from its events; `dsops metrics
 * serve` exposes them; `writeTextfile` writes them for node_exporter's textfile collector.
 */
export class DsopsMetrics implements MetricsPort {
  readonly registry = new Registry();
  readonly rotationStarted: Counter<"service" | "env" | "strategy">;
  readonly rotationCompleted: Counter<"service" | "env" | "status">;
  readonly rotationDuration: Histogram<"service" | "env" | "status">;
  readonly rollbacks: Counter<"service" | "env" | "trigger">;
  readonly healthDuration: Histogram<"service" | "env" | "check" | "type">;
  readonly healthStatus: Gauge<"service" | "env" | "check" | "type">;
  readonly notificationsDropped: Counter<"channel" | "event">;

  /** `labels`: constant labels on every metric (`metrics.prometheus.labels`). */
  constructor(labels: Readonly<Record<string, string>> = {}) {
    if (Object.keys(labels).length) this.registry.setDefaultLabels({ ...labels });
    const registers = [this.registry];
    this.rotationStarted = new Counter({ name: "dsops_rotation_started_total", help: "Rotations started", labelNames: ["service", "env", "strategy"], registers });
    this.rotationCompleted = new Counter({
      name: "dsops_rotation_completed_total",
      help: "Rotations finished, by outcome (succeeded, grace, rolled-back, failed)",
      labelNames: ["service", "env", "status"],
      registers,
    });
    this.rotationDuration = new Histogram({
      name: "dsops_rotation_duration_seconds",
      help: "Time from a rotation's start to its outcome",
      labelNames: ["service", "env", "status"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.rollbacks = new Counter({ name: "dsops_rollback_total", help: "Rollbacks (automatic after a failed verification, health, manual)", labelNames: ["service", "env", "trigger"], registers });
    this.healthDuration = new Histogram({
      name: "dsops_health_check_duration_seconds",
      help: "Duration of one health check",
      labelNames: ["service", "env", "check", "type"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.healthStatus = new Gauge({ name: "dsops_health_check_status", help: "Last result of a health check (1 healthy, 0 unhealthy)", labelNames: ["service", "env", "check", "type"], registers });
    this.notificationsDropped = new Counter({ name: "dsops_notifications_dropped_total", help: "Notifications not delivered (failed after retries, or timed out)", labelNames: ["channel", "event"], registers });
  }

  /** Count a rotation event. */
  observe(e: RotationEvent): void {
    const base = { service: e.service, env: e.env };
    switch (e.type) {
      case "started":
        this.rotationStarted.inc({ ...base, strategy: e.strategy ?? "" });
        return;
      case "completed":
      case "failed":
      case "rollback": {
        if (e.type === "rollback") this.rollbacks.inc({ ...base, trigger: e.trigger ?? "automatic" });
        // A manual rollback is not the end of a rotation.
        if (e.type === "rollback" && e.trigger === "manual") return;
        const status = e.type === "rollback" ? "rolled-back" : e.type === "failed" ? "failed" : (e.status ?? "succeeded");
        this.rotationCompleted.inc({ ...base, status });
        if (e.durationSeconds !== undefined) this.rotationDuration.observe({ ...base, status }, e.durationSeconds);
        return;
      }
      default:
        return;
    }
  }

  healthCheck(labels: { service: string; env: string; check: string; type: string }, healthy: boolean, seconds: number): void {
    this.healthDuration.observe(labels, seconds);
    this.healthStatus.set(labels, healthy ? 1 : 0);
  }

  dropped(channel: string, event: string): void {
    this.notificationsDropped.inc({ channel, event });
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Write the metrics for node_exporter's textfile collector: `<path>.tmp` then rename (the collector never reads half a file). */
  async writeTextfile(path: string): Promise<void> {
    const text = await this.text();
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o644 });
    chmodSync(tmp, 0o644);
    renameSync(tmp, path);
  }
}

let shared: DsopsMetrics | undefined;

/** The process's metrics (the engine's default; `dsops metrics serve` exposes these). */
export function defaultMetrics(): DsopsMetrics {
  shared ??= new DsopsMetrics();
  return shared;
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** What `serveMetrics` exposes: dsops's metrics, or any source of exposition text (the worker's). */
export type MetricsSource = Pick<DsopsMetrics, "text"> & { readonly registry: Pick<Registry, "contentType"> };

/** Serve `metrics` over HTTP at `path` (GET; 404 elsewhere). Port 0: a free one. */
export function serveMetrics(metrics: MetricsSource, o: { port: number; path?: string; host?: string }): Promise<MetricsServer> {
  const path = o.path ?? "/metrics";
  const host = o.host ?? "127.0.0.1";
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== path || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(url.pathname === path ? 405 : 404, { "content-type": "text/plain" }).end(url.pathname === path ? "method not allowed\n" : `not found; metrics are at ${path}\n`);
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(req.method === "HEAD" ? undefined : text),
      (e: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, host, () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${path}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
