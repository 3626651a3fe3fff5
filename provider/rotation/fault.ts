import type { StepName } from "./types";

/** A point of the step machine: just before a step's action runs (its start already recorded) or just after (its end not yet recorded). */
export type FaultPoint =
  | `${"before" | "after"}:${StepName}`
  /** Rollouts: around wave N (1-based; `after` = applied, verified and monitored, progress saved) and around one instance's apply. */
  | `${"before" | "after"}:wave:${number}`
  | `${"before" | "after"}:instance:${string}`;

/** Called at every fault point; tests arm it to crash there. */
export type FaultHook = (point: FaultPoint) => void;

/**
 * The fault hook from the environment: `DSOPS_FAULT=after:apply` (or a comma-separated list)
 * makes the process die abruptly (SIGKILL: no cleanup, lock left behind) at that point;
 * `after:apply:stop` stops it instead (SIGSTOP: alive, holding the lock, until SIGCONT). For
 * crash and concurrency tests only; unset, it costs nothing.
 */
export function envFaultHook(env: NodeJS.ProcessEnv = process.env): FaultHook | undefined {
  const spec = env.DSOPS_FAULT;
  if (!spec) return undefined;
  const points = new Map<string, "kill" | "stop">();
  for (const part of spec.split(",").map((s) => s.trim())) {
    if (part.endsWith(":stop")) points.set(part.slice(0, -5), "stop");
    else points.set(part, "kill");
  }
  return (point) => {
    const action = points.get(point);
    if (!action) return;
    process.stderr.write(`dsops: fault injected at ${point} (${action})\n`);
    if (action === "stop") {
      process.kill(process.pid, "SIGSTOP");
      return;
    }
    process.kill(process.pid, "SIGKILL");
    for (;;) {
      /* never runs on: the signal is fatal */
    }
  };
}
