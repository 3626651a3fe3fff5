import * as z from "zod";

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

/** A Bitwarden Secrets Manager id (organisation, project). */
const bwsUuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { message: "not a UUID (Bitwarden shows ids as 8-4-4-4-12 hex digits)" });

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

/** The names of Secret Manager as the gcp router's key prefix and default_service (dsops's). */
export const gcpSecretManagerNames = ["secretmanager", "sm", "secrets"] as const;

/**
 * GCP services dsops's documentation routes to that the gcp router refuses, each with the
 * reason: their key prefixes, and the start of a key of that service (`*` = one segment).
 */
export const gcpRefusedServices: ReadonlyArray<{ readonly service: string; readonly prefixes: readonly string[]; readonly paths: readonly string[]; readonly why: string }> = [
  {
    service: "Cloud KMS",
    prefixes: ["kms", "cloudkms"],
    paths: ["keys/", "projects/*/locations/*/keyRings/"],
    why: "Cloud KMS keys never leave KMS, so there is no secret value to read (KMS encrypts, decrypts and signs data it is given)",
  },
  {
    service: "Runtime Configurator",
    prefixes: ["config", "runtimeconfig"],
    paths: ["config/", "projects/*/configs/"],
    why: "Runtime Configurator is a beta API without an official Node.js client library; keep such values in Secret Manager",
  },
];

/** Settings of Secret Manager itself, which the `gcp` router also takes under `secretmanager:`. */
const gcpSecretManagerOnly = {
  /** Regional secrets: `projects/<p>/locations/<location>/secrets/<s>` at `secretmanager.<location>.rep.googleapis.com` (default `global`). */
  location: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, { message: "expected a location such as us-central1 or global" })
    .optional(),
  /** dsops's setting: keys may be plain secret names (default true); false: every key is a full resource name. */
  use_plaintext_names: z.boolean().optional(),
};

/** Settings of Google Cloud stores (gcp.secretmanager, and the gcp router). */
const gcpCommon = {
  ...common,
  project_id: z.string(),
  /** Host of the API (tests, private endpoints). */
  endpoint: z.string().optional(),
  port: z.number().int().positive().optional(),
  /** Plain-text gRPC, only for a local endpoint. */
  insecure: z.boolean().optional(),
  /** Service-account key file; default is Application Default Credentials. */
  credentials_file: z.string().optional(),
  /** dsops's name of credentials_file: a service-account JSON key file (`~/` is the home folder). */
  service_account_key_path: z.string().optional(),
  /** A service account the credentials act as (IAM Credentials generateAccessToken). */
  impersonate_service_account: z
    .string()
    .regex(/^[^@\s]+@[^@\s]+$/, { message: "expected a service account e-mail (name@project.iam.gserviceaccount.com)" })
    .optional(),
  ...gcpSecretManagerOnly,
};

function gcpRefine(s: { credentials_file?: string; service_account_key_path?: string; insecure?: boolean; impersonate_service_account?: string }, ctx: z.RefinementCtx): void {
  if (s.credentials_file !== undefined && s.service_account_key_path !== undefined && s.credentials_file !== s.service_account_key_path)
    ctx.addIssue({ code: "custom", path: ["service_account_key_path"], message: "service_account_key_path and credentials_file are the same setting with different values; keep one" });
  if (s.insecure) {
    for (const k of ["credentials_file", "service_account_key_path", "impersonate_service_account"] as const)
      if (s[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: "insecure: true sends no credentials; remove insecure or this setting" });
  }
}

/**
 * Azure credentials (dsops's names: `tenant_id`, `client_id`, `client_secret`,
 * `use_managed_identity`, `user_assigned_identity_id`), plus the certificate, workload identity
 * and Azure CLI credentials of @azure/identity. At most one way is chosen; none: the SDK's
 * DefaultAzureCredential chain.
 */
const azureCredentials = {
  tenant_id: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  /** A PEM file holding the client certificate and its private key. */
  client_certificate_path: z.string().optional(),
  client_certificate_password: z.string().optional(),
  use_managed_identity: z.boolean().optional(),
  /** Client id of a user-assigned managed identity. */
  user_assigned_identity_id: z.string().optional(),
  /** Kubernetes workload identity: client_id + tenant_id, and the token file (default AZURE_FEDERATED_TOKEN_FILE). */
  use_workload_identity: z.boolean().optional(),
  federated_token_file: z.string().optional(),
  /** The token of `az login`. */
  use_azure_cli: z.boolean().optional(),
  /** The Microsoft Entra authority (sovereign clouds, Azure Stack); default AZURE_AUTHORITY_HOST or the public cloud. */
  authority_host: z.string().optional(),
  /**
   * Skip Microsoft Entra instance discovery (the SDK's disableInstanceDiscovery): for an
   * authority_host the public cloud does not know (Azure Stack Hub, a private authority).
   */
  disable_instance_discovery: z.boolean().optional(),
};

