// Over 400 lines on purpose: one file per store type (the registry's rule); the embedded store's
// format, encryption, integrity (HMAC, key check), versions, staging and locked writes are one unit.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import * as z from "zod";
import { DsopsError, NotFoundError, StoreError } from "../core/errors";
import { atomicTempPattern, writeFileAtomic } from "../core/fsutil";
import { LockBusyError, LockFile, whoAmI } from "../core/lock";
import { parseDuration } from "../core/duration";
import { Secret } from "../core/secret";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/** Files written before the key check and the integrity code existed; read, and upgraded on the next write. */
const FORMAT_1 = "dsops-file-store/1";
const FORMAT = "dsops-file-store/2";

/** One version. Names and metadata are plain; the value is AES-256-GCM. */
const versionSchema = z.object({
  id: z.string().min(1),
  createdAt: z.string(),
  description: z.string().optional(),
  iv: z.string().min(1),
  tag: z.string().min(1),
  data: z.string(),
  /** 2: written by format 2, whose associated data names the format, so a file rewritten as format 1 cannot serve it. */
  aad: z.literal(2).optional(),
});

/** One secret. `previous` and `pending` (rotation stages) are absent in files written before rotation existed. */
const secretSchema = z.object({
  current: z.string(),
  previous: z.string().optional(),
  pending: z.string().optional(),
  versions: z.array(versionSchema),
});

const schemas = {
  [FORMAT_1]: z.object({ format: z.literal(FORMAT_1), salt: z.string().min(1), secrets: z.record(z.string(), secretSchema) }),
  [FORMAT]: z.object({
    format: z.literal(FORMAT),
    /** Salt for deriving the key from DSOPS_FILE_KEY (a passphrase), and of the check and index keys. */
    salt: z.string().min(1),
    /** Key check value: a key that does not reproduce it is refused before anything is read or written. */
    check: z.string().min(1),
    secrets: z.record(z.string(), secretSchema),
    /** HMAC-SHA256 over everything above (stage pointers, versions, metadata): an edit is refused. */
    mac: z.string().min(1),
  }),
};

type StoredVersion = z.infer<typeof versionSchema>;
type StoredSecret = z.infer<typeof secretSchema>;

/** The file as read (or a new, empty store when `exists` is false). */
interface FileData {
  format: typeof FORMAT_1 | typeof FORMAT;
  salt: string;
  check?: string;
  secrets: Record<string, StoredSecret>;
  mac?: string;
  exists: boolean;
}

const STAGES = ["current", "previous", "pending"] as const;

/**
 * The embedded default store: an encrypted, versioned, writable file. The key comes from
 * `DSOPS_FILE_KEY` (a passphrase, stretched with scrypt) or from a key file created with mode
 * 0600 beside the store (`<path>.key`, 32 random bytes). The file carries a key check value
 * (a wrong key is refused before anything is written) and an HMAC over its index (stage
 * pointers, versions, metadata), so an edit is refused rather than served. The file's
 * structure is checked on every read; a damaged file is reported, never written over. Writes
 * are atomic and serialized by the engine's lock (`<path>.lock`), so concurrent writers never
 * lose a version.
 */
