/// <reference types="mocha" />
// The suite runs under mocha (its describe/it/before/after globals): plugin authors run it with mocha.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { Secret } from "../../core/secret";
import { NotFoundError, DsopsError } from "../../core/errors";
import { extractJsonField } from "../../engine/jsonpath";
import type { Store } from "../../stores/types";

/**
 * What a store's test provides to the shared contract suite. `seed` writes through the
 * service's own API (or the store's put when that is the only way), never through mocks.
 */
export interface ContractFixture {
  /** The store under test (a plugin's store has its own type name). */
  store: Omit<Store, "type"> & { readonly type: string };
  /** Create `key` with successive versions, oldest first; returns the version ids in the same order. */
  seed(key: string, values: string[]): Promise<string[]>;
  /** Create a binary secret (only when the store's capabilities say binary). */
  seedBinary?(key: string, value: Buffer): Promise<void>;
  /** Turn a plain name into a key valid for this store (prefixes, paths). Default: identity. */
  key?(name: string): string;
  /** A version id that does not exist, in this store's syntax. */
  missingVersion?: string;
}

function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Every store runs this suite: the behaviour the engine relies on. */
export function storeContract(label: string, setup: () => Promise<ContractFixture>, teardown?: () => Promise<void>): void {
  describe(`store contract: ${label}`, function () {
    this.timeout(30000);
    let fx: ContractFixture;
    const k = (name: string) => (fx.key ? fx.key(name) : name);
    const seen: string[] = [];
    const val = (tag: string) => {
      const v = `val-${tag}-${randomBytes(8).toString("hex")}`;
      seen.push(v);
      return v;
    };

    before(async () => {
      fx = await setup();
    });
    after(async () => {
      await fx?.store.close?.();
      await teardown?.();
    });

    it("reads an existing secret with its version id", async () => {
      const key = k(unique("basic"));
      const v = val("basic");
      const ids = await fx.seed(key, [v]);
      const got = await fx.store.get({ key });
      assert.ok(got.value instanceof Secret);
      assert.equal(got.value.reveal(), v);
      assert.equal(got.versionId, ids[0]);
    });

    it("reports a missing key as NotFoundError naming the key", async () => {
      const key = k(unique("missing"));
      await assert.rejects(fx.store.get({ key }), (e: unknown) => {
        assert.ok(e instanceof NotFoundError, `expected NotFoundError, got ${String(e)}`);
        assert.ok((e as Error).message.includes(key), (e as Error).message);
        return true;
      });
    });

    it("describes the current version without the value", async () => {
      const key = k(unique("describe"));
      const ids = await fx.seed(key, [val("d1"), val("d2")]);
      const info = await fx.store.describe({ key });
      assert.equal(info.versionId, ids[ids.length - 1]);
      assert.ok(!JSON.stringify(info).includes("val-"), "describe must not carry the value");
    });

    it("reads older versions by id when the store keeps versions", async function () {
      if (!fx.store.capabilities.versions) return this.skip();
      const key = k(unique("versions"));
      const v1 = val("v1");
      const v2 = val("v2");
      const ids = await fx.seed(key, [v1, v2]);
      assert.equal((await fx.store.get({ key })).value.reveal(), v2);
      const old = await fx.store.get({ key, version: ids[0] });
      assert.equal(old.value.reveal(), v1);
      assert.equal(old.versionId, ids[0]);
      await assert.rejects(fx.store.get({ key, version: fx.missingVersion ?? "999999" }), NotFoundError);
    });

    it("holds structured values whose fields the engine extracts", async () => {
      const key = k(unique("json"));
      const pw = val("pw");
      await fx.seed(key, [JSON.stringify({ db: { password: pw, hosts: ["a", "b"] } })]);
      const got = await fx.store.get({ key });
      assert.equal(extractJsonField(got.value.reveal(), ".db.password"), pw);
      assert.equal(extractJsonField(got.value.reveal(), ".db.hosts[1]"), "b");
    });

    it("returns binary secrets base64-encoded and flagged", async function () {
      if (!fx.store.capabilities.binary || !fx.seedBinary) return this.skip();
      const key = k(unique("binary"));
      const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
      await fx.seedBinary(key, bytes);
      const got = await fx.store.get({ key });
      assert.equal(got.binary, true);
      assert.deepEqual(Buffer.from(got.value.reveal(), "base64"), bytes);
    });

    it("reads many keys at once, one result per key in order, a missing key as its own error", async () => {
      const n = Math.max(3, Math.min(fx.store.capabilities.batch || 3, 25) + 2);
      const keys = Array.from({ length: n }, (_, i) => k(unique(`batch${i}`)));
      const values = keys.map((_, i) => val(`b${i}`));
      await Promise.all(keys.map((key, i) => fx.seed(key, [values[i]])));
      const missing = k(unique("batch-missing"));
      const req = [...keys.slice(0, 2), missing, ...keys.slice(2)].map((key) => ({ key }));
      const results = fx.store.getMany ? await fx.store.getMany(req) : await Promise.all(req.map((r) => fx.store.get(r).catch((e: Error) => e)));
      assert.equal(results.length, req.length);
      results.forEach((r, i) => {
        if (req[i].key === missing) {
          assert.ok(r instanceof NotFoundError, `slot ${i}: expected NotFoundError, got ${String(r)}`);
        } else {
          assert.ok(!(r instanceof Error), `slot ${i}: ${String(r)}`);
          const expected = values[keys.indexOf(req[i].key)];
          assert.equal((r as { value: Secret }).value.reveal(), expected);
        }
      });
    });

    it("writes a new version and reads it back when writable", async function () {
      if (!fx.store.capabilities.write || !fx.store.put) return this.skip();
      const key = k(unique("put"));
      const v1 = val("p1");
      const v2 = val("p2");
      const first = await fx.store.put(key, new Secret(v1));
      const second = await fx.store.put(key, new Secret(v2));
      assert.notEqual(first.versionId, second.versionId);
      const got = await fx.store.get({ key });
      assert.equal(got.value.reveal(), v2);
      assert.equal(got.versionId, second.versionId);
      assert.equal((await fx.store.describe({ key })).versionId, second.versionId);
      if (fx.store.capabilities.versions) {
        assert.equal((await fx.store.get({ key, version: first.versionId })).value.reveal(), v1);
      }
    });

    it("never puts a value in an error", async () => {
      const key = k(unique("noleak"));
      const v = val("noleak");
      await fx.seed(key, [v]);
      const attempts: Array<() => Promise<unknown>> = [
        () => fx.store.get({ key, version: fx.missingVersion ?? "999999" }),
        () => fx.store.get({ key: k(unique("absent")) }),
      ];
      for (const attempt of attempts) {
        try {
          await attempt();
        } catch (e) {
          assert.ok(e instanceof DsopsError, `store errors are DsopsErrors, got ${String(e)}`);
          const text = `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}`;
          for (const s of seen) assert.ok(!text.includes(s), "an error carried a secret value");
        }
      }
    });
  });
}
