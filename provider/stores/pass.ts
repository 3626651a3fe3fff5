import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { runLocalCli, stderrTail, type CliOutcome } from "./local-cli";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "pass" }>;

const INSTALL = "install pass (the standard Unix password store): apt-get install pass, brew install pass (https://www.passwordstore.org/)";
const GPG_HINT =
  "gpg cannot decrypt the entry: import the secret key of one of the store's recipients (.gpg-id) into the GnuPG home (gpg_home, GNUPGHOME or ~/.gnupg), " +
  "or unlock it in the gpg-agent (run `pass show <entry>` once); check with: gpg --list-secret-keys";

/**
 * The standard Unix password store (`pass`): gpg-encrypted files under `store_dir`, often in a
 * git repository. A key is an entry's path (`app/db` = `<store_dir>/app/db.gpg`); the value is
 * the entry's first line, and every `name: value` line after it is a field (`#user` reads
 * `user: alice`). Reads run `pass show`, writes `pass insert -m -f` with the entry on stdin (so
 * pass encrypts to the store's recipients and commits when the store is a git repository); the
 * store's folder and GnuPG home go to the child in PASSWORD_STORE_DIR and GNUPGHOME.
 * The version id is the last git commit of the entry's file when it is committed in a git
 * repository, else a hash of the encrypted file; only the current version is read.
 */
