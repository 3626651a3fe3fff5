import { strict as assert } from "node:assert";
import { configFromObject } from "../../provider/compose/config";
import { Resolver } from "../../provider/engine/resolve";
import { ResolveError, TimeoutError } from "../../provider/core/errors";
import { ManualClock } from "../../provider/core/clock";
import { MemoryStore } from "../support/memory-store";

function setup(envVars: Record<string, unknown>, opts: { batch?: number; settings?: Record<string, unknown>; resolver?: Record<string, unknown> } = {}) {
  const config = configFromObject({
    secretStores: { mem: { type: "literal", ...(opts.settings ?? {}) }, other: { type: "literal" } },
    envs: { dev: envVars },
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
  });
  const clock = new ManualClock(0);
  const mem = new MemoryStore("mem", { write: true, versions: true, batch: opts.batch ?? 0, binary: false }, clock);
  const other = new MemoryStore("other");
  const warnings: string[] = [];
  const resolver = new Resolver(config, { stores: { mem, other }, clock, onWarning: (w) => warnings.push(w), random: () => 0.5 });
  return { resolver, mem, other, clock, warnings };
}

describe("resolver", () => {
  it("resolves literals first, then from, applying fields and transforms", async () => {
    const { resolver, mem } = setup({
      LIT: { literal: " v ", transform: "trim" },
      BOTH: { literal: "lit", from: "store://mem/x" },
      DB_PW: { from: "store://mem/db#password" },
      DB_USER: { from: { store: "mem", key: "db#user" }, transform: "base64_encode" },
    });
    mem.set("db", JSON.stringify({ user: "app", password: "pw-1" })).set("x", "from-store");
    const r = await resolver.resolveEnv("dev");
    assert.deepEqual(Object.keys(r.variables), ["BOTH", "DB_PW", "DB_USER", "LIT"]);
    assert.equal(r.variables.LIT.value.reveal(), "v");
    assert.equal(r.variables.BOTH.value.reveal(), "lit");
    assert.equal(r.variables.DB_PW.value.reveal(), "pw-1");
    assert.equal(r.variables.DB_USER.value.reveal(), "YXBw");
    assert.equal(r.variables.DB_PW.versionId, "1");
    // one fetch for the two fields of "db", none for the literal that shadows x
    assert.deepEqual(mem.calls.map((c) => c.keys).flat().sort(), ["db"]);
  });

  it("collects every failure with variable, store, key and cause, and no value", async () => {
    const { resolver, mem } = setup({
      A: { from: "store://mem/missing" },
      B: { from: "store://mem/json#nope" },
      C: { from: "store://mem/json", transform: "base64_decode" },
      D: { from: "store://mem/json#ok" },
    });
    mem.set("json", JSON.stringify({ ok: "fine", secret: "sensitive-value-77" }));
    await assert.rejects(resolver.resolveEnv("dev"), (e: unknown) => {
      assert.ok(e instanceof ResolveError);
      assert.deepEqual(e.failures.map((f) => [f.variable, f.store, f.key]), [["A", "mem", "missing"], ["B", "mem", "json"], ["C", "mem", "json"]]);
      assert.match(e.failures[0].cause, /not found/);
      assert.match(e.failures[1].cause, /no key "nope"/);
      assert.match(e.failures[2].cause, /base64_decode/);
      assert.ok(!e.message.includes("sensitive-value-77") && !e.message.includes("fine"));
      assert.match(e.message, /env "dev": 3 variables failed to resolve/);
      return true;
    });
  });

  it("leaves out optional variables with a warning and never fails for them", async () => {
    const { resolver, warnings } = setup({ OPT: { from: "store://mem/none", optional: true }, L: { literal: "x" } });
    const r = await resolver.resolveEnv("dev");
    assert.deepEqual(Object.keys(r.variables), ["L"]);
    assert.equal(r.warnings.length, 1);
    assert.match(warnings[0], /^OPT: optional, left out: store "mem": secret "none" not found$/);
  });

  it("batches requests of one tick per store in chunks of the store's batch size", async () => {
    const vars: Record<string, unknown> = {};
    for (let i = 0; i < 45; i++) vars[`V${i}`] = { from: `store://mem/k${i}` };
    vars.SAME = { from: "store://mem/k0" };
    const { resolver, mem } = setup(vars, { batch: 20 });
    for (let i = 0; i < 45; i++) mem.set(`k${i}`, `v${i}`);
    const r = await resolver.resolveEnv("dev");
    assert.equal(r.variables.V44.value.reveal(), "v44");
    assert.equal(r.variables.SAME.value.reveal(), "v0");
    assert.deepEqual(mem.calls.map((c) => [c.method, c.keys.length]), [["getMany", 20], ["getMany", 20], ["getMany", 5]]);
    assert.equal(resolver.stats.calls, 3);
  });

  it("retries throttling with jittered exponential backoff on the injected clock", async () => {
    const { resolver, mem, clock, warnings } = setup({ A: { from: "store://mem/a" } }, { settings: { retries: 3 } });
    mem.set("a", "x");
    mem.failNext = 2;
    const p = resolver.resolveEnv("dev");
    // random() = 0.5: first backoff 0.5*200 = 100 ms, second 0.5*400 = 200 ms
    // (waits for the first retry's warning: the attempt's timeout no longer lingers as a sleeper)
    while (warnings.length < 1) await new Promise((r) => setImmediate(r));
    clock.advance(100);
    while (warnings.length < 2) await new Promise((r) => setImmediate(r));
    clock.advance(200);
    const r = await p;
    assert.equal(r.variables.A.value.reveal(), "x");
    assert.deepEqual(warnings.map((w) => w.replace(/ after.*/, "")), ['store "mem": retry 1 in 100 ms', 'store "mem": retry 2 in 200 ms']);
    assert.equal(mem.calls.length, 3);
  });

  it("does not retry what is not transient", async () => {
    const { resolver, mem } = setup({ A: { from: "store://mem/none" } }, { settings: { retries: 3 } });
    await assert.rejects(resolver.resolveEnv("dev"), ResolveError);
    assert.equal(mem.calls.length, 1);
  });

  it("abandons a call after timeout_ms", async () => {
    const { resolver, mem, clock } = setup({ A: { from: "store://mem/a" } }, { settings: { timeout_ms: 1000, retries: 0 } });
    mem.set("a", "x");
    mem.delayMs = 5000;
    const p = resolver.resolveEnv("dev");
    while (clock.sleepers < 2) await new Promise((r) => setImmediate(r));
    clock.advance(1000);
    await assert.rejects(p, (e: unknown) => e instanceof ResolveError && /no answer within 1000 ms \(timeout_ms\)/.test(e.failures[0].cause));
    assert.ok(new TimeoutError("x").retryable);
  });

  it("clears each attempt's timeout when the call settles: no sleeper is left behind", async () => {
    const { resolver, mem, clock, warnings } = setup({ A: { from: "store://mem/a" } }, { settings: { retries: 1, timeout_ms: 1000 } });
    mem.set("a", "x");
    mem.failNext = 1;
    const p = resolver.resolveEnv("dev");
    while (warnings.length < 1) await new Promise((r) => setImmediate(r));
    // the failed attempt's timeout is gone; only the backoff sleeps
    assert.equal(clock.sleepers, 1);
    clock.advance(100);
    const r = await p;
    assert.equal(r.variables.A.value.reveal(), "x");
    assert.equal(clock.sleepers, 0, "a timeout sleep outlived its call");
  });

  it("keeps at most `concurrency` store calls in flight", async () => {
    const vars: Record<string, unknown> = {};
    for (let i = 0; i < 10; i++) vars[`V${i}`] = { from: `store://mem/k${i}` };
    const { resolver, mem, clock } = setup(vars, { resolver: { concurrency: 3 } });
    for (let i = 0; i < 10; i++) mem.set(`k${i}`, `v${i}`);
    mem.delayMs = 10;
    const p = resolver.resolveEnv("dev");
    while (mem.calls.length < 10 || mem.active > 0) {
      await new Promise((r) => setImmediate(r));
      clock.advance(10);
    }
    await p;
    assert.equal(mem.maxActive, 3);
  });

  it("plans without calling any store", () => {
    const { resolver, mem } = setup({ A: { from: "store://mem/a#f?version=2", transform: "trim" }, B: { literal: "x" } });
    assert.deepEqual(resolver.plan("dev"), [
      { name: "A", source: "store", store: "mem", storeType: "literal", key: "a", field: "f", version: "2", transforms: ["trim"], optional: false },
      { name: "B", source: "literal", transforms: [], optional: false },
    ]);
    assert.equal(mem.calls.length, 0);
  });

  it("names unknown envs and variables", async () => {
    const { resolver } = setup({ A: { literal: "x" } });
    await assert.rejects(resolver.resolveEnv("prod"), /unknown env "prod"/);
    await assert.rejects(resolver.resolveEnv("dev", ["Z"]), /env "dev" has no variable "Z"/);
  });

  it("shares nothing between envs resolved in parallel", async () => {
    const config = configFromObject({
      secretStores: { mem: { type: "literal" } },
      envs: Object.fromEntries(Array.from({ length: 8 }, (_, e) => [`e${e}`, { V: { from: `store://mem/k${e}` }, W: { from: "store://mem/shared" } }])),
    });
    const mem = new MemoryStore("mem", { write: true, versions: true, batch: 5, binary: false });
    for (let e = 0; e < 8; e++) mem.set(`k${e}`, `value-${e}`);
    mem.set("shared", "s");
    const r = new Resolver(config, { stores: { mem } });
    const results = await Promise.all(Array.from({ length: 8 }, (_, e) => r.resolveEnv(`e${e}`)));
    results.forEach((res, e) => {
      assert.equal(res.variables.V.value.reveal(), `value-${e}`);
      assert.equal(res.variables.W.value.reveal(), "s");
    });
    assert.equal(mem.calls.flatMap((c) => c.keys).filter((k) => k === "shared").length, 1);
  });

  it("asks the store again after a failed fetch: a long-lived resolver keeps no error, and keeps its successes", async () => {
    // one resolver for every call, as the Pulumi provider process holds it
    const { resolver, mem } = setup({ A: { from: "store://mem/a" }, B: { from: "store://mem/b" } }, { batch: 5 });
    mem.set("b", "value-b");
    await assert.rejects(resolver.resolveEnv("dev"), (e: unknown) => e instanceof ResolveError && e.failures.map((f) => f.variable).join() === "A");
    mem.set("a", "value-a");
    const r = await resolver.resolveEnv("dev");
    assert.equal(r.variables.A.value.reveal(), "value-a");
    assert.equal(r.variables.B.value.reveal(), "value-b");
    const fetched = (key: string) => mem.calls.flatMap((c) => c.keys).filter((k) => k === key).length;
    assert.equal(fetched("a"), 2, "the failed fetch is made again");
    assert.equal(fetched("b"), 1, "a fetch that succeeded is not");
  });

  it("asks the store again after a fetch that failed every retry", async () => {
    const { resolver, mem } = setup({ A: { from: "store://mem/a" } }, { settings: { retries: 0 } });
    mem.set("a", "value-a");
    mem.failNext = 1;
    await assert.rejects(resolver.resolveRef({ store: "mem", key: "a" }), /throttled/);
    assert.equal((await resolver.resolveRef({ store: "mem", key: "a" })).value.reveal(), "value-a");
    assert.equal(mem.calls.length, 2);
  });
});
