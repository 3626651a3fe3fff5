import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops, dsopsAsync } from "../support/cli";

const PW = "Pa55-w0rd with space";
const TOKEN = "tok_live_0123456789abcdef";

describe("dsops CLI (built binary, file store)", function () {
  this.timeout(60000);
  let dir: string;
  const run = (args: string[], input?: string, env?: NodeJS.ProcessEnv) => dsops(args, { cwd: dir, input, env });
  const everything: string[] = [];
  const record = <T extends { stdout: string; stderr: string }>(r: T): T => (everything.push(r.stdout, r.stderr), r);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-cli-"));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
  shell: { type: env, prefix: CLI_TEST_ }
providers:
  app_config: { type: literal, values: { version: "1.2.3" } }
envs:
  dev:
    DB_PASSWORD: { from: "store://local/app/db#password" }
    DB_USER: { from: { store: local, key: "app/db#user" } }
    API_TOKEN: { from: { store: local, key: api/token } }
    VERSION: { from: { provider: app_config, key: version } }
    FROM_SHELL: { from: "store://shell/VALUE", optional: true }
    MODE: { literal: "dev mode" }
  broken:
    A: { from: "store://local/missing/one" }
    B: { from: "store://local/app/db#nope" }
    C: { literal: ok }
`,
    );
    assert.equal(record(run(["secrets", "set", "--store", "local", "--key", "app/db"], JSON.stringify({ user: "app", password: PW }) + "\n")).status, 0);
    assert.equal(record(run(["secrets", "set", "--store", "local", "--key", "api/token"], TOKEN)).status, 0);
  });
  after(() => {
    for (const out of everything) {
      assert.ok(!out.includes(TOKEN), "the token appeared in CLI output");
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("secrets set reports the new version, never the value", () => {
    const r = record(run(["secrets", "set", "--store", "local", "--key", "api/token"], TOKEN + "\n"));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "store local: api/token → version 2\n");
    assert.ok(!readFileSync(join(dir, "secrets.store"), "utf8").includes(TOKEN));
  });

  it("secrets set waits for a writer that is late on the pipe (no EAGAIN on a non-blocking stdin)", async () => {
    const child = dsopsAsync(["secrets", "set", "--store", "local", "--key", "late/writer"], { cwd: dir, stdin: "pipe" });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    // The child is started and reading before anything is written: the producer is slow.
    await new Promise((r) => child.once("spawn", r));
    await new Promise((r) => setTimeout(r, 300));
    child.stdin!.end(TOKEN + "\n");
    const status = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(status, 0, stderr);
    assert.match(stderr, /^store local: late\/writer → version 1\n$/);
  });

  it("plan lists sources without values or store calls", () => {
    const r = record(run(["plan", "--env", "dev"]));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^VARIABLE +SOURCE +STORE +KEY +TRANSFORMS\n/);
    assert.match(r.stdout, /DB_PASSWORD +store +local \(file\) +app\/db#password +-/);
    assert.match(r.stdout, /FROM_SHELL \(optional\) +store +shell \(env\) +VALUE/);
    const j = JSON.parse(record(run(["plan", "--env", "dev", "--json"])).stdout);
    assert.equal(j.variables.length, 6);
    assert.ok(!r.stdout.includes(PW));
  });

  it("get prints one value, and --json its metadata", () => {
    const r = run(["get", "--env", "dev", "--var", "DB_PASSWORD"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, PW + "\n");
    const j = JSON.parse(run(["get", "--env", "dev", "--var", "DB_USER", "--json"]).stdout);
    assert.deepEqual(j, { name: "DB_USER", source: "store", store: "local", key: "app/db", versionId: "1", updatedAt: j.updatedAt, value: "app" });
  });

  it("render writes dotenv with mode 0600, format from extension or --format", () => {
    const out = join(dir, ".env");
    writeFileSync(out, "old", { mode: 0o644 });
    const r = record(run(["render", "--env", "dev", "--out", ".env"]));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(readFileSync(out, "utf8"), `API_TOKEN=${TOKEN}\nDB_PASSWORD="${PW}"\nDB_USER=app\nMODE="dev mode"\nVERSION=1.2.3\n`);
    assert.match(r.stderr, /wrote 5 variables to \.env \(dotenv, mode 0600\)/);
    const j = JSON.parse((record(run(["render", "--env", "dev", "--out", "out.json"])), readFileSync(join(dir, "out.json"), "utf8")));
    assert.equal(j.generated_by, "dsops");
    assert.equal(j.variables.VERSION, "1.2.3");
    assert.equal(record(run(["render", "--env", "dev", "--out", "x.conf", "--format", "yaml"])).status, 0);
    assert.match(readFileSync(join(dir, "x.conf"), "utf8"), /^generated_at: /);
    const bad = record(run(["render", "--env", "dev", "--out", "x.conf"]));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /cannot tell the format of x\.conf from its name\nhint: pass --format dotenv\|json\|yaml\|template/);
  });

  it("exec gives the child the variables and passes its exit code through", () => {
    const r = record(
      run(["exec", "--env", "dev", "--", process.execPath, "-e", "process.stdout.write(process.env.DB_USER + '|' + process.env.MODE); process.exit(7)"]),
    );
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, "app|dev mode");
    const shell = run(["exec", "--env", "dev", "--", process.execPath, "-e", "process.stdout.write(process.env.FROM_SHELL)"], undefined, { CLI_TEST_VALUE: "from-env" });
    assert.equal(shell.stdout, "from-env");
  });

  it("exec --print shows masked values only", () => {
    const r = record(run(["exec", "--env", "dev", "--print", "--", process.execPath, "-e", "0"]));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /API_TOKEN=\*{8}\n/);
    assert.ok(!r.stderr.includes(PW));
  });

  it("exec refuses to override the environment unless allowed", () => {
    const r = record(run(["exec", "--env", "dev", "--", process.execPath, "-e", "0"], undefined, { MODE: "outer" }));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already set in the environment: MODE\nhint: pass --allow-override/);
    const ok = run(["exec", "--env", "dev", "--allow-override", "--", process.execPath, "-e", "process.stdout.write(process.env.MODE)"], undefined, { MODE: "outer" });
    assert.equal(ok.stdout, "dev mode");
  });

  it("exec forwards signals to the child", async () => {
    const marker = join(dir, "got-signal");
    const child = dsopsAsync(
      ["exec", "--env", "dev", "--", process.execPath, "-e", `process.on('SIGTERM', () => { require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); process.exit(42); }); console.log('ready'); setInterval(() => {}, 1000);`],
      { cwd: dir },
    );
    await new Promise<void>((resolve) => child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    assert.equal(code, 42);
    assert.ok(existsSync(marker));
  });

  it("reports every failing variable with store, key and cause, exit 1, no stack trace", () => {
    const r = record(run(["render", "--env", "broken", "--out", "b.env"]));
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'error: env "broken": 2 variables failed to resolve:\n' +
        '  - A (store local, key missing/one): store "local": secret "missing/one" not found\n' +
        '  - B (store local, key app/db): path "nope": no key "nope"\n',
    );
    assert.ok(!existsSync(join(dir, "b.env")), "nothing half-written on failure");
  });

  it("reports configuration errors with path, line and column", () => {
    writeFileSync(join(dir, "bad.yaml"), "secretStores:\n  aws: { type: aws.secretsmanager }\nenvs:\n  p:\n    X: { from: \"store://awz/k\" }\n");
    const r = record(run(["--config", "bad.yaml", "plan", "--env", "p"]));
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'error: invalid configuration:\n  - envs.p.X.from: unknown store "awz" (did you mean "aws"?) at bad.yaml:5:16\n');
  });

  it("exits 2 on usage errors and 1 on a missing config", () => {
    assert.equal(record(run(["plan"])).status, 2);
    assert.equal(record(run(["frobnicate"])).status, 2);
    const r = record(run(["--config", "nope.yaml", "plan", "--env", "x"]));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read configuration nope\.yaml: no such file\nhint: run `dsops init`/);
  });

  it("refuses to write to a read-only store", () => {
    const r = record(run(["secrets", "set", "--store", "app_config", "--key", "k"], "v"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /store "app_config" \(literal\) is read-only/);
  });
});
