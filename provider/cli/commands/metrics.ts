import type { Command } from "commander";
import type { VariableRotation } from "../../rotation/settings";
import { DsopsError } from "../../core/errors";
import type { ComposedRotationEngine } from "../../compose/rotation";
import { commandGroup, loadConfig, parseDuration, printJson, table } from "../util";

/**
 * Rotation operations: `dsops metrics serve|textfile` (Prometheus metrics from the rotation
 * history), `dsops notify flush` (send due email digests) and `dsops secrets due` (rotations due
 * within a lead time, optionally sent as due-soon notifications). Never a value.
 */
export function register(program: Command): void {
  // Registered once even when the module is listed both as a command and as an optional module.
  if (program.commands.some((c) => c.name() === "metrics")) return;

  const metrics = program.command("metrics").description("Prometheus metrics of rotations (dsops_rotation_*, dsops_rollback_total …)");
  metrics
    .command("serve")
    .description("serve the metrics over HTTP (computed from the rotation history at each scrape) until interrupted")
    .option("--port <port>", "TCP port (default metrics.prometheus.port, else 9090; 0: any free port)")
    .option("--path <path>", "URL path (default metrics.prometheus.path, else /metrics)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .action(async (o: { port?: string; path?: string; host: string }, cmd: Command) => {
      const config = loadConfig(cmd);
      const prom = config.raw.metrics?.prometheus;
      const port = o.port !== undefined ? Number(o.port) : (prom?.port ?? 9090);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DsopsError(`--port ${o.port}: expected a port number`);
      const path = o.path ?? prom?.path ?? "/metrics";
      if (!path.startsWith("/")) throw new DsopsError(`--path ${path}: must start with /`);
      const { DsopsMetrics, serveMetrics } = require("../../metrics/index") as typeof import("../../metrics/index");
      const { metricsFromHistory } = require("../../metrics/history") as typeof import("../../metrics/history");
      // Reads the history only: the bare engine, without notifications or metrics.
      const { RotationEngine: Engine } = require("../../rotation/engine") as typeof import("../../rotation/engine");
      const engine = new Engine(config);
      // A registry whose text is rebuilt from the history at each scrape.
      const live = new DsopsMetrics(prom?.labels);
      const fresh = async () => metricsFromHistory(await engine.history(), new DsopsMetrics(prom?.labels)).text();
      live.text = fresh;
      const srv = await serveMetrics(live, { port, path, host: o.host });
      process.stderr.write(`dsops: serving metrics at ${srv.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await srv.close();
      await engine.close();
    });
  metrics
    .command("textfile")
    .description("write the metrics for node_exporter's textfile collector (atomically: a .prom file)")
    .argument("<path>", "file to write, e.g. /var/lib/node_exporter/textfile/dsops.prom")
    .action(async (path: string, _o: unknown, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const { metricsFromHistory } = require("../../metrics/history") as typeof import("../../metrics/history");
        const { DsopsMetrics } = require("../../metrics/index") as typeof import("../../metrics/index");
        await metricsFromHistory(await engine.history(), new DsopsMetrics(engine.config.raw.metrics?.prometheus?.labels)).writeTextfile(path);
        process.stderr.write(`dsops: metrics written to ${path}\n`);
      }, { notifications: false });
    });

  const notify = program.command("notify").description("rotation notifications (Slack, email, PagerDuty, webhooks)");
  notify
    .command("flush")
    .description("send email digests (batch_mode hourly|daily) whose hour or day is over")
    .option("--force", "send what is queued now, due or not")
    .action(async (o: { force?: boolean }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const hub = engine.notifications;
        if (!hub) throw new DsopsError("no notification channel is configured (notifications: in dsops.yaml)");
        const n = await hub.flush(!!o.force);
        process.stdout.write(n ? `sent a digest of ${n} event(s)\n` : "no digest due\n");
      });
    });

  const secrets = commandGroup(program, "secrets", "write and inspect secrets in writable stores");
  secrets
    .command("due")
    .description("secrets whose scheduled rotation (rotation.schedule) is due within a lead time, or overdue")
    .option("--within <duration>", "lead time (7d, 24h, 90m)", "7d")
    .option("-e, --env <env>", "only this env")
    .option("--notify", "send a due-soon notification for each")
    .option("--json", "machine-readable output")
    .action(async (o: { within: string; env?: string; notify?: boolean; json?: boolean }, cmd: Command) => {
      const withinMs = parseDuration(o.within, "--within");
      await withEngine(cmd, async (engine) => {
        const { dueSoon } = require("../../rotation/due") as typeof import("../../rotation/due");
        const { dueSoonEvent } = require("../../notify/due") as typeof import("../../notify/due");
        const { clock } = require("../../core/clock") as typeof import("../../core/clock");
        const now = clock().now();
        const due = await dueSoon(engine, { now, withinMs, ...(o.env ? { env: o.env } : {}) });
        if (o.notify) {
          const hub = engine.notifications;
          if (!hub) throw new DsopsError("--notify: no notification channel is configured (notifications: in dsops.yaml)");
          for (const d of due) hub.emit(dueSoonEvent(d, now), (engine.config.envs[d.env][d.variable].spec.rotation as VariableRotation | undefined)?.notifications);
          await hub.settle();
        }
        if (o.json) return printJson(due);
        if (!due.length) {
          process.stdout.write(`no rotation due within ${o.within}\n`);
          return;
        }
        const rows = [["ENV", "VARIABLE", "SERVICE", "SCHEDULE", "LAST ROTATION", "DUE"]];
        for (const d of due) rows.push([d.env, d.variable, d.service, d.schedule, d.lastRotatedAt ?? "never", `${d.dueAt}${d.overdue ? " (overdue)" : ""}`]);
        process.stdout.write(table(rows));
      });
    });
}

async function withEngine(cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>, opts: { notifications?: false } = {}): Promise<void> {
  const { composeRotation } = require("../../compose/rotation") as typeof import("../../compose/rotation");
  const engine = composeRotation(loadConfig(cmd), { metrics: false, ...opts });
  try {
    await fn(engine);
  } finally {
    await engine.close();
  }
}
