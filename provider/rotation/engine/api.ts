import type { Clock } from "../../core/clock";
import type { Secret } from "../../core/secret";
import type { RotationStrategyName } from "../settings";
import type { Resolver } from "../../engine/resolve";
import type { RotationEvent } from "../events";
import type { ChaosFault, FaultHook } from "../fault";
import type { HistoryBackend } from "../history/types";
import type { HealthPort, MetricsPort, NotifyPort, ValuePolicyPort } from "../ports";
import type { Target } from "../targets/types";
import type { LockOwner, RotationRecord } from "../types";

/* The engine's public options and results (the CLI, the Pulumi RotationPolicy resource, library users). */

/** Options of one rotation. */
export interface RotateOptions {
  /** Run this strategy instead of the configured one (`immediate`, `emergency`, or the same shape: a built-in name or a plugin strategy's). */
  readonly strategy?: RotationStrategyName | (string & {});
  /** Check everything and report the plan; change nothing, record nothing. */
  readonly dryRun?: boolean;
  /** Why (required by `emergency`; kept in the record). */
  readonly reason?: string;
  /**
   * The new value, instead of a generated one (`secrets rotate --new-value -`, read from standard
   * input). Only for strategies whose target sets a value (not one that mints its own
   * credential); checked against the target's value rules.
   */
  readonly newValue?: Secret;
  /**
   * Inside the grace period of the last rotation: retire the old credential now (clients still
   * using it lose it) and rotate, instead of refusing. (A rotation by hand is never refused
   * for not being due: the schedule only drives `rotation run --due` and Pulumi.)
   */
  readonly force?: boolean;
  /**
   * A scheduled pass (`rotation run --due`): asked under the secret's lock with the finish of the
   * last rotation in the history; false (another pass rotated it meanwhile) throws
   * RotatedElsewhereError and nothing changes.
   */
  readonly ifDue?: (lastRotatedAt: number | undefined) => boolean;
}

/** What a rotation did. */
export interface RotationResult {
  /** The record as finished (a dry run: a record that was not saved). */
  readonly record: RotationRecord;
  /** True when this run finished a rotation an earlier run left unfinished (crash) instead of starting one. */
  readonly resumed: boolean;
  /** The earlier run whose unfinished rollback this run finished before rotating (its id and error). */
  readonly finishedRollback?: { readonly id: string; readonly error?: string };
  readonly dryRun: boolean;
  /** Dry run: the steps that would run, each with what it would do. */
  readonly plan?: string[];
}

/** Options of a manual rollback. */
export interface RollbackOptions {
  readonly reason: string;
  /** A version id to go back to (default: the previous version). */
  readonly version?: string;
}

/** What `dsops rotation rollback --dry-run` would do to one secret (nothing is changed to find out). */
export interface RollbackPlan {
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  readonly service: string;
  /** The version current now, and the one the rollback would make current. */
  readonly fromVersion?: string;
  readonly toVersion: string;
  /** The principal (user name) the version holds, when the target's credential has one. */
  readonly toPrincipal?: string;
  /** The steps, in order, in words. */
  readonly steps: readonly string[];
  /** What would stop or change the run (a held lock, an unfinished rotation finished first). */
  readonly notes: readonly string[];
}

/** One rotated secret's state, for `dsops secrets status`. */
export interface SecretStatus {
  readonly env: string;
  readonly variable: string;
  readonly secret: string;
  readonly service: string;
  readonly strategy: string;
  readonly currentVersion?: string;
  readonly previousVersion?: string;
  readonly pendingVersion?: string;
  readonly updatedAt?: string;
  readonly last?: Pick<RotationRecord, "id" | "status" | "startedAt" | "finishedAt" | "strategy" | "error" | "retireAfter">;
  readonly lockedBy?: LockOwner;
  /**
   * True when the lock's holder is a process of this host that no longer exists (killed): its
   * rotation is unfinished, and the next `dsops secrets rotate` of the variable finishes it.
   */
  readonly lockHolderDead?: boolean;
  /** Why the status could not be read in full (store or history unreachable). */
  readonly problem?: string;
}

/** What the engine is built with (all optional; defaults from the configuration). */
export interface RotationEngineOptions {
  readonly clock?: Clock;
  readonly env?: NodeJS.ProcessEnv;
  /** A Resolver to share (its stores are reused); default one of its own. */
  readonly resolver?: Resolver;
  /** Target instances by service name, instead of building them from `services:` (library users). */
  readonly targets?: Readonly<Record<string, Target>>;
  /** The history backend for every secret, instead of the configured/default one. */
  readonly history?: HistoryBackend;
  /** Called at each fault point (crash tests); default from DSOPS_FAULT. */
  readonly fault?: FaultHook;
  /**
   * Chaos faults injected into every rotation of this engine (`dsops chaos run`; default from
   * DSOPS_CHAOS): refused unless the env is listed in `chaos.envs` (../chaos-settings.ts).
   */
  readonly chaos?: readonly ChaosFault[];
  /** Progress lines (never values). */
  readonly onEvent?: (message: string) => void;
  /** Structured rotation events (started, completed, failed, rollback), as notifiers and metrics get them. */
  readonly onRotationEvent?: (event: RotationEvent) => void;
  /**
   * Where rotation events are sent (default: nowhere). provider/compose/rotation.ts builds the
   * configured `notifications:` hub (provider/notify) and passes it here.
   */
  readonly notify?: NotifyPort;
  /** What counts the events and health checks (default: nothing; the composition passes provider/metrics). */
  readonly metrics?: MetricsPort;
  /** What runs `rotation.health` checks (default: none, and a rotation with checks is refused; the composition passes provider/health). */
  readonly health?: HealthPort;
  /** Run `rotation.health` checks after a rotation (default true). */
  readonly healthChecks?: boolean;
  /** What generated values must meet besides the target's rules (default: nothing more; the composition passes the `policies:` of provider/guard). */
  readonly valuePolicy?: ValuePolicyPort;
  /** `user@host` recorded as who rotated (default from the OS). */
  readonly who?: string;
}

/** The state of one rotated secret as a chaos report shows it: its versions, its lock, and whether the credential stored as current works at the target (never a value). */
export interface CurrentCheck {
  readonly secret: string;
  readonly service: string;
  readonly currentVersion?: string;
  readonly previousVersion?: string;
  readonly pendingVersion?: string;
  readonly lockedBy?: LockOwner;
  /** True: the target accepted the stored current credential (a login, and the verification query if configured); undefined: the target cannot verify. */
  readonly works?: boolean;
  /** What was checked and what the target answered (never a value). */
  readonly check: string;
}
