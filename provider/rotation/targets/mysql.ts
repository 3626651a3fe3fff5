import { createHash, randomBytes } from "node:crypto";
import { createConnection, type ConnectionOptions } from "mysql2/promise";
import { DsopsError } from "../../core/errors";
import type { Secret } from "../../core/secret";
import { isNetworkError } from "./admin";
import { TargetError } from "./errors";
import { mysqlSettingsSchema, type MysqlSettings } from "./settings";
import { MissingPrincipal, SqlTarget, type SqlConnection, type SqlDialect, type SqlSession } from "./sql";
import type { TargetContext } from "./types";

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

/** What the MySQL dialect keeps per target: the server it reached, asked once. */
interface MysqlMemory {
  server?: { flavor: MysqlFlavor; version: string };
}
type Session = SqlSession<MysqlSettings, MysqlMemory>;

/** MariaDB or MySQL and its version, asked once (`SELECT VERSION(), @@version_comment`). */
async function serverInfo(s: Session): Promise<{ flavor: MysqlFlavor; version: string }> {
  if (s.memory.server) return s.memory.server;
  const rows = await s.exec("SELECT VERSION() AS v, @@version_comment AS c", [], "asking the server's version", []);
  const version = String(rows[0]?.v ?? "");
  s.memory.server = { flavor: serverFlavor(version, String(rows[0]?.c ?? "")), version };
  return s.memory.server;
}

/** How passwords are set on this server; a DsopsError (nothing changed) when there is no way. */
async function form(s: Session): Promise<Exclude<PasswordForm, { form: "refuse" }>> {
  const f = passwordForm(await serverInfo(s), s.settings.password_hashing, s.name);
  if (f.form === "refuse") throw new DsopsError(f.message, { hint: f.hint });
  return f;
}

/** MySQL: the account's authentication plugin (kept when its password changes). */
async function pluginOf(s: Session, a: { user: string; host: string }, what: string): Promise<string> {
  const rows = await s.exec("SELECT plugin FROM mysql.user WHERE user = ? AND host = ?", [a.user, a.host], `${what}: reading the account's plugin`, []);
  const plugin = String(rows[0]?.plugin ?? "");
  if (!plugin) throw new MissingPrincipal(what);
  if (!/^[A-Za-z0-9_]+$/.test(plugin)) throw new TargetError(`service "${s.name}": ${what}: unexpected authentication plugin name "${plugin.slice(0, 64)}"`);
  return plugin;
}

/** Set the password of an account, and nothing else; user, host and password go as escaped values (`?`), never spliced. */
async function setAccountPassword(s: Session, a: { user: string; host: string }, pw: string, what: string, secrets: Array<Secret | string>): Promise<void> {
  const f = await form(s);
  if (f.form === "hash") {
    const hash = nativePasswordHash(pw);
    await s.exec("ALTER USER ?@? IDENTIFIED BY PASSWORD ?", [a.user, a.host, hash], what, [...secrets, hash]);
  } else if (f.form === "plain") {
    await s.exec("ALTER USER ?@? IDENTIFIED BY ?", [a.user, a.host, pw], what, secrets);
  } else {
    const plugin = await pluginOf(s, a, what);
    await s.exec(`ALTER USER ?@? IDENTIFIED WITH ${plugin} BY ?`, [a.user, a.host, pw], what, secrets);
  }
}

/**
 * MariaDB (and, with `password_hashing: server`, MySQL) accounts: ALTER USER … IDENTIFIED BY
 * through an admin connection; the server is told apart on first use (`SELECT VERSION(),
 * @@version_comment`), see `passwordForm`. Only the password changes: a locked account
 * (ACCOUNT LOCK) stays locked, so its verification fails and the rotation rolls back. Revoke
 * replaces the password by a random one nobody knows (it does not lock: whether an account is
 * locked stays the administrator's decision; a later setSecret gives it a new one).
 */
export const mysqlDialect: SqlDialect<MysqlSettings, MysqlMemory> = {
  type: "mysql",
  product: "MySQL",
  schema: mysqlSettingsSchema,
  memory: () => ({}),

  async connect(settings, login, verifyTimeoutMs) {
    const timeout = verifyTimeoutMs ?? settings.connect_timeout_ms;
    const options: ConnectionOptions = {
      host: settings.host,
      port: settings.port,
      connectTimeout: timeout,
      ...(settings.ssl === "disable" ? {} : { ssl: settings.ssl === "require" ? { rejectUnauthorized: false } : {} }),
      user: login.username,
      password: login.password,
      // the rotated user logs in to the configured database; the admin to none
      ...(verifyTimeoutMs !== undefined && settings.database ? { database: settings.database } : {}),
    };
    const c = await createConnection(options);
    let onBreak = () => undefined as void;
    c.on("error", () => onBreak());
    const conn: SqlConnection = {
      query: async (sql, values) => {
        const [rows] = await c.query({ sql, ...(values ? { values: [...values] } : {}), timeout });
        return Array.isArray(rows) ? (rows as Array<Record<string, unknown>>) : [];
      },
      onBreak: (f) => (onBreak = f),
      end: () => c.end(),
    };
    return conn;
  },

  isNetwork: (e) => isNetworkError(e, { codes: ["PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT"], message: /timeout|closed state/i }),
  // 1396 ER_CANNOT_USER: no such account
  isMissing: (e) => (e as { errno?: number } | undefined)?.errno === 1396,
  loginName: (principal, settings) => account(principal, settings.user_host).user,

  async setPassword(s, principal, secret) {
    const a = account(principal, s.settings.user_host);
    try {
      await setAccountPassword(s, a, secret.reveal(), `ALTER USER '${a.user}'@'${a.host}'`, [secret]);
    } catch (e) {
      if (e instanceof MissingPrincipal) throw new TargetError(`service "${s.name}": account '${a.user}'@'${a.host}' does not exist`);
      throw e;
    }
  },

  async revoke(s, cred) {
    const a = account(cred.principal, s.settings.user_host);
    const unknown = randomBytes(32).toString("base64");
    try {
      await setAccountPassword(s, a, unknown, `revoking the password of '${a.user}'@'${a.host}'`, [cred.secret, unknown]);
    } catch (e) {
      if (e instanceof MissingPrincipal) return; // no account: nothing to revoke
      throw e;
    }
  },

  /** Before a rotation changes anything: the server must be one this target can set passwords on. */
  async prepare(s) {
    await form(s);
  },
};

/** A mysql target (`services.<name>` of type mysql: MariaDB, or MySQL with `password_hashing: server`). */
export class MysqlTarget extends SqlTarget<MysqlSettings, MysqlMemory> {
  constructor(name: string, raw: unknown, ctx: TargetContext) {
    super(mysqlDialect, name, raw, ctx);
  }

  /** MariaDB or MySQL and its version, asked once. */
  serverInfo(): Promise<{ flavor: MysqlFlavor; version: string }> {
    return serverInfo(this);
  }
}
