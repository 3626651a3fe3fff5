import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { diffBlock, pulumiBinDir, PulumiProject } from "../support/pulumi";

/**
 * Environment and RotationPolicy from a Pulumi YAML program through the dsops provider plugin
 * (bin/pulumi-resource-dsops on PATH): the real Pulumi CLI (file backend), the real YAML
 * language host, a real PostgreSQL 15 role and the embedded file store; time moves with
 * DSOPS_CLOCK (the plugin inherits the CLI's environment).
 */
const ROOT = join(__dirname, "..", "..", "..");

const program = (port: number) => `name: dsops-yaml-rotation
runtime: yaml
resources:
  login:
    type: dsops:index:RotationPolicy
    properties:
      secret: store://local/app/db-login
      target: app-db
      user: app_a
      strategy: single-user
      schedule:
        every: 30d
      windows:
        - schedule: "0 2 * * SUN"
          duration: 4h
          timezone: Europe/Berlin
  app:
    type: dsops:index:Environment
    properties:
      configFile: dsops.yaml
      env: app
variables:
  direct:
    fn::invoke:
      function: dsops:index:getEnvironment
      arguments:
        configFile: dsops.yaml
        env: app
outputs:
  value: \${login.value}
  status: \${login.status}
  nextDueAt: \${login.nextDueAt}
  lastResult: \${login.lastResult}
  variables: \${app.variables}
  plan: \${app.plan}
  direct: \${direct.variables}
# port ${port}
`;

