import { isAbsolute, join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { isSingleExecutable, notInSingleExecutable } from "../core/self";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "bitwarden-sm" }>;

/** A secret as the SDK returns it (decrypted), dates as ISO strings. */
interface SmSecret {
  readonly id: string;
  readonly organizationId: string;
  readonly projectId?: string | null;
  readonly key: string;
  readonly value: string;
  readonly note: string;
  readonly creationDate: string;
  readonly revisionDate: string;
}
interface SmIdentifier {
  readonly id: string;
  readonly organizationId: string;
  readonly key: string;
}

type Op = "open" | "close" | "login" | "get" | "getByIds" | "list" | "create" | "update" | "project";

const SDK = "@bitwarden/sdk-napi";
const DEFAULT_API = "https://api.bitwarden.com";
const DEFAULT_IDENTITY = "https://identity.bitwarden.com";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** getByIds per call. */
const BATCH = 100;

/** The SDK's answer to a refused HTTP call: `Received error message from server: [404 Not Found] <body>`. */
const HTTP = /Received error message from server: \[(\d{3})[^\]]*\]\s*([\s\S]*)$/;

/**
 * Bitwarden Secrets Manager through the official `@bitwarden/sdk-napi` (an optional peer
 * dependency, loaded when a store of this type is first used). A machine account's access token
 * logs in; the SDK decrypts with the organisation key the login hands it. Keys: a secret's id
 * (UUID), or its key name, looked up with one list of the organisation (and, with `project_id`,
 * only that project's secrets); a name held by several secrets is an error listing their ids.
 * The version id is the secret's revision date (Secrets Manager keeps no readable older
 * versions). The SDK runs in a worker thread: its calls have no timeout and cannot be cancelled,
 * so a call still unanswered after `timeout_ms` is abandoned there (it no longer keeps the
 * process alive) and the store starts over with a new client, logging in again.
 */