/** The credential kinds `azureCredentials` select, and the settings that select each. */
export const azureCredentialKinds = ["client_secret", "certificate", "managed_identity", "workload_identity", "azure_cli"] as const;

function checkAzureCredentials(s: z.infer<z.ZodObject<typeof azureCredentials>>, ctx: z.RefinementCtx): void {
  const chosen: string[] = [];
  if (s.client_secret !== undefined) chosen.push("client_secret");
  if (s.client_certificate_path !== undefined) chosen.push("client_certificate_path");
  if (s.use_managed_identity) chosen.push("use_managed_identity");
  if (s.use_workload_identity) chosen.push("use_workload_identity");
  if (s.use_azure_cli) chosen.push("use_azure_cli");
  if (chosen.length > 1)
    ctx.addIssue({ code: "custom", path: [chosen[1]], message: `choose one way to sign in to Azure, not ${chosen.join(" and ")}` });
  const needsApp = s.client_secret !== undefined || s.client_certificate_path !== undefined;
  if (needsApp) {
    const by = s.client_secret !== undefined ? "client_secret" : "client_certificate_path";
    if (s.tenant_id === undefined) ctx.addIssue({ code: "custom", path: ["tenant_id"], message: `required with ${by} but missing` });
    if (s.client_id === undefined) ctx.addIssue({ code: "custom", path: ["client_id"], message: `required with ${by} but missing` });
  }
  if (s.client_certificate_password !== undefined && s.client_certificate_path === undefined)
    ctx.addIssue({ code: "custom", path: ["client_certificate_password"], message: "belongs to client_certificate_path, which is missing" });
  if (s.user_assigned_identity_id !== undefined && !s.use_managed_identity)
    ctx.addIssue({ code: "custom", path: ["user_assigned_identity_id"], message: "belongs to use_managed_identity: true, which is not set" });
  if (s.federated_token_file !== undefined && !s.use_workload_identity)
    ctx.addIssue({ code: "custom", path: ["federated_token_file"], message: "belongs to use_workload_identity: true, which is not set" });
}

const azureKeyVaultFields = {
  /** The vault's URL, `https://<name>.vault.azure.net/`. */
  vault_url: z.string().url(),
  /**
   * Skip the SDK's check that the vault's authentication challenge names the vault's domain
   * (a vault behind a custom domain or a private endpoint name).
   */
  disable_challenge_resource_verification: z.boolean().optional(),
};

/**
 * Each store type's schema, built on its first use (issue 20: a file of one file store builds one
 * schema, not every type's); the object reads like a plain one (keys, enumeration, values).
 */
function lazySchemas<T extends Record<string, () => z.ZodType>>(build: T): { readonly [K in keyof T]: ReturnType<T[K]> } {
  const out = {} as { [K in keyof T]: ReturnType<T[K]> };
  for (const key of Object.keys(build) as (keyof T)[])
    Object.defineProperty(out, key, {
      enumerable: true,
      configurable: true,
      get() {
        const schema = build[key]();
        Object.defineProperty(out, key, { value: schema, enumerable: true });
        return schema;
      },
    });
  return out;
}

