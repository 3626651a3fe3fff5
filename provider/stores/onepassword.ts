import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import type { Readable } from "node:stream";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { isSingleExecutable, notInSingleExecutable } from "../core/self";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "onepassword" }>;
export type OnePasswordMode = "connect" | "service_account" | "cli";

/** A parsed key: `[op://]vault/item[/section]/field[?attribute=…]`. */
export interface OpKey {
  readonly vault: string;
  readonly item: string;
  readonly section?: string;
  /** Absent: the whole item (its fields as a JSON object). */
  readonly field?: string;
  /** `?attribute=` of op's secret references: totp/otp, value, id, type, purpose. */
  readonly attribute?: string;
}

/** The parts of an item every path reads (Connect's item, the `op item get --format json` document). */
interface ItemShape {
  id: string;
  title?: string;
  version?: number;
  sections?: Array<{ id?: string; label?: string }>;
  fields?: Array<{ id?: string; type?: string; purpose?: string; label?: string; value?: string; section?: { id?: string; label?: string } }>;
  files?: Array<{ id?: string; name?: string; size?: number; section?: { id?: string } }>;
}

type Picked = { kind: "text"; text: string } | { kind: "file"; fileId: string; name: string };

/** Connect's ids: 26 characters of [a-z0-9]. */
const OP_ID = /^[a-z0-9]{26}$/;
const ATTRIBUTES = ["value", "totp", "otp", "id", "type", "purpose"];
const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ERR_SOCKET_CONNECTION_TIMEOUT"]);

/** Parse a key; a key that is not one is an error naming it. */
export function parseOpKey(storeName: string, raw: string, options?: Readonly<Record<string, string>>): OpKey {
  let rest = raw.startsWith("op://") ? raw.slice(5) : raw;
  let attribute = options?.attribute;
  const q = rest.indexOf("?");
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    rest = rest.slice(0, q);
    for (const [k, v] of params) {
      if (k !== "attribute") throw new DsopsError(`store "${storeName}": key "${raw}": unknown parameter "${k}" (1Password references take ?attribute=)`, { hint: "e.g. op://vault/item/one-time password?attribute=totp" });
      attribute = v;
    }
  }
  const parts = rest.split("/");
  const hint = "op://vault/item/field, op://vault/item/section/field, or vault/item (the item's fields as JSON; pick one with #field)";
  if (parts.length < 2 || parts.length > 4 || parts.some((p) => p.trim() === "")) {
    throw new DsopsError(`store "${storeName}": "${raw}" is not a 1Password reference`, { hint });
  }
  if (attribute !== undefined) {
    attribute = attribute.toLowerCase();
    if (!ATTRIBUTES.includes(attribute)) throw new DsopsError(`store "${storeName}": key "${raw}": unknown attribute "${attribute}" (supported: ${ATTRIBUTES.join(", ")})`);
    if (parts.length === 2) throw new DsopsError(`store "${storeName}": key "${raw}": ?attribute= needs a field`, { hint });
  }
  const [vault, item] = parts;
  if (parts.length === 2) return { vault, item };
  if (parts.length === 3) return { vault, item, field: parts[2], ...(attribute ? { attribute } : {}) };
  return { vault, item, section: parts[2], field: parts[3], ...(attribute ? { attribute } : {}) };
}

/** RFC 6238 TOTP of an `otpauth://` URI or a bare base32 secret, at `nowMs`. */
export function totp(spec: string, nowMs: number): string {
  let secret = spec.trim();
  let digits = 6;
  let period = 30;
  let algorithm = "sha1";
  if (/^otpauth:\/\//i.test(secret)) {
    const u = new URL(secret);
    secret = u.searchParams.get("secret") ?? "";
    digits = Number(u.searchParams.get("digits") ?? 6);
    period = Number(u.searchParams.get("period") ?? 30);
    algorithm = (u.searchParams.get("algorithm") ?? "SHA1").toLowerCase();
  }
  const clean = secret.replace(/[\s=-]/g, "").toUpperCase();
  if (!clean || /[^A-Z2-7]/.test(clean) || !(digits >= 6 && digits <= 10) || !(period > 0) || !["sha1", "sha256", "sha512"].includes(algorithm)) {
    throw new Error("the one-time password field holds no valid TOTP secret");
  }
  let bits = "";
  for (const c of clean) bits += "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000 / period)));
  const h = createHmac(algorithm, key).update(counter).digest();
  const off = h[h.length - 1] & 0xf;
  const code = (h.readUInt32BE(off) & 0x7fffffff) % 10 ** digits;
  return String(code).padStart(digits, "0");
}

