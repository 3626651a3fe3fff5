import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { configFromObject, loadConfigFile, type Config } from "../compose/config";
import { DsopsError, errorMessage } from "../core/errors";
import { Resolver } from "../engine/resolve";
import { audited, type AuditEntry } from "../guard/policy";
import { parseStoreUri } from "../engine/refs";
import { loadPlugins } from "../compose/plugins";
import { parseSchedulerSetting, schedulerUrl, type SchedulerSetting } from "../compose/registered-policies";

/**
 * State shared by the dynamic providers in Pulumi's provider process: the stack's provider
 * configuration, loaded configurations and their resolvers. Lives for one Pulumi operation.
 */
/** The marker Pulumi puts in place of values not known during a preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

interface ProviderSettings {
  configFile?: string;
  stores?: string;
  /** `dsops:scheduler`: the shared scheduler database RotationPolicy definitions are registered in. */
  scheduler?: string;
}

let cwdOverride: string | undefined;
export const state: { settings: ProviderSettings; cwd: string } = {
  settings: {},
  /** The program's folder: Pulumi runs programs and provider hosts there. Read when used (tests may set it). */
  get cwd() {
    return cwdOverride ?? process.cwd();
  },
  set cwd(dir: string) {
    cwdOverride = dir;
  },
};
const configs = new Map<string, Config>();
const resolvers = new Map<Config, Resolver>();

/** The default when the stack names no configuration: the embedded file store. */
export const DEFAULT_STORES = { local: { type: "file", path: "./secrets.store" } };

/** Called by each provider's `configure` with the stack's configuration. */
export function configure(get: (key: string) => string | undefined): void {
  const settings: ProviderSettings = {};
  const file = get("dsops:configFile");
  const stores = get("dsops:stores");
  if (file) settings.configFile = file;
  if (stores) settings.stores = stores;
  const scheduler = get("dsops:scheduler");
  if (scheduler) settings.scheduler = scheduler;
  // `dsops:plugins`: plugin packages loaded in this (the provider's) process by name, from the program's folder.
  const plugins = get("dsops:plugins");
  if (plugins) loadPlugins(pluginList(plugins), state.cwd, "dsops:plugins");
  if (JSON.stringify(settings) !== JSON.stringify(state.settings)) configs.clear();
  state.settings = settings;
}

/** `dsops:plugins` as set by `pulumi config set --path 'dsops:plugins[0]' …` (a JSON list) or one name. */
function pluginList(value: string): string[] {
  let list: unknown = value;
  if (value.trim().startsWith("[")) {
    try {
      list = JSON.parse(value);
    } catch {
      throw new DsopsError("stack config dsops:plugins is not a JSON list of plugin packages");
    }
  }
  const names = Array.isArray(list) ? list : [list];
  if (!names.every((n) => typeof n === "string" && n.length > 0)) throw new DsopsError("stack config dsops:plugins: expected plugin package names (strings)");
  return names as string[];
}

export function cached(key: string, make: () => Config): Config {
  let c = configs.get(key);
  if (!c) {
    c = make();
    configs.set(key, c);
  }
  return c;
}

/** The provider's configuration: `dsops:configFile`, plus `dsops:stores`, else the embedded file store. */
export function providerConfig(): Config {
  const { configFile, stores } = state.settings;
  return cached(`provider:${state.cwd}:${configFile ?? ""}:${stores ?? ""}`, () => {
    let extra: Record<string, unknown> = {};
    if (stores) {
      try {
        extra = JSON.parse(stores) as Record<string, unknown>;
      } catch {
        throw new DsopsError("stack config dsops:stores is not a JSON object of stores");
      }
    }
    if (configFile) {
      const base = loadConfigFile(resolve(state.cwd, configFile));
      if (!stores) return base;
      return configFromObject({ ...base.raw, secretStores: { ...base.raw.secretStores, ...extra } }, { dir: base.dir, label: configFile });
    }
    return configFromObject({ secretStores: stores ? extra : DEFAULT_STORES }, { dir: state.cwd, label: stores ? "dsops:stores" : "default" });
  });
}

