/**
 * The names of the strategies plugins added (name → plugin), kept apart from the strategies
 * themselves (./plugins.ts) so the settings schema (../settings.ts) checks a name without
 * importing the strategies. The loader (provider/compose/plugins.ts) fills both.
 */
const names = new Map<string, string>();

/** Record a plugin strategy's name (./plugins.ts does, when it registers one). */
export function addPluginStrategyName(name: string, plugin: string): void {
  names.set(name, plugin);
}

/** The plugin that added strategy `name`, if one did. */
export function pluginOfStrategy(name: string): string | undefined {
  return names.get(name);
}

/** Every plugin strategy name, in registration order. */
export function pluginStrategyNames(): string[] {
  return [...names.keys()];
}
