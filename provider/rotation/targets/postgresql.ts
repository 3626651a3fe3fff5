import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { Client, escapeIdentifier, escapeLiteral, type ClientConfig } from "pg";
import type { Secret } from "../../core/secret";
import { isNetworkError } from "./admin";
import { TargetError } from "./errors";
import { postgresSettingsSchema, type PostgresSettings } from "./settings";
import { MissingPrincipal, SqlTarget, type SqlConnection, type SqlDialect, type SqlSession } from "./sql";
import type { TargetContext } from "./types";

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
 * What the PostgreSQL dialect keeps per target: the verifier each role had before this target
 * last changed it (when the admin may read pg_authid). Setting that password back restores the
 * very same verifier, so a rollback leaves the role exactly as it was. Verifiers only, never a
 * password; memory only.
 */
type PostgresMemory = Map<string, string>;
type Session = SqlSession<PostgresSettings, PostgresMemory>;

function clientConfig(s: PostgresSettings): ClientConfig {
  return {
    host: s.host,
    port: s.port,
    database: s.database,
    connectionTimeoutMillis: s.connect_timeout_ms,
    ssl: s.ssl === "disable" ? false : s.ssl === "require" ? { rejectUnauthorized: false } : true,
    application_name: "dsops-rotation",
  };
}

/** Only the password: `LOGIN`, `VALID UNTIL` and every other attribute of the role stay as they are. */
async function alter(s: Session, role: string, passwordSql: string, secrets: Array<Secret | string>): Promise<void> {
  try {
    await s.exec(`ALTER ROLE ${escapeIdentifier(role)} WITH PASSWORD ${passwordSql}`, [], `ALTER ROLE "${role}"`, secrets);
  } catch (e) {
    if (e instanceof MissingPrincipal) throw new TargetError(`service "${s.name}": role "${role}" does not exist`);
    throw e;
  }
}

/** The role's stored verifier; undefined when it has none or the admin may not read pg_authid (not a superuser). */
async function verifierOf(s: Session, role: string): Promise<string | undefined> {
  try {
    const rows = await s.exec("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role], `reading the password verifier of "${role}"`, []);
    return (rows[0]?.rolpassword as string | null | undefined) ?? undefined;
  } catch (e) {
    if (e instanceof TargetError && e.retryable) throw e;
    return undefined; // 42501 permission denied: a CREATEROLE admin; the password is set without this check
  }
}

/**
 * PostgreSQL roles: ALTER ROLE … PASSWORD through an admin connection, the SCRAM-SHA-256
 * verifier computed here (`password_hashing: client-scram`) so the plaintext never reaches the
 * server; verify by logging in. Only the password changes: a role an administrator disabled
 * (NOLOGIN) stays disabled, so its verification fails and the rotation rolls back.
 */
export const postgresDialect: SqlDialect<PostgresSettings, PostgresMemory> = {
  type: "postgresql",
  product: "PostgreSQL",
  schema: postgresSettingsSchema,
  memory: () => new Map(),

  async connect(settings, login, verifyTimeoutMs) {
    const c = new Client({
      ...clientConfig(settings),
      user: login.username,
      password: login.password,
      ...(verifyTimeoutMs !== undefined ? { connectionTimeoutMillis: verifyTimeoutMs, query_timeout: verifyTimeoutMs } : {}),
    });
    let onBreak = () => undefined as void;
    c.on("error", () => onBreak());
    await c.connect();
    const conn: SqlConnection = {
      query: async (sql, values) => (await c.query(sql, values ? [...values] : undefined)).rows,
      onBreak: (f) => (onBreak = f),
      end: () => c.end(),
    };
    return conn;
  },

  isNetwork: (e) => isNetworkError(e, { message: /timeout|terminated/i }),
  isMissing: (e) => (e as { code?: string } | undefined)?.code === "42704",
  loginName: (principal) => principal,

  async setPassword(s, role, secret) {
    const pw = secret.reveal();
    const current = await verifierOf(s, role);
    if (current && scramMatches(current, pw)) return; // already set: nothing to change
    const earlier = s.memory.get(role);
    if (current !== undefined) s.memory.set(role, current);
    const literal =
      earlier !== undefined && scramMatches(earlier, pw)
        ? escapeLiteral(earlier)
        : s.settings.password_hashing === "client-scram" && SASLPREP_SAFE.test(pw)
          ? escapeLiteral(scramVerifier(pw))
          : escapeLiteral(pw);
    await alter(s, role, literal, [secret]);
  },

  /** Disable the role's password login (`PASSWORD NULL`); the role stays, a later rotation sets a new one. */
  async revoke(s, cred) {
    try {
      await s.exec(`ALTER ROLE ${escapeIdentifier(cred.principal)} WITH PASSWORD NULL`, [], `revoking "${cred.principal}"`, [cred.secret]);
    } catch (e) {
      if (e instanceof MissingPrincipal) return; // no role, nothing to revoke
      throw e;
    }
  },
};

/** A postgresql target (`services.<name>` of type postgresql). */
export class PostgresTarget extends SqlTarget<PostgresSettings, PostgresMemory> {
  constructor(name: string, raw: unknown, ctx: TargetContext) {
    super(postgresDialect, name, raw, ctx);
  }
}