/**
 * 1Password, reached one of three ways, chosen by the settings (or `mode`):
 * - a Connect server (`connect_host`, `connect_token`) through the official `@1password/connect`
 *   client: reads (vault and item by title or id), sections, files (bytes, base64), writes (a
 *   field's value updated, or the item created);
 * - a service account (`service_account_token`) through the official `@1password/sdk`: field
 *   references, read-only;
 * - the `op` CLI where the user is signed in: `op item get --format json` (and `op read` for
 *   files), read-only; references never carry a secret, so argv holds none.
 *
 * Keys: `op://vault/item/field`, `op://vault/item/section/field` (also without `op://`), with
 * `?attribute=totp` for the current one-time password; `vault/item` is the item's fields as a
 * JSON object (`{label: value}`, fields of a section under the section's label) so
 * `store://op/vault/item#field` picks one. Fields match by id, then label (case-insensitively
 * when no exact match); a name that is no field but a file's name (or id) reads the file.
 * The version id is the item's version.
 */
export class OnePasswordStore implements Store {
  readonly type = "onepassword" as const;
  readonly capabilities: StoreCapabilities;
  readonly mode: OnePasswordMode;
  private readonly timeoutMs: number;
  private connect?: import("@1password/connect").OPConnect;
  private sdk?: Promise<import("@1password/sdk").Client>;
  private readonly vaultIds = new Map<string, string>();

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.timeoutMs = settings.timeout_ms ?? 30000;
    const env = ctx.env;
    this.mode =
      settings.mode ??
      (settings.connect_host || env.OP_CONNECT_HOST ? "connect" : settings.service_account_token || env.OP_SERVICE_ACCOUNT_TOKEN ? "service_account" : "cli");
    if (this.mode === "connect") {
      const host = this.connectHost();
      if (!/^https?:\/\/[^/]+/i.test(host)) throw new DsopsError(`store "${name}": connect_host "${host}" is not an http(s) URL`);
    }
    this.capabilities = { write: this.mode === "connect", versions: false, batch: this.mode === "service_account" ? 0 : 50, binary: this.mode !== "service_account", staging: false };
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const [r] = await this.getMany([k]);
    if (r instanceof Error) throw r;
    return r;
  }

  /** Keys grouped by item: one item fetch serves every field of it. */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const groups = new Map<string, Array<{ i: number; ref: OpKey }>>();
    keys.forEach((k, i) => {
      try {
        const ref = parseOpKey(this.name, k.key, k.options);
        if (this.mode === "service_account") {
          groups.set(`${i}`, [{ i, ref }]);
          return;
        }
        const id = `${ref.vault}\0${ref.item}`;
        const g = groups.get(id) ?? [];
        g.push({ i, ref });
        groups.set(id, g);
      } catch (e) {
        out[i] = e as Error;
      }
    });
    await Promise.all(
      [...groups.values()].map(async (slots) => {
        if (this.mode === "service_account") {
          const { i, ref } = slots[0];
          out[i] = await this.viaSdk(keys[i], ref).catch((e: Error) => e);
          return;
        }
        const first = slots[0].ref;
        let item: ItemShape;
        let vaultId: string;
        try {
          ({ item, vaultId } = await this.fetchItem(first, keys[slots[0].i].key));
        } catch (e) {
          for (const s of slots) out[s.i] = e as Error;
          return;
        }
        for (const s of slots) {
          try {
            const k = keys[s.i];
            const versionId = String(item.version ?? 0);
            this.checkVersion(k, versionId);
            const picked = this.pick(item, s.ref, k.key);
            if (picked.kind === "text") {
              out[s.i] = { value: new Secret(picked.text), versionId };
            } else {
              const bytes = await this.fileBytes(vaultId, item, picked, s.ref, k.key);
              out[s.i] = { value: new Secret(bytes.toString("base64")), versionId, binary: true };
            }
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

  /** Connect only: the field's value replaced (added when missing), or the item created. */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    if (this.mode !== "connect") throw new DsopsError(`store "${this.name}": writes go through a Connect server only (this store uses the ${this.mode === "cli" ? "op CLI" : "service account"})`);
    const ref = parseOpKey(this.name, key);
    if (!ref.field || ref.attribute) throw new DsopsError(`store "${this.name}": key "${key}": a write names one field (op://vault/item/field or op://vault/item/section/field)`);
    const field = ref.field;
    const { FieldType, ItemBuilder, ItemCategory } = require("@1password/connect") as typeof import("@1password/connect");
    const client = this.connectClient();
    const what = `write of "${key}"`;
    const vaultId = await this.connectCall(what, () => this.vaultId(ref.vault), value);
    let existing: import("@1password/connect").FullItem | undefined;
    try {
      existing = (await this.connectCall(what, () => this.itemOf(vaultId, ref.item, ref.vault), value)) as unknown as import("@1password/connect").FullItem;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    let saved: import("@1password/connect").FullItem;
    if (!existing) {
      const b = new ItemBuilder().setCategory(ItemCategory.Password).setTitle(ref.item);
      if (ref.section) b.addSection(ref.section);
      b.addField({ label: field, value: value.reveal(), type: FieldType.Concealed, ...(ref.section ? { sectionName: ref.section } : {}) });
      const built = b.build();
      saved = await this.connectCall(what, () => client.createItem(vaultId, built), value);
    } else {
      const item = existing;
      const target = this.findField(item as ItemShape, ref);
      if (target && target.kind === "file") throw new DsopsError(`store "${this.name}": ${what}: "${field}" is a file; files cannot be written through Connect`);
      if (target && target.kind === "field") {
        (item.fields ?? [])[target.index].value = value.reveal();
      } else {
        let sectionId: string | undefined;
        if (ref.section) {
          const sec = (item.sections ?? []).find((s) => s.label === ref.section || s.id === ref.section);
          sectionId = sec?.id ?? `${ref.section.toLowerCase().replace(/[^a-z0-9]+/g, "_")}_section`;
          if (!sec) item.sections = [...(item.sections ?? []), { id: sectionId, label: ref.section }];
        }
        item.fields = [...(item.fields ?? []), { id: "", label: field, value: value.reveal(), type: FieldType.Concealed, ...(sectionId ? { section: { id: sectionId } } : {}) } as never];
      }
      saved = await this.connectCall(what, () => client.updateItem(vaultId, item), value);
    }
    if (!saved || typeof saved !== "object" || typeof saved.version !== "number") throw new StoreError(`store "${this.name}": ${what}: the Connect server's answer is not an item`);
    return { versionId: String(saved.version) };
  }

  /** The credentials are accepted (and the vault in the settings is visible). */
  async check(): Promise<void> {
    if (this.mode === "connect") {
      const client = this.connectClient();
      if (this.settings.vault) await this.connectCall(`check of vault "${this.settings.vault}"`, () => this.vaultId(this.settings.vault as string));
      else await this.connectCall("listing of vaults", async () => this.shapeCheck(await client.listVaults(), "list"));
      return;
    }
    if (this.mode === "service_account") {
      const c = await this.sdkClient();
      await this.sdkCall("listing of vaults", () => c.vaults.list());
      return;
    }
    await this.op(["whoami", "--format", "json"], "check");
    if (this.settings.vault) await this.op(["vault", "get", this.settings.vault, "--format", "json"], `check of vault "${this.settings.vault}"`);
  }

  async close(): Promise<void> {
    this.connect = undefined;
  }

  private checkVersion(k: StoreKey, versionId: string): void {
    if (k.version === undefined) return;
    const v = k.version.toLowerCase();
    if (v === "current" || v === "latest" || k.version === versionId) return;
    throw new NotFoundError(`store "${this.name}": "${k.key}" has no version "${k.version}" (1Password keeps no readable versions here; the item is at version ${versionId})`);
  }

  /** The field (index) or file an OpKey names in an item, or undefined. */
  private findField(item: ItemShape, ref: OpKey): { kind: "field"; index: number } | { kind: "file"; fileId: string; name: string } | undefined {
    const name = ref.field as string;
    let sectionIds: Set<string> | undefined;
    if (ref.section) {
      const secs = (item.sections ?? []).filter((s) => s.id === ref.section || s.label === ref.section);
      const loose = secs.length ? secs : (item.sections ?? []).filter((s) => (s.label ?? "").toLowerCase() === (ref.section as string).toLowerCase());
      sectionIds = new Set(loose.map((s) => s.id ?? ""));
      if (!sectionIds.size) return undefined;
    }
    const fields = (item.fields ?? []).map((f, index) => ({ f, index })).filter(({ f }) => !sectionIds || sectionIds.has(f.section?.id ?? ""));
    const hit =
      fields.find(({ f }) => f.id === name) ?? fields.find(({ f }) => f.label === name) ?? fields.find(({ f }) => (f.label ?? "").toLowerCase() === name.toLowerCase());
    if (hit) return { kind: "field", index: hit.index };
    const files = (item.files ?? []).filter((f) => !sectionIds || sectionIds.has(f.section?.id ?? ""));
    const file = files.find((f) => f.id === name) ?? files.find((f) => f.name === name);
    if (file?.id) return { kind: "file", fileId: file.id, name: file.name ?? file.id };
    return undefined;
  }

  private pick(item: ItemShape, ref: OpKey, key: string): Picked {
    if (!ref.field) {
      const doc: Record<string, unknown> = {};
      const sectionLabel = new Map((item.sections ?? []).map((s) => [s.id ?? "", s.label || s.id || ""]));
      for (const f of item.fields ?? []) {
        const label = f.label || f.id || "";
        const sec = f.section?.id ? sectionLabel.get(f.section.id) : undefined;
        if (sec) {
          const box = doc[sec];
          if (box === undefined) doc[sec] = { [label]: f.value ?? "" };
          else if (typeof box === "object" && box !== null && !(label in box)) (box as Record<string, string>)[label] = f.value ?? "";
        } else if (!(label in doc)) {
          doc[label] = f.value ?? "";
        }
      }
      return { kind: "text", text: JSON.stringify(doc) };
    }
    let found = this.findField(item, ref);
    // dsops's `Section.field` written as one part.
    if (!found && !ref.section && ref.field.includes(".")) {
      const dot = ref.field.indexOf(".");
      found = this.findField(item, { ...ref, section: ref.field.slice(0, dot), field: ref.field.slice(dot + 1) });
    }
    const where = `"${key}"`;
    if (!found) {
      const inSection = ref.section ? ` in section "${ref.section}"` : "";
      throw new NotFoundError(`store "${this.name}": ${where}: item "${ref.item}" has no field or file "${ref.field}"${inSection}`);
    }
    if (found.kind === "file") {
      if (ref.attribute && ref.attribute !== "value") throw new DsopsError(`store "${this.name}": ${where}: "${ref.field}" is a file; ?attribute=${ref.attribute} applies to fields`);
      return { kind: "file", fileId: found.fileId, name: found.name };
    }
    const f = (item.fields ?? [])[found.index];
    switch (ref.attribute) {
      case "totp":
      case "otp": {
        if ((f.type ?? "").toUpperCase() !== "OTP") throw new DsopsError(`store "${this.name}": ${where}: field "${ref.field}" is not a one-time password field (its type is ${f.type ?? "unknown"})`);
        try {
          return { kind: "text", text: totp(f.value ?? "", this.ctx.clock.now()) };
        } catch (e) {
          throw new DsopsError(`store "${this.name}": ${where}: ${(e as Error).message}`);
        }
      }
      case "id":
        return { kind: "text", text: f.id ?? "" };
      case "type":
        return { kind: "text", text: (f.type ?? "").toLowerCase() };
      case "purpose":
        return { kind: "text", text: (f.purpose ?? "").toLowerCase() };
      default:
        return { kind: "text", text: f.value ?? "" };
    }
  }

  // ---- Connect ----

  private connectHost(): string {
    return (this.settings.connect_host ?? this.ctx.env.OP_CONNECT_HOST ?? "").replace(/\/+$/, "");
  }

  private connectToken(): string {
    const t = this.settings.connect_token ?? this.ctx.env.OP_CONNECT_TOKEN ?? "";
    if (!t) throw new AuthError(`store "${this.name}": no Connect token: set connect_token in its settings or OP_CONNECT_TOKEN`, { hint: "a Connect server's access token (1Password → Developer → Connect servers)" });
    return t;
  }

  private connectClient(): import("@1password/connect").OPConnect {
    if (!this.connect) {
      const { OnePasswordConnect } = require("@1password/connect") as typeof import("@1password/connect");
      this.connect = OnePasswordConnect({ serverURL: this.connectHost(), token: this.connectToken(), keepAlive: false, timeout: this.timeoutMs });
    }
    return this.connect;
  }

  private async vaultId(vault: string): Promise<string> {
    const known = this.vaultIds.get(vault);
    if (known) return known;
    let id: string;
    if (OP_ID.test(vault)) {
      const v = (await this.connectClient().getVaultById(vault)) as { id?: unknown };
      this.shapeCheck(v, "vault");
      id = String(v.id);
    } else {
      const list = (await this.connectClient().listVaultsByTitle(vault)) as unknown[];
      this.shapeCheck(list, "list");
      list.forEach((v) => this.shapeCheck(v, "vault"));
      if (list.length === 0) throw new NotFoundError(`no vault "${vault}" (or the token may not see it)`);
      if (list.length > 1) throw new DsopsError(`${list.length} vaults are titled "${vault}"`, { hint: "use the vault's id in the reference" });
      id = String((list[0] as { id: string }).id);
    }
    this.vaultIds.set(vault, id);
    return id;
  }

  private shapeCheck(x: unknown, kind: "vault" | "item" | "list"): void {
    const ok = kind === "list" ? Array.isArray(x) : x !== null && typeof x === "object" && typeof (x as { id?: unknown }).id === "string";
    if (!ok) throw new MalformedAnswer();
  }

  private async fetchItem(ref: OpKey, key: string): Promise<{ item: ItemShape; vaultId: string }> {
    const what = `read of "${key}"`;
    if (this.mode === "cli") {
      const args = ["item", "get", ref.item, "--vault", ref.vault, "--format", "json"];
      const out = await this.op(args, what);
      let item: ItemShape;
      try {
        item = JSON.parse(out.toString("utf8")) as ItemShape;
      } catch {
        throw new StoreError(`store "${this.name}": ${what}: op printed something that is not JSON`);
      }
      if (!item || typeof item.id !== "string") throw new StoreError(`store "${this.name}": ${what}: op printed no item`);
      return { item, vaultId: ref.vault };
    }
    return this.connectCall(what, async () => {
      const vaultId = await this.vaultId(ref.vault);
      const item = await this.itemOf(vaultId, ref.item, ref.vault);
      if (item.fields !== undefined && !Array.isArray(item.fields)) throw new MalformedAnswer();
      return { item, vaultId };
    });
  }

  /** An item by id, or by its exact title (one item fetch either way). */
  private async itemOf(vaultId: string, item: string, vault: string): Promise<ItemShape> {
    const client = this.connectClient();
    let full: unknown;
    if (OP_ID.test(item)) {
      full = await client.getItemById(vaultId, item);
    } else {
      const list = (await client.listItemsByTitle(vaultId, item)) as unknown[];
      this.shapeCheck(list, "list");
      if (list.length === 0) throw new NotFoundError(`no item "${item}" in vault "${vault}"`);
      if (list.length > 1) throw new DsopsError(`${list.length} items are titled "${item}" in vault "${vault}"`, { hint: "use the item's id in the reference" });
      full = list[0];
    }
    this.shapeCheck(full, "item");
    if ((full as ItemShape).fields !== undefined && !Array.isArray((full as ItemShape).fields)) throw new MalformedAnswer();
    return full as ItemShape;
  }

  private async fileBytes(vaultId: string, item: ItemShape, picked: { fileId: string; name: string }, ref: OpKey, key: string): Promise<Buffer> {
    const what = `read of file "${picked.name}" of "${key}"`;
    if (this.mode === "cli") {
      const sec = ref.section ? `${ref.section}/` : "";
      return this.op(["read", "--no-newline", `op://${ref.vault}/${item.id}/${sec}${picked.name}`], what);
    }
    return this.connectCall(what, async () => {
      const stream = (await this.connectClient().getFileContentStream(vaultId, item.id, picked.fileId)) as Readable;
      if (!stream || typeof (stream as { on?: unknown }).on !== "function") throw new MalformedAnswer();
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
      return Buffer.concat(chunks);
    });
  }

  /**
   * One or more Connect calls; a failure becomes our error naming the store and what was done,
   * never holding the token (or the value being written).
   */
  private async connectCall<T>(what: string, fn: () => Promise<T>, value?: Secret): Promise<T> {
    const token = this.connectToken();
    const prefix = `store "${this.name}": ${what}`;
    const clean = (s: string) => scrub(s, value ? [token, value] : [token]).slice(0, 300);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DsopsError) {
        if (e.message.startsWith(`store "${this.name}"`)) throw e;
        // Raised by this store's own lookups: the same error, with what was being done.
        if (e instanceof NotFoundError) throw new NotFoundError(`${prefix}: ${e.message}`);
        throw new DsopsError(`${prefix}: ${e.message}`, { hint: e.hint });
      }
      if (e instanceof MalformedAnswer) throw new StoreError(`${prefix}: the Connect server's answer is not what the API returns (not JSON, or not an item)`, true);
      const err = e as { status?: unknown; message?: unknown; code?: unknown; response?: { status?: number }; isAxiosError?: boolean };
      if (typeof e === "string") throw new StoreError(`${prefix}: the Connect server answered an error that is not JSON: ${clean(e).slice(0, 120)}`, true);
      const status = typeof err?.status === "number" ? err.status : err?.response?.status;
      const said = typeof err?.message === "string" && err.message ? `: ${clean(err.message)}` : "";
      if (status === undefined && err?.isAxiosError) {
        const code = typeof err.code === "string" ? err.code : "";
        if (code === "ECONNABORTED" || code === "ETIMEDOUT" || /timeout/i.test(String(err.message))) {
          throw new TimeoutError(`${prefix}: no answer from ${this.connectHost()} within ${this.timeoutMs} ms (timeout_ms)`);
        }
        throw new StoreError(`${prefix}: cannot reach the Connect server ${this.connectHost()}: ${clean(code || String(err.message))}`, code === "" || TRANSIENT_CODES.has(code));
      }
      if (status === 401) throw new AuthError(`${prefix}: the Connect token was refused (HTTP 401)${said}`, { hint: "check connect_token (or OP_CONNECT_TOKEN): a token of this Connect server with access to the vault" });
      if (status === 403) throw new AuthError(`${prefix}: the Connect token may not do this (HTTP 403)${said}`, { hint: "the token needs access to the vault (and write access for writes)" });
      if (status === 404) throw new NotFoundError(`${prefix}: not found (HTTP 404)${said}`);
      if (status === 429) throw new StoreError(`${prefix}: throttled (HTTP 429)${said}`, true);
      if (status === 400 && /more than one/i.test(String(err.message))) {
        throw new DsopsError(`${prefix}: more than one item or vault has that title${said}`, { hint: "use the item's (or vault's) id in the reference" });
      }
      if (typeof status === "number") throw new StoreError(`${prefix}: HTTP ${status}${said}`, status >= 500 || status === 408);
      throw new StoreError(`${prefix}: the Connect server's answer could not be read: ${clean(String(err?.message ?? e))}`, true);
    }
  }

  // ---- service account (@1password/sdk) ----

  private sdkClient(): Promise<import("@1password/sdk").Client> {
    if (!this.sdk) {
      const token = this.settings.service_account_token ?? this.ctx.env.OP_SERVICE_ACCOUNT_TOKEN ?? "";
      if (!token) {
        return Promise.reject(
          new AuthError(`store "${this.name}": no service account token: set service_account_token in its settings or OP_SERVICE_ACCOUNT_TOKEN`, { hint: "a 1Password service account token (ops_…)" }),
        );
      }
      if (isSingleExecutable())
        return Promise.reject(
          notInSingleExecutable(`store "${this.name}" (service account mode)`, "@1password/sdk", "loads its WebAssembly core from a file in its package folder; the Connect and op CLI modes work"),
        );
      const { createClient } = require("@1password/sdk") as typeof import("@1password/sdk");
      const version = (require("../../../package.json") as { version: string }).version;
      this.sdk = this.sdkCall("sign-in with the service account", () => createClient({ auth: token, integrationName: "dsops", integrationVersion: version }));
      this.sdk.catch(() => (this.sdk = undefined));
    }
    return this.sdk;
  }

  private async viaSdk(k: StoreKey, ref: OpKey): Promise<SecretVersion> {
    if (!ref.field) throw new DsopsError(`store "${this.name}": "${k.key}": the service-account path reads fields (op://vault/item/field), not whole items`);
    const client = await this.sdkClient();
    const sec = ref.section ? `${ref.section}/` : "";
    const attr = ref.attribute === "otp" ? "totp" : ref.attribute;
    const reference = `op://${ref.vault}/${ref.item}/${sec}${ref.field}${attr && attr !== "value" ? `?attribute=${attr}` : ""}`;
    const text = await this.sdkCall(`read of "${k.key}"`, () => client.secrets.resolve(reference));
    const { contentVersion } = require("./literal") as typeof import("./literal");
    const versionId = contentVersion(text);
    this.checkVersion(k, versionId);
    return { value: new Secret(text), versionId };
  }

  private async sdkCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const prefix = `store "${this.name}": ${what}`;
    const token = this.settings.service_account_token ?? this.ctx.env.OP_SERVICE_ACCOUNT_TOKEN ?? "";
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError(`${prefix}: no answer within ${this.timeoutMs} ms (timeout_ms)`)), this.timeoutMs);
        }),
      ]);
    } catch (e) {
      if (e instanceof DsopsError) throw e;
      const msg = scrub(String((e as Error)?.message ?? e), token ? [token] : []).slice(0, 300);
      if (/auth|token|unauthori[sz]ed|forbidden|signature/i.test(msg)) throw new AuthError(`${prefix}: ${msg}`, { hint: "check service_account_token (or OP_SERVICE_ACCOUNT_TOKEN)" });
      if (/not found|no item|no vault|isn't|could not find/i.test(msg)) throw new NotFoundError(`${prefix}: ${msg}`);
      if (/rate limit|too many requests|429/i.test(msg)) throw new StoreError(`${prefix}: throttled: ${msg}`, true);
      throw new StoreError(`${prefix}: ${msg}`, /network|connect|timeout|temporar/i.test(msg));
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  // ---- the op CLI ----

  /** Run `op` with `args` (no secret among them); stdout, or our error for its failure. */
  private op(args: string[], what: string): Promise<Buffer> {
    const prefix = `store "${this.name}": ${what}`;
    const program = this.settings.op_path ?? "op";
    const full = [...args, ...(this.settings.account ? ["--account", this.settings.account] : [])];
    return new Promise<Buffer>((resolve, reject) => {
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(program, full, { env: { ...this.ctx.env }, stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        reject(new StoreError(`${prefix}: cannot run ${program}: ${(e as Error).message}`));
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, this.timeoutMs);
      child.stdout?.on("data", (c: Buffer) => out.push(c));
      child.stderr?.on("data", (c: Buffer) => err.push(c));
      child.on("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === "ENOENT") {
          reject(new DsopsError(`${prefix}: the 1Password CLI (${program}) is not installed or not on PATH`, { hint: "install it (https://developer.1password.com/docs/cli/get-started/), or set connect_host / service_account_token" }));
        } else reject(new StoreError(`${prefix}: cannot run ${program}: ${e.code ?? e.message}`));
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        if (timedOut) return reject(new TimeoutError(`${prefix}: ${program} gave no answer within ${this.timeoutMs} ms (timeout_ms)`));
        if (code === 0) return resolve(Buffer.concat(out));
        const stderr = Buffer.concat(err).toString("utf8").replace(/\[ERROR\]\s*\S+\s+\S+\s*/g, "").trim().slice(0, 300);
        if (/not (currently )?signed in|sign ?in|session (has )?expired|invalid session|authoriz|unlock/i.test(stderr)) {
          return reject(new AuthError(`${prefix}: ${program} is not signed in: ${stderr}`, { hint: `op signin${this.settings.account ? ` --account ${this.settings.account}` : ""}` }));
        }
        if (/isn't an item|isn't a vault|not found|could not find|no item|doesn't exist|isn't a field|no such/i.test(stderr)) return reject(new NotFoundError(`${prefix}: ${stderr}`));
        if (/rate limit|too many requests/i.test(stderr)) return reject(new StoreError(`${prefix}: throttled: ${stderr}`, true));
        reject(new StoreError(`${prefix}: ${program} failed (exit ${code}): ${stderr}`));
      });
    });
  }
}

class MalformedAnswer extends Error {}
