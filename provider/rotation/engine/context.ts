import { randomBytes } from "node:crypto";
import type { Clock } from "../../core/clock";
import type { Secret } from "../../core/secret";
import type { Config } from "../../engine/config/load";
import type { Resolver } from "../../engine/resolve";
import type { RotationEventBus } from "../events";
import type { FaultPoint } from "../fault";
import type { HealthPort, ValuePolicyPort } from "../ports";
import type { ResolvedStrategy, RotationPlan } from "../strategies/index";
import type { Credential } from "../targets/types";
import type { RotationRecord } from "../types";
import type { Subject, Wiring } from "./wiring";

/**
 * What the parts of the engine share (the step machine, rollout, health gate, manual rollback,
 * dry run): the configuration, the clock, the wiring, the event bus and the ports. The
 * RotationEngine builds one per instance. A call between parts that would make their modules
 * import each other goes through `ops`.
 */
export interface EngineContext {
  readonly config: Config;
  readonly resolver: Resolver;
  readonly clock: Clock;
  /** The environment of the run (rollout discovery: `${VAR}` in a token, AWS settings); absent: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** `user@host` recorded as who rotated. */
  readonly who: string;
  readonly wiring: Wiring;
  readonly bus: RotationEventBus;
  /** The health checks' port (absent: a rotation with `rotation.health` is refused). */
  readonly health?: HealthPort;
  /** False: `rotation.health` checks are not run (RotationEngineOptions.healthChecks). */
  readonly healthChecks: boolean;
  /** What generated values must meet besides the target's rules (RotationEngineOptions.valuePolicy). */
  readonly valuePolicy?: ValuePolicyPort;
  /** A progress line (never a value). */
  log(message: string): void;
  /** The fault hook at a fault point (crash tests). */
  hit(point: FaultPoint): void;
  nowIso(): string;
  readonly ops: {
    /** The manual rollback machine (./manual-rollback.ts): the step machine resumes a rollback record with it, the health gate rolls back with it. */
    runManualRollback(subject: Subject, rec: RotationRecord): Promise<RotationRecord>;
  };
}

/** Mutable state of a run, rebuilt from the record and the store on resume. */
export interface RunState {
  readonly subject: Subject;
  readonly strategy: ResolvedStrategy;
  readonly rec: RotationRecord;
  plan: RotationPlan;
  /** The new credential, once generated (or read back from the pending version). */
  pending?: Credential;
  /** A value the caller supplied, used instead of a generated one. */
  readonly newValue?: Secret;
  /** Values to scrub from every message of this run. */
  readonly secrets: Secret[];
  /** The store made the new version current in this run (known even when the history could not record it). */
  promoted?: boolean;
}

/** A step that decides the rotation's fate failed: roll back. */
export class StepFailure extends Error {}

/** A record whose run failed at apply, stage or verify (or began its rollback): the next run finishes the rollback. */
export function rollingBack(rec: RotationRecord): boolean {
  return rec.steps.some((s) => (s.outcome === "failed" && (s.name === "apply" || s.name === "verify" || s.name === "stage")) || s.name === "restore" || s.name === "discard");
}

export function newRotationId(clock: Clock): string {
  return `rot-${clock.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}
