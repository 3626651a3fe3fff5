import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "doppler" }>;

/** Where a key lives: a project, a config and a secret name (project/config empty: the service token's own). */
interface Location {
  readonly project: string;
  readonly config: string;
  readonly name: string;
}

/** Network failures worth retrying. */
const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);
const DEFAULT_API = "https://api.doppler.com";
/** Names one download asks for (they go in the URL's `secrets` parameter). */
const BATCH = 100;

/**
 * Doppler, through its REST API (v3) with the platform's `fetch`. Not through
 * `@dopplerhq/node-sdk` 1.3.0: that SDK parses every answer with JSON.parse inside the
 * response's `end` listener, so an answer that is not JSON (a proxy's error page) throws an
 * uncaught exception and ends the whole process; it prints network errors to stdout with
 * console.log (breaking `--json` output); and it has no timeout or abort.
 *
 * Keys: `NAME` (in the store's `project` and `config`), `config/NAME` (another config of the
 * project) or `project/config/NAME`; the reference options `?project=` and `?config=` do the
 * same. A service token (`dp.st.…`) carries its project and config, so they may be left out.
 * Values are the computed ones (Doppler's `${OTHER}` references resolved). Doppler keeps no
 * readable versions per secret: the version id is derived from the value, and a reference to
 * another version is not found. Several keys of one config are read in one download.
 */