export class BitwardenSmStore implements Store {
  readonly type = "bitwarden-sm" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: BATCH, binary: false, staging: false };
  private readonly apiUrl: string;
  private readonly identityUrl: string;
  private readonly timeoutMs: number;
  /** This store's client in the SDK's worker thread (opened on first use). */
  private client?: string;
  private login?: Promise<void>;
  private token?: string;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.apiUrl = this.url("api_url", settings.api_url ?? DEFAULT_API);
    this.identityUrl = this.url("identity_url", settings.identity_url ?? DEFAULT_IDENTITY);
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const [r] = await this.fetch([k]);
    if (r instanceof Error) throw r;
    return r;
  }

  /** Names resolved with one list of the organisation; then one getByIds per 100 secrets. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    return this.fetch(keys);
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const v = await this.get(k);
    return { versionId: v.versionId, ...(v.updatedAt ? { updatedAt: v.updatedAt } : {}) };
  }

  /**
   * Update the secret (its key, note and project kept), or, for a name no secret has, create it
   * in `project_id`.
   */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    if (value.reveal().length === 0) throw new DsopsError(`store "${this.name}": secret "${key}": Bitwarden Secrets Manager cannot hold an empty value`);
    const what = `write of secret "${key}"`;
    let current: SmSecret | undefined;
    if (UUID.test(key)) current = await this.call<SmSecret>(what, "get", [key]);
    else {
      const found = await this.byName([key], what);
      const hit = found.get(key);
      if (hit instanceof NotFoundError) current = undefined;
      else if (hit instanceof Error) throw hit;
      else current = hit;
    }
    const hide = [value.reveal()];
    let s: SmSecret;
    if (current) {
      const projects = current.projectId ? [current.projectId] : this.settings.project_id ? [this.settings.project_id] : [];
      s = await this.call<SmSecret>(what, "update", [current.organizationId, current.id, current.key, value.reveal(), current.note, projects], hide);
    } else {
      if (UUID.test(key)) throw new NotFoundError(`store "${this.name}": secret "${key}" not found`);
      const org = this.org(what);
      if (!this.settings.project_id) {
        throw new DsopsError(`store "${this.name}": ${what}: no secret has that name, and creating one needs project_id (the project it goes in)`, {
          hint: "set project_id in the store's settings (a project the machine account may write to)",
        });
      }
      s = await this.call<SmSecret>(what, "create", [org, key, value.reveal(), "", [this.settings.project_id]], hide);
    }
    return { versionId: s.revisionDate, updatedAt: s.revisionDate };
  }

  /** Log in, then read the project (with project_id) or list the organisation's secrets (names stay in memory). */
  async check(): Promise<void> {
    if (this.settings.project_id) {
      const p = await this.call<{ organizationId: string }>(`read of project "${this.settings.project_id}"`, "project", [this.settings.project_id]);
      if (this.settings.organization_id && p.organizationId.toLowerCase() !== this.settings.organization_id.toLowerCase()) {
        throw new DsopsError(`store "${this.name}": project "${this.settings.project_id}" belongs to organisation ${p.organizationId}, not organization_id ${this.settings.organization_id}`);
      }
    }
    if (this.settings.organization_id) await this.call(`listing of organisation ${this.settings.organization_id}`, "list", [this.settings.organization_id]);
    else await this.ensureLogin("check");
  }

  async close(): Promise<void> {
    this.drop();
  }

  // ---- reads ----

  private async fetch(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const names: string[] = [];
    keys.forEach((k, i) => {
      const v = k.version;
      if (v !== undefined && !/^(current|latest)$/i.test(v) && !/^\d{4}-\d\d-\d\dT/.test(v)) {
        out[i] = new NotFoundError(`store "${this.name}": secret "${k.key}" has no version "${v}" (Bitwarden Secrets Manager keeps only the current value; its version id is the revision date)`);
      } else if (!UUID.test(k.key)) names.push(k.key);
    });
    const byName = names.length > 0 ? await this.byName(names, this.readWhat(names)).catch((e: Error) => e) : new Map<string, SmSecret | Error>();
    const ids = new Set<string>();
    keys.forEach((k, i) => {
      if (out[i] || !UUID.test(k.key)) return;
      ids.add(k.key.toLowerCase());
    });
    const byId = ids.size > 0 ? await this.byIds([...ids]) : new Map<string, SmSecret | Error>();
    keys.forEach((k, i) => {
      if (out[i]) return;
      const hit = UUID.test(k.key) ? byId.get(k.key.toLowerCase()) : byName instanceof Error ? byName : byName.get(k.key);
      if (!hit) out[i] = new NotFoundError(`store "${this.name}": secret "${k.key}" not found`);
      else if (hit instanceof Error) out[i] = hit;
      else if (k.version && /^\d{4}-/.test(k.version) && k.version !== hit.revisionDate) {
        out[i] = new NotFoundError(`store "${this.name}": secret "${k.key}" has no version "${k.version}" (its current revision is ${hit.revisionDate}; older ones are not kept)`);
      } else out[i] = { value: new Secret(hit.value), versionId: hit.revisionDate, updatedAt: hit.revisionDate };
    });
    return out;
  }

  private readWhat(names: readonly string[]): string {
    return names.length === 1 ? `read of secret "${names[0]}"` : `read of secrets ${names.map((n) => `"${n}"`).join(", ")}`;
  }

  /** Secrets by id (lower-case), batched; a batch refused with 404 (one of its ids is missing) is read id by id. */
  private async byIds(ids: readonly string[]): Promise<Map<string, SmSecret | Error>> {
    const out = new Map<string, SmSecret | Error>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const chunk = ids.slice(i, i + BATCH);
      try {
        const got = await this.call<SmSecret[]>(this.readWhat(chunk), "getByIds", [chunk]);
        for (const s of got) out.set(s.id.toLowerCase(), s);
        for (const id of chunk) if (!out.has(id)) out.set(id, new NotFoundError(`store "${this.name}": secret "${id}" not found`));
      } catch (e) {
        if (!(e instanceof NotFoundError) || chunk.length === 1) {
          for (const id of chunk) out.set(id, chunk.length === 1 && e instanceof NotFoundError ? new NotFoundError(`store "${this.name}": secret "${id}" not found`) : (e as Error));
          continue;
        }
        await Promise.all(
          chunk.map(async (id) => {
            const one = await this.call<SmSecret>(`read of secret "${id}"`, "get", [id]).catch((e2: Error) => e2);
            out.set(id, one instanceof NotFoundError ? new NotFoundError(`store "${this.name}": secret "${id}" not found`) : one);
          }),
        );
      }
    }
    return out;
  }

  /**
   * Secrets by key name: one list of the organisation, then the matching ids read with
   * getByIds; with project_id, only that project's secrets count. Each name maps to its
   * secret, NotFoundError, or an error listing the ids when several secrets have it.
   */
  private async byName(names: readonly string[], what: string): Promise<Map<string, SmSecret | Error>> {
    const org = this.org(what);
    const list = await this.call<SmIdentifier[]>(what, "list", [org]);
    const wanted = new Set(names);
    const matches = new Map<string, string[]>();
    for (const s of list) if (wanted.has(s.key)) matches.set(s.key, [...(matches.get(s.key) ?? []), s.id.toLowerCase()]);
    const all = [...new Set([...matches.values()].flat())];
    const secrets = all.length > 0 ? await this.byIds(all) : new Map<string, SmSecret | Error>();
    const project = this.settings.project_id?.toLowerCase();
    const where = `organisation ${org}${project ? `, project ${this.settings.project_id}` : ""}`;
    const out = new Map<string, SmSecret | Error>();
    for (const name of names) {
      const got = (matches.get(name) ?? []).map((id) => secrets.get(id)).filter((s): s is SmSecret | Error => s !== undefined);
      const failed = got.find((s): s is Error => s instanceof Error && !(s instanceof NotFoundError));
      if (failed) {
        out.set(name, failed);
        continue;
      }
      const hits = got.filter((s): s is SmSecret => !(s instanceof Error) && (!project || (s.projectId ?? "").toLowerCase() === project));
      if (hits.length === 0) out.set(name, new NotFoundError(`store "${this.name}": no secret named "${name}" in ${where}`));
      else if (hits.length === 1) out.set(name, hits[0]);
      else {
        out.set(
          name,
          new DsopsError(`store "${this.name}": secret name "${name}" is ambiguous: ${hits.length} secrets in ${where} have it (ids ${hits.map((h) => h.id).join(", ")})`, {
            hint: project ? "use the secret's id as the key" : "use the secret's id as the key, or set project_id to look in one project",
          }),
        );
      }
    }
    return out;
  }

  private org(what: string): string {
    const org = this.settings.organization_id;
    if (!org) {
      throw new DsopsError(`store "${this.name}": ${what}: looking a secret up by name (or creating one) needs organization_id`, {
        hint: "set organization_id in the store's settings, or use the secret's id (a UUID) as the key",
      });
    }
    return org;
  }

  // ---- the SDK, in its worker ----

  private url(field: string, value: string): string {
    const u = value.replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+/i.test(u)) throw new DsopsError(`store "${this.name}": ${field} "${value}" is not an http(s) URL`);
    return u;
  }

  /** One SDK call (logged in first); an API call refused with 401 logs in again once. */
  private async call<T>(what: string, op: Op, args: unknown[], hide: string[] = []): Promise<T> {
    await this.ensureLogin(what);
    try {
      return (await this.send(what, op, args, hide)) as T;
    } catch (e) {
      if (!(e instanceof AuthError) || !/HTTP 401/.test(e.message)) throw e;
      this.login = undefined;
      await this.ensureLogin(what);
      return (await this.send(what, op, args, hide)) as T;
    }
  }

  private ensureLogin(what: string): Promise<void> {
    if (!this.login) {
      const p = this.accessToken(what).then(async (token) => {
        const state = this.settings.state_file ? (isAbsolute(this.settings.state_file) ? this.settings.state_file : resolve(this.ctx.configDir, this.settings.state_file)) : "";
        try {
          await this.send(`${what}: login`, "login", [token, state], []);
        } catch (e) {
          if (e instanceof StoreError && /HTTP 400/.test(e.message) && /invalid_client|invalid_grant/.test(e.message)) {
            throw new AuthError(`store "${this.name}": ${what}: login: the access token was refused (HTTP 400 invalid_client)`, {
              hint: "check BWS_ACCESS_TOKEN (or access_token): the machine account's token may be revoked, expired or mistyped; create a new one in Secrets Manager → Machine accounts → Access tokens",
            });
          }
          throw e;
        }
      });
      p.catch(() => (this.login = undefined));
      this.login = p;
    }
    return this.login;
  }

  private async accessToken(what: string): Promise<string> {
    if (this.token !== undefined) return this.token;
    const raw = this.settings.access_token ?? this.ctx.env.BWS_ACCESS_TOKEN ?? "";
    let token = raw;
    if (raw.startsWith("store://")) {
      if (!this.ctx.resolveRef) throw new DsopsError(`store "${this.name}": access_token is a reference (${raw}), but nothing here resolves references`);
      token = (await this.ctx.resolveRef(raw)).reveal();
    }
    if (!token) {
      throw new AuthError(`store "${this.name}": ${what}: no access token: set BWS_ACCESS_TOKEN (or access_token in the store's settings)`, {
        hint: "create a machine account's access token in Bitwarden Secrets Manager (Machine accounts → Access tokens)",
      });
    }
    this.token = token;
    return token;
  }

  /** Post one request for this store's SDK client (opened first); abandoned after timeout_ms (the client is dropped). Errors mapped to ours. */
  private async send(what: string, op: Op, args: unknown[], hide: string[]): Promise<unknown> {
    const prefix = `store "${this.name}": ${what}`;
    try {
      if (!this.client) {
        const client = `${this.name}#${++clientSeq}`;
        await sdkCall(client, "open", [this.apiUrl, this.identityUrl], this.name, this.timeoutMs);
        this.client = client;
      }
      return await sdkCall(this.client, op, args, this.name, this.timeoutMs);
    } catch (e) {
      if (e === TIMED_OUT) {
        // The hung call stays pending in the worker, abandoned; this store starts over with a new client.
        this.drop();
        throw new TimeoutError(`${prefix}: no answer from ${op === "login" ? this.identityUrl : this.apiUrl} within ${this.timeoutMs} ms (timeout_ms)`);
      }
      throw e instanceof SdkFailure ? this.mapError(e.message, prefix, op, hide) : e;
    }
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    this.login = undefined;
    if (c) void sdkCall(c, "close", [], this.name, this.timeoutMs).catch(() => undefined);
  }

  private hidden(hide: string[]): string[] {
    return [...hide, this.token ?? "", this.settings.access_token ?? "", this.ctx.env.BWS_ACCESS_TOKEN ?? ""].filter((s) => s.length > 0);
  }

  private mapError(raw: string, prefix: string, op: Op, hide: string[]): Error {
    const text = scrub(raw, this.hidden(hide));
    const m = HTTP.exec(text);
    if (m) {
      const status = Number(m[1]);
      const body = m[2].trim();
      const said = body ? `: ${(/"message":"([^"]*)"/.exec(body)?.[1] ?? body).slice(0, 300)}` : "";
      if (status < 400) return new StoreError(`${prefix}: malformed answer from the server (HTTP ${status}, not the JSON expected)`);
      if (status === 401) return new AuthError(`${prefix}: the access token was refused (HTTP 401)${said}`, { hint: "check BWS_ACCESS_TOKEN (or access_token): the token may be revoked or expired" });
      if (status === 403) return new AuthError(`${prefix}: not allowed (HTTP 403)${said}`, { hint: "give the machine account access to the project (Secrets Manager → Machine accounts → Projects)" });
      if (status === 404) return new NotFoundError(`${prefix}: not found (HTTP 404)${said}`);
      if (status === 429) return new StoreError(`${prefix}: throttled (HTTP 429)${said}`, true);
      return new StoreError(`${prefix}: HTTP ${status}${said}`, status >= 500 || status === 408);
    }
    if (/Access token is not in a valid format|invalid.*access token/i.test(text)) {
      return new AuthError(`${prefix}: the access token is malformed (${text.replace(/^.*?format:?\s*/i, "").slice(0, 120)})`, {
        hint: "BWS_ACCESS_TOKEN (or access_token) must be a machine account's access token as Bitwarden shows it: 0.<id>.<secret>:<key>",
      });
    }
    if (/error sending request|connection|dns|timed out|tcp connect|reset by peer/i.test(text)) {
      return new StoreError(`${prefix}: cannot reach ${op === "login" ? this.identityUrl : this.apiUrl}: ${text.slice(0, 200)}`, true);
    }
    if (/MAC|decrypt|crypto|key/i.test(text) && !/line \d+ column \d+/.test(text)) {
      return new StoreError(`${prefix}: cannot decrypt the answer (${text.slice(0, 200)})`, false, { hint: "the access token may belong to another organisation than the secret" });
    }
    return new StoreError(`${prefix}: malformed answer from the server (${text.slice(0, 200)})`);
  }
}

