import type { z } from "zod";
import type { Secret } from "../../core/secret";
import { AdminConnection, adminLogin, adminLoginError, type Login } from "./admin";
import type { AdminSetting } from "./settings";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions, ValueRules } from "./types";

/**
 * SQL database users (postgresql, mysql): one flow, a dialect per server family.
 *
 * The flow (here): the admin credential and connection, running an admin statement (errors
 * scrubbed of the secrets in play, a broken connection replaced, a missing principal told
 * apart), verification (log in as the user, `SELECT 1`, the configured query), check, close.
 * A dialect (`postgresql.ts`, `mysql.ts`): how to connect with its client library, its
 * statements and quoting, how it hashes a password before sending it, what it learns about the
 * server. A dialect changes only the password: a principal an administrator disabled stays
 * disabled, so its verification fails and the rotation rolls back.
 */

/** The settings every SQL target has (its schema in ./settings.ts has these and more). */
export interface SqlSettings {
  readonly type: "postgresql" | "mysql";
  readonly host: string;
  readonly port: number;
  readonly admin: AdminSetting;
  readonly connect_timeout_ms: number;
}

/** A row of a result, by column name. */
export type SqlRow = Record<string, unknown>;

/** A connection of the dialect's client library, seen through the calls the flow needs. */
export interface SqlConnection {
  /** Run a statement (`values` bound the dialect's way: `$1` or `?`); the rows, none for a statement without a result. */
  query(sql: string, values?: readonly unknown[]): Promise<SqlRow[]>;
  /** Called when the connection breaks (its client's `error` event); errors are swallowed otherwise. */
  onBreak(f: () => void): void;
  end(): Promise<void>;
}

/** The flow a dialect works through: the target's name, settings, memory and admin statements. */
export interface SqlSession<S, M> {
  readonly name: string;
  readonly settings: S;
  /** What the dialect keeps between calls on this target (verifiers before a change, the server it reached). */
  readonly memory: M;
  /**
   * Run an admin statement. Failures are TargetErrors saying `<what> failed: <scrubbed reason>`,
   * retryable when the network failed; a statement naming a principal that does not exist
   * throws MissingPrincipal (the dialect words it, or ignores it).
   */
  exec(sql: string, values: readonly unknown[], what: string, secrets: Array<Secret | string>): Promise<SqlRow[]>;
}

/** An admin statement named a principal that does not exist. */
export class MissingPrincipal extends Error {}

/** What differs between PostgreSQL and MySQL/MariaDB. */
export interface SqlDialect<S extends SqlSettings, M> {
  readonly type: S["type"];
  /** The product, in messages ("a PostgreSQL password cannot contain NUL"). */
  readonly product: string;
  readonly schema: z.ZodType<S>;
  /** A new memory for one target. */
  memory(): M;
  /** Log in: as the admin (`verifyTimeoutMs` undefined) or as a rotated user being verified. */
  connect(settings: S, login: Login, verifyTimeoutMs?: number): Promise<SqlConnection>;
  /** The client library's network failures and timeouts. */
  isNetwork(e: unknown): boolean;
  /** The server's "no such role/account" error. */
  isMissing(e: unknown): boolean;
  /** The name a principal logs in with (MySQL: `name@host` logs in as `name`). */
  loginName(principal: string, settings: S): string;
  /** Make `secret` the password of `principal`, changing nothing else. */
  setPassword(s: SqlSession<S, M>, principal: string, secret: Secret): Promise<void>;
  /** Take the password away (no known password logs in); the principal stays. No principal: no-op. */
  revoke(s: SqlSession<S, M>, cred: Credential): Promise<void>;
  /** Before anything changes: refuse when this server cannot be rotated this way. */
  prepare?(s: SqlSession<S, M>): Promise<void>;
}

