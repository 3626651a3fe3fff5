import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { FileStore } from "../../provider/stores/file";
import { DSOPS_BIN, dsops } from "../support/cli";

/**
 * The embedded file store through the built `dsops` binary: the right key or nothing, an
 * edited file refused, and one lock for every writer (parallel writers, writers killed with
 * kill -9 while holding it, empty lock files, live holders).
 */
describe("file store through the CLI: keys, integrity, locks", function () {
  this.timeout(240_000);
  let dir: string;
  let store: string;
  const noKey = { DSOPS_FILE_KEY: undefined, DSOPS_FAULT: undefined, DSOPS_LOCK_TIMEOUT: undefined };
  const set = (value: string, env: NodeJS.ProcessEnv = {}) => dsops(["secrets", "set", "--store", "local", "--key", "a"], { cwd: dir, input: value, env: { ...noKey, ...env } });
  const get = (env: NodeJS.ProcessEnv = {}) => dsops(["get", "--env", "dev", "--var", "A"], { cwd: dir, env: { ...noKey, ...env } });
  const old = (path: string) => utimesSync(path, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-filestore-"));
    store = join(dir, "secrets.store");
    writeFileSync(join(dir, "dsops.yaml"), 'secretStores:\n  local: { type: file, path: ./secrets.store }\nenvs:\n  dev:\n    A: { from: "store://local/a" }\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("secrets set with a DSOPS_FILE_KEY of another project: exit 1, nothing written, a warning that it overrides the key file", () => {
    assert.equal(set("right-value-1").status, 0);
    const before = readFileSync(store, "utf8");
    const r = set("wrong-value-2", { DSOPS_FILE_KEY: "another project" });
    assert.equal(
      r.stderr,
      `warning: store "local": DSOPS_FILE_KEY is set and overrides the key file ${store}.key\n` +
        `error: store "local": wrong key: DSOPS_FILE_KEY does not match the key check value of ${store}; nothing was written\n` +
        `hint: DSOPS_FILE_KEY overrides the key file ${store}.key: unset it to use that file, or set the passphrase this store was written with\n`,
    );
    assert.equal(r.status, 1);
    assert.equal(readFileSync(store, "utf8"), before);
    const g = get();
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout, "right-value-1\n");
  });

  it("an edited current pointer: get and set exit 1 with the integrity error, the older value is never served", () => {
    assert.equal(set("first-value").status, 0);
    assert.equal(set("second-value").status, 0);
    const data = JSON.parse(readFileSync(store, "utf8"));
    data.secrets.a.current = "1";
    delete data.secrets.a.previous;
    writeFileSync(store, JSON.stringify(data, null, 1));
    const edited = readFileSync(store, "utf8");
    const message = `store "local": ${store} fails its integrity check: it was edited or tampered with outside dsops (a stage pointer, a version or its metadata)`;
    const g = get();
    assert.equal(g.stderr, `error: env "dev": 1 variable failed to resolve:\n  - A (store local, key a): ${message}\n`);
    assert.equal(g.status, 1);
    assert.equal(g.stdout, "");
    const s = set("third-value");
    assert.equal(s.stderr, `error: ${message}; nothing was written\nhint: restore the file from a backup; dsops neither serves nor writes over a store that fails its integrity check\n`);
    assert.equal(s.status, 1);
    assert.equal(readFileSync(store, "utf8"), edited);
  });

  it("60 parallel secrets set with DSOPS_FILE_KEY: all 60 exit 0 and all 60 versions are in the store", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DSOPS_FILE_KEY: "a shared passphrase" };
    delete env.DSOPS_FAULT;
    delete env.DSOPS_LOCK_TIMEOUT;
    // Each value from a file: a pipe the parent has not written to yet reads as empty.
    const inputs = mkdtempSync(join(tmpdir(), "dsops-filestore-in-"));
    const values = Array.from({ length: 60 }, (_, i) => `parallel-value-${i}-${Math.random().toString(36).slice(2)}`);
    const runs = values.map(
      (value, i) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          writeFileSync(join(inputs, String(i)), value);
          const stdin = openSync(join(inputs, String(i)), "r");
          const child = spawn(process.execPath, [DSOPS_BIN, "secrets", "set", "--store", "local", "--key", "a"], { cwd: dir, env, stdio: [stdin, "ignore", "pipe"] });
          closeSync(stdin);
          let stderr = "";
          child.stderr?.on("data", (d: Buffer) => (stderr += d));
          child.on("exit", (code) => resolve({ code, stderr }));
        }),
    );
    const results = await Promise.all(runs);
    rmSync(inputs, { recursive: true, force: true });
    results.forEach((r, i) => assert.equal(r.code, 0, `writer ${i}: ${r.stderr}`));
    const reported = results.map((r) => Number(/→ version (\d+)\n$/.exec(r.stderr)?.[1])).sort((a, b) => a - b);
    assert.deepEqual(reported, Array.from({ length: 60 }, (_, i) => i + 1), "each writer got its own version");
    const fs = new FileStore("local", { type: "file", path: "./secrets.store" }, { configDir: dir, clock: new ManualClock(0), env: { DSOPS_FILE_KEY: "a shared passphrase" } });
    const stored = await Promise.all(reported.map(async (version) => (await fs.get({ key: "a", version: String(version) })).value.reveal()));
    assert.deepEqual([...stored].sort(), [...values].sort(), "every value is in the store, once");
    assert.deepEqual(readdirSync(dir).sort(), ["dsops.yaml", "secrets.store"], "no lock or temporary file left");
    for (const r of results) for (const v of values) assert.ok(!r.stderr.includes(v), "no value in any output");
  });

  it("a writer killed (kill -9) while holding the lock: the next writer takes the lock over", () => {
    assert.equal(set("first-value").status, 0);
    const killed = set("lost-value", { DSOPS_FAULT: "file-store:locked" });
    assert.equal(killed.status, null, killed.stderr);
    assert.equal(killed.stderr, "dsops: fault injected at file-store:locked (kill)\n");
    const lock = JSON.parse(readFileSync(`${store}.lock`, "utf8")) as { pid: number; host: string };
    assert.equal(lock.host, hostname());
    const next = set("second-value");
    assert.equal(next.stderr, "store local: a → version 2\n");
    assert.equal(next.status, 0);
    assert.equal(existsSync(`${store}.lock`), false);
    assert.equal(get().stdout, "second-value\n");
  });

  it("a writer killed after writing its temporary file: the store keeps its last version, the next writer sweeps the leftover", () => {
    assert.equal(set("first-value").status, 0);
    const before = readFileSync(store, "utf8");
    const killed = set("lost-value", { DSOPS_FAULT: "file-store:before-rename" });
    assert.equal(killed.status, null, killed.stderr);
    assert.equal(readFileSync(store, "utf8"), before, "the store file is whole: the old one");
    assert.equal(readdirSync(dir).filter((f) => f.endsWith(".tmp")).length, 1);
    assert.equal(get().stdout, "first-value\n");
    const next = set("second-value");
    assert.equal(next.status, 0, next.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["dsops.yaml", "secrets.store", "secrets.store.key"]);
  });

  it("an empty lock file left by a killed writer is taken over once older than the grace period", () => {
    assert.equal(set("first-value").status, 0);
    writeFileSync(`${store}.lock`, "");
    old(`${store}.lock`);
    const r = set("second-value");
    assert.equal(r.stderr, "store local: a → version 2\n");
    assert.equal(r.status, 0);
    assert.equal(existsSync(`${store}.lock`), false);
  });

  it("a lock a live process holds is never broken: the writer waits, then exits 1 naming the holder", () => {
    assert.equal(set("first-value").status, 0);
    const before = readFileSync(store, "utf8");
    const lock = JSON.stringify({ pid: process.pid, host: hostname(), who: "ops@box", since: "2026-01-01T00:00:00.000Z" });
    writeFileSync(`${store}.lock`, lock);
    old(`${store}.lock`);
    const r = set("second-value", { DSOPS_LOCK_TIMEOUT: "200ms" });
    assert.equal(
      r.stderr,
      `error: store "local": ${store}.lock is held by pid ${process.pid} on host ${hostname()} (ops@box, since 2026-01-01T00:00:00.000Z), which is still running; gave up after waiting 200ms\n` +
        "hint: let that process finish, or stop it: a lock whose process has ended is taken over by the next writer (DSOPS_LOCK_TIMEOUT sets how long to wait)\n",
    );
    assert.equal(r.status, 1);
    assert.equal(readFileSync(`${store}.lock`, "utf8"), lock);
    assert.equal(readFileSync(store, "utf8"), before);
  });
});
