/**
 * The plugin interface, version 1: what a plugin package imports (`@dsops/pulumi/plugin`) to add
 * store types, rotation target types and rotation strategies to dsops. A plugin module exports
 *
 *     module.exports = { apiVersion: 1, name: "@acme/dsops-kv", stores: { "acme.kv": {…} }, targets: { "acme.db": {…} } };
 *
 * Each type has a zod `settings` schema of its dsops.yaml entry (without `type`), a `create`
 * function building the store or target from the checked settings, and (targets) the
 * capabilities it has. Stores implement the same `Store` interface as the built-in stores (and
 * `Staging` to be rotated); targets the same `Target` interface as the built-in targets. The
 * contract suites that every built-in passes are in `@dsops/pulumi/testing`.
 *
 * Errors: throw NotFoundError for a missing key or version (so `optional` works), AuthError
 * for refused credentials, StoreError (retryable or not) or TimeoutError for the rest, a
 * VerificationError when a credential does not work, TargetError when a target refuses a change;
 * never put a secret value in a message (`scrubError`). Import these classes from here: they must
 * be the ones dsops checks with `instanceof`.
 */
import type { z } from "zod";
import type { Store, StoreCapabilities, StoreContext } from "../stores/types";
import type { Credential, Target, TargetCapability, TargetContext } from "../rotation/targets/types";
import type { PlanContext, RotationPlan } from "../rotation/strategies/types";
import type { Secret } from "../core/secret";

export { z } from "zod";
export { Secret, scrub } from "../core/secret";
export { DsopsError, ConfigError, NotFoundError, AuthError, StoreError, TimeoutError } from "../core/errors";
export { VerificationError, TargetError, scrubError } from "../rotation/targets/errors";
export { PLUGIN_API_VERSION, PluginError, loadedPlugins, registerPlugin, type LoadedPlugin } from "../compose/plugins";
export type { StoreKey, SecretVersion, VersionInfo, StoreCapabilities, Staging, Stage, PutOptions, StoreContext } from "../stores/types";
export type { Credential, VerifyOptions, ValueRules, TargetCapability, TargetContext } from "../rotation/targets/types";
export type { Strategy, PlanContext, RotationPlan } from "../rotation/strategies/types";
export type { VariableRotation } from "../rotation/settings";

/** A store of a plugin type: the built-in `Store` interface, its `type` being the plugin's type name. */
export type PluginStore = Omit<Store, "type"> & { readonly type: string };
/** A target of a plugin type: the built-in `Target` interface, its `type` being the plugin's type name. */
export type PluginTarget = Omit<Target, "type"> & { readonly type: string };

/** A store type of a plugin (`stores: { "<type>": … }`). */
export interface PluginStoreDefinition<S extends z.ZodType = z.ZodType> {
  /** The entry's settings without `type`; problems are reported with their path (`secretStores.kv.path`). */
  readonly settings: S;
  /** Build the store of a `secretStores.<name>` entry from its checked settings. */
  create(name: string, settings: z.infer<S>, ctx: StoreContext): PluginStore;
  /** What the store can do, shown by `dsops providers` (each store declares its own too). */
  readonly capabilities?: StoreCapabilities;
  /** One line, shown by `dsops providers`. */
  readonly description?: string;
}

/** A rotation target type of a plugin (`targets: { "<type>": … }`). */
export interface PluginTargetDefinition<S extends z.ZodType = z.ZodType> {
  /** The entry's settings without `type`; problems are reported with their path (`services.db.host`). */
  readonly settings: S;
  /** Build the target of a `services.<name>` entry from its checked settings. */
  create(name: string, settings: z.infer<S>, ctx: TargetContext): PluginTarget;
  /** What the target can do (checked against each rotation's strategy when dsops.yaml loads). */
  readonly capabilities: readonly TargetCapability[];
  readonly description?: string;
}

/**
 * A rotation strategy of a plugin (`strategies: { "<prefix>.<name>": … }`): a value shape, as the
 * built-in single-user, alternating-users and two-secret are. `plan` decides who gets the new
 * credential and what happens to the old one; `encode`/`decode` turn a credential into the stored
 * value and back. `immediate` and `emergency` work over it (no grace, old credential revoked at
 * once). Throw DsopsError (or ConfigError) for a misconfiguration; any other error is reported
 * as the plugin's, naming it.
 */
export interface PluginStrategyDefinition {
  /** Capabilities the target must have (checked against the service when dsops.yaml loads). */
  readonly requires: readonly TargetCapability[];
  /** One line, shown by `dsops providers`. */
  readonly description?: string;
  plan(ctx: PlanContext): RotationPlan;
  encode(cred: Credential): Secret;
  decode(value: Secret, path: string): Credential;
}

/** What a plugin module exports (interface version 1). */
export interface DsopsPlugin {
  readonly apiVersion: 1;
  /** The plugin's name (its package name), shown in errors, `dsops providers` and `dsops doctor`. */
  readonly name: string;
  readonly version?: string;
  readonly description?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each type has its own settings schema
  readonly stores?: Readonly<Record<string, PluginStoreDefinition<any>>>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each type has its own settings schema
  readonly targets?: Readonly<Record<string, PluginTargetDefinition<any>>>;
  /** Rotation strategies (value shapes), named `<prefix>.<name>`; an optional key of apiVersion 1. */
  readonly strategies?: Readonly<Record<string, PluginStrategyDefinition>>;
}

/** Type a plugin in TypeScript (it returns its argument): `export default definePlugin({ … })`. */
export function definePlugin<P extends DsopsPlugin>(plugin: P): P {
  return plugin;
}
