import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { LockBusyError, LockFile, type LockOwner } from "../../provider/core/lock";

/** A pid that existed a moment ago and is gone now. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

const me = (who = "me@here"): LockOwner => ({ pid: process.pid, host: hostname(), who, since: "2026-03-01T00:00:00.000Z" });
const hostTag = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
const old = (path: string) => utimesSync(path, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));

describe("lock primitive (LockFile)", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-lock-"));
    path = join(dir, "x.lock");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("takes a free lock with a complete owner record, and releases only its own", () => {
    const lock = new LockFile(path);
    const r = lock.tryAcquire(me());
    assert.ok("held" in r);
    const written = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    assert.equal(written.pid, process.pid);
    assert.equal(written.who, "me@here");
    assert.match(String(written.lock), /^[0-9a-f]{24}$/);
    assert.equal(lock.holder()?.who, "me@here");
    r.held.release();
    assert.equal(existsSync(path), false);
    assert.deepEqual(readdirSync(dir), [], "no temporary file left");
  });

  it("never breaks a lock whose pid lives on this host, nor one of another host", () => {
    const lock = new LockFile(path);
    writeFileSync(path, JSON.stringify({ pid: process.ppid, host: hostname(), who: "ops@box", since: "x" }));
    old(path);
    const r = lock.tryAcquire(me());
    assert.ok("busy" in r);
    assert.equal(r.busy?.pid, process.ppid);
    assert.equal(r.busy?.who, "ops@box");
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: "another-host", who: "x@another-host", since: "z" }));
    old(path);
    const r2 = lock.tryAcquire(me());
    assert.ok("busy" in r2);
    assert.equal(r2.busy?.host, "another-host");
    assert.equal(lock.holder()?.host, "another-host", "the lock is untouched");
  });

  it("takes over the lock of a dead pid, in this format and in the formats of older versions", () => {
    const lock = new LockFile(path);
    for (const content of [
      JSON.stringify({ pid: deadPid(), host: hostname(), who: "gone@host", since: "x", lock: "0123456789abcdef01234567" }),
      JSON.stringify({ pid: deadPid(), host: hostname(), who: "gone@host", since: "x" }),
      String(deadPid()),
    ]) {
      writeFileSync(path, content);
      const r = lock.tryAcquire(me());
      assert.ok("held" in r, content);
      assert.equal(lock.holder()?.pid, process.pid);
      r.held.release();
    }
    assert.deepEqual(readdirSync(dir), []);
  });

  it("an empty or garbled lock file is held while young and taken over once older than the grace period", () => {
    const lock = new LockFile(path);
    for (const content of ["", "{\"pid\":"]) {
      writeFileSync(path, content);
      // Dated in the future: young, whatever the machine's speed.
      utimesSync(path, new Date(Date.parse("2100-01-01T00:00:00Z")), new Date(Date.parse("2100-01-01T00:00:00Z")));
      const young = lock.tryAcquire(me());
      assert.ok("busy" in young);
      assert.equal(young.busy, undefined);
      old(path);
      const r = lock.tryAcquire(me());
      assert.ok("held" in r, JSON.stringify(content));
      r.held.release();
    }
  });

  it("a taker killed while claiming a stale lock does not block it; a live taker does", () => {
    const lock = new LockFile(path);
    const staleId = "aaaaaaaaaaaaaaaaaaaaaaaa";
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), lock: staleId }));
    // A taker that is alive right now is mid-takeover: wait for it.
    writeFileSync(`${path}.claim.${staleId}`, JSON.stringify({ pid: process.ppid, host: hostname(), lock: "bbbbbbbbbbbbbbbbbbbbbbbb", root: staleId }));
    const busy = lock.tryAcquire(me());
    assert.ok("busy" in busy);
    // The taker died before replacing the lock: its claim is claimed in turn.
    writeFileSync(`${path}.claim.${staleId}`, JSON.stringify({ pid: deadPid(), host: hostname(), lock: "bbbbbbbbbbbbbbbbbbbbbbbb", root: staleId }));
    const r = lock.tryAcquire(me());
    assert.ok("held" in r);
    assert.equal(lock.holder()?.pid, process.pid);
    r.held.release();
    assert.deepEqual(readdirSync(dir), [], "claims of a replaced lock are removed");
  });

  it("sweeps what dead processes left beside the lock; keeps what live ones use", () => {
    const lock = new LockFile(path);
    const dead = deadPid();
    const leftovers = [
      `.x.lock.${hostTag}-${dead}.0badcafe.tmp`, // a temporary file of a killed dsops
      `x.lock.${dead}.tmp`, // older versions' takeover temporary file
      "x.lock.takeover", // older versions' takeover guard, of a dead pid
      "x.lock.claim.cccccccccccccccccccccccc", // the claim of a lock that no longer exists
    ];
    for (const name of leftovers) writeFileSync(join(dir, name), name === "x.lock.takeover" ? String(dead) : name.includes("claim") ? JSON.stringify({ pid: dead, host: hostname(), lock: "dddddddddddddddddddddddd", root: "cccccccccccccccccccccccc" }) : "");
    const live = `.x.lock.${hostTag}-${process.ppid}.0badcafe.tmp`;
    writeFileSync(join(dir, live), "");
    writeFileSync(join(dir, "unrelated.tmp"), "");
    const r = lock.tryAcquire(me());
    assert.ok("held" in r);
    r.held.release();
    assert.deepEqual(readdirSync(dir).sort(), [live, "unrelated.tmp"].sort());
  });

  it("acquire waits while the lock is held and takes it once released", async () => {
    const lock = new LockFile(path);
    const first = lock.tryAcquire(me("first"));
    assert.ok("held" in first);
    const waiting = lock.acquire(me("second"), 60_000);
    let got = false;
    void waiting.then(() => (got = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(got, false, "still waiting while the first holds it");
    first.held.release();
    const held = await waiting;
    assert.equal(lock.holder()?.who, "second");
    held.release();
  });

  it("acquire gives up after the wait, naming the holder, when one live holder keeps it", async () => {
    writeFileSync(path, JSON.stringify({ pid: process.ppid, host: hostname(), who: "ops@box", since: "2026-01-01T00:00:00.000Z" }));
    await assert.rejects(new LockFile(path).acquire(me(), 30), (e: unknown) => {
      assert.ok(e instanceof LockBusyError);
      assert.equal(e.message, `${path} is held by pid ${process.ppid} on host ${hostname()} (ops@box, since 2026-01-01T00:00:00.000Z), which is still running; gave up after waiting 30ms`);
      return true;
    });
    assert.equal(new LockFile(path).holder()?.who, "ops@box");
  });

  it("keeps writers of several processes mutually exclusive, some killed while holding it (kill -9)", async function () {
    this.timeout(120_000);
    const counter = join(dir, "counter");
    writeFileSync(counter, "0");
    const lockModule = join(__dirname, "..", "..", "provider", "core", "lock.js");
    // Each worker adds 1 to the counter under the lock (read, write beside, rename), logs it,
    // and worker k < 4 kills itself (SIGKILL) at iteration 3k+2 while still holding the lock.
    const worker = `
      const fs = require("fs"), os = require("os");
      const { LockFile } = require(${JSON.stringify(lockModule)});
      const [dir, id, n, killAt] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
      (async () => {
        const lock = new LockFile(dir + "/counter.lock");
        for (let i = 0; i < n; i++) {
          const held = await lock.acquire({ pid: process.pid, host: os.hostname() }, 60000);
          const c = Number(fs.readFileSync(dir + "/counter", "utf8"));
          fs.writeFileSync(dir + "/counter." + id, String(c + 1));
          fs.renameSync(dir + "/counter." + id, dir + "/counter");
          fs.appendFileSync(dir + "/log." + id, "x");
          if (i === killAt) process.kill(process.pid, "SIGKILL");
          held.release();
        }
      })();`;
    const workers = Array.from({ length: 8 }, (_, k) => {
      const child = spawn(process.execPath, ["-e", worker, dir, String(k), "25", String(k < 4 ? 3 * k + 2 : -1)], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d));
      return new Promise<{ k: number; code: number | null; signal: NodeJS.Signals | null; err: string }>((res) => child.on("exit", (code, signal) => res({ k, code, signal, err })));
    });
    const results = await Promise.all(workers);
    for (const r of results) {
      if (r.k < 4) assert.equal(r.signal, "SIGKILL", `worker ${r.k}: ${r.err}`);
      else assert.equal(r.code, 0, `worker ${r.k}: ${r.err}`);
    }
    const logged = results.reduce((n, r) => n + (existsSync(join(dir, `log.${r.k}`)) ? readFileSync(join(dir, `log.${r.k}`), "utf8").length : 0), 0);
    assert.equal(logged, 4 * 25 + (3 + 6 + 9 + 12), "every worker's increments, the killed ones' up to their death");
    assert.equal(Number(readFileSync(counter, "utf8")), logged, "no increment lost: never two holders at once");
    // Whatever the killed workers left is taken over and swept by the next acquisition.
    const last = new LockFile(join(dir, "counter.lock")).tryAcquire(me());
    assert.ok("held" in last);
    last.held.release();
    assert.deepEqual(readdirSync(dir).filter((f) => !/^(counter|log\.\d+)$/.test(f)), []);
  });
});