export class FileStore implements Store, Staging {
  readonly type = "file" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 1000, binary: false, staging: true };
  readonly path: string;
  private readonly keyPath: string;
  private keyCache?: { salt: string; key: Buffer };
  private warned = false;

  constructor(
    readonly name: string,
    settings: Extract<StoreSettings, { type: "file" }>,
    private readonly ctx: StoreContext,
  ) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.configDir, p));
    this.path = abs(settings.path);
    this.keyPath = settings.key_file ? abs(settings.key_file) : `${this.path}.key`;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const { data, wrongKey } = this.readable();
    return this.readVersion(data, k, wrongKey);
  }

  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const { data, wrongKey } = this.readable();
    return keys.map((k) => {
      try {
        return this.readVersion(data, k, wrongKey);
      } catch (e) {
        return e as Error;
      }
    });
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const v = this.findVersion(this.open(), k);
    return { versionId: v.id, updatedAt: v.createdAt };
  }

  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    return this.addVersion(key, value, options, (entry, id) => {
      if (entry.current) entry.previous = entry.current;
      entry.current = id;
    });
  }

  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    return this.addVersion(key, value, options, (entry, id) => {
      entry.pending = id;
    });
  }

  /** Append an encrypted version under the lock, then let `stage` place it (current or pending). */
  private addVersion(key: string, value: Secret, options: PutOptions | undefined, stage: (entry: StoredSecret, id: string) => void): Promise<VersionInfo> {
    if (key === "") throw new DsopsError(`store "${this.name}": empty key`);
    return this.update((data, k) => {
      const entry = data.secrets[key] ?? { current: "", versions: [] };
      const id = String(entry.versions.reduce((m, v) => Math.max(m, Number(v.id) || 0), 0) + 1);
      const createdAt = new Date(this.ctx.clock.now()).toISOString();
      entry.versions.push({ id, createdAt, ...(options?.description ? { description: options.description } : {}), ...this.encrypt(k, key, id, value.reveal()), aad: 2 });
      stage(entry, id);
      data.secrets[key] = entry;
      return { value: { versionId: id, updatedAt: createdAt }, changed: true };
    });
  }

  async promote(key: string, versionId: string): Promise<VersionInfo> {
    return this.update((data) => {
      const entry = data.secrets[key];
      if (!entry) throw new NotFoundError(`store "${this.name}": secret "${key}" not found`);
      const v = entry.versions.find((x) => x.id === versionId);
      if (!v) throw new NotFoundError(`store "${this.name}": secret "${key}" has no version "${versionId}"`);
      if (entry.current !== versionId) {
        if (entry.current) entry.previous = entry.current;
        entry.current = versionId;
        if (entry.previous === versionId) delete entry.previous;
      }
      if (entry.pending === versionId) delete entry.pending;
      return { value: { versionId, updatedAt: v.createdAt }, changed: true };
    });
  }

  async discardPending(key: string, versionId?: string): Promise<void> {
    const entry = this.open().secrets[key];
    if (!entry?.pending || (versionId !== undefined && entry.pending !== versionId)) return;
    await this.update((data) => {
      const e = data.secrets[key];
      if (!e?.pending || (versionId !== undefined && e.pending !== versionId)) return { value: undefined, changed: false };
      // The discarded version stays in the list (never current), so version ids are never reused.
      delete e.pending;
      return { value: undefined, changed: true };
    });
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const entry = this.open().secrets[key];
    if (!entry) return {};
    return { ...(entry.current ? { current: entry.current } : {}), ...(entry.previous ? { previous: entry.previous } : {}), ...(entry.pending ? { pending: entry.pending } : {}) };
  }

  async check(): Promise<void> {
    const data = this.open();
    // Decrypt one value, so a wrong key shows here (files of format 1 have no key check value).
    const first = Object.entries(data.secrets).find(([, e]) => e.current);
    if (first) this.readVersion(data, { key: first[0] }, false);
  }

  /** The current version of every secret in the file (one read, no decryption). */
  async listCurrentVersions(): Promise<Map<string, string>> {
    return new Map(Object.entries(this.open().secrets).map(([k, e]) => [k, e.current]));
  }

  /** Names of the stored secrets (no values). */
  list(): string[] {
    return Object.keys(this.load().secrets).sort();
  }

  private findVersion(data: FileData, k: StoreKey): StoredVersion {
    const entry = data.secrets[k.key];
    if (!entry) throw new NotFoundError(`store "${this.name}": secret "${k.key}" not found`);
    const want =
      k.version === undefined || k.version === "current" || k.version === "latest"
        ? entry.current
        : k.version === "previous" || k.version === "pending"
          ? entry[k.version]
          : k.version;
    if (!want) throw new NotFoundError(`store "${this.name}": secret "${k.key}" has no ${k.version ?? "current"} version`);
    const v = entry.versions.find((x) => x.id === want);
    if (!v) throw new NotFoundError(`store "${this.name}": secret "${k.key}" has no version "${k.version}"`);
    return v;
  }

  private readVersion(data: FileData, k: StoreKey, wrongKey: boolean): SecretVersion {
    const v = this.findVersion(data, k);
    if (wrongKey) throw this.wrongKey("read", `cannot decrypt "${k.key}" version ${v.id}: `);
    return { value: new Secret(this.decrypt(data, this.key(data.salt), k.key, v)), versionId: v.id, updatedAt: v.createdAt };
  }

  // ---- reading and checking the file ------------------------------------------------------

  /** The file, its structure checked; an absent file is an empty store. Needs no key. */
  private load(): FileData {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { format: FORMAT, salt: "", secrets: {}, exists: false };
      throw this.ioError(e, `read ${this.path}`);
    }
    if (text.trim() === "") throw this.damaged(["the file is empty"]);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // The parser's message would quote the file; it is not needed to find the problem.
      throw this.damaged(["not valid JSON"]);
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw this.damaged([`expected a JSON object, got ${kindOf(raw)}`]);
    const format = (raw as { format?: unknown }).format;
    if (format === undefined) throw this.damaged([`format: missing (expected "${FORMAT}")`]);
    if (format !== FORMAT && format !== FORMAT_1) {
      throw new StoreError(`store "${this.name}": ${this.path} has unknown format ${JSON.stringify(format)}`, false, {
        hint: `this dsops reads ${FORMAT} and ${FORMAT_1}; a newer dsops may have written the file`,
      });
    }
    const parsed = schemas[format].safeParse(raw);
    if (!parsed.success) throw this.damaged(parsed.error.issues.map((i) => describeIssue(i, raw)));
    const data: FileData = { ...(parsed.data as Omit<FileData, "exists">), exists: true };
    const problems: string[] = [];
    for (const [name, entry] of Object.entries(data.secrets)) {
      const ids = new Set<string>();
      entry.versions.forEach((v, i) => {
        if (ids.has(v.id)) problems.push(`${fieldPath(["secrets", name, "versions", i, "id"])}: version "${v.id}" appears twice`);
        ids.add(v.id);
      });
      for (const stage of STAGES) {
        const id = entry[stage];
        if (id && !ids.has(id)) problems.push(`${fieldPath(["secrets", name, stage])}: points at version "${id}", which is not among its versions`);
      }
    }
    if (problems.length) throw this.damaged(problems);
    return data;
  }

  /** The file, with its key check and integrity code verified (format 2). */
  private open(): FileData {
    const { data, wrongKey } = this.readable();
    if (wrongKey) throw this.wrongKey("read");
    return data;
  }

  /** The file and whether the key fails its check; an edited file throws. */
  private readable(): { data: FileData; wrongKey: boolean } {
    const data = this.load();
    if (!data.exists || data.format !== FORMAT) return { data, wrongKey: false };
    const key = this.key(data.salt);
    if (!sameText(data.check, checkValue(key, data.salt))) return { data, wrongKey: true };
    if (!sameText(data.mac, indexCode(key, data))) throw this.tampered("read");
    return { data, wrongKey: false };
  }

  /**
   * Refuse a key that does not open the file, and an edited file, before writing: format 2
   * compares the key check value and the integrity code; format 1 (no check value) decrypts
   * its oldest version, the one written with the store's own key.
   */
  private verifyForWrite(data: FileData, key: Buffer): void {
    if (!data.exists) return;
    if (data.format === FORMAT) {
      if (!sameText(data.check, checkValue(key, data.salt))) throw this.wrongKey("write");
      if (!sameText(data.mac, indexCode(key, data))) throw this.tampered("write");
      return;
    }
    let oldest: { name: string; v: StoredVersion } | undefined;
    for (const [name, e] of Object.entries(data.secrets)) {
      for (const v of e.versions) if (!oldest || v.createdAt < oldest.v.createdAt) oldest = { name, v };
    }
    if (!oldest) return;
    try {
      this.decrypt(data, key, oldest.name, oldest.v);
    } catch {
      throw this.wrongKey("write", "", `cannot decrypt "${oldest.name}" version ${oldest.v.id}, the oldest version in ${this.path}`);
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  /**
   * Change the file under the lock. The key is derived and checked before waiting for the
   * lock (scrypt is slow; a wrong key fails at once), then the file is read again, checked
   * again, changed, and written atomically as format 2 with a fresh key check and index code.
   */
  private async update<T>(change: (data: FileData, key: Buffer) => { value: T; changed: boolean }): Promise<T> {
    const before = this.load();
    if (before.exists && (before.format === FORMAT || hasVersions(before))) this.verifyForWrite(before, this.key(before.salt));
    return this.withLock(() => {
      const data = this.load();
      if (!data.exists) data.salt = randomBytes(16).toString("base64");
      const key = this.key(data.salt, !data.exists || (data.format === FORMAT_1 && !hasVersions(data)));
      this.verifyForWrite(data, key);
      const { value, changed } = change(data, key);
      if (changed) this.save(data, key);
      return value;
    });
  }

  private save(data: FileData, key: Buffer): void {
    const out: FileData = { format: FORMAT, salt: data.salt, check: checkValue(key, data.salt), secrets: data.secrets, exists: true };
    out.mac = indexCode(key, out);
    const file = { format: out.format, salt: out.salt, check: out.check, secrets: out.secrets, mac: out.mac };
    try {
      writeFileAtomic(this.path, JSON.stringify(file, null, 1) + "\n", 0o600, () => this.fault("before-rename"));
    } catch (e) {
      throw this.ioError(e, `write ${this.path} (the file is unchanged)`);
    }
  }

  private async withLock<T>(fn: () => T): Promise<T> {
    const lock = new LockFile(`${this.path}.lock`);
    const owner = { pid: process.pid, host: hostname(), who: whoAmI(), since: new Date(this.ctx.clock.now()).toISOString() };
    let held;
    try {
      held = await lock.acquire(owner, this.lockWaitMs());
    } catch (e) {
      if (!(e instanceof LockBusyError)) throw this.ioError(e, `lock ${lock.path}`);
      const h = e.holder;
      const hint = !h
        ? `an unreadable lock file is taken over once it is 2 seconds old; if it stays, delete ${lock.path}`
        : h.host === hostname()
          ? "let that process finish, or stop it: a lock whose process has ended is taken over by the next writer (DSOPS_LOCK_TIMEOUT sets how long to wait)"
          : `dsops cannot see the processes of host ${h.host}: if pid ${h.pid} no longer runs there, delete ${lock.path}`;
      throw new StoreError(`store "${this.name}": ${e.message}`, false, { hint });
    }
    try {
      this.fault("locked");
      this.sweepTemporaryFiles();
      return fn();
    } finally {
      held.release();
    }
  }

  /** How long a writer waits for a lock one holder keeps: `DSOPS_LOCK_TIMEOUT` (e.g. 30s, 500ms), default 30 s. */
  private lockWaitMs(): number {
    const text = this.ctx.env.DSOPS_LOCK_TIMEOUT;
    if (text === undefined || text === "") return 30_000;
    return parseDuration(text, "DSOPS_LOCK_TIMEOUT");
  }

  /** Under the lock no other writer is at work: temporary files of the store and its key are leftovers of killed writers. */
  private sweepTemporaryFiles(): void {
    for (const target of [this.path, this.keyPath]) {
      const pattern = atomicTempPattern(target);
      let names: string[];
      try {
        names = readdirSync(dirname(target));
      } catch {
        continue;
      }
      for (const name of names) {
        if (!pattern.test(name)) continue;
        try {
          unlinkSync(join(dirname(target), name));
        } catch {
          /* gone */
        }
      }
    }
  }

  /** `DSOPS_FAULT=file-store:locked` (or `file-store:before-rename`) kills the process there: crash tests only. */
  private fault(point: string): void {
    const spec = this.ctx.env.DSOPS_FAULT;
    if (!spec || !spec.split(",").some((p) => p.trim() === `file-store:${point}`)) return;
    process.stderr.write(`dsops: fault injected at file-store:${point} (kill)\n`);
    process.kill(process.pid, "SIGKILL");
    for (;;) {
      /* never runs on: the signal is fatal */
    }
  }

  // ---- keys and encryption -------------------------------------------------------------------

  /** Where the key comes from, for messages. */
  private keySource(): string {
    return this.ctx.env.DSOPS_FILE_KEY ? "DSOPS_FILE_KEY" : `the key file ${this.keyPath}`;
  }

  private key(salt: string, create = false): Buffer {
    if (this.keyCache?.salt === salt) return this.keyCache.key;
    const pass = this.ctx.env.DSOPS_FILE_KEY;
    let key: Buffer;
    if (pass) {
      if (!this.warned && existsSync(this.keyPath)) {
        this.warned = true;
        this.ctx.onWarning?.(`store "${this.name}": DSOPS_FILE_KEY is set and overrides the key file ${this.keyPath}`);
      }
      key = scryptSync(pass, Buffer.from(salt, "base64"), 32);
    } else if (existsSync(this.keyPath)) {
      let text: string;
      let mode: number;
      try {
        text = readFileSync(this.keyPath, "utf8");
        mode = statSync(this.keyPath).mode & 0o077;
      } catch (e) {
        throw this.ioError(e, `read the key file ${this.keyPath}`);
      }
      key = Buffer.from(text.trim(), "base64");
      if (key.length !== 32) throw new StoreError(`store "${this.name}": key file ${this.keyPath} does not hold a 32-byte base64 key`);
      if (mode !== 0) throw new StoreError(`store "${this.name}": key file ${this.keyPath} is readable by others; chmod 600 it`);
    } else if (!create) {
      throw new StoreError(`store "${this.name}": key file ${this.keyPath} is missing and DSOPS_FILE_KEY is not set; the store cannot be decrypted`);
    } else {
      // First write to a new store (under the store's lock): create its key.
      key = randomBytes(32);
      try {
        writeFileAtomic(this.keyPath, key.toString("base64") + "\n", 0o600);
      } catch (e) {
        throw this.ioError(e, `create the key file ${this.keyPath}`);
      }
    }
    this.keyCache = { salt, key };
    return key;
  }

  private encrypt(key: Buffer, name: string, id: string, plaintext: string): Pick<StoredVersion, "iv" | "tag" | "data"> {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from(`${FORMAT}\0${name}\0${id}`));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return { iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
  }

  private decrypt(file: FileData, key: Buffer, name: string, v: StoredVersion): string {
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(v.iv, "base64"));
      // Only a format-2 file serves versions written by format 2 (a file rewritten as format 1 cannot).
      decipher.setAAD(Buffer.from(file.format === FORMAT && v.aad === 2 ? `${FORMAT}\0${name}\0${v.id}` : `${name}\0${v.id}`));
      decipher.setAuthTag(Buffer.from(v.tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(v.data, "base64")), decipher.final()]).toString("utf8");
    } catch {
      throw new StoreError(`store "${this.name}": cannot decrypt "${name}" version ${v.id}: wrong key (DSOPS_FILE_KEY or ${this.keyPath}) or a tampered file`);
    }
  }

  // ---- errors ------------------------------------------------------------------------------

  /** A filesystem error (no space, no permission, a folder in the way) as a StoreError naming what failed. */
  private ioError(e: unknown, what: string): Error {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (e instanceof DsopsError || typeof code !== "string") return e as Error;
    return new StoreError(`store "${this.name}": cannot ${what}: ${code} (${(e as Error).message.replace(/^[A-Z]+: /, "").split(",")[0]})`, false, {
      hint: "check the path, its permissions and the free space of its filesystem",
    });
  }

  private damaged(problems: string[]): StoreError {
    const shown = problems.slice(0, 5).join("; ") + (problems.length > 5 ? ` (and ${problems.length - 5} more)` : "");
    return new StoreError(`store "${this.name}": ${this.path} is damaged: ${shown}`, false, {
      hint: "dsops neither reads from nor writes over a damaged store: restore the file from a backup, or repair what is named above",
    });
  }

  private wrongKey(op: "read" | "write", lead = "", what = `does not match the key check value of ${this.path}`): StoreError {
    const env = Boolean(this.ctx.env.DSOPS_FILE_KEY);
    const hint = env
      ? existsSync(this.keyPath)
        ? `DSOPS_FILE_KEY overrides the key file ${this.keyPath}: unset it to use that file, or set the passphrase this store was written with`
        : "set DSOPS_FILE_KEY to the passphrase this store was written with"
      : `${this.keyPath} is not the key this store was written with: restore the right key file, or set DSOPS_FILE_KEY if the store uses a passphrase`;
    return new StoreError(`store "${this.name}": ${lead}wrong key: ${this.keySource()} ${what}${op === "write" ? "; nothing was written" : ""}`, false, { hint });
  }

  private tampered(op: "read" | "write"): StoreError {
    return new StoreError(
      `store "${this.name}": ${this.path} fails its integrity check: it was edited or tampered with outside dsops (a stage pointer, a version or its metadata)${op === "write" ? "; nothing was written" : ""}`,
      false,
      { hint: "restore the file from a backup; dsops neither serves nor writes over a store that fails its integrity check" },
    );
  }
}

