import { clock as currentClock, type Clock } from "../core/clock";
import { localeSort } from "../core/collate";
import { callWithPolicy, type CallPolicy } from "../core/call";
import type { Config, Variable } from "./config/load";
import { ConfigError, DsopsError, ResolveError, TransformError, errorMessage, type VariableFailure } from "../core/errors";
import { extractJsonField } from "./jsonpath";
import { Limiter } from "../core/limit";
import { fetchId, parseStoreUri, refId, type SecretRef } from "./refs";
import { Secret } from "../core/secret";
import { applyTransforms } from "./transforms";
import { createStore } from "../stores/registry";
import type { SecretVersion, Staging, Store, StoreKey } from "../stores/types";

/** One resolved variable of an env. */
export interface ResolvedVariable {
  readonly name: string;
  readonly value: Secret;
  readonly source: "literal" | "store";
  readonly store?: string;
  readonly key?: string;
  readonly versionId?: string;
  readonly updatedAt?: string;
}

/** The result of resolving an env. */
export interface EnvResult {
  readonly env: string;
  readonly variables: Readonly<Record<string, ResolvedVariable>>;
  /** Optional variables left out, and other warnings (no values). */
  readonly warnings: string[];
}

/** What `plan` shows of a variable: where it comes from, never its value. */
export interface PlanEntry {
  readonly name: string;
  /** `service`: dsops's `from: {service: "svc://…"}`, which names a rotation target, never a value. */
  readonly source: "literal" | "store" | "service";
  readonly store?: string;
  readonly storeType?: string;
  readonly key?: string;
  readonly field?: string;
  readonly version?: string;
  readonly transforms: string[];
  readonly optional: boolean;
  /** The `svc://…` a service reference names (source `service`), or the variable's `service:`. */
  readonly service?: string;
  /** Why a `service` source has no value. */
  readonly note?: string;
  /** The variable's free-form `metadata:`, as written. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** What `plan` says of a service reference; the resolver refuses it with the same words. */
export const SERVICE_REF_NOTE = "names a rotation target, never a value: nothing to resolve";

export interface ResolverOptions {
  /** Store calls in flight at once (default the config's resolver.concurrency, else 16). */
  concurrency?: number;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /** Told of warnings as they happen (optional variables skipped, retries). */
  onWarning?: (message: string) => void;
  /** Told of each finished variable (progress). */
  onProgress?: (done: number, total: number) => void;
  random?: () => number;
  /** Store instances to use instead of creating them from the configuration (library users, tests). */
  stores?: Readonly<Record<string, Store>>;
}

/** Calls made to each store during a run (batch calls count once). */
export interface ResolverStats {
  calls: number;
  byStore: Record<string, number>;
}

interface Pending {
  key: StoreKey;
  resolve: (v: SecretVersion) => void;
  reject: (e: Error) => void;
}

/**
 * Resolves references and envs of one configuration. One instance is one run: each distinct
 * store fetch that succeeds happens once (several fields of one secret share it; a failed one is
 * asked again by the next call), requests made in the same tick are batched per store, and at
 * most `concurrency` store calls are in flight.
 */
export class Resolver {
  readonly stats: ResolverStats = { calls: 0, byStore: {} };
  private readonly stores = new Map<string, Store>();
  private readonly cache = new Map<string, Promise<SecretVersion>>();
  private readonly queues = new Map<string, Pending[]>();
  private readonly limiter: Limiter;
  private readonly clock: Clock;

  constructor(readonly config: Config, private readonly opts: ResolverOptions = {}) {
    this.clock = opts.clock ?? currentClock();
    this.limiter = new Limiter(opts.concurrency ?? config.raw.resolver?.concurrency ?? 16);
  }

  /** The store of that name, created on first use. */
  store(name: string): Store {
    let s = this.stores.get(name) ?? this.opts.stores?.[name];
    if (!s) {
      const settings = this.config.stores[name];
      if (!settings) throw new DsopsError(`unknown store "${name}"`);
      const deferred = this.config.storeProblems?.[name];
      if (deferred?.length) throw new ConfigError(`store "${name}" cannot be used: ${deferred.join("; ")}`, [...deferred], { hint: "set the variable, or give a default: ${NAME:-default}" });
      s = createStore(name, settings, {
        configDir: this.config.dir,
        clock: this.clock,
        env: this.opts.env ?? process.env,
        ...(this.opts.onWarning ? { onWarning: this.opts.onWarning } : {}),
        resolveRef: (uri) => this.resolveSettingRef(name, uri),
      });
      this.stores.set(name, s);
    }
    return s;
  }

