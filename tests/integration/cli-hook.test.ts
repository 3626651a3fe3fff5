import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_BIN, DSOPS_CLI_BIN, dsops } from "../support/cli";

/** Git isolated from the machine's configuration, with a fixed identity. */
const GIT_ENV: NodeJS.ProcessEnv = {
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
};

function git(dir: string, ...args: string[]) {
  return spawnSync("git", args, { cwd: dir, env: { ...process.env, ...GIT_ENV }, encoding: "utf8" });
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/** A fresh fake AWS access key id (made at run time, so this file holds none). */
const AWS_KEY = "AKIA" + Array.from(randomBytes(16), (b) => UPPER[b % UPPER.length]).join("");

describe("dsops install-hook (a real pre-commit hook in a real repository)", function () {
  this.timeout(60000);
  const dirs: string[] = [];
  const outputs: string[] = [];
  const run = (dir: string, args: string[]) => {
    const r = dsops(args, { cwd: dir, env: GIT_ENV });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const repo = () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-hook-"));
    dirs.push(dir);
    assert.equal(git(dir, "init", "-q", "-b", "main").status, 0);
    return dir;
  };

  after(() => {
    for (const out of outputs) assert.ok(!out.includes(AWS_KEY), "the key appeared in output");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("installs an executable hook that calls this dsops by absolute path", () => {
    const dir = repo();
    const r = run(dir, ["install-hook"]);
    assert.equal(r.status, 0, r.stderr);
    const hook = join(dir, ".git", "hooks", "pre-commit");
    assert.match(r.stderr, /installed .*\.git\/hooks\/pre-commit/);
    assert.equal(statSync(hook).mode & 0o777, 0o755);
    const text = readFileSync(hook, "utf8");
    assert.match(text, /^#!\/bin\/sh\n# dsops pre-commit hook/);
    // The single executable (DSOPS_CLI_BIN) is node and dsops in one: the hook calls it alone.
    const call = DSOPS_CLI_BIN ? `'${DSOPS_CLI_BIN}'` : `'${process.execPath}' '${realpathSync(DSOPS_BIN)}'`;
    assert.ok(text.includes(`exec ${call} guard repo --staged\n`), text);
    // installing again replaces dsops's own hook
    const again = run(dir, ["install-hook"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /updated /);
  });

  it("lets a clean commit through (the first one too) and blocks a commit that adds an AWS key", () => {
    const dir = repo();
    assert.equal(run(dir, ["install-hook"]).status, 0);

    writeFileSync(join(dir, "README.md"), "# app\n\nSet AWS_ACCESS_KEY_ID in your environment.\n");
    git(dir, "add", ".");
    const first = git(dir, "commit", "-m", "first commit");
    assert.equal(first.status, 0, first.stdout + first.stderr);

    writeFileSync(join(dir, "app.py"), "import os\nKEY = os.environ['AWS_ACCESS_KEY_ID']\n");
    git(dir, "add", ".");
    const clean = git(dir, "commit", "-m", "clean");
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);

    writeFileSync(join(dir, "app.py"), `import os\nKEY = os.environ['AWS_ACCESS_KEY_ID']\nFALLBACK = "${AWS_KEY}"\n`);
    git(dir, "add", ".");
    const blocked = git(dir, "commit", "-m", "add key");
    outputs.push(blocked.stdout, blocked.stderr);
    assert.equal(blocked.status, 1, blocked.stdout + blocked.stderr);
    // git sends a hook's standard output to standard error
    assert.match(blocked.stderr, /staged +app\.py +3 +aws-access-key-id +AKIA\*{16}/);
    assert.match(blocked.stderr, /1 possible secret found \(scanned 1 staged line\)/);
    assert.equal(git(dir, "rev-list", "--count", "HEAD").stdout.trim(), "2", "the commit was not made");

    // A secret in the work tree but not in what is staged blocks nothing.
    writeFileSync(join(dir, "notes.txt"), `${AWS_KEY}\n`);
    git(dir, "reset", "-q", "app.py");
    writeFileSync(join(dir, "other.txt"), "fine\n");
    git(dir, "add", "other.txt");
    const unrelated = git(dir, "commit", "-m", "unrelated");
    assert.equal(unrelated.status, 0, unrelated.stdout + unrelated.stderr);
  });

  it("an inline dsops:ignore marker lets an intended line through", () => {
    const dir = repo();
    assert.equal(run(dir, ["install-hook"]).status, 0);
    writeFileSync(join(dir, "test_fixture.py"), `EXAMPLE = "${AWS_KEY}"  # dsops:ignore\n`);
    git(dir, "add", ".");
    const r = git(dir, "commit", "-m", "fixture");
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("refuses to replace a hook it did not write, unless --force (keeping a backup)", () => {
    const dir = repo();
    const hook = join(dir, ".git", "hooks", "pre-commit");
    writeFileSync(hook, "#!/bin/sh\necho mine\n", { mode: 0o755 });
    const r = run(dir, ["install-hook"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exists and was not written by dsops; not replacing it\nhint: pass --force/);
    assert.equal(readFileSync(hook, "utf8"), "#!/bin/sh\necho mine\n");
    const forced = run(dir, ["install-hook", "--force"]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal(readFileSync(`${hook}.dsops-backup`, "utf8"), "#!/bin/sh\necho mine\n");
    assert.match(readFileSync(hook, "utf8"), /dsops pre-commit hook/);
  });

  it("honours core.hooksPath", () => {
    const dir = repo();
    assert.equal(git(dir, "config", "core.hooksPath", ".githooks").status, 0);
    const r = run(dir, ["install-hook"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, ".githooks", "pre-commit")));
    assert.ok(!existsSync(join(dir, ".git", "hooks", "pre-commit")));
  });

  it("is a user error outside a git repository", () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-nogit-"));
    dirs.push(dir);
    const r = run(dir, ["install-hook"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not inside a git repository/);
  });

  it("--uninstall removes only dsops's hook; a commit adding a key then goes through", () => {
    const dir = repo();
    const hook = join(dir, ".git", "hooks", "pre-commit");
    assert.equal(run(dir, ["install-hook"]).status, 0);
    writeFileSync(join(dir, "creds.txt"), `aws_access_key_id = ${AWS_KEY}\n`);
    git(dir, "add", ".");
    assert.notEqual(git(dir, "commit", "-m", "blocked").status, 0, "the hook blocks first");
    const r = run(dir, ["install-hook", "--uninstall"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^removed .*\.git\/hooks\/pre-commit\n$/);
    assert.ok(!existsSync(hook));
    assert.equal(git(dir, "commit", "-m", "now allowed").status, 0);
    // Nothing left: says so, exit 0.
    const again = run(dir, ["install-hook", "--uninstall"]);
    assert.equal(again.status, 0);
    assert.match(again.stderr, /^no pre-commit hook at .*; nothing to remove\n$/);
  });

  it("--uninstall puts back the hook --force had kept aside, and never removes a hook dsops did not write", () => {
    const dir = repo();
    const hook = join(dir, ".git", "hooks", "pre-commit");
    const mine = `#!/bin/sh\necho ran > '${join(dir, "mine-ran")}'\n`;
    writeFileSync(hook, mine, { mode: 0o755 });
    const refused = run(dir, ["install-hook", "--uninstall"]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /was not written by dsops; not removing it\nhint: /);
    assert.equal(readFileSync(hook, "utf8"), mine);
    assert.equal(run(dir, ["install-hook", "--force"]).status, 0);
    const r = run(dir, ["install-hook", "--uninstall"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /; put back the previous hook from .*pre-commit\.dsops-backup\n$/);
    assert.equal(readFileSync(hook, "utf8"), mine);
    assert.equal(statSync(hook).mode & 0o777, 0o755);
    assert.ok(!existsSync(`${hook}.dsops-backup`));
    // The restored hook runs again.
    writeFileSync(join(dir, "a.txt"), "a\n");
    git(dir, "add", ".");
    assert.equal(git(dir, "commit", "-m", "a").status, 0);
    assert.ok(existsSync(join(dir, "mine-ran")));
    assert.equal(run(dir, ["install-hook", "--uninstall", "--force"]).status, 2);
  });
});
