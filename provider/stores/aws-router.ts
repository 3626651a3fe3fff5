import { ConfigError, DsopsError } from "../core/errors";
import type { Secret } from "../core/secret";
import { AwsSecretsManagerStore } from "./aws-secretsmanager";
import { AwsSsmStore } from "./aws-ssm";
import { CachedCredentials, assumeRoleFetch, assumeRoleInput, awsStoreClientConfig, type AwsClientSetup } from "./aws-credentials";
import { CredentialsStore, readOnlyCredentials } from "./aws-sts";
import { ssoCacheFile, ssoFetch, ssoTarget } from "./aws-sso";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type RouterSettings = Extract<StoreSettings, { type: "aws" }>;

/** The services the router reaches. */
export type AwsService = "sm" | "ssm" | "sts" | "sso";

/** Plain keys that name a credential component (dsops's aws-unified sends them to STS or SSO). */
const CREDENTIAL_KEYS = new Set(["access_key_id", "secret_access_key", "session_token", "expiration", "credentials", "assumed_role_arn"]);

const PREFIXES: Readonly<Record<string, AwsService>> = { sm: "sm", secretsmanager: "sm", ssm: "ssm", sts: "sts", sso: "sso" };

/**
 * The service and the service's own key of a router key, as dsops's aws-unified reads them:
 * an explicit prefix (`sm:`, `secretsmanager:`, `ssm:`, `sts:`, `sso:`); else a Secrets
 * Manager or SSM ARN; else a key starting with "/" is an SSM parameter; else a credential
 * component (`access_key_id`, `credentials` …) goes to the store's `sts:` section, else to its
 * `sso:` section, when it has one (`credentialsService`); else the `default_service`.
 */
export function routeAwsKey(key: string, defaultService: AwsService, credentialsService?: "sts" | "sso"): { service: AwsService; key: string } {
  const m = /^([a-z]+):(.*)$/s.exec(key);
  if (m && PREFIXES[m[1]] !== undefined && !key.startsWith("arn:")) return { service: PREFIXES[m[1]], key: m[2] };
  if (/^arn:aws[a-z-]*:secretsmanager:/.test(key)) return { service: "sm", key };
  if (/^arn:aws[a-z-]*:ssm:/.test(key)) return { service: "ssm", key };
  if (key.startsWith("/")) return { service: "ssm", key };
  if (credentialsService !== undefined && CREDENTIAL_KEYS.has(key)) return { service: credentialsService, key };
  return { service: defaultService, key };
}

/** A store whose credentials come from STS or SSO, built on first use. */
class TempCredentialsStore extends CredentialsStore {
  readonly type = "aws" as const;
  constructor(
    name: string,
    cache: CachedCredentials,
    private readonly closeFn: () => void,
  ) {
    super(name, cache);
  }
  async check(): Promise<void> {
    await this.cache.get();
  }
  async close(): Promise<void> {
    this.closeFn();
  }
}

/**
 * dsops's unified `aws` store: one store name, the service chosen by the key (see
 * `routeAwsKey`). Secrets Manager and SSM share one client configuration (one set of
 * credentials, with `assume_role` applied once); `sts:` keys assume the role of the `sts:`
 * section with the same credentials; `sso:` keys read the role credentials of the `sso:`
 * section. Writes and rotation staging go to Secrets Manager or SSM; `sts:` and `sso:` keys
 * are read-only.
 */