/**
 * The scheduler setting (`dsops:scheduler`), checked; undefined when the stack sets none. A
 * postgresql:// URL with a password is refused here, naming the setting.
 */
export function schedulerSetting(): SchedulerSetting | undefined {
  const text = state.settings.scheduler;
  return text ? parseSchedulerSetting(text, "stack config dsops:scheduler") : undefined;
}

const schedulerUrls = new Map<string, Promise<string>>();

/** The scheduler database's connection string (a store:// reference read through the provider's configuration). Never printed. */
export function schedulerConnection(s: SchedulerSetting): Promise<string> {
  const key = `${state.cwd}:${state.settings.configFile ?? ""}:${state.settings.stores ?? ""}:${s.database}`;
  let p = schedulerUrls.get(key);
  if (!p) {
    p = schedulerUrl(s, async (uri) => (await resolverFor(providerConfig()).resolveRef(parseStoreUri(uri))).value.reveal(), process.env, "stack config dsops:scheduler");
    schedulerUrls.set(key, p);
    p.catch(() => schedulerUrls.delete(key));
  }
  return p;
}

export function resolverFor(config: Config): Resolver {
  let r = resolvers.get(config);
  if (!r) {
    r = new Resolver(config);
    resolvers.set(config, r);
  }
  return r;
}

export function hasUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v && typeof v === "object") return Object.values(v).some(hasUnknown);
  return false;
}

export function zodFailures(issues: Array<{ path: PropertyKey[]; message: string }>): Array<{ property: string; reason: string }> {
  return issues.map((i) => ({ property: i.path.map(String).join(".") || "(inputs)", reason: i.message }));
}

/**
 * Run a secret access of a dynamic resource and write it to the audit log of
 * `policies.audit_logging` (the CLI's JSON lines, `face: "pulumi"`; never a value). The log is the
 * one of `config`; an access through an inline store (whose configuration has no `policies:`)
 * goes to the provider configuration's log.
 */
export function auditedAccess<T>(config: Config, entry: Omit<AuditEntry, "outcome" | "face">, fn: (note: (more: Partial<AuditEntry>) => void) => Promise<T>): Promise<T> {
  let target = config;
  if (!config.raw.policies?.audit_logging) {
    try {
      target = providerConfig();
    } catch {
      target = config;
    }
  }
  return audited(target, { ...entry, face: "pulumi" }, fn);
}

/** Errors leave with the reference named and no stack trace. */
export async function named<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = new DsopsError(`${what}: ${errorMessage(e)}`);
    // Pulumi's provider host prints an error's stack: a user error is a message, not a trace.
    err.stack = err.message;
    throw err;
  }
}

/**
 * What each `read` of this process changed, for the `diff` Pulumi asks right after it. During
 * `pulumi refresh` the engine calls `read`, then `diff` with the refreshed outputs as `olds` and
 * the state's inputs as `news`, and shows the resource as updated only when that diff reports
 * changes. A drift check against the store would find nothing there (the refreshed outputs are
 * current), so the diff that follows a read answers whether the read changed the outputs.
 * Keyed by id and a digest of the refreshed outputs; each entry answers one diff.
 */
const reads = new Map<string, boolean[]>();

function digest(id: string, props: object): string {
  const stable = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(stable);
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).filter((k) => k !== "__provider" && (v as Record<string, unknown>)[k] !== undefined).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])]));
    return v;
  };
  return createHash("sha256").update(id).update("\0").update(JSON.stringify(stable(props))).digest("hex");
}

/** Record a read: `before` is the state's outputs, `after` what the read returns. */
export function noteRead(id: string, before: object, after: object): void {
  const key = digest(id, after);
  const changed = digest(id, before) !== key;
  reads.set(key, [...(reads.get(key) ?? []), changed]);
}

/** When `olds` are the outputs a read of this process just returned: whether that read changed them (once). */
export function takeRead(id: string, olds: Record<string, unknown>): boolean | undefined {
  const key = digest(id, olds);
  const pending = reads.get(key);
  if (!pending?.length) return undefined;
  const changed = pending.shift();
  if (!pending.length) reads.delete(key);
  return changed;
}
