import { resolve } from "node:path";
import { configFromObject, loadConfigFile, type Config } from "../compose/config";
import { DsopsError, errorMessage } from "../core/errors";
import { formatStoreUri, parseStoreUri, splitField, type SecretRef } from "../engine/refs";
import { applyTransforms, compileTransforms } from "../engine/transforms";
import { suggest } from "../core/suggest";
import { environmentInputsSchema, maintenanceWindowInputsSchema, secretReferenceInputsSchema, type EnvironmentInputs, type MaintenanceWindowInputs, type SecretReferenceInputs } from "./inputs";
import { clock } from "../core/clock";
import { Window } from "../schedule/window";
import type { PlanRow } from "./types";

/**
 * What the dynamic providers run in Pulumi's provider process. The serialized providers hold
 * nothing but `require("@dsops/pulumi/provider/dynamic/handlers")`, so this module is loaded
 * from the installed package, once per process; its state lives for one Pulumi operation.
 */

export { UNKNOWN, DEFAULT_STORES, configure, providerConfig } from "./context";
export { rotationPolicy, evaluate as evaluatePolicy, waitingMessage } from "./rotation-policy";
import { madeByRotation } from "./rotation-policy";
import { auditedAccess, cached, hasUnknown, named, noteRead, providerConfig, resolverFor, state, takeRead, zodFailures } from "./context";

// ---------------------------------------------------------------- SecretReference

interface SecretReferenceTarget {
  config: Config;
  ref: SecretRef;
}

function secretReferenceTarget(inputs: SecretReferenceInputs): SecretReferenceTarget {
  let config: Config;
  let ref: SecretRef;
  if (inputs.ref !== undefined) {
    config = providerConfig();
    ref = parseStoreUri(inputs.ref);
  } else if (typeof inputs.store === "string") {
    config = providerConfig();
    ref = { store: inputs.store, ...splitField(inputs.key as string) };
  } else {
    const inline = inputs.store as Record<string, unknown>;
    config = cached(`inline:${state.cwd}:${JSON.stringify(inline)}`, () => configFromObject({ secretStores: { inline } }, { dir: state.cwd, label: "store" }));
    ref = { store: "inline", ...splitField(inputs.key as string) };
  }
  if (inputs.version !== undefined) ref = { ...ref, version: inputs.version };
  if (!config.stores[ref.store]) {
    const names = Object.keys(config.stores);
    const hint = suggest(ref.store, names);
    throw new DsopsError(`unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : ` (stores: ${names.join(", ") || "none"})`}`);
  }
  return { config, ref };
}

function label(t: SecretReferenceTarget): string {
  return formatStoreUri(t.ref.store === "inline" ? { ...t.ref, store: `inline:${t.config.stores.inline.type}` } : t.ref);
}

/** Listings of current versions, one per store per provider process (a Pulumi operation). */
const listings = new Map<string, Promise<Map<string, string> | undefined>>();
/** How many secrets one listing may cover; beyond that, references are checked one by one. */
const LISTING_LIMIT = 1000;

/**
 * The current version of a reference, for drift checks: from the store's listing of current
 * versions when it has one (a few calls for a whole preview), else a (batched) fetch.
 */
async function currentVersion(t: SecretReferenceTarget): Promise<{ versionId: string }> {
  const r = resolverFor(t.config);
  const store = r.store(t.ref.store);
  if (store.listCurrentVersions && t.ref.version === undefined) {
    const key = `${t.config.dir}:${t.config.file ?? ""}:${t.ref.store}:${JSON.stringify(t.config.stores[t.ref.store])}`;
    let listing = listings.get(key);
    if (!listing) {
      listing = store.listCurrentVersions(LISTING_LIMIT).catch(() => undefined);
      listings.set(key, listing);
    }
    const id = (await listing)?.get(t.ref.key);
    if (id !== undefined) return { versionId: id };
  }
  return r.fetch(t.ref);
}

export interface SecretReferenceOutputs extends SecretReferenceInputs {
  value: string;
  versionId: string;
  updatedAt?: string;
  storeType: string;
}

const secretReferenceInputKeys = ["ref", "store", "key", "version", "transform"] as const;

