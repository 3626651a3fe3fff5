import type { Clock } from "../../core/clock";
import type { Secret } from "../../core/secret";

/** What a target accepts as a secret value; the generator checks its policy against these. */
export interface ValueRules {
  /** Shortest value the target accepts. */
  readonly minLength?: number;
  /** Longest value the target accepts. */
  readonly maxLength?: number;
  /** Characters the target refuses (or mangles) in a value. */
  readonly forbidden?: string;
}

/**
 * Rotation targets: the systems whose credentials are rotated (`services:` in dsops.yaml).
 *
 * To add a target type (mysql, redis, aws.iam, webhook, script …):
 * 1. add its name to `targetTypes` below;
 * 2. add its zod settings schema to `./settings.ts` (`targetSettingsSchemas`, and what it can
 *    do to `targetCapabilities`): dsops.yaml is checked with it at load, without the client library;
 * 3. write `provider/rotation/targets/<type>.ts` with a class implementing `Target` (import the
 *    client library at the top of that file); a SQL database is a dialect of `./sql.ts` (see
 *    postgresql.ts, mysql.ts), and a target logging in as an administrator uses `./admin.ts`;
 * 4. add its factory to `targetFactories` in `./registry.ts` (the compiler refuses a type in
 *    `targetTypes` without one); the factory `require`s the file, so its client library is
 *    loaded only when a service of that type is used.
 * Errors leaving a target must not contain a secret value: run messages through
 * `scrubError` (./errors.ts) with the credentials in play. Every target passes the contract
 * suite tests/support/target-contract.ts: its test file adds a row.
 */
export const targetTypes = ["postgresql", "mysql", "redis", "aws.iam", "webhook", "script"] as const;
export type TargetType = (typeof targetTypes)[number];

/**
 * Service types of dsops's service catalogue that have no target here yet: a `services:` entry
 * of one of these types loads (a warning at `dsops plan`), and rotating it is a clear "not
 * supported yet" error. The one table of them.
 */
export const plannedTargetTypes = [
  "github", "stripe", "datadog", "sendgrid", "twilio", "slack", "mongodb", "elasticsearch", "rabbitmq",
  "kafka", "snowflake", "auth0", "okta", "cloudflare", "heroku", "npm", "docker", "vercel",
] as const;

/** Other names of target types (dsops's catalogue writes `postgres`): read as the type they name. */
export const targetTypeAliases: Readonly<Record<string, TargetType>> = { postgres: "postgresql" };

/** What a target can do; the strategy's steps run only where the capability is there. */
export type TargetCapability =
  /** `create`: mint a new credential next to the old one (API keys: both valid at once). */
  | "create"
  /** `rotate`: set the secret of an existing principal (ALTER ROLE … PASSWORD). */
  | "rotate"
  /** `revoke`: invalidate one credential (delete a key, disable a user's password). */
  | "revoke"
  /** `verify`: prove a credential works by using it (log in and SELECT 1, AUTH+PING, GetCallerIdentity). */
  | "verify";

/**
 * A credential at a target: who (never secret) and the secret part. For a database user the
 * principal is the user name and the secret its password; for an access key the principal is
 * the key id and the secret the secret key.
 */
export interface Credential {
  readonly principal: string;
  readonly secret: Secret;
}

/** Options of a verification. */
export interface VerifyOptions {
  /** A check beyond the target's own (SQL targets: a query run as the rotated user). */
  readonly query?: string;
  /** Milliseconds the verification may take. */
  readonly timeoutMs?: number;
}

/** A rotation target. Every method is idempotent: the engine repeats a step after a crash. */
export interface Target {
  /** The service's name in dsops.yaml. */
  readonly name: string;
  readonly type: TargetType;
  readonly capabilities: ReadonlySet<TargetCapability>;
  /** What a generated value must satisfy (length, forbidden characters). */
  readonly valueRules: ValueRules;
  /**
   * `rotate`: make `cred.secret` the secret of `cred.principal`, and change nothing else: a
   * principal an administrator disabled (NOLOGIN, ACCOUNT LOCK, an ACL user `off`) stays
   * disabled, so its verification fails and the rotation rolls back. Setting the same value
   * again is a no-op in effect.
   */
  setSecret?(cred: Credential): Promise<void>;
  /**
   * `create`: mint a new credential for `principal` (the target draws the secret; `value`, when
   * given, is a generated value the target may use instead). Two at once must be allowed.
   * `replacing` is the stored credential the new one is to replace: a target refuses (a
   * TargetError, before minting anything) when an administrator disabled it, since a new
   * credential would silently give the principal its access back.
   */
  create?(principal: string, value?: Secret, replacing?: Credential): Promise<Credential>;
  /**
   * Before a rotation changes anything (and in a dry run): refuse, with a DsopsError saying why,
   * when this target cannot rotate here (MySQL where only MariaDB statements are configured).
   */
  prepare?(): Promise<void>;
  /** `revoke`: invalidate this credential (a user's password: disable the login). Already revoked: no-op. */
  revoke?(cred: Credential): Promise<void>;
  /** `verify`: use the credential; throws VerificationError (./errors.ts) when it does not work. */
  verify?(cred: Credential, options?: VerifyOptions): Promise<void>;
  /**
   * `create` targets: the ids of the credentials `principal` holds at the target (never a
   * secret), so a run resumed after a crash between `create` and staging can revoke the orphan.
   * The engine saves the list before its first `create` and revokes only ids listed later that
   * are neither in it nor stored: a credential made by someone else is left alone (a warning).
   */
  list?(principal: string): Promise<string[]>;
  /** Check connectivity with the admin credential (doctor, dry runs). */
  check?(): Promise<void>;
  /** Release connections. */
  close?(): Promise<void>;
}

/** What a target factory gets besides its (already checked) settings. */
export interface TargetContext {
  /** Resolve a secret reference (`store://…`) through the engine's Resolver: admin credentials. */
  resolveRef(ref: string): Promise<Secret>;
  readonly clock: Clock;
  /** Folder of the configuration file. */
  readonly configDir: string;
}

/** Builds a target from its raw `services:` entry; checks the entry with the target's own zod schema. */
export type TargetFactory = (name: string, raw: unknown, ctx: TargetContext) => Target;
