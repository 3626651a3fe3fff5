import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { diffBlock, pulumiBinDir, PulumiProject } from "../support/pulumi";

/**
 * The dsops provider plugin (bin/pulumi-resource-dsops on PATH) from a Pulumi Python program:
 * the real Pulumi CLI (file backend), the real Python language host (pulumi-language-python of
 * sdk/v3 v3.68.0, built by scripts/install-pulumi.sh), `pulumi` 3.259.0 from PyPI and the
 * generated SDK of sdk-gen/python (pulumi_dsops) in the venv of scripts/install-python-venv.sh
 * (activated),
 * a real PostgreSQL 15 role and the embedded file store; time moves with DSOPS_CLOCK (the
 * plugin inherits the CLI's environment).
 *
 * Skipped, saying why, only when the Python host or the venv cannot be made here AND
 * DSOPS_REQUIRE_PYTHON is unset (`npm test` makes both in its set-up and sets it, so CI cannot skip).
 */
const ROOT = join(__dirname, "..", "..", "..");

/** The Python language host next to the CLI and the venv; `why` when they cannot be had (a skip). */
function pythonSetup(): { venv?: string; why?: string } {
  const required = !!process.env.DSOPS_REQUIRE_PYTHON;
  const host = join(pulumiBinDir(), "pulumi-language-python");
  if (!existsSync(host) || !existsSync(join(pulumiBinDir(), "pulumi-language-python-exec"))) {
    assert.ok(!required, `DSOPS_REQUIRE_PYTHON is set and scripts/install-pulumi.sh put no pulumi-language-python (and its -exec shim) in ${pulumiBinDir()}`);
    return { why: `no pulumi-language-python in ${pulumiBinDir()} (scripts/install-pulumi.sh builds it unless DSOPS_PULUMI_PYTHON=0) and DSOPS_REQUIRE_PYTHON is unset` };
  }
  const r = spawnSync("bash", [join(ROOT, "scripts", "install-python-venv.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) {
    assert.ok(!required, `DSOPS_REQUIRE_PYTHON is set and scripts/install-python-venv.sh failed:\n${r.stderr}`);
    return { why: `scripts/install-python-venv.sh failed (no python3 >= 3.9 or no PyPI here) and DSOPS_REQUIRE_PYTHON is unset: ${r.stderr.trim().split("\n").pop()}` };
  }
  return { venv: r.stdout.trim().split("\n").pop() };
}

const program = (duration: string) => `import pulumi
import pulumi_dsops as dsops

token = dsops.SecretReference("token", ref="store://local/app/token")
window = dsops.MaintenanceWindow("window", schedule="0 2 * * SUN", duration="${duration}", timezone="Europe/Berlin")
login = dsops.RotationPolicy(
    "login",
    secret="store://local/app/db-login",
    target="app-db",
    user="app_a",
    strategy="single-user",
    schedule=dsops.RotationScheduleArgs(every="30d"),
    windows=[{"schedule": "0 2 * * SUN", "duration": "4h", "timezone": "Europe/Berlin"}],
)
fetched = dsops.get_secret_output(ref="store://local/app/token")

pulumi.export("token", token.value)
pulumi.export("tokenVersion", token.version_id)
pulumi.export("fetched", fetched.value)
pulumi.export("windowOpen", window.is_open)
pulumi.export("nextOpenAt", window.next_open_at)
pulumi.export("value", login.value)
pulumi.export("status", login.status)
pulumi.export("nextDueAt", login.next_due_at)
pulumi.export("lastResult", login.last_result)
`;

describe("Pulumi Python end to end: SecretReference, MaintenanceWindow and RotationPolicy through the dsops plugin and the generated SDK, on PostgreSQL", function () {
  this.timeout(600000);
  let venv = "";
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
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

  /**
   * A Python project run in the cached venv, activated (its bin first on PATH, VIRTUAL_ENV): the
   * v3.68.0 host reads `runtime.options.virtualenv` only from command-line flags, which CLI
   * 3.259 no longer passes (it sends the options in RunRequest.info, which that host predates).
   * Its dsops.yaml names the PostgreSQL service app-db.
   */
  function pyProject(name: string, main: string) {
    const PATH = `${join(venv, "bin")}:${join(ROOT, "bin")}:${dirname(process.execPath)}:${pulumiBinDir()}:${process.env.PATH}`;
    const project = new PulumiProject(`dsops-py-${name}`, "", { DSOPS_FILE_KEY: FILE_KEY, PATH, VIRTUAL_ENV: venv });
    projects.push(project);
    project.write("Pulumi.yaml", `name: dsops-py-${name}\nruntime: python\n`);
    project.write("__main__.py", main);
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg?.port}, database: postgres, admin: "store://local/pg/admin" }\n`,
    );
    const store = new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse(START)), env: { DSOPS_FILE_KEY: FILE_KEY } });
    return { project, store };
  }

  async function setRole(user: string, password: string): Promise<void> {
    await admin?.query(`ALTER ROLE ${escapeIdentifier(user)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
  }

  /** A stack whose store holds the admin login, the role's current password and a token; the role logs in with p0. */
  async function seeded(name: string, main: string) {
    const { project, store } = pyProject(name, main);
    await store.put("pg/admin", new Secret(JSON.stringify({ username: pg?.adminUser, password: pg?.adminPassword })));
    const p0 = pw(name);
    await setRole("app_a", p0);
    await store.put("app/db-login", new Secret(p0));
    const token = pw(`${name}-token`);
    await store.put("app/token", new Secret(token));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    return { project, store, p0, token };
  }

  before(async function () {
    const found = pythonSetup();
    if (!found.venv) {
      console.log(`      skipped: ${found.why}`);
      this.skip();
    }
    venv = found.venv as string;
    assert.ok(existsSync(join(ROOT, "dist", "provider", "plugin", "main.js")), "build first: dist/provider/plugin/main.js is missing");
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE ROLE app_a LOGIN");
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    for (const p of projects) p.cleanup();
  });

  it("up (secret outputs), clean preview, drift in preview --diff naming versionId, refresh, rotation when due inside the window, destroy; no plaintext in state or output", async () => {
    const { project, store, p0, token } = await seeded("main", program("4h"));
    const up = project.ok(["up", "--yes", "--skip-preview"], at(START));
    assert.match(up.stdout, /\+ 4 created/, up.stdout);
    const shown = project.outputs();
    for (const k of ["token", "fetched", "value"]) assert.equal(shown[k], "[secret]", `output ${k} is not a secret`);
    assert.equal(shown.status, "current");
    assert.equal(shown.nextDueAt, "2026-12-02T12:00:00.000Z");
    const outs = project.secretOutputs();
    assert.equal(outs.token, token);
    assert.equal(outs.fetched, token, "get_secret_output (an Invoke) from Python");
    assert.equal(outs.tokenVersion, "1");
    assert.equal(outs.value, p0);
    assert.equal(typeof outs.windowOpen, "boolean");
    assert.match(String(outs.nextOpenAt), /^\d{4}-\d\d-\d\dT/);
    assert.ok(pg && (await pg.canLogin("app_a", p0)), "create does not rotate");
    // The resources in state carry the schema's tokens and property names; the value is ciphertext.
    const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; outputs?: Record<string, unknown> }> } };
    const byName = (n: string) => state.deployment.resources.find((r) => r.urn.endsWith(`::${n}`));
    assert.equal(byName("token")?.type, "dsops:index:SecretReference");
    assert.equal(byName("window")?.type, "dsops:index:MaintenanceWindow");
    assert.equal(byName("login")?.type, "dsops:index:RotationPolicy");
    assert.ok(typeof byName("token")?.outputs?.value === "object" && "ciphertext" in (byName("token")?.outputs?.value as object), "value is not a secret in state");

    assert.deepEqual(project.previewSummary(at(START)), { same: 4 }, "a preview right after up changes nothing");

    // The token changes in the store behind the program's back: preview --diff names the property and why.
    const token2 = pw("token2");
    await store.put("app/token", new Secret(token2));
    const diff = project.ok(["preview", "--diff"], at(START));
    const block = diffBlock(diff.stdout, "SecretReference", "token");
    assert.match(block, /~ dsops:index:SecretReference: \(update\)/, diff.stdout);
    assert.match(block, /~ versionId\s*: "1" => "2"/, diff.stdout);
    assert.equal(diffBlock(diff.stdout, "RotationPolicy", "login"), "", `the policy did not change:\n${diff.stdout}`);
    assert.match(diff.stderr, /SecretReference store:\/\/local\/app\/token: the secret has a new version in the store \(versionId "1" in state, "2" now\): it changed outside this program/, diff.stderr);
    const plain = project.ok(["preview"], at(START));
    assert.match(plain.stdout, /~\s+dsops:index:SecretReference token update \[diff: ~versionId\]/, plain.stdout);

    // refresh reads the new version into state; the next preview is clean and up hands the new value over.
    const refresh = project.ok(["refresh", "--yes", "--skip-preview"], at(START));
    assert.match(refresh.stdout, /dsops:index:SecretReference token updated/, refresh.stdout);
    assert.deepEqual(project.previewSummary(at(START)), { same: 4 }, "the refreshed state is current");
    project.ok(["up", "--yes", "--skip-preview"], at(START));
    assert.equal(project.secretOutputs().token, token2);

    // Not due yet, then due but every window closed: nothing changes.
    assert.deepEqual(project.previewSummary(at("2026-11-20T12:00:00Z")), { same: 4 });
    assert.deepEqual(project.previewSummary(at("2026-12-03T12:00:00Z")), { same: 4 });
    // Due inside the window: the policy is an update naming pendingRotation and why; up rotates the role.
    const when = at("2026-12-06T02:00:00Z");
    const due = project.ok(["preview", "--diff"], when);
    assert.match(diffBlock(due.stdout, "RotationPolicy", "login"), /[+~] pendingRotation\s*: (""\s*=>\s*)?"due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z"/, due.stdout);
    assert.match(due.stderr, /RotationPolicy store:\/\/local\/app\/db-login: rotates: due since 2026-12-02T12:00:00\.000Z/, due.stderr);
    project.ok(["up", "--yes", "--skip-preview"], when);
    const p1 = (await store.get({ key: "app/db-login", version: "current" })).value.reveal();
    values.push(p1);
    assert.notEqual(p1, p0);
    assert.ok(await pg?.canLogin("app_a", p1), "the new password logs in");
    assert.ok(!(await pg?.canLogin("app_a", p0)), "the old password is refused");
    assert.equal(project.secretOutputs().value, p1, "the policy's value is the rotated one, in the same up");
    const after = project.outputs();
    assert.equal(after.status, "rotated");
    assert.equal(after.nextDueAt, "2027-01-05T02:00:00.000Z");
    assert.match(String(after.lastResult), /^rotated rot-\S+ \(due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z\): version \d+ → \d+$/);
    assert.deepEqual(project.previewSummary(when), { same: 4 }, "rotated: the next preview is clean");

    // An input change of the window in the Python source: preview --diff names it.
    project.write("__main__.py", program("2h"));
    const windowDiff = project.ok(["preview", "--diff"], when);
    assert.match(diffBlock(windowDiff.stdout, "MaintenanceWindow", "window"), /~ duration\s*: "4h" => "2h"/, windowDiff.stdout);

    const destroy = project.ok(["destroy", "--yes", "--skip-preview"], when);
    assert.match(destroy.stdout, /- 4 deleted/, destroy.stdout);
    assert.equal((await store.get({ key: "app/db-login", version: "current" })).value.reveal(), p1, "the secret is still there");
    assert.equal((await store.get({ key: "app/token", version: "current" })).value.reveal(), token2, "deleting a SecretReference deletes nothing in the store");
    assert.ok(await pg?.canLogin("app_a", p1), "and the role still logs in");
    project.assertNoLeak(values);
  });

  describe("attacks: the error reaches the user naming the field, the CLI exits non-zero, nothing is created or rotated", () => {
    const policy = (args: string) => `import pulumi_dsops as dsops\n\ndsops.RotationPolicy("bad", ${args})\n`;
    const ok = `secret="store://local/app/db-login", strategy="single-user", rotate_on_create=True, schedule={"every": "30d"}`;
    const target = (port: number, hostKey = "host") => `target={"type": "postgresql", "${hostKey}": "127.0.0.1", "port": ${port}, "database": "postgres", "admin": "store://local/pg/admin", "user": "app_a"}`;
    const cases: Array<{ what: string; main: (port: number) => string; says: RegExp[] }> = [
      {
        what: "a typo'd keyword argument (secrt=): Python's TypeError names it",
        main: (port) => policy(`secrt="store://local/app/db-login", strategy="single-user", rotate_on_create=True, schedule={"every": "30d"}, ${target(port)}`),
        says: [/unexpected keyword argument 'secrt'/],
      },
      {
        what: "a required property left out: the SDK names it",
        main: (port) => policy(`secret="store://local/app/db-login", rotate_on_create=True, schedule={"every": "30d"}, ${target(port)}`),
        says: [/[Mm]issing required property 'strategy'/],
      },
      {
        what: "a typo'd key inside a settings map (hots): Check names target.hots",
        main: (port) => policy(`${ok}, ${target(port, "hots")}`),
        says: [/dsops:index:RotationPolicy resource 'bad': property target\.hots\b/],
      },
      {
        what: "a bad store reference of a SecretReference: Check names ref and the store",
        main: () => `import pulumi, pulumi_dsops as dsops\n\nt = dsops.SecretReference("bad", ref="store://lcoal/app/token")\npulumi.export("t", t.value)\n`,
        says: [/dsops:index:SecretReference resource 'bad': property ref\b/, /unknown store "lcoal" \(did you mean "local"\?\)/],
      },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const { project, store, p0 } = await seeded(`attack-${cases.indexOf(c)}`, c.main(pg?.port ?? 0));
        for (const args of [["preview"], ["up", "--yes", "--skip-preview"]]) {
          const r = project.run(args, at(START));
          const text = r.stdout + r.stderr;
          assert.notEqual(r.status, 0, `pulumi ${args[0]} exited 0:\n${text}`);
          for (const re of c.says) assert.match(text, re, text);
          assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a JavaScript stack trace was printed:\n${text}`);
        }
        assert.doesNotMatch(project.ok(["stack", "export"]).stdout, /dsops:index:/, "nothing was created");
        assert.equal((await store.get({ key: "app/db-login", version: "current" })).value.reveal(), p0, "the stored secret is untouched");
        assert.ok(await pg?.canLogin("app_a", p0), "nothing rotated");
        project.assertNoLeak(values);
      });
    }
  });
});
