import { InfisicalSDK } from "@infisical/sdk";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "infisical" }>;
type SdkSecret = { secretKey?: string; secretValue?: string; version?: number; updatedAt?: string; type?: string; secretValueHidden?: boolean };

/** Where a key lives: a folder (`/`, `/payments/stripe`), a name, a version when asked for. */
interface Location {
  readonly path: string;
  readonly name: string;
  readonly version?: number;
  /** How messages name it: the key as written. */
  readonly display: string;
}

const DEFAULT_SITE = "https://app.infisical.com";

/**
 * Infisical, through the official `@infisical/sdk` (its v3 raw-secrets API). Keys: `NAME`,
 * `folder/NAME`, `folder/sub/NAME` (relative to the store's `path`), with a version as
 * `NAME@3`, `NAME@v3` or the reference's `?version=3`. Values are read with secret references
 * expanded. Several keys of one folder are read with one list call. `put` updates the secret
 * (a new version) or creates it. The SDK retries throttling (429) and network failures itself
 * (up to 4 times, with waits of about 1, 2, 4 and 8 s); each store call is abandoned after
 * `timeout_ms`.
 */
export class InfisicalStore implements Store {
  readonly type = "infisical" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 100, binary: false, staging: false };
  private readonly site: string;
  private readonly timeoutMs: number;
  private client?: InfisicalSDK;
  private login?: Promise<InfisicalSDK>;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    const site = (settings.site_url ?? DEFAULT_SITE).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+/i.test(site)) throw new DsopsError(`store "${name}": site_url "${settings.site_url}" is not an http(s) URL`);
    this.site = site;
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const loc = this.locate(k);
    const s = await this.call(`read of ${this.what(loc)}`, async (sdk) =>
      sdk.secrets().getSecret({
        projectId: this.settings.project_id,
        environment: this.settings.environment,
        secretPath: loc.path,
        secretName: loc.name,
        expandSecretReferences: true,
        viewSecretValue: true,
        ...(loc.version !== undefined ? { version: loc.version } : {}),
      }),
    );
    // A missing secret is a 404; an answer without a secret is a malformed one.
    if (!s || typeof s !== "object") throw new StoreError(`store "${this.name}": read of ${this.what(loc)}: the answer holds no secret`);
    return this.toVersion(loc, s as SdkSecret);
  }

  /** Keys without a version grouped by folder: one list call per folder; keys with a version read one by one. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const folders = new Map<string, Array<{ i: number; loc: Location }>>();
    const single: number[] = [];
    keys.forEach((k, i) => {
      try {
        const loc = this.locate(k);
        if (loc.version !== undefined) return void single.push(i);
        const list = folders.get(loc.path) ?? [];
        list.push({ i, loc });
        folders.set(loc.path, list);
      } catch (e) {
        out[i] = e as Error;
      }
    });
    await Promise.all([
      ...single.map(async (i) => {
        out[i] = await this.get(keys[i]).catch((e: Error) => e);
      }),
      ...[...folders.entries()].map(async ([path, slots]) => {
        let secrets: SdkSecret[];
        try {
          const res = await this.call(`listing of folder "${path}" (${slots.map((s) => s.loc.display).join(", ")})`, async (sdk) =>
            sdk.secrets().listSecrets({
              projectId: this.settings.project_id,
              environment: this.settings.environment,
              secretPath: path,
              expandSecretReferences: true,
              viewSecretValue: true,
            }),
          );
          const list = (res as { secrets?: unknown } | undefined)?.secrets;
          if (!Array.isArray(list)) throw new StoreError(`store "${this.name}": listing of folder "${path}": the answer holds no list of secrets`);
          secrets = list as SdkSecret[];
        } catch (e) {
          for (const s of slots) out[s.i] = e as Error;
          return;
        }
        for (const s of slots) {
          const found = secrets.filter((x) => x.secretKey === s.loc.name);
          const hit = found.find((x) => x.type !== "personal") ?? found[0];
          try {
            out[s.i] = this.toVersion(s.loc, hit);
          } catch (e) {
            out[s.i] = e as Error;
          }
        }
      }),
    ]);
    return out;
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const loc = this.locate(k);
    const s = (await this.call(`describe of ${this.what(loc)}`, async (sdk) =>
      sdk.secrets().getSecret({
        projectId: this.settings.project_id,
        environment: this.settings.environment,
        secretPath: loc.path,
        secretName: loc.name,
        viewSecretValue: false,
        ...(loc.version !== undefined ? { version: loc.version } : {}),
      }),
    )) as SdkSecret | undefined;
    if (!s || typeof s !== "object" || typeof s.version !== "number") throw new StoreError(`store "${this.name}": describe of ${this.what(loc)}: the answer holds no version`);
    return { versionId: String(s.version), ...(s.updatedAt ? { updatedAt: s.updatedAt } : {}) };
  }

  /** Update the secret (a new version), or create it when it does not exist. */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const loc = this.locate({ key });
    if (loc.version !== undefined) throw new DsopsError(`store "${this.name}": put takes a secret without a version, got "${key}"`);
    const base = { projectId: this.settings.project_id, environment: this.settings.environment, secretPath: loc.path, secretValue: value.reveal() };
    const what = `write of ${this.what(loc)}`;
    let res: unknown;
    try {
      res = await this.call(what, async (sdk) => sdk.secrets().updateSecret(loc.name, base), value);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      res = await this.call(what, async (sdk) => sdk.secrets().createSecret(loc.name, base), value);
    }
    const s = (res as { secret?: SdkSecret } | undefined)?.secret;
    if (!s || typeof s.version !== "number") throw new StoreError(`store "${this.name}": ${what}: the answer holds no version`);
    return { versionId: String(s.version), ...(s.updatedAt ? { updatedAt: s.updatedAt } : {}) };
  }

  /** Log in and list the store's folder (names and values stay in memory, nothing is printed). */
  async check(): Promise<void> {
    await this.call(`listing of folder "${this.settings.path}"`, async (sdk) =>
      sdk.secrets().listSecrets({ projectId: this.settings.project_id, environment: this.settings.environment, secretPath: this.settings.path, viewSecretValue: false }),
    );
  }

  private toVersion(loc: Location, s: SdkSecret | undefined): SecretVersion {
    if (!s) throw new NotFoundError(`store "${this.name}": ${this.what(loc)} not found`);
    if (typeof s.secretValue !== "string" || typeof s.version !== "number") {
      throw new StoreError(`store "${this.name}": read of ${this.what(loc)}: the answer holds no value or no version`);
    }
    if (s.secretValueHidden) throw new AuthError(`store "${this.name}": ${this.what(loc)}: the identity may see the secret but not its value`);
    return { value: new Secret(s.secretValue), versionId: String(s.version), ...(s.updatedAt ? { updatedAt: s.updatedAt } : {}) };
  }

  private what(loc: Location): string {
    return `secret "${loc.display}" (environment "${this.settings.environment}", folder "${loc.path}")`;
  }

  private locate(k: StoreKey): Location {
    let key = k.key;
    let version: string | undefined = k.version;
    const at = key.lastIndexOf("@");
    if (at > 0) {
      if (version === undefined) version = key.slice(at + 1);
      key = key.slice(0, at);
    }
    const parts = key.split("/").filter((p, i) => !(i === 0 && p === ""));
    const name = parts.pop() ?? "";
    if (!name || parts.some((p) => p === "" || p === "." || p === "..")) {
      throw new DsopsError(`store "${this.name}": "${k.key}" is not an Infisical secret (NAME, folder/NAME, NAME@3)`);
    }
    const root = this.settings.path.replace(/\/+$/, "");
    const path = `${root}/${parts.join("/")}`.replace(/\/+$/, "") || "/";
    let v: number | undefined;
    if (version !== undefined && !/^(current|latest)$/i.test(version)) {
      const m = /^v?(\d+)$/i.exec(version);
      if (!m) throw new NotFoundError(`store "${this.name}": secret "${key}" has no version "${version}" (Infisical versions are numbers: NAME@3)`);
      v = Number(m[1]);
    }
    return { path: path.startsWith("/") ? path : `/${path}`, name, ...(v !== undefined ? { version: v } : {}), display: key };
  }

  /** The logged-in SDK: an access token as given, or a universal-auth login (one at a time), kept until a call is refused with 401. */
  private async sdk(): Promise<InfisicalSDK> {
    if (this.client) return this.client;
    if (!this.login) {
      this.login = this.logIn().finally(() => (this.login = undefined));
    }
    return this.login;
  }

  private credentials(): { token?: string; clientId?: string; clientSecret?: string } {
    const a = this.settings.auth;
    if (a.method === "access_token" || a.method === "service_token") return { token: a.token ?? this.ctx.env.INFISICAL_TOKEN ?? "" };
    return { clientId: a.client_id ?? this.ctx.env.INFISICAL_UNIVERSAL_AUTH_CLIENT_ID ?? "", clientSecret: a.client_secret ?? this.ctx.env.INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET ?? "" };
  }

  private async logIn(): Promise<InfisicalSDK> {
    const c = this.credentials();
    const sdk = new InfisicalSDK({ siteUrl: this.site });
    if (c.token !== undefined) {
      if (!c.token) throw new AuthError(`store "${this.name}": no access token: set auth.token or INFISICAL_TOKEN`, { hint: "or use auth.method: universal_auth with a machine identity's client_id and client_secret" });
      sdk.auth().accessToken(c.token);
      this.client = sdk;
      return sdk;
    }
    if (!c.clientId || !c.clientSecret) {
      throw new AuthError(`store "${this.name}": universal auth needs auth.client_id and auth.client_secret (or INFISICAL_UNIVERSAL_AUTH_CLIENT_ID and _SECRET)`, {
        hint: "create a machine identity with Universal Auth in Infisical and give it access to the project",
      });
    }
    const logged = await this.raw("login (universal auth)", () => sdk.auth().universalAuth.login({ clientId: c.clientId as string, clientSecret: c.clientSecret as string }), [c.clientSecret]);
    // The SDK keeps the access token but not its lifetime: the store logs in again when a call is refused with 401.
    this.client = logged;
    return logged;
  }

  /** `fn` with the logged-in SDK; a 401 logs in again once (an expired token). Errors mapped. */
  private async call<T>(what: string, fn: (sdk: InfisicalSDK) => Promise<T>, value?: Secret): Promise<T> {
    const sdk = await this.sdk().catch((e: unknown) => {
      throw this.during(e, what);
    });
    try {
      return await this.raw(what, () => fn(sdk), value ? [value.reveal()] : []);
    } catch (e) {
      if (!(e instanceof AuthError) || !/HTTP 401/.test(e.message) || this.credentials().token !== undefined) throw e;
      this.client = undefined;
      const again = await this.sdk().catch((e2: unknown) => {
        throw this.during(e2, what);
      });
      return this.raw(what, () => fn(again), value ? [value.reveal()] : []);
    }
  }

  /** A login failure, told as the failure of the call that needed it (`store "x": read of secret "K" …: login …`). */
  private during(e: unknown, what: string): unknown {
    if (!(e instanceof DsopsError)) return e;
    const head = `store "${this.name}": `;
    const msg = e.message.startsWith(head) ? `${head}${what}: ${e.message.slice(head.length)}` : e.message;
    const hint = e.hint !== undefined ? { hint: e.hint } : undefined;
    if (e instanceof AuthError) return new AuthError(msg, hint);
    if (e instanceof TimeoutError) return new TimeoutError(msg);
    if (e instanceof NotFoundError) return new NotFoundError(msg, hint);
    if (e instanceof StoreError) return new StoreError(msg, e.retryable, hint);
    return new DsopsError(msg, hint);
  }

  /** One SDK call, abandoned after timeout_ms, its error mapped to ours (no credential or value in it). */
  private async raw<T>(what: string, fn: () => Promise<T>, hide: string[]): Promise<T> {
    const prefix = `store "${this.name}": ${what}`;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`${prefix}: no answer from ${this.site} within ${this.timeoutMs} ms (timeout_ms)`)), this.timeoutMs);
      timer.unref();
    });
    const call = fn();
    call.catch(() => undefined);
    try {
      return await Promise.race([call, timeout]);
    } catch (e) {
      if (e instanceof DsopsError) throw e;
      throw this.mapError(e, prefix, hide);
    } finally {
      clearTimeout(timer);
    }
  }

  private mapError(e: unknown, prefix: string, hide: string[]): Error {
    const c = this.credentials();
    const secrets = [...hide, c.token ?? "", c.clientSecret ?? ""].filter((s) => s.length > 0);
    const raw = e instanceof Error ? e.message : String(e);
    // InfisicalSDKRequestError: "[URL=…] [Method=…] [StatusCode=404] <server message>"; InfisicalSDKError: "Request failed with status 500" or a network message.
    const m = /\[StatusCode=(\d+)\]\s*([\s\S]*)$/.exec(raw) ?? /Request failed with status (\d+)()/.exec(raw);
    if (!m) {
      const cause = (e as { cause?: { code?: string } } | null)?.cause?.code;
      const detail = scrub(cause ?? raw, secrets).slice(0, 200);
      return new StoreError(`${prefix}: cannot reach ${this.site}: ${detail}`, true);
    }
    const status = Number(m[1]);
    const said = m[2] ? `: ${scrub(m[2], secrets).slice(0, 300)}` : "";
    if (status === 401) return new AuthError(`${prefix}: credentials refused (HTTP 401)${said}`, { hint: "check the machine identity's client_id/client_secret (or the access token)" });
    if (status === 403) return new AuthError(`${prefix}: not allowed (HTTP 403)${said}`, { hint: "give the identity access to the project, environment and folder" });
    if (status === 404) return new NotFoundError(`${prefix}: not found (HTTP 404)${said}`);
    if (status === 429) return new StoreError(`${prefix}: throttled (HTTP 429, after the SDK's own retries)${said}`, true);
    return new StoreError(`${prefix}: HTTP ${status}${said}`, status >= 500 || status === 408);
  }
}
