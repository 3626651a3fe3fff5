// Local server speaking the real SecretManagerService gRPC protocol to the real client library (@google-cloud/secret-manager), behind the gcp router store: no real GCP Secret Manager server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { systemClock } from "../../provider/core/clock";
import { DsopsError, NotFoundError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { GcpStore } from "../../provider/stores/gcp";
import { splitServicePrefix } from "../../provider/stores/router";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { dsopsRun } from "../support/cli";
import { startGcpSecretManagerServer, type GcpSecretManagerServer } from "../support/gcp-secretmanager-server";
import { stagingContract } from "../support/staging-contract";
import { storeContract } from "../support/store-contract";

const PROJECT = "dsops-test";
const LOCATION = "us-east4";

describe("gcp store (dsops's gcp router)", function () {
  this.timeout(60000);
  let srv: GcpSecretManagerServer;
  let admin: SecretManagerServiceClient;
  let dir: string;
  const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

  const makeStore = (extra: Record<string, unknown> = {}) =>
    new GcpStore(
      "gcp",
      storeSettingsSchemas.gcp.parse({ type: "gcp", project_id: PROJECT, endpoint: "127.0.0.1", port: srv.port, insecure: true, ...extra }),
      { configDir: process.cwd(), clock: systemClock, env: {} },
    );

  async function seed(name: string, values: Array<string | Buffer>, location?: string): Promise<string[]> {
    const parent = location ? `projects/${PROJECT}/locations/${location}` : `projects/${PROJECT}`;
    const [secret] = await admin.createSecret({ parent, secretId: name, secret: location ? {} : { replication: { automatic: {} } } });
    const ids: string[] = [];
    for (const v of values) {
      const [version] = await admin.addSecretVersion({ parent: secret.name, payload: { data: typeof v === "string" ? Buffer.from(v, "utf8") : v } });
      ids.push(String(version.name).split("/").pop() as string);
    }
    return ids;
  }

  before(async () => {
    srv = await startGcpSecretManagerServer({ projects: [PROJECT], locations: [LOCATION] });
    admin = new SecretManagerServiceClient(srv.clientOptions());
    dir = mkdtempSync(join(tmpdir(), "dsops-gcp-router-"));
  });
  after(async () => {
    await admin?.close();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Keys without a prefix go to the default service (Secret Manager).
  storeContract("gcp (router, default service)", async () => ({
    store: makeStore(),
    seed: (key, values) => seed(key, values),
    seedBinary: async (key, value) => {
      await seed(key, [value]);
    },
    missingVersion: "999999",
  }));

  stagingContract("gcp (router, sm: keys)", async () => ({ store: makeStore(), key: (name) => `sm:${name}` }));

  describe("routing", () => {
    let store: GcpStore;
    before(() => (store = makeStore()));
    after(async () => store.close());

    it("splitServicePrefix reads <prefix>:key and <prefix>://key, and nothing else", () => {
      assert.deepEqual(splitServicePrefix("sm:db", ["secretmanager", "sm"]), { prefix: "sm", key: "db" });
      assert.deepEqual(splitServicePrefix("sm://db", ["sm"]), { prefix: "sm", key: "db" });
      assert.deepEqual(splitServicePrefix("secretmanager:db:3", ["secretmanager", "sm"]), { prefix: "secretmanager", key: "db:3" });
      assert.equal(splitServicePrefix("smx:db", ["sm"]), undefined);
      assert.equal(splitServicePrefix("db", ["sm"]), undefined);
    });

    it("sm:, secretmanager:, secrets:, sm://, secrets/<name>, full names, name:version and name@version all read Secret Manager", async () => {
      const id = unique("routed");
      await seed(id, ["one", "two"]);
      const cases: Array<[string, string]> = [
        [`sm:${id}`, "two"],
        [`secretmanager:${id}`, "two"],
        [`secrets:${id}`, "two"],
        [`sm://${id}`, "two"],
        [`secrets/${id}`, "two"],
        [id, "two"],
        [`${id}:1`, "one"],
        [`${id}@1`, "one"],
        [`sm:${id}:1`, "one"],
        [`projects/${PROJECT}/secrets/${id}/versions/1`, "one"],
        [`sm:projects/${PROJECT}/secrets/${id}`, "two"],
      ];
      for (const [key, want] of cases) assert.equal((await store.get({ key })).value.reveal(), want, key);
      assert.equal((await store.describe({ key: `sm:${id}` })).versionId, "2");
      const w = await store.put(`secretmanager:${id}`, new Secret("three"));
      assert.equal(w.versionId, "3");
      assert.equal((await admin.accessSecretVersion({ name: `projects/${PROJECT}/secrets/${id}/versions/latest` }))[0].payload?.data?.toString(), "three");
    });

    it("a missing secret behind a prefix is NotFoundError naming the secret", async () => {
      const id = unique("absent");
      await assert.rejects(store.get({ key: `sm:${id}` }), (e: unknown) => e instanceof NotFoundError && (e as Error).message === `store "gcp": secret "${id}" not found in project "${PROJECT}" (or it has no versions)`);
    });

    it("refuses Cloud KMS and Runtime Configurator keys, and an empty key after a prefix, with the reason", async () => {
      const kms = "Cloud KMS keys never leave KMS, so there is no secret value to read (KMS encrypts, decrypts and signs data it is given)";
      const rc = "Runtime Configurator is a beta API without an official Node.js client library; keep such values in Secret Manager";
      const cases: Array<[string, string]> = [
        ["kms:ring/key", `store "gcp": "kms:ring/key" is a Cloud KMS key, which the gcp store does not read: ${kms}`],
        ["kms://ring/key", `store "gcp": "kms://ring/key" is a Cloud KMS key, which the gcp store does not read: ${kms}`],
        ["keys/app-ring/data-key", `store "gcp": "keys/app-ring/data-key" is a Cloud KMS key, which the gcp store does not read: ${kms}`],
        ["projects/p/locations/global/keyRings/r/cryptoKeys/k", `store "gcp": "projects/p/locations/global/keyRings/r/cryptoKeys/k" is a Cloud KMS key, which the gcp store does not read: ${kms}`],
        ["config:app/flags", `store "gcp": "config:app/flags" is a Runtime Configurator key, which the gcp store does not read: ${rc}`],
        ["config/app/flags", `store "gcp": "config/app/flags" is a Runtime Configurator key, which the gcp store does not read: ${rc}`],
        ["sm:", `store "gcp": "sm:" names no secret after "sm:"`],
      ];
      const before = srv.received.length;
      for (const [key, message] of cases) {
        await assert.rejects(store.get({ key }), (e: unknown) => {
          assert.ok(e instanceof DsopsError, String(e));
          assert.equal((e as Error).message, message);
          return true;
        });
      }
      await assert.rejects(store.put("kms:ring/key", new Secret("x")), /is a Cloud KMS key/);
      await assert.rejects(store.putPending("config/app/x", new Secret("x")), /is a Runtime Configurator key/);
      assert.equal(srv.received.length, before, "nothing was sent");
    });

    it("settings under secretmanager: apply to Secret Manager (location, use_plaintext_names) and win over the same ones beside them", async () => {
      const id = unique("nested");
      await seed(id, ["regional"], LOCATION);
      const regional = makeStore({ location: "global", secretmanager: { location: LOCATION } });
      try {
        const before = srv.received.length;
        assert.equal((await regional.get({ key: `sm:${id}` })).value.reveal(), "regional");
        for (const c of srv.received.slice(before)) assert.match(c.name ?? "", new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/secrets/${id}/`));
        await regional.check();
      } finally {
        await regional.close();
      }
      const full = makeStore({ secretmanager: { use_plaintext_names: false } });
      try {
        await assert.rejects(full.get({ key: `sm:${id}` }), /is not a full resource name, and use_plaintext_names is false/);
      } finally {
        await full.close();
      }
    });

    it("default_service: secretmanager (or its aliases); other services are refused by the settings with the reason", () => {
      assert.equal(storeSettingsSchemas.gcp.parse({ type: "gcp", project_id: "p" }).default_service, "secretmanager");
      assert.ok(storeSettingsSchemas.gcp.safeParse({ type: "gcp", project_id: "p", default_service: "sm" }).success);
      const r = storeSettingsSchemas.gcp.safeParse({ type: "gcp", project_id: "p", default_service: "runtimeconfig" });
      assert.ok(!r.success);
      assert.deepEqual(
        r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
        ["default_service: Runtime Configurator is not supported by the gcp store: Runtime Configurator is a beta API without an official Node.js client library; keep such values in Secret Manager (supported: secretmanager)"],
      );
      const unknown = storeSettingsSchemas.gcp.safeParse({ type: "gcp", project_id: "p", default_service: "bigquery" });
      assert.ok(!unknown.success);
      assert.equal(unknown.error.issues[0].message, 'unknown GCP service "bigquery" (supported: secretmanager)');
      const nested = storeSettingsSchemas.gcp.safeParse({ type: "gcp", project_id: "p", secretmanager: { project_id: "q" } });
      assert.ok(!nested.success, "secretmanager: takes Secret Manager's own settings only");
    });
  });

  describe("through the CLI", () => {
    const yaml = (envs: string) =>
      `version: 1\nsecretStores:\n  gcp:\n    type: gcp\n    project_id: ${PROJECT}\n    endpoint: 127.0.0.1\n    port: ${srv.port}\n    insecure: true\n    default_service: secretmanager\nenvs:\n  prod:\n${envs}`;

    it("the gcp:sm:… shorthand and its siblings, as dsops's gcp-unified example writes them", async () => {
      const id = unique("shorthand");
      await seed(id, ['{"host":"db.internal","port":5432}', '{"host":"db2.internal","port":5432}']);
      writeFileSync(
        join(dir, "dsops.yaml"),
        yaml(
          `    A: { from: "gcp:sm:${id}#.host" }\n    B: { from: "gcp:secretmanager:${id}:1#host" }\n    C: { from: "gcp:secrets:${id}#port" }\n    D: { from: "gcp:${id}@1#.host" }\n    E: { from: "gcp:projects/${PROJECT}/secrets/${id}/versions/latest#host" }\n`,
        ),
      );
      const plan = await dsopsRun(["plan", "--env", "prod"], { cwd: dir });
      assert.equal(plan.status, 0, plan.stderr);
      const want: Record<string, string> = { A: "db2.internal", B: "db.internal", C: "5432", D: "db.internal", E: "db2.internal" };
      for (const [v, expected] of Object.entries(want)) {
        const r = await dsopsRun(["get", "--env", "prod", "--var", v], { cwd: dir });
        assert.equal(r.status, 0, `${v}: ${r.stderr}`);
        assert.equal(r.stdout.trim(), expected, v);
      }
    });

    it("a KMS key in the shorthand fails with the reason (exit 1)", async () => {
      writeFileSync(join(dir, "dsops.yaml"), yaml(`    K: { from: "gcp:kms:ring/key" }\n`));
      const r = await dsopsRun(["get", "--env", "prod", "--var", "K"], { cwd: dir });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /store "gcp": "kms:ring\/key" is a Cloud KMS key, which the gcp store does not read: Cloud KMS keys never leave KMS/);
    });

    it("doctor checks it, providers lists it, login says how it signs in", async () => {
      writeFileSync(join(dir, "dsops.yaml"), yaml(`    A: { from: "gcp:sm:x" }\n`));
      const doctor = await dsopsRun(["doctor", "--json"], { cwd: dir });
      assert.equal(doctor.status, 0, doctor.stderr);
      const d = JSON.parse(doctor.stdout) as { ok: boolean; stores: Array<{ store: string; type: string; status: string }> };
      assert.deepEqual(d.stores.map((s) => [s.store, s.type, s.status]), [["gcp", "gcp", "ok"]]);
      const providers = await dsopsRun(["providers"], { cwd: dir });
      assert.equal(providers.status, 0, providers.stderr);
      assert.match(providers.stdout, /^gcp +yes +yes +- +yes +yes +check +dsops's gcp router/m);
      assert.doesNotMatch(providers.stdout, /not supported yet: .*\bgcp\b(?!\.)/);
      const login = await dsopsRun(["login", "--list", "--json"], { cwd: dir });
      assert.equal(login.status, 0, login.stderr);
      assert.deepEqual(JSON.parse(login.stdout), [{ store: "gcp", type: "gcp", login: "none", how: `talks plain gRPC to 127.0.0.1; no credentials are sent` }]);
      // A doctor of an unreachable project is a failure (exit 1), not a crash.
      writeFileSync(join(dir, "dsops.yaml"), yaml(`    A: { from: "gcp:sm:x" }\n`).replace(`project_id: ${PROJECT}`, "project_id: someone-elses"));
      const denied = await dsopsRun(["doctor"], { cwd: dir });
      assert.equal(denied.status, 1, denied.stderr + denied.stdout);
      assert.match(denied.stdout + denied.stderr, /PERMISSION_DENIED/);
    });
  });
});
