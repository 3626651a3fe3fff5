import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import type { Clock } from "../../core/clock";
import { ConfigError, DsopsError, NotFoundError } from "../../core/errors";
import { Secret } from "../../core/secret";
import type { Config } from "../../engine/config/load";
import type { VariableRotation } from "../settings";
import { parseStoreUri, type SecretRef } from "../../engine/refs";
import type { Resolver } from "../../engine/resolve";
import { hasStaging, type Staging, type Store } from "../../stores/types";
import { FileHistory, defaultHistoryPath } from "../history/file";
import type { HistoryBackend, HistoryFilter } from "../history/types";
import type { RolloutInstance, RolloutProgress } from "../rollout/plan";
import { createTarget } from "../targets/registry";
import type { Target } from "../targets/types";
import type { LockOwner, RotationRecord } from "../types";

/**
 * What a rotation is built from: the subject (secret, store, target, history) of a variable,
 * the targets built from `services:` (one per service, one per rollout instance), and the
 * history backend of each variable (injected, `rotation.history`, or a file beside the store).
 * Built once per engine; `close` releases what it built (never what was injected).
 */

/** The secret, its store, its target and its history: everything one rotation touches. */
export interface Subject {
  readonly env: string;
  readonly variable: string;
  /** `envs.<env>.<VAR>.rotation` (error messages). */
  readonly path: string;
  readonly policy: VariableRotation;
  readonly ref: SecretRef;
  /** `store://<store>/<key>`: the lock and history key. */
  readonly secret: string;
  readonly store: Store & Staging;
  readonly target: Target;
  readonly history: HistoryBackend;
  /** `dsops chaos` in a rollout: a fault laid over an instance's target for its apply and login in wave `wave` (from 1). */
  readonly chaosInstance?: (target: Target, wave: number, instance: string) => Target;
}

/** What every rotation record says of its subject: the secret, where it is used, and its target. */
export function recordSubject(subject: Subject) {
  return { secret: subject.secret, env: subject.env, variable: subject.variable, service: subject.target.name, targetType: subject.target.type };
}

export interface WiringOptions {
  /** Target instances by service name, instead of building them from `services:` (library users). */
  readonly targets?: Readonly<Record<string, Target>>;
  /** The history backend for every secret, instead of the configured/default one. */
  readonly history?: HistoryBackend;
}

export class Wiring {
  private readonly targets = new Map<string, Target>();
  private readonly histories = new Map<string, HistoryBackend>();

  constructor(
    private readonly config: Config,
    private readonly resolver: Resolver,
    private readonly clock: Clock,
    private readonly opts: WiringOptions,
  ) {}

