import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { dsops, dsopsRun, type CliResult } from "../support/cli";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { parseConfig } from "../../provider/compose/config";
import { rotate } from "../../provider/compose/rotation";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { VariableRotation } from "../../provider/rotation/settings";
import { generate, POLICY_ATTEMPTS } from "../../provider/rotation/generator";
import { FileStore } from "../../provider/stores/file";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { rolloutDiscoverySchema } from "../../provider/rotation/rollout/settings";

// The notification receiver is a local HTTP server that records requests; the rotated databases are real PostgreSQL 15 servers.
/**
 * dsops's rotation shapes (issue 18), written for this project in the forms dsops's rotation,
 * health-check and gradual-rollout examples use: a top-level `rotation:` block, a service's
 * `rotation.{strategy, health_checks, rollback, canary}`, `admin_credentials`, a variable's
 * `service:` + `rotation.ttl`. Each is planned with the built CLI, rotated against real
 * PostgreSQL 15 servers (the databases are asserted afterwards), and each refused form has its
 * exact message with line:column. Policies' patterns are asserted on the values rotations store.
 */
describe("compat: dsops rotation shapes (real PostgreSQL 15)", function () {
  this.timeout(180000);
  const pgs: RunningPostgres[] = [];
  let web: HttpReceiver;
  let dir: string;
  const FILE_KEY = "compat-rot-key-" + Math.random().toString(36).slice(2);
  const env = { DSOPS_FILE_KEY: FILE_KEY, DSOPS_CLOCK: "2026-11-20T12:00:00Z" };
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const cli = (args: string[], input?: string): CliResult => {
    const r = dsops(args, { cwd: dir, env, ...(input !== undefined ? { input } : {}) });
    outputs.push(r);
    return r;
  };
  // Rotations run without blocking this process: its HTTP receiver must answer the notifications.
  const rotateCli = async (args: string[]): Promise<CliResult> => {
    const r = await dsopsRun(args, { cwd: dir, env });
    outputs.push(r);
    return r;
  };
  const ok = (r: CliResult) => {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });
  const current = async (key: string) => {
    const v = (await store().get({ key })).value.reveal();
    values.add(v);
    return v;
  };
  const passwordOf = (v: string) => v;

  const yaml = () => `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
rotation:
  ttl: 90d
services:
  app-db:
    type: postgres
    host: 127.0.0.1
    port: ${pgs[0].port}
    database: shop
    admin_credentials:
      username: postgres
      password:
        from: { store: local, key: pg/admin-pw }
    rotation:
      strategy: random
      health_checks:
        enabled: true
        monitoring_period: 0
        interval: 1s
        failure_threshold: 1
        checks:
          - type: sql
            name: orders
            query: "SELECT count(*) FROM orders"
            timeout: 5
      verification: { enabled: true, timeout: 10s, query: "SELECT count(*) FROM orders" }
      rollback:
        automatic: true
        on_verification_failure: true
        on_health_check_failure: true
      notifications:
        webhook:
          name: audit
          url: "${web.url}/audit"
          events: [completed, rollback]
          timeout: 5
  broken-db:
    type: postgresql
    host: 127.0.0.1
    port: ${pgs[0].port}
    database: shop
    admin_credentials:
      username: postgres
      password: { from: "store://local/pg/admin-pw" }
    rotation:
      strategy: random
      health_checks:
        failure_threshold: 1
        checks:
          - { type: sql, name: missing, query: "SELECT count(*) FROM no_such_table" }
  cluster:
    type: postgresql
    host: 127.0.0.1
    port: ${pgs[0].port}
    database: postgres
    admin_credentials:
      username: postgres
      password: { from: { store: local, key: pg/admin-pw } }
    rotation:
      strategy: canary
      canary:
        discovery:
          type: explicit
          instances:
            - { id: db-0, role: production }
            - { id: db-1, role: canary, port: ${pgs[1].port}, admin: "store://local/pg/admin-1" }
        instance_selector: "role=canary"
        health_monitoring_period: 0
        failure_threshold: 1
        rollout_waves:
          - { percentage: 100, wait: 0 }
      rollback:
        automatic: true
envs:
  prod:
    DB_PASSWORD:
      from: { store: local, key: app/db }
      service: app-db
      rotation:
        ttl: 30d
        user: app
    DB_BROKEN:
      from: { store: local, key: app/broken }
      service: broken-db
      rotation: { user: broken }
    DB_CLUSTER:
      from: { store: local, key: app/cluster }
      service: cluster
      rotation: { user: fleet }
`;

  async function role(pg: RunningPostgres, name: string, password: string): Promise<void> {
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await c.connect();
    await c.query(`CREATE ROLE ${escapeIdentifier(name)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    await c.end();
  }

  before(async () => {
    for (let i = 0; i < 2; i++) pgs.push(await startPostgres());
    web = await startHttpReceiver();
    dir = mkdtempSync(join(tmpdir(), "dsops-compat-rot-"));
    const c = new Client({ host: pgs[0].host, port: pgs[0].port, user: pgs[0].adminUser, password: pgs[0].adminPassword, database: "postgres" });
    await c.connect();
    await c.query("CREATE DATABASE shop");
    await c.end();
    const shop = new Client({ host: pgs[0].host, port: pgs[0].port, user: pgs[0].adminUser, password: pgs[0].adminPassword, database: "shop" });
    await shop.connect();
    await shop.query("CREATE TABLE orders (id int)");
    await shop.query("GRANT SELECT ON orders TO PUBLIC");
    await shop.end();
    for (const [name, pw] of [
      ["app", "Init-app-" + Math.random().toString(36).slice(2)],
      ["broken", "Init-broken-" + Math.random().toString(36).slice(2)],
    ]) {
      await role(pgs[0], name, pw);
      await store().put(name === "app" ? "app/db" : "app/broken", new Secret(pw));
      values.add(pw);
    }
    const fleet = "Init-fleet-" + Math.random().toString(36).slice(2);
    for (const pg of pgs) await role(pg, "fleet", fleet);
    await store().put("app/cluster", new Secret(fleet));
    values.add(fleet);
    // dsops's admin_credentials: the password alone in the store; the second server's admin in our JSON form.
    await store().put("pg/admin-pw", new Secret(pgs[0].adminPassword));
    await store().put("pg/admin-1", new Secret(JSON.stringify({ username: pgs[1].adminUser, password: pgs[1].adminPassword })));
    for (const pg of pgs) values.add(pg.adminPassword);
    writeFileSync(join(dir, "dsops.yaml"), yaml());
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!r.stdout.includes(v) && !r.stderr.includes(v), "a value leaked into the output");
    for (const pg of pgs) for (const v of values) if (v !== pg.adminPassword) assert.ok(!pg.log().includes(v), "a value reached the server log");
    for (const pg of pgs) await pg.stop();
    for (const r of web?.requests ?? []) for (const v of values) assert.ok(!r.body.includes(v), "a value reached a notification");
    await web?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("plans the dsops shapes, read as our rotation blocks (strategy, health, monitor, rollout, ttl, admin)", () => {
    ok(cli(["plan", "--env", "prod"]));
    const config = parseConfig(yaml(), { label: "dsops.yaml", dir });
    const r = config.envs.prod.DB_PASSWORD.spec.rotation as VariableRotation;
    assert.equal(r.service, "app-db");
    assert.equal(r.strategy, "single-user");
    assert.equal(r.ttl, "30d");
    assert.equal(r.user, "app");
    assert.deepEqual(r.monitor, { period: 0, interval: "1s", failures: 1 });
    assert.deepEqual(r.health, [{ type: "sql", name: "orders", query: "SELECT count(*) FROM orders", timeout_ms: 5000 }]);
    assert.deepEqual(r.verification, { query: "SELECT count(*) FROM orders", retries: 0, timeout_ms: 10000 });
    assert.equal((config.envs.prod.DB_BROKEN.spec.rotation as VariableRotation).ttl, "90d", "the top-level rotation.ttl is the default");
    const c = config.envs.prod.DB_CLUSTER.spec.rotation as VariableRotation;
    assert.equal(c.rollout?.strategy, "canary");
    assert.deepEqual(
      c.rollout?.instances?.map((i) => [i.name, i.labels]),
      [
        ["db-0", { role: "production" }],
        ["db-1", { role: "canary", canary: true }],
      ],
    );
    assert.deepEqual(c.rollout?.waves, [100]);
    assert.equal(c.rollout?.on_failure, "rollback_all");
    assert.deepEqual(config.raw.services["app-db"], {
      type: "postgresql",
      host: "127.0.0.1",
      port: pgs[0].port,
      database: "shop",
      admin: { username: "postgres", password: "store://local/pg/admin-pw" },
    });
  });

  it("rotates through admin_credentials, runs the service's health_checks, and the database takes the new password", async () => {
    const before = await current("app/db");
    ok(await rotateCli(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"]));
    const after = await current("app/db");
    assert.notEqual(after, before);
    assert.equal(await pgs[0].canLogin("app", passwordOf(after)), true, "the new password logs in");
    assert.equal(await pgs[0].canLogin("app", before), false, "the old password is refused");
    // The service's dsops notification block: its webhook got the completed event.
    const got = web.requests.filter((q) => q.path === "/audit").map((q) => JSON.parse(q.body) as { type: string; service: string; variable: string });
    assert.deepEqual(got.map((e) => [e.type, e.service, e.variable]), [["completed", "app-db", "DB_PASSWORD"]]);
  });

  it("a failing dsops health check (health_checks → health) rolls the rotation back: the database keeps the old password", async () => {
    const before = await current("app/broken");
    const r = await rotateCli(["secrets", "rotate", "--env", "prod", "--var", "DB_BROKEN"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /health checks failed/);
    assert.equal(await current("app/broken"), before, "the stored current value is the old one");
    assert.equal(await pgs[0].canLogin("broken", before), true, "the old password still logs in");
    assert.deepEqual(
      web.requests.map((q) => (JSON.parse(q.body) as { variable: string }).variable),
      ["DB_PASSWORD"],
      "app-db's channel tells app-db's rotations only",
    );
  });

  it("a canary rollout from dsops's canary: block reaches both servers (the canary by instance_selector)", async () => {
    const before = await current("app/cluster");
    const r = ok(await rotateCli(["secrets", "rotate", "--env", "prod", "--var", "DB_CLUSTER"]));
    assert.match(r.stdout + r.stderr, /db-1/);
    const after = await current("app/cluster");
    assert.notEqual(after, before);
    for (const pg of pgs) {
      assert.equal(await pg.canLogin("fleet", after), true, `server ${pg.port} takes the new password`);
      assert.equal(await pg.canLogin("fleet", before), false, `server ${pg.port} refuses the old one`);
    }
  });

  it("rotation.ttl is the due interval: the variable's own ttl, else the top-level rotation block's", () => {
    const r = ok(cli(["secrets", "due", "--env", "prod", "--within", "400d", "--json"]));
    const due = JSON.parse(r.stdout) as Array<{ variable: string; dueAt: string; schedule: string }>;
    const by = Object.fromEntries(due.map((d) => [d.variable, d]));
    assert.equal(by.DB_PASSWORD.schedule, "every 30d");
    assert.equal(by.DB_PASSWORD.dueAt, "2026-12-20T12:00:00.000Z", "30 days after the rotation at the dsops clock");
    assert.equal(by.DB_BROKEN.schedule, "every 90d");
    assert.equal(by.DB_BROKEN.dueAt, "2026-11-20T12:00:00.000Z", "never rotated: due now");
  });

  it("policies' forbidden and required patterns hold for every generated value (many rotations), and an impossible pattern is refused at plan", async () => {
    const policies = `policies:
  forbidden_patterns: ["[A-F]"]
  required_patterns: ["^[a-z]", "[a-z0-9]$"]
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml() + policies);
    ok(cli(["plan", "--env", "prod"]));
    const config = parseConfig(yaml() + policies, { label: "dsops.yaml", dir, env: { ...process.env, ...env } });
    const seen = new Set<string>();
    for (let i = 0; i < 25; i++) {
      await rotate(config, "prod", "DB_PASSWORD", { metrics: false, notifications: false, env: { ...process.env, ...env } });
      const v = await current("app/db");
      seen.add(v);
      assert.doesNotMatch(v, /[A-F]/);
      assert.match(v, /^[a-z]/);
      assert.match(v, /[a-z0-9]$/);
      if (i === 24) assert.equal(await pgs[0].canLogin("app", v), true, "the last value is the database's");
    }
    assert.equal(seen.size, 25, "every rotation stored a new value");

    // The default generator always draws a digit: a forbidden digit can never be met.
    writeFileSync(join(dir, "dsops.yaml"), yaml() + `policies:\n  forbidden_patterns: ["x", "[0-9]"]\n`);
    const r = cli(["plan", "--env", "prod"]);
    assert.equal(r.status, 1);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("  - "));
    assert.deepEqual(
      lines.filter((l) => l.includes("DB_PASSWORD")),
      [
        "  - envs.prod.DB_PASSWORD.rotation: rotation.generator (format password, length 32) draws no value that meets policies.forbidden_patterns[1] /[0-9]/ (none of 2000 drawn did): each one matches it at dsops.yaml:82:9",
      ],
    );
    // A required pattern the charset cannot build (hex has no "z").
    writeFileSync(
      join(dir, "dsops.yaml"),
      yaml().replace("        ttl: 30d\n        user: app\n", "        ttl: 30d\n        user: app\n        generator: { format: hex, length: 32 }\n") + `policies:\n  required_patterns: ["z"]\n`,
    );
    const r2 = cli(["plan", "--env", "prod"]);
    assert.equal(r2.status, 1);
    assert.ok(
      r2.stderr.includes(
        "  - envs.prod.DB_PASSWORD.rotation.generator: rotation.generator (format hex, length 32) draws no value that meets policies.required_patterns[0] /z/ (none of 2000 drawn did): none matches it at dsops.yaml:84:20",
      ),
      r2.stderr,
    );
    writeFileSync(join(dir, "dsops.yaml"), yaml());
  });

  it("the generator draws again until the policies accept a value, and gives up after a bounded number of draws", () => {
    let calls = 0;
    const v = generate(undefined, {}, (value) => (++calls < 5 || !/^[a-z]/.test(value) ? ["not yet"] : []));
    assert.match(v.reveal(), /^[a-z]/);
    assert.ok(calls >= 5);
    calls = 0;
    assert.throws(
      () => generate(undefined, {}, () => (calls++, ["matches forbidden_patterns[0] /./"])),
      (e: Error) => e.message === `generator: none of ${POLICY_ATTEMPTS} values drawn met the policies (the last one matches forbidden_patterns[0] /./)`,
    );
    assert.equal(calls, POLICY_ATTEMPTS);
  });
});

