import { createRequire } from "node:module";
import { join } from "node:path";
import { DsopsError, StoreError } from "../core/errors";
import { storeTypeAliases, storeTypes } from "../stores/settings";
import { pluginStoreType, registerPluginStoreType, type PluginStoreType } from "../stores/plugins";
import type { Store } from "../stores/types";
import { pluginTargetType, registerPluginTargetType, type PluginTargetType } from "../rotation/targets/plugins";
import { TargetError } from "../rotation/targets/errors";
import { targetTypeAliases, targetTypes, type Target, type TargetCapability } from "../rotation/targets/types";
import { rotationStrategies, strategyAliases } from "../rotation/settings";
import { pluginStrategy, registerPluginStrategy, type PluginStrategy } from "../rotation/strategies/plugins";
import type { Strategy } from "../rotation/strategies/types";
import { scrub, type Secret } from "../core/secret";

/**
 * Plugins: store and rotation target types from npm packages named in dsops.yaml
 * (`plugins: ["@acme/dsops-target-oracle"]`, resolved from the file's folder as Node resolves a
 * package) or registered by a program (`registerPlugin(module)`). A plugin module exports
 * `{ apiVersion: 1, name, stores?, targets?, strategies? }` (the interface: provider/library/plugin.ts). It is
 * checked whole before any of its types is registered, so a broken plugin adds nothing; every
 * refusal is a PluginError (exit 1) naming the plugin and the cause, raised while dsops.yaml loads,
 * before any store or target is created.
 */

/** The plugin interface version this dsops implements. */
export const PLUGIN_API_VERSION = 1;

/** A plugin could not be loaded or breaks the interface. */
export class PluginError extends DsopsError {}

/** A plugin loaded in this process: what `dsops providers` and `dsops doctor` list. */
export interface LoadedPlugin {
  /** The plugin's `name`. */
  readonly name: string;
  /** How it was named: the package (or path) in `plugins:`, or `registerPlugin`. */
  readonly source: string;
  /** The module file it was loaded from (absent for a registered module object). */
  readonly file?: string;
  readonly stores: readonly string[];
  readonly targets: readonly string[];
  /** The rotation strategies it adds (`strategies`, an optional key of apiVersion 1). */
  readonly strategies: readonly string[];
}

const byFile = new Map<string, LoadedPlugin>();
const byModule = new WeakMap<object, LoadedPlugin>();
const all: LoadedPlugin[] = [];

const TOP_KEYS = ["apiVersion", "name", "description", "version", "stores", "targets", "strategies"];
const STORE_KEYS = ["settings", "create", "capabilities", "description"];
const TARGET_KEYS = ["settings", "create", "capabilities", "description"];
const TARGET_CAPABILITIES: readonly TargetCapability[] = ["create", "rotate", "revoke", "verify"];
const STRATEGY_KEYS = ["requires", "description", "plan", "encode", "decode"];
/** A plugin strategy's name: `<prefix>.<name>` (so it never collides with a built-in one added later). */
const STRATEGY_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z0-9]+([._-][a-z0-9]+)*$/;
const TYPE_NAME = /^[a-z][a-z0-9]*([._-][a-z0-9]+)*$/;

/** Every plugin loaded in this process, in load order. */
export function loadedPlugins(): readonly LoadedPlugin[] {
  return [...all];
}

/**
 * Load the plugins `plugins:` names, resolved from `dir` (the folder of dsops.yaml). A plugin
 * already loaded from the same file is not loaded again. `at` names the setting in errors.
 */
export function loadPlugins(specs: readonly string[], dir: string, at = "plugins"): LoadedPlugin[] {
  return specs.map((spec, i) => loadPlugin(spec, dir, `${at}[${i}]`));
}

