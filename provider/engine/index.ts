/** The engine's public surface: what the CLI, the dynamic providers and library users call. */
export { Secret, scrub } from "../core/secret";
export * from "../core/errors";
export { clock, setClock, systemClock, ManualClock, isoNow, type Clock } from "../core/clock";
export { loadConfigFile, parseConfig, configFromObject, type Config, type Variable } from "./config/load";
export { parseStoreUri, formatStoreUri, parseFrom, type SecretRef } from "./refs";
export { compileTransforms, applyTransforms } from "./transforms";
export { Resolver, type EnvResult, type ResolvedVariable, type PlanEntry } from "./resolve";
export { render, formatFromPath, outputFormats, type OutputFormat } from "./render";
export { writeFileAtomic } from "../core/fsutil";
