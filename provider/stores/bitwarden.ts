import { spawn } from "node:child_process";
import { isAbsolute, resolve } from "node:path";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "bitwarden" }>;

/** An item as `bw get item` / `bw list items` print it (the fields the store reads). */
interface BwItem {
  id: string;
  organizationId?: string | null;
  collectionIds?: string[];
  type: number;
  name: string;
  notes?: string | null;
  login?: { username?: string | null; password?: string | null; totp?: string | null; uris?: Array<{ uri?: string | null }> | null } | null;
  fields?: Array<{ name?: string | null; value?: string | null }> | null;
  revisionDate?: string;
  deletedDate?: string | null;
  [k: string]: unknown;
}

/** What one bw run gave back. */
interface Run {
  readonly code: number | null;
  readonly stdout: string;
  /** stdout as bytes (an attachment's content). */
  readonly bytes: Buffer;
  readonly stderr: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECURE_NOTE = 2;
const LOGIN = 1;

/** The sign-in hint for a bw that is not logged in, or locked. */
const LOGIN_HINT = "log in with `bw login` (or `dsops login <store>`), then export the BW_SESSION it prints";
const UNLOCK_HINT = "unlock with `bw unlock` (or `dsops login <store>`) and export the BW_SESSION it prints, or set the store's `session`";

/**
 * Bitwarden personal and organisation vaults through the Bitwarden CLI (`bw`, npm
 * `@bitwarden/cli`), which does the vault's client-side decryption. The session key (`session`,
 * else BW_SESSION) goes to bw in its environment, never on its command line; values go to bw on
 * stdin (bw's base64-encoded JSON), never in argv.
 *
 * Keys: an item's id or its exact name (in `organization_id` / `collection` when set). The value
 * of a secure note is its notes; the value of any other item is a JSON document of its fields,
 * so `#password`, `#username`, `#totp` (the TOTP seed), `#uri` (the first URI), `#notes`,
 * `#name` and custom fields by name are read with the reference's field. The version id is the
 * item's revision date; Bitwarden keeps no readable older versions. Several keys are read with
 * one `bw list items`. `?attachment=<file name or id>` reads an attachment of the item (bytes,
 * base64-encoded and flagged binary).
 */
export class BitwardenStore implements Store {
  readonly type = "bitwarden" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: 1000, binary: false, staging: false };
  private readonly timeoutMs: number;
  private synced?: Promise<void>;
  /** bw keeps its state in one file: its runs go one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  /** The bw program: `cli_path` (relative to the configuration's folder) or `bw` on PATH. */
  private get program(): string {
    const p = this.settings.cli_path;
    if (p === undefined) return "bw";
    return p.includes("/") && !isAbsolute(p) ? resolve(this.ctx.configDir, p) : p;
  }

  private get session(): string | undefined {
    return this.settings.session ?? this.settings.profile ?? this.ctx.env.BW_SESSION;
  }

