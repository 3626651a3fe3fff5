import { execFileSync } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DsopsError } from "../core/errors";
import type { StepName } from "./types";

/** A point of the step machine: just before a step's action runs (its start already recorded) or just after (its end not yet recorded). */
export type FaultPoint =
  | `${"before" | "after"}:${StepName}`
  /** Rollouts: around wave N (1-based; `after` = applied, verified and monitored, progress saved) and around one instance's apply. */
  | `${"before" | "after"}:wave:${number}`
  | `${"before" | "after"}:instance:${string}`
  /** Multi-environment chains (./chain): around one stage's rotation (`after` = rotated, soak started and saved), before the chain's rollback, and after one stage's rollback (`chain:after:rollback:<env>`, its outcome saved). */
  | `chain:${"before" | "after"}:${string}`
  | "chain:before:rollback"
  /** Approvals (./governance.ts): a decision, after the request was read and checked, before it is recorded. */
  | "approval:before:decide";

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

/*
 * Chaos (`dsops chaos run`): faults injected on purpose into a real rotation of a test or
 * staging env, so a team proves its rollback paths. `kill-at:<step>` is the SIGKILL above
 * (DSOPS_FAULT=after:<step> in the rotating child process); the other kinds wrap the rotation's
 * store and target (DSOPS_CHAOS in the child, RotationEngineOptions.chaos in process): the real
 * store and target are used, and the one call named fails.
 */

/** The steps `kill-at:` may name: the rotation's steps, and the rollback's. */
export const KILL_STEPS = ["generate", "stage", "apply", "verify", "promote", "retire", "restore", "discard"] as const satisfies readonly StepName[];

/** One fault `dsops chaos` injects. */
export type ChaosFault =
  /** The store refuses the write of the new pending version (the `stage` step). */
  | { readonly kind: "store-write-failure" }
  /** The target makes the change of the `apply` step but its answer never comes: the call fails after `ms` (a timeout). In a rollout: at the first instance of wave `wave` (default 1). */
  | { readonly kind: "target-timeout"; readonly ms: number; readonly wave?: number }
  /** The `verify` step logs in with a credential the target does not accept (a real failed login). In a rollout: at every instance of wave `wave` (default 1). */
  | { readonly kind: "verification-failure"; readonly wave?: number }
  /** SIGKILL of the rotating process just after `step`'s action ran, before its end is recorded. */
  | { readonly kind: "kill-at"; readonly step: (typeof KILL_STEPS)[number] }
  /** A rollout: SIGKILL of the rotating process at the boundary after wave `wave` (its progress saved, the next wave not begun). */
  | { readonly kind: "kill-at-wave"; readonly wave: number };

/** What `--inject` accepts, in words (errors list them). */
export const CHAOS_FAULT_NAMES = ["store-write-failure", "target-timeout", "verification-failure", ...KILL_STEPS.map((s) => `kill-at:${s}`)] as const;
/** The faults of a gradual rollout's waves (`rotation.rollout`), named in the errors about them. */
export const CHAOS_WAVE_FAULT_NAMES = ["target-timeout@wave:<n>", "verification-failure@wave:<n>", "kill-at:wave:<n>"] as const;
const allFaults = () => [...CHAOS_FAULT_NAMES, ...CHAOS_WAVE_FAULT_NAMES].join(", ");

/** The step a fault strikes at. */
export function chaosStep(f: ChaosFault): StepName {
  if (f.kind === "kill-at-wave" || ((f.kind === "target-timeout" || f.kind === "verification-failure") && f.wave !== undefined)) return "apply"; // a rollout's waves run in its apply step
  return f.kind === "store-write-failure" ? "stage" : f.kind === "target-timeout" ? "apply" : f.kind === "verification-failure" ? "verify" : f.step;
}

/** The text form of a fault (`target-timeout` carries its wait in DSOPS_CHAOS: `target-timeout:1500`). */
export function chaosFaultName(f: ChaosFault, withWait = false): string {
  if (f.kind === "kill-at") return `kill-at:${f.step}`;
  if (f.kind === "kill-at-wave") return `kill-at:wave:${f.wave}`;
  const at = f.kind !== "store-write-failure" && f.wave !== undefined ? `@wave:${f.wave}` : "";
  if (f.kind === "target-timeout" && withWait) return `target-timeout:${f.ms}${at}`;
  return `${f.kind}${at}`;
}

/** Parse one `--inject` value (or a DSOPS_CHAOS entry); an unknown name is an error listing the valid ones. */
export function parseChaosFault(text: string, timeoutMs = 2000): ChaosFault {
  const t = text.trim();
  // A rollout's wave: `<fault>@wave:<n>` (n from 1), `kill-at:wave:<n>`.
  const waveOf = (w: string | undefined): number | undefined => {
    if (w === undefined) return undefined;
    const n = Number(w);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ChaosFaultError(`"${t}": the wave is a number from 1 (waves are counted from 1); valid faults: ${allFaults()}`);
    return n;
  };
  const waveKill = /^kill-at:wave:(.*)$/.exec(t);
  if (waveKill) return { kind: "kill-at-wave", wave: waveOf(waveKill[1]) as number };
  const at = /^(.*)@wave:(.*)$/.exec(t);
  const base = at ? at[1] : t;
  const wave = waveOf(at?.[2]);
  const w = wave !== undefined ? { wave } : {};
  if (base === "verification-failure") return { kind: base, ...w };
  if (base === "store-write-failure") {
    if (at) throw new ChaosFaultError(`"${t}": store-write-failure strikes the stage step, before any wave; valid faults: ${allFaults()}`);
    return { kind: base };
  }
  const timeout = /^target-timeout(?::(\d+))?$/.exec(base);
  if (timeout) return { kind: "target-timeout", ms: timeout[1] !== undefined ? Number(timeout[1]) : timeoutMs, ...w };
  if (at) throw new ChaosFaultError(`unknown fault "${t}": @wave:<n> goes with target-timeout or verification-failure; valid faults: ${allFaults()}`);
  const kill = /^kill-at:(.*)$/.exec(t);
  if (kill && (KILL_STEPS as readonly string[]).includes(kill[1])) return { kind: "kill-at", step: kill[1] as (typeof KILL_STEPS)[number] };
  const why = kill ? `unknown step "${kill[1]}" in "${t}": kill-at takes one of ${KILL_STEPS.join(", ")}` : `unknown fault "${t}"`;
  throw new ChaosFaultError(`${why}; valid faults: ${CHAOS_FAULT_NAMES.join(", ")}`);
}

/** A bad fault name (the CLI maps it to a usage error). */
export class ChaosFaultError extends DsopsError {}

/** The faults of DSOPS_CHAOS (comma-separated), the way the chaos command hands them to the rotating child process. */
export function envChaosFaults(env: NodeJS.ProcessEnv = process.env): ChaosFault[] | undefined {
  const spec = env.DSOPS_CHAOS;
  if (!spec) return undefined;
  try {
    return spec
      .split(",")
      .filter((s) => s.trim())
      .map((s) => parseChaosFault(s));
  } catch (e) {
    throw new ChaosFaultError(`DSOPS_CHAOS: ${(e as Error).message}`);
  }
}
