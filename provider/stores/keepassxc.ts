import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { runCli, type CliResult } from "./cli-run";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "keepassxc" }>;

const INSTALL = "install KeePassXC, which ships keepassxc-cli (Debian/Ubuntu: apt-get install keepassxc; macOS: brew install --cask keepassxc), or set cli: to its path";

/** `#field` names and the keepassxc-cli attribute each reads. */
const ATTRIBUTES: Readonly<Record<string, string>> = {
  password: "password",
  username: "username",
  user: "username",
  url: "url",
  notes: "notes",
  title: "title",
};

/** The attributes keepassxc-cli's CSV export holds, and their columns. */
const CSV_COLUMNS: Readonly<Record<string, string>> = { title: "Title", username: "Username", password: "Password", url: "URL", notes: "Notes" };
/** Keys one `getMany` reads from one export. */
const BATCH = 1000;

/** Prompts keepassxc-cli writes to stderr before reading stdin. */
const PROMPTS = /Enter (?:new )?password[^:\n]*: ?\n?|Repeat password: ?\n?/g;

/** Rows of a CSV text (RFC 4180: quoted fields, `""` for a quote, line breaks inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || (c === "\r" && text[i + 1] === "\n")) {
      if (c === "\r") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
    i++;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/**
 * KeePassXC databases (KDBX) through `keepassxc-cli`. The key is an entry's path
 * (`prod/api` = entry `api` of group `prod`); the value is the entry's password; a reference's
 * `#field` reads another attribute (`#username`, `#url`, `#notes`, `#title`, `#totp` or any
 * custom attribute by name; a field starting with `.` or `[` is a JSON path the engine reads
 * in the password). The database password goes to the CLI on stdin, never in its arguments; every
 * run has the store's timeout. Several keys are read from one CSV export (one decryption). Writes set the entry's password (`edit -p`, or `add -p` after
 * creating its groups); writes of one store are made one at a time. Values carry no versions:
 * the version id is derived from the value.
 */
