import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../provider/stores/file";
import { Secret } from "../../provider/engine/secret";
import { ManualClock } from "../../provider/engine/clock";
import { StoreError } from "../../provider/engine/errors";
import { storeContract } from "../support/store-contract";

function makeStore(dir: string, env: NodeJS.ProcessEnv = {}, path = "s.store") {
  return new FileStore("local", { type: "file", path }, { configDir: dir, clock: new ManualClock(Date.parse("2026-01-01T00:00:00Z")), env });
}

describe("file store", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-file-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  {
    let cdir: string;
    storeContract(
      "file",
      async () => {
        cdir = mkdtempSync(join(tmpdir(), "dsops-file-contract-"));
        const store = makeStore(cdir);
        return {
          store,
          // The file store is its own service: seeding goes through its put.
          seed: async (key, values) => {
            const ids: string[] = [];
            for (const v of values) ids.push((await store.put(key, new Secret(v))).versionId);
            return ids;
          },
        };
      },
      async () => rmSync(cdir, { recursive: true, force: true }),
    );
  }

  it("encrypts values at rest and creates store and key files with mode 0600", async () => {
    const store = makeStore(dir);
    await store.put("app/db", new Secret("plaintext-needle-42"));
    const text = readFileSync(join(dir, "s.store"), "utf8");
    assert.ok(!text.includes("plaintext-needle-42"));
    assert.equal(statSync(join(dir, "s.store")).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "s.store.key")).mode & 0o777, 0o600);
    assert.equal(JSON.parse(text).secrets["app/db"].versions[0].createdAt, "2026-01-01T00:00:00.000Z");
  });

  it("keeps 0600 when the store file existed with wider permissions", async () => {
    const store = makeStore(dir);
    await store.put("a", new Secret("x1"));
    chmodSync(join(dir, "s.store"), 0o644);
    await store.put("a", new Secret("x2"));
    assert.equal(statSync(join(dir, "s.store")).mode & 0o777, 0o600);
  });

  it("derives the key from DSOPS_FILE_KEY and refuses the wrong one without leaking", async () => {
    await makeStore(dir, { DSOPS_FILE_KEY: "correct horse" }).put("a", new Secret("needle-value-9"));
    assert.equal((await makeStore(dir, { DSOPS_FILE_KEY: "correct horse" }).get({ key: "a" })).value.reveal(), "needle-value-9");
    await assert.rejects(makeStore(dir, { DSOPS_FILE_KEY: "wrong" }).get({ key: "a" }), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.match(e.message, /cannot decrypt "a" version 1: wrong key/);
      assert.ok(!e.message.includes("needle-value-9"));
      return true;
    });
  });

  it("refuses a key file that others can read", async () => {
    await makeStore(dir).put("a", new Secret("x"));
    chmodSync(join(dir, "s.store.key"), 0o644);
    await assert.rejects(makeStore(dir).get({ key: "a" }), /readable by others; chmod 600/);
  });

  it("detects a tampered ciphertext", async () => {
    const store = makeStore(dir);
    await store.put("a", new Secret("original"));
    const path = join(dir, "s.store");
    const data = JSON.parse(readFileSync(path, "utf8"));
    data.secrets.b = data.secrets.a; // moved to another name: the AAD no longer matches
    writeFileSync(path, JSON.stringify(data));
    await assert.rejects(makeStore(dir).get({ key: "b" }), /tampered/);
  });

  it("never loses a version when many writers race", async () => {
    const stores = Array.from({ length: 5 }, () => makeStore(dir));
    await stores[0].put("race", new Secret("v0"));
    await Promise.all(stores.flatMap((s, i) => [s.put("race", new Secret(`a${i}`)), s.put(`other${i}`, new Secret("o"))]));
    const data = JSON.parse(readFileSync(join(dir, "s.store"), "utf8"));
    assert.equal(data.secrets.race.versions.length, 6);
    assert.deepEqual(data.secrets.race.versions.map((v: { id: string }) => v.id), ["1", "2", "3", "4", "5", "6"]);
    assert.equal(Object.keys(data.secrets).length, 6);
  });
});
