import { createHash, randomBytes } from "node:crypto";
import { createClient, type RedisClientType } from "redis";
import { Secret } from "../../core/secret";
import { AdminConnection, adminLogin, adminLoginError, isNetworkError } from "./admin";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions, ValueRules } from "./types";
import { redisSettingsSchema, type RedisSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { redisSettingsSchema, type RedisSettings } from "./settings";

/** The SHA-256 of a password as Redis ACLs keep it: passwords are sent hashed (`#<hex>`), never in plaintext. */
export function redisPasswordHash(password: string): string {
  return createHash("sha256").update(password, "utf8").digest("hex");
}

/**
 * Redis ACL users. `rotate` replaces every password of a user (`ACL SETUSER u resetpass #…`);
 * `create` adds one next to the others, so two passwords are valid at once (two-secret); neither
 * touches the user's `on`/`off` flag: a user an administrator switched off stays off (its
 * verification fails and the rotation rolls back), and only a user dsops creates (`create_with`)
 * is created `on`;
 * `revoke` removes one password (`!<hash>`), or every password when the secret is empty (the
 * user can no longer log in); `verify` is AUTH as the user and PING. Passwords travel as their
 * SHA-256 (`#`/`!` rules), so neither MONITOR, the slow log nor an error echoes a plaintext.
 */
export class RedisTarget implements Target {
  readonly type = "redis" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["rotate", "create", "revoke", "verify"]);
  readonly valueRules: ValueRules = { minLength: 8, maxLength: 1000, forbidden: "\0" };
  readonly settings: RedisSettings;
  private readonly admin = new AdminConnection<RedisClientType>(
    () => this.openAdmin(),
    (c) => (c.isOpen ? c.destroy() : undefined),
  );

  constructor(
    readonly name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    this.settings = parseServiceSettings(redisSettingsSchema, name, raw);
  }

  private socket(timeoutMs?: number) {
    const s = this.settings;
    const base = { host: s.host, port: s.port, connectTimeout: timeoutMs ?? s.connect_timeout_ms, reconnectStrategy: false as const };
    if (s.tls === "disable") return base;
    return { ...base, tls: true as const, rejectUnauthorized: s.tls === "verify-full" };
  }

  private async openAdmin(): Promise<RedisClientType> {
    const login = await adminLogin(this.ctx, this.name, this.settings.admin);
    const c = createClient({ socket: this.socket(), username: login.username, password: login.password }) as RedisClientType;
    c.on("error", () => undefined);
    c.on("end", () => this.admin.drop()); // a closed connection is replaced on next use
    try {
      await c.connect();
    } catch (e) {
      if (c.isOpen) c.destroy();
      throw adminLoginError(this.name, login, e, isNetwork(e));
    }
    return c;
  }

  private async command(args: string[], what: string, secrets: Array<Secret | string>): Promise<unknown> {
    const c = await this.admin.get();
    try {
      return await c.sendCommand(args);
    } catch (e) {
      if (isNetwork(e)) this.admin.drop();
      throw new TargetError(`service "${this.name}": ${what} failed: ${scrubError(e, secrets)}`, isNetwork(e));
    }
  }

  private async exists(user: string): Promise<boolean> {
    return (await this.command(["ACL", "GETUSER", user], `ACL GETUSER "${user}"`, [])) !== null;
  }

  /**
   * The rules that give `user` this password: for an existing user, the password rules only
   * (its on/off flag and permissions stay); for a missing one, `on` plus `create_with`, in the
   * same command (a missing user without `create_with` is an error).
   */
  private async passwordRules(user: string, rules: string[]): Promise<string[]> {
    if (await this.exists(user)) return rules;
    if (!this.settings.create_with) throw new TargetError(`service "${this.name}": Redis user "${user}" does not exist (set create_with to create it)`);
    return ["on", "resetpass", ...rules.filter((r) => r !== "resetpass"), ...this.settings.create_with];
  }

  /** Replace every password of the user with this one (an `off` user stays off). */
  async setSecret(cred: Credential): Promise<void> {
    const hash = redisPasswordHash(cred.secret.reveal());
    const rules = await this.passwordRules(cred.principal, ["resetpass", `#${hash}`]);
    await this.command(["ACL", "SETUSER", cred.principal, ...rules], `ACL SETUSER "${cred.principal}"`, [cred.secret, hash]);
  }

  /** Add a password next to the user's others (both valid at once; an `off` user stays off). */
  async create(principal: string, value?: Secret): Promise<Credential> {
    const secret = value ?? new Secret(randomBytes(24).toString("base64url"));
    const hash = redisPasswordHash(secret.reveal());
    const rules = await this.passwordRules(principal, [`#${hash}`]);
    await this.command(["ACL", "SETUSER", principal, ...rules], `adding a password to "${principal}"`, [secret, hash]);
    return { principal, secret };
  }

  /** Remove this password; an empty secret removes them all (no login). No user or no such password: no-op. */
  async revoke(cred: Credential): Promise<void> {
    if (!(await this.exists(cred.principal))) return;
    const pw = cred.secret.reveal();
    if (pw === "") {
      await this.command(["ACL", "SETUSER", cred.principal, "resetpass"], `removing the passwords of "${cred.principal}"`, []);
      return;
    }
    const hash = redisPasswordHash(pw);
    const info = await this.command(["ACL", "GETUSER", cred.principal], `ACL GETUSER "${cred.principal}"`, []);
    if (!userPasswords(info).includes(hash)) return;
    await this.command(["ACL", "SETUSER", cred.principal, `!${hash}`], `removing a password of "${cred.principal}"`, [cred.secret, hash]);
  }

  /** AUTH as the user and PING; `query` (a command, words separated by spaces) is run as the user too. */
  async verify(cred: Credential, options: VerifyOptions = {}): Promise<void> {
    const timeout = options.timeoutMs ?? this.settings.connect_timeout_ms;
    const c = createClient({ socket: this.socket(timeout), username: cred.principal, password: cred.secret.reveal() });
    c.on("error", () => undefined);
    try {
      await c.connect();
    } catch (e) {
      if (c.isOpen) c.destroy();
      throw new VerificationError(`service "${this.name}": AUTH as "${cred.principal}" failed: ${scrubError(e, [cred.secret])}`);
    }
    try {
      const pong = await c.ping();
      if (pong !== "PONG") throw new Error(`PING answered ${String(pong).slice(0, 40)}`);
      if (options.query) await c.sendCommand(options.query.trim().split(/\s+/));
    } catch (e) {
      throw new VerificationError(`service "${this.name}": check as "${cred.principal}" failed: ${scrubError(e, [cred.secret])}`);
    } finally {
      if (c.isOpen) c.destroy();
    }
  }

  async check(): Promise<void> {
    const c = await this.admin.get();
    await c.ping();
  }

  async close(): Promise<void> {
    await this.admin.close();
  }
}

/** The password hashes in an ACL GETUSER reply (a flat field/value list, or a map, depending on protocol and client). */
export function userPasswords(info: unknown): string[] {
  if (info === null || typeof info !== "object") return [];
  if (Array.isArray(info)) {
    for (let i = 0; i + 1 < info.length; i += 2) if (String(info[i]) === "passwords") return (info[i + 1] as unknown[]).map(String);
    return [];
  }
  const p = info instanceof Map ? info.get("passwords") : (info as Record<string, unknown>).passwords;
  return Array.isArray(p) ? p.map(String) : [];
}

function isNetwork(e: unknown): boolean {
  return isNetworkError(e, { names: /ConnectionTimeout|SocketClosedUnexpectedly|ClientClosed/, message: /timeout|closed/i });
}