export class PassStore implements Store {
  readonly type = "pass" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: 0, binary: false, staging: false };
  readonly dir: string;
  private readonly gpgHome?: string;
  private readonly timeoutMs: number;
  /** Writes of this store, one at a time (pass commits each one in a git store, and git takes one lock). */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    const home = ctx.env.HOME || homedir();
    const expand = (p: string) => (p === "~" ? home : p.startsWith("~/") ? join(home, p.slice(2)) : isAbsolute(p) ? p : resolve(ctx.configDir, p));
    this.dir = expand(settings.store_dir ?? ctx.env.PASSWORD_STORE_DIR ?? join(home, ".password-store"));
    this.gpgHome = settings.gpg_home !== undefined ? expand(settings.gpg_home) : undefined;
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const file = this.entryFile(k.key);
    const versionId = await this.versionOf(k.key, file);
    this.checkVersion(k, versionId);
    const r = await this.pass(["show", k.key], `read of entry "${k.key}"`);
    if (r.code !== 0) throw this.failure(r, `read of entry "${k.key}"`);
    const text = r.stdout;
    const nl = text.indexOf("\n");
    const first = (nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, "");
    const fields: Record<string, Secret> = {};
    if (nl >= 0) {
      for (const line of text.slice(nl + 1).split("\n")) {
        const m = /^([^:\s][^:]*?)\s*:\s?(.*?)\r?$/.exec(line);
        if (m && !(m[1] in fields)) fields[m[1]] = new Secret(m[2]);
      }
    }
    return { value: new Secret(first), versionId, fields };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const file = this.entryFile(k.key);
    const versionId = await this.versionOf(k.key, file);
    this.checkVersion(k, versionId);
    return { versionId };
  }

  /**
   * Replace the entry's first line with `value`, keeping its other lines (user:, url:, notes);
   * a new entry holds `value` alone. A value with a line break is refused: only the first line
   * would read back.
   */
  put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const run = this.writes.then(() => this.write(key, value));
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async write(key: string, value: Secret): Promise<VersionInfo> {
    const what = `write of entry "${key}"`;
    const v = value.reveal();
    if (/[\r\n]/.test(v)) throw new DsopsError(`store "${this.name}": ${what}: the value holds a line break; a pass entry's value is its first line`, { hint: "store a one-line value (encode it, e.g. base64, or keep multi-line values in another store)" });
    const file = this.entryPath(key);
    let rest = "";
    if (existsSync(file)) {
      const r = await this.pass(["show", key], `${what} (reading the entry's other lines)`);
      if (r.code !== 0) throw this.failure(r, `${what} (reading the entry's other lines)`);
      const nl = r.stdout.indexOf("\n");
      rest = nl < 0 ? "" : r.stdout.slice(nl);
    }
    const entry = v + rest;
    const r = await this.pass(["insert", "--multiline", "--force", key], what, entry);
    if (r.code !== 0) throw this.failure(r, what, [value, entry]);
    if (!existsSync(file)) throw new StoreError(`store "${this.name}": ${what}: pass ended without error but ${file} is not there`);
    return { versionId: await this.versionOf(key, file) };
  }

  /** pass runs, and the store's folder is an initialized password store (no entry is decrypted). */
  async check(): Promise<void> {
    const r = await this.pass(["version"], "check");
    if (r.code !== 0) throw new StoreError(`store "${this.name}": \`pass version\` failed (exit ${r.code}): ${stderrTail(r.stderr)}`);
    this.initialized();
  }

  private initialized(): void {
    let isDir: boolean;
    try {
      isDir = statSync(this.dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir)
      throw new DsopsError(`store "${this.name}": the password store ${this.dir} does not exist or is not a folder`, {
        hint: "set store_dir (or PASSWORD_STORE_DIR) to the store's folder, or create one: pass init <gpg-id>",
      });
    if (!existsSync(join(this.dir, ".gpg-id")))
      throw new DsopsError(`store "${this.name}": ${this.dir} is not an initialized password store (no .gpg-id)`, { hint: "initialize it: pass init <gpg-id>" });
  }

  /** The entry's file, which must be there; a key that is not an entry path is refused. */
  private entryFile(key: string): string {
    const file = this.entryPath(key);
    let isFile: boolean;
    try {
      isFile = statSync(file).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) {
      const folder = existsSync(join(this.dir, key));
      throw new NotFoundError(`store "${this.name}": entry "${key}" is not in the password store ${this.dir}${folder ? " (it is a folder of entries)" : ""}`);
    }
    return file;
  }

  /** Where the entry's file is (or would be); a key that is not an entry path is refused. */
  private entryPath(key: string): string {
    const parts = key.split("/");
    if (key === "" || key.includes("\0") || key.includes("\\") || parts.some((p) => p === "" || p === "." || p === ".."))
      throw new DsopsError(`store "${this.name}": "${key}" is not a pass entry path (e.g. app/db or email/work)`, { hint: 'an entry path has no empty, "." or ".." parts and no leading or trailing "/"' });
    this.initialized();
    return join(this.dir, `${key}.gpg`);
  }

  private checkVersion(k: StoreKey, versionId: string): void {
    if (k.version === undefined) return;
    const v = k.version.toLowerCase();
    if (v === "current" || v === "latest" || k.version === versionId) return;
    throw new NotFoundError(`store "${this.name}": entry "${k.key}" has no version "${k.version}" (only the current version is read; it is ${versionId})`);
  }

  /** The entry file's last git commit when the store is a git repository and the file is committed unchanged; else a hash of the file. */
  private async versionOf(key: string, file: string): Promise<string> {
    if (existsSync(join(this.dir, ".git"))) {
      const env = this.childEnv();
      const rel = `${key}.gpg`;
      const status = await runLocalCli("git", ["-C", this.dir, "status", "--porcelain", "--", rel], { env, timeoutMs: this.timeoutMs, what: `store "${this.name}": version of entry "${key}"`, install: "install git" });
      if (status.code === 0 && status.stdout.trim() === "") {
        const log = await runLocalCli("git", ["-C", this.dir, "log", "-1", "--format=%H", "--", rel], { env, timeoutMs: this.timeoutMs, what: `store "${this.name}": version of entry "${key}"`, install: "install git" });
        const id = log.stdout.trim();
        if (log.code === 0 && /^[0-9a-f]{40,64}$/.test(id)) return id;
      }
    }
    return `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16)}`;
  }

  private childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.ctx.env, PASSWORD_STORE_DIR: this.dir };
    if (this.gpgHome !== undefined) env.GNUPGHOME = this.gpgHome;
    if (this.settings.gpg_key !== undefined) env.PASSWORD_STORE_KEY = this.settings.gpg_key;
    // pass must never wait on a clipboard or a terminal of ours.
    delete env.PASSWORD_STORE_CLIP_TIME;
    return env;
  }

  private pass(args: string[], what: string, input?: string): Promise<CliOutcome> {
    return runLocalCli("pass", args, { env: this.childEnv(), input, timeoutMs: this.timeoutMs, what: `store "${this.name}": ${what}`, install: INSTALL });
  }

  /** What a failed `pass` maps to: gpg cannot decrypt → AuthError; not in the store → NotFoundError. */
  private failure(r: CliOutcome, what: string, secrets: Array<Secret | string> = []): Error {
    const said = scrub(stderrTail(r.stderr), secrets);
    const prefix = `store "${this.name}": ${what}`;
    if (/is not in the password store/i.test(r.stderr)) return new NotFoundError(`${prefix}: not in the password store ${this.dir}`);
    if (/no secret key|decryption failed|bad passphrase|operation cancelled|no pinentry|inappropriate ioctl|cannot open ['"]?\/dev\/tty/i.test(r.stderr))
      return new AuthError(`${prefix}: gpg cannot decrypt it: ${said}`, { hint: GPG_HINT });
    if (/public key not found|unusable public key|no public key|encryption failed/i.test(r.stderr))
      return new AuthError(`${prefix}: gpg cannot encrypt to the store's recipients: ${said}`, {
        hint: "import the public keys of every recipient in .gpg-id (gpg --import) and trust them, or set gpg_key to a key you have",
      });
    if (/permission denied|read-only file system/i.test(r.stderr)) return new StoreError(`${prefix}: ${said}`, false, { hint: `pass needs write access to ${this.dir}` });
    return new StoreError(`${prefix}: pass failed (exit ${r.code ?? r.signal}): ${said}`);
  }
}
