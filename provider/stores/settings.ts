import { z } from "zod";

/**
 * Settings of every store type, as written under `secretStores:` (or legacy `providers:`).
 * These schemas are light (no SDK is loaded here); the store code lives in `<type>.ts`.
 */
const common = {
  /** Milliseconds one store call may take before it is abandoned (default 30000). */
  timeout_ms: z.number().int().positive().optional(),
  /** Retries of throttled or transient failures (default 3). */
  retries: z.number().int().min(0).max(10).optional(),
};

const awsCommon = {
  ...common,
  region: z.string().optional(),
  /** An endpoint URL (LocalStack, moto, VPC endpoints). */
  endpoint: z.string().optional(),
  profile: z.string().optional(),
  access_key_id: z.string().optional(),
  secret_access_key: z.string().optional(),
  session_token: z.string().optional(),
};

export const storeSettingsSchemas = {
  literal: z.strictObject({ type: z.literal("literal"), ...common, values: z.record(z.string(), z.string()).default({}) }),
  env: z.strictObject({ type: z.literal("env"), ...common, prefix: z.string().optional() }),
  /** Fixed values for tests (dsops's `mock`): `values`, plus dsops's two defaults `test-secret` and `api-key` unless given. */
  mock: z.strictObject({ type: z.literal("mock"), ...common, values: z.record(z.string(), z.string()).default({}) }),
  /**
   * Values of a JSON object (dsops's `json`): from the file `path` (read at each call, relative to
   * the configuration's folder), or inline `data` (a JSON text or a YAML map). A key is a
   * top-level name; a value that is not a string is given as its JSON text.
   */
  json: z
    .strictObject({
      type: z.literal("json"),
      ...common,
      path: z.string().optional(),
      data: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    })
    .refine((s) => (s.path === undefined) !== (s.data === undefined), { message: "give either path (a JSON file) or data (inline JSON), not both and not neither" }),
  file: z.strictObject({
    type: z.literal("file"),
    ...common,
    /** Path of the encrypted store file (default ./secrets.store). */
    path: z.string().default("./secrets.store"),
    /** Path of the key file (default <path>.key); ignored when DSOPS_FILE_KEY is set. */
    key_file: z.string().optional(),
  }),
  "aws.secretsmanager": z.strictObject({ type: z.literal("aws.secretsmanager"), ...awsCommon }),
  "aws.ssm": z.strictObject({
    type: z.literal("aws.ssm"),
    ...awsCommon,
    /** Prefix joined to every key that does not start with "/". */
    parameter_prefix: z.string().optional(),
    /** Decrypt SecureString parameters (default true). */
    with_decryption: z.boolean().default(true),
  }),
  vault: z.strictObject({
    type: z.literal("vault"),
    ...common,
    address: z.string(),
    auth_method: z.enum(["token", "approle"]).default("token"),
    token: z.string().optional(),
    role_id: z.string().optional(),
    secret_id: z.string().optional(),
    /** Mount path of the AppRole auth method (default approle). */
    approle_mount: z.string().default("approle"),
    namespace: z.string().optional(),
    /** Force the KV version of every mount; by default it is read from the mount. */
    kv_version: z.union([z.literal(1), z.literal(2)]).optional(),
    tls: z
      .strictObject({
        ca_cert: z.string().optional(),
        client_cert: z.string().optional(),
        client_key: z.string().optional(),
        skip_verify: z.boolean().optional(),
      })
      .optional(),
  }),
  "gcp.secretmanager": z.strictObject({
    type: z.literal("gcp.secretmanager"),
    ...common,
    project_id: z.string(),
    /** Host of the API (tests, private endpoints). */
    endpoint: z.string().optional(),
    port: z.number().int().positive().optional(),
    /** Plain-text gRPC, only for a local endpoint. */
    insecure: z.boolean().optional(),
    /** Service-account key file; default is Application Default Credentials. */
    credentials_file: z.string().optional(),
  }),
} as const;

export type StoreType = keyof typeof storeSettingsSchemas;
export const storeTypes = Object.keys(storeSettingsSchemas) as StoreType[];
export type StoreSettings = { [T in StoreType]: z.infer<(typeof storeSettingsSchemas)[T]> }[StoreType];

/** Other names of store types that dsops's files use: alias → the type. */
export const storeTypeAliases: Readonly<Record<string, StoreType | (typeof plannedStoreTypes)[number]>> = {
  "hashicorp.vault": "vault",
  "aws-secretsmanager": "aws.secretsmanager",
  "1password": "onepassword",
};

/** Store settings dsops spells otherwise, per type: the other spelling → ours. */
export const storeKeyAliases: Readonly<Partial<Record<StoreType, Readonly<Record<string, string>>>>> = {
  vault: { addr: "address" },
};

/** Store types dsops knows that this engine does not implement yet. */
export const plannedStoreTypes = [
  "bitwarden", "onepassword", "aws.sts", "aws.sso", "aws", "gcp", "azure.keyvault",
  "azure.identity", "azure", "doppler", "pass", "keychain", "infisical", "akeyless",
] as const;
