import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * RotationPolicy `after` with the real Pulumi CLI (file backend), a real PostgreSQL 15 and the
 * embedded file store: the prod policy names the staging RotationPolicy resource as its
 * predecessor; time moves with DSOPS_CLOCK.
 */
describe("Pulumi end to end: RotationPolicy after (multi-environment order) on PostgreSQL", function () {
  this.timeout(300000);
  let pg: RunningPostgres | undefined;
  let project: PulumiProject | undefined;
  const FILE_KEY = `e2e-after-${randomBytes(6).toString("hex")}`;
  const values: string[] = [];
  const T0 = "2026-11-02T12:00:00Z";
  const store = () => new FileStore("local", { type: "file", path: join((project as PulumiProject).dir, "secrets.store") }, { configDir: (project as PulumiProject).dir, clock: new ManualClock(Date.parse(T0)), env: { DSOPS_FILE_KEY: FILE_KEY } });
  const current = async (key: string) => {
    const v = (await store().get({ key, version: "current" })).value.reveal();
    values.push(v);
    return v;
  };

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    project = new PulumiProject(
      "dsops-after",
      `"use strict";
const dsops = require("@dsops/pulumi");
const staging = new dsops.RotationPolicy("db-staging", { secret: "store://local/stg/app", target: "app-db", strategy: "single-user", user: "app_stg", schedule: { every: "30d" } });
const prod = new dsops.RotationPolicy("db-prod", {
  secret: "store://local/prd/app", target: "app-db", strategy: "single-user", user: "app_prd", schedule: { every: "30d" },
  after: { policy: staging, stage: "staging", soak: "1h" },
});
exports.stagingStatus = staging.status;
exports.prodStatus = prod.status;
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    project.write("dsops.yaml", `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }\n`);
    try {
      await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
      values.push(pg.adminPassword);
      for (const s of ["stg", "prd"]) {
        const pw = `Pw-${s}-${randomBytes(12).toString("base64url")}`;
        values.push(pw);
        await admin.query(`CREATE ROLE ${escapeIdentifier(`app_${s}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
        await store().put(`${s}/app`, new Secret(pw));
      }
    } finally {
      await admin.end();
    }
    project.ok(["stack", "init", "after"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
  });
  after(async () => {
    await pg?.stop();
    project?.cleanup();
  });

  it("prod waits for staging (preview warns, up leaves it), then rotates once staging's rotation has soaked 1h", async () => {
    const p = project as PulumiProject;
    p.ok(["up", "--yes", "--skip-preview"], { DSOPS_CLOCK: T0 });
    const oldPrd = await current("prd/app");
    const oldStg = await current("stg/app");
    // 31 days later both are due: staging rotates, prod waits for it.
    const day31 = "2026-12-03T12:00:00Z";
    const up1 = p.ok(["up", "--yes"], { DSOPS_CLOCK: day31 });
    assert.match(up1.stdout + up1.stderr, /waits for its predecessor store:\/\/local\/stg\/app \(stage staging\): no successful rotation of it yet/);
    assert.notEqual(await current("stg/app"), oldStg, "staging rotated");
    assert.equal(await current("prd/app"), oldPrd, "prod not rotated");
    // Within the soak: nothing for prod.
    const pre = p.ok(["preview", "--json"], { DSOPS_CLOCK: "2026-12-03T12:30:00Z" });
    assert.match(pre.stdout, /waits for its predecessor store:\/\/local\/stg\/app \(stage staging\): rotated rot-\S+ at 2026-12-03T12:00:00.000Z, soaking until 2026-12-03T13:00:00.000Z/);
    // After the soak: prod rotates.
    p.ok(["up", "--yes", "--skip-preview"], { DSOPS_CLOCK: "2026-12-03T13:01:00Z" });
    const now = await current("prd/app");
    assert.notEqual(now, oldPrd);
    assert.equal(await (pg as RunningPostgres).canLogin("app_prd", now), true);
    assert.equal(p.outputs().prodStatus, "rotated");
    p.assertNoLeak(values);
  });
  it("two policies that wait for each other (store:// references, A → B → A): pulumi preview fails naming the whole cycle; nothing rotates", async () => {
    const p = project as PulumiProject;
    const before = { stg: await current("stg/app"), prd: await current("prd/app") };
    p.write(
      "index.js",
      `"use strict";
const dsops = require("@dsops/pulumi");
new dsops.RotationPolicy("cy-a", { secret: "store://local/stg/app", target: "app-db", strategy: "single-user", user: "app_stg", schedule: { every: "30d" }, after: { policy: "store://local/prd/app", stage: "prod" } });
new dsops.RotationPolicy("cy-b", { secret: "store://local/prd/app", target: "app-db", strategy: "single-user", user: "app_prd", schedule: { every: "30d" }, after: { policy: "store://local/stg/app", stage: "staging" } });
`,
    );
    p.ok(["stack", "init", "cycle"]);
    p.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    const r = p.run(["preview"], { DSOPS_CLOCK: "2027-02-01T00:00:00Z" });
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    // Pulumi checks the two resources in either order: the one checked second closes the cycle and is refused.
    assert.match(r.stdout + r.stderr, /RotationPolicy resource .cy-[ab].: property after\.policy value .* has a problem: the policies wait for each other in a cycle: store:\/\/local\/(prd|stg)\/app \(policy \S+\) → store:\/\/local\/(stg|prd)\/app \(policy \S+\) → store:\/\/local\/(prd|stg)\/app \(→: waits for\); none of them would ever rotate/);
    const up = p.run(["up", "--yes", "--skip-preview"], { DSOPS_CLOCK: "2027-02-01T00:00:00Z" });
    assert.notEqual(up.status, 0);
    assert.equal(await current("stg/app"), before.stg);
    assert.equal(await current("prd/app"), before.prd);
    p.assertNoLeak(values);
  });
});
