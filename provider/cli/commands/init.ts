import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { DsopsError } from "../../core/errors";
import { configPath } from "../util";

export const initExamples = ["aws", "vault", "gcp"] as const;
export type InitExample = (typeof initExamples)[number];

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

const STORES: Record<InitExample, string> = {
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

const EXAMPLE_ENVS: Record<InitExample, string> = {
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

/** The text `dsops init` writes. */
export function initConfigText(example?: InitExample): string {
  return HEADER + (example ? STORES[example] : "") + ENVS + (example ? EXAMPLE_ENVS[example] : "");
}

/** `dsops init`: write a commented dsops.yaml for the file store (never over an existing file). */
export function register(program: Command): void {
  program
    .command("init")
    .description("write a commented dsops.yaml for the embedded file store (never overwrites)")
    .addOption(new Option("--example <store>", "add an example store and env of this type").choices(initExamples))
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
      process.stderr.write(
        `wrote ${file}\nnext: printf %s "$PASSWORD" | dsops secrets set --store local --key myapp/db\n      dsops guard gitignore --fix\n`,
      );
    });
}
