/**
 * The engine's surface for the layers above it. The library API that users import as
 * `@dsops/pulumi/provider/engine/index` is provider/library/index.ts (package.json maps that
 * path to it): it loads configurations with the composed schema, which the engine cannot import.
 */
export { Secret, scrub } from "../core/secret";
export * from "../core/errors";
export { clock, setClock, systemClock, ManualClock, isoNow, type Clock } from "../core/clock";
export { createConfigLoader, coreConfigRules, type Config, type Variable, type LoadOptions, type ConfigRules, type ConfigCheck, type ConfigLoader } from "./config/load";
export { parseStoreUri, formatStoreUri, parseFrom, type SecretRef } from "./refs";
export { compileTransforms, applyTransforms } from "./transforms";
export { Resolver, type EnvResult, type ResolvedVariable, type PlanEntry } from "./resolve";
export { render, formatFromPath, outputFormats, type OutputFormat } from "./render";
export { writeFileAtomic } from "../core/fsutil";
