import type { Command } from "commander";
import { storeTypeInfo } from "../capabilities";
import { configDir, configPath, printJson, table } from "../util";

/** `dsops providers`: every store type and what it can do (no store is created, no SDK loaded). */
export function register(program: Command): void {
  program
    .command("providers")
    .description("list every store type with its capabilities, and the types not supported yet")
    .option("--json", "machine-readable output")
    .action((o: { json?: boolean }, cmd: Command) => {
      const { plannedStoreTypes, storeTypes } = require("../../stores/settings") as typeof import("../../stores/settings");
      const stores = storeTypes.map((type) => ({ type, supported: true, ...storeTypeInfo[type] }));
      const planned = plannedStoreTypes.map((type) => ({ type, supported: false }));
      const targets = rotationTargetTypes();
      const plugins = pluginTypes(cmd);
      if (o.json) {
        printJson({
          stores,
          planned,
          targets: targets.supported.map((type) => ({ type, supported: true })),
          plannedTargets: targets.planned.map((type) => ({ type, supported: false })),
          ...(plugins ? { plugins } : {}),
        });
        return;
      }
      const yn = (b: boolean) => (b ? "yes" : "no");
      const rows = [["TYPE", "WRITE", "VERSIONS", "BATCH", "BINARY", "STAGING", "DOCTOR", "DESCRIPTION"]];
      for (const s of stores)
        rows.push([
          s.type,
          yn(s.capabilities.write),
          yn(s.capabilities.versions) + (s.note ? "*" : ""),
          s.capabilities.batch ? String(s.capabilities.batch) : "-",
          yn(s.capabilities.binary),
          yn(s.capabilities.staging),
          s.check ? "check" : "-",
          s.description,
        ]);
      let out = table(rows);
      for (const s of stores) if (s.note) out += `* ${s.type}: ${s.note}\n`;
      out += "STAGING: the store keeps rotation stages (pending/current/previous), which rotation needs.\n";
      out += `\nStore types not supported yet: ${planned.map((p) => p.type).join(", ")}\n`;
      out += targets.supported.length
        ? `\nRotation targets (services:): ${targets.supported.join(", ")}\nRotation targets not supported yet: ${targets.planned.join(", ") || "-"}\n`
        : `\nRotation targets: none yet (they come with the rotation engine)\n`;
      if (plugins) out += pluginLines(plugins);
      process.stdout.write(out);
    });
}

/** A plugin's types as `dsops providers` and `dsops doctor` show them. */
export interface PluginTypes {
  readonly name: string;
  readonly source: string;
  readonly stores: ReadonlyArray<{ type: string; description?: string; capabilities?: object }>;
  readonly targets: ReadonlyArray<{ type: string; description?: string; capabilities: readonly string[] }>;
  /** Rotation strategies the plugin adds, with the target capabilities each requires. */
  readonly strategies: ReadonlyArray<{ name: string; description?: string; requires: readonly string[] }>;
}

/**
 * The plugins the configuration names (`plugins:` of dsops.yaml, when the file is there), loaded
 * and described; undefined without a file or plugins. Only `plugins:` is read: the rest of the
 * file need not be valid for `dsops providers`. A plugin that fails to load is an error (exit 1).
 */
function pluginTypes(cmd: Command): PluginTypes[] | undefined {
  const { existsSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const file = configPath(cmd);
  if (!existsSync(file)) return undefined;
  let doc: unknown;
  try {
    doc = (require("yaml") as typeof import("yaml")).parse(readFileSync(file, "utf8"));
  } catch {
    return undefined; // not readable: no plugins to show (commands that read the file say why)
  }
  const { preparePlugins } = require("../../compose/plugins") as typeof import("../../compose/plugins");
  preparePlugins(doc, configDir(cmd));
  return describePlugins();
}

/** The plugins loaded in this process with their types; undefined when none is. */
export function describePlugins(): PluginTypes[] | undefined {
  const { loadedPlugins } = require("../../compose/plugins") as typeof import("../../compose/plugins");
  const { pluginStoreType } = require("../../stores/plugins") as typeof import("../../stores/plugins");
  const { pluginTargetType } = require("../../rotation/targets/plugins") as typeof import("../../rotation/targets/plugins");
  const { pluginStrategy } = require("../../rotation/strategies/plugins") as typeof import("../../rotation/strategies/plugins");
  const loaded = loadedPlugins();
  if (!loaded.length) return undefined;
  return loaded.map((p) => ({
    name: p.name,
    source: p.source,
    stores: p.stores.map((type) => {
      const d = pluginStoreType(type);
      return { type, ...(d?.description ? { description: d.description } : {}), ...(d?.capabilities ? { capabilities: d.capabilities } : {}) };
    }),
    targets: p.targets.map((type) => {
      const d = pluginTargetType(type);
      return { type, ...(d?.description ? { description: d.description } : {}), capabilities: [...(d?.capabilities ?? [])] };
    }),
    strategies: p.strategies.map((name) => {
      const d = pluginStrategy(name);
      return { name, ...(d?.description ? { description: d.description } : {}), requires: [...(d?.requires ?? [])] };
    }),
  }));
}

/** The text lines of the plugins and their types. */
export function pluginLines(plugins: readonly PluginTypes[]): string {
  let out = "\nPlugins:\n";
  for (const p of plugins) {
    out += `  ${p.name} (${p.source})\n`;
    for (const s of p.stores) out += `    store type ${s.type}${s.description ? `: ${s.description}` : ""}\n`;
    for (const t of p.targets) out += `    rotation target type ${t.type} (${t.capabilities.join(", ")})${t.description ? `: ${t.description}` : ""}\n`;
    for (const s of p.strategies) out += `    rotation strategy ${s.name} (requires ${s.requires.join(", ")})${s.description ? `: ${s.description}` : ""}\n`;
  }
  return out;
}

/**
 * Rotation target types, read from the rotation engine's target list when it is installed
 * (`provider/rotation/targets/types`, a module without dependencies); none otherwise.
 */
function rotationTargetTypes(): { supported: string[]; planned: string[] } {
  let m: { targetTypes?: readonly string[]; plannedTargetTypes?: readonly string[] };
  try {
    m = require("../../rotation/targets/types");
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { requireStack?: string[] };
    if (err.code === "MODULE_NOT_FOUND" && err.requireStack?.[0] === __filename) return { supported: [], planned: [] };
    throw e;
  }
  return { supported: [...(m.targetTypes ?? [])], planned: [...(m.plannedTargetTypes ?? [])] };
}
