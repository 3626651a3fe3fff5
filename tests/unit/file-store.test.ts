import { strict as assert } from "node:assert";
import { createCipheriv, randomBytes, scryptSync } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, chmodSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../provider/stores/file";
import { Secret } from "../../provider/core/secret";
import { ManualClock } from "../../provider/core/clock";
import { StoreError } from "../../provider/core/errors";
import { storeContract } from "../support/store-contract";

function makeStore(dir: string, env: NodeJS.ProcessEnv = {}, path = "s.store", warnings?: string[]) {
  return new FileStore("local", { type: "file", path }, { configDir: dir, clock: new ManualClock(Date.parse("2026-01-01T00:00:00Z")), env, ...(warnings ? { onWarning: (m: string) => warnings.push(m) } : {}) });
}

/** A version as dsops wrote it before format 2 (associated data: name and id only). */
function legacyVersion(key: Buffer, name: string, id: string, value: string, createdAt: string) {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(`${name}\0${id}`));
  const data = Buffer.concat([c.update(value, "utf8"), c.final()]);
  return { id, createdAt, iv: iv.toString("base64"), tag: c.getAuthTag().toString("base64"), data: data.toString("base64") };
}

/** The store error a promise rejects with. */
async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StoreError, `expected a StoreError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a rejection");
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

  describe("the right key or nothing", () => {
    it("refuses a DSOPS_FILE_KEY that is not the store's key: nothing written, the right key still reads, a warning names the overridden key file", async () => {
      const path = join(dir, "s.store");
      await makeStore(dir).put("a", new Secret("right-value-1"));
      const before = readFileSync(path, "utf8");
      const warnings: string[] = [];
      const e = await storeError(makeStore(dir, { DSOPS_FILE_KEY: "another project" }, "s.store", warnings).put("a", new Secret("wrong-value-2")));
      assert.equal(e.message, `store "local": wrong key: DSOPS_FILE_KEY does not match the key check value of ${path}; nothing was written`);
      assert.equal(e.hint, `DSOPS_FILE_KEY overrides the key file ${path}.key: unset it to use that file, or set the passphrase this store was written with`);
      assert.ok(!`${e.message}${e.stack}`.includes("value-"), "no value in the error");
      assert.equal(readFileSync(path, "utf8"), before, "the file is untouched");
      assert.deepEqual(warnings, [`store "local": DSOPS_FILE_KEY is set and overrides the key file ${path}.key`]);
      assert.equal((await makeStore(dir).get({ key: "a" })).value.reveal(), "right-value-1");
      // Reads with the wrong key name what could not be decrypted.
      await assert.rejects(makeStore(dir, { DSOPS_FILE_KEY: "another project" }).get({ key: "a" }), {
        message: `store "local": cannot decrypt "a" version 1: wrong key: DSOPS_FILE_KEY does not match the key check value of ${path}`,
      });
    });

    it("refuses a key file that is not the store's key, and a passphrase that is not the store's", async () => {
      const path = join(dir, "s.store");
      await makeStore(dir).put("a", new Secret("v1"));
      writeFileSync(`${path}.key`, randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
      const e = await storeError(makeStore(dir).put("a", new Secret("v2")));
      assert.equal(e.message, `store "local": wrong key: the key file ${path}.key does not match the key check value of ${path}; nothing was written`);
      assert.equal(e.hint, `${path}.key is not the key this store was written with: restore the right key file, or set DSOPS_FILE_KEY if the store uses a passphrase`);
      await makeStore(dir, { DSOPS_FILE_KEY: "pass-one" }, "p.store").put("b", new Secret("v1"));
      const p = await storeError(makeStore(dir, { DSOPS_FILE_KEY: "pass-two" }, "p.store").put("b", new Secret("v2")));
      assert.equal(p.hint, "set DSOPS_FILE_KEY to the passphrase this store was written with");
      assert.equal((await makeStore(dir, { DSOPS_FILE_KEY: "pass-one" }, "p.store").get({ key: "b" })).versionId, "1");
    });

    it("reads a file of format 1 (no key check, no integrity code) and upgrades it on the next write", async () => {
      const path = join(dir, "s.store");
      const key = randomBytes(32);
      writeFileSync(`${path}.key`, key.toString("base64") + "\n", { mode: 0o600 });
      const legacy = {
        format: "dsops-file-store/1",
        salt: randomBytes(16).toString("base64"),
        secrets: { a: { current: "2", versions: [legacyVersion(key, "a", "1", "old-1", "2025-01-01T00:00:00.000Z"), legacyVersion(key, "a", "2", "old-2", "2025-02-01T00:00:00.000Z")] } },
      };
      writeFileSync(path, JSON.stringify(legacy), { mode: 0o600 });
      assert.equal((await makeStore(dir).get({ key: "a" })).value.reveal(), "old-2");
      assert.deepEqual(await makeStore(dir).stagesOf("a"), { current: "2" });
      await makeStore(dir).put("a", new Secret("new-3"));
      const data = JSON.parse(readFileSync(path, "utf8"));
      assert.equal(data.format, "dsops-file-store/2");
      assert.match(data.check, /^[A-Za-z0-9+/]{43}=$/);
      assert.match(data.mac, /^[A-Za-z0-9+/]{43}=$/);
      const store = makeStore(dir);
      assert.deepEqual(
        await Promise.all(["1", "2", "3"].map(async (version) => (await store.get({ key: "a", version })).value.reveal())),
        ["old-1", "old-2", "new-3"],
      );
      assert.deepEqual(await store.stagesOf("a"), { current: "3", previous: "2" });
    });

    it("format 1: refuses a key that cannot decrypt the oldest version, even when that key wrote the current one", async () => {
      // The bug this guards against: a DSOPS_FILE_KEY of another project wrote version 2.
      const path = join(dir, "s.store");
      const key = randomBytes(32);
      writeFileSync(`${path}.key`, key.toString("base64") + "\n", { mode: 0o600 });
      const salt = randomBytes(16).toString("base64");
      const wrongKey = scryptSync("another project", Buffer.from(salt, "base64"), 32);
      const legacy = {
        format: "dsops-file-store/1",
        salt,
        secrets: { a: { current: "2", previous: "1", versions: [legacyVersion(key, "a", "1", "right-1", "2025-01-01T00:00:00.000Z"), legacyVersion(wrongKey, "a", "2", "wrong-2", "2025-02-01T00:00:00.000Z")] } },
      };
      writeFileSync(path, JSON.stringify(legacy), { mode: 0o600 });
      const before = readFileSync(path, "utf8");
      const e = await storeError(makeStore(dir, { DSOPS_FILE_KEY: "another project" }).put("a", new Secret("wrong-3")));
      assert.equal(e.message, `store "local": wrong key: DSOPS_FILE_KEY cannot decrypt "a" version 1, the oldest version in ${path}; nothing was written`);
      assert.equal(readFileSync(path, "utf8"), before);
      // The store's own key writes (and from then on the key check value guards the file).
      assert.equal((await makeStore(dir).put("a", new Secret("right-3"))).versionId, "3");
      assert.equal((await makeStore(dir).get({ key: "a" })).value.reveal(), "right-3");
      await assert.rejects(makeStore(dir, { DSOPS_FILE_KEY: "another project" }).put("a", new Secret("wrong-4")), /wrong key: DSOPS_FILE_KEY does not match the key check value/);
    });
  });

  describe("integrity", () => {
    const edit = (path: string, change: (data: any) => void) => {
      const data = JSON.parse(readFileSync(path, "utf8"));
      change(data);
      writeFileSync(path, JSON.stringify(data, null, 1));
      return readFileSync(path, "utf8");
    };

    it("an edited current pointer is refused for reads and writes, never served, and nothing is written", async () => {
      const path = join(dir, "s.store");
      const store = makeStore(dir);
      await store.put("a", new Secret("first"));
      await store.put("a", new Secret("second"));
      const edited = edit(path, (d) => {
        d.secrets.a.current = "1";
        delete d.secrets.a.previous;
      });
      const message = `store "local": ${path} fails its integrity check: it was edited or tampered with outside dsops (a stage pointer, a version or its metadata)`;
      for (const read of [() => makeStore(dir).get({ key: "a" }), () => makeStore(dir).describe({ key: "a" }), () => makeStore(dir).stagesOf("a"), () => makeStore(dir).getMany([{ key: "a" }])]) {
        const e = await storeError(read());
        assert.equal(e.message, message);
        assert.equal(e.hint, "restore the file from a backup; dsops neither serves nor writes over a store that fails its integrity check");
      }
      const w = await storeError(makeStore(dir).put("a", new Secret("third")));
      assert.equal(w.message, `${message}; nothing was written`);
      await assert.rejects(makeStore(dir).promote("a", "1"), { message: `${message}; nothing was written` });
      assert.equal(readFileSync(path, "utf8"), edited);
    });

    it("edited metadata (a created-at date, a description) is refused too", async () => {
      const path = join(dir, "s.store");
      await makeStore(dir).put("a", new Secret("x"), { description: "by ops" });
      edit(path, (d) => (d.secrets.a.versions[0].description = "by someone else"));
      await assert.rejects(makeStore(dir).get({ key: "a" }), /fails its integrity check/);
    });

    it("a file rewritten as format 1 (check value and code stripped, pointer moved) serves no version written by format 2", async () => {
      const path = join(dir, "s.store");
      await makeStore(dir).put("a", new Secret("first"));
      await makeStore(dir).put("a", new Secret("second"));
      edit(path, (d) => {
        d.format = "dsops-file-store/1";
        delete d.check;
        delete d.mac;
        d.secrets.a.current = "1";
      });
      await assert.rejects(makeStore(dir).get({ key: "a" }), { message: `store "local": cannot decrypt "a" version 1: wrong key (DSOPS_FILE_KEY or ${path}.key) or a tampered file` });
    });
  });

  describe("damaged files: a StoreError naming the file and what is wrong, never written over", () => {
    const salt = "c2FsdHNhbHRzYWx0c2FsdA==";
    const v = { id: "1", createdAt: "2026-01-01T00:00:00.000Z", iv: "aXZpdml2aXZpdml2", tag: "dGFndGFndGFndGFndGFnIQ==", data: "ZGF0YQ==" };
    const cases: Array<[string, string, string]> = [
      ["an empty file", "", "the file is empty"],
      ["not JSON", "{\"format\": \"dsops-file-store/2\",", "not valid JSON"],
      ["null", "null", "expected a JSON object, got null"],
      ["a list", "[]", "expected a JSON object, got a list"],
      ["no format", JSON.stringify({ salt, secrets: {} }), 'format: missing (expected "dsops-file-store/2")'],
      ["secrets: []", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: [] }), "secrets: expected an object, got a list"],
      ["secrets: null", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: null }), "secrets: expected an object, got null"],
      ["no salt", JSON.stringify({ format: "dsops-file-store/1", secrets: {} }), "salt: missing (expected a string)"],
      ["an empty salt", JSON.stringify({ format: "dsops-file-store/1", salt: "", secrets: {} }), "salt: is empty"],
      ["format 2 without its key check value", JSON.stringify({ format: "dsops-file-store/2", salt, secrets: {}, mac: "x" }), "check: missing (expected a string)"],
      ["a secret without versions", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: { a: { current: "1" } } }), 'secrets["a"].versions: missing (expected a list)'],
      ["a version of the wrong shape", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: { "app/db": { current: "1", versions: [{ ...v, iv: 12 }] } } }), 'secrets["app/db"].versions[0].iv: expected a string, got a number'],
      ["a pointer to a missing version", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: { a: { current: "3", versions: [v] } } }), 'secrets["a"].current: points at version "3", which is not among its versions'],
      ["a version twice", JSON.stringify({ format: "dsops-file-store/1", salt, secrets: { a: { current: "1", versions: [v, v] } } }), 'secrets["a"].versions[1].id: version "1" appears twice'],
    ];
    for (const [name, content, problem] of cases) {
      it(name, async () => {
        const path = join(dir, "s.store");
        writeFileSync(path, content, { mode: 0o600 });
        writeFileSync(`${path}.key`, randomBytes(32).toString("base64"), { mode: 0o600 });
        const message = `store "local": ${path} is damaged: ${problem}`;
        for (const op of [() => makeStore(dir).get({ key: "a" }), () => makeStore(dir).getMany([{ key: "a" }]), () => makeStore(dir).put("a", new Secret("x")), () => makeStore(dir).stagesOf("a")]) {
          const e = await storeError(op());
          assert.equal(e.message, message);
          assert.equal(e.hint, "dsops neither reads from nor writes over a damaged store: restore the file from a backup, or repair what is named above");
        }
        assert.equal(readFileSync(path, "utf8"), content, "never written over");
      });
    }

    it("a folder where the file should be is a StoreError naming it, not an internal error", async () => {
      mkdirSync(join(dir, "s.store"));
      for (const op of [() => makeStore(dir).get({ key: "a" }), () => makeStore(dir).put("a", new Secret("x"))]) {
        const e = await storeError(op());
        assert.equal(e.message, `store "local": cannot read ${join(dir, "s.store")}: EISDIR (illegal operation on a directory)`);
        assert.equal(e.hint, "check the path, its permissions and the free space of its filesystem");
      }
    });

    it("an unknown format is named (a newer dsops may have written it)", async () => {
      writeFileSync(join(dir, "s.store"), JSON.stringify({ format: "dsops-file-store/9", salt, secrets: {} }));
      const e = await storeError(makeStore(dir).put("a", new Secret("x")));
      assert.equal(e.message, `store "local": ${join(dir, "s.store")} has unknown format "dsops-file-store/9"`);
      assert.equal(e.hint, "this dsops reads dsops-file-store/2 and dsops-file-store/1; a newer dsops may have written the file");
    });
  });

  describe("the store's lock", () => {
    const deadPid = () => Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);

    it("a writer waits for a live holder and gives up naming it, without touching the lock or the store", async () => {
      const path = join(dir, "s.store");
      await makeStore(dir).put("a", new Secret("x"));
      const lock = JSON.stringify({ pid: process.ppid, host: hostname(), who: "ops@box", since: "2026-01-01T00:00:00.000Z" });
      writeFileSync(`${path}.lock`, lock);
      utimesSync(`${path}.lock`, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
      const before = readFileSync(path, "utf8");
      const e = await storeError(makeStore(dir, { DSOPS_LOCK_TIMEOUT: "50ms" }).put("a", new Secret("y")));
      assert.equal(e.message, `store "local": ${path}.lock is held by pid ${process.ppid} on host ${hostname()} (ops@box, since 2026-01-01T00:00:00.000Z), which is still running; gave up after waiting 50ms`);
      assert.equal(e.hint, "let that process finish, or stop it: a lock whose process has ended is taken over by the next writer (DSOPS_LOCK_TIMEOUT sets how long to wait)");
      assert.equal(readFileSync(`${path}.lock`, "utf8"), lock);
      assert.equal(readFileSync(path, "utf8"), before);
    });

    it("takes over the lock of a dead writer (this and older formats) and an empty lock file older than the grace period", async () => {
      const path = join(dir, "s.store");
      for (const content of [JSON.stringify({ pid: deadPid(), host: hostname(), who: "gone", since: "x", lock: "0123456789abcdef01234567" }), String(deadPid()), ""]) {
        writeFileSync(`${path}.lock`, content);
        utimesSync(`${path}.lock`, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
        await makeStore(dir).put("a", new Secret("x"));
        assert.equal(existsSync(`${path}.lock`), false, JSON.stringify(content));
      }
      assert.equal((await makeStore(dir).describe({ key: "a" })).versionId, "3");
    });

    it("sweeps temporary files that killed writers left", async () => {
      await makeStore(dir).put("a", new Secret("x"));
      const leftovers = [".s.store.0123456789ab.tmp", ".s.store.key.abcdef012345.tmp", `.s.store.lock.00000000-${deadPid()}.01234567.tmp`];
      for (const f of leftovers) writeFileSync(join(dir, f), "partial");
      writeFileSync(join(dir, "s.store.lock.claim.aaaaaaaaaaaaaaaaaaaaaaaa"), JSON.stringify({ pid: deadPid(), host: hostname(), lock: "bbbbbbbbbbbbbbbbbbbbbbbb", root: "aaaaaaaaaaaaaaaaaaaaaaaa" }));
      utimesSync(join(dir, leftovers[2]), new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
      await makeStore(dir).put("a", new Secret("y"));
      assert.deepEqual(readdirSync(dir).sort(), ["s.store", "s.store.key"]);
    });
  });
});
