import * as z from "zod";
import type { Store, StoreCapabilities, StoreContext } from "./types";

/**
 * Store types added by plugins (provider/compose/plugins.ts loads them from `plugins:` in
 * dsops.yaml or `registerPlugin` in a Pulumi program). The built-in types stay in the exhaustive
 * registry (./registry.ts, ./settings.ts); a plugin's type is looked up here only when it is not
 * one of them (the loader refuses a plugin type that names a built-in one).
 */
export interface PluginStoreType {
  /** The plugin's `name` (shown in errors, `dsops providers` and `dsops doctor`). */
  readonly plugin: string;
  /** The type written in `secretStores.<name>.type`. */
  readonly type: string;
  /** Zod schema of the entry's settings, without `type`; issues name the field (`secretStores.kv.path`). */
  readonly settings: z.ZodType;
  /** What the store can do (shown by `dsops providers`; the store instance declares its own). */
  readonly capabilities?: StoreCapabilities;
  readonly description?: string;
  /** Build the store from its checked settings. */
  create(name: string, settings: unknown, ctx: StoreContext): Store;
}

/**
 * The settings every store entry has, a plugin's too (the resolver reads them, the plugin's
 * schema never sees them): `timeout_ms` of one call, `retries` of throttled or transient failures.
 */
export const pluginCommonSettings = z.strictObject({
  timeout_ms: z.number().int().positive().optional(),
  retries: z.number().int().min(0).max(10).optional(),
});
export const pluginCommonKeys = Object.keys(pluginCommonSettings.shape);

const types = new Map<string, PluginStoreType>();

/** Add a plugin's store type (the loader has checked its shape and that the name is free). */
export function registerPluginStoreType(def: PluginStoreType): void {
  types.set(def.type, def);
}

/** The plugin store type of this name, if a plugin registered one. */
export function pluginStoreType(type: string): PluginStoreType | undefined {
  return types.get(type);
}

/** Every store type plugins registered, in registration order. */
export function pluginStoreTypes(): PluginStoreType[] {
  return [...types.values()];
}
