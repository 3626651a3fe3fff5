import * as z from "zod";
import type { TargetCapability, TargetType } from "./types";

/**
 * Settings of every rotation target type, as written under `services:`. These schemas are light
 * (no client library is loaded here), so dsops.yaml is checked when it loads (`dsops plan`,
 * `pulumi preview`) without loading pg, mysql2, redis or the AWS SDK; the target code lives in
 * `<type>.ts` and checks its entry with the same schema.
 */

/** Capabilities a protocol target may declare: what its endpoint implements. */
export const protocolCapabilities = z.array(z.enum(["rotate", "verify"])).min(1).default(["rotate", "verify"]);

/**
 * The admin credential of a target that logs in as an administrator: a reference whose value
 * is JSON {"username", "password"}, or the user name and a reference to the password alone
 * (dsops's `admin_credentials: {username, password: {from: …}}` is read as this form; the
 * user name may be a reference too).
 */
export const adminSchema = z.union([
  z.string().startsWith("store://", "expected a reference store://<store>/<key> whose value is JSON {\"username\", \"password\"}"),
  z.strictObject({
    username: z.string().min(1),
    password: z.string().startsWith("store://", "expected a reference store://<store>/<key> to the admin password (never the password itself)"),
  }),
]);
export type AdminSetting = z.infer<typeof adminSchema>;

/** `services.<name>` of type postgresql. */
export const postgresSettingsSchema = z.strictObject({
  type: z.literal("postgresql"),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(5432),
  /** Database the admin connects to and the rotated user logs in to for verification. */
  database: z.string().min(1).default("postgres"),
  /** The admin credential: a reference to a JSON value {"username", "password"}, or {username, password: reference}. */
  admin: adminSchema,
  /** `require`: TLS without certificate checks; `verify-full`: TLS with them. */
  ssl: z.enum(["disable", "require", "verify-full"]).default("disable"),
  /**
   * `client-scram` (default): the SCRAM-SHA-256 verifier is computed here and sent instead of
   * the password, so the plaintext never reaches the server (nor its statement log).
   * `server`: send the password (escaped) and let the server hash it.
   */
  password_hashing: z.enum(["client-scram", "server"]).default("client-scram"),
  connect_timeout_ms: z.number().int().positive().default(10000),
  description: z.string().optional(),
});
export type PostgresSettings = z.infer<typeof postgresSettingsSchema>;

/** `services.<name>` of type mysql (MySQL and MariaDB). */
export const mysqlSettingsSchema = z.strictObject({
  type: z.literal("mysql"),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(3306),
  /** Database the rotated user logs in to for verification (none by default). */
  database: z.string().min(1).optional(),
  /** The admin credential: a reference to a JSON value {"username", "password"}, or {username, password: reference}. */
  admin: adminSchema,
  /** Host part of the rotated accounts (`'user'@'<host>'`); a principal `name@host` names its own. */
  user_host: z.string().min(1).default("%"),
  /** `require`: TLS without certificate checks; `verify-full`: TLS with them. */
  ssl: z.enum(["disable", "require", "verify-full"]).default("disable"),
  /**
   * `client-native` (default, MariaDB only): the mysql_native_password hash is computed here and
   * sent (`IDENTIFIED BY PASSWORD '*…'`), so the plaintext never reaches the server nor its logs.
   * `server`: send the password (escaped) and let the server hash it (on MySQL, with the
   * account's own plugin: `IDENTIFIED WITH <plugin> BY …`).
   */
  password_hashing: z.enum(["client-native", "server"]).default("client-native"),
  connect_timeout_ms: z.number().int().positive().default(10000),
  description: z.string().optional(),
});
export type MysqlSettings = z.infer<typeof mysqlSettingsSchema>;

/** `services.<name>` of type redis (Redis 6+ ACL users). */
export const redisSettingsSchema = z.strictObject({
  type: z.literal("redis"),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(6379),
  /** The admin credential (username `default` for requirepass setups): a reference to JSON {"username", "password"}, or {username, password: reference}. */
  admin: adminSchema,
  /** `require`: TLS without certificate checks; `verify-full`: TLS with them. */
  tls: z.enum(["disable", "require", "verify-full"]).default("disable"),
  /**
   * ACL rules a rotated user is created with when it does not exist yet (e.g. `["~app:*",
   * "+@read"]`); without them a missing user is an error.
   */
  create_with: z.array(z.string().min(1)).optional(),
  connect_timeout_ms: z.number().int().positive().default(10000),
  description: z.string().optional(),
});
export type RedisSettings = z.infer<typeof redisSettingsSchema>;

