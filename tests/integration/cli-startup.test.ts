import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CLI_BIN, dsops } from "../support/cli";
import { freePort } from "../support/server";

/** The packages a run loaded, from the line DSOPS_DEBUG_MODULES=1 prints at exit. */
function packagesLoaded(stderr: string): string[] {
  const m = /^dsops debug: \d+ modules loaded; packages: (.*)$/m.exec(stderr);
  assert.ok(m, `no debug line in: ${stderr}`);
  return m[1] === "none" ? [] : m[1].split(", ");
}

describe("dsops start-up: store SDKs load only when a store of that type is used", function () {
  this.timeout(60000);
  let dir: string;
  let closedPort: number;
  const run = (args: string[], env: NodeJS.ProcessEnv = { DSOPS_DEBUG_MODULES: "1" }) => dsops(args, { cwd: dir, env });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-startup-"));
    closedPort = await freePort();
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file }
  aws: { type: aws.secretsmanager, region: us-east-1, endpoint: "http://127.0.0.1:${closedPort}", access_key_id: test, secret_access_key: test, retries: 0 }
  gcp: { type: gcp.secretmanager, project_id: p, endpoint: "127.0.0.1:${closedPort}", insecure: true, retries: 0 }
  vault: { type: vault, address: "http://127.0.0.1:${closedPort}", token: t, retries: 0 }
envs:
  dev:
    A: { from: "store://local/a" }
    B: { from: "store://aws/myapp/b" }
    C: { from: "store://gcp/c" }
    D: { from: "store://vault/secret/d" }
  local:
    A: { from: "store://local/a" }
`,
    );
    assert.equal(dsops(["secrets", "set", "--store", "local", "--key", "a"], { cwd: dir, input: "v" }).status, 0);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // The single executable (DSOPS_CLI_BIN) has its modules compiled in and cannot list them
  // (DSOPS_DEBUG_MODULES says so): the module-list checks are the Node CLI's.
  beforeEach(function () {
    if (DSOPS_CLI_BIN && this.currentTest?.title !== "prints nothing extra without DSOPS_DEBUG_MODULES") this.skip();
  });

  it("plan on a config with aws, gcp and vault stores loads none of their SDKs", () => {
    const r = run(["plan", "--env", "dev"]);
    assert.equal(r.status, 0, r.stderr);
    const pkgs = packagesLoaded(r.stderr);
    assert.deepEqual(pkgs.filter((p) => /^@aws-sdk|^@smithy|^@google-cloud|^google-gax|^@grpc|^node-vault/.test(p)), []);
    // zod checks the file; a plain file is read by the fast path, without the yaml library (issue 20).
    assert.ok(pkgs.includes("zod") && !pkgs.includes("yaml"), pkgs.join(","));
  });

  it("plan checks services: and rotation: blocks without loading any target's client library", () => {
    writeFileSync(
      join(dir, "rotations.yaml"),
      `secretStores:
  local: { type: file }
services:
  pg: { type: postgresql, admin: "store://local/pg" }
  my: { type: mysql, admin: "store://local/my" }
  cache: { type: redis, admin: "store://local/redis" }
  iam: { type: aws.iam, region: us-east-1 }
envs:
  dev:
    A: { from: "store://local/a", rotation: { service: pg, user: a, schedule: "0 3 L * *" } }
    B: { from: "store://local/b", rotation: { service: my, user: b } }
    C: { from: "store://local/c", rotation: { service: cache, strategy: two-secret, user: c } }
    D: { from: "store://local/d", rotation: { service: iam, strategy: two-secret, user: d } }
`,
    );
    const r = run(["--config", "rotations.yaml", "plan", "--env", "dev"]);
    assert.equal(r.status, 0, r.stderr);
    const pkgs = packagesLoaded(r.stderr);
    assert.deepEqual(pkgs.filter((p) => /^pg$|^pg-|^mysql2$|^redis$|^@redis\/|^@aws-sdk|^@smithy/.test(p)), [], pkgs.join(","));
    // A typo in a rotated service's type fails here, not at the first rotation.
    writeFileSync(join(dir, "typo.yaml"), readFileSync(join(dir, "rotations.yaml"), "utf8").replace("type: postgresql", "type: postgressql"));
    const t = run(["--config", "typo.yaml", "plan", "--env", "dev"], {});
    assert.equal(t.stderr, 'error: invalid configuration:\n  - services.pg.type: unknown rotation target type "postgressql" (did you mean "postgresql"?) at typo.yaml:4:15\n');
    assert.equal(t.status, 1);
  });

  it("get from the file store loads no SDK either", () => {
    const r = run(["get", "--env", "local", "--var", "A"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(packagesLoaded(r.stderr).filter((p) => p !== "commander" && p !== "zod" && p !== "yaml"), []);
  });

  it("an aws store in use does load @aws-sdk (the check can fail)", () => {
    const r = run(["get", "--env", "dev", "--var", "B"]);
    assert.equal(r.status, 1);
    assert.ok(packagesLoaded(r.stderr).some((p) => p.startsWith("@aws-sdk/")), r.stderr);
  });

  it("the pre-commit scan and other commands that read no configuration load neither zod nor yaml (providers: only to read the plugins of dsops.yaml)", () => {
    for (const args of [["guard", "repo", "--staged"], ["completion", "bash"], ["shred", "missing-file"], ["leak", "list"], ["providers"]]) {
      const r = run(args);
      const pkgs = packagesLoaded(r.stderr);
      // providers reads dsops.yaml when there is one, for the plugins it names (README "Plugins").
      assert.deepEqual(pkgs.filter((p) => p !== "commander"), args[0] === "providers" ? ["yaml", "zod"] : [], `${args.join(" ")}: ${pkgs.join(",")}`);
    }
  });

  it("get and render load neither secretlint nor ignore; a scan in a repository does", () => {
    for (const args of [["get", "--env", "local", "--var", "A"], ["render", "--env", "local", "--out", "rendered.env"]]) {
      const r = run(args);
      assert.equal(r.status, 0, r.stderr);
      const pkgs = packagesLoaded(r.stderr);
      assert.deepEqual(pkgs.filter((p) => /^@secretlint\/|^ignore$/.test(p)), [], `${args.join(" ")}: ${pkgs.join(",")}`);
    }
    const repo = mkdtempSync(join(tmpdir(), "dsops-startup-git-"));
    try {
      assert.equal(spawnSync("git", ["init", "-q"], { cwd: repo }).status, 0);
      const r = dsops(["guard", "repo", "--staged"], { cwd: repo, env: { DSOPS_DEBUG_MODULES: "1" } });
      assert.equal(r.status, 0, r.stderr);
      const pkgs = packagesLoaded(r.stderr);
      assert.ok(pkgs.includes("@secretlint/core") && pkgs.includes("@secretlint/secretlint-rule-preset-recommend") && pkgs.includes("ignore"), pkgs.join(","));
      assert.ok(!pkgs.includes("yaml"), pkgs.join(","));
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it("prints nothing extra without DSOPS_DEBUG_MODULES", () => {
    const r = run(["plan", "--env", "local"], {});
    assert.equal(r.status, 0);
    assert.equal(r.stderr, "");
  });
});
