import { Counter, Gauge, Registry } from "prom-client";

/**
 * `dsops worker`'s own Prometheus metrics (served on `--metrics-listen` with the rotation
 * metrics of the process): the job queue's depth by state and the age of its oldest waiting job
 * (sampled from PostgreSQL at each scrape, so every worker shows the whole queue), and this
 * process's runs by outcome.
 */

/** Queue states as the metrics label them: pg-boss's `created|retry|active|failed`, and `dead` (the dead-letter queue). */
export const workerQueueStates = ["created", "retry", "active", "failed", "dead"] as const;
export type WorkerQueueState = (typeof workerQueueStates)[number];

/** What a worker ends a job with. */
export const workerOutcomes = ["rotated", "skipped", "failed", "dead"] as const;
export type WorkerOutcome = (typeof workerOutcomes)[number];

/** One sample of the queue. */
export interface QueueSample {
  readonly counts: Readonly<Record<WorkerQueueState, number>>;
  /** Seconds since the oldest job waiting (created or retry) was queued; 0 when none waits. */
  readonly oldestWaitingSeconds: number;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly queueJobs: Gauge<"state">;
  readonly oldestWaiting: Gauge;
  readonly runs: Counter<"outcome">;

  /** `sample` reads the queue (at each scrape); `labels`: constant labels (`metrics.prometheus.labels`). */
  constructor(
    private readonly sample: () => Promise<QueueSample>,
    labels: Readonly<Record<string, string>> = {},
  ) {
    if (Object.keys(labels).length) this.registry.setDefaultLabels({ ...labels });
    const registers = [this.registry];
    this.queueJobs = new Gauge({ name: "dsops_worker_queue_jobs", help: "Rotation jobs in the queue by state (created, retry, active, failed; dead: in the dead-letter queue)", labelNames: ["state"], registers });
    this.oldestWaiting = new Gauge({ name: "dsops_worker_oldest_waiting_seconds", help: "Age of the oldest rotation job waiting to run (created or retry); 0 when none waits", registers });
    this.runs = new Counter({ name: "dsops_worker_runs_total", help: "Rotation jobs this worker ended, by outcome (rotated, skipped, failed attempt, dead-lettered)", labelNames: ["outcome"], registers });
    for (const outcome of workerOutcomes) this.runs.inc({ outcome }, 0);
  }

  count(outcome: WorkerOutcome): void {
    this.runs.inc({ outcome });
  }

  /** Sample the queue, then the exposition text; `more` adds other registries' text (the process's rotation metrics). */
  async text(more: Array<{ metrics(): Promise<string> }> = []): Promise<string> {
    const s = await this.sample();
    for (const state of workerQueueStates) this.queueJobs.set({ state }, s.counts[state] ?? 0);
    this.oldestWaiting.set(s.oldestWaitingSeconds);
    const parts = [await this.registry.metrics()];
    for (const r of more) parts.push(await r.metrics());
    return parts.join("\n");
  }
}
