// Over 400 lines on purpose: one file per store type (the registry's rule); KV v1/v2 reads and writes,
// versions, staging pointers, TLS and every auth method are that one type's surface.
import { readFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import nodeVault from "node-vault";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type VaultSettings = Extract<StoreSettings, { type: "vault" }>;
type VaultClient = nodeVault.client;

/** How the secrets under a mount are read: KV v1, KV v2, or any other engine read as a plain path. */
type MountKind = "kv1" | "kv2" | "plain";

/** A mount, as `sys/internal/ui/mounts` reports it. */
interface Mount {
  /** Mount path with its trailing slash (`secret/`, `team/kv/`). */
  readonly path: string;
  readonly kind: MountKind;
  /** The server did not say (the lookup was refused); the path's first segment was assumed. */
  readonly guessed?: boolean;
}

/** Where a key lives: its mount and its path inside the mount (for KV v2, without `data/`). */
interface Location {
  readonly mount: Mount;
  readonly rel: string;
}

/** KV v2 version metadata, as the API returns it (with a data read or write: the secret's custom_metadata too). */
interface KvMetadata {
  version?: number;
  created_time?: string;
  deletion_time?: string;
  destroyed?: boolean;
  custom_metadata?: Record<string, string> | null;
}

/** A KV v2 secret's metadata (`<mount>/metadata/<path>`). */
interface KvSecretMetadata {
  current_version?: number;
  versions?: Record<string, KvMetadata>;
  custom_metadata?: Record<string, string> | null;
}

/** The custom_metadata fields holding the rotation stage pointers (KV v2 version numbers). */
const STAGE_FIELDS: Readonly<Record<Stage, string>> = { current: "dsops_current", previous: "dsops_previous", pending: "dsops_pending" };
/** `dsops_current` of a secret that has no current version yet (a first rotation is pending). */
const NO_VERSION = "0";

/** Network failures worth retrying. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ECONNABORTED", "EPIPE", "ENOTFOUND", "EAI_AGAIN",
  "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "ERR_NETWORK", "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

/** Where a pod's service-account token is mounted. */
const DEFAULT_K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The store's auth method, with dsops's `k8s` read as `kubernetes`. */
export function authMethodOf(s: VaultSettings): Exclude<VaultSettings["auth_method"], "k8s"> {
  return s.auth_method === "k8s" ? "kubernetes" : s.auth_method;
}

type TlsSettings = { ca_cert?: string; client_cert?: string; client_key?: string; skip_verify?: boolean };

/** The TLS settings, from `tls:` or dsops's flat keys (the schema refuses the two disagreeing). */
export function vaultTls(s: VaultSettings): TlsSettings {
  const t = s.tls ?? {};
  const out: TlsSettings = {};
  const ca = t.ca_cert ?? s.ca_cert;
  const cert = t.client_cert ?? s.client_cert;
  const key = t.client_key ?? s.client_key;
  const skip = t.skip_verify ?? s.tls_skip;
  if (ca !== undefined) out.ca_cert = ca;
  if (cert !== undefined) out.client_cert = cert;
  if (key !== undefined) out.client_key = key;
  if (skip !== undefined) out.skip_verify = skip;
  return out;
}

/**
 * HashiCorp Vault / OpenBao KV secrets, through node-vault.
 *
 * Keys: `secret/myapp/db` (the logical path; for a KV v2 mount the store inserts `data/` after
 * the mount), or the explicit v2 API form `secret/data/myapp/db` (a path that already starts
 * with `data/` after the mount gets no second one; a logical path that itself begins with `data/`
 * must therefore be written `secret/data/data/...`). The mount and its KV version are read once
 * per mount from `sys/internal/ui/mounts/<path>`, unless `kv_version` forces the version.
 * A path on a mount that is not KV (`database/creds/app`, `cubbyhole/x`) is read as a plain path.
 *
 * Values: the secret's data object. Data with exactly one string field `value` reads as that
 * string; any other data reads as its JSON text, so `path#field` extraction works.
 *
 * Versions: KV v2 versions are integers (`?version=3`). KV v1 keeps no versions: its version
 * id is derived from the content (never revealing it), so a changed value shows as a new version.
 *
 * Rotation staging (KV v2 only): the pending value is a new KV version, and the stages are
 * pointers in the secret's `custom_metadata` — `dsops_current`, `dsops_previous`,
 * `dsops_pending` (version numbers; `dsops_current` "0": no current version yet) — written
 * through the metadata endpoint, so a version keeps its number from putPending to promote and
 * promote copies nothing. `dsops_current` is set only while the current version is not the
 * latest one (during a rotation, after a rollback or a discarded rotation); a read without a
 * version (or of "current") follows it, and otherwise reads the latest version as before.
 * Readers outside dsops (`vault kv get`, other clients) read the latest version: they may see
 * the pending value for the duration of a rotation, and a rolled-back value stays invisible to
 * them. dsops readers never see a pending value unless they ask for it. While `dsops_current`
 * is set, a version written by another client is not current for dsops until promoted.
 * Discarding a pending version soft-deletes it (`vault kv undelete` brings it back).
 */
export class VaultStore implements Store, Staging {
  readonly type = "vault" as const;
  readonly capabilities: StoreCapabilities;
  private client?: VaultClient;
  /** The login (AppRole, userpass, ldap, aws, kubernetes) in progress or done, and when its token stops being valid (clock ms). */
  private login?: Promise<void>;
  private loginExpiresAt = Infinity;
  /** Mounts seen so far, longest path first. */
  private readonly mounts: Mount[] = [];
  private readonly mountLookups = new Map<string, Promise<Mount | undefined>>();

  constructor(
    readonly name: string,
    private readonly settings: VaultSettings,
    private readonly ctx: StoreContext,
  ) {
    // A store forced to KV v1 has no versions; otherwise KV v2 mounts have them (and a versioned
    // read of a KV v1 mount fails with a StoreError).
    this.capabilities = { write: true, versions: settings.kv_version !== 1, batch: 0, binary: false, staging: settings.kv_version !== 1 };
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const loc = await this.locate(k.key);
    if (loc.mount.kind === "kv2") {
      const stage = stageName(k.version);
      if (k.version === undefined || stage === "current") return this.readCurrent(loc, k);
      if (stage) {
        const n = (await this.stagesAt(loc, k.key))[stage];
        if (n === undefined) throw this.notFound(k.key, k.version);
        return this.readKv2(loc, k.key, Number(n), k.version);
      }
      return this.readKv2(loc, k.key, this.parseVersion(k), k.version);
    }
    const body = await this.call((c) => c.read(this.plainPath(loc)), k.key, "read");
    const data = body?.data as unknown;
    if (data === null || data === undefined) throw this.notFound(k.key);
    const value = renderData(data);
    const versionId = contentVersion(value);
    if (k.version !== undefined && k.version !== "current" && k.version !== versionId) {
      throw new StoreError(
        `store "${this.name}": secret "${k.key}" is on mount "${loc.mount.path}", which keeps no versions; version "${k.version}" cannot be read`,
        false,
        { hint: "KV v1 (and non-KV) mounts hold only the current value: drop the version from the reference" },
      );
    }
    return { value: new Secret(value), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const loc = await this.locate(k.key);
    if (loc.mount.kind !== "kv2") {
      // KV v1 has no metadata: the value must be read, and only its derived id leaves here.
      const { versionId } = await this.get(k);
      return { versionId };
    }
    const stage = k.version === undefined ? "current" : stageName(k.version);
    const version = stage ? undefined : this.parseVersion(k);
    let md: KvSecretMetadata | undefined;
    try {
      md = await this.metadata(loc, k.key);
    } catch (e) {
      // Policies often grant `data/*` but not `metadata/*`: fall back to reading the version.
      if (!(e instanceof AuthError)) throw e;
      const { versionId, updatedAt } = await this.get(k);
      return { versionId, ...(updatedAt ? { updatedAt } : {}) };
    }
    if (!md) throw this.notFound(k.key, k.version);
    const n = stage ? stagesFrom(md)[stage] : String(version);
    const meta = n ? md.versions?.[n] : undefined;
    if (!n || !meta || isGone(meta)) throw this.notFound(k.key, k.version);
    return { versionId: n, ...(meta.created_time ? { updatedAt: meta.created_time } : {}) };
  }

  /** The current version: the one `dsops_current` names when set, else the latest. */
  private async readCurrent(loc: Location, k: StoreKey): Promise<SecretVersion> {
    const client = await this.ready();
    let body: { data?: { data?: unknown; metadata?: KvMetadata } } | undefined;
    let meta: KvMetadata | undefined;
    try {
      body = await client.read(this.kv2Path(loc, "data"));
      meta = body?.data?.metadata;
    } catch (e) {
      if (statusOf(e) !== 404) throw this.mapError(e, k.key, "read");
      // The latest version is deleted (a discarded pending one) or the secret is missing: the
      // 404 answer still carries the version's metadata (never a value) with the pointers.
      const m = (e as { response?: { body?: { data?: { metadata?: unknown } | null } } }).response?.body?.data?.metadata;
      meta = m && typeof m === "object" ? (m as KvMetadata) : undefined;
    }
    const pin = meta?.custom_metadata?.[STAGE_FIELDS.current];
    if (pin !== undefined && pin !== String(meta?.version)) {
      if (!/^[1-9]\d*$/.test(pin)) throw new NotFoundError(`store "${this.name}": secret "${k.key}" has no current version`);
      return this.readKv2(loc, k.key, Number(pin), k.version);
    }
    const data = body?.data?.data;
    if (!meta || data === null || data === undefined || isGone(meta)) throw this.notFound(k.key, k.version);
    return { value: new Secret(renderData(data)), versionId: String(meta.version ?? ""), ...(meta.created_time ? { updatedAt: meta.created_time } : {}) };
  }

  /** One KV v2 version by number; NotFoundError (naming `label`) when missing, deleted or destroyed. */
  private async readKv2(loc: Location, key: string, version: number, label: string | undefined): Promise<SecretVersion> {
    const body = await this.call((c) => c.read(`${this.kv2Path(loc, "data")}?version=${version}`), key, "read").catch((e: unknown) => {
      throw e instanceof NotFoundError ? this.notFound(key, label) : e;
    });
    const data = body?.data?.data as unknown;
    const meta = (body?.data?.metadata ?? {}) as KvMetadata;
    if (data === null || data === undefined || isGone(meta)) throw this.notFound(key, label);
    return {
      value: new Secret(renderData(data)),
      versionId: String(meta.version ?? version),
      ...(meta.created_time ? { updatedAt: meta.created_time } : {}),
    };
  }

  /** A KV v2 secret's metadata; undefined when the secret does not exist. */
  private async metadata(loc: Location, key: string): Promise<KvSecretMetadata | undefined> {
    try {
      const body = await this.call((c) => c.read(this.kv2Path(loc, "metadata")), key, "read the metadata of");
      return (body?.data ?? {}) as KvSecretMetadata;
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  /** The stages of a secret; without access to its metadata, from the pointers a data read carries. */
  private async stagesAt(loc: Location, key: string): Promise<Partial<Record<Stage, string>>> {
    try {
      const md = await this.metadata(loc, key);
      return md ? stagesFrom(md) : {};
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
    }
    const client = await this.ready();
    let meta: KvMetadata | undefined;
    try {
      meta = ((await client.read(this.kv2Path(loc, "data"))) as { data?: { metadata?: KvMetadata } })?.data?.metadata;
    } catch (e) {
      if (statusOf(e) !== 404) throw this.mapError(e, key, "read");
      meta = (e as { response?: { body?: { data?: { metadata?: KvMetadata } | null } } }).response?.body?.data?.metadata;
    }
    if (!meta) return {};
    const cm = meta.custom_metadata ?? {};
    const out: Partial<Record<Stage, string>> = {};
    const cur = cm[STAGE_FIELDS.current] ?? (isGone(meta) ? undefined : String(meta.version));
    if (cur !== undefined && cur !== NO_VERSION) out.current = cur;
    for (const st of ["previous", "pending"] as const) if (cm[STAGE_FIELDS[st]]) out[st] = cm[STAGE_FIELDS[st]];
    return out;
  }

  /** Replace the dsops stage pointers of a secret's custom_metadata, keeping its other fields. */
  private async writePointers(loc: Location, key: string, md: KvSecretMetadata | undefined, pointers: Partial<Record<Stage, string>>): Promise<void> {
    const custom: Record<string, string> = {};
    for (const [f, v] of Object.entries(md?.custom_metadata ?? {})) if (!Object.values(STAGE_FIELDS).includes(f)) custom[f] = v;
    for (const st of ["current", "previous", "pending"] as const) if (pointers[st] !== undefined) custom[STAGE_FIELDS[st]] = pointers[st] as string;
    await this.call((c) => c.write(this.kv2Path(loc, "metadata"), { custom_metadata: custom }), key, "write the metadata of");
  }

  /** The stage pointers of `md` as stored (current only when set), to change and write back. */
  private pointersOf(md: KvSecretMetadata | undefined): Partial<Record<Stage, string>> {
    const cm = md?.custom_metadata ?? {};
    const out: Partial<Record<Stage, string>> = {};
    for (const st of ["current", "previous", "pending"] as const) if (cm[STAGE_FIELDS[st]] !== undefined) out[st] = cm[STAGE_FIELDS[st]];
    return out;
  }

  private async kv2Location(key: string, action: string): Promise<Location> {
    const loc = await this.locate(key);
    if (loc.mount.kind !== "kv2") {
      throw new StoreError(`store "${this.name}": cannot ${action} "${key}": mount "${loc.mount.path}" is not a KV v2 mount, which rotation stages need`, false, {
        hint: "keep rotated secrets on a KV v2 mount",
      });
    }
    return loc;
  }

  /**
   * A new KV version, pointed to by `dsops_pending`. `dsops_current` is set to the current
   * version first, so readers keep getting it once the new version is the latest. A pending
   * version already there is soft-deleted.
   */
  async putPending(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const loc = await this.kv2Location(key, "stage a version of");
    let md = await this.metadata(loc, key);
    const before = md ? stagesFrom(md) : {};
    const ptr = this.pointersOf(md);
    if (ptr.current === undefined) {
      ptr.current = before.current ?? NO_VERSION;
      await this.writePointers(loc, key, md, ptr);
    }
    const body = await this.call((c) => c.write(this.kv2Path(loc, "data"), { data: toData(value.reveal()) }), key, "write");
    const meta = (body?.data ?? {}) as KvMetadata;
    if (meta.version === undefined) throw new StoreError(`store "${this.name}": writing "${key}" returned no version`);
    const v = String(meta.version);
    md = await this.metadata(loc, key);
    const now = this.pointersOf(md);
    const old = now.pending;
    now.pending = v;
    await this.writePointers(loc, key, md, now);
    const st = md ? stagesFrom(md) : {};
    if (old !== undefined && old !== v && old !== st.current && old !== st.previous) await this.softDelete(loc, key, old);
    return { versionId: v, ...(meta.created_time ? { updatedAt: meta.created_time } : {}) };
  }

  /**
   * Point `dsops_current` at `versionId` (cleared when it is the latest version) and
   * `dsops_previous` at the version current until now; clear `dsops_pending` when it named
   * `versionId`. One metadata write; promoting the current version changes nothing else.
   */
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const loc = await this.kv2Location(key, "promote a version of");
    const md = await this.metadata(loc, key);
    if (!md) throw this.notFound(key);
    const meta = /^[1-9]\d*$/.test(versionId) ? md.versions?.[versionId] : undefined;
    if (!meta || isGone(meta)) throw this.notFound(key, versionId);
    const st = stagesFrom(md);
    const ptr = this.pointersOf(md);
    let changed = false;
    if (st.current !== versionId) {
      if (st.current !== undefined) ptr.previous = st.current;
      else if (ptr.previous === versionId) delete ptr.previous;
      changed = true;
    }
    const pin = versionId === String(md.current_version) ? undefined : versionId;
    if (ptr.current !== pin) {
      if (pin === undefined) delete ptr.current;
      else ptr.current = pin;
      changed = true;
    }
    if (ptr.pending === versionId) {
      delete ptr.pending;
      changed = true;
    }
    if (changed) await this.writePointers(loc, key, md, ptr);
    return { versionId, ...(meta.created_time ? { updatedAt: meta.created_time } : {}) };
  }

  /** Clear `dsops_pending` (when it names `versionId`, if given), then soft-delete that version. */
  async discardPending(key: string, versionId?: string): Promise<void> {
    const loc = await this.kv2Location(key, "discard the pending version of");
    const md = await this.metadata(loc, key);
    const ptr = this.pointersOf(md);
    const pending = ptr.pending;
    if (!md || pending === undefined || (versionId !== undefined && pending !== versionId)) return;
    delete ptr.pending;
    await this.writePointers(loc, key, md, ptr);
    const st = stagesFrom(md);
    if (pending !== st.current && pending !== st.previous) await this.softDelete(loc, key, pending);
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const loc = await this.kv2Location(key, "read the stages of");
    const md = await this.metadata(loc, key);
    return md ? stagesFrom(md) : {};
  }

  private async softDelete(loc: Location, key: string, version: string): Promise<void> {
    if (!/^[1-9]\d*$/.test(version)) return;
    try {
      await this.call((c) => c.write(`${encodePath(loc.mount.path)}delete/${encodePath(loc.rel)}`, { versions: [Number(version)] }), key, "delete a version of");
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }

  /**
   * Write a new version. A value that is a JSON object is written as the secret's fields (so
   * `vault kv get -field=password` and `path#password` both see them); any other value is
   * written as the single field `value`. Reading either back gives the same text, except that
   * a JSON object comes back re-serialized (compact, fields in the same order).
   */
  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const loc = await this.locate(key);
    const data = toData(value.reveal());
    if (loc.mount.kind === "kv2") {
      const body = await this.call((c) => c.write(this.kv2Path(loc, "data"), { data }), key, "write");
      const meta = (body?.data ?? {}) as KvMetadata;
      if (meta.version === undefined) throw new StoreError(`store "${this.name}": writing "${key}" returned no version`);
      // A secret with rotation stages: the new (latest) version is current, the old current previous.
      const cm = meta.custom_metadata ?? {};
      if (Object.values(STAGE_FIELDS).some((f) => cm[f] !== undefined)) await this.promoteWritten(loc, key, String(meta.version));
      return { versionId: String(meta.version), ...(meta.created_time ? { updatedAt: meta.created_time } : {}) };
    }
    if (loc.mount.kind === "plain" && !loc.mount.guessed) {
      throw new StoreError(`store "${this.name}": cannot write "${key}": mount "${loc.mount.path}" is not a KV mount`);
    }
    await this.call((c) => c.write(this.plainPath(loc), data), key, "write");
    return { versionId: contentVersion(renderData(data)) };
  }

  /** After `put` on a staged secret: `dsops_previous` is the version current before `v`, and `dsops_current` is cleared. */
  private async promoteWritten(loc: Location, key: string, v: string): Promise<void> {
    const md = await this.metadata(loc, key);
    if (!md) return;
    const ptr = this.pointersOf(md);
    let before = ptr.current;
    if (before === undefined) {
      // Current was the latest version before this write: the newest live one below `v`.
      const older = Object.keys(md.versions ?? {})
        .map(Number)
        .filter((n) => n < Number(v) && !isGone(md.versions?.[String(n)] ?? {}))
        .sort((a, b) => b - a);
      before = older.length ? String(older[0]) : undefined;
    }
    if (before !== undefined && before !== NO_VERSION && before !== v) ptr.previous = before;
    delete ptr.current;
    await this.writePointers(loc, key, md, ptr);
  }

  /** Token lookup-self: the server answers and the token (or the AppRole login) is valid. */
  async check(): Promise<void> {
    await this.call((c) => c.tokenLookupSelf(), "auth/token/lookup-self", "look up the token with");
  }

  async close(): Promise<void> {
    if (this.client) this.client.token = "";
    this.client = undefined;
    this.login = undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Paths and mounts

  private kv2Path(loc: Location, kind: "data" | "metadata"): string {
    return `${encodePath(loc.mount.path)}${kind}/${encodePath(loc.rel)}`;
  }

  private plainPath(loc: Location): string {
    return `${encodePath(loc.mount.path)}${encodePath(loc.rel)}`;
  }

  private parseVersion(k: StoreKey): number {
    const v = k.version as string;
    if (!/^[1-9]\d*$/.test(v)) {
      throw new StoreError(`store "${this.name}": secret "${k.key}": KV v2 versions are positive integers, not "${v}"`);
    }
    return Number(v);
  }

  /** The mount and in-mount path of a key. */
  private async locate(key: string): Promise<Location> {
    const path = key.replace(/^\/+|\/+$/g, "");
    if (path === "" || path.split("/").some((s) => s === "" || s === "." || s === "..")) {
      throw new StoreError(`store "${this.name}": "${key}" is not a valid Vault path`);
    }
    const mount = this.knownMount(path) ?? (await this.lookupMount(path)) ?? this.guessMount(path);
    let rel = path.slice(mount.path.length);
    if (mount.kind === "kv2" && rel.startsWith("data/")) rel = rel.slice("data/".length);
    if (rel === "") throw new StoreError(`store "${this.name}": "${key}" names the mount "${mount.path}", not a secret in it`);
    return { mount, rel };
  }

  private knownMount(path: string): Mount | undefined {
    return this.mounts.find((m) => (path + "/").startsWith(m.path));
  }

  /**
   * Ask the server which mount holds `path` (cached per mount). Concurrent first reads under one
   * mount share one lookup: a caller waits for lookups in flight, then checks the cache again.
   * Undefined when the token may not ask.
   */
  private async lookupMount(path: string): Promise<Mount | undefined> {
    let pending = this.mountLookups.get(path);
    if (pending) return pending;
    if (this.mountLookups.size > 0) {
      await Promise.allSettled(this.mountLookups.values());
      const known = this.knownMount(path);
      if (known) return known;
      pending = this.mountLookups.get(path);
      if (pending) return pending;
    }
    pending = this.fetchMount(path).finally(() => this.mountLookups.delete(path));
    this.mountLookups.set(path, pending);
    return pending;
  }

  private async fetchMount(path: string): Promise<Mount | undefined> {
    let body: { data?: { path?: string; type?: string; options?: { version?: string } | null } };
    await this.ready(); // a failed login is reported as such, not taken for a lookup refusal
    try {
      body = await this.call((c) => c.read(`sys/internal/ui/mounts/${encodePath(path)}`), path, "look up the mount of");
    } catch (e) {
      // 403: no such mount, or the token's policies do not cover the lookup. Fall back to
      // `guessMount`; the read itself then reports not found or permission denied.
      if (e instanceof AuthError) return undefined;
      throw e;
    }
    const d = body?.data;
    if (!d?.path) return undefined;
    const forced = this.settings.kv_version;
    const kind: MountKind = forced ? (forced === 2 ? "kv2" : "kv1") : d.type === "kv" ? (d.options?.version === "2" ? "kv2" : "kv1") : "plain";
    const mount: Mount = { path: d.path.endsWith("/") ? d.path : `${d.path}/`, kind };
    if (!this.knownMount(mount.path)) {
      this.mounts.push(mount);
      this.mounts.sort((a, b) => b.path.length - a.path.length);
    }
    return mount;
  }

  /**
   * When the mount cannot be looked up: the first segment, with the forced KV version or as a
   * plain path (not cached). The server's answer to the read or write then tells the caller
   * whether the path is missing or forbidden.
   */
  private guessMount(path: string): Mount {
    const first = path.split("/")[0];
    const forced = this.settings.kv_version;
    return { path: `${first}/`, kind: forced === 2 ? "kv2" : forced === 1 ? "kv1" : "plain", guessed: true };
  }

  // ---------------------------------------------------------------------------------------
  // Client, authentication, errors

  private makeClient(): VaultClient {
    const tls = vaultTls(this.settings);
    const file = (field: string, p: string | undefined): Buffer | undefined => {
      if (p === undefined) return undefined;
      const full = resolvePath(this.ctx.configDir, p);
      try {
        return readFileSync(full);
      } catch (e) {
        throw new StoreError(`store "${this.name}": cannot read tls.${field} ${full}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      }
    };
    const ca = file("ca_cert", tls.ca_cert);
    const cert = file("client_cert", tls.client_cert);
    const key = file("client_key", tls.client_key);
    const client = nodeVault({
      endpoint: this.settings.address,
      // node-vault maps these former request-library options onto an https.Agent. strictSSL is
      // always given so that VAULT_SKIP_VERIFY in the process environment cannot turn checks off.
      requestOptions: {
        strictSSL: tls.skip_verify !== true,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        timeout: this.settings.timeout_ms ?? 30000,
      },
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX of process.env;
    // this store reads its context's environment instead, so set all three explicitly.
    client.token = this.settings.auth_method === "token" ? (this.settings.token ?? this.ctx.env.VAULT_TOKEN ?? "") : "";
    (client as unknown as { namespace: string }).namespace = this.settings.namespace ?? this.ctx.env.VAULT_NAMESPACE ?? "";
    (client as unknown as { pathPrefix: string }).pathPrefix = "";
    return client;
  }

  /** The client, logged in. */
  private async ready(): Promise<VaultClient> {
    this.client ??= this.makeClient();
    const client = this.client;
    if (this.settings.auth_method !== "token") {
      if (this.login && this.ctx.clock.now() >= this.loginExpiresAt) this.login = undefined;
      this.login ??= this.methodLogin(client).catch((e: unknown) => {
        this.login = undefined;
        throw e;
      });
      await this.login;
    } else if (!client.token) {
      throw new AuthError(`store "${this.name}": no Vault token`, { hint: "set `token` in the store settings or VAULT_TOKEN in the environment" });
    }
    return client;
  }

  /**
   * Log in with the store's auth method and keep the client token. Every refusal is an
   * AuthError naming the store, the method and the mount; no credential is ever part of it.
   */
  private async methodLogin(client: VaultClient): Promise<void> {
    const method = authMethodOf(this.settings);
    if (method === "token") return;
    const { path, body, hint } = await this.loginRequest(method);
    const mount = path.slice("auth/".length, path.lastIndexOf("/login"));
    const label = `${method === "approle" ? "AppRole" : method} login at auth/${mount}`;
    let res: { auth?: { client_token?: string; lease_duration?: number } };
    try {
      res = await client.write(path, body);
    } catch (e) {
      const status = statusOf(e);
      // Vault answers wrong credentials with 400 (approle, userpass, ldap, aws) or 403.
      if (status === 400 || status === 401) throw new AuthError(`store "${this.name}": ${label} refused (HTTP ${status})`, { hint });
      // A login at a path where no auth method is mounted is also answered 403.
      if (status === 403) {
        throw new AuthError(`store "${this.name}": ${label} refused (HTTP 403)`, {
          hint: `${hint}; and that a ${method} auth method is enabled at auth/${mount} (else set auth_mount)`,
        });
      }
      if (status === 404 || status === 405) {
        throw new AuthError(`store "${this.name}": ${label}: no such auth method is enabled there (HTTP ${status})`, {
          hint: `enable it (vault auth enable -path=${mount} ${method}) or set auth_mount to the path it is mounted at`,
        });
      }
      throw this.mapError(e, `auth/${mount}/login`, "log in at");
    }
    const token = res?.auth?.client_token;
    if (!token) throw new AuthError(`store "${this.name}": ${label} returned no token`, { hint });
    client.token = token;
    const ttl = res.auth?.lease_duration ?? 0;
    // Log in again shortly before the token's lease runs out.
    this.loginExpiresAt = ttl > 0 ? this.ctx.clock.now() + ttl * 900 : Infinity;
  }

  /** The login path, its body and what to check when it is refused, for the store's auth method. */
  private async loginRequest(method: Exclude<VaultSettings["auth_method"], "token" | "k8s">): Promise<{ path: string; body: Record<string, unknown>; hint: string }> {
    const s = this.settings;
    const missing = (field: string) =>
      new AuthError(`store "${this.name}": auth_method ${method} needs ${field}`, { hint: `set ${field} in the store settings` });
    const mountOf = (fallback: string) => encodePath((s.auth_mount ?? fallback).replace(/^\/+|\/+$/g, ""));
    switch (method) {
      case "approle": {
        if (!s.role_id) throw missing("role_id");
        return {
          path: `auth/${encodePath(s.approle_mount.replace(/^\/+|\/+$/g, ""))}/login`,
          body: { role_id: s.role_id, ...(s.secret_id ? { secret_id: s.secret_id } : {}) },
          hint: "check role_id and secret_id",
        };
      }
      case "userpass":
      case "ldap": {
        const user = method === "userpass" ? s.userpass_username : s.ldap_username;
        const password = method === "userpass" ? s.userpass_password : s.ldap_password;
        if (!user) throw missing(`${method}_username`);
        if (!password) throw missing(`${method}_password`);
        return {
          path: `auth/${mountOf(method)}/login/${encodeURIComponent(user)}`,
          body: { password },
          hint:
            method === "userpass"
              ? `check userpass_username ("${user}") and userpass_password, and that the user exists at auth/${s.auth_mount ?? "userpass"}`
              : `check ldap_username ("${user}") and ldap_password, and the LDAP server settings at auth/${s.auth_mount ?? "ldap"}/config (url, userdn, binddn)`,
        };
      }
      case "aws": {
        if (!s.aws_role) throw missing("aws_role");
        return {
          path: `auth/${mountOf("aws")}/login`,
          body: { role: s.aws_role, ...(await this.signedCallerIdentity()) },
          hint: `check that role "${s.aws_role}" exists at auth/${s.auth_mount ?? "aws"} and binds the IAM principal of this process's AWS credentials (bound_iam_principal_arn), and the server's sts_endpoint`,
        };
      }
      case "kubernetes": {
        if (!s.k8s_role) throw missing("k8s_role");
        const jwtPath = resolvePath(this.ctx.configDir, s.k8s_token_path ?? DEFAULT_K8S_TOKEN_PATH);
        let jwt: string;
        try {
          jwt = readFileSync(jwtPath, "utf8").trim();
        } catch (e) {
          throw new AuthError(`store "${this.name}": kubernetes login: cannot read the service-account token ${jwtPath}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, {
            hint: "run inside a pod with a service account, or set k8s_token_path to a file holding the JWT",
          });
        }
        return {
          path: `auth/${mountOf("kubernetes")}/login`,
          body: { role: s.k8s_role, jwt },
          hint: `check that role "${s.k8s_role}" exists at auth/${s.auth_mount ?? "kubernetes"} and binds this service account and namespace, and that the server's kubernetes_host accepts the token (TokenReview)`,
        };
      }
    }
  }

  /**
   * The aws (IAM) auth method's proof of identity: an sts:GetCallerIdentity request signed with
   * this process's AWS credentials (the context's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else
   * the SDK's default chain). Vault sends it to STS itself; the request is never sent from here.
   */
  private async signedCallerIdentity(): Promise<Record<string, string>> {
    const s = this.settings;
    const env = this.ctx.env;
    const region = s.aws_region || env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
    const { STSClient } = await import("@aws-sdk/client-sts");
    const { SignatureV4 } = await import("@smithy/signature-v4");
    const keys =
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
        : undefined;
    const sts = new STSClient({ region, ...(keys ? { credentials: keys } : {}) });
    let credentials;
    try {
      credentials = await sts.config.credentials();
    } catch (e) {
      throw new AuthError(`store "${this.name}": aws login: no AWS credentials (${e instanceof Error ? e.name : "error"})`, {
        hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or container role",
      });
    } finally {
      sts.destroy();
    }
    const body = "Action=GetCallerIdentity&Version=2011-06-15";
    const headers: Record<string, string> = {
      host: "sts.amazonaws.com",
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      ...(s.aws_header_value ? { "x-vault-aws-iam-server-id": s.aws_header_value } : {}),
    };
    const signer = new SignatureV4({ service: "sts", region, credentials, sha256: sts.config.sha256, applyChecksum: false });
    const signed = await signer.sign({ method: "POST", protocol: "https:", hostname: "sts.amazonaws.com", path: "/", query: {}, headers, body });
    const b64 = (x: string) => Buffer.from(x, "utf8").toString("base64");
    const out: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(signed.headers)) out[k] = [String(v)];
    return {
      iam_http_request_method: "POST",
      iam_request_url: b64("https://sts.amazonaws.com/"),
      iam_request_body: b64(body),
      iam_request_headers: b64(JSON.stringify(out)),
    };
  }

  /** Run one API call and map its failure; `what` and `action` only describe it in messages. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-vault's client answers untyped JSON; each caller reads the fields it needs
  private async call<T = any>(op: (c: VaultClient) => Promise<T>, what: string, action: string): Promise<T> {
    const client = await this.ready();
    try {
      return await op(client);
    } catch (e) {
      throw this.mapError(e, what, action);
    }
  }

  private notFound(key: string, version?: string): NotFoundError {
    return new NotFoundError(
      version === undefined
        ? `store "${this.name}": secret "${key}" not found`
        : `store "${this.name}": secret "${key}" version ${version} not found (missing, deleted or destroyed)`,
    );
  }

  /**
   * node-vault's errors carry the response body and axios errors carry the request (token
   * header, written data): none of them is kept; messages are built from status and path only.
   */
  private mapError(e: unknown, what: string, action: string): DsopsError {
    if (e instanceof DsopsError) return e;
    const prefix = `store "${this.name}"`;
    const status = statusOf(e);
    if (status !== undefined) {
      if (status === 404) return new NotFoundError(`${prefix}: secret "${what}" not found`);
      if (status === 401 || status === 403) {
        return new AuthError(`${prefix}: permission denied to ${action} "${what}" (HTTP ${status})`, {
          hint: "check the token's policies (and the namespace); a token that cannot read sys/internal/ui/mounts needs kv_version set",
        });
      }
      const retryable = status === 429 || status === 412 || status >= 500;
      return new StoreError(`${prefix}: cannot ${action} "${what}": HTTP ${status}`, retryable);
    }
    const code = typeof (e as { code?: unknown })?.code === "string" ? ((e as { code: string }).code) : undefined;
    if (code && TRANSIENT_CODES.has(code)) {
      return new StoreError(`${prefix}: cannot reach ${this.settings.address} to ${action} "${what}": ${code}`, true);
    }
    if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/.test(code)) {
      return new StoreError(`${prefix}: TLS failure talking to ${this.settings.address}: ${code}`, false, {
        hint: "set tls.ca_cert to the CA that signed the server's certificate (or tls.skip_verify for a test server)",
      });
    }
    return new StoreError(`${prefix}: cannot ${action} "${what}": ${code ?? (e instanceof Error ? e.name : "unknown error")}`);
  }
}

/** The HTTP status of a node-vault ApiResponseError. */
function statusOf(e: unknown): number | undefined {
  const s = (e as { response?: { statusCode?: unknown } })?.response?.statusCode;
  return typeof s === "number" ? s : undefined;
}

/** A stage name used as a version. */
function stageName(version: string | undefined): Stage | undefined {
  return version === "current" || version === "previous" || version === "pending" ? version : undefined;
}

/** The stages of a KV v2 secret: its pointers, else the latest version as current; versions gone are left out. */
function stagesFrom(md: KvSecretMetadata): Partial<Record<Stage, string>> {
  const cm = md.custom_metadata ?? {};
  const alive = (n: string | undefined): n is string => n !== undefined && n !== NO_VERSION && !!md.versions?.[n] && !isGone(md.versions[n]);
  const out: Partial<Record<Stage, string>> = {};
  const current = cm[STAGE_FIELDS.current] ?? (md.current_version ? String(md.current_version) : undefined);
  if (alive(current)) out.current = current;
  if (alive(cm[STAGE_FIELDS.previous])) out.previous = cm[STAGE_FIELDS.previous];
  if (alive(cm[STAGE_FIELDS.pending])) out.pending = cm[STAGE_FIELDS.pending];
  return out;
}

function isGone(meta: KvMetadata): boolean {
  return !!meta.deletion_time || meta.destroyed === true;
}

/** Data with the single string field `value` is that string; anything else is its JSON text. */
function renderData(data: unknown): string {
  if (data && typeof data === "object" && !Array.isArray(data)) {
    const keys = Object.keys(data);
    const v = (data as Record<string, unknown>).value;
    if (keys.length === 1 && keys[0] === "value" && typeof v === "string") return v;
  }
  return JSON.stringify(data);
}

/** What `put` writes: a JSON object as the secret's fields, anything else as `{value}`. */
function toData(value: string): Record<string, unknown> {
  const t = value.trimStart();
  if (t.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // not JSON: stored as text
    }
  }
  return { value };
}

/** Percent-encode each segment of a path, keeping the slashes. */
function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}