/** An error the SDK reported (its message, mapped by the store). */
class SdkFailure extends Error {}
/** What a call that got no answer within its time rejects with. */
const TIMED_OUT = Symbol("timed out");
let clientSeq = 0;

/**
 * The one worker thread of the process that runs the SDK (see bitwarden-sm-worker.ts), started
 * on first use. It keeps the process alive only while a call that has not been abandoned waits
 * for its answer.
 */
let thread: { worker: Worker; pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>; seq: number } | undefined;

function startThread(storeName: string): NonNullable<typeof thread> {
  if (thread) return thread;
  if (isSingleExecutable()) throw notInSingleExecutable(`bitwarden-sm store "${storeName}"`, SDK, "is a native add-on (an optional peer package) that it does not carry");
  try {
    require.resolve(SDK);
  } catch {
    throw new DsopsError(`bitwarden-sm store "${storeName}": needs the optional package ${SDK} (npm install ${SDK})`, {
      hint: `install it next to @dsops/pulumi: npm install ${SDK}`,
    });
  }
  const worker = new Worker(join(__dirname, "bitwarden-sm-worker.js"));
  worker.unref();
  const t = { worker, pending: new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>(), seq: 0 };
  worker.on("message", (m: { id: number; data?: unknown; error?: string }) => {
    const p = t.pending.get(m.id);
    if (!p) return; // an abandoned call's late answer
    t.pending.delete(m.id);
    if (t.pending.size === 0) worker.unref();
    if (m.error !== undefined) p.reject(new SdkFailure(m.error));
    else p.resolve(m.data);
  });
  const gone = (why: string) => {
    if (thread === t) thread = undefined;
    for (const [, p] of t.pending) p.reject(new StoreError(`the Bitwarden SDK's worker thread ${why}`));
    t.pending.clear();
  };
  worker.on("error", (e) => gone(`failed: ${e.message.slice(0, 300)}`));
  worker.on("exit", (code) => gone(`ended (code ${code})`));
  thread = t;
  return t;
}

/**
 * One request to `client` in the SDK's thread; rejects with TIMED_OUT after `timeoutMs` (the
 * request is then abandoned), SdkFailure when the SDK failed. Exported for the tests, which seed
 * the server through the same thread.
 */
export function sdkCall(client: string, op: Op, args: unknown[], storeName: string, timeoutMs: number): Promise<unknown> {
  let t: NonNullable<typeof thread>;
  try {
    t = startThread(storeName);
  } catch (e) {
    return Promise.reject(e);
  }
  const id = ++t.seq;
  return new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (!t.pending.delete(id)) return;
      if (t.pending.size === 0) t.worker.unref();
      reject(TIMED_OUT);
    }, timeoutMs);
    t.pending.set(id, {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    t.worker.ref();
    t.worker.postMessage({ id, client, op, args });
  });
}