describe("compat: dsops rotation shapes, mapped or refused (plan)", function () {
  this.timeout(60000);
  let dir: string;
  const plan = (text: string) => {
    writeFileSync(join(dir, "dsops.yaml"), text);
    return dsops(["plan", "--env", "prod"], { cwd: dir, env: {} });
  };
  const problems = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("  - ")).map((l) => l.slice(4));
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-compat-rotmap-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // dsops's examples/gradual-rollout/canary.yaml, with a literal store for Vault and our check types.
  const CANARY = `version: 1
secretStores:
  vault: { type: literal, values: {} }
services:
  web-application:
    type: postgresql
    host: app-db.example.com
    port: 5432
    database: production
    ssl_mode: require
    admin_credentials:
      username: postgres
      password:
        from:
          store: vault
          key: admin/postgres/password
    rotation:
      strategy: canary
      canary:
        discovery:
          type: explicit
          instances:
            - id: "web-app-canary-1"
              role: "canary"
            - id: "web-app-prod-1"
              role: "production"
              host: prod-1.example.com
        instance_selector: "role=canary"
        health_monitoring_period: 5m
        failure_threshold: 2
        rollout_waves:
          - { percentage: 10, wait: 2m, health_monitoring: 3m }
          - { percentage: 100, wait: 0, health_monitoring: 10m }
      health_checks:
        enabled: true
        interval: 30s
        failure_threshold: 3
        checks:
          - { type: sql, name: orders, query: "SELECT count(*) FROM orders", timeout: 2s }
          - { type: http, url: "https://app.example.com/healthz", expect_status: 200 }
        custom_scripts:
          - { name: smoke, script: /scripts/smoke.sh, timeout: 60s, environment: { REGION: eu } }
      rollback:
        automatic: true
        on_verification_failure: true
        on_health_check_failure: true
        timeout: 30s
      notifications:
        slack:
          webhook_url:
            from:
              store: vault
              key: notifications/slack/webhook
          channel: "#deployments"
          events: [started, completed, failed, rollback]
          notify_on_wave_completion: true
          mentions:
            on_failure: ["@sre-oncall"]
envs:
  prod:
    DATABASE_PASSWORD:
      from:
        store: vault
        key: prod/app-database/password
      service: web-application
      rotation:
        ttl: 30d
        user: app
`;

  it("dsops's canary example: planned, each block read as ours, what changes nothing here named in a warning", () => {
    const r = plan(CANARY);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stderr.split("\n").filter((l) => l.startsWith("warning: ")),
      [
        "warning: services.web-application.rotation.canary.rollout_waves: waves are monitored for one period here: the longest given (600s) is used between every two waves at dsops.yaml:31:9",
        "warning: services.web-application.rotation.rollback.timeout: accepted and not used: each rollback step is bounded by the target's own timeouts (connect_timeout_ms, verification.timeout_ms) at dsops.yaml:47:9",
        "warning: services.web-application.rotation.notifications.slack.notify_on_wave_completion: accepted and not used: there is no event per wave; a rollout sends started, completed (listing instances left on the old credential), failed and rollback at dsops.yaml:56:11",
      ],
    );
    const config = parseConfig(CANARY, { label: "dsops.yaml", dir });
    const rot = config.envs.prod.DATABASE_PASSWORD.spec.rotation as VariableRotation;
    assert.equal(rot.service, "web-application");
    assert.deepEqual(rot.monitor, { period: 0, interval: "30s", failures: 3 });
    assert.deepEqual(rot.health, [
      { type: "sql", name: "orders", query: "SELECT count(*) FROM orders", timeout_ms: 2000 },
      { type: "http", url: "https://app.example.com/healthz", expect_status: 200, method: "GET", headers: {}, timeout_ms: 10000 },
      { type: "script", name: "smoke", command: ["/scripts/smoke.sh"], env: { REGION: "eu" }, timeout_ms: 60000 },
    ]);
    assert.deepEqual(rot.rollout, {
      strategy: "canary",
      instances: [
        { name: "web-app-canary-1", labels: { role: "canary", canary: true } },
        { name: "web-app-prod-1", host: "prod-1.example.com", labels: { role: "production" } },
      ],
      waves: [10, 100],
      monitor: { period: "10m", interval: "30s", failures: 2 },
      on_failure: "rollback_all",
    });
    assert.deepEqual(rot.notifications, { channels: ["slack"] });
    const slack = (config.raw.notifications as { slack?: Record<string, unknown> }).slack;
    assert.equal(slack?.webhook_url, "store://vault/notifications/slack/webhook", "dsops's {from} is our store:// reference");
    assert.equal(slack?.channel, "#deployments");
    assert.equal((config.raw.services["web-application"] as { ssl?: string }).ssl, "require", "ssl_mode is ssl");
  });

  it("pause_on_failure and rollback.automatic: false halt the rollout (on_failure: stop); endpoint discovery is ours", () => {
    const text = `version: 1
secretStores:
  aws: { type: literal, values: {} }
services:
  cluster:
    type: postgresql
    admin: "store://aws/admin"
    rotation:
      strategy: percentage_rollout
      rollout:
        discovery:
          type: endpoint
          url: https://inventory.example.com/instances
          headers: { authorization: "store://aws/inventory-token" }
          timeout: 5
          instance_path: "$.instances[*]"
        waves:
          - { percentage: 5, health_monitoring: 2m }
          - { percentage: 100, health_monitoring: 2m }
        pause_on_failure: true
        manual_approval_required: true
        persist_progress: true
      rollback: { automatic: false }
envs:
  prod:
    DB: { from: "store://aws/db", service: cluster, rotation: { ttl: 30d, strategy: alternating-users, users: [app_a, app_b] } }
`;
    const r = plan(text);
    assert.equal(r.status, 0, r.stderr);
    const rot = parseConfig(text, { label: "dsops.yaml", dir }).envs.prod.DB.spec.rotation as VariableRotation;
    assert.equal(rot.strategy, "alternating-users", "the variable's own strategy wins");
    assert.deepEqual(rot.rollout, {
      strategy: "percentage",
      discovery: { endpoint: "https://inventory.example.com/instances", headers: { authorization: "store://aws/inventory-token" }, timeout_ms: 5000, type: "endpoint" },
      waves: [5, 100],
      monitor: { period: "2m", interval: "30s", failures: 3 },
      on_failure: "stop",
    });
  });

  it("refuses what has no equivalent, and typos, each with the reason and line:column", () => {
    const text = `version: 1
secretStores:
  vault: { type: literal, values: {} }
services:
  db:
    type: postgresql
    ssl_mode: prefer
    admin_credentials:
      username: postgres
      password: hunter2
    rotation:
      strategy: canry
      health_checks:
        checks:
          - { type: sql, querry: "SELECT 1" }
          - { type: dns_resolution, max_ms: 50 }
        custom_scripts:
          - name: e2e
            script: /scripts/e2e.sh
            environment: { DATABASE_URL: "{{.NewConnectionString}}" }
            retry: { max_attempts: 2 }
      rollback:
        automatic: false
        max_retries: 2
        on_health_check_failure: false
      metrics: { enabled: true }
  web:
    type: postgresql
    admin: "store://vault/admin"
    rotation:
      strategy: canary
      canary:
        discovery:
          type: explicit
          instances: [{ id: a }, { id: b, tags: [x] }]
        waves:
          - { percentage: 50, require_approval: true }
          - { percentage: 100 }
        persist_progress: false
      rollback: { on_helth_check_failure: true }
envs:
  prod:
    DATABASE_PASSWORD:
      from: { store: vault, key: db }
      rotation: { ttl: 30d }
`;
    const r = plan(text);
    assert.equal(r.status, 1);
    const got = problems(r.stderr);
    const unsupportedCheck = got.find((l) => l.startsWith("services.db.rotation.health_checks.checks[1].type: "));
    assert.match(unsupportedCheck ?? "", /^services\.db\.rotation\.health_checks\.checks\[1\]\.type: health check type "dns_resolution" is not supported by this version \(supported: sql, http, script[^)]*\) at dsops\.yaml:16:21$/);
    assert.deepEqual(
      got.filter((l) => l !== unsupportedCheck),
      [
        'services.db.ssl_mode: ssl_mode "prefer" has no equivalent (disable, require or verify-full): "prefer" and "allow" would fall back to plain text without a word, "verify-ca" skips the host name check at dsops.yaml:7:15',
        "services.db.admin_credentials.password: the admin password is never written in dsops.yaml: give a reference, password: {from: {store: <store>, key: <key>}} at dsops.yaml:10:17",
        'services.db.rotation.strategy: unknown strategy "canry" (did you mean "canary"?) at dsops.yaml:12:17',
        "services.db.rotation.metrics: metrics are configured once for the file: move this block to metrics.prometheus (enabled, port, path, labels) at dsops.yaml:26:7",
        'services.db.rotation.health_checks.checks[0].querry: unknown key "querry" (did you mean "query"?) at dsops.yaml:15:26',
        "services.db.rotation.health_checks.custom_scripts[0].retry: a check's own retry has no equivalent: a failed round is tried again every health_checks.interval until health_checks.failure_threshold rounds in a row failed at dsops.yaml:21:13",
        "services.db.rotation.health_checks.custom_scripts[0].environment.DATABASE_URL: templates such as {{.NewConnectionString}} are refused: a health-check script never gets the secret; it gets DSOPS_SERVICE_NAME, DSOPS_ENV, DSOPS_NEW_VERSION, DSOPS_NEW_PRINCIPAL … and logs in with what it reads itself at dsops.yaml:20:42",
        "services.db.rotation.rollback.automatic: automatic: false has no equivalent without a rollout: a failed verification and failed health checks always roll back here, so that the value stored as current keeps working at dsops.yaml:23:20",
        "services.db.rotation.rollback.on_health_check_failure: false has no equivalent: a failed verification and failed health checks always roll back here, so that the value stored as current keeps working (leave out the health checks you do not want to act on) at dsops.yaml:25:34",
        "services.db.rotation.rollback.max_retries: no equivalent: a rollback that fails stops and is finished by the next run of the secret (or dsops rotation rollback), never retried in a loop at dsops.yaml:24:9",
        'services.web.rotation.canary.discovery.instances[1].tags: "tags" is neither a setting of a postgresql target nor a label (a label is text, a number or true/false) at dsops.yaml:35:43',
        "services.web.rotation.canary.waves[0].require_approval: no approval step here: use pause_on_failure (on_failure: stop) and resume with dsops secrets rotate at dsops.yaml:37:49",
        "services.web.rotation.canary.persist_progress: progress is always kept in the rotation record (a crashed run resumes at its wave); false has no equivalent at dsops.yaml:39:9",
        'services.web.rotation.rollback.on_helth_check_failure: unknown key "on_helth_check_failure" (did you mean "on_health_check_failure"?) at dsops.yaml:40:19',
        "envs.prod.DATABASE_PASSWORD.rotation: a rotation needs its service: rotation.service, or the variable's service: (dsops's form) at dsops.yaml:45:17",
        "services.db.admin: required (string) but missing at dsops.yaml:6:5",
      ],
    );
    for (const l of got) assert.ok(!l.includes("hunter2"), "the password written in the file is not repeated");
  });

  it("refuses a setting given both ways, a second channel of a kind, a malformed instance_selector, a rollout strategy without its instances", () => {
    const text = `version: 1
secretStores:
  vault: { type: literal, values: {} }
notifications:
  slack: { webhook_url: "store://vault/slack-a" }
services:
  db:
    type: postgresql
    admin: "store://vault/admin"
    admin_credentials: { username: postgres, password: { from: { store: vault, key: pw } } }
    rotation:
      strategy: two-key
      grace_period: 1h
      overlap_duration: 2h
      notifications:
        slack: { webhook_url: { from: { store: vault, key: slack-b } } }
        teams: { url: "https://x" }
  web:
    type: postgresql
    admin_credentials: { username: { from: { store: vualt, key: u } }, password: { from: { store: vault, key: pw } } }
    rotation:
      strategy: canary
      canary:
        discovery: { type: explicit, instances: [{ id: a, role: canary }] }
        instance_selector: "role"
      rollout:
        discovery: { type: explicit, instances: [{ id: a }] }
  api:
    type: postgresql
    admin: "store://vault/admin"
    rotation: { strategy: percentage_rollout }
envs:
  prod:
    DB: { from: "store://vault/db", service: db, rotation: { user: app } }
`;
    const r = plan(text);
    assert.equal(r.status, 1);
    assert.deepEqual(problems(r.stderr), [
      'services.db.admin_credentials: "admin_credentials" and "admin" both give the admin login; keep one at dsops.yaml:10:5',
      'services.db.rotation.overlap_duration: "overlap_duration" is another name of "grace_period", which is given too; keep one at dsops.yaml:14:7',
      "services.db.rotation.notifications.slack: a slack channel with other settings than notifications.slack (or another service's): there is one slack channel per file; define it once under notifications: at dsops.yaml:16:16",
      'services.db.rotation.notifications.teams: unknown notification channel "teams" (expected one of: slack, email, pagerduty, webhook) at dsops.yaml:17:9',
      'services.web.admin_credentials.username.from: unknown store "vualt" (did you mean "vault"?) at dsops.yaml:20:44',
      'services.web.rotation.rollout: "canary" and "rollout" both describe the rollout; keep one at dsops.yaml:26:7',
      'services.web.rotation.canary.instance_selector: expected label=value[,label=value] (e.g. role=canary), not "role" at dsops.yaml:25:28',
      "services.api.rotation.strategy: strategy percentage_rollout needs the instances to roll out to: a rollout: {discovery: …} block at dsops.yaml:31:27",
      "services.web.admin: required (string) but missing at dsops.yaml:19:5",
    ]);
  });

  it("the top-level rotation: block: a typo is an error at its line:column; constraints are accepted with a warning", () => {
    const base = `version: 1
secretStores:
  vault: { type: literal, values: {} }
services:
  db: { type: postgresql, admin: "store://vault/admin" }
envs:
  prod:
    DB: { from: "store://vault/db", service: db, rotation: { user: app } }
`;
    const typo = plan(base + "rotation:\n  ttl: 30d\n  stratgy: two-key\n");
    assert.equal(typo.status, 1);
    assert.deepEqual(problems(typo.stderr), ['rotation.stratgy: unknown key "stratgy" (did you mean "strategy"?) at dsops.yaml:11:3']);
    const constraints = plan(base + "rotation:\n  strategy: two-key\n  constraints:\n    DB: { min_rotation_interval: 24h }\n");
    assert.equal(constraints.status, 0, constraints.stderr);
    assert.ok(
      constraints.stderr.includes(
        "warning: rotation.constraints: accepted and not acted on: give each variable's limits as rotation.generator (length) and its tests as health checks at dsops.yaml:11:3",
      ),
      constraints.stderr,
    );
    assert.ok(constraints.stderr.includes("strategy two-secret needs a target that can"), "two-key is two-secret, which postgresql cannot run: " + constraints.stderr);
  });

  it("rollout discovery kubernetes: passed to the rollout when it knows it, else refused naming it", () => {
    const text = `version: 1
secretStores:
  vault: { type: literal, values: {} }
services:
  api:
    type: postgresql
    admin: "store://vault/admin"
    rotation:
      strategy: percentage_rollout
      rollout:
        discovery: { type: kubernetes, namespace: prod, label_selector: "app=api" }
envs:
  prod:
    DB: { from: "store://vault/db", service: api, rotation: { user: app } }
`;
    const knows = Object.hasOwn((rolloutDiscoverySchema as unknown as { shape?: object }).shape ?? {}, "type");
    const r = plan(text);
    if (knows) assert.equal(r.status, 0, r.stderr);
    else {
      assert.equal(r.status, 1);
      assert.deepEqual(problems(r.stderr), ['services.api.rotation.rollout.discovery.type: rollout discovery type "kubernetes" is not supported by this version yet (supported: explicit, endpoint) at dsops.yaml:11:28']);
    }
  });
});
