import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "akeyless" }>;

/** The part of the `akeyless` package (a generated OpenAPI client, untyped) this store uses. */
interface Model {
  constructFromObject(data: Record<string, unknown>): unknown;
}
interface AkeylessModule {
  ApiClient: new (basePath?: string) => { timeout: number };
  V2Api: new (client: unknown) => Record<"auth" | "getSecretValue" | "describeItem" | "createSecret" | "updateSecretVal" | "getDynamicSecretValue" | "getRotatedSecretValue", (body: unknown) => Promise<unknown>>;
  Auth: Model;
  GetSecretValue: Model;
  DescribeItem: Model;
  CreateSecret: Model;
  UpdateSecretVal: Model;
  GetDynamicSecretValue: Model;
  GetRotatedSecretValue: Model;
}
/** How the SDK rejects: a plain object, not an Error. */
interface SdkFailure {
  status?: number;
  body?: unknown;
  error?: { code?: string; timeout?: number; message?: string };
}

type Kind = "static" | "dynamic" | "rotated";
interface Location {
  readonly name: string;
  readonly version?: number;
  readonly kind: Kind;
}

const DEFAULT_GATEWAY = "https://api.akeyless.io";
const TRANSIENT = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * Akeyless, through the official `akeyless` SDK (its V2 API: /auth, /describe-item,
 * /get-secret-value, /create-secret, /update-secret-val, /get-dynamic-secret-value,
 * /get-rotated-secret-value). Keys are item paths (`/Prod/Database/password`, the leading `/`
 * added when missing), with a version as `name@2` or dsops's `name@v2`. `?type=dynamic` reads a
 * dynamic secret (new credentials at each read, as JSON text) and `?type=rotated` a rotated
 * secret's value (JSON text); their version id is derived from the value. A static read asks
 * describe-item for the last version, then that version's value, so value and version id always
 * match. Auth: an access id and access key (`/auth`, the token kept until a call is refused with
 * 401), or a token.
 */
