/// <reference types="mocha" />
// The suite runs under mocha (its describe/it/before/after globals): plugin authors run it with mocha.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { NotFoundError } from "../../core/errors";
import { Secret } from "../../core/secret";
import { hasStaging, type Staging, type Store } from "../../stores/types";

/** What a store's test provides to the staging contract. */
export interface StagingFixture {
  /** The store under test (a plugin's store has its own type name). */
  store: Omit<Store, "type"> & { readonly type: string } & Staging;
  /** Turn a plain name into a key valid for this store (prefixes, paths). Default: identity. */
  key?(name: string): string;
  /**
   * Read `key` the way a plain reader that knows nothing of dsops does (GetParameter by name,
   * GetSecretValue without a stage, a KV read without a version, `versions/latest`).
   * Default: `store.get({ key })`.
   */
  plainRead?(key: string): Promise<string>;
  /**
   * The store makes the first version of a secret current whatever its stage (AWS Secrets
   * Manager: "If this operation creates the first version for the secret, then Secrets Manager
   * automatically attaches the staging label AWSCURRENT"): a first putPending is also current.
   */
  firstVersionIsCurrent?: boolean;
  /** A version id that does not exist, in this store's syntax. Default: "999999". */
  missingVersion?: string;
}

function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/**
 * The rotation stages every staging store keeps (pending/current/previous), in its own terms:
 * putPending leaves current readable and unchanged (plain readers too); promote makes the
 * pending version current and the old current previous; discardPending; stagesOf; every step
 * called twice is a no-op the second time; rollback is promoting the previous version.
 */