/** Load one plugin package (or a relative path) as Node resolves it from `dir`. */
export function loadPlugin(spec: string, dir: string, at = "plugins"): LoadedPlugin {
  const label = `"${spec}" (${at})`;
  const req = createRequire(join(dir, "dsops.yaml"));
  let file: string;
  try {
    file = req.resolve(spec);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PluginError(`plugin ${label}: cannot find it from ${dir}${code && code !== "MODULE_NOT_FOUND" ? ` (${code})` : ""}`, {
      hint: spec.startsWith(".") || spec.startsWith("/") ? "the path is relative to the folder of dsops.yaml" : `install it where dsops.yaml is: npm install ${spec}`,
    });
  }
  const seen = byFile.get(file);
  if (seen) return seen;
  let mod: unknown;
  try {
    mod = req(file);
  } catch (e) {
    throw new PluginError(`plugin ${label}: loading it failed: ${firstLine(e)}`, { hint: `run node -e 'require("${spec}")' in ${dir} to see the whole error`, cause: e });
  }
  const loaded = register(mod, label, spec, file);
  byFile.set(file, loaded);
  return loaded;
}

/**
 * Register a plugin module object (a Pulumi program's `registerPlugin`, a library user). The same
 * object registered twice is registered once.
 */
export function registerPlugin(mod: unknown, source = "registerPlugin"): LoadedPlugin {
  if (mod && typeof mod === "object") {
    const seen = byModule.get(mod);
    if (seen) return seen;
  }
  const name = mod && typeof mod === "object" && typeof (mod as { name?: unknown }).name === "string" ? (mod as { name: string }).name : "(unnamed)";
  return register(mod, `"${name}"`, source);
}