function pickInputs(o: Record<string, unknown>): SecretReferenceInputs {
  return Object.fromEntries(secretReferenceInputKeys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as SecretReferenceInputs;
}

/** The audit line of an access to a SecretReference's secret. */
const refAudit = (t: SecretReferenceTarget, op: string) => ({ command: `pulumi SecretReference ${op}` as const, resource: label(t), store: t.ref.store === "inline" ? label(t).replace(/^store:\/\/([^/]+)\/.*$/, "$1") : t.ref.store, key: t.ref.key });

async function readSecretReference(inputs: SecretReferenceInputs, op: "create" | "read" | "update"): Promise<SecretReferenceOutputs> {
  const t = secretReferenceTarget(inputs);
  return named(`SecretReference ${label(t)}`, async () => {
    const got = await auditedAccess(t.config, refAudit(t, op), async (note) => {
      const { sealedOfRef, withSealedReads } = require("../compose/sealed-reads") as typeof import("../compose/sealed-reads");
      // The secret of a sealed variable (access: breakglass) is read only under an open break-glass grant on it.
      const sealed = t.ref.store === "inline" ? [] : sealedOfRef(t.config, t.ref.store, t.ref.key);
      const g = await withSealedReads(t.config, sealed, `pulumi SecretReference ${op}`, () => resolverFor(t.config).resolveRef(t.ref), { anyOf: true, hintInMessage: true });
      note({ variables: [{ name: label(t), store: t.ref.store, key: t.ref.key, versionId: g.versionId }] });
      return g;
    });
    const value = applyTransforms(compileTransforms(inputs.transform, t.config.raw.transforms), got.value);
    return {
      ...inputs,
      value: value.reveal(),
      versionId: got.versionId,
      ...(got.updatedAt ? { updatedAt: got.updatedAt } : {}),
      storeType: t.config.stores[t.ref.store].type,
    };
  });
}

export const secretReference = {
  async check(_olds: unknown, news: Record<string, unknown>) {
    const parsed = secretReferenceInputsSchema.safeParse(pickInputs(news));
    if (!parsed.success) return { inputs: news, failures: zodFailures(parsed.error.issues) };
    if (hasUnknown(news)) return { inputs: news };
    try {
      secretReferenceTarget(parsed.data);
      compileTransforms(parsed.data.transform);
    } catch (e) {
      return { inputs: news, failures: [{ property: parsed.data.ref !== undefined ? "ref" : "store", reason: errorMessage(e) }] };
    }
    return { inputs: news };
  },

  async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const refreshed = takeRead(id, olds);
    if (refreshed !== undefined) return { changes: refreshed };
    const before = pickInputs(olds);
    const after = pickInputs(news);
    if (JSON.stringify(before) !== JSON.stringify(after)) return { changes: true };
    if (hasUnknown(news)) return { changes: true };
    if (after.version !== undefined) return { changes: false };
    const t = secretReferenceTarget(after);
    const current = await named(`SecretReference ${label(t)}`, () => auditedAccess(t.config, refAudit(t, "diff"), () => currentVersion(t)));
    if (current.versionId === olds.versionId) return { changes: false };
    // A version made by a RotationPolicy is not drift: the program reads it from the policy's value.
    if (t.ref.store !== "inline" && (await madeByRotation(t.ref, current.versionId))) return { changes: false };
    return { changes: true };
  },

  /**
   * The store's current version id of an unpinned reference (the drift check of `diff`), for a
   * host that shows it as the new `versionId` of a diff (the plugin's `check`).
   */
  async currentVersionId(inputs: Record<string, unknown>): Promise<string> {
    const t = secretReferenceTarget(pickInputs(inputs));
    return (await named(`SecretReference ${label(t)}`, () => auditedAccess(t.config, refAudit(t, "diff"), () => currentVersion(t)))).versionId;
  },

  async create(inputs: Record<string, unknown>) {
    const outs = await readSecretReference(pickInputs(inputs), "create");
    return { id: label(secretReferenceTarget(pickInputs(inputs))), outs };
  },

  async read(id: string, props: Record<string, unknown>) {
    const outs = await readSecretReference(pickInputs(props), "read");
    noteRead(id, props, outs);
    return { id, props: outs };
  },

  async update(_id: string, _olds: unknown, news: Record<string, unknown>) {
    return { outs: await readSecretReference(pickInputs(news), "update") };
  },

  /** Deleting the resource never deletes anything in the store. */
  async delete() {},
};

// ---------------------------------------------------------------- Environment

/** One row of an Environment's plan (defined beside the SDK's other published types). */
export type { PlanRow } from "./types";

function environmentConfig(inputs: EnvironmentInputs): Config {
  if (inputs.configFile !== undefined) {
    const file = resolve(state.cwd, inputs.configFile);
    return cached(`file:${file}`, () => loadConfigFile(file, { label: inputs.configFile }));
  }
  return cached(`env-inline:${state.cwd}:${JSON.stringify(inputs.config)}`, () => configFromObject(inputs.config, { dir: state.cwd, label: "config" }));
}