export function stagingContract(label: string, setup: () => Promise<StagingFixture>, teardown?: () => Promise<void>): void {
  describe(`staging contract: ${label}`, function () {
    this.timeout(60000);
    let fx: StagingFixture;
    const k = (name: string) => (fx.key ? fx.key(name) : name);
    const seen: string[] = [];
    const val = (tag: string) => {
      const v = `stg-${tag}-${randomBytes(8).toString("hex")}`;
      seen.push(v);
      return v;
    };
    const plain = async (key: string) => (fx.plainRead ? fx.plainRead(key) : (await fx.store.get({ key })).value.reveal());
    const read = async (key: string, version?: string) => (await fx.store.get({ key, ...(version ? { version } : {}) })).value.reveal();

    before(async () => {
      fx = await setup();
    });
    after(async () => {
      await fx?.store.close?.();
      await teardown?.();
    });

    it("says it can stage", () => {
      assert.equal(fx.store.capabilities.staging, true);
      assert.ok(hasStaging(fx.store as Store));
    });

    it("putPending leaves current readable and unchanged; a second putPending replaces the pending version", async () => {
      const key = k(unique("pend"));
      const a = val("a");
      const b = val("b");
      const c = val("c");
      const cur = await (fx.store.put as NonNullable<Store["put"]>).call(fx.store, key, new Secret(a));
      const p1 = await fx.store.putPending(key, new Secret(b), { description: "rotation test" });
      assert.notEqual(p1.versionId, cur.versionId);
      assert.equal(await plain(key), a, "plain readers keep getting current");
      assert.equal(await read(key), a);
      assert.equal(await read(key, "current"), a);
      assert.equal(await read(key, "pending"), b);
      assert.equal(await read(key, p1.versionId), b, "the pending version reads by its id");
      assert.equal((await fx.store.get({ key, version: "current" })).versionId, cur.versionId);
      assert.equal((await fx.store.describe({ key })).versionId, cur.versionId);
      assert.deepEqual(await fx.store.stagesOf(key), { current: cur.versionId, pending: p1.versionId });

      const p2 = await fx.store.putPending(key, new Secret(c));
      assert.notEqual(p2.versionId, p1.versionId);
      assert.equal(await plain(key), a);
      assert.equal(await read(key, "pending"), c);
      assert.deepEqual(await fx.store.stagesOf(key), { current: cur.versionId, pending: p2.versionId });
    });

    it("promote makes pending current and the old current previous; twice is a no-op", async () => {
      const key = k(unique("prom"));
      const a = val("a");
      const b = val("b");
      const cur = await (fx.store.put as NonNullable<Store["put"]>).call(fx.store, key, new Secret(a));
      const p = await fx.store.putPending(key, new Secret(b));
      const r = await fx.store.promote(key, p.versionId);
      assert.equal(r.versionId, p.versionId);
      assert.equal(await plain(key), b);
      assert.equal(await read(key, "current"), b);
      assert.equal(await read(key, "previous"), a);
      await assert.rejects(fx.store.get({ key, version: "pending" }), NotFoundError);
      assert.deepEqual(await fx.store.stagesOf(key), { current: p.versionId, previous: cur.versionId });
      // Again: nothing changes (the previous version is not overwritten by the current one).
      await fx.store.promote(key, p.versionId);
      assert.equal(await plain(key), b);
      assert.deepEqual(await fx.store.stagesOf(key), { current: p.versionId, previous: cur.versionId });
      // The old version stays readable by id after it left the stages.
      assert.equal(await read(key, cur.versionId), a);
    });

    it("discardPending drops only the pending stage (of the named version); twice and with nothing pending is a no-op", async () => {
      const key = k(unique("disc"));
      const a = val("a");
      const b = val("b");
      const cur = await (fx.store.put as NonNullable<Store["put"]>).call(fx.store, key, new Secret(a));
      await fx.store.discardPending(key); // nothing pending
      const p = await fx.store.putPending(key, new Secret(b));
      await fx.store.discardPending(key, cur.versionId); // not the pending version: no-op
      assert.deepEqual(await fx.store.stagesOf(key), { current: cur.versionId, pending: p.versionId });
      await fx.store.discardPending(key, p.versionId);
      assert.deepEqual(await fx.store.stagesOf(key), { current: cur.versionId });
      await fx.store.discardPending(key, p.versionId);
      await fx.store.discardPending(key);
      assert.deepEqual(await fx.store.stagesOf(key), { current: cur.versionId });
      assert.equal(await plain(key), a);
      await assert.rejects(fx.store.get({ key, version: "pending" }), NotFoundError);
    });

    it("rollback is promoting the previous version; twice is a no-op", async () => {
      const key = k(unique("back"));
      const a = val("a");
      const b = val("b");
      const first = await (fx.store.put as NonNullable<Store["put"]>).call(fx.store, key, new Secret(a));
      const p = await fx.store.putPending(key, new Secret(b));
      await fx.store.promote(key, p.versionId);
      const st = await fx.store.stagesOf(key);
      assert.equal(st.previous, first.versionId);
      await fx.store.promote(key, st.previous as string);
      assert.equal(await plain(key), a);
      assert.deepEqual(await fx.store.stagesOf(key), { current: first.versionId, previous: p.versionId });
      await fx.store.promote(key, first.versionId);
      assert.deepEqual(await fx.store.stagesOf(key), { current: first.versionId, previous: p.versionId });
      assert.equal(await read(key, "previous"), b);
      // and forward again
      await fx.store.promote(key, p.versionId);
      assert.equal(await plain(key), b);
      assert.deepEqual(await fx.store.stagesOf(key), { current: p.versionId, previous: first.versionId });
    });

    it("a first rotation: pending on a secret with no current version", async () => {
      const key = k(unique("first"));
      const b = val("b");
      const p = await fx.store.putPending(key, new Secret(b));
      if (fx.firstVersionIsCurrent) {
        assert.deepEqual(await fx.store.stagesOf(key), { current: p.versionId, pending: p.versionId });
      } else {
        assert.deepEqual(await fx.store.stagesOf(key), { pending: p.versionId });
        await assert.rejects(fx.store.get({ key, version: "current" }), NotFoundError);
      }
      assert.equal(await read(key, p.versionId), b);
      await fx.store.promote(key, p.versionId);
      assert.deepEqual(await fx.store.stagesOf(key), { current: p.versionId });
      assert.equal(await plain(key), b);
    });

    it("knows nothing of a missing secret, and promoting a missing version is NotFoundError without values", async () => {
      const key = k(unique("none"));
      assert.deepEqual(await fx.store.stagesOf(key), {});
      await fx.store.discardPending(key);
      const a = val("a");
      await (fx.store.put as NonNullable<Store["put"]>).call(fx.store, key, new Secret(a));
      const err = await fx.store.promote(key, fx.missingVersion ?? "999999").then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${String(err)}`);
      for (const v of seen) assert.ok(!(err as Error).message.includes(v), "an error carries a value");
    });
  });
}