/** A SQL target: the shared flow over one dialect. */
export class SqlTarget<S extends SqlSettings, M> implements Target, SqlSession<S, M> {
  readonly type: S["type"];
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["rotate", "revoke", "verify"]);
  /** NUL cannot be in a password (PostgreSQL strings, C clients); very long passwords are pointless. */
  readonly valueRules: ValueRules = { minLength: 8, maxLength: 1000, forbidden: "\0" };
  readonly settings: S;
  readonly memory: M;
  private readonly admin: AdminConnection<SqlConnection>;

  constructor(
    protected readonly dialect: SqlDialect<S, M>,
    readonly name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    this.type = dialect.type;
    this.settings = parseServiceSettings(dialect.schema, name, raw);
    this.memory = dialect.memory();
    this.admin = new AdminConnection(
      () => this.openAdmin(),
      (c) => c.end(),
    );
  }

  private async openAdmin(): Promise<SqlConnection> {
    const login = await adminLogin(this.ctx, this.name, this.settings.admin);
    let c: SqlConnection;
    try {
      c = await this.dialect.connect(this.settings, login);
    } catch (e) {
      throw adminLoginError(this.name, login, e, this.dialect.isNetwork(e));
    }
    c.onBreak(() => this.admin.drop()); // a broken connection is replaced on next use
    return c;
  }

  async exec(sql: string, values: readonly unknown[], what: string, secrets: Array<Secret | string>): Promise<SqlRow[]> {
    const c = await this.admin.get();
    try {
      return await c.query(sql, values);
    } catch (e) {
      const network = this.dialect.isNetwork(e);
      if (network) this.admin.drop();
      if (this.dialect.isMissing(e)) throw new MissingPrincipal(what);
      throw new TargetError(`service "${this.name}": ${what} failed: ${scrubError(e, secrets)}`, network);
    }
  }

  async prepare(): Promise<void> {
    await this.dialect.prepare?.(this);
  }

  async setSecret(cred: Credential): Promise<void> {
    if (cred.secret.reveal().includes("\0")) throw new TargetError(`service "${this.name}": a ${this.dialect.product} password cannot contain NUL`);
    await this.dialect.setPassword(this, cred.principal, cred.secret);
  }

  async revoke(cred: Credential): Promise<void> {
    await this.dialect.revoke(this, cred);
  }

  /** Log in as the user, `SELECT 1`, then the configured query; any failure is a VerificationError. */
  async verify(cred: Credential, options: VerifyOptions = {}): Promise<void> {
    const timeout = options.timeoutMs ?? this.settings.connect_timeout_ms;
    const user = this.dialect.loginName(cred.principal, this.settings);
    let c: SqlConnection;
    try {
      c = await this.dialect.connect(this.settings, { username: user, password: cred.secret.reveal() }, timeout);
    } catch (e) {
      throw new VerificationError(`service "${this.name}": login as "${user}" failed: ${scrubError(e, [cred.secret])}`);
    }
    try {
      const rows = await c.query("SELECT 1 AS ok");
      if (rows[0]?.ok !== 1) throw new Error("SELECT 1 returned no row");
      if (options.query) await c.query(options.query);
    } catch (e) {
      throw new VerificationError(`service "${this.name}": check as "${user}" failed: ${scrubError(e, [cred.secret])}`);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /**
   * Logins for the SQL health checks (provider/health/sql-checks.ts): as `cred`'s principal or
   * as the admin, at the service's server or at another one (`at`, a replica) with the same
   * other settings. Errors name the service, the server and the login, scrubbed of both passwords.
   */
  healthAccess(cred: Credential) {
    const endpoint = { host: this.settings.host, port: this.settings.port };
    const open = async (as: "user" | "admin", timeoutMs: number, at?: { host: string; port: number }): Promise<SqlConnection> => {
      const where = at ?? endpoint;
      const settings = { ...this.settings, ...where } as S;
      const login: Login = as === "user" ? { username: this.dialect.loginName(cred.principal, this.settings), password: cred.secret.reveal() } : await adminLogin(this.ctx, this.name, this.settings.admin);
      try {
        return await this.dialect.connect(settings, login, timeoutMs);
      } catch (e) {
        throw new TargetError(`service "${this.name}" at ${where.host}:${where.port}: ${as === "admin" ? "admin " : ""}login as "${login.username}" failed: ${scrubError(e, [cred.secret, login.password])}`, this.dialect.isNetwork(e));
      }
    };
    const wrap = (c: SqlConnection) => ({
      query: async (sql: string, values?: readonly unknown[]) => {
        try {
          return await c.query(sql, values);
        } catch (e) {
          throw new TargetError(scrubError(e, [cred.secret]), this.dialect.isNetwork(e));
        }
      },
      end: () => c.end().catch(() => undefined),
    });
    return {
      dialect: this.type,
      service: this.name,
      endpoint,
      login: async (timeoutMs: number, at?: { host: string; port: number }) => wrap(await open("user", timeoutMs, at)),
      admin: async (timeoutMs: number, at?: { host: string; port: number }) => wrap(await open("admin", timeoutMs, at)),
    };
  }

  async check(): Promise<void> {
    const c = await this.admin.get();
    await c.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.admin.close();
  }
}
