/**
 * The library API, the third face: what programs of your own call. Users import it as
 * `@dsops/pulumi/provider/engine/index` (package.json maps that documented path here) or
 * `@dsops/pulumi/provider/library/index`. Configurations load with the composed dsops.yaml
 * schema, like the CLI and the Pulumi providers.
 */
export { Secret, scrub } from "../core/secret";
export * from "../core/errors";
export { clock, setClock, systemClock, ManualClock, isoNow, type Clock } from "../core/clock";
export { loadConfigFile, parseConfig, configFromObject, type Config, type Variable } from "../compose/config";
export { parseStoreUri, formatStoreUri, parseFrom, type SecretRef } from "../engine/refs";
export { compileTransforms, applyTransforms } from "../engine/transforms";
// The engine's Resolver with every access audited (policies.audit_logging): ./audited.ts.
export { Resolver } from "./audited";
export { type EnvResult, type ResolvedVariable, type PlanEntry } from "../engine/resolve";
export { render, formatFromPath, outputFormats, type OutputFormat } from "../engine/render";
export { writeFileAtomic } from "../core/fsutil";