export class AkeylessStore implements Store {
  readonly type = "akeyless" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: false, staging: false };
  private readonly gateway: string;
  private readonly sdk: AkeylessModule;
  private readonly api: ReturnType<AkeylessStore["makeApi"]>;
  private token?: Promise<string>;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    const gw = (settings.gateway_url ?? DEFAULT_GATEWAY).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+/i.test(gw)) throw new DsopsError(`store "${name}": gateway_url "${settings.gateway_url}" is not an http(s) URL`);
    this.gateway = gw;
    this.sdk = require("akeyless") as AkeylessModule;
    this.api = this.makeApi();
  }

  private makeApi() {
    const client = new this.sdk.ApiClient(this.gateway);
    client.timeout = this.settings.timeout_ms ?? 30000;
    return new this.sdk.V2Api(client);
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const loc = this.locate(k);
    if (loc.kind === "dynamic") {
      const out = await this.call(`read of dynamic secret "${loc.name}"`, (token) => this.api.getDynamicSecretValue(this.sdk.GetDynamicSecretValue.constructFromObject({ name: loc.name, token })));
      return this.derived(loc, out);
    }
    if (loc.kind === "rotated") {
      const out = await this.call(`read of rotated secret "${loc.name}"`, (token) =>
        this.api.getRotatedSecretValue(this.sdk.GetRotatedSecretValue.constructFromObject({ names: loc.name, token, ...(loc.version !== undefined ? { version: loc.version } : {}) })),
      );
      const v = out && typeof out === "object" && "value" in out ? (out as { value: unknown }).value : out;
      return this.derived(loc, v);
    }
    const version = loc.version ?? (await this.lastVersion(loc, "read"));
    const what = `read of secret "${loc.name}"${loc.version !== undefined ? ` version ${loc.version}` : ""}`;
    const out = await this.call(what, (token) => this.api.getSecretValue(this.sdk.GetSecretValue.constructFromObject({ names: [loc.name], token, version })));
    let value: unknown = out;
    if (out && typeof out === "object" && !Array.isArray(out)) value = (out as Record<string, unknown>)[loc.name];
    if (typeof value !== "string") throw new StoreError(`store "${this.name}": ${what}: the answer holds no value`);
    return { value: new Secret(value), versionId: String(version) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const loc = this.locate(k);
    if (loc.kind !== "static") return { versionId: (await this.get(k)).versionId };
    const item = await this.item(loc, "describe");
    if (loc.version !== undefined) {
      const v = item.item_versions?.find((x) => Number(x.version) === loc.version);
      if (!v) throw new NotFoundError(`store "${this.name}": secret "${loc.name}" has no version ${loc.version}`);
      return { versionId: String(loc.version), ...(v.creation_date ? { updatedAt: String(v.creation_date) } : {}) };
    }
    if (typeof item.last_version !== "number") throw new StoreError(`store "${this.name}": describe of secret "${loc.name}": the answer holds no version`);
    return { versionId: String(item.last_version), ...(item.modification_date ? { updatedAt: String(item.modification_date) } : {}) };
  }

  /** A new version of a static secret (update-secret-val), or the secret created (create-secret). */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const loc = this.locate({ key });
    if (loc.kind !== "static" || loc.version !== undefined) throw new DsopsError(`store "${this.name}": put writes a static secret without a version, got "${key}"`);
    const what = `write of secret "${loc.name}"`;
    try {
      await this.call(what, (token) => this.api.updateSecretVal(this.sdk.UpdateSecretVal.constructFromObject({ name: loc.name, value: value.reveal(), token })), value);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      await this.call(what, (token) => this.api.createSecret(this.sdk.CreateSecret.constructFromObject({ name: loc.name, value: value.reveal(), token })), value);
    }
    return { versionId: String(await this.lastVersion(loc, "write")) };
  }

  /** Authenticate (access id + key) or check the token by describing nothing: the auth call is the check. */
  async check(): Promise<void> {
    await this.tokenOf("check");
  }

  private derived(loc: Location, v: unknown): SecretVersion {
    if (v === undefined || v === null) throw new StoreError(`store "${this.name}": read of ${loc.kind} secret "${loc.name}": the answer holds no value`);
    const text = typeof v === "string" ? v : JSON.stringify(v);
    const versionId = contentVersion(text);
    return { value: new Secret(text), versionId };
  }

  private async item(loc: Location, op: string): Promise<{ last_version?: number; modification_date?: unknown; item_versions?: Array<{ version?: number; creation_date?: unknown }> }> {
    const out = await this.call(`${op} of secret "${loc.name}" (describe-item)`, (token) => this.api.describeItem(this.sdk.DescribeItem.constructFromObject({ name: loc.name, token, "show-versions": true })));
    if (!out || typeof out !== "object") throw new StoreError(`store "${this.name}": ${op} of secret "${loc.name}": describe-item answered no item`);
    return out as { last_version?: number };
  }

  private async lastVersion(loc: Location, op: string): Promise<number> {
    const item = await this.item(loc, op);
    if (typeof item.last_version !== "number") throw new StoreError(`store "${this.name}": ${op} of secret "${loc.name}": describe-item answered no last_version`);
    return item.last_version;
  }

  private locate(k: StoreKey): Location {
    let key = k.key;
    let version = k.version;
    const at = key.lastIndexOf("@");
    if (at > 0) {
      if (version === undefined) version = key.slice(at + 1);
      key = key.slice(0, at);
    }
    const name = key.startsWith("/") ? key : `/${key}`;
    if (name === "/" || name.includes("//")) throw new DsopsError(`store "${this.name}": "${k.key}" is not an Akeyless item path (/Folder/name, name@2)`);
    const kind = (k.options?.type ?? "static") as Kind;
    if (!["static", "dynamic", "rotated"].includes(kind)) throw new DsopsError(`store "${this.name}": ?type=${kind} is not static, dynamic or rotated`);
    let v: number | undefined;
    if (version !== undefined && !/^(current|latest)$/i.test(version)) {
      const m = /^v?(\d+)$/i.exec(version);
      if (!m) throw new NotFoundError(`store "${this.name}": secret "${name}" has no version "${version}" (Akeyless versions are numbers: name@2)`);
      v = Number(m[1]);
    }
    return { name, kind, ...(v !== undefined ? { version: v } : {}) };
  }

  private credentials(): { token?: string; accessId?: string; accessKey?: string } {
    const a = this.settings.auth;
    if (a.method === "token") return { token: a.token ?? this.ctx.env.AKEYLESS_TOKEN ?? "" };
    return { accessId: this.settings.access_id ?? this.ctx.env.AKEYLESS_ACCESS_ID ?? "", accessKey: a.access_key ?? this.ctx.env.AKEYLESS_ACCESS_KEY ?? "" };
  }

  /** The token: as given, or from /auth with the access id and key (one login at a time). */
  private tokenOf(what: string): Promise<string> {
    if (!this.token) {
      const t = this.login(what);
      t.catch(() => {
        if (this.token === t) this.token = undefined;
      });
      this.token = t;
    }
    return this.token;
  }

  private async login(what: string): Promise<string> {
    const c = this.credentials();
    if (c.token !== undefined) {
      if (!c.token) throw new AuthError(`store "${this.name}": ${what}: no token: set auth.token or AKEYLESS_TOKEN`);
      return c.token;
    }
    if (!c.accessId || !c.accessKey) {
      throw new AuthError(`store "${this.name}": ${what}: api_key auth needs access_id and auth.access_key (or AKEYLESS_ACCESS_ID and AKEYLESS_ACCESS_KEY)`, {
        hint: "create an API Key auth method in Akeyless, or use auth.method: token",
      });
    }
    const out = await this.raw(`${what}: authentication (/auth)`, () => this.api.auth(this.sdk.Auth.constructFromObject({ "access-id": c.accessId, "access-key": c.accessKey, "access-type": "access_key" })), []);
    const token = (out as { token?: unknown } | null)?.token;
    if (typeof token !== "string" || !token) throw new StoreError(`store "${this.name}": ${what}: /auth answered no token`);
    return token;
  }

  /** `fn` with a token; a 401 with a token from /auth logs in again once. */
  private async call(what: string, fn: (token: string) => Promise<unknown>, value?: Secret): Promise<unknown> {
    const hide = value ? [value.reveal()] : [];
    const token = await this.tokenOf(what);
    try {
      return await this.raw(what, () => fn(token), hide);
    } catch (e) {
      if (!(e instanceof AuthError) || !/HTTP 401/.test(e.message) || this.credentials().token !== undefined) throw e;
      this.token = undefined;
      const again = await this.tokenOf(what);
      return this.raw(what, () => fn(again), hide);
    }
  }

  /** One SDK call, its failure mapped (never with a token, key or value; never the answer's body when it is not JSON). */
  private async raw(what: string, fn: () => Promise<unknown>, hide: string[]): Promise<unknown> {
    const prefix = `store "${this.name}": ${what}`;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DsopsError) throw e;
      const f = (e ?? {}) as SdkFailure;
      const c = this.credentials();
      const secrets = [...hide, c.token ?? "", c.accessKey ?? ""].filter((s) => s.length > 0);
      const status = typeof f.status === "number" ? f.status : undefined;
      if (status === undefined) {
        const code = f.error?.code;
        if (f.error?.timeout !== undefined || code === "ECONNABORTED") throw new TimeoutError(`${prefix}: no answer from ${this.gateway} within ${this.settings.timeout_ms ?? 30000} ms (timeout_ms)`);
        if (code) throw new StoreError(`${prefix}: cannot reach ${this.gateway}: ${code}`, TRANSIENT.has(code));
        // The SDK's own failures (a JSON parse of a 2xx answer that is not JSON …): no detail, it may hold the answer.
        throw new StoreError(`${prefix}: the answer could not be read (not JSON?)`);
      }
      const body = f.body as { error?: unknown; message?: unknown } | string | undefined;
      const text = typeof body === "string" ? "" : typeof body?.error === "string" ? body.error : typeof body?.message === "string" ? body.message : "";
      const said = text ? `: ${scrub(text, secrets).slice(0, 300)}` : "";
      if (status === 401) throw new AuthError(`${prefix}: refused (HTTP 401)${said}`, { hint: "check access_id and auth.access_key (or the token)" });
      if (status === 403) throw new AuthError(`${prefix}: not allowed (HTTP 403)${said}`, { hint: "the access role must allow this item" });
      if (status === 404) throw new NotFoundError(`${prefix}: not found (HTTP 404)${said}`);
      if (status === 429) throw new StoreError(`${prefix}: throttled (HTTP 429)${said}`, true);
      if (status >= 200 && status < 300) throw new StoreError(`${prefix}: the answer (HTTP ${status}) could not be read`);
      throw new StoreError(`${prefix}: HTTP ${status}${said}`, status >= 500 || status === 408);
    }
  }
}