function hasVersions(data: FileData): boolean {
  return Object.values(data.secrets).some((e) => e.versions.length > 0);
}

/** A key derived for one purpose from the store's key (HKDF-SHA256, the file's salt). */
function subkey(key: Buffer, salt: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", key, Buffer.from(salt, "base64"), `${FORMAT} ${purpose}`, 32));
}

function checkValue(key: Buffer, salt: string): string {
  return subkey(key, salt, "key check").toString("base64");
}

/** HMAC over the whole index in a fixed order: format, salt, check value, each secret's stages and versions. */
function indexCode(key: Buffer, data: FileData): string {
  const secrets = Object.keys(data.secrets)
    .sort()
    .map((name) => {
      const e = data.secrets[name];
      return [name, e.current, e.previous ?? null, e.pending ?? null, e.versions.map((v) => [v.id, v.createdAt, v.description ?? null, v.iv, v.tag, v.data, v.aad ?? null])];
    });
  return createHmac("sha256", subkey(key, data.salt, "index")).update(JSON.stringify([FORMAT, data.salt, data.check ?? null, secrets])).digest("base64");
}

function sameText(a: string | undefined, b: string): boolean {
  const x = Buffer.from(a ?? "");
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `secrets["app/db"].versions[0].iv` */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  path.forEach((seg, i) => {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (i === 1 && path[0] === "secrets") out += `[${JSON.stringify(String(seg))}]`;
    else out += `${out ? "." : ""}${String(seg)}`;
  });
  return out;
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return "a string";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return typeof v;
}

const EXPECTED: Record<string, string> = { object: "an object", record: "an object", array: "a list", string: "a string", number: "a number" };

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = fieldPath(issue.path);
  const at = where ? `${where}: ` : "";
  const got = issue.path.reduce<unknown>((v, seg) => (v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[seg] : undefined), raw);
  switch (issue.code) {
    case "invalid_type": {
      const want = EXPECTED[issue.expected] ?? issue.expected;
      return got === undefined ? `${at}missing (expected ${want})` : `${at}expected ${want}, got ${kindOf(got)}`;
    }
    case "too_small":
      return `${at}is empty`;
    case "invalid_value":
      return `${at}expected ${issue.values.map((x) => JSON.stringify(x)).join(" or ")}, got ${JSON.stringify(got) ?? "nothing"}`;
    default:
      return `${at}${issue.message}`;
  }
}
