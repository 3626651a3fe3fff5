// Global flags --debug, --no-color (and NO_COLOR), --non-interactive, through the built binary.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CMD, dsops } from "../support/cli";

const VALUE = "global-flags-secret-" + Math.random().toString(36).slice(2);
const ESC = String.fromCharCode(27);
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const haveScript = () => spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0;

describe("dsops global flags (built binary)", function () {
  this.timeout(60000);
  let dir: string;
  const outputs: string[] = [];
  const run = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = dsops(args, { cwd: dir, ...opts });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-global-"));
    const vars = Array.from({ length: 40 }, (_, i) => `    V${i}: { from: "store://local/all#k${i}" }`).join("\n");
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file }
  vault: { type: vault, address: "https://vault.example.test:8200" }
  bad: { type: file, path: ./bad.store }
envs:
  big:
${vars}
  broken:
    X: { from: "store://bad/nope" }
`,
    );
    const json = JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, `${VALUE}-${i}`])));
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "all"], { input: json }).status, 0);
    // A store file that is not valid: its content (a would-be value) must never be printed.
    writeFileSync(join(dir, "bad.store"), `{"not json ${VALUE}`);
  });
  after(() => {
    for (const out of outputs) assert.ok(!out.includes(VALUE), "a secret appeared in output");
    rmSync(dir, { recursive: true, force: true });
  });

  it("--debug adds where an error came from and its cause chain, exit code unchanged", () => {
    const plain = run(["plan", "--env", "dev", "-c", "missing.yaml"]);
    assert.equal(plain.status, 1);
    assert.doesNotMatch(plain.stderr, /debug:/);
    const r = run(["--debug", "plan", "--env", "dev", "-c", "missing.yaml"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot read configuration missing\.yaml: no such file\n/);
    assert.match(r.stderr, /debug: DsopsError raised\n\s+at /);
    assert.match(r.stderr, /debug: caused by Error \[ENOENT open\]: ENOENT: no such file or directory, open '…'/);
    // DSOPS_DEBUG=1 does the same; the flag may come after the command.
    const env = run(["plan", "--env", "dev", "-c", "missing.yaml"], { env: { DSOPS_DEBUG: "1" } });
    assert.match(env.stderr, /debug: caused by Error \[ENOENT open\]/);
    const after = run(["plan", "--env", "dev", "-c", "missing.yaml", "--debug"]);
    assert.equal(after.status, 1);
    assert.match(after.stderr, /debug: caused by/);
  });

  it("--debug never prints a value (a broken store file's content stays out)", () => {
    const r = run(["--debug", "get", "--env", "broken", "--var", "X"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /debug: /);
    assert.ok(!r.stderr.includes(VALUE));
  });

  it("--debug on a usage error keeps exit 2", () => {
    const r = run(["--debug", "plan", "--bogus"]);
    assert.equal(r.status, 2);
  });

  it("--no-color and NO_COLOR: no terminal control codes even on a terminal", function () {
    if (!haveScript()) this.skip();
    const onTerminal = (args: string[], env: Record<string, string> = {}) => {
      const cmd = [...DSOPS_CMD, ...args].map(sh).join(" ");
      const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { cwd: dir, encoding: "utf8", input: "", env: { ...process.env, NO_COLOR: "", ...env } });
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    const exec = ["exec", "--env", "big", "--", process.execPath, "-e", "0"];
    // Control: on a terminal the progress line uses ANSI codes.
    const colour = onTerminal(exec);
    assert.equal(colour.status, 0, colour.stdout);
    assert.ok(colour.stdout.includes(ESC + "["));
    for (const r of [onTerminal(["--no-color", ...exec]), onTerminal(exec, { NO_COLOR: "1" }), onTerminal(["--no-color", "plan", "--env", "big"])]) {
      assert.equal(r.status, 0, r.stdout);
      assert.ok(!r.stdout.includes(ESC));
    }
    const doctor = onTerminal(["--no-color", "doctor", "--store", "local", "--store", "bad"]);
    assert.equal(doctor.status, 1, doctor.stdout);
    assert.ok(!doctor.stdout.includes(ESC));
    const err = onTerminal(["--no-color", "--debug", "get", "--env", "nope", "--var", "X"]);
    assert.equal(err.status, 1);
    assert.ok(!err.stdout.includes(ESC));
  });

  it("--non-interactive: login fails with a clear message instead of starting the store's CLI", () => {
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    const log = join(dir, "calls.log");
    writeFileSync(join(bin, "vault"), `#!/bin/sh\necho "vault $*" >> '${log}'\nexit 0\n`);
    chmodSync(join(bin, "vault"), 0o755);
    const r = run(["--non-interactive", "login", "vault"], { env: { PATH: bin } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /error: store "vault": logging in needs an interactive program \(vault login or bao login\), and --non-interactive forbids starting one\n/);
    assert.match(r.stderr, /hint: /);
    assert.throws(() => readFileSync(log), /ENOENT/);
    const env = run(["login", "vault"], { env: { PATH: bin, DSOPS_NON_INTERACTIVE: "1" } });
    assert.equal(env.status, 1);
    assert.throws(() => readFileSync(log), /ENOENT/);
    // A store that needs no login is still fine.
    const none = run(["--non-interactive", "login", "local"], { env: { PATH: bin } });
    assert.equal(none.status, 0, none.stderr);
    // Control: without the flag the CLI runs.
    assert.equal(run(["login", "vault"], { env: { PATH: bin } }).status, 0);
    assert.equal(readFileSync(log, "utf8"), "vault login\n");
  });
});