  /** The child's environment: the session and app-data folder in it, prompts off. */
  childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.ctx.env, BW_NOINTERACTION: "true" };
    const session = this.session;
    if (session !== undefined) env.BW_SESSION = session;
    if (this.settings.appdata_dir !== undefined) env.BITWARDENCLI_APPDATA_DIR = isAbsolute(this.settings.appdata_dir) ? this.settings.appdata_dir : resolve(this.ctx.configDir, this.settings.appdata_dir);
    return env;
  }

  /** The argv and options of one bw run (no secret in argv: asserted by tests). */
  spawnPlan(args: readonly string[]): { program: string; args: string[]; env: NodeJS.ProcessEnv } {
    return { program: this.program, args: [...args, "--nointeraction"], env: this.childEnv() };
  }

  /** Run bw with `args`, `input` on stdin, bounded by timeout_ms. */
  private run(args: readonly string[], what: string, input?: string): Promise<Run> {
    const next = this.queue.then(() => this.runNow(args, what, input));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runNow(args: readonly string[], what: string, input?: string): Promise<Run> {
    const plan = this.spawnPlan(args);
    return new Promise<Run>((done, fail) => {
      let child;
      try {
        child = spawn(plan.program, plan.args, { env: plan.env, stdio: ["pipe", "pipe", "pipe"] });
      } catch (e) {
        fail(this.spawnError(e, what));
        return;
      }
      const out: Buffer[] = [];
      let stderr = "";
      let finished = false;
      const timer = setTimeout(() => {
        if (finished) return;
        finished = true;
        child.kill("SIGKILL");
        fail(new TimeoutError(`store "${this.name}": ${what}: bw did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (e) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        fail(this.spawnError(e, what));
      });
      child.on("close", (code) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        const bytes = Buffer.concat(out);
        done({ code, stdout: bytes.toString("utf8"), bytes, stderr });
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(input ?? "");
    });
  }

  private spawnError(e: unknown, what: string): Error {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES") {
      return new StoreError(`store "${this.name}": ${what}: the Bitwarden CLI "${this.program}" cannot be run (${code})`, false, {
        hint: "install it (npm install -g @bitwarden/cli) or set the store's cli_path",
      });
    }
    return new StoreError(`store "${this.name}": ${what}: bw could not be started: ${(e as Error).message}`);
  }

  /** Turn a failed run into our error types; the message keeps bw's own words (values scrubbed). */
  private failure(r: Run, what: string, key?: string, secrets: string[] = []): Error {
    // bw's first run in a fresh app-data folder says so on stderr before its real message.
    const lines = (r.stderr.trim() || r.stdout.trim()).split("\n").filter((l) => l.trim() !== "" && !/^Could not find data file/.test(l));
    const said = scrub(lines.find((l) => !/^\s+at /.test(l)) ?? "", [...secrets, ...(this.session ? [this.session] : [])]).slice(0, 300);
    const lower = said.toLowerCase();
    if (lower.includes("not logged in")) return new AuthError(`store "${this.name}": ${what}: bw is not logged in (${said})`, { hint: LOGIN_HINT });
    if (lower.includes("vault is locked") || lower.includes("invalid master password") || lower.includes("session key is invalid")) {
      return new AuthError(`store "${this.name}": ${what}: the vault is locked (${said})`, { hint: UNLOCK_HINT });
    }
    if (lower === "not found." || lower.startsWith("not found")) return new NotFoundError(`store "${this.name}": no item "${key ?? ""}" (${what})`);
    const transient = /\b(5\d\d|429|econnrefused|econnreset|etimedout|socket hang up|fetch failed|network)\b/i.test(said);
    return new StoreError(`store "${this.name}": ${what}: bw failed (exit ${r.code ?? "killed"}): ${said || "no message"}`, transient);
  }

  private async json<T>(args: readonly string[], what: string, key?: string, input?: string, secrets: string[] = []): Promise<T> {
    await this.syncOnce();
    const r = await this.run(args, what, input);
    if (r.code !== 0) throw this.failure(r, what, key, secrets);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new StoreError(`store "${this.name}": ${what}: bw printed something that is not JSON`);
    }
  }

  private syncOnce(): Promise<void> {
    if (!this.settings.sync) return Promise.resolve();
    this.synced ??= this.run(["sync"], "sync").then((r) => {
      if (r.code !== 0) {
        this.synced = undefined;
        throw this.failure(r, "sync");
      }
    });
    return this.synced;
  }

  /** The filters of `bw list items` for this store's organisation / collection. */
  private scope(): string[] {
    const out: string[] = [];
    if (this.settings.organization_id !== undefined) out.push("--organizationid", this.settings.organization_id);
    if (this.settings.collection !== undefined) out.push("--collectionid", this.settings.collection);
    return out;
  }

  private inScope(item: BwItem): boolean {
    if (item.deletedDate) return false;
    if (this.settings.organization_id !== undefined && item.organizationId !== this.settings.organization_id) return false;
    if (this.settings.collection !== undefined && !(item.collectionIds ?? []).includes(this.settings.collection)) return false;
    return true;
  }

  /** Pick `key`'s item among `items` (by id, else by exact name); several of one name is an error. */
  private pick(items: readonly BwItem[], key: string): BwItem | Error {
    const scoped = items.filter((i) => this.inScope(i));
    const byId = scoped.find((i) => i.id === key);
    if (byId) return byId;
    const named = scoped.filter((i) => i.name === key);
    if (named.length === 1) return named[0];
    if (named.length > 1) {
      return new StoreError(`store "${this.name}": ${named.length} items are named "${key}" (ids ${named.map((i) => i.id).join(", ")})`, false, { hint: "refer to the item by its id" });
    }
    return new NotFoundError(`store "${this.name}": no item "${key}"${this.where()}`);
  }

  private where(): string {
    if (this.settings.collection !== undefined) return ` in collection ${this.settings.collection} of organisation ${this.settings.organization_id}`;
    if (this.settings.organization_id !== undefined) return ` in organisation ${this.settings.organization_id}`;
    return "";
  }

  private async find(key: string): Promise<BwItem> {
    if (key === "") throw new DsopsError(`store "${this.name}": an empty key names no item`, { hint: "give an item's id or name" });
    const items = UUID.test(key)
      ? await this.json<BwItem>(["get", "item", key], `read of item "${key}"`, key).then(
          (i) => [i],
          (e: unknown) => {
            if (e instanceof NotFoundError) return [];
            throw e;
          },
        )
      : await this.json<BwItem[]>(["list", "items", "--search", key, ...this.scope()], `search for item "${key}"`, key);
    const got = this.pick(items, key);
    if (got instanceof Error) throw got;
    return got;
  }

  /** The value the store gives for an item (see the class comment). */
  static valueOf(item: BwItem): string {
    if (item.type === SECURE_NOTE) return item.notes ?? "";
    const doc: Record<string, string> = {};
    const set = (k: string, v: string | null | undefined) => {
      if (typeof v === "string") doc[k] = v;
    };
    set("name", item.name);
    set("notes", item.notes);
    set("username", item.login?.username);
    set("password", item.login?.password);
    set("totp", item.login?.totp);
    set("uri", item.login?.uris?.[0]?.uri);
    for (const f of item.fields ?? []) if (typeof f.name === "string" && !(f.name in doc)) set(f.name, f.value);
    return JSON.stringify(doc);
  }

  private version(item: BwItem, k: StoreKey): SecretVersion {
    const versionId = item.revisionDate ?? item.id;
    if (k.version !== undefined && k.version !== versionId && k.version !== "current") {
      throw new NotFoundError(`store "${this.name}": item "${k.key}" has no version "${k.version}" (Bitwarden keeps only the current one, ${versionId})`);
    }
    return { value: new Secret(BitwardenStore.valueOf(item)), versionId, ...(item.revisionDate ? { updatedAt: item.revisionDate } : {}) };
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const item = await this.find(k.key);
    const attachment = k.options?.attachment;
    if (attachment === undefined) return this.version(item, k);
    const v = this.version(item, k);
    const what = `read of attachment "${attachment}" of item "${k.key}"`;
    const r = await this.run(["get", "attachment", attachment, "--itemid", item.id, "--raw"], what);
    if (r.code !== 0) {
      const e = this.failure(r, what, k.key);
      if (/no attachments|was not found/i.test(e.message)) throw new NotFoundError(`store "${this.name}": item "${k.key}" has no attachment "${attachment}"`);
      throw e;
    }
    return { ...v, value: new Secret(r.bytes.toString("base64")), binary: true };
  }

  /** One `bw list items` for all keys (in this store's organisation / collection); attachments one bw run each. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    if (keys.length === 1 || keys.some((k) => k.options?.attachment !== undefined)) return Promise.all(keys.map((k) => this.get(k).catch((e: Error) => e)));
    let items: BwItem[];
    try {
      items = await this.json<BwItem[]>(["list", "items", ...this.scope()], `listing of items for ${keys.length} keys`);
    } catch (e) {
      return keys.map(() => e as Error);
    }
    return keys.map((k) => {
      const got = this.pick(items, k.key);
      if (got instanceof Error) return got;
      try {
        return this.version(got, k);
      } catch (e) {
        return e as Error;
      }
    });
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const v = await this.get(k);
    return { versionId: v.versionId, ...(v.updatedAt ? { updatedAt: v.updatedAt } : {}) };
  }

  /**
   * Write `value`: a secure note's notes, another item's password; a key with no item creates a
   * secure note of that name (in organization_id / collection when set). The item goes to bw
   * as base64-encoded JSON on stdin.
   */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const plain = value.reveal();
    let existing: BwItem | undefined;
    try {
      existing = await this.find(key);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    let out: BwItem;
    if (existing) {
      const item: BwItem = { ...existing };
      if (item.type === SECURE_NOTE) item.notes = plain;
      else if (item.type === LOGIN) item.login = { ...(item.login ?? {}), password: plain };
      else throw new StoreError(`store "${this.name}": item "${key}" is neither a login nor a secure note; it is not written`, false);
      out = await this.json<BwItem>(["edit", "item", existing.id, ...(existing.organizationId ? ["--organizationid", existing.organizationId] : [])], `write of item "${key}"`, key, encode(item), [plain]);
    } else {
      if (UUID.test(key)) throw new NotFoundError(`store "${this.name}": no item with id "${key}" to write (a new item is created by name)`);
      const item = {
        type: SECURE_NOTE,
        name: key,
        notes: plain,
        secureNote: { type: 0 },
        organizationId: this.settings.organization_id ?? null,
        collectionIds: this.settings.collection !== undefined ? [this.settings.collection] : [],
        folderId: null,
        favorite: false,
        fields: [],
        reprompt: 0,
      };
      out = await this.json<BwItem>(["create", "item", ...(this.settings.organization_id ? ["--organizationid", this.settings.organization_id] : [])], `creation of item "${key}"`, key, encode(item), [plain]);
    }
    return { versionId: out.revisionDate ?? out.id, ...(out.revisionDate ? { updatedAt: out.revisionDate } : {}) };
  }

  /** `bw status`: unlocked, else an auth error saying how to sign in. */
  async check(): Promise<void> {
    const st = await this.status();
    if (st === "unauthenticated") throw new AuthError(`store "${this.name}": bw is not logged in`, { hint: LOGIN_HINT });
    if (st !== "unlocked") throw new AuthError(`store "${this.name}": the vault is ${st}${this.session === undefined ? " (no BW_SESSION, no session setting)" : ""}`, { hint: UNLOCK_HINT });
    if (this.settings.organization_id !== undefined) await this.json<BwItem[]>(["list", "items", ...this.scope(), "--search", "\u0000dsops-check"], "listing of the organisation's items");
  }

  /** bw's own status word: unauthenticated, locked or unlocked. */
  async status(): Promise<string> {
    const r = await this.run(["status"], "status");
    if (r.code !== 0) throw this.failure(r, "status");
    try {
      return String((JSON.parse(r.stdout) as { status?: unknown }).status);
    } catch {
      throw new StoreError(`store "${this.name}": status: bw printed something that is not JSON`);
    }
  }
}

/** bw's input form: the item's JSON, base64-encoded (what `bw encode` makes). */
function encode(item: unknown): string {
  return Buffer.from(JSON.stringify(item), "utf8").toString("base64");
}
