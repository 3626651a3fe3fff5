/**
 * Plain data of the rotation engine: records, steps, lock owners. No values ever: records hold
 * version ids and principals (user names, key ids), never a secret.
 */

/**
 * The steps of a rotation, in order. Each is recorded (started) before it runs and
 * (finished, with an outcome) after; a run that finds an unfinished record resumes from the
 * first step without outcome "ok".
 * - `generate`: draw the new value (in memory only)
 * - `stage`: store it as the secret's pending version
 * - `apply`: set it at the target (`rotate`) or mint it there (`create`)
 * - `verify`: use it at the target
 * - `promote`: make the pending version current (the old one becomes previous)
 * - `retire`: revoke the old credential, when the strategy says so (now or after a grace period)
 * Rollback steps, after a failed verification or apply, or on `rollback`:
 * - `restore`: put the previous credential back at the target
 * - `discard`: drop the pending version from the store
 */
export const rotationSteps = ["generate", "stage", "apply", "verify", "promote", "retire"] as const;
export const rollbackSteps = ["restore", "discard"] as const;
export type StepName = (typeof rotationSteps)[number] | (typeof rollbackSteps)[number];

export interface StepRecord {
  readonly name: StepName;
  startedAt: string;
  finishedAt?: string;
  outcome?: "ok" | "failed" | "skipped";
  /** Why it failed or was skipped; never a value. */
  message?: string;
}

/**
 * - `running`: not finished (a crashed run leaves it so; the next run resumes or rolls back)
 * - `grace`: the new credential is current; the old one is revoked when `retireAfter` has passed
 * - `succeeded`, `rolled-back` (automatic, after a failed verification), `failed` (nothing changed
 *   for good, or a manual rollback failed)
 * - `aborted` (a `chain` record only): stopped on purpose (`dsops rotation chain NAME --abort`),
 *   its rotated stages rolled back
 */
export type RotationStatus = "running" | "grace" | "succeeded" | "rolled-back" | "failed" | "aborted";

/** One rotation (or manual rollback) of one secret. */
export interface RotationRecord {
  /** `rot-<time>-<random>`. */
  readonly id: string;
  /** `rotate`, `rollback` for a manual rollback, `chain` for a multi-environment rotation (../chain: a `ChainRecord`). */
  readonly kind: "rotate" | "rollback" | "chain";
  /** The stored secret: `store://<store>/<key>`. */
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  /** The service (target) name and type. */
  readonly service: string;
  readonly targetType: string;
  /** The strategy that ran (`emergency` and `immediate` name themselves, `base` the value shape). */
  readonly strategy: string;
  readonly base?: string;
  /** `user@host` that started it. */
  readonly who: string;
  readonly reason?: string;
  readonly startedAt: string;
  finishedAt?: string;
  status: RotationStatus;
  steps: StepRecord[];
  /** Version ids in the store: current before, and the new (pending, then current) one. */
  oldVersionId?: string;
  newVersionId?: string;
  /** Principal (user, key id) of the old and the new credential. */
  oldPrincipal?: string;
  newPrincipal?: string;
  /** `grace`: when the old credential is to be revoked (ISO-8601). */
  retireAfter?: string;
  /** Why it failed or rolled back; never a value. */
  error?: string;
  /** Runs that resumed it after a crash (`user@host pid`). */
  resumedBy?: string[];
  /**
   * Create-type targets that list a principal's credentials: the ids (key ids, role names; never
   * a secret) the principal held before this rotation first called `create`, saved before that
   * call. A rollback or a resumed run revokes only credentials listed later that are neither in
   * here nor stored: what this rotation made; any other credential is left alone (a warning).
   */
  listedBeforeCreate?: string[];
  /** What the run left alone and wants a person to look at (credential ids, never a value). */
  warnings?: string[];
}

/** Who holds a secret's rotation lock. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly who: string;
  /** ISO-8601. */
  readonly since: string;
  readonly rotationId?: string;
}

export interface HeldLock {
  readonly owner: LockOwner;
  release(): Promise<void>;
}