function pickEnvInputs(o: Record<string, unknown>): EnvironmentInputs {
  return Object.fromEntries(["configFile", "config", "env"].filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as EnvironmentInputs;
}

async function readEnvironment(inputs: EnvironmentInputs, op: "create" | "read" | "update") {
  const config = environmentConfig(inputs);
  return named(`Environment ${inputs.env}`, async () => {
    const r = resolverFor(config);
    const res = await auditedAccess(config, { command: `pulumi Environment ${op}`, resource: `env:${inputs.env}`, env: inputs.env }, async (note) => {
      const { sealedOfEnv, withSealedReads } = require("../compose/sealed-reads") as typeof import("../compose/sealed-reads");
      const got = await withSealedReads(config, sealedOfEnv(config, inputs.env), `pulumi Environment ${op}`, () => r.resolveEnv(inputs.env), { hintInMessage: true });
      note({ variables: Object.values(got.variables).map((v) => ({ name: v.name, ...(v.store ? { store: v.store } : {}), ...(v.key ? { key: v.key } : {}), ...(v.versionId ? { versionId: v.versionId } : {}) })) });
      return got;
    });
    const vars = config.envs[inputs.env];
    const plan: PlanRow[] = Object.values(res.variables).map((v) => ({
      name: v.name,
      source: v.source,
      ...(v.store ? { store: v.store, storeType: config.stores[v.store].type, key: v.key } : {}),
      ...(vars[v.name].ref?.field ? { field: vars[v.name].ref?.field } : {}),
      ...(v.versionId ? { versionId: v.versionId } : {}),
      ...(vars[v.name].ref?.version !== undefined ? { pinned: true } : {}),
    }));
    return {
      ...inputs,
      variables: Object.fromEntries(Object.entries(res.variables).map(([k, v]) => [k, v.value.reveal()])),
      plan,
    };
  });
}

/**
 * The current version id of each store variable of the env that is not pinned, by name: the
 * computed input `currentVersions` that `check` adds to an existing Environment, so that
 * `pulumi preview --diff` shows which variable's version moved (`~ TOKEN: "1" => "2"`).
 */
async function currentVersionsOf(config: Config, env: string): Promise<Record<string, string>> {
  const r = resolverFor(config);
  const vars = config.envs[env] ?? {};
  const rows = await named(`Environment ${env}`, () =>
    Promise.all(
      Object.entries(vars)
        .filter(([, v]) => v.ref !== undefined && v.ref.version === undefined)
        .map(async ([name, v]) => [name, (await r.fetch(v.ref as SecretRef)).versionId] as const),
    ),
  );
  return Object.fromEntries(rows.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** An Environment's inputs checked: failures naming the property, else the inputs and their configuration. */
function validateEnvironment(news: Record<string, unknown>): { failures: Array<{ property: string; reason: string }> } | { inputs: EnvironmentInputs; config?: Config } {
  const parsed = environmentInputsSchema.safeParse(pickEnvInputs(news));
  if (!parsed.success) return { failures: zodFailures(parsed.error.issues) };
  if (hasUnknown(news)) return { inputs: parsed.data };
  try {
    const config = environmentConfig(parsed.data);
    if (!config.envs[parsed.data.env]) {
      const names = Object.keys(config.envs);
      const hint = suggest(parsed.data.env, names);
      return { failures: [{ property: "env", reason: `unknown env "${parsed.data.env}"${hint ? ` (did you mean "${hint}"?)` : ` (envs: ${names.join(", ") || "none"})`}` }] };
    }
    return { inputs: parsed.data, config };
  } catch (e) {
    return { failures: [{ property: parsed.data.configFile !== undefined ? "configFile" : "config", reason: errorMessage(e) }] };
  }
}

export const environment = {
  /** Validates, and records the store's current versions (`currentVersions`; for a new Environment, when they can be read). */
  async check(olds: Record<string, unknown> | undefined, news: Record<string, unknown>) {
    const v = validateEnvironment(news);
    if ("failures" in v) return { inputs: news, failures: v.failures };
    if (!v.config) return { inputs: news };
    // A new Environment's secrets may be made earlier in the same `up`: one not there yet is no error here.
    if (!olds || Object.keys(olds).length === 0) {
      const seen = await currentVersionsOf(v.config, v.inputs.env).catch(() => undefined);
      return { inputs: seen ? { ...news, currentVersions: seen } : news };
    }
    return { inputs: { ...news, currentVersions: await currentVersionsOf(v.config, v.inputs.env) } };
  },

  /** The check of getEnvironment's arguments (no store is called). */
  validate(args: Record<string, unknown>): Array<{ property: string; reason: string }> {
    const v = validateEnvironment(args);
    return "failures" in v ? v.failures : [];
  },

  /** An update when inputs changed, a variable was added or removed, or a variable's current version is not the one read. */
  async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const refreshed = takeRead(id, olds);
    if (refreshed !== undefined) return { changes: refreshed };
    const after = pickEnvInputs(news);
    if (JSON.stringify(pickEnvInputs(olds)) !== JSON.stringify(after)) return { changes: true };
    if (hasUnknown(news)) return { changes: true };
    const config = environmentConfig(after);
    const vars = config.envs[after.env] ?? {};
    const plan = (olds.plan as PlanRow[] | undefined) ?? [];
    if (Object.keys(vars).sort().join() !== plan.map((p) => p.name).sort().join()) return { changes: true };
    const current = (news.currentVersions as Record<string, string> | undefined) ?? (await currentVersionsOf(config, after.env));
    return { changes: plan.some((p) => p.source === "store" && !p.pinned && current[p.name] !== p.versionId) };
  },

  async create(inputs: Record<string, unknown>) {
    const outs = await readEnvironment(pickEnvInputs(inputs), "create");
    return { id: `env:${outs.env}`, outs };
  },

  async read(id: string, props: Record<string, unknown>) {
    const outs = await readEnvironment(pickEnvInputs(props), "read");
    noteRead(id, props, outs);
    return { id, props: outs };
  },

  async update(_id: string, _olds: unknown, news: Record<string, unknown>) {
    return { outs: await readEnvironment(pickEnvInputs(news), "update") };
  },

  async delete() {},
};

// ---------------------------------------------------------------- MaintenanceWindow

const windowInputKeys = ["schedule", "duration", "timezone", "blackouts", "enabled"] as const;

function pickWindowInputs(o: Record<string, unknown>): MaintenanceWindowInputs {
  return Object.fromEntries(windowInputKeys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as MaintenanceWindowInputs;
}

/** The window's state now (the one clock: DSOPS_CLOCK in tests and drills). */
function windowOutputs(inputs: MaintenanceWindowInputs) {
  const state = new Window(inputs).state(clock().now());
  const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
  return {
    ...inputs,
    isOpen: state.isOpen,
    ...(state.nextOpenAt !== undefined ? { nextOpenAt: iso(state.nextOpenAt) } : {}),
    ...(state.nextCloseAt !== undefined ? { nextCloseAt: iso(state.nextCloseAt) } : {}),
    ...(state.blockedBy !== undefined ? { blockedBy: state.blockedBy } : {}),
  };
}

/** "field: reason" messages of the schedule module become check failures on that field. */
function fieldFailure(e: unknown): { property: string; reason: string } {
  const msg = errorMessage(e);
  const m = /^([A-Za-z_][\w.[\]]*): (.*)$/s.exec(msg);
  return m ? { property: m[1], reason: m[2] } : { property: "schedule", reason: msg };
}

export const maintenanceWindow = {
  async check(_olds: unknown, news: Record<string, unknown>) {
    const parsed = maintenanceWindowInputsSchema.safeParse(pickWindowInputs(news));
    if (!parsed.success) return { inputs: news, failures: zodFailures(parsed.error.issues) };
    if (hasUnknown(news)) return { inputs: news };
    try {
      new Window(parsed.data);
    } catch (e) {
      return { inputs: news, failures: [fieldFailure(e)] };
    }
    return { inputs: news };
  },

  /** Only input changes update a window; its time-dependent outputs follow at up and refresh. */
  async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const refreshed = takeRead(id, olds);
    if (refreshed !== undefined) return { changes: refreshed };
    return { changes: JSON.stringify(pickWindowInputs(olds)) !== JSON.stringify(pickWindowInputs(news)) };
  },

  async create(inputs: Record<string, unknown>) {
    const outs = windowOutputs(pickWindowInputs(inputs));
    return { id: `window:${JSON.stringify(outs.schedule)}`, outs };
  },

  async read(id: string, props: Record<string, unknown>) {
    const outs = windowOutputs(pickWindowInputs(props));
    noteRead(id, props, outs);
    return { id, props: outs };
  },

  async update(_id: string, _olds: unknown, news: Record<string, unknown>) {
    return { outs: windowOutputs(pickWindowInputs(news)) };
  },

  async delete() {},
};
