import { createHash, randomBytes } from "node:crypto";
import { createConnection, type Connection, type ConnectionOptions } from "mysql2/promise";
import { DsopsError } from "../../core/errors";
import type { Secret } from "../../core/secret";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions, ValueRules } from "./types";
import { mysqlSettingsSchema, type MysqlSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { mysqlSettingsSchema, type MysqlSettings } from "./settings";

/** The mysql_native_password hash of a password, as the server stores it: `*` + hex(SHA1(SHA1(pw))), upper case. */
export function nativePasswordHash(password: string): string {
  const once = createHash("sha1").update(Buffer.from(password, "utf8")).digest();
  return "*" + createHash("sha1").update(once).digest("hex").toUpperCase();
}

/** Which server a connection reached: MariaDB, or MySQL (and its forks: Percona, Aurora …). */
export type MysqlFlavor = "mariadb" | "mysql";

/** The flavor from `SELECT VERSION(), @@version_comment` (MariaDB names itself in one of them). */
export function serverFlavor(version: string, comment = ""): MysqlFlavor {
  return /mariadb/i.test(version) || /mariadb/i.test(comment) ? "mariadb" : "mysql";
}

/**
 * How the target sets a password on this server, changing nothing else (no ACCOUNT UNLOCK, no
 * other plugin):
 * - `hash`: MariaDB, `ALTER USER ?@? IDENTIFIED BY PASSWORD '<mysql_native_password hash>'`;
 * - `plain`: MariaDB, `ALTER USER ?@? IDENTIFIED BY ?`;
 * - `plain-with-plugin`: MySQL, `ALTER USER ?@? IDENTIFIED WITH <the account's plugin> BY ?`
 *   (MySQL 8.0 removed `IDENTIFIED BY PASSWORD`; naming the plugin keeps the account's own);
 * - `refuse`: MySQL with `client-native` hashing: there is no statement for it; `message` says why.
 */
export type PasswordForm = { readonly form: "hash" | "plain" | "plain-with-plugin" } | { readonly form: "refuse"; readonly message: string; readonly hint: string };

export function passwordForm(server: { flavor: MysqlFlavor; version: string }, hashing: MysqlSettings["password_hashing"], service: string): PasswordForm {
  if (server.flavor === "mariadb") return { form: hashing === "client-native" ? "hash" : "plain" };
  if (hashing === "server") return { form: "plain-with-plugin" };
  return {
    form: "refuse",
    message: `service "${service}": the server is MySQL ${server.version}, and password_hashing: client-native sends a password hash with ALTER USER … IDENTIFIED BY PASSWORD, which MySQL 8.0 removed; nothing was changed`,
    hint: `set password_hashing: server on services.${service} (the server then hashes the password with the account's own plugin); dsops tests this target against MariaDB only`,
  };
}

/** `name` or `name@host` → the account's user and host parts. */
function account(principal: string, defaultHost: string): { user: string; host: string } {
  const at = principal.lastIndexOf("@");
  if (at > 0) return { user: principal.slice(0, at), host: principal.slice(at + 1) };
  return { user: principal, host: defaultHost };
}

/**
 * MariaDB (and, with `password_hashing: server`, MySQL) accounts: ALTER USER … IDENTIFIED BY
 * through an admin connection (user, host and hash passed as escaped values, never spliced);
 * the server is told apart on first use (`SELECT VERSION(), @@version_comment`), see
 * `passwordForm`. Only the password changes: a locked account (ACCOUNT LOCK) stays locked, so its
 * verification fails and the rotation rolls back. Verify by logging in as the user and running
 * SELECT 1. Revoke replaces the password by a random one nobody knows (it does not lock).
 */
export class MysqlTarget implements Target {
  readonly type = "mysql" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["rotate", "revoke", "verify"]);
  /** NUL ends a C string in older clients; very long passwords are pointless. */
  readonly valueRules: ValueRules = { minLength: 8, maxLength: 1000, forbidden: "\0" };
  readonly settings: MysqlSettings;
  private admin?: Promise<Connection>;
  private server?: { flavor: MysqlFlavor; version: string };

  constructor(
    readonly name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    this.settings = parseServiceSettings(mysqlSettingsSchema, name, raw);
  }

  private base(timeoutMs?: number): ConnectionOptions {
    const s = this.settings;
    return {
      host: s.host,
      port: s.port,
      connectTimeout: timeoutMs ?? s.connect_timeout_ms,
      ...(s.ssl === "disable" ? {} : { ssl: s.ssl === "require" ? { rejectUnauthorized: false } : {} }),
    };
  }

  private async adminConn(): Promise<Connection> {
    if (!this.admin) {
      this.admin = (async () => {
        const raw = await this.ctx.resolveRef(this.settings.admin);
        let cred: { username?: unknown; password?: unknown };
        try {
          cred = JSON.parse(raw.reveal()) as typeof cred;
        } catch {
          throw new DsopsError(`service "${this.name}": the admin credential (${this.settings.admin}) is not JSON {"username", "password"}`);
        }
        if (typeof cred.username !== "string" || typeof cred.password !== "string")
          throw new DsopsError(`service "${this.name}": the admin credential (${this.settings.admin}) needs string fields "username" and "password"`);
        let c: Connection;
        try {
          c = await createConnection({ ...this.base(), user: cred.username, password: cred.password });
        } catch (e) {
          throw new TargetError(`service "${this.name}": admin login as "${cred.username}" failed: ${scrubError(e, [cred.password])}`, isNetwork(e));
        }
        c.on("error", () => {
          this.admin = undefined; // a broken connection is replaced on next use
        });
        return c;
      })();
      this.admin.catch(() => (this.admin = undefined));
    }
    return this.admin;
  }

  /** MariaDB or MySQL and its version, asked once (`SELECT VERSION(), @@version_comment`). */
  async serverInfo(): Promise<{ flavor: MysqlFlavor; version: string }> {
    if (this.server) return this.server;
    const c = await this.adminConn();
    let row: { v?: unknown; c?: unknown } | undefined;
    try {
      const [rows] = await c.query({ sql: "SELECT VERSION() AS v, @@version_comment AS c", timeout: this.settings.connect_timeout_ms });
      row = (rows as Array<{ v?: unknown; c?: unknown }>)[0];
    } catch (e) {
      if (isNetwork(e)) this.admin = undefined;
      throw new TargetError(`service "${this.name}": asking the server's version failed: ${scrubError(e, [])}`, isNetwork(e));
    }
    const version = String(row?.v ?? "");
    this.server = { flavor: serverFlavor(version, String(row?.c ?? "")), version };
    return this.server;
  }

  /** How passwords are set on this server; a DsopsError (nothing changed) when there is no way. */
  private async form(): Promise<Exclude<PasswordForm, { form: "refuse" }>> {
    const f = passwordForm(await this.serverInfo(), this.settings.password_hashing, this.name);
    if (f.form === "refuse") throw new DsopsError(f.message, { hint: f.hint });
    return f;
  }

  /** Before a rotation changes anything: the server must be one this target can set passwords on. */
  async prepare(): Promise<void> {
    await this.form();
  }

  /** Set the password of an account, and nothing else. */
  private async setPassword(a: { user: string; host: string }, pw: string, what: string, secrets: Array<Secret | string>): Promise<void> {
    const f = await this.form();
    if (f.form === "hash") {
      const hash = nativePasswordHash(pw);
      await this.exec("ALTER USER ?@? IDENTIFIED BY PASSWORD ?", [a.user, a.host, hash], what, [...secrets, hash]);
    } else if (f.form === "plain") {
      await this.exec("ALTER USER ?@? IDENTIFIED BY ?", [a.user, a.host, pw], what, secrets);
    } else {
      const plugin = await this.pluginOf(a, what);
      await this.exec(`ALTER USER ?@? IDENTIFIED WITH ${plugin} BY ?`, [a.user, a.host, pw], what, secrets);
    }
  }

  /** MySQL: the account's authentication plugin (kept when its password changes). */
  private async pluginOf(a: { user: string; host: string }, what: string): Promise<string> {
    const c = await this.adminConn();
    let rows: unknown;
    try {
      [rows] = await c.query({ sql: "SELECT plugin FROM mysql.user WHERE user = ? AND host = ?", values: [a.user, a.host], timeout: this.settings.connect_timeout_ms });
    } catch (e) {
      if (isNetwork(e)) this.admin = undefined;
      throw new TargetError(`service "${this.name}": ${what}: reading the account's plugin failed: ${scrubError(e, [])}`, isNetwork(e));
    }
    const plugin = String((rows as Array<{ plugin?: unknown }>)[0]?.plugin ?? "");
    if (!plugin) throw new MissingAccount(`service "${this.name}": ${what}: the account does not exist`);
    if (!/^[A-Za-z0-9_]+$/.test(plugin)) throw new TargetError(`service "${this.name}": ${what}: unexpected authentication plugin name "${plugin.slice(0, 64)}"`);
    return plugin;
  }

  /** Run an admin statement; user, host and password go as escaped values (`?`), never spliced. */
  private async exec(sql: string, values: string[], what: string, secrets: Array<Secret | string>): Promise<void> {
    const c = await this.adminConn();
    try {
      await c.query({ sql, values, timeout: this.settings.connect_timeout_ms });
    } catch (e) {
      if (isNetwork(e)) this.admin = undefined;
      // 1396 ER_CANNOT_USER: no such account
      if ((e as { errno?: number }).errno === 1396) throw new MissingAccount(`service "${this.name}": ${what}: the account does not exist`);
      throw new TargetError(`service "${this.name}": ${what} failed: ${scrubError(e, secrets)}`, isNetwork(e));
    }
  }

  async setSecret(cred: Credential): Promise<void> {
    const pw = cred.secret.reveal();
    if (pw.includes("\0")) throw new TargetError(`service "${this.name}": a MySQL password cannot contain NUL`);
    const a = account(cred.principal, this.settings.user_host);
    try {
      await this.setPassword(a, pw, `ALTER USER '${a.user}'@'${a.host}'`, [cred.secret]);
    } catch (e) {
      if (e instanceof MissingAccount) throw new TargetError(`service "${this.name}": account '${a.user}'@'${a.host}' does not exist`);
      throw e;
    }
  }

  /**
   * Replace the account's password by a random one that is never kept (no login with any known
   * password; a later setSecret gives it a new one). The account is not locked: whether it is
   * locked stays the administrator's decision. No account: no-op.
   */
  async revoke(cred: Credential): Promise<void> {
    const a = account(cred.principal, this.settings.user_host);
    const unknown = randomBytes(32).toString("base64");
    try {
      await this.setPassword(a, unknown, `revoking the password of '${a.user}'@'${a.host}'`, [cred.secret, unknown]);
    } catch (e) {
      if (e instanceof MissingAccount) return;
      throw e;
    }
  }

  async verify(cred: Credential, options: VerifyOptions = {}): Promise<void> {
    const timeout = options.timeoutMs ?? this.settings.connect_timeout_ms;
    const a = account(cred.principal, this.settings.user_host);
    let c: Connection;
    try {
      c = await createConnection({ ...this.base(timeout), user: a.user, password: cred.secret.reveal(), ...(this.settings.database ? { database: this.settings.database } : {}) });
    } catch (e) {
      throw new VerificationError(`service "${this.name}": login as "${a.user}" failed: ${scrubError(e, [cred.secret])}`);
    }
    c.on("error", () => undefined);
    try {
      const [rows] = await c.query({ sql: "SELECT 1 AS ok", timeout });
      if ((rows as Array<{ ok?: unknown }>)[0]?.ok !== 1) throw new Error("SELECT 1 returned no row");
      if (options.query) await c.query({ sql: options.query, timeout });
    } catch (e) {
      throw new VerificationError(`service "${this.name}": check as "${a.user}" failed: ${scrubError(e, [cred.secret])}`);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async check(): Promise<void> {
    const c = await this.adminConn();
    await c.query("SELECT 1");
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = undefined;
    if (a) await a.then((c) => c.end()).catch(() => undefined);
  }
}

/** ALTER USER named an account that does not exist. */
class MissingAccount extends Error {}

function isNetwork(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? "";
  return (
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT"].includes(code) ||
    /timeout|closed state/i.test((e as Error)?.message ?? "")
  );
}