export class AwsRouterStore implements Store, Staging {
  readonly type = "aws" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 20, binary: true, staging: true };
  private readonly shared: AwsClientSetup;
  private readonly defaultService: AwsService;
  private readonly subs = new Map<AwsService, Store & Partial<Staging>>();

  constructor(
    readonly name: string,
    private readonly settings: RouterSettings,
    private readonly ctx: StoreContext,
  ) {
    this.shared = awsStoreClientConfig(name, settings, ctx.env, ctx.clock);
    this.defaultService = settings.default_service === "secretsmanager" ? "sm" : settings.default_service;
  }

  /** The store of a service, created on first use. */
  private sub(service: AwsService): Store & Partial<Staging> {
    let s = this.subs.get(service);
    if (s) return s;
    const st = this.settings;
    const common = { timeout_ms: st.timeout_ms, region: st.region, endpoint: st.endpoint };
    const shared: AwsClientSetup = { config: this.shared.config, close: () => undefined, onRefused: this.shared.onRefused };
    switch (service) {
      case "sm": {
        const t = st.secretsmanager?.timeout_ms;
        const config = t === undefined ? shared.config : { ...shared.config, requestHandler: { connectionTimeout: t, requestTimeout: t, throwOnRequestTimeout: true as const } };
        s = new AwsSecretsManagerStore(this.name, { type: "aws.secretsmanager", ...common }, this.ctx, { ...shared, config });
        break;
      }
      case "ssm":
        s = new AwsSsmStore(this.name, { type: "aws.ssm", ...common, with_decryption: st.ssm?.with_decryption ?? true, parameter_prefix: st.ssm?.parameter_prefix }, this.ctx, shared);
        break;
      case "sts": {
        if (!st.sts) throw new ConfigError(`store "${this.name}": sts: keys need an sts: section with assume_role (the ARN of the role to assume)`);
        // The router's credentials (with its own assume_role, when set) call AssumeRole.
        const input = assumeRoleInput(this.name, st.sts, this.ctx.clock);
        const { fetch, close } = assumeRoleFetch(this.name, this.shared.config, input);
        s = new TempCredentialsStore(this.name, new CachedCredentials(fetch, this.ctx.clock), close);
        break;
      }
      case "sso": {
        if (!st.sso) throw new ConfigError(`store "${this.name}": sso: keys need an sso: section (sso_start_url, sso_region, account_id, role_name, or a profile)`);
        const t = ssoTarget(this.name, st.sso, this.ctx.env, st.region);
        const { fetch, close } = ssoFetch(this.name, t, ssoCacheFile(t, st.sso.cache_path, this.ctx.configDir, this.ctx.env), {
          endpoint: st.sso.endpoint,
          timeoutMs: st.timeout_ms,
          clock: this.ctx.clock,
        });
        s = new TempCredentialsStore(this.name, new CachedCredentials(fetch, this.ctx.clock), close);
        break;
      }
    }
    this.subs.set(service, s);
    return s;
  }

  /** Where a plain credential key goes: the sts: section, else the sso: section, when there is one. */
  private credentialsService(): "sts" | "sso" | undefined {
    return this.settings.sts ? "sts" : this.settings.sso ? "sso" : undefined;
  }

  private route(k: StoreKey): { store: Store & Partial<Staging>; key: StoreKey; service: AwsService } {
    const r = routeAwsKey(k.key, this.defaultService, this.credentialsService());
    if (r.key === "") throw new DsopsError(`store "${this.name}": key "${k.key}" names no ${r.service} key after the prefix`, { hint: `e.g. ${this.name}:sm:prod/db or ${this.name}:ssm:/app/param` });
    // dsops's secretsmanager.version_stage: the stage a Secrets Manager read without a version asks for.
    const stage = r.service === "sm" && k.version === undefined && k.options === undefined ? this.settings.secretsmanager?.version_stage : undefined;
    return { store: this.sub(r.service), key: { ...k, key: r.key, ...(stage ? { options: { version_stage: stage } } : {}) }, service: r.service };
  }

  /**
   * The service's error, naming the router's key (`sm:prod/db`) when the service was given
   * another one (`prod/db`): the engine and the user know the key by what they wrote.
   */
  private named(e: unknown, key: string, serviceKey: string): unknown {
    if (!(e instanceof Error) || key === serviceKey || e.message.includes(key)) return e;
    const prefix = `store "${this.name}": `;
    e.message = e.message.startsWith(prefix) ? `store "${this.name}", key "${key}": ${e.message.slice(prefix.length)}` : `${e.message} (key "${key}")`;
    return e;
  }

  private async via<T>(key: string, serviceKey: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.named(e, key, serviceKey);
    }
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const r = this.route(k);
    return this.via(k.key, r.key.key, () => r.store.get(r.key));
  }

  /** Keys grouped by service, each group read with its service's batch call. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const groups = new Map<Store, { idx: number[]; keys: StoreKey[] }>();
    keys.forEach((k, i) => {
      try {
        const r = this.route(k);
        const g = groups.get(r.store) ?? { idx: [], keys: [] };
        g.idx.push(i);
        g.keys.push(r.key);
        groups.set(r.store, g);
      } catch (e) {
        out[i] = e as Error;
      }
    });
    await Promise.all(
      [...groups].map(async ([store, g]) => {
        const got = store.getMany ? await store.getMany(g.keys) : await Promise.all(g.keys.map((k) => store.get(k).catch((e: unknown) => e as Error)));
        g.idx.forEach((i, j) => {
          const r = got[j];
          out[i] = r instanceof Error ? (this.named(r, keys[i].key, g.keys[j].key) as Error) : r;
        });
      }),
    );
    return out;
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const r = this.route(k);
    return this.via(k.key, r.key.key, () => r.store.describe(r.key));
  }

  /** The service of `key` that can take writes, or the reason it cannot. */
  private writable(key: string): { store: Store & Partial<Staging>; key: string; via: <T>(fn: () => Promise<T>) => Promise<T> } {
    const service = routeAwsKey(key, this.defaultService, this.credentialsService()).service;
    if (service === "sts" || service === "sso") throw readOnlyCredentials(this.name, `aws, ${service}: keys`);
    const r = this.route({ key });
    return { store: r.store, key: r.key.key, via: (fn) => this.via(key, r.key.key, fn) };
  }

  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const w = this.writable(key);
    return w.via(() => w.store.put!(w.key, value, options));
  }

  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const w = this.writable(key);
    return w.via(() => w.store.putPending!(w.key, value, options));
  }

  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const w = this.writable(key);
    return w.via(() => w.store.promote!(w.key, versionId));
  }

  async discardPending(key: string, versionId?: string): Promise<void> {
    const w = this.writable(key);
    return w.via(() => w.store.discardPending!(w.key, versionId));
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const w = this.writable(key);
    return w.via(() => w.store.stagesOf!(w.key));
  }

  /** `doctor`: the default service answers with the store's credentials; the sts: and sso: sections give credentials. */
  async check(): Promise<void> {
    await this.sub(this.defaultService).check?.();
    if (this.settings.sts && this.defaultService !== "sts") await this.sub("sts").check?.();
    if (this.settings.sso && this.defaultService !== "sso") await this.sub("sso").check?.();
  }

  async close(): Promise<void> {
    for (const s of this.subs.values()) await s.close?.();
    this.subs.clear();
    this.shared.close();
  }
}
