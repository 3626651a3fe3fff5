import { DsopsError } from "../../core/errors";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { WorkerMetrics } from "../../metrics/worker";
import { queueSample, type Sql } from "./worker-queue";

/**
 * `dsops worker --metrics-listen <host:port>`: the worker's metrics (queue depth by state, age of
 * the oldest waiting job, runs by outcome: provider/metrics/worker.ts) and the process's rotation
 * metrics (dsops_rotation_*, health checks, dropped notifications) on one HTTP endpoint, `/metrics`.
 */

/** `host:port`, `[v6]:port` or `:port` (all interfaces); port 0: any free port. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new DsopsError(`--metrics-listen ${text}: expected <host>:<port> (127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464, :9464)`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export interface ServedWorkerMetrics {
  readonly metrics: WorkerMetrics;
  readonly url: string;
  close(): Promise<void>;
}

export async function serveWorkerMetrics(engine: ComposedRotationEngine, sql: Sql, listen: string): Promise<ServedWorkerMetrics> {
  const { host, port } = parseListen(listen);
  const { WorkerMetrics: Metrics } = require("../../metrics/worker") as typeof import("../../metrics/worker");
  const { serveMetrics } = require("../../metrics/index") as typeof import("../../metrics/index");
  const metrics = new Metrics(() => queueSample(sql), engine.config.raw.metrics?.prometheus?.labels);
  const rotation = engine.metrics?.registry;
  const source = { text: () => metrics.text(rotation ? [rotation] : []), registry: metrics.registry };
  try {
    const srv = await serveMetrics(source, { port, host, path: "/metrics" });
    process.stderr.write(`worker: serving metrics at ${srv.url}\n`);
    return { metrics, url: srv.url, close: () => srv.close() };
  } catch (e) {
    throw new DsopsError(`--metrics-listen ${listen}: cannot listen: ${(e as Error).message}`, { hint: "pick a free port, or an address of this machine" });
  }
}
