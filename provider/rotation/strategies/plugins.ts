import type { TargetCapability } from "../targets/types";
import { addPluginStrategyName } from "./names";
import type { Strategy } from "./types";

/**
 * Rotation strategies (value shapes) added by plugins (provider/compose/plugins.ts loads them).
 * The built-in shapes stay in the exhaustive table of ./index.ts; a plugin's shape is looked up
 * here only when the name is not a built-in one (the loader refuses a name that shadows a
 * built-in or another plugin's). `immediate` and `emergency` work over a plugin shape as over a
 * built-in one.
 */
export interface PluginStrategy {
  /** The plugin's `name`. */
  readonly plugin: string;
  /** The name written in `rotation.strategy` (plugin-prefixed, e.g. `acme.suffix-user`). */
  readonly name: string;
  /** Capabilities the target must have (checked when dsops.yaml loads). */
  readonly requires: readonly TargetCapability[];
  readonly description?: string;
  /** The shape, with failures that are not dsops errors turned into ones naming the plugin. */
  readonly shape: Strategy;
}

const strategies = new Map<string, PluginStrategy>();

/** Add a plugin's strategy (the loader has checked its shape and that the name is free). */
export function registerPluginStrategy(def: PluginStrategy): void {
  strategies.set(def.name, def);
  addPluginStrategyName(def.name, def.plugin);
}

/** The plugin strategy of this name, if a plugin registered one. */
export function pluginStrategy(name: string): PluginStrategy | undefined {
  return strategies.get(name);
}

/** Every strategy plugins registered, in registration order. */
export function pluginStrategies(): PluginStrategy[] {
  return [...strategies.values()];
}
