// The store CLIs (aws, vault, bao, gcloud) are stand-in scripts on a private PATH that record how
// dsops ran them: a login is interactive and talks to real identity providers, so the test checks
// what dsops starts (program, arguments, environment, stdio, exit code), not the login itself.
import { strict as assert } from "node:assert";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

describe("dsops login (built binary, store CLIs on PATH)", function () {
  this.timeout(60000);
  let dir: string;
  let bin: string;
  let empty: string;
  const log = () => join(dir, "calls.log");

  /** A stand-in CLI that appends "name args | VAULT_ADDR | VAULT_NAMESPACE" to the log and exits `code`. */
  const fakeCli = (name: string, code = 0) => {
    const script = `#!/bin/sh\nprintf '%s %s | %s | %s\\n' "${name}" "$*" "\${VAULT_ADDR:-}" "\${VAULT_NAMESPACE:-}" >> '${log()}'\nexit ${code}\n`;
    writeFileSync(join(bin, name), script);
    chmodSync(join(bin, name), 0o755);
  };
  const run = (args: string[], path: string) => dsops(args, { cwd: dir, env: { PATH: path, AWS_PROFILE: "" } });
  const calls = () => {
    try {
      return readFileSync(log(), "utf8");
    } catch {
      return "";
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-login-"));
    bin = join(dir, "bin");
    empty = join(dir, "empty");
    mkdirSync(bin);
    mkdirSync(empty);
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file }
  aws: { type: aws.secretsmanager, region: eu-west-1, profile: team-sso }
  ssm: { type: aws.ssm }
  keys: { type: aws.ssm, access_key_id: a, secret_access_key: b }
  vault: { type: vault, address: "https://vault.example.test:8200", namespace: team-a }
  approle: { type: vault, address: "https://vault.example.test:8200", auth_method: approle, role_id: r, secret_id: s }
  userpass: { type: vault, address: "https://vault.example.test:8200", auth_method: userpass, userpass_username: u, userpass_password: p }
  gcp: { type: gcp.secretmanager, project_id: p }
`,
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("runs aws sso login with the store's profile", () => {
    fakeCli("aws");
    const r = run(["login", "aws"], bin);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(calls(), "aws sso login --profile team-sso |  | \n");
    assert.match(r.stderr, /^running: aws sso login --profile team-sso\n/);
  });

  it("aws.sso runs aws sso login with its profile (or sso_session); aws.sts with keys and the aws router say what they use", () => {
    writeFileSync(
      join(dir, "dsops.yaml"),
      `secretStores:
  sso-dev: { type: aws.sso, profile: dev }
  sso-session: { type: aws.sso, sso_session: corp, account_id: "1", role_name: r }
  temp-role: { type: aws.sts, assume_role: "arn:aws:iam::123456789012:role/r", access_key_id: a, secret_access_key: b }
  aws: { type: aws, profile: team-sso }
`,
    );
    fakeCli("aws");
    const a = run(["login", "sso-dev"], bin);
    assert.equal(a.status, 0, a.stderr);
    const b = run(["login", "sso-session"], bin);
    assert.equal(b.status, 0, b.stderr);
    const c = run(["login", "aws"], bin);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(calls(), "aws sso login --profile dev |  | \naws sso login --sso-session corp |  | \naws sso login --profile team-sso |  | \n");
    const d = run(["login", "temp-role"], bin);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout + d.stderr, /store "temp-role" \(aws\.sts\) uses the access keys in its settings; nothing to log in to/);
    const e = run(["login", "sso-dev"], empty);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /Log in with: aws sso login --profile dev/);
  });

  it("runs vault login (else bao login) against the store's address and namespace, extra args passed on", () => {
    fakeCli("bao");
    let r = run(["login", "vault", "--", "-method=oidc"], bin);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(calls(), "bao login -method=oidc | https://vault.example.test:8200 | team-a\n");
    assert.match(r.stderr, /export VAULT_TOKEN=/);
    fakeCli("vault");
    r = run(["login", "vault"], bin);
    assert.equal(r.status, 0, r.stderr);
    assert.match(calls(), /\nvault login \| https:\/\/vault\.example\.test:8200 \| team-a\n$/);
  });

  it("runs gcloud auth application-default login, and passes a failing login's exit code through", () => {
    fakeCli("gcloud", 3);
    const r = run(["login", "gcp"], bin);
    assert.equal(r.status, 3);
    assert.equal(calls(), "gcloud auth application-default login |  | \n");
  });

  it("without the CLI on PATH, prints guidance and exits 1", () => {
    for (const [store, cli] of [["aws", "aws"], ["vault", "vault or bao"], ["gcp", "gcloud"]]) {
      const r = run(["login", store], empty);
      assert.equal(r.status, 1, store);
      assert.match(r.stderr, new RegExp(`error: ${cli} not found on PATH\\n$`));
      assert.match(r.stderr, /install/i);
    }
    assert.equal(calls(), "");
  });

  it("says there is nothing to do for stores that need no login (exit 0, nothing run)", () => {
    fakeCli("aws");
    fakeCli("vault");
    for (const [store, text] of [
      ["local", /needs no login: its key is DSOPS_FILE_KEY/],
      ["keys", /uses the access keys in its settings/],
      ["approle", /logs in by itself with AppRole/],
      ["userpass", /logs in by itself with userpass \(userpass_username and userpass_password in its settings\)/],
    ] as const) {
      const r = run(["login", store], bin);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, text);
    }
    assert.equal(calls(), "");
  });

  it("accepts a store type when dsops.yaml has no such store; an unknown name is an error", () => {
    fakeCli("aws");
    const r = run(["--config", "none.yaml", "login", "aws"], bin);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(calls(), "aws sso login |  | \n");
    const bad = run(["login", "nope"], bin);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no store "nope" in dsops\.yaml/);
  });

  it("--list shows each store with whether and how it signs in, running nothing", () => {
    fakeCli("aws");
    const r = run(["login", "--list"], bin);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^STORE\s+TYPE\s+LOGIN\s+CLI\s+HOW$/);
    const row = (name: string) => lines.find((l) => l.startsWith(name + " ")) ?? "";
    assert.match(row("local"), /^local\s+file\s+none\s+-\s+needs no login/);
    assert.match(row("aws"), /^aws\s+aws\.secretsmanager\s+interactive\s+aws found\s+dsops login aws runs aws sso login --profile team-sso$/);
    assert.match(row("ssm"), /^ssm\s+aws\.ssm\s+interactive\s+aws found\s+dsops login ssm runs aws sso login$/);
    assert.match(row("keys"), /^keys\s+aws\.ssm\s+automatic\s+-\s+uses the access keys in its settings/);
    assert.match(row("vault"), /^vault\s+vault\s+interactive\s+CLI not on PATH\s+dsops login vault runs vault login \| bao login$/);
    assert.match(row("approle"), /^approle\s+vault\s+automatic\s+-\s+logs in by itself with AppRole/);
    assert.match(row("userpass"), /^userpass\s+vault\s+automatic\s+-\s+logs in by itself with userpass/);
    assert.match(row("gcp"), /^gcp\s+gcp\.secretmanager\s+interactive\s+CLI not on PATH\s+dsops login gcp runs gcloud auth application-default login$/);
    assert.equal(lines.length, 9);
    assert.equal(calls(), "");
    const json = run(["login", "--list", "--json"], bin);
    assert.equal(json.status, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Array<{ store: string; login: string; cli?: string }>;
    assert.deepEqual(rows.map((x) => [x.store, x.login, x.cli ?? null]).slice(0, 3), [["local", "none", null], ["aws", "interactive", "aws"], ["ssm", "interactive", "aws"]]);
    // Usage errors: a store name with --list, neither.
    assert.equal(run(["login", "--list", "aws"], bin).status, 2);
    const none = run(["login"], bin);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /missing required argument 'store' \(or pass --list\)/);
    // Without a dsops.yaml: exit 1, the loader's message.
    const missing = run(["--config", "none.yaml", "login", "--list"], bin);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read configuration none\.yaml: no such file/);
  });
});