export class DopplerStore implements Store {
  readonly type = "doppler" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: BATCH, binary: false, staging: false };
  private readonly api: string;
  private readonly timeoutMs: number;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    const api = (settings.api_url ?? DEFAULT_API).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+/i.test(api)) throw new DsopsError(`store "${name}": api_url "${settings.api_url}" is not an http(s) URL`);
    this.api = api;
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const loc = this.locate(k);
    const body = await this.call("GET", "/v3/configs/config/secret", { project: loc.project, config: loc.config, name: loc.name }, undefined, `read of ${this.what(loc)}`);
    const v = (body as { value?: { raw?: unknown; computed?: unknown } | null }).value;
    const text = typeof v?.computed === "string" ? v.computed : typeof v?.raw === "string" ? v.raw : undefined;
    if (text === undefined) throw new StoreError(`store "${this.name}": read of ${this.what(loc)}: the answer holds no value`);
    return this.version(k, loc, text);
  }

  /** Keys grouped by project and config; one download (`secrets/download`, JSON) per group. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const groups = new Map<string, { project: string; config: string; slots: Array<{ i: number; loc: Location }> }>();
    keys.forEach((k, i) => {
      let loc: Location;
      try {
        loc = this.locate(k);
      } catch (e) {
        out[i] = e as Error;
        return;
      }
      const id = `${loc.project}\0${loc.config}`;
      let g = groups.get(id);
      if (!g) groups.set(id, (g = { project: loc.project, config: loc.config, slots: [] }));
      g.slots.push({ i, loc });
    });
    await Promise.all(
      [...groups.values()].map(async (g) => {
        const names = [...new Set(g.slots.map((s) => s.loc.name))];
        let all: Record<string, unknown>;
        try {
          const where = g.project || g.config ? `config "${g.project}/${g.config}"` : "the service token's config";
          const what = `download of ${names.length} secret${names.length === 1 ? "" : "s"} (${names.join(", ")}) of ${where}`;
          all = (await this.call("GET", "/v3/configs/config/secrets/download", { project: g.project, config: g.config, format: "json", secrets: names.join(",") }, undefined, what)) as Record<string, unknown>;
        } catch (e) {
          for (const s of g.slots) out[s.i] = e as Error;
          return;
        }
        for (const s of g.slots) {
          const v = Object.prototype.hasOwnProperty.call(all, s.loc.name) ? all[s.loc.name] : undefined;
          if (typeof v !== "string") {
            out[s.i] = new NotFoundError(`store "${this.name}": ${this.what(s.loc)} not found`);
            continue;
          }
          try {
            out[s.i] = this.version(keys[s.i], s.loc, v);
          } catch (e) {
            out[s.i] = e as Error;
          }
        }
      }),
    );
    return out;
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }

  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const loc = this.locate({ key });
    await this.call(
      "POST",
      "/v3/configs/config/secrets",
      {},
      { ...(loc.project ? { project: loc.project } : {}), ...(loc.config ? { config: loc.config } : {}), secrets: { [loc.name]: value.reveal() } },
      `write of ${this.what(loc)}`,
      value,
    );
    return { versionId: contentVersion(value.reveal()) };
  }

  /** The token is accepted and the store's config can be listed (names only, no values). */
  async check(): Promise<void> {
    const project = this.settings.project ?? "";
    const config = this.settings.config ?? "";
    this.needsConfig(project, config, "check");
    await this.call("GET", "/v3/configs/config/secrets/names", { project, config }, undefined, project || config ? `listing of config "${project}/${config}"` : "listing of the service token's config");
  }

  private version(k: StoreKey, loc: Location, text: string): SecretVersion {
    const versionId = contentVersion(text);
    if (k.version !== undefined && k.version !== versionId && k.version.toLowerCase() !== "current" && k.version.toLowerCase() !== "latest") {
      throw new NotFoundError(`store "${this.name}": ${this.what(loc)} has no version "${k.version}" (Doppler keeps no readable versions; only the current value is read)`);
    }
    return { value: new Secret(text), versionId };
  }

  private what(loc: Location): string {
    return loc.project || loc.config ? `secret "${loc.name}" in config "${loc.project}/${loc.config}"` : `secret "${loc.name}"`;
  }

  private token(): string {
    const t = this.settings.token ?? this.ctx.env.DOPPLER_TOKEN ?? "";
    if (!t) {
      throw new AuthError(`store "${this.name}": no Doppler token: set token in its settings or DOPPLER_TOKEN`, {
        hint: "a service token (dp.st.…) of the config, or a personal token from `doppler login` (doppler configure get token --plain)",
      });
    }
    return t;
  }

  /** A token other than a service token needs a project and a config. */
  private needsConfig(project: string, config: string, what: string): void {
    if (project && config) return;
    if (this.token().startsWith("dp.st.")) return;
    throw new DsopsError(`store "${this.name}": ${what} needs a project and a config (only a service token carries its own)`, {
      hint: "set project and config in the store's settings, or write the key as project/config/NAME",
    });
  }

  private locate(k: StoreKey): Location {
    const parts = k.key.split("/");
    if (parts.length > 3 || parts.some((p) => p === "")) {
      throw new DsopsError(`store "${this.name}": "${k.key}" is not a Doppler secret (NAME, config/NAME or project/config/NAME)`);
    }
    const name = parts[parts.length - 1];
    let project = this.settings.project ?? "";
    let config = this.settings.config ?? "";
    if (parts.length === 3) [project, config] = parts;
    else if (parts.length === 2) config = parts[0];
    if (k.options?.project !== undefined) project = k.options.project;
    if (k.options?.config !== undefined) config = k.options.config;
    this.needsConfig(project, config, `key "${k.key}"`);
    return { project, config, name };
  }

  /** One API call; the answer's JSON, or the error it maps to (never holding the token or `value`). */
  private async call(method: "GET" | "POST", path: string, query: Record<string, string>, body: unknown, what: string, value?: Secret): Promise<unknown> {
    const token = this.token();
    const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "")).toString();
    const url = `${this.api}${path}${qs ? `?${qs}` : ""}`;
    const prefix = `store "${this.name}": ${what}`;
    const clean = (s: string) => scrub(s, value ? [token, value] : [token]);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === "TimeoutError" || err.name === "AbortError") throw new TimeoutError(`${prefix}: no answer from ${this.api} within ${this.timeoutMs} ms (timeout_ms)`);
      const code = err.cause?.code;
      const detail = clean(code ?? err.cause?.message ?? err.message);
      throw new StoreError(`${prefix}: cannot reach ${this.api}: ${detail}`, code === undefined || TRANSIENT_CODES.has(code));
    }
    let json: unknown;
    let parsed = true;
    try {
      json = text === "" ? {} : JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (res.ok) {
      if (!parsed || json === null || typeof json !== "object") throw new StoreError(`${prefix}: the answer (HTTP ${res.status}) is not a JSON object`);
      return json;
    }
    const messages = parsed && json && typeof json === "object" && Array.isArray((json as { messages?: unknown }).messages) ? (json as { messages: unknown[] }).messages.map(String).join("; ") : "";
    const said = messages ? `: ${clean(messages).slice(0, 300)}` : "";
    const s = res.status;
    if (s === 401) throw new AuthError(`${prefix}: the token was refused (HTTP 401)${said}`, { hint: "check the store's token (or DOPPLER_TOKEN); a personal token comes from `doppler login`" });
    if (s === 403) throw new AuthError(`${prefix}: the token may not do this (HTTP 403)${said}`, { hint: "a service token reads only its own config, and writes only when it has write access" });
    if (s === 404) throw new NotFoundError(`${prefix}: not found (HTTP 404)${said}`);
    if (s === 429) {
      const after = res.headers.get("retry-after");
      throw new StoreError(`${prefix}: throttled (HTTP 429${after ? `, retry after ${after}s` : ""})${said}`, true);
    }
    throw new StoreError(`${prefix}: HTTP ${s}${said}`, s >= 500 || s === 408);
  }
}
