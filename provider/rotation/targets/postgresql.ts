import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { Client, escapeIdentifier, escapeLiteral, type ClientConfig } from "pg";
import { DsopsError } from "../../core/errors";
import type { Secret } from "../../core/secret";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions, ValueRules } from "./types";
import { postgresSettingsSchema, type PostgresSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { postgresSettingsSchema, type PostgresSettings } from "./settings";

/** SCRAM-SHA-256 verifier of a password, as PostgreSQL stores it (`SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`). */
export function scramVerifier(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** True when `verifier` (as PostgreSQL stores it) is the SCRAM-SHA-256 verifier of `password`. */
export function scramMatches(verifier: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!m) return false;
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 10_000_000) return false;
  return scramVerifier(password, iterations, Buffer.from(m[2], "base64")) === verifier;
}

/** Printable ASCII: SASLprep leaves it unchanged, so a verifier computed here matches the server's. */
const SASLPREP_SAFE = /^[\x20-\x7e]*$/;

/**
 * PostgreSQL roles: ALTER ROLE … PASSWORD through an admin connection; verify by logging in.
 * Only the password changes: a role an administrator disabled (NOLOGIN) stays disabled, so its
 * verification fails and the rotation rolls back.
 */
export class PostgresTarget implements Target {
  readonly type = "postgresql" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["rotate", "revoke", "verify"]);
  /** NUL cannot be in a PostgreSQL string; very long passwords are pointless. */
  readonly valueRules: ValueRules = { minLength: 8, maxLength: 1000, forbidden: "\0" };
  readonly settings: PostgresSettings;
  private admin?: Promise<Client>;
  /**
   * The verifier each role had before this instance last changed it (when the admin may read
   * pg_authid): setting that password back restores the very same verifier, so a rollback
   * leaves the role exactly as it was. Verifiers only, never a password; memory only.
   */
  private readonly before = new Map<string, string>();

  constructor(
    readonly name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    this.settings = parseServiceSettings(postgresSettingsSchema, name, raw);
  }

  private base(): ClientConfig {
    const s = this.settings;
    return {
      host: s.host,
      port: s.port,
      database: s.database,
      connectionTimeoutMillis: s.connect_timeout_ms,
      ssl: s.ssl === "disable" ? false : s.ssl === "require" ? { rejectUnauthorized: false } : true,
      application_name: "dsops-rotation",
    };
  }

  private async adminClient(): Promise<Client> {
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
        const c = new Client({ ...this.base(), user: cred.username, password: cred.password });
        c.on("error", () => {
          this.admin = undefined; // a broken connection is replaced on next use
        });
        try {
          await c.connect();
        } catch (e) {
          throw new TargetError(`service "${this.name}": admin login as "${cred.username}" failed: ${scrubError(e, [cred.password])}`, isNetwork(e));
        }
        return c;
      })();
      this.admin.catch(() => (this.admin = undefined));
    }
    return this.admin;
  }

  /** Only the password: `LOGIN`, `VALID UNTIL` and every other attribute of the role stay as they are. */
  private async alter(role: string, passwordSql: string, secrets: Array<Secret | string>): Promise<void> {
    const c = await this.adminClient();
    try {
      await c.query(`ALTER ROLE ${escapeIdentifier(role)} WITH PASSWORD ${passwordSql}`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "42704") throw new TargetError(`service "${this.name}": role "${role}" does not exist`);
      if (isNetwork(e)) this.admin = undefined;
      throw new TargetError(`service "${this.name}": ALTER ROLE "${role}" failed: ${scrubError(e, secrets)}`, isNetwork(e));
    }
  }

  /** The role's stored verifier; undefined when it has none or the admin may not read pg_authid (not a superuser). */
  private async verifierOf(role: string): Promise<string | undefined> {
    const c = await this.adminClient();
    try {
      const r = await c.query<{ rolpassword: string | null }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
      return r.rows[0]?.rolpassword ?? undefined;
    } catch (e) {
      if (isNetwork(e)) throw new TargetError(`service "${this.name}": reading the password verifier of "${role}" failed: ${scrubError(e, [])}`, true);
      return undefined; // 42501 permission denied: a CREATEROLE admin; the password is set without this check
    }
  }

  async setSecret(cred: Credential): Promise<void> {
    const pw = cred.secret.reveal();
    if (pw.includes("\0")) throw new TargetError(`service "${this.name}": a PostgreSQL password cannot contain NUL`);
    const role = cred.principal;
    const current = await this.verifierOf(role);
    if (current && scramMatches(current, pw)) return; // already set: nothing to change
    const earlier = this.before.get(role);
    if (current !== undefined) this.before.set(role, current);
    const literal =
      earlier !== undefined && scramMatches(earlier, pw)
        ? escapeLiteral(earlier)
        : this.settings.password_hashing === "client-scram" && SASLPREP_SAFE.test(pw)
          ? escapeLiteral(scramVerifier(pw))
          : escapeLiteral(pw);
    await this.alter(role, literal, [cred.secret]);
  }

  /** Disable the role's password login (`PASSWORD NULL`); the role stays, a later rotation sets a new one. */
  async revoke(cred: Credential): Promise<void> {
    const c = await this.adminClient();
    try {
      await c.query(`ALTER ROLE ${escapeIdentifier(cred.principal)} WITH PASSWORD NULL`);
    } catch (e) {
      if ((e as { code?: string }).code === "42704") return; // no role, nothing to revoke
      throw new TargetError(`service "${this.name}": revoking "${cred.principal}" failed: ${scrubError(e, [cred.secret])}`, isNetwork(e));
    }
  }

  async verify(cred: Credential, options: VerifyOptions = {}): Promise<void> {
    const timeout = options.timeoutMs ?? this.settings.connect_timeout_ms;
    const c = new Client({ ...this.base(), user: cred.principal, password: cred.secret.reveal(), connectionTimeoutMillis: timeout, query_timeout: timeout });
    c.on("error", () => undefined);
    try {
      await c.connect();
    } catch (e) {
      throw new VerificationError(`service "${this.name}": login as "${cred.principal}" failed: ${scrubError(e, [cred.secret])}`);
    }
    try {
      const r = await c.query("SELECT 1 AS ok");
      if (r.rows[0]?.ok !== 1) throw new Error("SELECT 1 returned no row");
      if (options.query) await c.query(options.query);
    } catch (e) {
      throw new VerificationError(`service "${this.name}": check as "${cred.principal}" failed: ${scrubError(e, [cred.secret])}`);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async check(): Promise<void> {
    const c = await this.adminClient();
    await c.query("SELECT 1");
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = undefined;
    if (a) await a.then((c) => c.end()).catch(() => undefined);
  }
}

function isNetwork(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? "";
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"].includes(code) || /timeout|terminated/i.test((e as Error)?.message ?? "");
}
