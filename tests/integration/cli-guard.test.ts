import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

/** Git isolated from the machine's configuration, with a fixed identity. */
const GIT_ENV: NodeJS.ProcessEnv = {
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
};

function gitIn(dir: string, ...args: string[]): string {
  const r = spawnSync("git", args, { cwd: dir, env: { ...process.env, ...GIT_ENV }, encoding: "utf8" });
  assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function newRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), "dsops-guard-"));
  gitIn(dir, "init", "-q", "-b", "main");
  return dir;
}

const pick = (alphabet: string, n: number) => Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("");
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM = UPPER + "abcdefghijklmnopqrstuvwxyz0123456789";

/** Fresh fake credentials in the real formats (made at run time, so this file holds none). */
const AWS_KEY = "AKIA" + pick(UPPER + "234567", 16);
const GH_TOKEN = "ghp_" + pick(ALNUM, 36);
const SLACK = "xoxb-" + pick("0123456789", 12) + "-" + pick(ALNUM, 24);
const STRIPE = "sk_live_" + pick(ALNUM, 24);
const JWT = ["eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIx" + pick(ALNUM, 20), pick(ALNUM + "_-", 43)].join(".");
/** A random order of `chars` (each used once: high entropy by construction, never by chance). */
const shuffle = (chars: string) => {
  const a = [...chars];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32LE() % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.join("");
};
const LETTERS = UPPER + UPPER.toLowerCase();
const PASSWORD = shuffle(shuffle(LETTERS).slice(0, 12) + shuffle("0123456789").slice(0, 4));
const B64 = shuffle(shuffle(LETTERS).slice(0, 38) + shuffle("0123456789").slice(0, 6));
const HEX = shuffle("0123456789abcdef".repeat(4));
/** Formats only secretlint's recommended preset knows (our rules have no npm, GitLab or basic-auth rule). */
const NPM_TOKEN = "npm_" + pick(ALNUM, 36);
const GITLAB_TOKEN = "glpat-" + pick(ALNUM, 20);
const BASIC_AUTH_PASSWORD = shuffle(shuffle(LETTERS).slice(0, 10) + "4821");
/** A token format no rule knows: found only with --pattern. */
const ACME = "acme_" + pick("0123456789ABCDEF", 20);
const ALL = [ACME, AWS_KEY, GH_TOKEN, SLACK, STRIPE, JWT, PASSWORD, B64, HEX, NPM_TOKEN, GITLAB_TOKEN, BASIC_AUTH_PASSWORD];