export class KeePassXcStore implements Store {
  readonly type = "keepassxc" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: BATCH, binary: false, staging: false };

  /** Every `#field` is an attribute of the entry, except a JSON path into the password (`.a.b`, `[0]`), which the engine reads. */
  readsField(field: string): boolean {
    return !/^[.[]/.test(field);
  }
  private readonly database: string;
  private readonly keyFile?: string;
  private readonly cli: string;
  private readonly timeoutMs: number;
  private password?: Promise<string | undefined>;
  /** The database password once read, kept out of every error. */
  private knownPassword?: string;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.database = this.path(settings.database);
    if (settings.key_file !== undefined) this.keyFile = this.path(settings.key_file);
    this.cli = settings.cli ?? "keepassxc-cli";
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const entry = this.entry(k.key);
    const attr = this.attribute(k);
    const what = `read of "${entry}"${attr === "password" ? "" : ` (attribute ${attr})`}`;
    const args = attr === "totp" ? ["show", "--totp", ...(await this.keyArgs()), this.database, entry] : ["show", ...(await this.keyArgs()), "-a", attr, this.database, entry];
    const r = await this.run(args, "", what, { entry, attr });
    const text = r.stdout.endsWith("\n") ? r.stdout.slice(0, -1) : r.stdout;
    return this.version(k, entry, text);
  }

  /**
   * Several keys in one `keepassxc-cli export -f csv` (the database is decrypted once): the
   * password, username, url, notes and title of every entry. Other attributes are read one
   * `show` each.
   */
  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const out: Array<SecretVersion | Error> = new Array(keys.length);
    const fromCsv: number[] = [];
    const others: Array<Promise<void>> = [];
    keys.forEach((k, i) => {
      let attr: string;
      try {
        attr = this.attribute(k);
      } catch (e) {
        out[i] = e as Error;
        return;
      }
      if (CSV_COLUMNS[attr] !== undefined) fromCsv.push(i);
      else others.push(this.get(k).then((v) => void (out[i] = v), (e: Error) => void (out[i] = e)));
    });
    if (fromCsv.length > 0) {
      const entries = fromCsv.map((i) => keys[i].key);
      const what = `read of ${fromCsv.length} entr${fromCsv.length === 1 ? "y" : "ies"} (${entries.slice(0, 5).join(", ")}${entries.length > 5 ? ", …" : ""})`;
      try {
        const r = await this.run(["export", ...(await this.keyArgs()), "-f", "csv", this.database], "", what);
        const rows = parseCsv(r.stdout);
        const head = rows.shift() ?? [];
        const col = (name: string) => head.indexOf(name);
        if (col("Group") < 0 || col("Title") < 0 || col("Password") < 0) throw new StoreError(`store "${this.name}": ${what}: keepassxc-cli's CSV export has no Group, Title and Password columns`);
        const byPath = new Map<string, string[]>();
        for (const row of rows) {
          // The group's first step is the root group (its name varies: Passwords, Root …).
          const group = (row[col("Group")] ?? "").split("/").slice(1);
          const path = [...group, row[col("Title")] ?? ""].join("/");
          if (!byPath.has(path)) byPath.set(path, row);
        }
        for (const i of fromCsv) {
          const k = keys[i];
          try {
            const entry = this.entry(k.key);
            const row = byPath.get(entry);
            if (!row) throw new NotFoundError(`store "${this.name}": read of "${entry}": entry "${entry}" not found in ${this.database}`);
            out[i] = this.version(k, entry, row[col(CSV_COLUMNS[this.attribute(k)])] ?? "");
          } catch (e) {
            out[i] = e as Error;
          }
        }
      } catch (e) {
        for (const i of fromCsv) out[i] = e as Error;
      }
    }
    await Promise.all(others);
    return out;
  }

  private attribute(k: StoreKey): string {
    const field = k.field ?? k.options?.attribute;
    return field === undefined ? "password" : (ATTRIBUTES[field.toLowerCase()] ?? (field.toLowerCase() === "totp" ? "totp" : field));
  }

  private version(k: StoreKey, entry: string, text: string): SecretVersion {
    const versionId = contentVersion(text);
    if (k.version !== undefined && k.version !== versionId && !["current", "latest"].includes(k.version.toLowerCase()))
      throw new NotFoundError(`store "${this.name}": "${entry}" has no version "${k.version}" (KeePassXC entries are read at their current value only)`);
    return { value: new Secret(text), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }

  /** Set the entry's password: `edit -p` when it exists, else its groups and `add -p`. */
  put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const next = this.writes.then(
      () => this.write(key, value),
      () => this.write(key, value),
    );
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** The database opens with the store's password and key file. */
  async check(): Promise<void> {
    await this.run(["db-info", ...(await this.keyArgs()), this.database], "", "check");
  }

  private async write(key: string, value: Secret): Promise<VersionInfo> {
    const entry = this.entry(key);
    const v = value.reveal();
    if (/[\r\n]/.test(v)) throw new DsopsError(`store "${this.name}": write of "${entry}": the value holds a line break; keepassxc-cli reads an entry's password as one line`);
    const keyArgs = await this.keyArgs();
    let exists = true;
    try {
      await this.run(["show", ...keyArgs, "-a", "title", this.database, entry], "", `write of "${entry}"`, { entry, attr: "title" });
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      exists = false;
    }
    if (!exists) {
      const groups = entry.split("/").slice(0, -1);
      for (let i = 1; i <= groups.length; i++) {
        const group = groups.slice(0, i).join("/");
        const r = await this.run(["mkdir", ...keyArgs, this.database, group], "", `write of "${entry}" (group "${group}")`, { entry, allowFail: true });
        if (r.code !== 0 && !/already exists/i.test(r.stderr)) this.fail(r, `write of "${entry}" (group "${group}")`, { entry }, value);
      }
    }
    await this.run([exists ? "edit" : "add", ...keyArgs, "-p", this.database, entry], `${v}\n`, `write of "${entry}"`, { entry }, value);
    return { versionId: contentVersion(v) };
  }

  /** A path in the settings: `~/` is the home folder, a relative path is relative to dsops.yaml's folder. */
  private path(p: string): string {
    if (p === "~" || p.startsWith("~/")) return resolve(this.ctx.env.HOME ?? homedir(), p.slice(2));
    return isAbsolute(p) ? p : resolve(this.ctx.configDir, p);
  }

  private entry(key: string): string {
    const e = key.replace(/^\/+/, "");
    if (e === "" || e.endsWith("/") || e.split("/").some((s) => s === ""))
      throw new DsopsError(`store "${this.name}": "${key}" is not an entry path (group/…/entry, e.g. prod/api)`);
    return e;
  }

  /** The database password: the setting, or the value of its `store://` reference; undefined: none (key file only). */
  private dbPassword(): Promise<string | undefined> {
    if (!this.password) {
      const p = this.settings.password;
      let got: Promise<string | undefined>;
      if (p === undefined) got = Promise.resolve(undefined);
      else if (p.startsWith("store://")) {
        if (!this.ctx.resolveRef) got = Promise.reject(new DsopsError(`store "${this.name}": password is a reference (${p}), but nothing here resolves references`));
        else got = this.ctx.resolveRef(p).then((s) => s.reveal());
      } else got = Promise.resolve(p);
      got = got.then((v) => {
        if (v !== undefined && /[\r\n]/.test(v)) throw new DsopsError(`store "${this.name}": the database password (password) holds a line break; keepassxc-cli reads it as one line`);
        this.knownPassword = v;
        return v;
      });
      got.catch(() => {
        if (this.password === got) this.password = undefined;
      });
      this.password = got;
    }
    return this.password;
  }

  private async keyArgs(): Promise<string[]> {
    const pw = await this.dbPassword();
    return [...(pw === undefined ? ["--no-password"] : []), ...(this.keyFile !== undefined ? ["--key-file", this.keyFile] : [])];
  }

  /** One run of keepassxc-cli, the database password first on stdin; a failure becomes the error it means. */
  private async run(args: string[], input: string, what: string, about: { entry?: string; attr?: string; allowFail?: boolean } = {}, value?: Secret): Promise<CliResult> {
    const pw = await this.dbPassword();
    const r = await runCli({
      cli: this.cli,
      args,
      stdin: `${pw === undefined ? "" : `${pw}\n`}${input}`,
      env: this.ctx.env,
      timeoutMs: this.timeoutMs,
      what: `store "${this.name}": ${what}`,
      install: INSTALL,
    });
    if (r.code === 0 || about.allowFail) return r;
    return this.fail(r, what, about, value);
  }

  private fail(r: CliResult, what: string, about: { entry?: string; attr?: string }, value?: Secret): never {
    const pw = this.knownPassword !== undefined ? [this.knownPassword] : [];
    const said = scrub(r.stderr.replace(PROMPTS, ""), [...pw, ...(value ? [value] : [])]).trim();
    const prefix = `store "${this.name}": ${what}`;
    const db = this.database;
    if (/Invalid credentials/i.test(said)) {
      const by = this.settings.password === undefined ? "key_file" : this.keyFile !== undefined ? "password and key_file" : "password";
      throw new AuthError(`${prefix}: the database ${db} did not open: wrong ${by === "key_file" ? "key file" : by === "password" ? "password" : "password or key file"} (setting ${by})`, {
        hint: `check the store's ${by}${this.settings.password?.startsWith("store://") ? ` (password comes from ${this.settings.password})` : ""}; \`keepassxc-cli db-info${this.keyFile ? " -k <key_file>" : ""} <database>\` tests them; when they are right, the file may be damaged (KeePassXC cannot tell the two apart)`,
      });
    }
    const kf = /Failed to load key file[^:]*:\s*(.*)/i.exec(said);
    if (kf) throw new AuthError(`${prefix}: the key file ${this.keyFile ?? ""} (setting key_file) cannot be read: ${kf[1].split("\n")[0]}`, { hint: "fix key_file (relative to dsops.yaml's folder)" });
    if (/Failed to open database file.*not found/i.test(said))
      throw new DsopsError(`${prefix}: the database ${db} (setting database) does not exist`, { hint: "fix database (relative to dsops.yaml's folder), or create one: keepassxc-cli db-create -p <path>" });
    if (/Could not find entry/i.test(said)) throw new NotFoundError(`${prefix}: entry "${about.entry}" not found in ${db}`);
    if (/unknown attribute/i.test(said)) throw new NotFoundError(`${prefix}: entry "${about.entry}" has no attribute "${about.attr}"`);
    if (/Writing the database failed/i.test(said)) throw new StoreError(`${prefix}: cannot write ${db}: ${said.split("\n").find((l) => /Writing the database failed/i.test(l))}`, false, { hint: "the database file (or its folder) must be writable" });
    if (/Error while reading the database|Failed to read database file|Failed to open database/i.test(said))
      throw new StoreError(`${prefix}: ${db} is not a readable KDBX database: ${said.split("\n")[0].slice(0, 300)}`, false, { hint: "check the database setting; a damaged file can be restored from a backup" });
    throw new StoreError(`${prefix}: ${this.cli} failed (exit ${r.code})${said ? `: ${said.split("\n")[0].slice(0, 300)}` : ""}`);
  }
}