/** `services.<name>` of type aws.iam: the access keys of IAM users. */
export const awsIamSettingsSchema = z.strictObject({
  type: z.literal("aws.iam"),
  region: z.string().min(1).optional(),
  /** An endpoint for IAM and STS (moto, LocalStack, a VPC endpoint). */
  endpoint: z.url().optional(),
  /**
   * Reference to the credential that manages the keys, a JSON value {"access_key_id",
   * "secret_access_key", "session_token"?}; without it, the SDK's default chain.
   */
  admin: z.string().startsWith("store://", "expected a reference store://<store>/<key> whose value is JSON {\"access_key_id\", \"secret_access_key\"}").optional(),
  /** `delete` (default): deactivate, then delete the old key; `deactivate`: leave it inactive (it can be re-enabled by hand). */
  revoke: z.enum(["delete", "deactivate"]).default("delete"),
  description: z.string().optional(),
});
export type AwsIamSettings = z.infer<typeof awsIamSettingsSchema>;

/** `services.<name>` of type webhook. */
export const webhookSettingsSchema = z.strictObject({
  type: z.literal("webhook"),
  /** Where requests are POSTed (http or https). */
  url: z.url({ protocol: /^https?$/ }),
  /** Extra request headers (no secrets here: use `signing_secret`). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Reference to a shared secret; when set, each request carries `X-Dsops-Signature: sha256=<HMAC-SHA256 of timestamp "." body>` and `X-Dsops-Timestamp`. */
  signing_secret: z.string().startsWith("store://", "expected a reference store://<store>/<key>").optional(),
  timeout_ms: z.number().int().positive().default(30000),
  capabilities: protocolCapabilities,
  description: z.string().optional(),
});
export type WebhookSettings = z.infer<typeof webhookSettingsSchema>;

/** `services.<name>` of type script. */
export const scriptSettingsSchema = z.strictObject({
  type: z.literal("script"),
  /** The executable (relative paths are relative to dsops.yaml's folder). Run without a shell. */
  command: z.string().min(1),
  /** Fixed arguments (never a secret: those travel in the request on stdin). */
  args: z.array(z.string()).default([]),
  /** Extra environment variables (no secrets). The request's action is also in DSOPS_ACTION. */
  env: z.record(z.string(), z.string()).default({}),
  timeout_ms: z.number().int().positive().default(30000),
  capabilities: protocolCapabilities,
  description: z.string().optional(),
});
export type ScriptSettings = z.infer<typeof scriptSettingsSchema>;

/** The settings schema of each target type; exhaustive over `TargetType`. */
export const targetSettingsSchemas = {
  postgresql: postgresSettingsSchema,
  mysql: mysqlSettingsSchema,
  redis: redisSettingsSchema,
  "aws.iam": awsIamSettingsSchema,
  webhook: webhookSettingsSchema,
  script: scriptSettingsSchema,
} as const satisfies Record<TargetType, z.ZodType>;

export type TargetSettings = { [T in TargetType]: z.infer<(typeof targetSettingsSchemas)[T]> }[TargetType];

/**
 * What a target of each type can do, from its checked settings, without building it (which
 * would load its client library). The same sets the target classes declare; a unit test
 * checks them against real instances.
 */
export function targetCapabilities(settings: TargetSettings): ReadonlySet<TargetCapability> {
  switch (settings.type) {
    case "postgresql":
    case "mysql":
      return new Set<TargetCapability>(["rotate", "revoke", "verify"]);
    case "redis":
      return new Set<TargetCapability>(["rotate", "create", "revoke", "verify"]);
    case "aws.iam":
      return new Set<TargetCapability>(["create", "revoke", "verify"]);
    case "webhook":
    case "script":
      return new Set<TargetCapability>(settings.capabilities);
  }
}
