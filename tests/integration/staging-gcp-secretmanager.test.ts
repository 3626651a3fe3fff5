// Local server speaking the real SecretManagerService gRPC protocol to the real client library (@google-cloud/secret-manager): no real GCP Secret Manager server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { systemClock } from "../../provider/core/clock";
import { NotFoundError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { GcpSecretManagerStore } from "../../provider/stores/gcp-secretmanager";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { startGcpSecretManagerServer, type GcpSecretManagerServer } from "../support/gcp-secretmanager-server";
import { stagingContract } from "../support/staging-contract";

const PROJECT = "dsops-test";

function val(tag: string): string {
  return `${tag}-${randomBytes(6).toString("hex")}`;
}

describe("gcp.secretmanager staging (local gRPC server)", function () {
  this.timeout(60000);
  let srv: GcpSecretManagerServer;
  let admin: SecretManagerServiceClient;
  const makeStore = () =>
    new GcpSecretManagerStore(
      "gcp",
      storeSettingsSchemas["gcp.secretmanager"].parse({ type: "gcp.secretmanager", project_id: PROJECT, endpoint: "127.0.0.1", port: srv.port, insecure: true }),
      { configDir: process.cwd(), clock: systemClock, env: {} },
    );
  const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;
  const secretName = (id: string) => `projects/${PROJECT}/secrets/${id}`;
  const aliases = async (id: string) => {
    const [s] = await admin.getSecret({ name: secretName(id) });
    return Object.fromEntries(Object.entries(s.versionAliases ?? {}).map(([a, n]) => [a, String(n)]));
  };

  before(async () => {
    srv = await startGcpSecretManagerServer({ projects: [PROJECT] });
    admin = new SecretManagerServiceClient(srv.clientOptions());
  });
  after(async () => {
    await admin?.close();
    await srv?.stop();
  });

  // dsops readers (versions/current, else versions/latest) are the plain readers here: an
  // access of versions/latest outside dsops reads the pending version during a rotation
  // (documented on the store).
  stagingContract("gcp.secretmanager", async () => ({ store: makeStore() }));

  describe("Secret Manager specifics", () => {
    let store: GcpSecretManagerStore;
    before(() => (store = makeStore()));
    after(async () => store.close());

    it("keeps the stages as version aliases; current only while it is not the latest version", async () => {
      const id = unique("aliases");
      const a = await store.put(id, new Secret(val("a")));
      const p = await store.putPending(id, new Secret(val("b")));
      assert.deepEqual(await aliases(id), { current: a.versionId, pending: p.versionId });
      // A reader outside dsops accessing versions/latest gets the pending version.
      const [raw] = await admin.accessSecretVersion({ name: `${secretName(id)}/versions/latest` });
      assert.equal(String(raw.name).split("/").pop(), p.versionId);
      // The alias reads by name through the API.
      const [byAlias] = await admin.accessSecretVersion({ name: `${secretName(id)}/versions/current` });
      assert.equal(String(byAlias.name).split("/").pop(), a.versionId);
      await store.promote(id, p.versionId);
      assert.deepEqual(await aliases(id), { previous: a.versionId });
      await store.promote(id, a.versionId); // rollback
      assert.deepEqual(await aliases(id), { current: a.versionId, previous: p.versionId });
      assert.equal((await store.get({ key: id, version: "latest" })).versionId, a.versionId, "latest follows current");
      assert.equal((await store.describe({ key: id })).versionId, a.versionId);
    });

    it("a discarded pending version is disabled; a replaced one too", async () => {
      const id = unique("discard");
      const a = await store.put(id, new Secret(val("a")));
      const p = await store.putPending(id, new Secret(val("b")));
      const q = await store.putPending(id, new Secret(val("c")));
      const [pv] = await admin.getSecretVersion({ name: `${secretName(id)}/versions/${p.versionId}` });
      assert.equal(pv.state, "DISABLED");
      await store.discardPending(id, q.versionId);
      const [qv] = await admin.getSecretVersion({ name: `${secretName(id)}/versions/${q.versionId}` });
      assert.equal(qv.state, "DISABLED");
      assert.deepEqual(await store.stagesOf(id), { current: a.versionId });
      assert.equal((await store.get({ key: id })).versionId, a.versionId);
    });

    it("a put on a staged secret makes the new version current and the old current previous", async () => {
      const id = unique("put");
      const a = await store.put(id, new Secret(val("a")));
      const p = await store.putPending(id, new Secret(val("b")));
      await store.promote(id, p.versionId);
      await store.promote(id, a.versionId);
      const c = await store.put(id, new Secret(val("c")));
      assert.deepEqual(await store.stagesOf(id), { current: c.versionId, previous: a.versionId });
      assert.equal((await store.get({ key: id })).versionId, c.versionId);
    });

    it("a discarded first rotation leaves no current version", async () => {
      const id = unique("first");
      const p = await store.putPending(id, new Secret(val("b")));
      await store.discardPending(id);
      assert.deepEqual(await store.stagesOf(id), {});
      await assert.rejects(store.get({ key: id, version: "current" }), NotFoundError);
      await assert.rejects(store.get({ key: id }), NotFoundError);
      assert.ok(p.versionId);
    });

    it("the local server refuses aliases to missing versions and reserved names, like the real service", async () => {
      const id = unique("bad-alias");
      await store.put(id, new Secret(val("a")));
      const bad: Array<Record<string, number>> = [{ current: 9 }, { latest: 1 }, { "1x": 1 }];
      for (const versionAliases of bad) {
        await assert.rejects(admin.updateSecret({ secret: { name: secretName(id), versionAliases }, updateMask: { paths: ["version_aliases"] } }), /INVALID_ARGUMENT/);
      }
    });
  });
});
