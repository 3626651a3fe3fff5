import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { callWithPolicy } from "../../provider/core/call";
import { ManualClock } from "../../provider/core/clock";
import { StoreError, TimeoutError } from "../../provider/core/errors";

const CLOCK_MODULE = join(__dirname, "..", "..", "provider", "core", "clock.js");

/** Run a Node snippet in a process of its own (what keeps a process alive is a whole-process matter). */
function node(code: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("clock", () => {
  it("the system clock's sleep keeps the process alive until it wakes", () => {
    // Nothing else holds the event loop: an unreferenced timer would end the process first.
    const r = node(`require(${JSON.stringify(CLOCK_MODULE)}).systemClock.sleep(20).then(() => process.stdout.write("woke"));`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "woke");
  });

  it("a cancelled system sleep lets the process end at once, without waking", () => {
    const r = node(
      `const c = new AbortController();
       require(${JSON.stringify(CLOCK_MODULE)}).systemClock.sleep(600000, c.signal).then(() => process.stdout.write("woke"), (e) => process.stdout.write("cancelled:" + e.name));
       c.abort();`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "cancelled:AbortError");
  });

  it("a cancelled manual sleep is no longer a sleeper and never wakes", async () => {
    const clock = new ManualClock(0);
    const c = new AbortController();
    let woke = false;
    const p = clock.sleep(100, c.signal).then(() => (woke = true));
    const other = clock.sleep(100);
    assert.equal(clock.sleepers, 2);
    c.abort();
    await assert.rejects(p);
    assert.equal(clock.sleepers, 1);
    clock.advance(100);
    await other;
    assert.equal(woke, false);
    assert.equal(clock.sleepers, 0);
    await assert.rejects(clock.sleep(1, c.signal), "an already aborted signal");
    assert.equal(clock.sleepers, 0);
  });
});

describe("callWithPolicy", () => {
  const policy = (clock: ManualClock, over: Partial<Parameters<typeof callWithPolicy>[2]> = {}) => ({
    timeoutMs: 1000,
    retries: 2,
    baseBackoffMs: 100,
    maxBackoffMs: 1000,
    clock,
    random: () => 0.5,
    ...over,
  });
  const tick = () => new Promise((r) => setImmediate(r));

  it("leaves no timer behind once a call has answered", async () => {
    const clock = new ManualClock(0);
    assert.equal(await callWithPolicy("x", async () => 42, policy(clock)), 42);
    assert.equal(clock.sleepers, 0);
  });

  it("retries a transient failure after the backoff, then answers; no timer left", async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    let retries = 0;
    const p = callWithPolicy("x", async () => {
      if (++calls === 1) throw new StoreError("throttled", true);
      return "ok";
    }, policy(clock, { onRetry: () => retries++ }));
    while (retries < 1) await tick();
    assert.equal(clock.sleepers, 1, "only the backoff sleeps");
    clock.advance(50);
    assert.equal(await p, "ok");
    assert.equal(calls, 2);
    assert.equal(clock.sleepers, 0);
  });

  it("abandons an attempt after timeoutMs and retries it; the last timeout is the error", async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    const p = callWithPolicy("store \"s\"", () => (calls++, new Promise<never>(() => undefined)), policy(clock, { retries: 1 }));
    p.catch(() => undefined);
    while (calls < 1) await tick();
    clock.advance(1000); // attempt 1 times out
    while (clock.sleepers < 1) await tick();
    clock.advance(50); // backoff
    while (calls < 2) await tick();
    clock.advance(1000); // attempt 2 times out
    await assert.rejects(p, (e: unknown) => e instanceof TimeoutError && /store "s": no answer within 1000 ms \(timeout_ms\)/.test(e.message));
    assert.equal(clock.sleepers, 0);
  });

  it("with no timeoutMs of its own, an attempt sets no timer (the client's timeout applies)", async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    const p = callWithPolicy("x", async () => {
      if (++calls === 1) throw new StoreError("unavailable", true);
      return "ok";
    }, policy(clock, { timeoutMs: undefined }));
    while (clock.sleepers < 1) await tick();
    assert.equal(clock.sleepers, 1);
    clock.advance(50);
    assert.equal(await p, "ok");
  });

  it("does not retry what is not transient", async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    await assert.rejects(callWithPolicy("x", async () => {
      calls++;
      throw new StoreError("denied", false);
    }, policy(clock)), /denied/);
    assert.equal(calls, 1);
    assert.equal(clock.sleepers, 0);
  });

  it("the system clock's timeout timer is cleared when the call answers (the process does not wait it out)", () => {
    // A 10-minute timeout around a call that answers at once: the process must end right after.
    const call = join(__dirname, "..", "..", "provider", "core", "call.js");
    const r = spawnSync(
      process.execPath,
      ["-e", `require(${JSON.stringify(call)}).callWithPolicy("x", async () => "done", { timeoutMs: 600000, retries: 0, baseBackoffMs: 1, maxBackoffMs: 1, clock: require(${JSON.stringify(CLOCK_MODULE)}).systemClock }).then((v) => process.stdout.write(v));`],
      { encoding: "utf8", timeout: 60000 },
    );
    assert.equal(r.error, undefined, "the process waited for the timeout timer");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "done");
  });
});
