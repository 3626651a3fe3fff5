// Command flags dsops users type (issue 18), through the built binary.
import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

const VALUE = "cli-flags-secret-" + Math.random().toString(36).slice(2);

describe("dsops command flags (built binary)", function () {
  this.timeout(60000);
  let dir: string;
  const outputs: string[] = [];
  const run = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) => {
    const r = dsops(args, { cwd: opts.cwd ?? dir, input: opts.input, env: opts.env });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), "dsops-flags-")));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file }
  bad: { type: file, path: ./bad.store }
envs:
  dev:
    TOKEN: { from: "store://local/app/token" }
  broken:
    X: { from: "store://bad/nope" }
  plain:
    MODE: { literal: "dev mode" }
`,
    );
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "app/token"], { input: VALUE }).status, 0);
    writeFileSync(join(dir, "bad.store"), "{ damaged");
  });
  after(() => {
    for (const out of outputs) assert.ok(!out.includes(VALUE), "a secret appeared in output");
    rmSync(dir, { recursive: true, force: true });
  });

  describe("exec --working-dir", () => {
    it("runs the child in that folder, with the env's variables; dsops.yaml is still found from the current folder", () => {
      mkdirSync(join(dir, "app"), { recursive: true });
      const script = "require('fs').writeFileSync('seen.txt', process.cwd() + '|' + (process.env.TOKEN === " + JSON.stringify(VALUE) + "))";
      const r = run(["exec", "--env", "dev", "--working-dir", "app", "--", process.execPath, "-e", script]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, "app", "seen.txt"), "utf8"), `${join(dir, "app")}|true`);
    });

    it("a missing folder (or a file) is exit 1 before anything resolves", () => {
      const r = run(["exec", "--env", "broken", "--working-dir", "nowhere", "--", process.execPath, "-e", "process.exit(9)"]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, "error: --working-dir nowhere: no such folder\nhint: pass an existing folder\n");
      const f = run(["exec", "--env", "broken", "--working-dir", "dsops.yaml", "--", process.execPath, "-e", "0"]);
      assert.equal(f.status, 1);
      assert.match(f.stderr, /^error: --working-dir dsops\.yaml: not a folder\n/);
      // Control: with an existing folder the broken env is what fails.
      const ok = run(["exec", "--env", "broken", "--working-dir", ".", "--", process.execPath, "-e", "0"]);
      assert.equal(ok.status, 1);
      assert.match(ok.stderr, /damaged/);
    });
  });

  describe("doctor --env", () => {
    it("checks only the stores that env uses", () => {
      const dev = run(["doctor", "--env", "dev"]);
      assert.equal(dev.status, 0, dev.stderr);
      assert.match(dev.stdout, /^local\s+file\s+ok/m);
      assert.doesNotMatch(dev.stdout, /^bad/m);
      const broken = run(["doctor", "--env", "broken", "--json"]);
      assert.equal(broken.status, 1, broken.stderr);
      assert.deepEqual((JSON.parse(broken.stdout) as { stores: Array<{ store: string; status: string }> }).stores.map((x) => [x.store, x.status]), [["bad", "failed"]]);
      // Control: without --env every store is checked.
      const all = run(["doctor", "--json"]);
      assert.equal(all.status, 1);
      assert.deepEqual((JSON.parse(all.stdout) as { stores: Array<{ store: string }> }).stores.map((x) => x.store), ["local", "bad"]);
    });

    it("an env using no store has nothing to check; an unknown env is exit 1; with --store exit 2", () => {
      const plain = run(["doctor", "--env", "plain"]);
      assert.equal(plain.status, 0, plain.stderr);
      assert.equal(plain.stderr, 'env "plain" uses no store: nothing to check\n');
      const unknown = run(["doctor", "--env", "devv"]);
      assert.equal(unknown.status, 1);
      assert.equal(unknown.stderr, 'error: unknown env "devv"\nhint: did you mean "dev"?\n');
      const both = run(["doctor", "--env", "dev", "--store", "local"]);
      assert.equal(both.status, 2);
      assert.match(both.stderr, /cannot be used with option '-s, --store/);
    });
  });
});
