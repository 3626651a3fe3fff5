import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

/**
 * Bad input as its own category: malformed dsops.yaml files, references and transform strings,
 * each with the exact message a user sees from `dsops plan` (field, line and column, hint).
 */
/** `args`: the command run (default `plan --env dev`). */
const cases: Array<{ name: string; yaml: string; stderr: string; args?: string[] }> = [
  {
    name: "YAML syntax error",
    yaml: "envs:\n  dev: [\n",
    stderr: "error: invalid configuration:\n  - Flow sequence in block collection must be sufficiently indented and end with a ] at dsops.yaml:3:1\nhint: dsops.yaml must be valid YAML\n",
  },
  {
    name: "duplicate key",
    yaml: "envs:\n  dev: {}\n  dev: {}\n",
    stderr: "error: invalid configuration:\n  - Map keys must be unique at dsops.yaml:3:3\nhint: dsops.yaml must be valid YAML\n",
  },
  {
    name: "unknown top-level key",
    yaml: "secretStore:\n  a: { type: env }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStore: unknown key "secretStore" (did you mean "secretStores"?) at dsops.yaml:1:1\n',
  },
  {
    name: "unknown variable key",
    yaml: "envs:\n  dev:\n    A: { literal: x, optinal: true }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.A.optinal: unknown key "optinal" (did you mean "optional"?) at dsops.yaml:3:22\n',
  },
  {
    name: "unknown store type",
    yaml: "secretStores:\n  a: { type: aws.secretmanager }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.a.type: unknown store type "aws.secretmanager" (did you mean "aws.secretsmanager"?) at dsops.yaml:2:14\n',
  },
  {
    name: "missing required store setting",
    yaml: "secretStores:\n  v: { type: vault }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.address: required (string) but missing at dsops.yaml:2:6\n",
  },
  {
    name: "aws.sts without assume_role",
    yaml: "secretStores:\n  t: { type: aws.sts, region: us-east-1 }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.t.assume_role: required (string) but missing at dsops.yaml:2:6\n",
  },
  {
    name: "aws router with an unknown default_service",
    yaml: "secretStores:\n  a: { type: aws, default_service: kms }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.a.default_service: unknown default_service "kms" (supported: secretsmanager, sm, ssm, sts, sso) at dsops.yaml:2:36\n',
  },
  {
    name: "aws.sts with an MFA device but no code",
    yaml: 'secretStores:\n  t: { type: aws.sts, assume_role: "arn:aws:iam::123456789012:role/r", mfa_serial_number: "arn:aws:iam::123456789012:mfa/a" }\nenvs: { dev: { X: { from: "t:access_key_id" } } }\n',
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - X (store t, key access_key_id): store "t": mfa_serial_number needs mfa_token_code (the current code of the device)\n',
    args: ["get", "--env", "dev", "--var", "X"],
  },
  {
    name: "aws.sso without account, role and region",
    yaml: 'secretStores:\n  s: { type: aws.sso, sso_start_url: "https://x.awsapps.com/start" }\nenvs: { dev: { X: { from: "s:access_key_id" } } }\n',
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - X (store s, key access_key_id): store "s": missing sso_region, account_id, role_name\n',
    args: ["get", "--env", "dev", "--var", "X"],
  },
  {
    name: "an AssumeRole setting without assume_role",
    yaml: 'secretStores:\n  p: { type: aws.ssm, external_id: x }\nenvs: { dev: { X: { from: "p:/a" } } }\n',
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - X (store p, key /a): store "p": external_id needs assume_role (the ARN of the role to assume)\n',
    args: ["get", "--env", "dev", "--var", "X"],
  },
  {
    name: "unset environment variable in a store setting",
    yaml: 'secretStores:\n  v: { type: vault, address: "${DSOPS_TEST_UNSET_ADDR}" }\nenvs: { dev: { X: { from: "store://v/k" } } }\n',
    // Issue 18: reported when the store is called (plan answers without it: tests/compat/compat.test.ts).
    stderr:
      'error: env "dev": 1 variable failed to resolve:\n  - X (store v, key k): store "v" cannot be used: secretStores.v.address: environment variable DSOPS_TEST_UNSET_ADDR is not set (use ${DSOPS_TEST_UNSET_ADDR:-default} for a default) at dsops.yaml:2:30\n',
    args: ["get", "--env", "dev", "--var", "X"],
  },
  {
    name: "vault: unknown auth_method",
    yaml: "secretStores:\n  v: { type: vault, address: http://v, auth_method: kerberos }\nenvs: { dev: {} }\n",
    stderr:
      'error: invalid configuration:\n  - secretStores.v.auth_method: unknown auth_method "kerberos" (supported: token, approle, userpass, ldap, aws, kubernetes, k8s) at dsops.yaml:2:53\n',
  },
  {
    name: "vault: userpass without its password",
    yaml: "secretStores:\n  v: { type: vault, address: http://v, auth_method: userpass, userpass_username: alice }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.userpass_password: required for auth_method userpass but missing at dsops.yaml:2:6\n",
  },
  {
    name: "gcp: default_service of a service the router refuses",
    yaml: "secretStores:\n  g: { type: gcp, project_id: p, default_service: kms }\nenvs: { dev: {} }\n",
    stderr:
      "error: invalid configuration:\n  - secretStores.g.default_service: Cloud KMS is not supported by the gcp store: Cloud KMS keys never leave KMS, so there is no secret value to read (KMS encrypts, decrypts and signs data it is given) (supported: secretmanager) at dsops.yaml:2:51\n",
  },
  {
    name: "gcp: impersonate_service_account that is not an e-mail",
    yaml: "secretStores:\n  g: { type: gcp.secretmanager, project_id: p, impersonate_service_account: deployer }\nenvs: { dev: {} }\n",
    stderr:
      "error: invalid configuration:\n  - secretStores.g.impersonate_service_account: expected a service account e-mail (name@project.iam.gserviceaccount.com) at dsops.yaml:2:77\n",
  },
  {
    name: "vault: k8s without k8s_role",
    yaml: "secretStores:\n  v: { type: vault, address: http://v, auth_method: k8s }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.k8s_role: required for auth_method k8s but missing at dsops.yaml:2:6\n",
  },
  {
    name: "vault: a setting of another auth method",
    yaml: "secretStores:\n  v:\n    type: vault\n    address: http://v\n    auth_method: ldap\n    ldap_username: bob\n    ldap_password: p\n    aws_role: app\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.aws_role: belongs to auth_method aws, but auth_method is ldap; set auth_method: aws or remove it at dsops.yaml:8:15\n",
  },
  {
    name: "vault: flat ca_cert disagreeing with tls.ca_cert",
    yaml: "secretStores:\n  v:\n    type: vault\n    address: https://v\n    ca_cert: a.pem\n    tls: { ca_cert: b.pem }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.ca_cert: ca_cert and tls.ca_cert are the same setting with different values; keep one at dsops.yaml:5:14\n",
  },
  {
    name: "azure.keyvault: no vault_url",
    yaml: "secretStores:\n  k: { type: azure.keyvault, use_managed_identity: true }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.k.vault_url: required (string) but missing at dsops.yaml:2:6\n",
  },
  {
    name: "azure.keyvault: two ways to sign in",
    yaml: "secretStores:\n  k:\n    type: azure.keyvault\n    vault_url: https://v.vault.azure.net/\n    tenant_id: t\n    client_id: c\n    client_secret: s\n    use_managed_identity: true\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.k.use_managed_identity: choose one way to sign in to Azure, not client_secret and use_managed_identity at dsops.yaml:8:27\n",
  },
  {
    name: "azure.keyvault: client_secret without tenant_id",
    yaml: "secretStores:\n  k: { type: azure.keyvault, vault_url: https://v.vault.azure.net/, client_id: c, client_secret: s }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.k.tenant_id: required with client_secret but missing at dsops.yaml:2:6\n",
  },
  {
    name: "azure: unknown default_service",
    yaml: "secretStores:\n  a: { type: azure, default_service: storage }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.a.default_service: unknown default_service \"storage\" (supported: keyvault, identity) at dsops.yaml:2:38\n",
  },
  {
    name: "doppler: misspelt config",
    yaml: "secretStores:\n  d: { type: doppler, project: p, confg: dev }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.d.confg: unknown key "confg" (did you mean "config"?) at dsops.yaml:2:35\n',
  },
  {
    name: "infisical: no project_id, unknown auth method",
    yaml: "secretStores:\n  i: { type: infisical, environment: dev, auth: { method: oidc } }\nenvs: { dev: {} }\n",
    stderr:
      'error: invalid configuration:\n  - secretStores.i.project_id: required (string) but missing at dsops.yaml:2:6\n  - secretStores.i.auth.method: Invalid option: expected one of "universal_auth"|"machine_identity"|"access_token"|"service_token" at dsops.yaml:2:59\n',
  },
  {
    name: "bitwarden: collection without organization_id, misspelt session",
    yaml: "secretStores:\n  b: { type: bitwarden, collection: c1, sesion: x }\nenvs: { dev: {} }\n",
    stderr:
      'error: invalid configuration:\n  - secretStores.b.sesion: unknown key "sesion" (did you mean "session"?) at dsops.yaml:2:41\n  - secretStores.b.collection: collection needs organization_id (a collection belongs to an organisation) at dsops.yaml:2:37\n',
  },
  {
    name: "akeyless: misspelt access_key",
    yaml: "secretStores:\n  a: { type: akeyless, access_id: p-1, auth: { method: api_key, acess_key: k } }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.a.auth.acess_key: unknown key "acess_key" (did you mean "access_key"?) at dsops.yaml:2:65\n',
  },
  {
    name: "onepassword: misspelt connect_token",
    yaml: 'secretStores:\n  o: { type: onepassword, connect_host: "http://127.0.0.1:1", conect_token: t }\nenvs: { dev: {} }\n',
    stderr: 'error: invalid configuration:\n  - secretStores.o.conect_token: unknown key "conect_token" (did you mean "connect_token"?) at dsops.yaml:2:63\n',
  },
  {
    name: "1password: unknown mode",
    yaml: "secretStores:\n  o: { type: 1password, mode: desktop }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.o.mode: Invalid option: expected one of "connect"|"service_account"|"cli" at dsops.yaml:2:31\n',
  },
  {
    name: "onepassword: a key with too many parts",
    yaml: 'secretStores:\n  o: { type: onepassword, connect_host: "http://127.0.0.1:1", connect_token: t }\nenvs:\n  dev:\n    A: { from: "o:op://Dev/Item/a/b/c" }\n',
    args: ["get", "--env", "dev", "--var", "A"],
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - A (store o, key op://Dev/Item/a/b/c): store "o": "op://Dev/Item/a/b/c" is not a 1Password reference\n',
  },
  {
    name: "onepassword: unknown ?attribute=",
    yaml: 'secretStores:\n  o: { type: onepassword, connect_host: "http://127.0.0.1:1", connect_token: t }\nenvs:\n  dev:\n    A: { from: "o:op://Dev/Item/otp?attribute=totpp" }\n',
    args: ["get", "--env", "dev", "--var", "A"],
    stderr:
      'error: env "dev": 1 variable failed to resolve:\n  - A (store o, key op://Dev/Item/otp?attribute=totpp): store "o": key "op://Dev/Item/otp?attribute=totpp": unknown attribute "totpp" (supported: value, totp, otp, id, type, purpose)\n',
  },
  {
    name: "onepassword: connect_host that is not a URL",
    yaml: 'secretStores:\n  o: { type: onepassword, connect_host: "127.0.0.1:8080", connect_token: t }\nenvs:\n  dev:\n    A: { from: "o:op://Dev/Item/a" }\n',
    args: ["get", "--env", "dev", "--var", "A"],
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - A (store o, key op://Dev/Item/a): store "o": connect_host "127.0.0.1:8080" is not an http(s) URL\n',
  },
  {
    name: "keepassxc: neither password nor key_file",
    yaml: "secretStores:\n  kp: { type: keepassxc, database: ./team.kdbx }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.kp.password: required (or key_file, for a database opened by a key file alone) but missing at dsops.yaml:2:7\n",
  },
  {
    name: "keepassxc: misspelt key_file",
    yaml: "secretStores:\n  kp: { type: keepassxc, database: ./team.kdbx, keyfile: ./k.key, password: p }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.kp.keyfile: unknown key "keyfile" (did you mean "key_file"?) at dsops.yaml:2:49\n',
  },
  {
    name: "lastpass: unknown setting",
    yaml: "secretStores:\n  lp: { type: lastpass, password: x }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.lp.password: unknown key "password" (expected one of: type, timeout_ms, retries, username, cli) at dsops.yaml:2:25\n',
  },
  {
    name: "pass: misspelt gpg_home",
    yaml: "secretStores:\n  p: { type: pass, gpg_hom: /x }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.p.gpg_hom: unknown key "gpg_hom" (did you mean "gpg_home"?) at dsops.yaml:2:20\n',
  },
  {
    name: "pass: dsops's path and store_dir both given",
    yaml: "secretStores:\n  p: { type: pass, path: /a, store_dir: /b }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.p.path: "path" is another spelling of "store_dir", which is given too; keep one at dsops.yaml:2:20\n',
  },
  {
    name: "pass: an entry path climbing out of the store",
    yaml: 'secretStores:\n  p: { type: pass, store_dir: /nonexistent-store }\nenvs:\n  dev:\n    X: { from: "p:../etc/passwd" }\n',
    args: ["get", "--env", "dev", "--var", "X"],
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - X (store p, key ../etc/passwd): store "p": "../etc/passwd" is not a pass entry path (e.g. app/db or email/work)\n',
  },
  {
    name: "keychain: misspelt service_prefix",
    yaml: "secretStores:\n  k: { type: keychain, service_prefx: com.acme }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.k.service_prefx: unknown key "service_prefx" (did you mean "service_prefix"?) at dsops.yaml:2:24\n',
  },
  {
    name: "keychain: a key without an account",
    yaml: 'secretStores:\n  k: { type: keychain }\nenvs:\n  dev:\n    X: { from: "k:noaccount" }\n',
    args: ["get", "--env", "dev", "--var", "X"],
    stderr: 'error: env "dev": 1 variable failed to resolve:\n  - X (store k, key noaccount): store "k": "noaccount" is not a keychain key (service/account, e.g. myapp/database-password)\n',
  },
  {
    name: "reference to an unknown store",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://awz/k" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: unknown store "awz" (did you mean "aws"?) at dsops.yaml:5:16\n',
  },
  {
    name: "malformed reference",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://aws" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: reference "store://aws": expected store://<store>/<path> at dsops.yaml:5:16\n',
  },
  {
    name: "bad percent-encoding in a reference",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://aws/a%zz" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: reference "store://aws/a%zz": bad percent-encoding in "a%zz" at dsops.yaml:5:16\n',
  },
  {
    name: "from of the wrong shape",
    yaml: "secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: 42 }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: expected "store://<store>/<key>", "<store>:<key>", {store, key, version}, {provider, key, version} or {service: "svc://<type>/<instance>"} at dsops.yaml:5:16\n',
  },
  {
    name: "unknown transform",
    yaml: 'secretStores:\n  s: { type: env }\nenvs:\n  dev:\n    X: { from: "store://s/k", transform: "trim | json_extrct:.a" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.transform: unknown transform "json_extrct" (did you mean "json_extract"?) at dsops.yaml:5:42\n',
  },
  {
    name: "transform without its argument",
    yaml: 'secretStores:\n  s: { type: env }\nenvs:\n  dev:\n    X: { from: "store://s/k", transform: "replace:abc" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.transform: transform "replace" needs replace:<from>:<to> at dsops.yaml:5:42\n',
  },
  {
    name: "variable with neither literal nor from",
    yaml: "envs:\n  dev:\n    X: { description: nothing }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.X: needs "literal" or "from" at dsops.yaml:3:8\n',
  },
  {
    name: "version other than 0 or 1",
    yaml: "version: 3\n",
    stderr: "error: invalid configuration:\n  - version: expected 0 or 1 at dsops.yaml:1:10\n",
  },
  // Issue 17: bad input that crashed (exit 70) or was silently accepted.
  {
    name: "YAML alias bomb (nested aliases)",
    yaml: "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    stderr: "error: invalid configuration:\n  - too many uses of YAML aliases: *c crosses the limit of 100 expanded uses of one anchor (nested aliases multiply) at dsops.yaml:4:8\nhint: write the values out, or use fewer aliases: expanding them would build a huge document\n",
  },
  {
    name: "a wide alias list",
    yaml: "x: &x 1\ny: [" + Array(120).fill("*x").join(", ") + "]\n",
    stderr: "error: invalid configuration:\n  - too many uses of YAML aliases: *x crosses the limit of 100 expanded uses of one anchor (nested aliases multiply) at dsops.yaml:2:401\nhint: write the values out, or use fewer aliases: expanding them would build a huge document\n",
  },
  {
    name: "an undefined alias",
    yaml: "envs: *nope\n",
    stderr: "error: invalid configuration:\n  - unknown alias *nope: no anchor &nope before it at dsops.yaml:1:7\nhint: an alias (*name) repeats the node its anchor (&name) marks earlier in the file\n",
  },
  {
    name: "an alias inside the node it names",
    yaml: "envs: &e { dev: *e }\n",
    stderr: "error: invalid configuration:\n  - alias *e is inside the node &e it names (a cycle) at dsops.yaml:1:17\nhint: an alias (*name) repeats the node its anchor (&name) marks earlier in the file\n",
  },
  {
    name: "YAML nested too deeply",
    yaml: "x: " + "[".repeat(1000) + "]".repeat(1000) + "\n",
    stderr: "error: invalid configuration:\n  - the YAML is nested too deeply at dsops.yaml:1:781\nhint: dsops.yaml must be valid YAML\n",
  },
  {
    name: "__proto__ as a variable name",
    yaml: "envs:\n  dev:\n    __proto__: { literal: x }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.__proto__: \"__proto__\" cannot be a name here (JavaScript reserves it, so it would be lost); rename it at dsops.yaml:3:5\n",
  },
  {
    name: "a variable name with =",
    yaml: "envs:\n  dev:\n    \"A=B\": { literal: x }\n",
    stderr: "error: invalid configuration:\n  - envs.dev[\"A=B\"]: a variable name cannot contain \"=\": no environment can hold it (an entry NAME=value ends its name at the first \"=\") at dsops.yaml:3:5\n",
  },
  {
    name: "an empty variable name",
    yaml: "envs:\n  dev:\n    \"\": { literal: x }\n",
    stderr: "error: invalid configuration:\n  - envs.dev[\"\"]: an empty variable name: no environment can hold it at dsops.yaml:3:5\n",
  },
  {
    name: "a variable name with NUL",
    yaml: "envs:\n  dev:\n    \"A\\0B\": { literal: x }\n",
    stderr: "error: invalid configuration:\n  - envs.dev[\"A\\u0000B\"]: a variable name cannot contain NUL: no environment can hold it at dsops.yaml:3:5\n",
  },
  {
    name: "an unknown query parameter in a reference",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k?foo=bar\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference \"store://s/k?foo=bar\": unknown query parameter \"foo\"; a reference takes version, version_id, version_stage at dsops.yaml:5:16\n",
  },
  {
    name: "a repeated query parameter",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k?version=1&version=2\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference \"store://s/k?version=1&version=2\": query parameter \"version\" is given twice at dsops.yaml:5:16\n",
  },
  {
    name: "?? in a reference",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k??version=1\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference \"store://s/k??version=1\": \"??\": the query starts after a single \"?\" at dsops.yaml:5:16\n",
  },
  {
    name: "an empty field",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k#\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference \"store://s/k#\": nothing after \"#\" (to read the whole secret, leave out \"#\") at dsops.yaml:5:16\n",
  },
  {
    name: "a field of dots",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k#..\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference \"store://s/k#..\": bad field \"#..\": empty step after \".\" (at character 1) at dsops.yaml:5:16\n",
  },
  {
    name: "an empty field in the key form",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: { store: s, key: \"k#\" } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: reference to store \"s\", key \"k#\": nothing after \"#\" (to read the whole secret, leave out \"#\") at dsops.yaml:5:16\n",
  },
  {
    name: "an AWS version option on another store",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nenvs:\n  dev:\n    X: { from: \"store://s/k?version_stage=blue\" }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.X.from: ?version_stage= is read only by aws.secretsmanager stores; store \"s\" is file (use ?version=) at dsops.yaml:5:16\n",
  },
  {
    name: "a typo in a rotated service's type",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresqll, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db\", rotation: { service: app-db, user: app } }\n",
    stderr: "error: invalid configuration:\n  - services.app-db.type: unknown rotation target type \"postgresqll\" (did you mean \"postgresql\"?) at dsops.yaml:4:19\n",
  },
  {
    name: "a typo in a service's setting",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\", prot: 5432 }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - services.app-db.prot: unknown key \"prot\" (did you mean \"port\"?) at dsops.yaml:4:60\n",
  },
  {
    name: "an unknown rotation.service",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db\", rotation: { service: app_db, user: app } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.DB.rotation.service: unknown service \"app_db\" (did you mean \"app-db\"?) at dsops.yaml:7:58\n",
  },
  {
    name: "alternating-users without users",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db\", rotation: { service: app-db, strategy: alternating-users } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.DB.rotation.users: alternating-users rotation needs two users, e.g. users: [app_a, app_b] at dsops.yaml:7:47\n",
  },
  {
    name: "single-user without user",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db\", rotation: { service: app-db } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.DB.rotation.user: single-user rotation needs the user whose password is rotated (user: <name>) at dsops.yaml:7:47\n",
  },
  {
    name: "a #field on a rotated secret",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db#password\", rotation: { service: app-db, user: app } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.DB.from: rotation rotates a whole secret; remove \"#password\" (read a field of it in another variable) at dsops.yaml:7:17\n",
  },
  {
    name: "an admin reference to an unknown store",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://local/pg/admin\" }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - services.app-db.admin: unknown store \"local\" (stores: s) at dsops.yaml:4:38\n",
  },
  {
    name: "rotation.schedule with W",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  app-db: { type: postgresql, admin: \"store://s/pg/admin\" }\nenvs:\n  dev:\n    DB: { from: \"store://s/app/db\", rotation: { service: app-db, user: app, schedule: \"0 2 15W * *\" } }\n",
    stderr: "error: invalid configuration:\n  - envs.dev.DB.rotation.schedule: \"0 2 15W * *\": \"W\" (nearest weekday) in the day-of-month field is not supported at dsops.yaml:7:87\n",
  },
];

/** Accepted, with a warning on stderr (`dsops plan` exits 0 and prints the plan). */
const warnings: Array<{ name: string; yaml: string; stderr: string }> = [
  {
    name: "a variable name a shell cannot use",
    yaml: "envs:\n  dev:\n    1BAD: { literal: x }\n",
    stderr: "warning: envs.dev.1BAD: not a name a shell can use (letters, digits and _, not starting with a digit): exec and render pass it on, but $NAME cannot read it at dsops.yaml:3:5\n",
  },
  {
    name: "a variable name with a space",
    yaml: "envs:\n  dev:\n    \"A B\": { literal: x }\n",
    stderr: "warning: envs.dev[\"A B\"]: not a name a shell can use (letters, digits and _, not starting with a digit): exec and render pass it on, but $NAME cannot read it at dsops.yaml:3:5\n",
  },
  {
    name: "a variable name with a bidi override",
    yaml: "envs:\n  dev:\n    \"AB\\u202eC\": { literal: x }\n",
    stderr: "warning: envs.dev[\"AB\\u202eC\"]: the name holds invisible or direction-changing characters (U+202E): it shows as \"ABC\" but is another name; a shell cannot use it either at dsops.yaml:3:5\n",
  },
  {
    name: "a variable name with a zero-width space",
    yaml: "envs:\n  dev:\n    \"A\\u200bB\": { literal: x }\n",
    stderr: "warning: envs.dev[\"A\\u200bB\"]: the name holds invisible or direction-changing characters (U+200B): it shows as \"AB\" but is another name; a shell cannot use it either at dsops.yaml:3:5\n",
  },
  {
    name: "a service type of dsops's catalogue that is not rotated yet",
    yaml: "secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  gh: { type: github, org: acme }\nenvs:\n  dev:\n    GH_TOKEN: { from: \"store://s/gh/token\", rotation: { service: gh, user: bot } }\n",
    stderr: "warning: services.gh.type: service type \"github\" is in dsops's service catalogue, but this version cannot rotate it yet (rotation targets: postgresql, mysql, redis, aws.iam, webhook, script); rotating envs.dev.GH_TOKEN.rotation fails until then at dsops.yaml:4:15\n",
  },
];

describe("bad input: the exact errors users see", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-bad-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of cases) {
    it(c.name, () => {
      writeFileSync(join(dir, "dsops.yaml"), c.yaml);
      const env = { ...process.env };
      delete env.DSOPS_TEST_UNSET_ADDR;
      const r = dsops(c.args ?? ["plan", "--env", "dev"], { cwd: dir, env });
      assert.equal(r.stderr, c.stderr);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
    });
  }

  for (const c of warnings) {
    it(`${c.name}: a warning, exit 0`, () => {
      writeFileSync(join(dir, "dsops.yaml"), c.yaml);
      const r = dsops(["plan", "--env", "dev"], { cwd: dir });
      assert.equal(r.stderr, c.stderr);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /^VARIABLE +SOURCE/);
      const j = dsops(["plan", "--env", "dev", "--json"], { cwd: dir });
      assert.equal(j.status, 0);
      assert.deepEqual((JSON.parse(j.stdout) as { warnings: string[] }).warnings.map((w) => `warning: ${w}\n`).join(""), c.stderr);
    });
  }

  it("names of JavaScript's object members are names like any other (constructor, toString), never inherited", () => {
    writeFileSync(join(dir, "dsops.yaml"), "envs:\n  dev:\n    constructor: { literal: c }\n    prototype: { literal: p }\n");
    const plan = dsops(["plan", "--env", "dev", "--json"], { cwd: dir });
    assert.equal(plan.status, 0, plan.stderr);
    assert.deepEqual((JSON.parse(plan.stdout) as { variables: Array<{ name: string }> }).variables.map((v) => v.name).sort(), ["constructor", "prototype"]);
    const get = dsops(["get", "--env", "dev", "--var", "constructor"], { cwd: dir });
    assert.equal(get.stdout, "c\n");
    assert.equal(get.status, 0);
    for (const env of ["constructor", "toString", "__proto__"]) {
      const r = dsops(["plan", "--env", env], { cwd: dir });
      assert.equal(r.stderr, `error: unknown env "${env}"\nhint: envs: dev\n`);
      assert.equal(r.status, 1);
    }
    const missing = dsops(["get", "--env", "dev", "--var", "toString"], { cwd: dir });
    assert.equal(missing.stderr, 'error: env "dev" has no variable "toString"\n');
    assert.equal(missing.status, 1);
  });
});

/**
 * Damaged but parseable file stores: `secrets set` and `get` name the file and what is wrong
 * (exit 1, never a stack trace), and never write over the file.
 */
const damagedStores: Array<{ name: string; content: string; problem: string }> = [
  { name: "secrets is a list", content: '{"format":"dsops-file-store/2","salt":"c2FsdA==","check":"x","secrets":[],"mac":"y"}', problem: "secrets: expected an object, got a list" },
  { name: "the file holds null", content: "null\n", problem: "expected a JSON object, got null" },
  { name: "secrets is null", content: '{"format":"dsops-file-store/1","salt":"c2FsdA==","secrets":null}', problem: "secrets: expected an object, got null" },
  { name: "no salt", content: '{"format":"dsops-file-store/1","secrets":{}}', problem: "salt: missing (expected a string)" },
  { name: "a secret without versions", content: '{"format":"dsops-file-store/1","salt":"c2FsdA==","secrets":{"a":{"current":"1"}}}', problem: 'secrets["a"].versions: missing (expected a list)' },
  { name: "not JSON", content: '{"format":"dsops-file-store/2",', problem: "not valid JSON" },
];

describe("bad input: damaged file stores", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-bad-store-"));
    writeFileSync(join(dir, "dsops.yaml"), 'secretStores:\n  local: { type: file, path: ./secrets.store }\nenvs:\n  dev:\n    A: { from: "store://local/a" }\n');
    writeFileSync(join(dir, "secrets.store.key"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of damagedStores) {
    it(c.name, () => {
      const path = join(dir, "secrets.store");
      writeFileSync(path, c.content);
      const env = { ...process.env };
      delete env.DSOPS_FILE_KEY;
      const message = `store "local": ${path} is damaged: ${c.problem}`;
      const set = dsops(["secrets", "set", "--store", "local", "--key", "a"], { cwd: dir, input: "new-value", env });
      assert.equal(set.stderr, `error: ${message}\nhint: dsops neither reads from nor writes over a damaged store: restore the file from a backup, or repair what is named above\n`);
      assert.equal(set.status, 1);
      const get = dsops(["get", "--env", "dev", "--var", "A"], { cwd: dir, env });
      assert.equal(get.stderr, `error: env "dev": 1 variable failed to resolve:\n  - A (store local, key a): ${message}\n`);
      assert.equal(get.status, 1);
      assert.equal(get.stdout, "");
      assert.equal(readFileSync(path, "utf8"), c.content, "never written over");
    });
  }
});
