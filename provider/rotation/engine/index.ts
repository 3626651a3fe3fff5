/**
 * The rotation engine, split along its seams: engine.ts (the RotationEngine: rotate, rollback,
 * status, history), machine.ts (the step machine), step.ts (one recorded step and the other
 * primitives of a run), rollout.ts (waves), health-gate.ts (health checks and the rollback they
 * start), manual-rollback.ts, dry-run.ts, chaos.ts (chaos faults laid over a rotation's store and target), publish.ts (events on the bus), wiring.ts (targets and
 * history backends built from the configuration), context.ts (what the parts share).
 */
export { RotationEngine, rotate, newRotationId } from "./engine";
export type { SoakOptions, SoakOutcome } from "./soak";
export type { RotateOptions, RotationResult, RollbackOptions, RollbackPlan, SecretStatus, RotationEngineOptions, CurrentCheck } from "./api";
export { RotationError, RotationInProgressError } from "../errors";