/** What `ConfigRules.prepare` runs: load the plugins a file names under `plugins:` (the schema reports any other shape). */
export function preparePlugins(input: unknown, dir: string): void {
  const specs = input && typeof input === "object" ? (input as { plugins?: unknown }).plugins : undefined;
  if (!Array.isArray(specs) || !specs.every((s) => typeof s === "string" && s.length > 0)) return;
  loadPlugins(specs as string[], dir);
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** Check a module against the interface, then register its types (all or none). */
function register(raw: unknown, label: string, source: string, file?: string): LoadedPlugin {
  // An ES module's default export, or a CommonJS module.exports.
  const mod = isObject(raw) && raw.apiVersion === undefined && isObject(raw.default) ? raw.default : raw;
  const problems: string[] = [];
  if (!isObject(mod)) throw new PluginError(`plugin ${label}: the module exports no plugin object (expected { apiVersion: ${PLUGIN_API_VERSION}, name, stores?, targets? })`);
  if (mod.apiVersion !== PLUGIN_API_VERSION)
    throw new PluginError(
      `plugin ${label}: apiVersion ${JSON.stringify(mod.apiVersion) ?? "(missing)"} is not supported; this dsops implements plugin apiVersion ${PLUGIN_API_VERSION}`,
      { hint: "use a release of the plugin built for this dsops, or upgrade dsops" },
    );
  if (typeof mod.name !== "string" || !mod.name) problems.push(`name: expected the plugin's name (a non-empty string)`);
  const name = typeof mod.name === "string" && mod.name ? mod.name : "(unnamed)";
  for (const k of Object.keys(mod)) if (!TOP_KEYS.includes(k)) problems.push(`${k}: unknown export (expected one of: ${TOP_KEYS.join(", ")})`);
  const strategies = checkStrategies(name, mod.strategies, problems);

  const stores: PluginStoreType[] = [];
  const targets: PluginTargetType[] = [];
  for (const [kind, value] of [["stores", mod.stores], ["targets", mod.targets]] as const) {
    if (value === undefined) continue;
    if (!isObject(value)) {
      problems.push(`${kind}: expected an object of types ({ "<type>": { settings, create } })`);
      continue;
    }
    for (const [type, def] of Object.entries(value)) {
      const at = `${kind}.${type}`;
      const before = problems.length;
      if (!TYPE_NAME.test(type)) problems.push(`${at}: a type name is lower case letters and digits, with . _ - between words`);
      if (kind === "stores" && ((storeTypes as string[]).includes(type) || Object.hasOwn(storeTypeAliases, type)))
        problems.push(`${at}: "${type}" is a built-in store type; a plugin cannot replace it (give it a name of its own, e.g. "<vendor>.${type}")`);
      if (kind === "targets" && ((targetTypes as readonly string[]).includes(type) || Object.hasOwn(targetTypeAliases, type)))
        problems.push(`${at}: "${type}" is a built-in rotation target type; a plugin cannot replace it`);
      const other = kind === "stores" ? pluginStoreType(type) : pluginTargetType(type);
      if (other && other.plugin !== name) problems.push(`${at}: type "${type}" is already added by plugin "${other.plugin}"`);
      if (!isObject(def)) {
        problems.push(`${at}: expected { settings, create${kind === "targets" ? ", capabilities" : ""} }`);
        continue;
      }
      for (const k of Object.keys(def)) if (!(kind === "stores" ? STORE_KEYS : TARGET_KEYS).includes(k)) problems.push(`${at}.${k}: unknown key (expected one of: ${(kind === "stores" ? STORE_KEYS : TARGET_KEYS).join(", ")})`);
      const schema = def.settings as { safeParse?: unknown } | undefined;
      if (!schema || typeof schema !== "object" || typeof schema.safeParse !== "function")
        problems.push(`${at}.settings: missing zod schema of the type's settings (so dsops.yaml is checked field by field, e.g. z.strictObject({ path: z.string() }))`);
      if (typeof def.create !== "function") problems.push(`${at}.create: expected a function (name, settings, context) returning the ${kind === "stores" ? "store" : "target"}`);
      if (def.description !== undefined && typeof def.description !== "string") problems.push(`${at}.description: expected a string`);
      if (kind === "stores") {
        const caps = def.capabilities;
        if (caps !== undefined && (!isObject(caps) || ["write", "versions", "binary"].some((c) => typeof caps[c] !== "boolean") || typeof caps.batch !== "number"))
          problems.push(`${at}.capabilities: expected { write, versions, binary, staging? } booleans and batch (a number)`);
      } else {
        const caps = def.capabilities;
        if (!Array.isArray(caps) || !caps.length || caps.some((c) => !TARGET_CAPABILITIES.includes(c as TargetCapability)))
          problems.push(`${at}.capabilities: expected a list of ${TARGET_CAPABILITIES.join(", ")} (what the target can do)`);
      }
      if (problems.length > before) continue;
      if (kind === "stores") stores.push(storeType(name, type, def));
      else targets.push(targetType(name, type, def));
    }
  }
  if (problems.length)
    throw new PluginError(`plugin ${label} breaks the plugin interface:\n${problems.map((p) => `  ${p}`).join("\n")}`, {
      hint: "see the README's Plugins section for the interface",
    });
  for (const s of stores) registerPluginStoreType(s);
  for (const t of targets) registerPluginTargetType(t);
  for (const s of strategies) registerPluginStrategy(s);
  const loaded: LoadedPlugin = {
    name,
    source,
    ...(file ? { file } : {}),
    stores: stores.map((s) => s.type),
    targets: targets.map((t) => t.type),
    strategies: strategies.map((s) => s.name),
  };
  all.push(loaded);
  if (isObject(raw)) byModule.set(raw, loaded);
  return loaded;
}

/** Check `strategies` (each problem goes to `problems`); the strategies to register when there is none. */
function checkStrategies(plugin: string, value: unknown, problems: string[]): PluginStrategy[] {
  if (value === undefined) return [];
  if (!isObject(value)) {
    problems.push(`strategies: expected an object of strategies ({ "<prefix>.<name>": { requires, plan, encode, decode } })`);
    return [];
  }
  const out: PluginStrategy[] = [];
  for (const [sname, def] of Object.entries(value)) {
    const at = `strategies.${sname}`;
    const before = problems.length;
    if ((rotationStrategies as readonly string[]).includes(sname) || Object.hasOwn(strategyAliases, sname))
      problems.push(`${at}: "${sname}" is a built-in strategy; a plugin cannot replace it (give it a name of its own, e.g. "<vendor>.${sname}")`);
    else if (!STRATEGY_NAME.test(sname))
      problems.push(`${at}: a strategy name is "<prefix>.<name>" (lower case letters and digits, e.g. "acme.suffix-user"), so it cannot collide with a built-in one`);
    const other = pluginStrategy(sname);
    if (other && other.plugin !== plugin) problems.push(`${at}: strategy "${sname}" is already added by plugin "${other.plugin}"`);
    if (!isObject(def)) {
      problems.push(`${at}: expected { requires, plan, encode, decode }`);
      continue;
    }
    for (const k of Object.keys(def)) if (!STRATEGY_KEYS.includes(k)) problems.push(`${at}.${k}: unknown key (expected one of: ${STRATEGY_KEYS.join(", ")})`);
    const req = def.requires;
    if (!Array.isArray(req) || !req.length || req.some((c) => !TARGET_CAPABILITIES.includes(c as TargetCapability)))
      problems.push(`${at}.requires: expected a list of ${TARGET_CAPABILITIES.join(", ")} (what the target must be able to do)`);
    for (const m of ["plan", "encode", "decode"] as const) if (typeof def[m] !== "function") problems.push(`${at}.${m}: expected a function (see the Strategy interface)`);
    if (def.description !== undefined && typeof def.description !== "string") problems.push(`${at}.description: expected a string`);
    if (problems.length > before) continue;
    out.push({
      plugin,
      name: sname,
      requires: [...(req as TargetCapability[])],
      ...(typeof def.description === "string" ? { description: def.description } : {}),
      shape: strategyShape(plugin, sname, def),
    });
  }
  return out;
}

/**
 * A plugin strategy as the engine runs it: what plan/encode/decode return is checked, and a
 * failure that is not a DsopsError becomes a PluginError naming the plugin (exit 1, never 70),
 * without the values the call was given.
 */
function strategyShape(plugin: string, sname: string, def: Record<string, unknown>): Strategy {
  const fns = def as unknown as Pick<Strategy, "plan" | "encode" | "decode">;
  const who = `strategy "${sname}" (plugin "${plugin}")`;
  const call = <T>(method: string, secrets: Secret[], fn: () => T, check: (r: T) => string | undefined): T => {
    let r: T;
    try {
      r = fn();
    } catch (e) {
      if (e instanceof DsopsError) throw e;
      throw new PluginError(`${who}: ${method}() failed: ${scrub(firstLine(e), secrets)}`, { hint: FOREIGN_HINT, cause: e });
    }
    const bad = check(r);
    if (bad) throw new PluginError(`${who}: ${method}() returned ${bad}`, { hint: "see the Strategy interface in the README's Plugins section" });
    return r;
  };
  const isCred = (c: unknown) => isObject(c) && typeof c.principal === "string" && c.principal.length > 0 && isObject(c.secret) && typeof c.secret.reveal === "function";
  return {
    name: sname,
    requires: def.requires as TargetCapability[],
    plan: (ctx) =>
      call("plan", ctx.current ? [ctx.current] : [], () => fns.plan(ctx), (p) =>
        !isObject(p) || typeof p.principal !== "string" || !p.principal
          ? "no plan (expected { principal, old?, apply, retire, graceMs? })"
          : !["set", "create"].includes(p.apply)
            ? `apply "${String(p.apply)}" (expected "set" or "create")`
            : !["none", "now", "grace"].includes(p.retire)
              ? `retire "${String(p.retire)}" (expected "none", "now" or "grace")`
              : p.old !== undefined && !isCred(p.old)
                ? "an old credential that is not { principal, secret: Secret }"
                : undefined,
      ),
    encode: (cred) => call("encode", [cred.secret], () => fns.encode(cred), (v) => (isObject(v) && typeof v.reveal === "function" ? undefined : "no Secret (wrap the stored value: new Secret(text))")),
    decode: (value, path) =>
      call("decode", [value], () => fns.decode(value, path), (c) => (isCred(c) ? undefined : "no credential (expected { principal, secret: Secret })")),
  };
}

function storeType(plugin: string, type: string, def: Record<string, unknown>): PluginStoreType {
  const create = def.create as PluginStoreType["create"];
  return {
    plugin,
    type,
    settings: def.settings as PluginStoreType["settings"],
    ...(def.capabilities ? { capabilities: def.capabilities as PluginStoreType["capabilities"] } : {}),
    ...(typeof def.description === "string" ? { description: def.description } : {}),
    create: (name, settings, ctx) =>
      guarded(checkStore(plugin, type, create(name, settings, ctx)), (e, method) =>
        e instanceof DsopsError ? e : new StoreError(`store "${name}" (${type}, plugin "${plugin}"): ${method}() failed: ${firstLine(e)}`, false, { hint: FOREIGN_HINT, cause: e }),
      ),
  };
}

function targetType(plugin: string, type: string, def: Record<string, unknown>): PluginTargetType {
  const create = def.create as PluginTargetType["create"];
  const capabilities = def.capabilities as TargetCapability[];
  return {
    plugin,
    type,
    settings: def.settings as PluginTargetType["settings"],
    capabilities,
    ...(typeof def.description === "string" ? { description: def.description } : {}),
    create: (name, settings, ctx) =>
      guarded(checkTarget(plugin, type, capabilities, create(name, settings, ctx)), (e, method) =>
        e instanceof DsopsError ? e : new TargetError(`service "${name}" (${type}, plugin "${plugin}"): ${method}() failed: ${firstLine(e)}`),
      ),
  };
}

const FOREIGN_HINT = "the plugin threw an error that is not one of dsops's (NotFoundError, AuthError, StoreError … from @dsops/pulumi/plugin): report it to the plugin's authors";

/**
 * The store or target with every method's failure that is not a DsopsError turned into one
 * naming the plugin (a plugin's TypeError is the plugin's bug, not dsops's: exit 1, not 70).
 */
function guarded<T extends object>(obj: T, wrap: (e: unknown, method: string) => Error): T {
  return new Proxy(obj, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== "function" || prop === "constructor") return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        let r: unknown;
        try {
          r = fn.apply(target, args);
        } catch (e) {
          throw wrap(e, String(prop));
        }
        return r instanceof Promise ? r.catch((e: unknown) => Promise.reject(wrap(e, String(prop)))) : r;
      };
    },
  });
}