  /**
   * The store of that name with its call policy around each call (get, getMany, describe, put,
   * listCurrentVersions and the staging calls): transient failures (throttling, 5xx, refused or
   * reset connections, timeouts) are retried `retries` times with backoff, and, unless
   * `timeout: false`, each attempt is abandoned after `timeout_ms` of the resolver's clock.
   * `timeout: false` is for callers whose clock is moved far ahead while they wait (rotation
   * drills): each store client's own timeout (timeout_ms, in real time) still bounds a call.
   * A retried `put` may leave one extra version holding the same value.
   */
  guardedStore(name: string, opts: { timeout?: boolean } = {}): Store {
    const store = this.store(name);
    const policy = this.callPolicy(name);
    return guarded(store, name, opts.timeout === false ? { ...policy, timeoutMs: undefined } : policy);
  }

  /**
   * Fetch the version a reference points at (field not applied). A fetch that fails leaves the
   * cache once it has failed (its callers still get the error), so the next call asks the store
   * again: a long-lived resolver (the Pulumi provider's) never keeps an error.
   */
  fetch(ref: SecretRef): Promise<SecretVersion> {
    const own = this.storeReadsField(ref);
    const id = own ? refId(ref) : fetchId(ref);
    let p = this.cache.get(id);
    if (!p) {
      const fetching = this.enqueue(ref.store, {
        key: ref.key,
        ...(ref.version !== undefined ? { version: ref.version } : {}),
        ...(ref.options ? { options: ref.options } : {}),
        ...(own ? { field: ref.field } : {}),
      });
      fetching.catch(() => {
        if (this.cache.get(id) === fetching) this.cache.delete(id);
      });
      this.cache.set(id, fetching);
      p = fetching;
    }
    return p;
  }

  /** Resolve one reference to its value (field applied). */
  async resolveRef(ref: SecretRef): Promise<{ value: Secret; versionId: string; updatedAt?: string }> {
    const v = await this.fetch(ref);
    const value = ref.field === undefined || this.storeReadsField(ref) ? v.value : fieldOf(v, ref.field);
    return { value, versionId: v.versionId, ...(v.updatedAt ? { updatedAt: v.updatedAt } : {}) };
  }

  /** The store reads the reference's `#field` itself (a password manager's attributes); false when it cannot be created (its fetch reports why). */
  private storeReadsField(ref: SecretRef): boolean {
    if (ref.field === undefined) return false;
    try {
      return this.store(ref.store).readsField?.(ref.field) === true;
    } catch {
      return false;
    }
  }

  /**
   * A `store://` reference in a setting of store `from` (its database password kept in another
   * store). A reference back to `from`, directly or through other stores' settings, is refused:
   * it could never be opened.
   */
  private async resolveSettingRef(from: string, uri: string): Promise<Secret> {
    const ref = parseStoreUri(uri);
    const seen = new Set<string>();
    const walk = (name: string): boolean => {
      if (name === from) return true;
      if (seen.has(name)) return false;
      seen.add(name);
      const refs: string[] = [];
      const collect = (v: unknown): void => {
        if (typeof v === "string" && v.startsWith("store://")) refs.push(v.slice(8).split("/")[0]);
        else if (v && typeof v === "object") Object.values(v).forEach(collect);
      };
      collect(this.config.stores[name]);
      return refs.some(walk);
    };
    if (walk(ref.store))
      throw new DsopsError(`store "${from}": the reference ${uri} in its settings leads back to store "${from}"`, { hint: "keep the store's password in another store (file, env, vault …) that does not need it" });
    return (await this.resolveRef(ref)).value;
  }

  /** Where each variable of an env comes from; no store is called. */
  plan(envName: string): PlanEntry[] {
    return localeSort(Object.values(this.env(envName)), (v) => v.name)
      .map((v) => ({
        name: v.name,
        source: v.spec.literal !== undefined ? ("literal" as const) : v.serviceRef !== undefined ? ("service" as const) : ("store" as const),
        ...(v.spec.literal === undefined && v.serviceRef !== undefined ? { service: v.serviceRef, note: SERVICE_REF_NOTE } : v.spec.service !== undefined ? { service: v.spec.service } : {}),
        ...(v.spec.metadata !== undefined ? { metadata: v.spec.metadata } : {}),
        ...(v.ref && v.spec.literal === undefined
          ? { store: v.ref.store, storeType: this.config.stores[v.ref.store]?.type, key: v.ref.key, field: v.ref.field, version: v.ref.version }
          : {}),
        transforms: v.transforms.map((t) => (t.arg === undefined ? t.name : `${t.name}:${t.arg}`)),
        optional: v.optional,
      }));
  }

