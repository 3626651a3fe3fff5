/** The rotation engine's public surface (the CLI, the Pulumi RotationPolicy resource, library users). */
export { RotationEngine, rotate, newRotationId, type RotateOptions, type RotationResult, type RollbackOptions, type SecretStatus, type RotationEngineOptions } from "./engine";
export { RotationError, RotationInProgressError } from "./errors";
export { RotationEventBus, rotationEventTypes, eventTitles, type RotationEvent, type RotationEventType, type RotationEventMap } from "./events";
export type { NotifyPort, MetricsPort, HealthPort, HealthContext } from "./ports";
export { dueSoon, decideDue, type DueSecret, type DueDecision } from "./due";
export { generate, checkPolicy, defaultGeneratorPolicy, type ValueRules } from "./generator";
export { resolveStrategy, baseShapeOf, type Strategy, type RotationPlan, type ResolvedStrategy } from "./strategies/index";
export { FileHistory, type HistoryBackend, type HistoryFilter } from "./history/index";
export { FileLocks, whoAmI } from "./lock";
export { envFaultHook, type FaultHook, type FaultPoint } from "./fault";
export { CHAOS_FAULT_NAMES, CHAOS_WAVE_FAULT_NAMES, ChaosFaultError, chaosFaultName, chaosStep, parseChaosFault, type ChaosFault } from "./fault";
export { chaosRefusal, looksLikeProduction } from "./chaos-settings";
export { createTarget, targetFactories } from "./targets/registry";
export { VerificationError, TargetError, scrubError } from "./targets/errors";
export * from "./targets/types";
export * from "./types";
export { runChain, abortChain, openChain, chainRecords, chainSettings, isChainRecord, chainSecret, type ChainRecord, type ChainStage, type ChainStageStatus, type ChainResult, type ChainRunOptions, type ChainAbortOptions } from "./chain/run";
