import { execFileSync } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { StepName } from "./types";

/** A point of the step machine: just before a step's action runs (its start already recorded) or just after (its end not yet recorded). */
export type FaultPoint =
  | `${"before" | "after"}:${StepName}`
  /** Rollouts: around wave N (1-based; `after` = applied, verified and monitored, progress saved) and around one instance's apply. */
  | `${"before" | "after"}:wave:${number}`
  | `${"before" | "after"}:instance:${string}`
  /** Multi-environment chains (./chain): around one stage's rotation (`after` = rotated, soak started and saved), and before the chain's rollback. */
  | `chain:${"before" | "after"}:${string}`
  | "chain:before:rollback";

/** Called at every fault point; tests arm it to crash there. */
export type FaultHook = (point: FaultPoint) => void;

type FaultAction = "kill" | "stop" | "fill" | "readonly";
const ACTIONS: readonly FaultAction[] = ["stop", "fill", "readonly"];

/** The file `fill` writes into `DSOPS_FAULT_DISK` (the test deletes it to free the space). */
export const FILL_FILE = ".dsops-fault-fill";

/**
 * The fault hook from the environment: `DSOPS_FAULT=after:apply` (or a comma-separated list)
 * makes the process die abruptly (SIGKILL: no cleanup, lock left behind) at that point;
 * `after:apply:stop` stops it instead (SIGSTOP: alive, holding the lock, until SIGCONT). Disk
 * drills (the process goes on): `after:apply:fill` fills the file system holding the folder
 * `DSOPS_FAULT_DISK` (writes `<folder>/.dsops-fault-fill` until ENOSPC), `after:apply:readonly`
 * remounts the mount point `DSOPS_FAULT_DISK` read-only (root only). For crash, concurrency and
 * disk tests only; unset, it costs nothing.
 */
export function envFaultHook(env: NodeJS.ProcessEnv = process.env): FaultHook | undefined {
  const spec = env.DSOPS_FAULT;
  if (!spec) return undefined;
  const points = new Map<string, FaultAction>();
  for (const part of spec.split(",").map((s) => s.trim())) {
    const action = ACTIONS.find((a) => part.endsWith(`:${a}`));
    if (action) points.set(part.slice(0, -(action.length + 1)), action);
    else points.set(part, "kill");
  }
  return (point) => {
    const action = points.get(point);
    if (!action) return;
    process.stderr.write(`dsops: fault injected at ${point} (${action})\n`);
    if (action === "fill") return fillDisk(diskOf(env));
    if (action === "readonly") {
      execFileSync("mount", ["-o", "remount,ro", diskOf(env)], { stdio: "ignore" });
      return;
    }
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

function diskOf(env: NodeJS.ProcessEnv): string {
  const d = env.DSOPS_FAULT_DISK;
  if (!d) throw new Error("DSOPS_FAULT …:fill/:readonly needs DSOPS_FAULT_DISK (a folder on the file system to fill, or a mount point)");
  return d;
}

/** Write zeros into `<dir>/.dsops-fault-fill` until the file system is full (ENOSPC), in shrinking chunks so no byte is left. Stops at 1 GiB. */
function fillDisk(dir: string): void {
  const fd = openSync(join(dir, FILL_FILE), "a");
  let total = 0;
  try {
    for (let chunk = 1 << 20; chunk >= 1; chunk >>= 4) {
      const buf = Buffer.alloc(chunk);
      for (;;) {
        if (total >= 1 << 30) return;
        try {
          total += writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}
