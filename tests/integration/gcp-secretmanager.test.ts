// Local server speaking the real SecretManagerService gRPC protocol to the real client library (@google-cloud/secret-manager): no real GCP Secret Manager server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { GcpSecretManagerStore } from "../../provider/stores/gcp-secretmanager";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { storeContract } from "../support/store-contract";
import { startGcpSecretManagerServer, type GcpSecretManagerServer } from "../support/gcp-secretmanager-server";

const PROJECT = "dsops-test";
const OTHER_PROJECT = "dsops-other";
const FORBIDDEN_PROJECT = "someone-elses";

describe("gcp.secretmanager store", function () {
  this.timeout(30000);
  let srv: GcpSecretManagerServer;
  /** The real client, used to seed and inspect the server through the wire. */
  let admin: SecretManagerServiceClient;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };

  const makeStore = (extra: Record<string, unknown> = {}) =>
    new GcpSecretManagerStore(
      "gcp",
      storeSettingsSchemas["gcp.secretmanager"].parse({
        type: "gcp.secretmanager",
        project_id: PROJECT,
        endpoint: "127.0.0.1",
        port: srv.port,
        insecure: true,
        ...extra,
      }),
      ctx,
    );

  const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

  /** Create the secret (project PROJECT unless given) and add one version per value; returns the version ids. */
  async function seed(name: string, values: Array<string | Buffer>, project = PROJECT): Promise<string[]> {
    const [secret] = await admin.createSecret({ parent: `projects/${project}`, secretId: name, secret: { replication: { automatic: {} } } });
    const ids: string[] = [];
    for (const v of values) {
      const [version] = await admin.addSecretVersion({ parent: secret.name, payload: { data: typeof v === "string" ? Buffer.from(v, "utf8") : v } });
      ids.push(String(version.name).split("/").pop() as string);
    }
    return ids;
  }

  before(async () => {
    srv = await startGcpSecretManagerServer({ projects: [PROJECT, OTHER_PROJECT], locations: ["europe-west1"] });
    admin = new SecretManagerServiceClient(srv.clientOptions());
  });
  after(async () => {
    await admin?.close();
    await srv?.stop();
  });

  storeContract(
    "gcp.secretmanager",
    async () => ({
      store: makeStore(),
      seed: (key, values) => seed(key, values),
      seedBinary: async (key, value) => {
        await seed(key, [value]);
      },
      missingVersion: "999999",
    }),
  );

  describe("beyond the contract", () => {
    let store: GcpSecretManagerStore;
    before(() => {
      store = makeStore();
    });
    after(async () => {
      await store.close();
    });

    it("reads a version named in the key as name@version and name:version", async () => {
      const name = unique("forms");
      const ids = await seed(name, ["first", "second", "third"]);
      assert.deepEqual(ids, ["1", "2", "3"]);
      const at = await store.get({ key: `${name}@1` });
      assert.equal(at.value.reveal(), "first");
      assert.equal(at.versionId, "1");
      const colon = await store.get({ key: `${name}:2` });
      assert.equal(colon.value.reveal(), "second");
      assert.equal(colon.versionId, "2");
      // The reference's version wins over the key's.
      const overridden = await store.get({ key: `${name}@1`, version: "3" });
      assert.equal(overridden.value.reveal(), "third");
    });

    it("reads full resource names, in this project and in another", async () => {
      const name = unique("full");
      await seed(name, ["one", "two"]);
      assert.equal((await store.get({ key: `projects/${PROJECT}/secrets/${name}` })).value.reveal(), "two");
      const v1 = await store.get({ key: `projects/${PROJECT}/secrets/${name}/versions/1` });
      assert.equal(v1.value.reveal(), "one");
      assert.equal(v1.versionId, "1");
      const other = unique("elsewhere");
      await seed(other, ["there"], OTHER_PROJECT);
      const got = await store.get({ key: `projects/${OTHER_PROJECT}/secrets/${other}/versions/latest` });
      assert.equal(got.value.reveal(), "there");
      await assert.rejects(store.get({ key: other }), NotFoundError, "a short name is looked up in project_id only");
    });

    it("resolves latest to the actual version number, in get and describe", async () => {
      const name = unique("latest");
      await seed(name, ["a", "b"]);
      const got = await store.get({ key: `${name}@latest` });
      assert.equal(got.versionId, "2");
      assert.equal((await store.get({ key: name, version: "latest" })).versionId, "2");
      const before = srv.calls.AccessSecretVersion ?? 0;
      const info = await store.describe({ key: name });
      assert.equal(info.versionId, "2");
      assert.ok(info.updatedAt && !Number.isNaN(Date.parse(info.updatedAt)), `updatedAt ${info.updatedAt}`);
      assert.equal(info.updatedAt, new Date(Date.parse(info.updatedAt)).toISOString());
      assert.equal(srv.calls.AccessSecretVersion ?? 0, before, "describe must not access the payload");
      assert.equal((await store.describe({ key: `${name}@1` })).versionId, "1");
    });

    it("reports a disabled version as NotFoundError saying disabled, and a destroyed one as destroyed", async () => {
      const name = unique("disabled");
      await seed(name, ["old", "current"]);
      await admin.disableSecretVersion({ name: `projects/${PROJECT}/secrets/${name}/versions/2` });
      for (const k of [{ key: name }, { key: `${name}@2` }]) {
        await assert.rejects(store.get(k), (e: unknown) => {
          assert.ok(e instanceof NotFoundError, String(e));
          assert.match((e as Error).message, /disabled/);
          assert.match((e as Error).message, new RegExp(name));
          assert.match((e as Error).message, /version 2\b/);
          return true;
        });
      }
      await assert.rejects(store.describe({ key: name }), /disabled/);
      assert.equal((await store.get({ key: `${name}@1` })).value.reveal(), "old");
      await admin.destroySecretVersion({ name: `projects/${PROJECT}/secrets/${name}/versions/1` });
      await assert.rejects(store.get({ key: `${name}:1` }), (e: unknown) => e instanceof NotFoundError && /destroyed/.test((e as Error).message));
    });

    for (const [code, label] of [
      [14, "UNAVAILABLE"],
      [8, "RESOURCE_EXHAUSTED"],
      [4, "DEADLINE_EXCEEDED"],
    ] as const) {
      it(`maps ${label} to a retryable StoreError, with the client's own retries off`, async () => {
        const name = unique("flaky");
        await seed(name, ["v"]);
        const before = srv.calls.AccessSecretVersion ?? 0;
        srv.failNext(1, { code, method: "AccessSecretVersion" });
        await assert.rejects(store.get({ key: name }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !(e instanceof NotFoundError), String(e));
          assert.equal((e as StoreError).retryable, true);
          assert.match((e as Error).message, new RegExp(label));
          return true;
        });
        assert.equal(srv.calls.AccessSecretVersion - before, 1, "one call: the engine, not the client, retries");
        assert.equal((await store.get({ key: name })).value.reveal(), "v");
      });
    }

    it("maps INVALID_ARGUMENT to a StoreError that is not retryable", async () => {
      srv.failNext(1, { code: 3, method: "AccessSecretVersion", message: "Invalid resource field value in the request." });
      await assert.rejects(store.get({ key: unique("bad") }), (e: unknown) => e instanceof StoreError && (e as StoreError).retryable === false);
    });

    it("maps PERMISSION_DENIED to AuthError, in get and check", async () => {
      await assert.rejects(store.get({ key: `projects/${FORBIDDEN_PROJECT}/secrets/x` }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /store "gcp"/);
        return true;
      });
      const forbidden = makeStore({ project_id: FORBIDDEN_PROJECT });
      try {
        await assert.rejects(forbidden.check(), AuthError);
      } finally {
        await forbidden.close();
      }
      srv.failNext(1, { code: 16, method: "GetSecretVersion", message: "Request had invalid authentication credentials." });
      await assert.rejects(store.describe({ key: unique("unauth") }), AuthError);
    });

    it("maps an unreadable credentials_file (relative to the config folder) to AuthError", async () => {
      const withKey = new GcpSecretManagerStore(
        "gcp",
        storeSettingsSchemas["gcp.secretmanager"].parse({
          type: "gcp.secretmanager",
          project_id: PROJECT,
          endpoint: "127.0.0.1",
          port: srv.port,
          credentials_file: "no-such-key.json",
        }),
        { ...ctx, configDir: "/nonexistent-dsops-config" },
      );
      try {
        await assert.rejects(withKey.get({ key: "x" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /\/nonexistent-dsops-config\/no-such-key\.json/);
          return true;
        });
      } finally {
        await withKey.close();
      }
    });

    it("check lists one secret of the project", async () => {
      const before = srv.calls.ListSecrets ?? 0;
      await store.check();
      assert.equal(srv.calls.ListSecrets - before, 1);
    });

    it("rejects a payload whose checksum does not match", async () => {
      const name = unique("crc");
      await seed(name, ["intact"]);
      srv.corruptNextChecksum();
      await assert.rejects(store.get({ key: name }), (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.match((e as Error).message, /checksum/);
        return true;
      });
      assert.equal((await store.get({ key: name })).value.reveal(), "intact");
    });

    it("put creates the secret when missing, with automatic replication and a checksum", async () => {
      const name = unique("created");
      await assert.rejects(admin.getSecret({ name: `projects/${PROJECT}/secrets/${name}` }), (e: unknown) => (e as { code?: number }).code === 5);
      const first = await store.put(name, new Secret("hello"));
      assert.equal(first.versionId, "1");
      assert.ok(first.updatedAt);
      const [secret] = await admin.getSecret({ name: `projects/${PROJECT}/secrets/${name}` });
      assert.ok(secret.replication?.automatic, "automatic replication");
      const [meta] = await admin.getSecretVersion({ name: `projects/${PROJECT}/secrets/${name}/versions/1` });
      assert.equal(meta.clientSpecifiedPayloadChecksum, true);
      const second = await store.put(`projects/${PROJECT}/secrets/${name}`, new Secret("world ✓"));
      assert.equal(second.versionId, "2");
      const [access] = await admin.accessSecretVersion({ name: `projects/${PROJECT}/secrets/${name}/versions/latest` });
      assert.equal(Buffer.from(access.payload?.data as Uint8Array).toString("utf8"), "world ✓");
    });

    it("put tolerates a secret created concurrently (ALREADY_EXISTS)", async () => {
      const name = unique("race");
      await seed(name, ["v1"]);
      // The first AddSecretVersion sees no secret (as if another writer created it just after).
      srv.failNext(1, { code: 5, method: "AddSecretVersion", message: `Secret [projects/${PROJECT}/secrets/${name}] not found.` });
      const createsBefore = srv.calls.CreateSecret ?? 0;
      const v = await store.put(name, new Secret("v2"));
      assert.equal(v.versionId, "2");
      assert.equal(srv.calls.CreateSecret - createsBefore, 1);
    });

    it("refuses a version in a put key and names that are not secret ids", async () => {
      await assert.rejects(store.put(`${unique("p")}@3`, new Secret("x")), (e: unknown) => e instanceof DsopsError && !(e instanceof NotFoundError));
      await assert.rejects(store.get({ key: "a/b" }), (e: unknown) => e instanceof DsopsError && !(e instanceof StoreError));
      await assert.rejects(store.get({ key: `projects/${PROJECT}/secrets/x/versions/1@2` }), DsopsError);
    });

    it("reports a missing version by number and a missing secret by name", async () => {
      const name = unique("nover");
      await seed(name, ["v"]);
      await assert.rejects(store.get({ key: `${name}@7` }), (e: unknown) => e instanceof NotFoundError && (e as Error).message.includes(`"${name}" has no version "7"`));
      const absent = unique("absent");
      await assert.rejects(store.describe({ key: absent }), (e: unknown) => e instanceof NotFoundError && (e as Error).message.includes(`"${absent}"`));
    });
  });
  describe("location (regional secrets) and use_plaintext_names", () => {
    const LOC = "europe-west1";

    it("location: every call names projects/<p>/locations/<l>/…, a new secret has no replication, and staging works there", async () => {
      const store = makeStore({ location: LOC });
      try {
        const id = unique("regional");
        const before = srv.received.length;
        const first = await store.put(id, new Secret("regional-one"));
        assert.equal(first.versionId, "1");
        const got = await store.get({ key: id });
        assert.equal(got.value.reveal(), "regional-one");
        const names = srv.received.slice(before).map((c) => c.name ?? "");
        assert.ok(names.length >= 3, names.join("\n"));
        for (const n of names) assert.match(n, new RegExp(`^projects/${PROJECT}/locations/${LOC}(/secrets/${id}(/versions/[a-z0-9]+)?)?$`));
        const [secret] = await admin.getSecret({ name: `projects/${PROJECT}/locations/${LOC}/secrets/${id}` });
        assert.equal(secret.replication, null, "a regional secret has no replication policy");
        // The full regional name reads the same secret; a global store does not see it.
        assert.equal((await store.get({ key: `projects/${PROJECT}/locations/${LOC}/secrets/${id}/versions/1` })).value.reveal(), "regional-one");
        const pending = await store.putPending(id, new Secret("regional-two"));
        await store.promote(id, pending.versionId);
        assert.equal((await store.get({ key: id })).value.reveal(), "regional-two");
        await store.check();
        const global = makeStore();
        try {
          await assert.rejects(global.get({ key: id }), NotFoundError);
          await assert.rejects(global.get({ key: `projects/${PROJECT}/locations/${LOC}/secrets/${id}` }), (e: unknown) => {
            assert.ok(e instanceof DsopsError);
            assert.equal((e as Error).message, `store "gcp": "projects/${PROJECT}/locations/${LOC}/secrets/${id}" is a secret of location "${LOC}", but the store's location is global`);
            return true;
          });
        } finally {
          await global.close();
        }
      } finally {
        await store.close();
      }
    });

    it("location global is the default (global names)", async () => {
      const store = makeStore({ location: "global" });
      try {
        const id = unique("global");
        await seed(id, ["g"]);
        const before = srv.received.length;
        assert.equal((await store.get({ key: id })).value.reveal(), "g");
        for (const c of srv.received.slice(before)) assert.match(c.name ?? "", new RegExp(`^projects/${PROJECT}/secrets/${id}/`));
      } finally {
        await store.close();
      }
    });

    it("use_plaintext_names: false takes full resource names only; true (dsops's default) takes plain names too", async () => {
      const id = unique("plain");
      await seed(id, ["p1", "p2"]);
      const full = makeStore({ use_plaintext_names: false });
      try {
        await assert.rejects(full.get({ key: id }), (e: unknown) => {
          assert.ok(e instanceof DsopsError && !(e instanceof NotFoundError), String(e));
          assert.equal((e as Error).message, `store "gcp": "${id}" is not a full resource name, and use_plaintext_names is false`);
          assert.equal((e as DsopsError).hint, `write projects/${PROJECT}/secrets/<name>[/versions/<v>], or set use_plaintext_names: true`);
          return true;
        });
        assert.equal((await full.get({ key: `projects/${PROJECT}/secrets/${id}` })).value.reveal(), "p2");
        assert.equal((await full.get({ key: `projects/${PROJECT}/secrets/${id}/versions/1` })).value.reveal(), "p1");
      } finally {
        await full.close();
      }
      const plain = makeStore({ use_plaintext_names: true });
      try {
        assert.equal((await plain.get({ key: `${id}:1` })).value.reveal(), "p1");
      } finally {
        await plain.close();
      }
    });
  });
});