export const storeSettingsSchemas = lazySchemas({
  literal: () => z.strictObject({ type: z.literal("literal"), ...common, values: z.record(z.string(), z.string()).default({}) }),
  env: () => z.strictObject({ type: z.literal("env"), ...common, prefix: z.string().optional() }),
  /** Fixed values for tests (dsops's `mock`): `values`, plus dsops's two defaults `test-secret` and `api-key` unless given. */
  mock: () => z.strictObject({ type: z.literal("mock"), ...common, values: z.record(z.string(), z.string()).default({}) }),
  /**
   * Values of a JSON object (dsops's `json`): from the file `path` (read at each call, relative to
   * the configuration's folder), or inline `data` (a JSON text or a YAML map). A key is a
   * top-level name; a value that is not a string is given as its JSON text.
   */
  json: () => z
    .strictObject({
      type: z.literal("json"),
      ...common,
      path: z.string().optional(),
      data: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    })
    .refine((s) => (s.path === undefined) !== (s.data === undefined), { message: "give either path (a JSON file) or data (inline JSON), not both and not neither" }),
  file: () => z.strictObject({
    type: z.literal("file"),
    ...common,
    /** Path of the encrypted store file (default ./secrets.store). */
    path: z.string().default("./secrets.store"),
    /** Path of the key file (default <path>.key); ignored when DSOPS_FILE_KEY is set. */
    key_file: z.string().optional(),
  }),
  "aws.secretsmanager": () => z.strictObject({ type: z.literal("aws.secretsmanager"), ...awsCommon }),
  "aws.ssm": () => z.strictObject({
    type: z.literal("aws.ssm"),
    ...awsCommon,
    /** Prefix joined to every key that does not start with "/". */
    parameter_prefix: z.string().optional(),
    /** Decrypt SecureString parameters (default true). */
    with_decryption: z.boolean().default(true),
  }),
  /** Temporary credentials from STS AssumeRole (dsops's aws.sts); keys name the component. */
  "aws.sts": () => z.strictObject({ type: z.literal("aws.sts"), ...awsCommon, assume_role: z.string() }),
  /** Role credentials of IAM Identity Center, from the token cache `aws sso login` writes. */
  "aws.sso": () => z.strictObject({ type: z.literal("aws.sso"), ...common, region: z.string().optional(), ...awsSsoFields }),
  /** dsops's unified AWS store: one name, the service chosen by a prefix of the key (sm:, ssm:, sts:, sso:). */
  aws: () => z.strictObject({
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
  vault: () => z
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
  "gcp.secretmanager": () => z.strictObject({ type: z.literal("gcp.secretmanager"), ...gcpCommon }).superRefine(gcpRefine),
  /**
   * dsops's `gcp` (its "unified" type): one store whose key prefix chooses the service
   * (`sm:`, `secretmanager:`, `secrets:` → Secret Manager), `default_service` for keys without
   * one, one set of credentials. `secretmanager:` holds settings of that service only.
   */
  gcp: () => z
    .strictObject({
      type: z.literal("gcp"),
      ...gcpCommon,
      /** The service of a key without a prefix (secretmanager, the one service this store reads). */
      default_service: z.string().default("secretmanager"),
      secretmanager: z.strictObject(gcpSecretManagerOnly).optional(),
    })
    .superRefine(gcpRefine)
    .superRefine((s, ctx) => {
      if (s.secretmanager) gcpRefine({ ...s, ...s.secretmanager }, ctx);
      if (!(gcpSecretManagerNames as readonly string[]).includes(s.default_service)) {
        const other = gcpRefusedServices.find((r) => r.prefixes.includes(s.default_service.toLowerCase()));
        ctx.addIssue({
          code: "custom",
          path: ["default_service"],
          message: other
            ? `${other.service} is not supported by the gcp store: ${other.why} (supported: secretmanager)`
            : `unknown GCP service "${s.default_service}" (supported: secretmanager)`,
        });
      }
    }),
  "azure.keyvault": () => z
    .strictObject({ type: z.literal("azure.keyvault"), ...common, ...azureCredentials, ...azureKeyVaultFields })
    .superRefine(checkAzureCredentials),
  "azure.identity": () => z
    .strictObject({
      type: z.literal("azure.identity"),
      ...common,
      ...azureCredentials,
      /** The scope a key without one asks a token for (default https://management.azure.com/.default). */
      scope: z.string().optional(),
    })
    .superRefine(checkAzureCredentials),
  /** dsops's `azure` router: one set of credentials; the key's prefix (kv:, keyvault:, identity:, …) picks the service. */
  azure: () => z
    .strictObject({
      type: z.literal("azure"),
      ...common,
      ...azureCredentials,
      default_service: z
        .enum(["keyvault", "identity"], { error: (iss) => `unknown default_service ${JSON.stringify(iss.input)} (supported: keyvault, identity)` })
        .default("keyvault"),
      keyvault: z.strictObject({ ...azureKeyVaultFields }).optional(),
      identity: z.strictObject({ scope: z.string().optional() }).optional(),
    })
    .superRefine(checkAzureCredentials),
  /** Doppler (dsops's `doppler`): a token (service, personal, CLI or service account), its project and config. */
  doppler: () => z.strictObject({
    type: z.literal("doppler"),
    ...common,
    /** Default: DOPPLER_TOKEN. A service token (dp.st.…) carries its project and config. */
    token: z.string().optional(),
    project: z.string().optional(),
    config: z.string().optional(),
    /** The API's base URL (default https://api.doppler.com). */
    api_url: z.string().optional(),
  }),
  /** Infisical (dsops's `infisical`): a project's environment, through @infisical/sdk. */
  infisical: () => z.strictObject({
    type: z.literal("infisical"),
    ...common,
    project_id: z.string(),
    /** The environment's slug (dev, staging, prod …). */
    environment: z.string(),
    /** The folder keys are relative to (default /). */
    path: z.string().default("/"),
    /** A self-hosted instance (dsops's `host`); default https://app.infisical.com. */
    site_url: z.string().optional(),
    /**
     * How the store logs in: `universal_auth` (dsops's `machine_identity`; `client_id`, `client_secret`,
     * else INFISICAL_UNIVERSAL_AUTH_CLIENT_ID / _SECRET), or an access token (`access_token`, dsops's
     * `service_token`: `token`, else INFISICAL_TOKEN).
     */
    auth: z
      .strictObject({
        method: z.enum(["universal_auth", "machine_identity", "access_token", "service_token"]).default("universal_auth"),
        client_id: z.string().optional(),
        client_secret: z.string().optional(),
        token: z.string().optional(),
      })
      .default({ method: "universal_auth" }),
  }),
  /** Akeyless (dsops's `akeyless`): static, dynamic and rotated secrets through the `akeyless` SDK. */
  akeyless: () => z.strictObject({
    type: z.literal("akeyless"),
    ...common,
    /** The API Key auth method's access id (default AKEYLESS_ACCESS_ID). */
    access_id: z.string().optional(),
    /** The API or a customer gateway (default https://api.akeyless.io). */
    gateway_url: z.string().optional(),
    /** `api_key` (dsops's; also `access_key`): `access_key`, else AKEYLESS_ACCESS_KEY; `token`: `token`, else AKEYLESS_TOKEN. */
    auth: z
      .strictObject({
        method: z.enum(["api_key", "access_key", "token"]).default("api_key"),
        access_key: z.string().optional(),
        token: z.string().optional(),
      })
      .default({ method: "api_key" }),
  }),
  /**
   * 1Password (dsops's `onepassword`, alias `1password`). How it is reached: a Connect server
   * (`connect_host` + `connect_token`, else OP_CONNECT_HOST / OP_CONNECT_TOKEN), a service account
   * (`service_account_token`, else OP_SERVICE_ACCOUNT_TOKEN, through @1password/sdk), else the
   * `op` CLI where the user is signed in. `mode` picks one explicitly.
   */
  onepassword: () => z.strictObject({
    type: z.literal("onepassword"),
    ...common,
    mode: z.enum(["connect", "service_account", "cli"]).optional(),
    connect_host: z.string().optional(),
    connect_token: z.string().optional(),
    service_account_token: z.string().optional(),
    /** The account the `op` CLI uses (`--account`, dsops's `account`). */
    account: z.string().optional(),
    /** A vault `doctor` checks (dsops's default vault). */
    vault: z.string().optional(),
    /** The `op` program (default: `op` on PATH). */
    op_path: z.string().optional(),
  }),
  /**
   * KeePassXC databases (KDBX) through keepassxc-cli: `database` (relative to dsops.yaml's
   * folder), its `password` (`${VAR}`, or a `store://` reference to another store) and/or `key_file`.
   */
  keepassxc: () => z
    .strictObject({
      type: z.literal("keepassxc"),
      ...common,
      database: z.string().min(1),
      key_file: z.string().min(1).optional(),
      password: z.string().optional(),
      /** The keepassxc-cli program (default: keepassxc-cli on PATH). */
      cli: z.string().min(1).optional(),
    })
    .refine((s) => s.password !== undefined || s.key_file !== undefined, { path: ["password"], message: "required (or key_file, for a database opened by a key file alone) but missing" }),
  /** LastPass through the lpass CLI (experimental: read-only, untested against LastPass itself). */
  lastpass: () => z.strictObject({
    type: z.literal("lastpass"),
    ...common,
    /** The account's e-mail, for the sign-in hint (`lpass login <username>`). */
    username: z.string().optional(),
    /** The lpass program (default: lpass on PATH). */
    cli: z.string().min(1).optional(),
  }),
  /** The standard Unix password store (dsops's `pass`): gpg-encrypted entries, read with `pass show`, written with `pass insert`. */
  pass: () => z.strictObject({
    type: z.literal("pass"),
    ...common,
    /** The store's folder (dsops's `path`); default PASSWORD_STORE_DIR, else ~/.password-store. */
    store_dir: z.string().optional(),
    /** The GnuPG home gpg uses (GNUPGHOME of the child); default GNUPGHOME, else ~/.gnupg. */
    gpg_home: z.string().optional(),
    /** dsops's `gpg_key`: the key new entries are encrypted to (pass's PASSWORD_STORE_KEY), instead of the store's .gpg-id. */
    gpg_key: z.string().optional(),
  }),
  /** The OS keychain (dsops's `keychain`): macOS Keychain through `security`, the Linux Secret Service through `secret-tool`. Keys are `service/account`. */
  keychain: () => z.strictObject({
    type: z.literal("keychain"),
    ...common,
    /** Joined with "." before each key's service (`com.acme` + `db/password` → service `com.acme.db`). */
    service_prefix: z.string().optional(),
    /** dsops's macOS access group: accepted, not used (the `security` command has no access-group option). */
    access_group: z.string().optional(),
  }),
  /**
   * Bitwarden (dsops's `bitwarden`): personal and organisation vaults through the Bitwarden CLI
   * `bw` (the user installs it and logs in; the store never sees the master password).
   */
  bitwarden: () => z.strictObject({
    type: z.literal("bitwarden"),
    ...common,
    /** The `bw` program (default: `bw` on PATH). */
    cli_path: z.string().optional(),
    /** The session key `bw unlock` prints (default BW_SESSION); given to bw in its environment, never on its command line. */
    session: z.string().optional(),
    /** dsops's `profile` (it passed it to bw as the session): taken as `session`. */
    profile: z.string().optional(),
    /** Only items of this organisation; new items are created in it. */
    organization_id: z.string().optional(),
    /** Only items of this collection (its id); new items are created in it (with organization_id). */
    collection: z.string().optional(),
    /** BITWARDENCLI_APPDATA_DIR: where bw keeps its login and vault cache (default: bw's own). */
    appdata_dir: z.string().optional(),
    /** Run `bw sync` before the first read of a run (default false: bw's local copy, as dsops). */
    sync: z.boolean().default(false),
  }).superRefine((s, ctx) => {
    if (s.collection !== undefined && s.organization_id === undefined)
      ctx.addIssue({ code: "custom", path: ["collection"], message: "collection needs organization_id (a collection belongs to an organisation)" });
    if (s.session !== undefined && s.profile !== undefined && s.session !== s.profile)
      ctx.addIssue({ code: "custom", path: ["profile"], message: "profile (dsops's name of the session) and session are both given, with different values" });
  }),
  /**
   * Bitwarden Secrets Manager through its official SDK `@bitwarden/sdk-napi` (an optional package
   * the user installs): a machine account's access token, the organisation, a project.
   */
  "bitwarden-sm": () => z.strictObject({
    type: z.literal("bitwarden-sm"),
    ...common,
    /** The machine account's access token (default BWS_ACCESS_TOKEN); `${VAR}` or a `store://` reference. */
    access_token: z.string().optional(),
    /** The organisation (a UUID): needed to look secrets up by name and to create them. */
    organization_id: bwsUuid.optional(),
    /** The project (a UUID) new secrets are created in; name lookups see only its secrets. */
    project_id: bwsUuid.optional(),
    /** The API's base URL (self-hosted, EU: https://api.bitwarden.eu); default https://api.bitwarden.com. */
    api_url: z.string().optional(),
    /** The identity server's base URL (EU: https://identity.bitwarden.eu); default https://identity.bitwarden.com. */
    identity_url: z.string().optional(),
    /** A file where the SDK keeps its login between runs (relative to dsops.yaml's folder). */
    state_file: z.string().optional(),
  }),
});

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
  infisical: { host: "site_url" },
  "aws.sso": { start_url: "sso_start_url" },
  pass: { path: "store_dir" },
};

/** Store types dsops knows that this engine does not implement yet. */
export const plannedStoreTypes = [
] as const;
