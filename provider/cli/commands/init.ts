import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { DsopsError } from "../../core/errors";
import { configPath } from "../util";

export const initExamples = ["aws", "vault", "gcp", "node", "go", "python"] as const;
export type InitExample = (typeof initExamples)[number];
type StoreExample = "aws" | "vault" | "gcp";
type AppExample = Exclude<InitExample, StoreExample>;
const isApp = (e: InitExample): e is AppExample => e === "node" || e === "go" || e === "python";

const HEADER = `# dsops.yaml: where secrets come from, and which variables each env gets.
# Written by \`dsops init\`; the README's "dsops.yaml" section lists every setting.
version: 1

# Secret stores, by name. The embedded \`file\` store keeps its secrets encrypted (AES-256-GCM)
# and versioned in ./secrets.store. Its key is DSOPS_FILE_KEY (a passphrase) when set, else
# ./secrets.store.key, created with mode 0600 on the first write. Keep both out of git:
#   dsops guard gitignore --fix
secretStores:
  local:
    type: file
    path: ./secrets.store
`;

const STORES: Record<StoreExample, string> = {
  aws: `
  # AWS Secrets Manager. Credentials: \`profile\` (log in with \`dsops login aws\`), else the
  # SDK's default chain (AWS_* variables, SSO, container and instance roles).
  aws:
    type: aws.secretsmanager
    region: us-east-1
    # profile: my-sso-profile
`,
  vault: `
  # HashiCorp Vault or OpenBao. With auth_method token, the token is VAULT_TOKEN from the
  # environment (or \`token:\`, e.g. token: \${VAULT_TOKEN}); AppRole takes role_id and secret_id.
  vault:
    type: vault
    address: https://vault.example.com:8200
    auth_method: token
    # namespace: team-a
`,
  gcp: `
  # Google Cloud Secret Manager. Credentials: Application Default Credentials
  # (\`dsops login gcp\` runs \`gcloud auth application-default login\`), or credentials_file.
  gcp:
    type: gcp.secretmanager
    project_id: my-project
`,
};

const ENVS = `
# Envs: each variable is a literal or comes \`from\` a store:
#   from: "store://<store>/<key>[#field][?version=<v>]"   (#field reads a field of a JSON value)
# Put a value in the file store (read from standard input, never from the command line):
#   printf %s "$PASSWORD" | dsops secrets set --store local --key myapp/db
# See what an env resolves, without values:   dsops plan --env dev
# Run a program with it:                      dsops exec --env dev -- npm start
envs:
  dev:
    DATABASE_PASSWORD:
      from: "store://local/myapp/db"
    LOG_LEVEL:
      literal: debug
`;

const EXAMPLE_ENVS: Record<StoreExample, string> = {
  aws: `  production:
    # The field "password" of the JSON secret myapp/prod in Secrets Manager.
    DATABASE_PASSWORD:
      from: "store://aws/myapp/prod#password"
    LOG_LEVEL:
      literal: info
`,
  vault: `  production:
    # The field "password" of the secret myapp/prod on the KV mount secret/.
    DATABASE_PASSWORD:
      from: "store://vault/secret/myapp/prod#password"
    LOG_LEVEL:
      literal: info
`,
  gcp: `  production:
    # The latest version of the secret myapp-db-password.
    DATABASE_PASSWORD:
      from: "store://gcp/myapp-db-password"
    LOG_LEVEL:
      literal: info
`,
};

/** A dev env for an app in one language: the variables it reads, and how to run it. */
const APPS: Record<AppExample, { run: string; vars: string }> = {
  node: {
    run: "npm start",
    vars: `    NODE_ENV:
      literal: development
    PORT:
      literal: "3000"
    # The password inside a connection URL: the whole URL is one secret.
    DATABASE_URL:
      from: "store://local/myapp/database_url"
    SESSION_SECRET:
      from: "store://local/myapp/session_secret"
`,
  },
  go: {
    run: "go run .",
    vars: `    APP_ENV:
      literal: development
    PORT:
      literal: "8080"
    DATABASE_URL:
      from: "store://local/myapp/database_url"
    JWT_SIGNING_KEY:
      from: "store://local/myapp/jwt_signing_key"
`,
  },
  python: {
    run: "python app.py",
    vars: `    APP_ENV:
      literal: development
    LOG_LEVEL:
      literal: DEBUG
    DATABASE_URL:
      from: "store://local/myapp/database_url"
    SECRET_KEY:
      from: "store://local/myapp/secret_key"
`,
  },
};

function appEnvs(app: AppExample): string {
  const a = APPS[app];
  const keys = [...a.vars.matchAll(/store:\/\/local\/([^"]+)"/g)].map((m) => m[1]);
  return `
# A ${app} app's dev env: each variable is a literal or comes \`from\` a store:
#   from: "store://<store>/<key>[#field][?version=<v>]"   (#field reads a field of a JSON value)
# Put the secrets in the file store (read from standard input, never from the command line):
${keys.map((k) => `#   printf %s "$VALUE" | dsops secrets set --store local --key ${k}`).join("\n")}
# See what the env resolves, without values:  dsops plan --env dev
# Run the app with it:                        dsops exec --env dev -- ${a.run}
# Or write a .env file (mode 0600):           dsops render --env dev --out .env
envs:
  dev:
${a.vars}`;
}

/** The text `dsops init` writes. */
export function initConfigText(example?: InitExample): string {
  if (example && isApp(example)) return HEADER + appEnvs(example);
  return HEADER + (example ? STORES[example] : "") + ENVS + (example ? EXAMPLE_ENVS[example] : "");
}

/** `dsops init`: write a commented dsops.yaml for the file store (never over an existing file). */
export function register(program: Command): void {
  program
    .command("init")
    .description("write a commented dsops.yaml for the embedded file store (never overwrites)")
    .addOption(new Option("--example <kind>", "aws|vault|gcp: add an example store and env of this type; node|go|python: a dev env for an app in that language").choices(initExamples))
    .action((o: { example?: InitExample }, cmd: Command) => {
      const file = configPath(cmd);
      const abs = resolve(file);
      mkdirSync(dirname(abs), { recursive: true });
      let fd: number;
      try {
        fd = openSync(abs, "wx", 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST")
          throw new DsopsError(`${file} already exists; not overwriting it`, { hint: "remove it first, or pass --config OTHER.yaml" });
        throw new DsopsError(`cannot create ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      }
      try {
        writeSync(fd, initConfigText(o.example));
      } finally {
        closeSync(fd);
      }
      const key = o.example && isApp(o.example) ? "myapp/database_url" : "myapp/db";
      process.stderr.write(
        `wrote ${file}\nnext: printf %s "$${key === "myapp/db" ? "PASSWORD" : "VALUE"}" | dsops secrets set --store local --key ${key}\n      dsops guard gitignore --fix\n`,
      );
    });
}