  /** Resolve every variable of an env; all failures are collected into one ResolveError. */
  async resolveEnv(envName: string, only?: readonly string[]): Promise<EnvResult> {
    const vars = Object.values(this.env(envName)).filter((v) => !only || only.includes(v.name));
    if (only) {
      const missing = only.filter((n) => !vars.some((v) => v.name === n));
      if (missing.length) throw new DsopsError(`env "${envName}" has no variable ${missing.map((m) => `"${m}"`).join(", ")}`);
    }
    this.checkPolicies(envName, vars);
    const failures: VariableFailure[] = [];
    const warnings: string[] = [];
    const variables: Record<string, ResolvedVariable> = {};
    let done = 0;
    await Promise.all(
      vars.map(async (v) => {
        try {
          variables[v.name] = await this.resolveVariable(v);
        } catch (e) {
          const cause = errorMessage(e);
          if (v.optional) {
            const w = `${v.name}: optional, left out: ${cause}`;
            warnings.push(w);
            this.opts.onWarning?.(w);
          } else {
            failures.push({ variable: v.name, ...(v.ref ? { store: v.ref.store, key: v.ref.key } : {}), cause });
          }
        } finally {
          this.opts.onProgress?.(++done, vars.length);
        }
      }),
    );
    if (failures.length) throw new ResolveError(envName, localeSort(failures, (f) => f.variable));
    return { env: envName, variables: sortKeys(variables), warnings };
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.close?.().catch(() => undefined)));
    this.stores.clear();
  }

  private env(envName: string): Readonly<Record<string, Variable>> {
    const env = this.config.envs[envName];
    if (!env) {
      const names = Object.keys(this.config.envs);
      throw new DsopsError(`unknown env "${envName}"`, { hint: names.length ? `envs: ${names.join(", ")}` : "no envs are defined in the configuration" });
    }
    return env;
  }

  private checkPolicies(envName: string, vars: Variable[]): void {
    const p = this.config.raw.policies;
    if (!p) return;
    if (p.max_secrets !== undefined && vars.length > p.max_secrets)
      throw new DsopsError(`env "${envName}" has ${vars.length} variables; policies.max_secrets allows ${p.max_secrets}`);
  }

  private async resolveVariable(v: Variable): Promise<ResolvedVariable> {
    if (v.spec.literal !== undefined) {
      return { name: v.name, value: applyTransforms(v.transforms, new Secret(v.spec.literal)), source: "literal" };
    }
    if (v.serviceRef !== undefined)
      throw new DsopsError(`from: {service: "${v.serviceRef}"} ${SERVICE_REF_NOTE} (dsops does not resolve it either)`, {
        hint: `give the credential's own reference in from: (store://<store>/<key> or <store>:<key>) and keep service: "${v.serviceRef}" to tie it to its target`,
      });
    const ref = v.ref as SecretRef;
    const type = this.config.stores[ref.store]?.type;
    const p = this.config.raw.policies;
    if (type && p?.blocked_store_types?.includes(type)) throw new DsopsError(`store type ${type} is blocked by policies.blocked_store_types`);
    if (type && p?.allowed_store_types && !p.allowed_store_types.includes(type))
      throw new DsopsError(`store type ${type} is not in policies.allowed_store_types`);
    const got = await this.resolveRef(ref);
    return {
      name: v.name,
      value: applyTransforms(v.transforms, got.value),
      source: "store",
      store: ref.store,
      key: ref.key,
      versionId: got.versionId,
      ...(got.updatedAt ? { updatedAt: got.updatedAt } : {}),
    };
  }

  private enqueue(storeName: string, key: StoreKey): Promise<SecretVersion> {
    return new Promise<SecretVersion>((resolve, reject) => {
      let q = this.queues.get(storeName);
      if (!q) {
        q = [];
        this.queues.set(storeName, q);
        setImmediate(() => this.flush(storeName));
      }
      q.push({ key, resolve, reject });
    });
  }

  /** Timeout, retries and backoff of the calls to a store (its `timeout_ms` and `retries` settings). */
  private callPolicy(storeName: string): CallPolicy {
    const settings = this.config.stores[storeName];
    return {
      timeoutMs: settings?.timeout_ms ?? 30000,
      retries: settings?.retries ?? 3,
      baseBackoffMs: 200,
      maxBackoffMs: 5000,
      clock: this.clock,
      random: this.opts.random,
      onRetry: (n: number, ms: number, e: Error) => this.opts.onWarning?.(`store "${storeName}": retry ${n} in ${ms} ms after: ${e.message}`),
    };
  }

  private flush(storeName: string): void {
    const q = this.queues.get(storeName) ?? [];
    this.queues.delete(storeName);
    let store: Store;
    try {
      store = this.store(storeName);
    } catch (e) {
      for (const p of q) p.reject(e as Error);
      return;
    }
    const policy = this.callPolicy(storeName);
    const count = () => {
      this.stats.calls++;
      this.stats.byStore[storeName] = (this.stats.byStore[storeName] ?? 0) + 1;
    };
    const batchSize = store.getMany ? store.capabilities.batch : 0;
    if (batchSize > 1 && q.length > 1) {
      for (let i = 0; i < q.length; i += batchSize) {
        const chunk = q.slice(i, i + batchSize);
        void this.limiter
          .run(() =>
            callWithPolicy(`store "${storeName}"`, () => {
              count();
              return (store.getMany as NonNullable<Store["getMany"]>)(chunk.map((p) => p.key));
            }, policy),
          )
          .then(
            (results) => chunk.forEach((p, j) => (results[j] instanceof Error || results[j] === undefined ? p.reject((results[j] as Error) ?? new DsopsError("no result")) : p.resolve(results[j] as SecretVersion))),
            (e: Error) => chunk.forEach((p) => p.reject(e)),
          );
      }
      return;
    }
    for (const p of q) {
      void this.limiter
        .run(() =>
          callWithPolicy(`store "${storeName}"`, () => {
            count();
            return store.get(p.key);
          }, policy),
        )
        .then(p.resolve, p.reject);
    }
  }
}

