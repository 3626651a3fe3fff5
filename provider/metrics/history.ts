import type { RotationRecord } from "../rotation/types";
import { DsopsMetrics } from "./index";

/**
 * The rotation metrics as the history tells them: what `dsops metrics serve` and
 * `dsops metrics textfile` expose, since every CLI run is a process of its own. Counters count
 * every record ever kept; health-check and dropped-notification metrics exist only in the
 * process that rotated (the library's `defaultMetrics()`), so they are absent here.
 */
export function metricsFromHistory(records: readonly RotationRecord[], into = new DsopsMetrics()): DsopsMetrics {
  for (const r of records) {
    const base = { service: r.service, env: r.env };
    if (r.kind === "rollback") {
      // The rollback a failed health check starts is counted with its rotation.
      if (!r.reason?.startsWith("automatic:") && r.status === "succeeded") into.rollbacks.inc({ ...base, trigger: "manual" });
      continue;
    }
    into.rotationStarted.inc({ ...base, strategy: r.strategy });
    if (r.status === "running") continue;
    into.rotationCompleted.inc({ ...base, status: r.status });
    if (r.status === "rolled-back") into.rollbacks.inc({ ...base, trigger: r.error?.startsWith("health checks failed") ? "health" : "automatic" });
    if (r.finishedAt) into.rotationDuration.observe({ ...base, status: r.status }, Math.max(0, (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000));
  }
  return into;
}
