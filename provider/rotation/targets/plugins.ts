import type { z } from "zod";
import type { Target, TargetCapability, TargetContext } from "./types";

/**
 * Rotation target types added by plugins (provider/compose/plugins.ts loads them). Built-in
 * types stay in the exhaustive registry (./registry.ts, ./settings.ts); a plugin type is looked
 * up here only when it is not one of them (the loader refuses a plugin type naming a built-in).
 */
export interface PluginTargetType {
  /** The plugin's `name`. */
  readonly plugin: string;
  /** The type written in `services.<name>.type`. */
  readonly type: string;
  /** Zod schema of the entry's settings, without `type`; issues name the field (`services.db.host`). */
  readonly settings: z.ZodType;
  /** What the target can do, known without building it (the rotation check compares strategies with it). */
  readonly capabilities: readonly TargetCapability[];
  readonly description?: string;
  /** Build the target from its checked settings. */
  create(name: string, settings: unknown, ctx: TargetContext): Target;
}

const types = new Map<string, PluginTargetType>();

/** Add a plugin's target type (the loader has checked its shape and that the name is free). */
export function registerPluginTargetType(def: PluginTargetType): void {
  types.set(def.type, def);
}

/** The plugin target type of this name, if a plugin registered one. */
export function pluginTargetType(type: string): PluginTargetType | undefined {
  return types.get(type);
}

/** Every target type plugins registered, in registration order. */
export function pluginTargetTypes(): PluginTargetType[] {
  return [...types.values()];
}