describe("Pulumi YAML end to end: Environment and RotationPolicy through the dsops plugin, on PostgreSQL", function () {
  this.timeout(600000);
  let pg: RunningPostgres;
  let admin: Client;
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

  function yamlProject(name: string, yaml: string) {
    const PATH = `${join(ROOT, "bin")}:${dirname(process.execPath)}:${pulumiBinDir()}:${process.env.PATH}`;
    const project = new PulumiProject(`dsops-yaml-${name}`, "", { DSOPS_FILE_KEY: FILE_KEY, PATH });
    projects.push(project);
    project.write("Pulumi.yaml", yaml.replace("dsops-yaml-rotation", `dsops-yaml-${name}`));
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }\nenvs:\n  app:\n    TOKEN: { from: "store://local/app/token" }\n    MODE: { literal: prod }\n`,
    );
    const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse(START)), env: { DSOPS_FILE_KEY: FILE_KEY } });
    return { project, store };
  }

  async function setRole(user: string, password: string): Promise<void> {
    await admin.query(`ALTER ROLE ${escapeIdentifier(user)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
  }

  before(async () => {
    assert.ok(existsSync(join(pulumiBinDir(), "pulumi-language-yaml")), "scripts/install-pulumi.sh put no pulumi-language-yaml");
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

  it("up, clean preview, the policy due with its reason in preview once a window opens, up rotates the role, refresh, destroy; no plaintext anywhere", async () => {
    const { project, store } = yamlProject("rotation", program(pg.port));
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const p0 = pw("p0");
    await setRole("app_a", p0);
    await s.put("app/db-login", new Secret(p0));
    const token = pw("token");
    await s.put("app/token", new Secret(token));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);

    const up = project.ok(["up", "--yes", "--skip-preview"], at(START));
    assert.match(up.stdout, /\+ 3 created/, up.stdout);
    const shown = project.outputs();
    for (const k of ["value", "variables", "direct"]) assert.equal(shown[k], "[secret]", `output ${k} is not a secret`);
    assert.equal(shown.status, "current");
    assert.equal(shown.nextDueAt, "2026-12-02T12:00:00.000Z");
    const outs = project.secretOutputs();
    assert.equal(outs.value, p0);
    assert.deepEqual(outs.variables, { TOKEN: token, MODE: "prod" });
    assert.deepEqual(outs.direct, { TOKEN: token, MODE: "prod" });
    assert.deepEqual((outs.plan as Array<{ name: string; source: string }>).map((r) => [r.name, r.source]).sort(), [["MODE", "literal"], ["TOKEN", "store"]]);
    assert.ok(await pg.canLogin("app_a", p0), "create does not rotate");

    assert.deepEqual(project.previewSummary(at("2026-11-20T12:00:00Z")), { same: 3 }, "not due: nothing changes");
    // Due, but every window closed: no change, and the status says what it waits for.
    assert.deepEqual(project.previewSummary(at("2026-12-03T12:00:00Z")), { same: 3 });

    // Due inside the window: preview shows the policy as an update, naming pendingRotation and why.
    const when = at("2026-12-06T02:00:00Z");
    assert.deepEqual(project.previewSummary(when), { same: 2, update: 1 });
    const diff = project.ok(["preview", "--diff"], when);
    const policy = diffBlock(diff.stdout, "RotationPolicy", "login");
    assert.match(policy, /~ dsops:index:RotationPolicy: \(update\)/, diff.stdout);
    assert.match(policy, /[+~] pendingRotation\s*: (""\s*=>\s*)?"due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z"/, diff.stdout);
    assert.match(diff.stderr, /RotationPolicy store:\/\/local\/app\/db-login: rotates: due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z/, diff.stderr);
    const plain = project.ok(["preview"], when);
    assert.match(plain.stdout, /~\s+dsops:index:RotationPolicy login update \[diff: ~pendingRotation\]/, plain.stdout);

    project.ok(["up", "--yes", "--skip-preview"], when);
    const p1 = (await s.get({ key: "app/db-login", version: "current" })).value.reveal();
    values.push(p1);
    assert.notEqual(p1, p0);
    assert.ok(await pg.canLogin("app_a", p1), "the new password logs in");
    assert.ok(!(await pg.canLogin("app_a", p0)), "the old password is refused");
    assert.equal(project.secretOutputs().value, p1, "the policy's value is the rotated one, in the same up");
    const after = project.outputs();
    assert.equal(after.status, "rotated");
    assert.equal(after.nextDueAt, "2027-01-05T02:00:00.000Z");
    assert.match(String(after.lastResult), /^rotated rot-\S+ \(due since 2026-12-02T12:00:00\.000Z; window open until 2026-12-06T05:00:00\.000Z\): version \d+ → \d+$/);
    assert.deepEqual(project.previewSummary(when), { same: 3 }, "rotated: the next preview is clean");

    // A token changed in the store: the Environment shows as an update, and why.
    const token2 = pw("token2");
    await s.put("app/token", new Secret(token2));
    const envDiff = project.ok(["preview", "--diff"], when);
    const envBlock = diffBlock(envDiff.stdout, "Environment", "app");
    assert.match(envBlock, /~ dsops:index:Environment: \(update\)/, envDiff.stdout);
    assert.match(envBlock, /\+ currentVersions\s*: \{\s*\n\s*\+ TOKEN\s*: "2"/, envDiff.stdout);
    assert.match(envDiff.stderr, /Environment env:app: a variable has a new version in the store: TOKEN \(versionId "1" in state, "2" now\)/, envDiff.stderr);

    const refresh = project.ok(["refresh", "--yes", "--skip-preview"], at("2026-12-07T12:00:00Z"));
    assert.match(refresh.stdout, /dsops:index:Environment app updated/, refresh.stdout);
    assert.doesNotMatch(refresh.stdout + refresh.stderr, /changed outside this program/, "a refresh is no drift to explain");
    assert.deepEqual(project.previewSummary(at("2026-12-07T12:00:00Z")), { same: 3 }, "the refreshed state is current");
    project.ok(["up", "--yes", "--skip-preview"], at("2026-12-07T12:00:00Z"));
    assert.deepEqual(project.secretOutputs().variables, { TOKEN: token2, MODE: "prod" });

    const destroy = project.ok(["destroy", "--yes", "--skip-preview"], at("2026-12-07T12:00:00Z"));
    assert.match(destroy.stdout, /- 3 deleted/, destroy.stdout);
    assert.equal((await s.get({ key: "app/db-login", version: "current" })).value.reveal(), p1, "the secret is still there");
    assert.ok(await pg.canLogin("app_a", p1), "and so is the role");
    project.assertNoLeak(values);
  });

  it("with dsops:scheduler the policy is registered in the scheduler database (id <project>/<stack>/<name>), and unregistered by destroy; a URL with a password is refused naming the setting", async () => {
    const { project, store } = yamlProject("sched", program(pg.port));
    const s = store();
    await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const p0 = pw("sched");
    await setRole("app_a", p0);
    await s.put("app/db-login", new Secret(p0));
    await s.put("app/token", new Secret(pw("sched-token")));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    // A literal password in the setting: refused by CheckConfig, and never echoed (the command line is not recorded).
    const literal = pw("literal");
    project.run(["config", "set", "dsops:scheduler", JSON.stringify({ database: `postgresql://${pg.adminUser}:${literal}@127.0.0.1:${pg.port}/postgres` })], {}, false);
    const refused = project.run(["preview"], at(START));
    assert.notEqual(refused.status, 0, refused.stdout);
    assert.match(refused.stdout + refused.stderr, /pulumi:providers:dsops resource 'default' has a problem: stack config dsops:scheduler\.database: a postgresql:\/\/ URL with a password is refused/, refused.stdout + refused.stderr);

    project.ok(["config", "set", "dsops:scheduler", JSON.stringify({ database: "env:DSOPS_E2E_SCHEDULER_URL" })]);
    const url = { DSOPS_E2E_SCHEDULER_URL: pg.connectionString(pg.adminUser, pg.adminPassword, "postgres") };
    project.ok(["up", "--yes", "--skip-preview"], { ...at(START), ...url });
    const rows = await admin.query<{ id: string; secret: string; text: string }>("SELECT id, secret, row_to_json(p)::text AS text FROM dsops_worker.policies p ORDER BY id");
    assert.deepEqual(rows.rows.map((r) => [r.id, r.secret]), [["dsops-yaml-sched/dev/login", "store://local/app/db-login"]]);
    for (const v of [...values, pg.adminPassword]) assert.ok(!rows.rows[0].text.includes(v), "a value was registered");
    assert.deepEqual(project.previewSummary({ ...at(START), ...url }), { same: 3 }, "registered: the next preview is clean");
    // The service changes in dsops.yaml: the policy's registered definition is stale, an update that says so.
    const before = (await admin.query<{ text: string }>("SELECT definition::text AS text FROM dsops_worker.policies")).rows[0].text;
    project.write("dsops.yaml", readFileSync(join(project.dir, "dsops.yaml"), "utf8").replace("host: 127.0.0.1", "host: localhost"));
    const changed = project.ok(["preview"], { ...at(START), ...url });
    assert.match(changed.stdout, /~\s+dsops:index:RotationPolicy login update \[diff: ~schedulerRegistration\]/, changed.stdout);
    assert.match(changed.stdout + changed.stderr, /RotationPolicy store:\/\/local\/app\/db-login: its registration with dsops:scheduler changes/, changed.stdout + changed.stderr);
    project.ok(["up", "--yes", "--skip-preview"], { ...at(START), ...url });
    const after = (await admin.query<{ text: string }>("SELECT definition::text AS text FROM dsops_worker.policies")).rows[0].text;
    assert.notEqual(after, before);
    assert.match(after, /"host": ?"localhost"/, "re-registered with the new definition");
    assert.deepEqual(project.previewSummary({ ...at(START), ...url }), { same: 3 });
    project.ok(["destroy", "--yes", "--skip-preview"], { ...at(START), ...url });
    assert.equal((await admin.query("SELECT id FROM dsops_worker.policies")).rowCount, 0, "destroy unregisters the policy");
    project.assertNoLeak([...values, pg.adminPassword]);
  });

  describe("attacks: a typo is a Check failure naming the property at preview, before any rotation", () => {
    const base = (port: number) => ({ secret: "store://local/app/db-login", strategy: "single-user", target: `{ type: postgresql, host: 127.0.0.1, port: ${port}, database: postgres, admin: "store://local/pg/admin", user: app_a }` });
    const cases: Array<{ what: string; props: (port: number) => { secret: string; strategy: string; target: string }; property: RegExp; reason: RegExp }> = [
      { what: "a misspelt strategy", props: (port) => ({ ...base(port), strategy: "single-usr" }), property: /property strategy\b/, reason: /single-user/ },
      { what: "a misspelt target setting", props: (port) => ({ ...base(port), target: base(port).target.replace("host:", "hots:") }), property: /property target\.hots\b/, reason: /hots/ },
      { what: "a target service that does not exist", props: (port) => ({ ...base(port), target: "app-bd" }), property: /property target\b/, reason: /unknown service "app-bd" \(did you mean "app-db"\?\)/ },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const p = c.props(pg.port);
        const { project, store } = yamlProject(
          `rot-attack-${cases.indexOf(c)}`,
          `name: dsops-yaml-rotation\nruntime: yaml\nresources:\n  bad:\n    type: dsops:index:RotationPolicy\n    properties:\n      secret: ${p.secret}\n      target: ${p.target}\n      strategy: ${p.strategy}\n      rotateOnCreate: true\n      schedule: { every: 30d }\n`,
        );
        const s = store();
        await s.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
        const p0 = pw("attack");
        await setRole("app_a", p0);
        await s.put("app/db-login", new Secret(p0));
        project.ok(["stack", "init", "dev"]);
        project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
        for (const args of [["preview"], ["up", "--yes", "--skip-preview"]]) {
          const r = project.run(args, at(START));
          const text = r.stdout + r.stderr;
          assert.notEqual(r.status, 0, `pulumi ${args[0]} exited 0:\n${text}`);
          assert.match(text, /dsops:index:RotationPolicy resource 'bad': property /, text);
          assert.match(text, c.property, text);
          assert.match(text, c.reason, text);
          assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a stack trace was printed:\n${text}`);
        }
        assert.doesNotMatch(project.ok(["stack", "export"]).stdout, /dsops:index:RotationPolicy/, "nothing was created");
        assert.ok(await pg.canLogin("app_a", p0), "nothing rotated");
        project.assertNoLeak(values);
      });
    }
  });
});
