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
 * RotationPolicy next to other secrets of the same store, and a rotation that failed halfway:
 * the real Pulumi CLI (file backend), a real PostgreSQL 15 and the embedded file store, whose
 * version ids are small integers per secret (1, 2, 3…).
 */
describe("Pulumi end to end: rotations beside other secrets, and recovery from a failed rollback", function () {
  this.timeout(600000);
  let pg: RunningPostgres;
  let admin: Client;
  const projects: PulumiProject[] = [];
  const values = new Set<string>();
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const pw = (tag: string) => `Pw-${tag}-${randomBytes(12).toString("base64url")}`;

  const canLogin = (user: string, password: string) => pg.canLogin(user, password);

  async function role(name: string): Promise<string> {
    const password = pw(name);
    values.add(password);
    await admin.query(`CREATE ROLE ${escapeIdentifier(name)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    return password;
  }

  function project(name: string, program: string): { project: PulumiProject; store: () => FileStore; stateOf: (r: string) => Record<string, unknown> } {
    const p = new PulumiProject(`dsops-${name}`, program, { DSOPS_FILE_KEY: FILE_KEY });
    projects.push(p);
    p.write("dsops.yaml", `secretStores:\n  local: { type: file, path: ./secrets.store }\n`);
    const store = () => new FileStore("local", { type: "file", path: join(p.dir, "secrets.store") }, { configDir: p.dir, clock: new ManualClock(Date.now()), env: { DSOPS_FILE_KEY: FILE_KEY } });
    const stateOf = (resource: string): Record<string, unknown> => {
      const state = JSON.parse(p.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; outputs: Record<string, unknown> }> } };
      const r = state.deployment.resources.find((x) => x.urn.endsWith(`::${resource}`));
      assert.ok(r, `no resource ${resource} in state`);
      return r.outputs;
    };
    return { project: p, store, stateOf };
  }

  const target = (user: string, adminKey = "pg/admin") =>
    `{ type: "postgresql", host: "127.0.0.1", port: ${pg.port}, database: "postgres", admin: "store://local/${adminKey}", user: "${user}" }`;

  before(async () => {
    pulumiBinDir();
    pg = await startPostgres();
    values.add(pg.adminPassword);
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    for (const p of projects) p.cleanup();
  });

  it("a rotation of one secret does not hide a change of another secret of the same store (same version number)", async () => {
    const { project: p, store } = project(
      "beside",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const rotated = new dsops.SecretReference("rotated", { ref: "store://local/app/rotated" });
const other = new dsops.SecretReference("other", { ref: "store://local/app/other" });
new dsops.RotationPolicy("policy", {
  secret: rotated, target: ${target("beside")}, strategy: "single-user",
  schedule: { every: "3650d" }, triggers: { n: cfg.get("trigger") || "0" },
});
// The Output form of getSecret, with an argument known only once "other" exists.
exports.otherViaFunction = dsops.getSecretOutput({ store: "local", key: other.id.apply(() => "app/other") }).value;
`,
    );
    const first = await role("beside");
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await store().put("app/rotated", new Secret(first));
    const other1 = pw("other1");
    values.add(other1);
    await store().put("app/other", new Secret(other1));
    p.ok(["stack", "init", "beside"]);
    p.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    p.ok(["up", "--yes", "--skip-preview"]);
    assert.equal(p.secretOutputs().otherViaFunction, other1);

    p.ok(["config", "set", "trigger", "1"]);
    p.ok(["up", "--yes", "--skip-preview"]);
    const rotated = await store().get({ key: "app/rotated" });
    values.add(rotated.value.reveal());
    assert.equal(rotated.versionId, "2", "the policy rotated app/rotated to its version 2");
    assert.ok(await canLogin("beside", rotated.value.reveal()));
    assert.deepEqual(p.previewSummary(), { same: 4 }, "the policy's own rotation is not drift");

    const other2 = pw("other2");
    values.add(other2);
    assert.equal((await store().put("app/other", new Secret(other2))).versionId, "2", "app/other's new version has the same number as the rotated one");
    const preview = JSON.parse(p.ok(["preview", "--json"]).stdout) as { steps: Array<{ op: string; urn: string }>; changeSummary: Record<string, number> };
    assert.deepEqual(
      preview.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`),
      ["update other"],
      "the changed secret's SecretReference shows as an update",
    );
    p.ok(["up", "--yes", "--skip-preview"]);
    assert.equal(p.secretOutputs().otherViaFunction, other2);
    assert.deepEqual(p.previewSummary(), { same: 4 });
    p.assertNoLeak([...values]);
  });

  it("after a rotation whose rollback could not finish (wrong admin password), the first up after the fix rotates", async () => {
    const { project: p, store, stateOf } = project(
      "recover",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const policy = new dsops.RotationPolicy("policy", {
  secret: "store://local/app/recover", target: ${target("recover")}, strategy: "single-user",
  schedule: { every: "3650d" }, triggers: { n: cfg.get("trigger") || "0" },
});
exports.status = policy.status;
exports.lastResult = policy.lastResult;
`,
    );
    const original = await role("recover");
    const wrong = pw("wrong-admin");
    values.add(wrong);
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: wrong })));
    await store().put("app/recover", new Secret(original));
    p.ok(["stack", "init", "recover"]);
    p.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    p.ok(["up", "--yes", "--skip-preview"]);
    const before = await store().get({ key: "app/recover" });

    p.ok(["config", "set", "trigger", "1"]);
    const failed = p.run(["up", "--yes", "--skip-preview"]);
    assert.notEqual(failed.status, 0, "the rotation fails: the admin login is refused");
    assert.match(failed.stdout + failed.stderr, /RotationPolicy store:\/\/local\/app\/recover: .*admin login as "postgres" failed/);
    assert.equal((await store().get({ key: "app/recover" })).versionId, before.versionId, "the stored current version is unchanged");
    assert.ok(await canLogin("recover", original), "and it still works");

    // The cause is fixed; the very next up rotates.
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    p.ok(["up", "--yes", "--skip-preview"]);
    const after = await store().get({ key: "app/recover" });
    values.add(after.value.reveal());
    assert.notEqual(after.versionId, before.versionId, "rotated in the first up after the fix");
    assert.ok(await canLogin("recover", after.value.reveal()), "the new password works");
    assert.ok(!(await canLogin("recover", original)), "the old one does not");
    const out = p.outputs();
    assert.equal(out.status, "rotated");
    assert.match(String(out.lastResult), /^rotated rot-[^ ]+ \(triggers changed\): version \d+ → \d+; first finished the rollback of rot-[^ ]+, which failed earlier \(.*admin login/);
    assert.equal(stateOf("policy").currentVersionId, after.versionId);
    assert.deepEqual(p.previewSummary(), { same: 2 });
    p.assertNoLeak([...values]);
  });
});