describe("dsops guard (built binary, real git repositories)", function () {
  this.timeout(60000);
  const dirs: string[] = [];
  const outputs: string[] = [];
  const run = (dir: string, args: string[]) => {
    const r = dsops(args, { cwd: dir, env: GIT_ENV });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const repo = () => {
    const d = newRepo();
    dirs.push(d);
    return d;
  };

  after(() => {
    for (const out of outputs) for (const s of ALL) assert.ok(!out.includes(s), "a secret appeared in dsops output");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("exits 0 on a clean repository and says what it scanned", () => {
    const dir = repo();
    writeFileSync(join(dir, "README.md"), "# app\nSee dsops.yaml; password: ${DB_PASSWORD}\ncommit 9f2c4e1a0b7d3c5e6f8a9b0c1d2e3f4a5b6c7d8e\n");
    writeFileSync(join(dir, "app.js"), "const password = process.env.DB_PASSWORD;\nconst token = config.api.token;\n");
    gitIn(dir, "add", ".");
    gitIn(dir, "commit", "-qm", "init");
    const r = run(dir, ["guard", "repo"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /no secrets found \(scanned 2 files, 0 staged lines, 1 commit\)/);
  });

  it("finds every token format in the work tree, masked, with file, line and rule; exit 1", () => {
    const dir = repo();
    writeFileSync(
      join(dir, "config.py"),
      [
        `# settings`,
        `AWS_ACCESS_KEY_ID = "${AWS_KEY}"`,
        `GITHUB = '${GH_TOKEN}'`,
        `slack: ${SLACK}`,
        `stripe_key = ${STRIPE}`,
        `auth = "Bearer ${JWT}"`,
        `db_password = "${PASSWORD}"`,
        `blob = "${B64}"`,
        `key_material = ${HEX}`,
        `-----BEGIN RSA PRIVATE KEY-----`,
      ].join("\n") + "\n",
    );
    const r = run(dir, ["guard", "repo", "--json"]);
    assert.equal(r.status, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { findings: Array<{ file: string; line: number; rule: string; source: string; masked: string }> };
    const got = j.findings.map((f) => `${f.source} ${f.file}:${f.line} ${f.rule}`);
    assert.deepEqual(got, [
      "worktree config.py:2 aws-access-key-id",
      "worktree config.py:3 github-token",
      "worktree config.py:4 slack-token",
      "worktree config.py:5 stripe-secret-key",
      "worktree config.py:6 jwt",
      "worktree config.py:7 generic-secret",
      "worktree config.py:8 high-entropy-base64",
      "worktree config.py:9 high-entropy-hex",
      "worktree config.py:10 private-key",
    ]);
    assert.equal(j.findings[0].masked, "AKIA****************");
    assert.equal(j.findings[1].masked, "ghp_****************");
    assert.equal(j.findings[5].masked, "****************");
    const text = run(dir, ["guard", "repo"]);
    assert.equal(text.status, 1);
    assert.match(text.stdout, /^WHERE +FILE +LINE +RULE +MATCH\n/);
    assert.match(text.stdout, /worktree +config\.py +2 +aws-access-key-id +AKIA\*{16} \(20 chars\)/);
    assert.match(text.stderr, /9 possible secrets found/);
  });

  it("scans the staged changes and the history, with the commit that added the line", () => {
    const dir = repo();
    writeFileSync(join(dir, "a.txt"), "nothing here\n");
    gitIn(dir, "add", ".");
    gitIn(dir, "commit", "-qm", "first");
    writeFileSync(join(dir, "deploy.sh"), `#!/bin/sh\n\nexport KEY=${AWS_KEY}\n`);
    gitIn(dir, "add", ".");
    gitIn(dir, "commit", "-qm", "add key");
    const commit = gitIn(dir, "rev-parse", "HEAD").trim();
    // removed from the work tree later: only the history still holds it
    writeFileSync(join(dir, "deploy.sh"), "#!/bin/sh\n");
    gitIn(dir, "commit", "-qam", "remove key");
    // staged but not committed; the work tree copy was then cleaned: only the index holds it
    writeFileSync(join(dir, "b.txt"), `one\ntwo\ntoken: ${GH_TOKEN}\n`);
    gitIn(dir, "add", "b.txt");
    writeFileSync(join(dir, "b.txt"), "one\ntwo\n");

    const r = run(dir, ["guard", "repo", "--json"]);
    assert.equal(r.status, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { findings: Array<Record<string, unknown>>; summary: Record<string, number> };
    assert.deepEqual(
      j.findings.map((f) => [f.source, f.file, f.line, f.rule, f.commit]),
      [
        ["staged", "b.txt", 3, "github-token", undefined],
        ["history", "deploy.sh", 3, "aws-access-key-id", commit],
      ],
    );
    assert.equal(j.summary.commits, 3);
    const text = run(dir, ["guard", "repo"]);
    assert.match(text.stdout, new RegExp(`commit ${commit.slice(0, 10)} +deploy\\.sh +3 +aws-access-key-id`));

    const staged = run(dir, ["guard", "repo", "--staged", "--json"]);
    assert.equal(staged.status, 1);
    assert.deepEqual(JSON.parse(staged.stdout).findings.map((f: { file: string }) => f.file), ["b.txt"]);
    const noHistory = run(dir, ["guard", "repo", "--no-history", "--json"]);
    assert.deepEqual(JSON.parse(noHistory.stdout).findings.map((f: { source: string }) => f.source), ["staged"]);
  });

  it("honours the dsops:ignore marker, .dsopsignore paths and rule: lines", () => {
    const dir = repo();
    writeFileSync(join(dir, "a.env.example"), `KEY=${AWS_KEY} # dsops:ignore\n`);
    mkdirSync(join(dir, "fixtures"));
    writeFileSync(join(dir, "fixtures", "tokens.txt"), `${GH_TOKEN}\n`);
    writeFileSync(join(dir, "b.txt"), `db_password = "${PASSWORD}"\nhash = ${HEX}\n`);
    let r = run(dir, ["guard", "repo", "--json"]);
    assert.deepEqual(JSON.parse(r.stdout).findings.map((f: { file: string; rule: string }) => `${f.file} ${f.rule}`), ["b.txt generic-secret", "fixtures/tokens.txt github-token"]);
    writeFileSync(join(dir, ".dsopsignore"), "# test data\nfixtures/\nrule: generic-secret\n");
    r = run(dir, ["guard", "repo"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    writeFileSync(join(dir, ".dsopsignore"), "rule: no-such-rule\n");
    r = run(dir, ["guard", "repo"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /\.dsopsignore:1: unknown rule "no-such-rule"/);
  });

  it("reports secrets only secretlint's recommended preset knows, with secretlint's rule id, masked", () => {
    const dir = repo();
    writeFileSync(
      join(dir, "deploy.sh"),
      [`#!/bin/sh`, `export NPM_TOKEN=${NPM_TOKEN}`, `gitlab ${GITLAB_TOKEN}`, `mirror=https://deploy:${BASIC_AUTH_PASSWORD}@mirror.example.com/npm`].join("\n") + "\n",
    );
    const r = run(dir, ["guard", "repo", "--json"]);
    assert.equal(r.status, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { findings: Array<{ file: string; line: number; rule: string; masked: string; length: number }> };
    assert.deepEqual(
      j.findings.map((f) => `${f.file}:${f.line} ${f.rule}`),
      ["deploy.sh:2 @secretlint/secretlint-rule-npm", "deploy.sh:3 @secretlint/secretlint-rule-gitlab", "deploy.sh:4 @secretlint/secretlint-rule-basicauth"],
    );
    assert.equal(j.findings[0].masked, "npm_****************");
    assert.equal(j.findings[0].length, NPM_TOKEN.length);
    assert.equal(j.findings[1].masked, "glpat-****************");
    const text = run(dir, ["guard", "repo"]);
    assert.match(text.stdout, /worktree +deploy\.sh +2 +@secretlint\/secretlint-rule-npm +npm_\*{16} \(40 chars\)/);

    // the same through the staged changes and the history (the lines each diff adds)
    gitIn(dir, "add", ".");
    const staged = run(dir, ["guard", "repo", "--staged", "--json"]);
    assert.equal(staged.status, 1);
    assert.deepEqual(JSON.parse(staged.stdout).findings.map((f: { line: number; rule: string }) => `${f.line} ${f.rule}`), [
      "2 @secretlint/secretlint-rule-npm",
      "3 @secretlint/secretlint-rule-gitlab",
      "4 @secretlint/secretlint-rule-basicauth",
    ]);
    gitIn(dir, "commit", "-qm", "deploy");
    writeFileSync(join(dir, "deploy.sh"), "#!/bin/sh\n");
    gitIn(dir, "commit", "-qam", "clean");
    const history = run(dir, ["guard", "repo", "--json"]);
    assert.deepEqual(JSON.parse(history.stdout).findings.map((f: { source: string; line: number; rule: string }) => `${f.source} ${f.line} ${f.rule}`), [
      "history 2 @secretlint/secretlint-rule-npm",
      "history 3 @secretlint/secretlint-rule-gitlab",
      "history 4 @secretlint/secretlint-rule-basicauth",
    ]);

    // a rule: line turns one secretlint rule off (our keyword rule then sees NPM_TOKEN=…); the preset's id turns them all off
    writeFileSync(join(dir, ".dsopsignore"), "rule: @secretlint/secretlint-rule-npm\n");
    assert.deepEqual(JSON.parse(run(dir, ["guard", "repo", "--json"]).stdout).findings.map((f: { rule: string }) => f.rule), [
      "generic-secret",
      "@secretlint/secretlint-rule-gitlab",
      "@secretlint/secretlint-rule-basicauth",
    ]);
    writeFileSync(join(dir, ".dsopsignore"), "rule: @secretlint/secretlint-rule-preset-recommend\n");
    assert.deepEqual(JSON.parse(run(dir, ["guard", "repo", "--json"]).stdout).findings.map((f: { rule: string }) => f.rule), ["generic-secret"]);
    writeFileSync(join(dir, ".dsopsignore"), "rule: @secretlint/secretlint-rule-preset-recommend\nrule: generic-secret\n");
    const off = run(dir, ["guard", "repo", "--json"]);
    assert.equal(off.status, 0, off.stdout + off.stderr);
  });

  it(".dsopsignore has .gitignore's semantics: negation, folders, ** and anchoring", () => {
    const dir = repo();
    const files = ["a.env", "keep.env", "sub/b.env", "build/out.txt", "build/keep.txt", "docs/a/b/c.md", "docs/top.txt", "root.txt", "sub/root.txt", "logs/x/debug.log"];
    for (const f of files) {
      mkdirSync(join(dir, f, ".."), { recursive: true });
      writeFileSync(join(dir, f), `token: ${GH_TOKEN}\n`);
    }
    writeFileSync(
      join(dir, ".dsopsignore"),
      [
        "# env files, but one",
        "*.env",
        "!keep.env",
        "# a folder; a file under an ignored folder cannot be re-included (as in git)",
        "build/",
        "!build/keep.txt",
        "docs/**/*.md",
        "/root.txt",
        "**/x/*.log",
      ].join("\n") + "\n",
    );
    const r = run(dir, ["guard", "repo", "--json"]);
    assert.equal(r.status, 1, r.stderr);
    const scanned = (JSON.parse(r.stdout).findings as Array<{ file: string }>).map((f) => f.file).sort();
    assert.deepEqual(scanned, ["docs/top.txt", "keep.env", "sub/root.txt"]);
  });

  it("leaves lock files' hashes, placeholders and references alone", () => {
    const dir = repo();
    writeFileSync(
      join(dir, "package-lock.json"),
      JSON.stringify({ packages: { "node_modules/x": { integrity: "sha512-" + pick(ALNUM, 86) + "==", resolved: "https://registry.npmjs.org/x/-/x-1.0.0.tgz" } } }, null, 2),
    );
    writeFileSync(
      join(dir, "settings.yaml"),
      [
        "password: changeme",
        'secret: "${APP_SECRET}"',
        "token: <your-token>",
        "api_key: store://aws/myapp/prod#api_key",
        "client_secret: process.env.CLIENT_SECRET",
        "password_file: /run/secrets/db",
        "sha256: " + HEX,
        "name: AbstractSingletonProxyFactoryBean",
      ].join("\n") + "\n",
    );
    const r = run(dir, ["guard", "repo"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("--pattern REGEX reports what it matches (rule pattern-N, fully masked); --exit-code N is the code on findings", () => {
    const dir = repo();
    writeFileSync(join(dir, "settings.txt"), `id ${ACME}\n`);
    gitIn(dir, "add", ".");
    gitIn(dir, "commit", "-qm", "add settings");
    const plain = run(dir, ["guard", "repo"]);
    assert.equal(plain.status, 0, plain.stdout + plain.stderr);
    const r = run(dir, ["guard", "repo", "--pattern", "nomatch_[0-9]{40}", "--pattern", "acme_[0-9A-F]{20}"]);
    assert.equal(r.status, 1, r.stderr);
    const rows = r.stdout.trimEnd().split("\n").slice(1).map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows.map((x) => [x[0].replace(/ [0-9a-f]{10}$/, ""), x[1], x[2], x[3], x[4]]), [
      ["worktree", "settings.txt", "1", "pattern-2", "**************** (25 chars)"],
      ["commit", "settings.txt", "1", "pattern-2", "**************** (25 chars)"],
    ]);
    const code = run(dir, ["guard", "repo", "--pattern", "acme_[0-9A-F]{20}", "--exit-code", "3", "--json"]);
    assert.equal(code.status, 3, code.stderr);
    assert.equal((JSON.parse(code.stdout) as { findings: unknown[] }).findings.length, 2);
    // The staged scan (the pre-commit hook) uses them too.
    writeFileSync(join(dir, "more.txt"), `other ${ACME}\n`);
    gitIn(dir, "add", "more.txt");
    assert.equal(run(dir, ["guard", "repo", "--staged", "--pattern", "acme_[0-9A-F]{20}", "--exit-code", "9"]).status, 9);
    // Nothing found: exit 0 whatever --exit-code says.
    const clean = repo();
    writeFileSync(join(clean, "a.txt"), "nothing here\n");
    assert.equal(run(clean, ["guard", "repo", "--exit-code", "3"]).status, 0);
    // Bad values are usage errors.
    for (const bad of [["--exit-code", "256"], ["--exit-code", "x"], ["--exit-code", "-1"], ["--pattern", "acme_("], ["--pattern", "x*"]]) {
      const b = run(dir, ["guard", "repo", ...bad]);
      assert.equal(b.status, 2, bad.join(" ") + b.stderr);
    }
    assert.match(run(dir, ["guard", "repo", "--pattern", "acme_("]).stderr, /^error: --pattern "acme_\(": not a valid regular expression/);
    assert.match(run(dir, ["guard", "repo", "--pattern", "x*"]).stderr, /^error: --pattern "x\*": matches the empty string\nhint: /);
  });

  it("is a user error outside a git repository", () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-nogit-"));
    dirs.push(dir);
    const r = run(dir, ["guard", "repo"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is not inside a git repository/);
  });

  describe("guard gitignore", () => {
    it("reports rendered-file patterns that are not ignored, and --fix appends them", () => {
      const dir = repo();
      writeFileSync(join(dir, ".gitignore"), "node_modules/\n.env");
      let r = run(dir, ["guard", "gitignore"]);
      assert.equal(r.status, 1);
      assert.match(r.stdout, /^\.env +ignored$/m);
      assert.match(r.stdout, /^\*\.env +NOT IGNORED$/m);
      assert.match(r.stdout, /^secrets\.store\* +NOT IGNORED$/m);
      assert.match(r.stderr, /dsops guard gitignore --fix/);
      r = run(dir, ["guard", "gitignore", "--fix"]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const gi = readFileSync(join(dir, ".gitignore"), "utf8");
      assert.match(gi, /^node_modules\/\n\.env\n\n# dsops: rendered secrets/);
      assert.match(gi, /^\.env\.\*\n!\.env\.example$/m);
      assert.ok(!gi.includes("\n.env\n.env.*"), "an ignored pattern is not added twice");
      const j = JSON.parse(run(dir, ["guard", "gitignore", "--json"]).stdout);
      assert.equal(j.ok, true);
      // the rendered files really are ignored now
      writeFileSync(join(dir, "prod.env"), "X=1\n");
      writeFileSync(join(dir, "secrets.store.key"), "k");
      writeFileSync(join(dir, ".env.example"), "X=\n");
      assert.equal(gitIn(dir, "status", "--porcelain", "--untracked-files=all").trim().split("\n").sort().join(","), "?? .env.example,?? .gitignore");
    });

    it("flags committed rendered files, and the file store of dsops.yaml", () => {
      const dir = repo();
      writeFileSync(join(dir, ".env"), "X=1\n");
      writeFileSync(join(dir, ".env.example"), "X=\n");
      gitIn(dir, "add", ".");
      gitIn(dir, "commit", "-qm", "oops");
      writeFileSync(join(dir, "dsops.yaml"), "version: 1\nsecretStores:\n  team: { type: file, path: ./vault/team.db }\n");
      const r = run(dir, ["guard", "gitignore", "--fix", "--json"]);
      assert.equal(r.status, 1);
      const j = JSON.parse(r.stdout) as { patterns: Array<{ pattern: string; status: string; ignored: boolean; tracked: string[] }>; added: string[] };
      assert.deepEqual(j.patterns.find((p) => p.pattern === ".env"), { pattern: ".env", status: "tracked", ignored: true, tracked: [".env"] });
      assert.equal(j.patterns.find((p) => p.pattern === ".env.*")?.status, "ignored", ".env.example may be committed");
      assert.ok(j.added.includes("/vault/team.db") && j.added.includes("/vault/team.db.key"), JSON.stringify(j.added));
      const text = run(dir, ["guard", "gitignore"]);
      assert.match(text.stdout, /^\.env +ignored, but TRACKED: \.env$/m);
      assert.match(text.stderr, /git rm --cached/);
    });
  });
});
