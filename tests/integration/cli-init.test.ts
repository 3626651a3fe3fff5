import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigFile } from "../../provider/compose/config";
import { dsops } from "../support/cli";

describe("dsops init (built binary)", function () {
  this.timeout(60000);
  let dir: string;
  const run = (args: string[], input?: string) => dsops(args, { cwd: dir, input });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "dsops-init-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a commented dsops.yaml for the file store that the config loader accepts, and that works", () => {
    const r = run(["init"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^wrote dsops\.yaml\nnext: /);
    const text = readFileSync(join(dir, "dsops.yaml"), "utf8");
    assert.match(text, /^# dsops\.yaml: /);
    assert.ok(text.split("\n").filter((l) => l.trim().startsWith("#")).length >= 10, "commented");
    const config = loadConfigFile(join(dir, "dsops.yaml"));
    assert.deepEqual(Object.keys(config.stores), ["local"]);
    assert.equal(config.stores.local.type, "file");
    assert.deepEqual(Object.keys(config.envs), ["dev"]);
    // the next steps it prints work
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "myapp/db"], "init-test-value").status, 0);
    const got = run(["get", "--env", "dev", "--var", "DATABASE_PASSWORD"]);
    assert.equal(got.status, 0, got.stderr);
    assert.equal(got.stdout, "init-test-value\n");
  });

  for (const [example, type] of [["aws", "aws.secretsmanager"], ["vault", "vault"], ["gcp", "gcp.secretmanager"]] as const) {
    it(`--example ${example} adds a ${type} store and an env using it; it loads and plans`, () => {
      const r = run(["init", "--example", example]);
      assert.equal(r.status, 0, r.stderr);
      const config = loadConfigFile(join(dir, "dsops.yaml"));
      assert.deepEqual(Object.keys(config.stores), ["local", example]);
      assert.equal(config.stores[example].type, type);
      assert.equal(config.envs.production.DATABASE_PASSWORD.ref?.store, example);
      const plan = run(["plan", "--env", "production", "--json"]);
      assert.equal(plan.status, 0, plan.stderr);
      assert.equal(JSON.parse(plan.stdout).variables[0].storeType, type);
    });
  }

  it("refuses to overwrite an existing file (exit 1, file unchanged)", () => {
    writeFileSync(join(dir, "dsops.yaml"), "mine\n");
    const r = run(["init"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: dsops\.yaml already exists; not overwriting it\n/);
    assert.equal(readFileSync(join(dir, "dsops.yaml"), "utf8"), "mine\n");
  });

  it("writes where --config says, and rejects an unknown example as a usage error", () => {
    assert.equal(run(["--config", "conf/dsops.yaml", "init"]).status, 0);
    loadConfigFile(join(dir, "conf", "dsops.yaml"));
    const bad = run(["init", "--example", "azure"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Allowed choices are aws, vault, gcp, node, go, python/);
  });

  for (const [app, run_, secrets] of [
    ["node", "npm start", ["DATABASE_URL", "SESSION_SECRET"]],
    ["go", "go run .", ["DATABASE_URL", "JWT_SIGNING_KEY"]],
    ["python", "python app.py", ["DATABASE_URL", "SECRET_KEY"]],
  ] as const) {
    it(`--example ${app} writes a dev env for a ${app} app that plans, and runs the app's variables through exec`, () => {
      const r = run(["init", "--example", app]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /next: printf %s "\$VALUE" \| dsops secrets set --store local --key myapp\/database_url\n/);
      const text = readFileSync(join(dir, "dsops.yaml"), "utf8");
      assert.ok(text.includes(`dsops exec --env dev -- ${run_}`), "shows how to run the app");
      const config = loadConfigFile(join(dir, "dsops.yaml"));
      assert.deepEqual(Object.keys(config.stores), ["local"]);
      assert.deepEqual(Object.keys(config.envs), ["dev"]);
      const plan = run(["plan", "--env", "dev", "--json"]);
      assert.equal(plan.status, 0, plan.stderr);
      // Every store key the file names is set the way its comments say; then exec hands them over.
      const keys = [...text.matchAll(/--key (\S+)/g)].map((m) => m[1]);
      assert.equal(keys.length, secrets.length);
      for (const k of keys) assert.equal(run(["secrets", "set", "--store", "local", "--key", k], `v-${k}`).status, 0);
      const script = `process.stdout.write(${JSON.stringify(secrets)}.map((n) => process.env[n]).join("|"))`;
      const exec = run(["exec", "--env", "dev", "--", process.execPath, "-e", script]);
      assert.equal(exec.status, 0, exec.stderr);
      assert.equal(exec.stdout, keys.map((k) => `v-${k}`).join("|"));
    });
  }
});
