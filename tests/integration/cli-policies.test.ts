import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

/**
 * dsops's `policies:` through the built binary: refused at load (with path, line and column),
 * values refused by `secrets set`, outputs refused by `render`, and the audit log (which never
 * holds a value: every test searches it for the values it used).
 */
const KEY = { DSOPS_FILE_KEY: "policy tests passphrase", DSOPS_FAULT: undefined };

const loadErrors: Array<{ name: string; policies: string; stores?: string; stderr: string }> = [
  {
    name: "include_values: true",
    policies: "  audit_logging: { enabled: true, include_values: true }\n",
    stderr:
      "  - policies.audit_logging.include_values: refused: the audit log records who read which variables, never their values (a log file holding secrets would be one more place to leak them); remove the key at dsops.yaml:8:51\n",
  },
  {
    name: "a blocked store type",
    policies: "  blocked_providers: [literal]\n",
    stderr: "  - secretStores.lit.type: store \"lit\" (literal) is blocked by policies.blocked_providers at dsops.yaml:3:16\n",
  },
  {
    name: "a store type not allowed",
    policies: "  allowed_providers: [file]\n",
    stderr: "  - secretStores.lit.type: store \"lit\" (literal) is not in policies.allowed_providers (file) at dsops.yaml:3:16\n",
  },
  {
    name: "require_encryption and a literal store",
    policies: "  require_encryption: true\n",
    stderr: "  - secretStores.lit.type: store \"lit\" (literal) breaks policies.require_encryption: a literal store keeps its values in clear in dsops.yaml at dsops.yaml:3:16\n",
  },
  {
    name: "require_encryption and a vault over plain http",
    stores: "  v: { type: vault, address: \"http://127.0.0.1:1\", token: t }\n",
    policies: "  require_encryption: true\n  allowed_providers: [file, vault]\n",
    stderr:
      "  - secretStores.lit.type: store \"lit\" (literal) is not in policies.allowed_providers (file, vault) at dsops.yaml:3:16\n" +
      "  - secretStores.v.type: store \"v\" (vault) breaks policies.require_encryption: its address http://127.0.0.1:1 is plain http (not encrypted in transit) at dsops.yaml:4:14\n",
  },
  {
    name: "an env rule that blocks a store a variable of that env reads",
    policies: "  environment_rules:\n    dev: { blocked_providers: [file] }\n",
    stderr: "  - envs.dev.A.from: store \"local\" (file) is blocked by policies.environment_rules.dev.blocked_providers at dsops.yaml:6:16\n",
  },
  {
    name: "environment_rules for an env that does not exist",
    policies: "  environment_rules:\n    prd: { require_encryption: true }\n",
    stderr: "  - policies.environment_rules.prd: no env \"prd\" in envs (envs: dev) at dsops.yaml:9:5\n",
  },
  {
    name: "an invalid forbidden pattern",
    policies: "  forbidden_patterns: [\"(\"]\n",
    stderr: "  - policies.forbidden_patterns[0]: not a valid regular expression: /(/u: Unterminated group at dsops.yaml:8:24\n",
  },
  {
    name: "min_length above max_length",
    policies: "  secret_complexity: { min_length: 10, max_length: 3 }\n",
    stderr: "  - policies.secret_complexity.min_length: min_length 10 is greater than max_length 3: no value can meet both at dsops.yaml:8:36\n",
  },
  {
    name: "more required classes than max_length",
    policies: "  secret_complexity: { max_length: 2, require_upper: true, require_lower: true, require_numbers: true }\n",
    stderr: "  - policies.secret_complexity.max_length: max_length 2 cannot hold the 3 required character classes at dsops.yaml:8:36\n",
  },
  {
    name: "an unknown complexity key",
    policies: "  secret_complexity: { require_uper: true }\n",
    stderr: "  - policies.secret_complexity.require_uper: unknown key \"require_uper\" (did you mean \"require_upper\"?) at dsops.yaml:8:24\n",
  },
  {
    name: "a max_ttl that is not a duration",
    policies: "  output_restrictions: { max_ttl: soon }\n",
    stderr: "  - policies.output_restrictions.max_ttl: expected a duration such as 500ms, 30s, 15m, 4h, 1h30m, 30d, 2w, or a number of seconds at dsops.yaml:8:35\n",
  },
  {
    name: "an unknown log level",
    policies: "  audit_logging: { enabled: true, log_level: loud }\n",
    stderr: '  - policies.audit_logging.log_level: Invalid option: expected one of "debug"|"info"|"warn"|"error" at dsops.yaml:8:46\n',
  },
];

