import type { StoreType } from "../stores/settings";
import type { StoreCapabilities } from "../stores/types";

/** What `dsops providers` says of a store type without creating a store (which would load its SDK). */
export interface StoreTypeInfo {
  /** What a store of this type can do; the same values its instances declare (`staging` absent = false). */
  readonly capabilities: Required<StoreCapabilities>;
  /** The store has a `check()`, so `doctor` tests its connection and credentials. */
  readonly check: boolean;
  /** One line on what it is. */
  readonly description: string;
  /** When a capability depends on the settings or the server. */
  readonly note?: string;
}

/**
 * Capabilities of every store type, kept beside the registry so that `dsops providers` starts
 * without loading any SDK. Exhaustive over `StoreType` (a new type does not compile without
 * its entry), and checked against real instances by tests/integration/cli-providers.test.ts.
 */
export const storeTypeInfo: { readonly [T in StoreType]: StoreTypeInfo } = {
  literal: {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: false,
    description: "values written in dsops.yaml (non-secret settings)",
  },
  env: {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: false,
    description: "variables of dsops's own environment, with an optional prefix",
  },
  mock: {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: false,
    description: "fixed values for tests (dsops's mock: values, plus test-secret and api-key)",
  },
  json: {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: false,
    description: "the names of a JSON object, from a file (path) or inline (data)",
  },
  file: {
    capabilities: { write: true, versions: true, batch: 1000, binary: false, staging: true },
    check: true,
    description: "the embedded store: an encrypted, versioned file (AES-256-GCM)",
  },
  "aws.secretsmanager": {
    capabilities: { write: true, versions: true, batch: 20, binary: true, staging: true },
    check: true,
    description: "AWS Secrets Manager (stages, version ids, ARNs, binary secrets)",
  },
  "aws.ssm": {
    capabilities: { write: true, versions: true, batch: 10, binary: false, staging: true },
    check: true,
    description: "AWS Systems Manager Parameter Store (SecureString, labels, prefix)",
  },
  "aws.sts": {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "temporary credentials from STS AssumeRole (access_key_id, secret_access_key, session_token, expiration, credentials)",
  },
  "aws.sso": {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "role credentials of IAM Identity Center, from the token cache of aws sso login",
  },
  aws: {
    capabilities: { write: true, versions: true, batch: 20, binary: true, staging: true },
    check: true,
    description: "one AWS store, the service by key prefix (sm:, ssm:, sts:, sso:; /path = SSM)",
    note: "writes, versions and staging on sm: and ssm: keys; sts: and sso: keys are read-only",
  },
  vault: {
    capabilities: { write: true, versions: true, batch: 0, binary: false, staging: true },
    check: true,
    description: "HashiCorp Vault / OpenBao KV v1 and v2 (token or AppRole)",
    note: "versions and rotation staging on KV v2 mounts only",
  },
  "gcp.secretmanager": {
    capabilities: { write: true, versions: true, batch: 0, binary: true, staging: true },
    check: true,
    description: "Google Cloud Secret Manager (versions, aliases, binary payloads)",
  },
  gcp: {
    capabilities: { write: true, versions: true, batch: 0, binary: true, staging: true },
    check: true,
    description: "dsops's gcp router: the key's prefix (sm:, secretmanager:, secrets:) chooses the service; Secret Manager, the one it reads, by default",
  },
  "azure.keyvault": {
    capabilities: { write: true, versions: true, batch: 0, binary: false, staging: true },
    check: true,
    description: "Azure Key Vault secrets (versions, tags, client secret/certificate, managed or workload identity, az login)",
  },
  "azure.identity": {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "Microsoft Entra access tokens of the store's Azure identity (access_token, expires_at, expires_in, token_info)",
  },
  azure: {
    capabilities: { write: true, versions: true, batch: 0, binary: false, staging: true },
    check: true,
    description: "dsops's azure router: kv:/keyvault: → Key Vault, identity:/auth: → tokens, one set of credentials",
    note: "writes and staging go to Key Vault",
  },
  doppler: {
    capabilities: { write: true, versions: false, batch: 100, binary: false, staging: false },
    check: true,
    description: "Doppler (project and config; service or personal token; one download per config)",
  },
  infisical: {
    capabilities: { write: true, versions: true, batch: 100, binary: false, staging: false },
    check: true,
    description: "Infisical (universal auth or access token; folders, versions; one list per folder)",
  },
  akeyless: {
    capabilities: { write: true, versions: true, batch: 0, binary: false, staging: false },
    check: true,
    description: "Akeyless (access id + key or token; static, dynamic and rotated secrets)",
  },
  onepassword: {
    capabilities: { write: true, versions: false, batch: 50, binary: true, staging: false },
    check: true,
    description: "1Password (op://vault/item[/section]/field; Connect server, service account or the op CLI; one fetch per item)",
    note: "as shown with a Connect server (tested); service account (@1password/sdk): read-only, fields only, no binary, not tested here; op CLI: read-only, not tested here",
  },
  keepassxc: {
    capabilities: { write: true, versions: false, batch: 1000, binary: false, staging: false },
    check: true,
    description: "KeePassXC databases (KDBX) through keepassxc-cli: entry paths, #username/#url/#notes/any attribute; one export for many keys",
  },
  lastpass: {
    capabilities: { write: false, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "experimental: LastPass through the lpass CLI (read-only)",
    note: "experimental: tested only without a LastPass account (sign-in state, errors)",
  },
  pass: {
    capabilities: { write: true, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "the standard Unix password store (pass + gpg; first line, name: value fields; writes commit when it is a git repository)",
    note: "version id: the entry's last git commit in a git store, else a hash of its encrypted file; only the current version is read",
  },
  keychain: {
    capabilities: { write: true, versions: false, batch: 0, binary: false, staging: false },
    check: true,
    description: "the OS keychain: macOS Keychain (security) or the Linux Secret Service (secret-tool); keys are service/account",
    note: "macOS Keychain is implemented but not tested here; the Linux Secret Service is tested with gnome-keyring",
  },
  bitwarden: {
    capabilities: { write: true, versions: false, batch: 1000, binary: false, staging: false },
    check: true,
    description: "Bitwarden personal and organisation vaults through the bw CLI (BW_SESSION; one bw list items per batch)",
  },
  "bitwarden-sm": {
    capabilities: { write: true, versions: false, batch: 100, binary: false, staging: false },
    check: true,
    description: "Bitwarden Secrets Manager through @bitwarden/sdk-napi (optional package; BWS_ACCESS_TOKEN; keys: secret id or name; getByIds per batch)",
    note: "needs npm install @bitwarden/sdk-napi; version id: the secret's revision date, only the current value is read",
  },
};
