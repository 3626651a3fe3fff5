import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { existsSync, readFileSync, openSync, closeSync, unlinkSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { DsopsError, NotFoundError, StoreError } from "../engine/errors";
import { Secret } from "../engine/secret";
import { fsErrorCode, fsErrorText, writeAll, writeFileAtomic } from "../engine/fsutil";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/** On-disk format of the file store. Names and version metadata are plain; values are AES-256-GCM. */
interface FileStoreData {
  format: "dsops-file-store/1";
  /** Salt for deriving the key from DSOPS_FILE_KEY (a passphrase). */
  salt: string;
  secrets: Record<string, StoredSecret>;
}

/** One secret. `previous` and `pending` (rotation stages) are absent in files written before rotation existed. */
interface StoredSecret {
  current: string;
  previous?: string;
  pending?: string;
  versions: StoredVersion[];
}

interface StoredVersion {
  id: string;
  createdAt: string;
  description?: string;
  iv: string;
  tag: string;
  data: string;
}

const FORMAT = "dsops-file-store/1";

/**
 * The embedded default store: an encrypted, versioned, writable file. The key comes from
 * `DSOPS_FILE_KEY` (a passphrase, stretched with scrypt) or from a key file created with mode
 * 0600 beside the store (`<path>.key`, 32 random bytes). Writes are atomic and serialized by a
 * lock file, so concurrent writers never lose a version.
 */
export class FileStore implements Store, Staging {
  readonly type = "file" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 1000, binary: false, staging: true };
  readonly path: string;
  private readonly keyPath: string;
  private keyCache?: { salt: string; key: Buffer };

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
    const data = this.load();
    return this.readVersion(data, k);
  }

  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const data = this.load();
    return keys.map((k) => {
      try {
        return this.readVersion(data, k);
      } catch (e) {
        return e as Error;
      }
    });
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const v = this.findVersion(this.load(), k);
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
  private addVersion(key: string, value: Secret, options: PutOptions | undefined, stage: (entry: FileStoreData["secrets"][string], id: string) => void): Promise<VersionInfo> {
    if (key === "") throw new DsopsError(`store "${this.name}": empty key`);
    return this.withLock(() => {
      const data = this.load(true);
      const entry = data.secrets[key] ?? { current: "", versions: [] };
      const id = String(entry.versions.reduce((m, v) => Math.max(m, Number(v.id) || 0), 0) + 1);
      const createdAt = new Date(this.ctx.clock.now()).toISOString();
      entry.versions.push({ id, createdAt, ...(options?.description ? { description: options.description } : {}), ...this.encrypt(data.salt, key, id, value.reveal()) });
      stage(entry, id);
      data.secrets[key] = entry;
      writeFileAtomic(this.path, JSON.stringify(data, null, 1) + "\n");
      return { versionId: id, updatedAt: createdAt };
    });
  }

  async promote(key: string, versionId: string): Promise<VersionInfo> {
    return this.withLock(() => {
      const data = this.load(true);
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
      writeFileAtomic(this.path, JSON.stringify(data, null, 1) + "\n");
      return { versionId, updatedAt: v.createdAt };
    });
  }

  async discardPending(key: string, versionId?: string): Promise<void> {
    const entry = this.load().secrets[key];
    if (!entry?.pending || (versionId !== undefined && entry.pending !== versionId)) return;
    await this.withLock(() => {
      const data = this.load(true);
      const e = data.secrets[key];
      if (!e?.pending || (versionId !== undefined && e.pending !== versionId)) return true;
      // The discarded version stays in the list (never current), so version ids are never reused.
      delete e.pending;
      writeFileAtomic(this.path, JSON.stringify(data, null, 1) + "\n");
      return true;
    });
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const entry = this.load().secrets[key];
    if (!entry) return {};
    return { ...(entry.current ? { current: entry.current } : {}), ...(entry.previous ? { previous: entry.previous } : {}), ...(entry.pending ? { pending: entry.pending } : {}) };
  }

  async check(): Promise<void> {
    const data = this.load();
    // Decrypt one value, so a wrong key shows here.
    const first = Object.entries(data.secrets)[0];
    if (first) this.readVersion(data, { key: first[0] });
  }

  /** The current version of every secret in the file (one read, no decryption). */
  async listCurrentVersions(): Promise<Map<string, string>> {
    return new Map(Object.entries(this.load().secrets).map(([k, e]) => [k, e.current]));
  }

  /** Names of the stored secrets (no values). */
  list(): string[] {
    return Object.keys(this.load().secrets).sort();
  }

  private findVersion(data: FileStoreData, k: StoreKey): StoredVersion {
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

  private readVersion(data: FileStoreData, k: StoreKey): SecretVersion {
    const v = this.findVersion(data, k);
    return { value: new Secret(this.decrypt(data.salt, k.key, v)), versionId: v.id, updatedAt: v.createdAt };
  }

  private load(forWrite = false): FileStoreData {
    if (!existsSync(this.path)) {
      if (!forWrite) return { format: FORMAT, salt: "", secrets: {} };
      return { format: FORMAT, salt: randomBytes(16).toString("base64"), secrets: {} };
    }
    let parsed: FileStoreData;
    try {
      parsed = JSON.parse(readFileSync(this.path, "utf8")) as FileStoreData;
    } catch {
      throw new StoreError(`store "${this.name}": ${this.path} is not a dsops file store (unreadable JSON)`);
    }
    if (parsed.format !== FORMAT) throw new StoreError(`store "${this.name}": ${this.path} has unknown format "${String(parsed.format)}"`);
    return parsed;
  }

  private key(salt: string): Buffer {
    if (this.keyCache?.salt === salt) return this.keyCache.key;
    const pass = this.ctx.env.DSOPS_FILE_KEY;
    let key: Buffer;
    if (pass) {
      key = scryptSync(pass, Buffer.from(salt, "base64"), 32);
    } else if (existsSync(this.keyPath)) {
      key = Buffer.from(readFileSync(this.keyPath, "utf8").trim(), "base64");
      if (key.length !== 32) throw new StoreError(`store "${this.name}": key file ${this.keyPath} does not hold a 32-byte base64 key`);
      const mode = statSync(this.keyPath).mode & 0o077;
      if (mode !== 0) throw new StoreError(`store "${this.name}": key file ${this.keyPath} is readable by others; chmod 600 it`);
    } else if (Object.keys(this.load().secrets).length > 0) {
      throw new StoreError(`store "${this.name}": key file ${this.keyPath} is missing and DSOPS_FILE_KEY is not set; the store cannot be decrypted`);
    } else {
      // First write to a new store (under the store's lock): create its key.
      key = randomBytes(32);
      writeFileAtomic(this.keyPath, key.toString("base64") + "\n", 0o600);
    }
    this.keyCache = { salt, key };
    return key;
  }

  private encrypt(salt: string, name: string, id: string, plaintext: string): Pick<StoredVersion, "iv" | "tag" | "data"> {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key(salt), iv);
    cipher.setAAD(Buffer.from(`${name}\0${id}`));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return { iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
  }

  private decrypt(salt: string, name: string, v: StoredVersion): string {
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key(salt), Buffer.from(v.iv, "base64"));
      decipher.setAAD(Buffer.from(`${name}\0${v.id}`));
      decipher.setAuthTag(Buffer.from(v.tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(v.data, "base64")), decipher.final()]).toString("utf8");
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`store "${this.name}": cannot decrypt "${name}" version ${v.id}: wrong key (DSOPS_FILE_KEY or ${this.keyPath}) or a tampered file`);
    }
  }

  /**
   * Run a write under the store's lock. A failed file-system call (a full or read-only disk)
   * becomes a StoreError naming the file; the store file is then unchanged (writes are atomic).
   */
  private withLock<T>(fn: () => T): Promise<T> {
    return this.lockedWrite(fn).catch((e: unknown) => {
      if (!fsErrorCode(e)) throw e;
      throw new StoreError(`store "${this.name}": cannot write ${this.path}: ${fsErrorText(e)}`, false, {
        hint: fsErrorCode(e) === "ENOSPC" || fsErrorCode(e) === "EDQUOT" ? "free space on that disk; the store file was left as it was" : "the store file was left as it was",
      });
    });
  }

  private lockedWrite<T>(fn: () => T): Promise<T> {
    const lockPath = `${this.path}.lock`;
    const attempt = (): T | undefined => {
      let fd: number;
      try {
        fd = openSync(lockPath, "wx", 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (this.staleLock(lockPath)) {
          try {
            unlinkSync(lockPath);
          } catch {
            /* another process removed it first */
          }
        }
        return undefined;
      }
      try {
        try {
          writeAll(fd, String(process.pid));
        } finally {
          closeSync(fd);
        }
        return fn();
      } finally {
        unlinkSync(lockPath);
      }
    };
    return new Promise<T>((resolvePromise, reject) => {
      let tries = 0;
      const loop = () => {
        try {
          const r = attempt();
          if (r !== undefined) return resolvePromise(r);
        } catch (e) {
          return reject(e);
        }
        if (++tries > 500) return reject(new StoreError(`store "${this.name}": ${lockPath} stays locked; remove it if no dsops is running`, true));
        setTimeout(loop, 10);
      };
      loop();
    });
  }

  private staleLock(lockPath: string): boolean {
    try {
      const pid = Number(readFileSync(lockPath, "utf8"));
      if (!pid) return false;
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
}
