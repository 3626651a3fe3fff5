import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { systemClock } from "../../provider/core/clock";
import { NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import type { StoreSettings } from "../../provider/stores/settings";
import { VaultStore } from "../../provider/stores/vault";
import { startOpenBao, vaultApi, type OpenBao } from "../support/openbao";
import { stagingContract } from "../support/staging-contract";

type VaultSettings = Extract<StoreSettings, { type: "vault" }>;

function makeStore(bao: OpenBao, extra: Partial<VaultSettings> = {}): VaultStore {
  return new VaultStore(
    "vault",
    { type: "vault", address: bao.address, auth_method: "token", token: bao.rootToken, approle_mount: "approle", ...extra },
    { configDir: tmpdir(), clock: systemClock, env: {} },
  );
}

function uid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

function val(tag: string): string {
  return `${tag}-${randomBytes(6).toString("hex")}`;
}

describe("vault staging (OpenBao dev server)", function () {
  this.timeout(60000);
  let bao: OpenBao;
  before(async () => {
    bao = await startOpenBao();
    await vaultApi(bao, "POST", "sys/mounts/kv1", { type: "kv", options: { version: "1" } });
  });
  after(async () => {
    await bao?.stop();
  });

  // dsops readers (a read without a version) follow dsops_current; a raw KV read of "latest"
  // would see the pending version, which is the documented behaviour for readers outside dsops.
  stagingContract("vault KV v2", async () => ({
    store: makeStore(bao),
    key: (name) => `secret/staging/${name}`,
    missingVersion: "999",
  }));

  describe("KV v2 specifics", () => {
    let store: VaultStore;
    before(() => (store = makeStore(bao)));
    after(async () => store.close());

    it("keeps the stages in custom_metadata (other fields kept) and never renumbers a version", async () => {
      const p = `staging/${uid("meta")}`;
      const key = `secret/${p}`;
      const a = await store.put(key, new Secret(val("a")));
      await vaultApi(bao, "POST", `secret/metadata/${p}`, { custom_metadata: { owner: "team-x" } });
      const pend = await store.putPending(key, new Secret(val("b")));
      let md = (await vaultApi(bao, "GET", `secret/metadata/${p}`)).data;
      assert.deepEqual(md.custom_metadata, { owner: "team-x", dsops_current: a.versionId, dsops_pending: pend.versionId });
      assert.equal(String(md.current_version), pend.versionId, "the pending version is the latest KV version");
      // A reader outside dsops reading the latest version sees the pending value (documented).
      const raw = await vaultApi(bao, "GET", `secret/data/${p}`);
      assert.equal(String(raw.data.metadata.version), pend.versionId);
      await store.promote(key, pend.versionId);
      md = (await vaultApi(bao, "GET", `secret/metadata/${p}`)).data;
      // Current is the latest again: no pin, so plain readers and dsops agree.
      assert.deepEqual(md.custom_metadata, { owner: "team-x", dsops_previous: a.versionId });
      assert.equal((await store.get({ key })).versionId, pend.versionId);
    });

    it("a rollback pins current to an older version, and a later put makes the new version current", async () => {
      const key = `secret/staging/${uid("pin")}`;
      const a = await store.put(key, new Secret(val("a")));
      const b = await store.putPending(key, new Secret(val("b")));
      await store.promote(key, b.versionId);
      await store.promote(key, a.versionId); // rollback
      assert.equal((await store.get({ key })).versionId, a.versionId);
      assert.equal((await store.describe({ key })).versionId, a.versionId);
      const c = await store.put(key, new Secret(val("c")));
      assert.deepEqual(await store.stagesOf(key), { current: c.versionId, previous: a.versionId });
      assert.equal((await store.get({ key })).versionId, c.versionId);
    });

    it("a discarded pending version is soft-deleted; current reads on through the pin", async () => {
      const p = `staging/${uid("del")}`;
      const key = `secret/${p}`;
      const a = await store.put(key, new Secret(val("a")));
      const b = await store.putPending(key, new Secret(val("b")));
      await store.discardPending(key, b.versionId);
      const md = (await vaultApi(bao, "GET", `secret/metadata/${p}`)).data;
      assert.notEqual(md.versions[b.versionId].deletion_time, "");
      assert.equal((await store.get({ key })).versionId, a.versionId);
      await assert.rejects(store.get({ key, version: b.versionId }), NotFoundError);
      // replacing a pending version soft-deletes the old one too
      const c = await store.putPending(key, new Secret(val("c")));
      const d = await store.putPending(key, new Secret(val("d")));
      await assert.rejects(store.get({ key, version: c.versionId }), NotFoundError);
      assert.deepEqual(await store.stagesOf(key), { current: a.versionId, pending: d.versionId });
    });

    it("reads previous and pending by stage name, and rejects other words as versions", async () => {
      const key = `secret/staging/${uid("names")}`;
      const a = await store.put(key, new Secret(val("a")));
      const b = await store.putPending(key, new Secret(val("b")));
      assert.equal((await store.get({ key, version: "pending" })).versionId, b.versionId);
      assert.equal((await store.describe({ key, version: "pending" })).versionId, b.versionId);
      await assert.rejects(store.get({ key, version: "previous" }), NotFoundError);
      await store.promote(key, b.versionId);
      assert.equal((await store.describe({ key, version: "previous" })).versionId, a.versionId);
      await assert.rejects(store.get({ key, version: "AWSPENDING" }), (e: unknown) => e instanceof StoreError && !(e instanceof NotFoundError));
    });

    it("refuses to stage on a KV v1 mount with a StoreError", async () => {
      const key = `kv1/${uid("v1")}`;
      await assert.rejects(store.putPending(key, new Secret(val("x"))), (e: unknown) => e instanceof StoreError && !(e instanceof NotFoundError) && /KV v2/.test((e as Error).message));
      assert.equal(makeStore(bao, { kv_version: 1 }).capabilities.staging, false);
    });
  });
});
