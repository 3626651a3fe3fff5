import { createHash } from "node:crypto";
import { createConnection, type Connection, type ConnectionOptions } from "mysql2/promise";
import { DsopsError } from "../../engine/errors";
import type { Secret } from "../../engine/secret";
import type { ValueRules } from "../generator";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions } from "./types";
import { mysqlSettingsSchema, type MysqlSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { mysqlSettingsSchema, type MysqlSettings } from "./settings";

/** The mysql_native_password hash of a password, as the server stores it: `*` + hex(SHA1(SHA1(pw))), upper case. */
export function nativePasswordHash(password: string): string {
  const once = createHash("sha1").update(Buffer.from(password, "utf8")).digest();
  return "*" + createHash("sha1").update(once).digest("hex").toUpperCase();
}

/** `name` or `name@host` → the account's user and host parts. */
function account(principal: string, defaultHost: string): { user: string; host: string } {
  const at = principal.lastIndexOf("@");
  if (at > 0) return { user: principal.slice(0, at), host: principal.slice(at + 1) };
  return { user: principal, host: defaultHost };
}

/**
 * MySQL/MariaDB accounts: ALTER USER … IDENTIFIED BY PASSWORD through an admin connection (user,
 * host and hash passed as escaped values, never spliced); verify by logging in as the user and
 * running SELECT 1. Revoke locks the account (ACCOUNT LOCK); setting a password unlocks it.
 */
export class MysqlTarget implements Target {
  readonly type = "mysql" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["rotate", "revoke", "verify"]);
  /** NUL ends a C string in older clients; very long passwords are pointless. */
  readonly valueRules: ValueRules = { minLength: 8, maxLength: 1000, forbidden: "\0" };
  readonly settings: MysqlSettings;
  private admin?: Promise<Connection>;

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
    const what = `ALTER USER '${a.user}'@'${a.host}'`;
    try {
      if (this.settings.password_hashing === "client-native") {
        const hash = nativePasswordHash(pw);
        await this.exec("ALTER USER ?@? IDENTIFIED BY PASSWORD ? ACCOUNT UNLOCK", [a.user, a.host, hash], what, [cred.secret, hash]);
      }
      else await this.exec("ALTER USER ?@? IDENTIFIED BY ? ACCOUNT UNLOCK", [a.user, a.host, pw], what, [cred.secret]);
    } catch (e) {
      if (e instanceof MissingAccount) throw new TargetError(`service "${this.name}": account '${a.user}'@'${a.host}' does not exist`);
      throw e;
    }
  }

  /** Lock the account (ACCOUNT LOCK): no login with any password; a later setSecret unlocks it. No account: no-op. */
  async revoke(cred: Credential): Promise<void> {
    const a = account(cred.principal, this.settings.user_host);
    try {
      await this.exec("ALTER USER ?@? ACCOUNT LOCK", [a.user, a.host], `locking '${a.user}'@'${a.host}'`, [cred.secret]);
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
