import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileHistory } from "../../provider/rotation/history/file";
import { foldReads, type BreakGlassRecord, type GovernanceRecord } from "../../provider/rotation/governance";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun } from "../support/cli";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * A SecretReference to the secret of a sealed variable (`access: breakglass` in the stack's
 * dsops.yaml), through the real Pulumi CLI (file backend) and the embedded file store: without
 * a break-glass grant `up` fails naming the variable, the rule and the command to open one, and
 * nothing is in the state; with a grant on another env's variable it still fails; under a grant
 * on that variable `up` reads it (a Pulumi secret) and the read is recorded on the grant. No
 * rotation runs here (the grant is only opened), so the service names no live server.
 */
describe("Pulumi end to end: a SecretReference to a sealed value needs a break-glass grant", function () {
  this.timeout(300_000);
  let project: PulumiProject | undefined;
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const T0 = "2026-11-02T12:00:00Z";
  const value = `Sealed-${randomBytes(12).toString("base64url")}`;
  const other = `Other-${randomBytes(12).toString("base64url")}`;
  const env = (at: string) => ({ DSOPS_CLOCK: at, DSOPS_USER: "pipeline" });
  const at = (h: number) => new Date(Date.parse(T0) + h * 3_600_000).toISOString();
  const dsops = async (args: string[], when: string, user = "dana") => {
    const p = project as PulumiProject;
    const r = await dsopsRun(args, { cwd: p.dir, env: { DSOPS_CLOCK: when, DSOPS_USER: user, DSOPS_FILE_KEY: FILE_KEY } });
    p.transcript.push(r.stdout, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    return r;
  };

  before(async () => {
    pulumiBinDir();
    project = new PulumiProject(
      "dsops-sealed-ref",
      `"use strict";
const dsops = require("@dsops/pulumi");
const ref = new dsops.SecretReference("root", { ref: "store://local/db/root" });
exports.length = ref.value.apply((v) => v.length);
`,
      { DSOPS_FILE_KEY: FILE_KEY },
    );
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  app-db: { type: postgresql, host: 127.0.0.1, port: 1, database: postgres, admin: "store://local/pg/admin" }\n` +
        `envs:\n  prod:\n    DB_ROOT: { from: store://local/db/root, access: breakglass, rotation: { service: app-db, user: root, ttl: 90d } }\n` +
        `  staging:\n    DB_ROOT: { from: store://local/db/staging-root, access: breakglass, rotation: { service: app-db, user: root, ttl: 90d } }\n`,
    );
    const store = new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.parse(T0)), env: { DSOPS_FILE_KEY: FILE_KEY } });
    await store.put("db/root", new Secret(value));
    await store.put("db/staging-root", new Secret(other));
    await store.put("pg/admin", new Secret(JSON.stringify({ username: "admin", password: other })));
    project.ok(["stack", "init", "sealed"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
  });

  after(() => {
    try {
      project?.assertNoLeak([value, other]);
    } finally {
      project?.cleanup();
    }
  });

  it("refused without a grant (and with a grant on another env), read under one and the read recorded", async () => {
    const p = project as PulumiProject;
    const refused = p.run(["up", "--yes", "--skip-preview"], env(at(0)));
    assert.notEqual(refused.status, 0);
    const text = refused.stdout + refused.stderr;
    assert.match(text, /prod\/DB_ROOT is sealed \(envs\.prod\.DB_ROOT\.access: breakglass\): no break-glass grant was opened for it/);
    assert.match(text, /dsops breakglass open --secret prod\/DB_ROOT --reason/);
    await dsops(["breakglass", "open", "--secret", "staging/DB_ROOT", "--reason", "INC-12 staging", "--ttl", "1h"], at(0.1));
    const still = p.run(["up", "--yes", "--skip-preview"], env(at(0.2)));
    assert.notEqual(still.status, 0);
    assert.match(still.stdout + still.stderr, /prod\/DB_ROOT is sealed/);

    await dsops(["breakglass", "open", "--secret", "prod/DB_ROOT", "--reason", "INC-12 prod", "--ttl", "1h"], at(0.3));
    p.ok(["up", "--yes", "--skip-preview"], env(at(0.4)));
    assert.equal(p.outputs().length, "[secret]"); // the value stays a Pulumi secret
    assert.equal(p.secretOutputs().length, value.length);
    // Each read is a record of its own, folded back into its grant (as listGovernance does).
    const stored = (await new FileHistory(join(p.dir, "dsops-rotation-history.jsonl"), new ManualClock(0)).list({ governance: true })) as unknown as GovernanceRecord[];
    const byId = new Map(stored.map((r) => [r.id, r]));
    foldReads(byId);
    const grants = [...byId.values()] as BreakGlassRecord[];
    const prod = grants.find((g) => g.env === "prod") as BreakGlassRecord;
    assert.deepEqual(prod.reads, [{ by: "pipeline", at: at(0.4), command: "pulumi SecretReference create" }]);
    assert.equal(grants.find((g) => g.env === "staging")?.reads, undefined);
    p.ok(["stack", "export"]);
  });
});
