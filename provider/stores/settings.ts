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
  /** The ARN of a role to assume (STS AssumeRole) with the credentials above; the store then uses the role's. */
  assume_role: z.string().optional(),
  role_session_name: z.string().optional(),
  external_id: z.string().optional(),
  /** Seconds the assumed role's credentials last (900–43200, default 3600). */
  duration: z.number().int().min(900).max(43200).optional(),
  mfa_serial_number: z.string().optional(),
  /** The current code of the MFA device (e.g. `${MFA_CODE}`). */
  mfa_token_code: z.string().optional(),
  /** A session policy (JSON) narrowing the assumed role's permissions. */
  session_policy: z.string().optional(),
};

/** Where `aws.sso` (and the `aws` router's `sso:` keys) get role credentials. */
const awsSsoFields = {
  /** A profile of ~/.aws/config with sso_* settings (or an sso_session); the fields below override it. */
  profile: z.string().optional(),
  sso_session: z.string().optional(),
  sso_start_url: z.string().optional(),
  sso_region: z.string().optional(),
  account_id: z.string().optional(),
  role_name: z.string().optional(),
  /** Folder of the SSO token cache (default ~/.aws/sso/cache). */
  cache_path: z.string().optional(),
  /** The SSO portal endpoint (tests, private endpoints); default that of sso_region. */
  endpoint: z.string().optional(),
};

/** Vault auth methods; `k8s` is dsops's spelling of `kubernetes`. */
export const vaultAuthMethods = ["token", "approle", "userpass", "ldap", "aws", "kubernetes", "k8s"] as const;
export type VaultAuthMethod = (typeof vaultAuthMethods)[number];

/** The settings each Vault auth method needs (a token may also come from VAULT_TOKEN, a secret_id is optional). */
const vaultAuthNeeds: Record<VaultAuthMethod, ReadonlyArray<"role_id" | "userpass_username" | "userpass_password" | "ldap_username" | "ldap_password" | "aws_role" | "k8s_role">> = {
  token: [],
  approle: ["role_id"],
  userpass: ["userpass_username", "userpass_password"],
  ldap: ["ldap_username", "ldap_password"],
  aws: ["aws_role"],
  kubernetes: ["k8s_role"],
  k8s: ["k8s_role"],
};

/** dsops's flat TLS keys and the `tls:` fields they stand for. */
export const vaultFlatTls = [
  ["ca_cert", "ca_cert"],
  ["client_cert", "client_cert"],
  ["client_key", "client_key"],
  ["tls_skip", "skip_verify"],
] as const;

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
  /** Temporary credentials from STS AssumeRole (dsops's aws.sts); keys name the component. */
  "aws.sts": z.strictObject({ type: z.literal("aws.sts"), ...awsCommon, assume_role: z.string() }),
  /** Role credentials of IAM Identity Center, from the token cache `aws sso login` writes. */
  "aws.sso": z.strictObject({ type: z.literal("aws.sso"), ...common, region: z.string().optional(), ...awsSsoFields }),
  /** dsops's unified AWS store: one name, the service chosen by a prefix of the key (sm:, ssm:, sts:, sso:). */
  aws: z.strictObject({
    type: z.literal("aws"),
    ...awsCommon,
    /** The service of a key without a prefix that does not start with "/" (default secretsmanager). */
    default_service: z
      .enum(["secretsmanager", "sm", "ssm", "sts", "sso"], {
        error: (iss) => `unknown default_service ${JSON.stringify(iss.input)} (supported: secretsmanager, sm, ssm, sts, sso)`,
      })
      .default("secretsmanager"),
    /** dsops's per-service section: `timeout_ms` of Secrets Manager calls, `version_stage` read when a reference names none. */
    secretsmanager: z.strictObject({ timeout_ms: z.number().int().positive().optional(), version_stage: z.string().optional() }).optional(),
    ssm: z.strictObject({ parameter_prefix: z.string().optional(), with_decryption: z.boolean().default(true) }).optional(),
    sts: z
      .strictObject({
        assume_role: z.string(),
        role_session_name: z.string().optional(),
        external_id: z.string().optional(),
        duration: z.number().int().min(900).max(43200).optional(),
        mfa_serial_number: z.string().optional(),
        mfa_token_code: z.string().optional(),
        session_policy: z.string().optional(),
      })
      .optional(),
    sso: z.strictObject({ ...awsSsoFields, start_url: z.string().optional() }).optional(),
  }),
  vault: z
    .strictObject({
      type: z.literal("vault"),
      ...common,
      address: z.string(),
      /** How the store gets its token; `k8s` is dsops's spelling of `kubernetes`. */
      auth_method: z
        .enum(vaultAuthMethods, {
          error: (iss) => `unknown auth_method ${JSON.stringify(iss.input)} (supported: ${vaultAuthMethods.join(", ")})`,
        })
        .default("token"),
      token: z.string().optional(),
      role_id: z.string().optional(),
      secret_id: z.string().optional(),
      /** Mount path of the AppRole auth method (default approle). */
      approle_mount: z.string().default("approle"),
      /** Mount path of the userpass, ldap, aws or kubernetes auth method (default: the method's name). */
      auth_mount: z.string().optional(),
      userpass_username: z.string().optional(),
      userpass_password: z.string().optional(),
      ldap_username: z.string().optional(),
      ldap_password: z.string().optional(),
      /** The Vault role of the aws (IAM) auth method. */
      aws_role: z.string().optional(),
      /** Region the signed sts:GetCallerIdentity request names (default AWS_REGION, else us-east-1). */
      aws_region: z.string().optional(),
      /** Value of the X-Vault-AWS-IAM-Server-ID header, when the aws auth method requires one. */
      aws_header_value: z.string().optional(),
      /** The Vault role of the kubernetes auth method. */
      k8s_role: z.string().optional(),
      /** The service-account JWT (default /var/run/secrets/kubernetes.io/serviceaccount/token). */
      k8s_token_path: z.string().optional(),
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
      /** dsops's flat spellings of tls.ca_cert, tls.client_cert, tls.client_key and tls.skip_verify. */
      ca_cert: z.string().optional(),
      client_cert: z.string().optional(),
      client_key: z.string().optional(),
      tls_skip: z.boolean().optional(),
    })
    .superRefine((s, ctx) => {
      for (const [flat, nested] of vaultFlatTls) {
        const a = s[flat];
        const b = s.tls?.[nested];
        if (a !== undefined && b !== undefined && a !== b)
          ctx.addIssue({ code: "custom", path: [flat], message: `${flat} and tls.${nested} are the same setting with different values; keep one` });
      }
      const needs = vaultAuthNeeds[s.auth_method];
      for (const field of needs) {
        // An empty value (an unset ${VAR}) is reported when the store logs in, not here.
        if (s[field] === undefined)
          ctx.addIssue({ code: "custom", path: [field], message: `required for auth_method ${s.auth_method} but missing` });
      }
      for (const [method, fields] of Object.entries(vaultAuthNeeds)) {
        if (method === s.auth_method || method === "k8s") continue;
        for (const field of fields) {
          if (s[field] !== undefined && !needs.includes(field))
            ctx.addIssue({ code: "custom", path: [field], message: `belongs to auth_method ${method}, but auth_method is ${s.auth_method}; set auth_method: ${method} or remove it` });
        }
      }
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
  "aws.sso": { start_url: "sso_start_url" },
};

/** Store types dsops knows that this engine does not implement yet. */
export const plannedStoreTypes = [
  "bitwarden", "onepassword", "gcp", "azure.keyvault",
  "azure.identity", "azure", "doppler", "pass", "keychain", "infisical", "akeyless",
] as const;