  subject(env: string, variable: string): Subject {
    const vars = this.config.envs[env];
    if (!vars) throw new DsopsError(`unknown env "${env}"`, { hint: `envs: ${Object.keys(this.config.envs).join(", ") || "(none)"}` });
    const v = vars[variable];
    if (!v) throw new DsopsError(`env "${env}" has no variable "${variable}"`);
    const path = `envs.${env}.${variable}.rotation`;
    const policy = v.spec.rotation as VariableRotation | undefined;
    if (!policy) throw new DsopsError(`envs.${env}.${variable} has no rotation block`, { hint: "add rotation: {service: <name>, strategy: …}" });
    if (!v.ref || v.spec.literal !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: rotation needs a secret in a store (from: store://…)`);
    if (v.ref.field !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: rotation rotates a whole secret; remove "#${v.ref.field}"`);
    if (v.ref.version !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: a rotated secret cannot pin a version ("${v.ref.version}")`);
    // Transient store failures are retried (each staging call is idempotent); the engine's clock
    // is moved ahead in drills while a rotation waits, so each client's own timeout bounds a call.
    const store = this.resolver.guardedStore(v.ref.store, { timeout: false });
    if (!hasStaging(store))
      throw new DsopsError(`${path}: store "${v.ref.store}" (${store.type}) cannot stage rotations (pending/current/previous) yet`, { hint: "keep rotated secrets in a file store for now" });
    return {
      env,
      variable,
      path,
      policy,
      ref: v.ref,
      secret: `store://${v.ref.store}/${v.ref.key}`,
      store,
      target: this.targetFor(policy.service, `${path}.service`),
      history: this.historyFor(env, variable),
    };
  }

  private targetFor(service: string, path: string): Target {
    const injected = this.opts.targets?.[service];
    if (injected) return injected;
    let t = this.targets.get(service);
    if (!t) {
      const raw = this.config.raw.services[service];
      if (!raw) {
        const names = Object.keys(this.config.raw.services);
        throw new ConfigError(`${path}: unknown service "${service}"${names.length ? ` (services: ${names.join(", ")})` : " (no services are defined)"}`);
      }
      t = createTarget(service, raw, {
        resolveRef: async (ref) => {
          try {
            return (await this.resolver.resolveRef(parseStoreUri(ref))).value;
          } catch (e) {
            // The admin credential (or signing secret) named in services: is missing: say whose.
            if (e instanceof NotFoundError) throw new NotFoundError(`service "${service}": ${ref} does not exist: ${e.message}`, { hint: `check services.${service} in dsops.yaml, or store the credential there` });
            throw e;
          }
        },
        clock: this.clock,
        configDir: this.config.dir,
      });
      this.targets.set(service, t);
    }
    return t;
  }

  /** The target of one instance: the service's entry with the instance's settings laid over it. */
  instanceTarget(subject: Subject, p: RolloutProgress, name: string): Target {
    const inst: RolloutInstance | undefined = p.instances.find((i) => i.name === name);
    if (!inst) throw new DsopsError(`${subject.path}.rollout: no instance "${name}" (internal)`);
    const service = subject.policy.service;
    const raw = this.config.raw.services[service];
    if (!raw) throw new ConfigError(`${subject.path}.rollout: service "${service}" is not in services:`);
    const key = `${service}\u0000${inst.name}\u0000${JSON.stringify(inst.settings)}`;
    let t = this.targets.get(key);
    if (!t) {
      t = createTarget(`${service}[${inst.name}]`, { ...raw, ...inst.settings, type: raw.type }, {
        resolveRef: async (ref) => (await this.resolver.resolveRef(parseStoreUri(ref))).value,
        clock: this.clock,
        configDir: this.config.dir,
      });
      this.targets.set(key, t);
    }
    return t;
  }

  /** The history of a variable: the engine's injected one, the variable's `rotation.history`, or a file next to its file store. */
  historyFor(env: string, variable: string): HistoryBackend {
    if (this.opts.history) return this.opts.history;
    const v = this.config.envs[env]?.[variable];
    const h = (v?.spec.rotation as VariableRotation | undefined)?.history;
    if (h?.type === "postgres") {
      const cacheKey = `postgres:${h.service}:${h.table}`;
      let b = this.histories.get(cacheKey);
      if (!b) {
        b = this.postgresHistory(h.service, h.table);
        this.histories.set(cacheKey, b);
      }
      return b;
    }
    const path = h?.path ? (isAbsolute(h.path) ? h.path : resolvePath(this.config.dir, h.path)) : defaultHistoryPath(this.defaultHistoryDir(v?.ref?.store));
    let b = this.histories.get(`file:${path}`);
    if (!b) {
      b = new FileHistory(path, this.clock);
      this.histories.set(`file:${path}`, b);
    }
    return b;
  }

  /** The folder of the variable's file store, else of the first file store, else the config's folder. */
  private defaultHistoryDir(storeName?: string): string {
    const fileDir = (name: string) => {
      const s = this.config.stores[name];
      if (s?.type !== "file") return undefined;
      return dirname(isAbsolute(s.path) ? s.path : resolvePath(this.config.dir, s.path));
    };
    if (storeName) {
      const d = fileDir(storeName);
      if (d) return d;
    }
    for (const name of Object.keys(this.config.stores)) {
      const d = fileDir(name);
      if (d) return d;
    }
    return join(this.config.dir, ".dsops");
  }

  private postgresHistory(service: string, table: string): HistoryBackend {
    const raw = this.config.raw.services[service];
    if (!raw) throw new ConfigError(`rotation.history.service: unknown service "${service}"`);
    const { PostgresTarget } = require("../targets/postgresql") as typeof import("../targets/postgresql");
    const { PostgresHistory } = require("../history/postgres") as typeof import("../history/postgres");
    const t = new PostgresTarget(service, raw, { resolveRef: async () => new Secret(""), clock: this.clock, configDir: this.config.dir });
    const s = t.settings;
    // The admin credential is resolved lazily: the backend connects on first use.
    return new LazyHistory(async () => {
      let cred: { username?: unknown; password?: unknown };
      const admin = s.admin;
      if (typeof admin !== "string") {
        // {username, password: reference}: the password reference holds the password alone.
        const read = async (r: string) => (await this.resolver.resolveRef(parseStoreUri(r))).value.reveal();
        cred = { username: admin.username.startsWith("store://") ? await read(admin.username) : admin.username, password: await read(admin.password) };
      } else {
        const v = await this.resolver.resolveRef(parseStoreUri(admin));
        try {
          cred = JSON.parse(v.value.reveal()) as typeof cred;
        } catch {
          cred = {};
        }
      }
      if (typeof cred.username !== "string" || typeof cred.password !== "string")
        throw new DsopsError(`rotation history: the admin credential of service "${service}" is not JSON {"username", "password"}`);
      return new PostgresHistory(
        { host: s.host, port: s.port, database: s.database, user: cred.username, password: cred.password, connectionTimeoutMillis: s.connect_timeout_ms, application_name: "dsops-rotation-history" },
        table,
        [cred.password],
      );
    });
  }

  /** Close what was built here (injected targets and history stay open). */
  async close(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => (this.opts.targets?.[t.name] === t ? undefined : t.close?.().catch(() => undefined))));
    this.targets.clear();
    await Promise.all([...this.histories.values()].map((h) => (h === this.opts.history ? undefined : h.close().catch(() => undefined))));
    this.histories.clear();
  }
}

/** A history backend created on first use (its connection needs a resolved credential). */
class LazyHistory implements HistoryBackend {
  readonly kind = "postgres";
  private inner?: Promise<HistoryBackend>;
  constructor(private readonly make: () => Promise<HistoryBackend>) {}
  private backend(): Promise<HistoryBackend> {
    if (!this.inner) {
      this.inner = this.make();
      this.inner.catch(() => (this.inner = undefined));
    }
    return this.inner;
  }
  async save(r: RotationRecord): Promise<void> {
    return (await this.backend()).save(r);
  }
  async get(id: string): Promise<RotationRecord | undefined> {
    return (await this.backend()).get(id);
  }
  async list(f?: HistoryFilter): Promise<RotationRecord[]> {
    return (await this.backend()).list(f);
  }
  async lock(secret: string, owner: LockOwner) {
    return (await this.backend()).lock(secret, owner);
  }
  async holder(secret: string): Promise<LockOwner | undefined> {
    return (await this.backend()).holder(secret);
  }
  async close(): Promise<void> {
    const i = this.inner;
    this.inner = undefined;
    if (i) await (await i).close();
  }
}