/** The store calls `guardedStore` puts under the call policy; each may be repeated safely. */
const GUARDED_CALLS = ["get", "getMany", "describe", "put", "listCurrentVersions", "putPending", "promote", "discardPending", "stagesOf"] as const satisfies ReadonlyArray<keyof (Store & Staging)>;

/** `store` with `policy` around each of its GUARDED_CALLS; its other members pass through. */
function guarded(store: Store, storeName: string, policy: CallPolicy): Store {
  const out: Record<string, unknown> = { name: store.name, type: store.type, capabilities: store.capabilities };
  const raw = store as unknown as Record<string, unknown>;
  for (const m of ["check", "close"] as const) if (typeof store[m] === "function") out[m] = (store[m] as () => Promise<void>).bind(store);
  for (const m of GUARDED_CALLS) {
    const fn = raw[m];
    if (typeof fn !== "function") continue;
    out[m] = (...args: unknown[]) => {
      const first = args[0];
      const key = typeof first === "string" ? first : first && typeof first === "object" && "key" in first ? String((first as StoreKey).key) : undefined;
      return callWithPolicy(`store "${storeName}": ${m}${key !== undefined ? ` "${key}"` : ""}`, () => (fn as (...a: unknown[]) => Promise<unknown>).apply(store, args), policy);
    };
  }
  return out as unknown as Store;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(localeSort(Object.entries(o), ([k]) => k));
}

/** The `#field` of a version: one of the store's named fields, else a field of the value's JSON. */
function fieldOf(v: SecretVersion, field: string): Secret {
  const named = v.fields && Object.prototype.hasOwnProperty.call(v.fields, field) ? v.fields[field] : undefined;
  if (named !== undefined) return named;
  try {
    return new Secret(extractJsonField(v.value.reveal(), field));
  } catch (e) {
    if (!v.fields) throw e;
    // The entry's field names are not listed: they come from encrypted text.
    const n = Object.keys(v.fields).length;
    throw new TransformError(`field "${field}": the entry has no such field (${n} named field${n === 1 ? "" : "s"}) and its value is not a JSON document holding it`);
  }
}