/** What a plugin's `create` returned must be a store: refused, naming what is missing, before it is used. */
function checkStore(plugin: string, type: string, s: unknown): Store {
  const o = s as Record<string, unknown> | undefined;
  const missing = !isObject(o)
    ? ["an object"]
    : [
        ...(["get", "describe"] as const).filter((m) => typeof o[m] !== "function").map((m) => `${m}()`),
        ...(isObject(o.capabilities) ? [] : ["capabilities"]),
        ...(isObject(o.capabilities) && o.capabilities.write === true && typeof o.put !== "function" ? ["put() (capabilities.write is true)"] : []),
        ...(isObject(o.capabilities) && o.capabilities.staging === true && ["putPending", "promote", "discardPending", "stagesOf"].some((m) => typeof o[m] !== "function")
          ? ["putPending()/promote()/discardPending()/stagesOf() (capabilities.staging is true)"]
          : []),
      ];
  if (missing.length) throw new PluginError(`plugin "${plugin}": store type "${type}": create() returned a store without ${missing.join(", ")}`);
  return s as Store;
}

const CAPABILITY_METHODS: Record<TargetCapability, string> = { rotate: "setSecret", create: "create", revoke: "revoke", verify: "verify" };

function checkTarget(plugin: string, type: string, capabilities: readonly TargetCapability[], t: unknown): Target {
  const o = t as Record<string, unknown> | undefined;
  const missing = !isObject(o) ? ["an object"] : capabilities.filter((c) => typeof o[CAPABILITY_METHODS[c]] !== "function").map((c) => `${CAPABILITY_METHODS[c]}() (it declares ${c})`);
  if (!missing.length && isObject(o) && !(o.capabilities instanceof Set)) missing.push("capabilities (a Set)");
  if (!missing.length && isObject(o) && !isObject(o.valueRules)) missing.push("valueRules");
  if (missing.length) throw new PluginError(`plugin "${plugin}": rotation target type "${type}": create() returned a target without ${missing.join(", ")}`);
  return t as Target;
}

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** Plugin packages (or paths relative to dsops.yaml) adding store and target types and rotation strategies (`plugins:`). */
    plugins?: string[];
  }
}
