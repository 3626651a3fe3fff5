import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { diffBlock, pulumiBinDir, PulumiProject } from "../support/pulumi";

/**
 * The dsops provider plugin (bin/pulumi-resource-dsops on PATH) from a Pulumi Go program: the
 * real Pulumi CLI (file backend), the real Go language host (pulumi-language-go from sdk/v3
 * v3.66.0, built by scripts/install-pulumi.sh), the Go SDK generated from schema.json
 * (sdk-gen/go) used by examples/go/main.go, compiled once with the real Go toolchain, a real
 * PostgreSQL 15 role and the embedded file store; time moves with DSOPS_CLOCK.
 */
const ROOT = join(__dirname, "..", "..", "..");
const EXAMPLE = join(ROOT, "examples", "go");
const GO_ENV = { GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod", CGO_ENABLED: "0" };

describe("Pulumi Go end to end: the generated Go SDK through the dsops provider plugin, on PostgreSQL", function () {
  this.timeout(600000);
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
  let build: string | undefined;
  const projects: PulumiProject[] = [];
  const values: string[] = [];
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const START = "2026-11-02T12:00:00Z";
  const at = (iso: string) => ({ DSOPS_CLOCK: iso });
  const pw = (tag: string) => {
    const v = `Pw-${tag}-${randomBytes(12).toString("base64url")}`;
    values.push(v);
    return v;
  };

  before(async () => {
    assert.ok(existsSync(join(pulumiBinDir(), "pulumi-language-go")), `scripts/install-pulumi.sh put no pulumi-language-go in ${pulumiBinDir()}`);
    assert.ok(existsSync(join(ROOT, "dist", "provider", "plugin", "main.js")), "build first: dist/provider/plugin/main.js is missing");
    // The example, compiled once (runtime.options.binary): every pulumi command then runs it without a rebuild.
    build = mkdtempSync(join(tmpdir(), "dsops-go-build-"));
    copyFileSync(join(EXAMPLE, "main.go"), join(build, "main.go"));
    copyFileSync(join(EXAMPLE, "go.sum"), join(build, "go.sum"));
    writeFileSync(join(build, "go.mod"), readFileSync(join(EXAMPLE, "go.mod"), "utf8").replace("=> ../../sdk-gen/go", `=> ${join(ROOT, "sdk-gen", "go")}`));
    const r = spawnSync("go", ["build", "-o", join(build, "dsops-go-example"), "."], { cwd: build, encoding: "utf8", timeout: 540000, env: { ...process.env, ...GO_ENV } });
    assert.equal(r.status, 0, `go build of examples/go exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE ROLE app_a LOGIN");
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    for (const p of projects) p.cleanup();
    if (build) rmSync(build, { recursive: true, force: true });
  });

  function goProject(name: string) {
    if (!pg || !build) throw new Error("before() did not finish");
    const PATH = `${join(ROOT, "bin")}:${dirname(process.execPath)}:${pulumiBinDir()}:${process.env.PATH}`;
    const project = new PulumiProject(`dsops-go-${name}`, "", { DSOPS_FILE_KEY: FILE_KEY, PATH, ...GO_ENV });
    projects.push(project);
    project.write("Pulumi.yaml", `name: dsops-go-${name}\nruntime:\n  name: go\n  options:\n    binary: ./dsops-go-example\n`);
    // The language host reads go.mod (and the generated SDK's pulumi-plugin.json) for the plugins the program needs.
    for (const f of ["go.mod", "go.sum", "main.go", "dsops-go-example"]) copyFileSync(join(build, f), join(project.dir, f));
    project.write("dsops.yaml", readFileSync(join(EXAMPLE, "dsops.yaml"), "utf8").replace("port: 5432", `port: ${pg.port}`));
    const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse(START)), env: { DSOPS_FILE_KEY: FILE_KEY } });
    const resourceState = (res: string) => {
      const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }> } };
      const r = state.deployment.resources.find((x) => x.urn.endsWith(`::${res}`));
      assert.ok(r, `no resource ${res} in state`);
      return r;
    };
    return { project, store, resourceState };
  }

  async function setRole(user: string, password: string): Promise<void> {
    await admin?.query(`ALTER ROLE ${escapeIdentifier(user)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
  }

  it("SecretReference, MaintenanceWindow, RotationPolicy, Environment and getSecret: up (secret outputs), clean preview, drift and input changes named in preview --diff, rotation when due, destroy; no plaintext in state", async () => {
    const { project, store, resourceState } = goProject("main");
    assert.ok(pg);
    assert.ok(statSync(join(project.dir, "dsops-go-example")).size > 0);
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const p0 = pw("p0");
    await setRole("app_a", p0);
    await s.put("app/db-login", new Secret(p0));
    const token1 = pw("token1");
    await s.put("app/token", new Secret(token1));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);

    const up = project.ok(["up", "--yes", "--skip-preview"], at(START));
    assert.match(up.stdout, /\+ 5 created/, up.stdout);
    assert.doesNotMatch(up.stdout + up.stderr, /using pulumi-language-go from \$PATH/, "the Go host is the CLI's bundled one (scripts/install-pulumi.sh)");
    const shown = project.outputs();
    for (const k of ["token", "fetched", "password", "variables"]) assert.equal(shown[k], "[secret]", `output ${k} is not a secret`);
    const outs = project.secretOutputs();
    assert.equal(outs.token, token1);
    assert.equal(outs.fetched, token1);
    assert.equal(outs.tokenVersion, "1");
    assert.equal(outs.password, p0);
    assert.deepEqual(outs.variables, { TOKEN: token1, MODE: "prod" });
    assert.equal(outs.status, "current");
    assert.equal(outs.nextDueAt, "2026-12-02T12:00:00.000Z");
    assert.equal(typeof outs.windowOpen, "boolean");
    assert.match(String(outs.nextOpenAt), /^\d{4}-\d\d-\d\dT/);
    const token = resourceState("token");
    assert.equal(token.type, "dsops:index:SecretReference");
    assert.ok(token.outputs.value && typeof token.outputs.value === "object" && "ciphertext" in (token.outputs.value as object), "value is not a secret in state");
    assert.equal(resourceState("window").type, "dsops:index:MaintenanceWindow");
    assert.equal(resourceState("login").type, "dsops:index:RotationPolicy");
    assert.equal(resourceState("app").type, "dsops:index:Environment");
    assert.ok(await pg.canLogin("app_a", p0), "create does not rotate");

    assert.deepEqual(project.previewSummary(at("2026-11-05T12:00:00Z")), { same: 5 }, "a preview right after up changes nothing");

    // The secret changes in the store: preview --diff names the property and says why.
    const token2 = pw("token2");
    await s.put("app/token", new Secret(token2));
    const drift = project.ok(["preview", "--diff"], at("2026-11-05T12:00:00Z"));
    assert.match(diffBlock(drift.stdout, "SecretReference", "token"), /~ versionId\s*: "1" => "2"/, drift.stdout);
    assert.match(drift.stderr, /SecretReference store:\/\/local\/app\/token: the secret has a new version in the store \(versionId "1" in state, "2" now\): it changed outside this program/, drift.stderr);
    project.ok(["up", "--yes", "--skip-preview"], at("2026-11-05T12:00:00Z"));
    assert.equal(project.secretOutputs().token, token2);
    assert.deepEqual(project.secretOutputs().variables, { TOKEN: token2, MODE: "prod" });

    // Input changes of the window, the policy and the environment (stack config read by the Go program): each named in preview --diff.
    project.ok(["config", "set", "windowDuration", "5h"]);
    project.ok(["config", "set", "rotateEvery", "14d"]);
    project.ok(["config", "set", "env", "staging"]);
    const inputs = project.ok(["preview", "--diff"], at("2026-11-05T12:00:00Z"));
    assert.match(diffBlock(inputs.stdout, "MaintenanceWindow", "window"), /~ duration\s*: "4h" => "5h"/, inputs.stdout);
    const policy = diffBlock(inputs.stdout, "RotationPolicy", "login");
    assert.match(policy, /~ dsops:index:RotationPolicy: \(update\)/, inputs.stdout);
    assert.match(policy, /~ every\s*: "30d" => "14d"/, inputs.stdout);
    assert.match(diffBlock(inputs.stdout, "Environment", "app"), /~ env\s*: "app" => "staging"/, inputs.stdout);
    assert.equal(diffBlock(inputs.stdout, "SecretReference", "token"), "", `token did not change:\n${inputs.stdout}`);
    const plain = project.ok(["preview"], at("2026-11-05T12:00:00Z"));
    assert.match(plain.stdout, /~\s+dsops:index:MaintenanceWindow window update \[diff: ~duration\]/, plain.stdout);
    assert.match(plain.stdout, /~\s+dsops:index:RotationPolicy login update \[diff: ~schedule/, plain.stdout);
    project.ok(["up", "--yes", "--skip-preview"], at("2026-11-05T12:00:00Z"));
    assert.equal(resourceState("window").outputs.duration, "5h");
    assert.deepEqual(project.secretOutputs().variables, { TOKEN: token2, MODE: "staging" });
    assert.equal(project.outputs().nextDueAt, "2026-11-16T12:00:00.000Z", "14 days after the last rotation (none yet: the creation)");

    // Due inside the window (Sunday 03:00 Berlin): preview names pendingRotation and why; up rotates the role.
    const when = at("2026-11-22T02:00:00Z");
    const due = project.ok(["preview", "--diff"], when);
    assert.match(diffBlock(due.stdout, "RotationPolicy", "login"), /[+~] pendingRotation\s*: (""\s*=>\s*)?"due since 2026-11-16T12:00:00\.000Z; window open until 2026-11-22T06:00:00\.000Z"/, due.stdout);
    assert.match(due.stderr, /RotationPolicy store:\/\/local\/app\/db-login: rotates: due since 2026-11-16T12:00:00\.000Z/, due.stderr);
    project.ok(["up", "--yes", "--skip-preview"], when);
    const p1 = (await s.get({ key: "app/db-login", version: "current" })).value.reveal();
    values.push(p1);
    assert.notEqual(p1, p0);
    assert.ok(await pg.canLogin("app_a", p1), "the new password logs in");
    assert.ok(!(await pg.canLogin("app_a", p0)), "the old password is refused");
    assert.equal(project.secretOutputs().password, p1);
    assert.equal(project.outputs().status, "rotated");
    assert.deepEqual(project.previewSummary(when), { same: 5 }, "rotated: the next preview is clean");

    const destroy = project.ok(["destroy", "--yes", "--skip-preview"], when);
    assert.match(destroy.stdout, /- 5 deleted/, destroy.stdout);
    assert.equal((await s.get({ key: "app/token" })).value.reveal(), token2, "deleting a SecretReference deletes nothing in the store");
    assert.ok(await pg.canLogin("app_a", p1), "and the role keeps its password");
    project.assertNoLeak([...values, pg.adminPassword]);
  });

  it("attack: an input typo from the Go program (stack config env: stagin) fails preview and up naming the resource, the property and the env; nothing is created", async () => {
    const { project, store } = goProject("typo");
    assert.ok(pg);
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await s.put("app/db-login", new Secret(pw("typo-login")));
    await s.put("app/token", new Secret(pw("typo-token")));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["config", "set", "env", "stagin"]);
    for (const args of [["preview"], ["up", "--yes", "--skip-preview"]]) {
      const r = project.run(args, at(START));
      const text = r.stdout + r.stderr;
      assert.notEqual(r.status, 0, `pulumi ${args[0]} exited 0:\n${text}`);
      assert.match(text, /dsops:index:Environment resource 'app': property env\b/, text);
      assert.match(text, /unknown env "stagin"/, text);
      assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a stack trace was printed:\n${text}`);
      assert.doesNotMatch(text, /panic:|goroutine \d+/, `the Go program panicked:\n${text}`);
    }
    assert.doesNotMatch(project.ok(["stack", "export"]).stdout, /dsops:index:Environment/, "the Environment was not created");
    project.assertNoLeak(values);
  });
});