describe("policies: dsops's keys accepted and enforced", function () {
  this.timeout(120_000);
  let dir: string;
  const run = (args: string[], input?: string, env: NodeJS.ProcessEnv = {}) => dsops(args, { cwd: dir, input, env: { ...KEY, ...env } });
  const yaml = (policies: string, stores = "") =>
    writeFileSync(
      join(dir, "dsops.yaml"),
      `secretStores:\n  local: { type: file, path: ./s.store }\n  lit: { type: literal, values: { a: x } }\n${stores}envs:\n  dev:\n    A: { from: "store://local/a" }\npolicies:\n${policies}`,
    );
  const auditLines = () =>
    readFileSync(join(dir, "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-policies-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of loadErrors)
    it(`refused at load: ${c.name} (exit 1, path, line:column)`, () => {
      yaml(c.policies, c.stores);
      const r = run(["plan", "--env", "dev"]);
      assert.equal(r.stderr, `error: invalid configuration:\n${c.stderr}`);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
    });

  it("accepts every documented key (plan exits 0)", () => {
    yaml(
      "  allowed_providers: [file, literal]\n  blocked_providers: [env]\n  require_encryption: false\n" +
        "  secret_complexity: { min_length: 8, max_length: 64, require_upper: true, require_lower: true, require_numbers: true, require_special: false }\n" +
        '  forbidden_patterns: ["password"]\n  required_patterns: ["^[A-Za-z0-9]+$"]\n' +
        "  environment_rules:\n    dev: { secret_complexity: { min_length: 12 } }\n" +
        "  output_restrictions: { allowed_paths: [\"out/\"], blocked_paths: [\"*.json\"], require_gitignore: false, max_ttl: 1h }\n" +
        "  audit_logging: { enabled: true, log_path: ./audit.log, log_level: info, include_values: false }\n",
    );
    const r = run(["plan", "--env", "dev"]);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  it("rotation: a generator that cannot always meet the complexity rules is refused at load (exit 1); one that can loads", () => {
    const rotYaml = (generator: string, policies: string) =>
      writeFileSync(
        join(dir, "dsops.yaml"),
        `secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  db: { type: postgresql, admin: "store://s/pg/admin" }\nenvs:\n  prod:\n    DB: { from: "store://s/app/db", rotation: { service: db, user: app${generator} } }\npolicies:\n${policies}`,
      );
    rotYaml("", "  environment_rules:\n    prod: { secret_complexity: { max_length: 20 } }\n");
    let r = run(["plan", "--env", "prod"]);
    assert.equal(
      r.stderr,
      "error: invalid configuration:\n  - envs.prod.DB.rotation: generator length 32, longer than max_length 20 (policies.environment_rules.prod.secret_complexity) at dsops.yaml:7:47\n",
    );
    assert.equal(r.status, 1);
    rotYaml(", generator: { format: hex, length: 40 }", "  secret_complexity: { require_upper: true }\n");
    r = run(["plan", "--env", "prod"]);
    assert.equal(
      r.stderr,
      "error: invalid configuration:\n  - envs.prod.DB.rotation.generator: a generator of format hex does not always draw an upper-case letter (require_upper); use format password or alphanumeric with at least 1 (policies.secret_complexity) at dsops.yaml:7:84\n",
    );
    assert.equal(r.status, 1);
    rotYaml(", generator: { format: alphanumeric, length: 16 }", "  secret_complexity: { min_length: 12, max_length: 20, require_upper: true, require_numbers: true }\n");
    r = run(["plan", "--env", "prod"]);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  it("secrets set refuses a value that breaks complexity or patterns (exit 1, nothing written, the value in no message)", () => {
    yaml(
      '  secret_complexity: { min_length: 12, require_upper: true, require_numbers: true }\n  forbidden_patterns: ["[Pp]assword"]\n',
    );
    const short = run(["secrets", "set", "--store", "local", "--key", "a"], "shortone\n");
    assert.equal(
      short.stderr,
      'error: the value for store "local", key a breaks policies: shorter than secret_complexity.min_length 12 (8 characters); has no upper-case letter (secret_complexity.require_upper); has no digit (secret_complexity.require_numbers); nothing was written\nhint: choose a value that meets the policy (see policies.secret_complexity, forbidden_patterns, required_patterns)\n',
    );
    assert.equal(short.status, 1);
    assert.ok(!existsSync(join(dir, "s.store")), "nothing was written");
    const forbidden = run(["secrets", "set", "--store", "local", "--key", "a"], "MyPassword12345");
    assert.equal(forbidden.status, 1);
    assert.match(forbidden.stderr, /matches forbidden_patterns\[0\]/);
    assert.ok(!forbidden.stderr.includes("MyPassword12345"));
    const ok = run(["secrets", "set", "--store", "local", "--key", "a"], "Correct7horse9battery");
    assert.equal(ok.status, 0, ok.stderr);
    const g = run(["get", "--env", "dev", "--var", "A"]);
    assert.equal(g.stdout, "Correct7horse9battery\n");
  });

  it("environment_rules: the rules of an env apply to the keys its variables read, not to other keys", () => {
    yaml('  environment_rules:\n    dev: { required_patterns: ["^prod-"] }\n');
    const a = run(["secrets", "set", "--store", "local", "--key", "a"], "dev-value");
    assert.equal(a.status, 1);
    assert.match(a.stderr, /breaks policies\.environment_rules\.dev: does not match required_patterns\[0\] \/\^prod-\//);
    assert.ok(!a.stderr.includes("dev-value"));
    const other = run(["secrets", "set", "--store", "local", "--key", "b"], "dev-value");
    assert.equal(other.status, 0, other.stderr);
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "prod-value").status, 0);
  });

  it("render: blocked and not-allowed paths refused (exit 1, no file), an allowed one written", () => {
    yaml('  output_restrictions: { allowed_paths: ["out/"], blocked_paths: ["*.json"] }\n');
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "rendered-value-1").status, 0);
    const blocked = run(["render", "--env", "dev", "--out", "out/x.json"]);
    assert.equal(
      blocked.stderr,
      "error: --out out/x.json: the path is blocked by policies.output_restrictions.blocked_paths (*.json); nothing was written\nhint: write the file elsewhere, or change the policy\n",
    );
    assert.equal(blocked.status, 1);
    assert.ok(!existsSync(join(dir, "out", "x.json")));
    const outside = run(["render", "--env", "dev", "--out", ".env"]);
    assert.equal(outside.status, 1);
    assert.match(outside.stderr, /^error: --out \.env: the path is not in policies\.output_restrictions\.allowed_paths \(out\/\); nothing was written\n/);
    assert.ok(!existsSync(join(dir, ".env")));
    const ok = run(["render", "--env", "dev", "--out", "out/.env"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(readFileSync(join(dir, "out", ".env"), "utf8"), "A=rendered-value-1\n");
  });

  it("render: require_gitignore asks git (not ignored, not a repository: exit 1; ignored: written)", () => {
    yaml("  output_restrictions: { require_gitignore: true }\n");
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "gitignored-value").status, 0);
    const noRepo = run(["render", "--env", "dev", "--out", ".env"]);
    assert.equal(noRepo.status, 1);
    assert.match(noRepo.stderr, /require_gitignore is on but git cannot tell whether the path is ignored \(not in a git repository\?\)/);
    assert.equal(spawnSync("git", ["init", "-q"], { cwd: dir }).status, 0);
    const notIgnored = run(["render", "--env", "dev", "--out", ".env"]);
    assert.equal(
      notIgnored.stderr,
      "error: --out .env: the path is not ignored by git and policies.output_restrictions.require_gitignore is on; nothing was written\nhint: add it to .gitignore (dsops guard gitignore --fix adds the usual outputs)\n",
    );
    assert.equal(notIgnored.status, 1);
    assert.ok(!existsSync(join(dir, ".env")));
    writeFileSync(join(dir, ".gitignore"), ".env\n");
    const ok = run(["render", "--env", "dev", "--out", ".env"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(existsSync(join(dir, ".env")));
  });

  it("render: max_ttl requires --ttl and caps it", () => {
    yaml("  output_restrictions: { max_ttl: 10m }\n");
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "ttl-value-1").status, 0);
    const none = run(["render", "--env", "dev", "--out", ".env"]);
    assert.equal(none.stderr, "error: --out .env: policies.output_restrictions.max_ttl (10m) requires --ttl; nothing was written\nhint: pass --ttl 10m or less\n");
    assert.equal(none.status, 1);
    const long = run(["render", "--env", "dev", "--out", ".env", "--ttl", "1h"]);
    assert.equal(long.stderr, "error: --ttl 1h is longer than policies.output_restrictions.max_ttl (10m); nothing was written\nhint: pass --ttl 10m or less\n");
    assert.equal(long.status, 1);
    assert.ok(!existsSync(join(dir, ".env")));
    const ok = run(["render", "--env", "dev", "--out", ".env", "--ttl", "5m"]);
    assert.equal(ok.status, 0, ok.stderr);
    const pid = Number(/\(watcher pid (\d+)\)/.exec(ok.stderr)?.[1]);
    if (pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("ttl-watcher")) process.kill(pid, "SIGTERM");
  });

  it("audit_logging: one JSON line per access (set, get, render, exec, refused render), mode 0600, never a value", () => {
    yaml('  output_restrictions: { blocked_paths: ["*.json"] }\n  audit_logging: { enabled: true, log_path: ./audit.log }\n');
    const value = "audited-secret-value-42";
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], value).status, 0);
    assert.equal(run(["get", "--env", "dev", "--var", "A"]).stdout, `${value}\n`);
    assert.equal(run(["render", "--env", "dev", "--out", "x.env"]).status, 0);
    assert.equal(run(["render", "--env", "dev", "--out", "x.json"]).status, 1);
    const ex = run(["exec", "--env", "dev", "--", "sh", "-c", "test -n \"$A\""]);
    assert.equal(ex.status, 0, ex.stderr);
    assert.equal(statSync(join(dir, "audit.log")).mode & 0o777, 0o600);
    const text = readFileSync(join(dir, "audit.log"), "utf8");
    assert.ok(!text.includes(value), "the audit log holds no value");
    const lines = auditLines();
    assert.deepEqual(
      lines.map((l) => [l.command, l.outcome]),
      [
        ["secrets set", "ok"],
        ["get", "ok"],
        ["render", "ok"],
        ["render", "refused"],
        ["exec", "ok"],
      ],
    );
    for (const l of lines) {
      assert.equal(typeof l.user, "string");
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
    }
    assert.deepEqual([lines[0].store, lines[0].key], ["local", "a"]);
    assert.deepEqual(lines[1].env, "dev");
    assert.deepEqual(lines[1].variables, [{ name: "A", store: "local", key: "a" }]);
    assert.deepEqual(lines[4].variables, [{ name: "A", store: "local", key: "a" }]);
    assert.match(String(lines[3].error), /blocked by policies\.output_restrictions\.blocked_paths/);
  });

  it("audit_logging: secrets rotate (dry run, a real rotation at a script target, a refused one) logged, never the old or new value", () => {
    writeFileSync(join(dir, "rotate.sh"), '#!/bin/sh\ncat > /dev/null\necho \'{"success": true}\'\n', { mode: 0o755 });
    writeFileSync(
      join(dir, "dsops.yaml"),
      'secretStores:\n  s: { type: file, path: ./s.store }\nservices:\n  job: { type: script, command: ./rotate.sh }\nenvs:\n  dev:\n    TOKEN: { from: "store://s/app/token", rotation: { service: job, user: app } }\n' +
        "policies:\n  audit_logging: { enabled: true, log_path: ./audit.log, log_level: debug }\n",
    );
    const first = "Initial-rotated-value-1";
    assert.equal(run(["secrets", "set", "--store", "s", "--key", "app/token"], first).status, 0);
    assert.equal(run(["secrets", "rotate", "--env", "dev", "--var", "TOKEN", "--dry-run"]).status, 0);
    const rot = run(["secrets", "rotate", "--env", "dev", "--var", "TOKEN"]);
    assert.equal(rot.status, 0, rot.stderr);
    const unknown = run(["secrets", "rotate", "--env", "dev", "--var", "NOPE"]);
    assert.equal(unknown.status, 1);
    const now = run(["get", "--env", "dev", "--var", "TOKEN"]).stdout.trim();
    assert.ok(now.length === 32 && now !== first);
    const text = readFileSync(join(dir, "audit.log"), "utf8");
    assert.ok(!text.includes(first) && !text.includes(now), "no value in the audit log");
    const lines = auditLines();
    assert.deepEqual(
      lines.map((l) => [l.command, l.outcome, l.dryRun ?? false]),
      [
        ["secrets set", "ok", false],
        ["secrets rotate", "ok", true],
        ["secrets rotate", "ok", false],
        ["secrets rotate", "refused", false],
        ["get", "ok", false],
      ],
    );
    assert.deepEqual(lines[2].variables, [{ name: "TOKEN", store: "s", key: "app/token", versionId: "2" }]);
    assert.deepEqual(lines[3].variables, [{ name: "NOPE" }]);
    assert.deepEqual(lines[4].variables, [{ name: "TOKEN", store: "s", key: "app/token", versionId: "2" }]);
  });

  it("audit_logging at level warn logs only refused accesses; a log path that cannot be written refuses the access before any write; a wide log is tightened", () => {
    yaml("  secret_complexity: { min_length: 20 }\n  audit_logging: { enabled: true, log_path: ./audit.log, log_level: warn }\n");
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "short-refused-1").status, 1);
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "a"], "a-long-enough-value-000").status, 0);
    const lines = auditLines();
    assert.deepEqual(lines.map((l) => [l.command, l.outcome]), [["secrets set", "refused"]]);
    assert.ok(!readFileSync(join(dir, "audit.log"), "utf8").includes("short-refused-1"));
    writeFileSync(join(dir, "blocker"), "");
    yaml("  audit_logging: { enabled: true, log_path: ./blocker/audit.log }\n");
    const r = run(["get", "--env", "dev", "--var", "A"]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^error: cannot write the audit log .*blocker\/audit\.log: (ENOTDIR|EEXIST)\n/);
    const before = readFileSync(join(dir, "s.store"), "utf8");
    const set = run(["secrets", "set", "--store", "local", "--key", "a"], "never-written-value-9");
    assert.equal(set.status, 1);
    assert.match(set.stderr, /^error: cannot write the audit log /);
    assert.equal(readFileSync(join(dir, "s.store"), "utf8"), before, "nothing was written");
    // A log created wider than 0600 (by hand) is tightened on the next access.
    writeFileSync(join(dir, "wide.log"), "", { mode: 0o644 });
    yaml("  audit_logging: { enabled: true, log_path: ./wide.log }\n");
    assert.equal(run(["get", "--env", "dev", "--var", "A"]).status, 0);
    assert.equal(statSync(join(dir, "wide.log")).mode & 0o777, 0o600);
  });
});
