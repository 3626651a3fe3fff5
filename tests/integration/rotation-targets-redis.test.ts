import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock, systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError, createTarget, type FaultPoint } from "../../provider/rotation/index";
import { RedisTarget, redisPasswordHash, userPasswords } from "../../provider/rotation/targets/redis";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { startRedis, type RunningRedis } from "../support/redis";

/**
 * Rotation of real Redis 7 ACL users (a server started by the test on a free loopback port)
 * through the rotation engine: single-user, alternating-users, two-secret with a grace period
 * (two passwords valid at once), failing verifications rolled back, crashes resumed, and a
 * search for every value in records, events, errors and the server's log.
 */
describe("rotation: redis target (real Redis ACL users)", function () {
  this.timeout(120000);
  let redis: RunningRedis;
  let dir: string;
  let config: Config;
  const clock = new ManualClock(Date.now());
  const values = new Set<string>();
  const outputs: string[] = [];
  const env = { DSOPS_FILE_KEY: "redis-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const engine = (opts: ConstructorParameters<typeof RotationEngine>[1] = {}) =>
    new RotationEngine(config, { env: { ...process.env, ...env }, clock, onEvent: (m) => outputs.push(m), ...opts });

  async function stored(key: string, version = "current"): Promise<string> {
    const v = (await store().get({ key, version })).value.reveal();
    values.add(v);
    try {
      const o = JSON.parse(v) as { password?: string };
      if (o.password) values.add(o.password);
    } catch {
      /* a plain password */
    }
    return v;
  }
  const storedCred = async (key: string, version = "current") => JSON.parse(await stored(key, version)) as { username: string; password: string };

  function history(): RotationRecord[] {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n"))
      if (line.trim()) recs.set((JSON.parse(line) as RotationRecord).id, JSON.parse(line) as RotationRecord);
    return [...recs.values()];
  }

  async function passwordsOf(user: string): Promise<string[]> {
    return userPasswords(await redis.command(["ACL", "GETUSER", user]));
  }

  async function createUser(user: string, password: string, rules = ["~*", "+@all"]): Promise<void> {
    values.add(password);
    await redis.command(["ACL", "SETUSER", user, "on", `#${redisPasswordHash(password)}`, ...rules]);
  }

  async function seed(key: string, value: string): Promise<void> {
    values.add(value);
    await store().put(key, new Secret(value));
  }

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-redis-"));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  cache:
    type: redis
    host: 127.0.0.1
    port: ${redis.port}
    admin: "store://local/redis/admin"
    create_with: ["~app:*", "+@read", "+ping"]
envs:
  prod:
    PW:
      from: "store://local/app/pw"
      rotation: { service: cache, strategy: single-user, user: app }
    LOGIN:
      from: "store://local/app/login"
      rotation: { service: cache, strategy: alternating-users, users: [app_a, app_b] }
    TOKEN:
      from: "store://local/app/token"
      rotation: { service: cache, strategy: two-secret, user: svc, grace_period: 1h }
    BAD:
      from: "store://local/app/bad"
      rotation: { service: cache, strategy: single-user, user: bad, verification: { query: "GET secret:x" } }
    BAD_TOKEN:
      from: "store://local/app/bad-token"
      rotation: { service: cache, strategy: two-secret, user: badsvc, verification: { query: "GET secret:x" } }
    CRASH:
      from: "store://local/app/crash"
      rotation: { service: cache, strategy: two-secret, user: crashsvc, grace_period: 1s }
    NEWUSER:
      from: "store://local/app/newuser"
      rotation: { service: cache, strategy: single-user, user: fresh }
    OFF:
      from: "store://local/app/off"
      rotation: { service: cache, strategy: single-user, user: offuser }
    OFF_TOKEN:
      from: "store://local/app/off-token"
      rotation: { service: cache, strategy: two-secret, user: offsvc }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    await store().put("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
    const init = (u: string) => `Init-${u}-${Math.random().toString(36).slice(2)}`;
    for (const [key, user] of [
      ["app/pw", "app"],
      ["app/bad", "bad"],
      ["app/off", "offuser"],
    ]) {
      const pw = init(user);
      await createUser(user, pw, user === "bad" ? ["~app:*", "+ping", "+get"] : undefined);
      await seed(key, pw);
    }
    for (const [key, user] of [
      ["app/login", "app_a"],
      ["app/token", "svc"],
      ["app/bad-token", "badsvc"],
      ["app/crash", "crashsvc"],
      ["app/off-token", "offsvc"],
    ]) {
      const pw = init(user);
      await createUser(user, pw, user === "badsvc" ? ["~app:*", "+ping", "+get"] : undefined);
      await seed(key, JSON.stringify({ username: user, password: pw }));
    }
    await createUser("app_b", init("app_b"));
  });

  after(async () => {
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("checks its settings; can rotate, create, revoke and verify", () => {
    const ctx = { resolveRef: async () => new Secret(""), clock: systemClock, configDir: "." };
    assert.throws(() => createTarget("c", { type: "redis", admin: "x" }, ctx), (e: unknown) => e instanceof ConfigError && /services\.c\.admin/.test((e as Error).message));
    assert.throws(() => createTarget("c", { type: "redis", admin: "store://a/b", port: "x" }, ctx), /services\.c\.port/);
    const t = createTarget("c", { type: "redis", admin: "store://a/b" }, ctx);
    assert.ok(t instanceof RedisTarget);
    assert.deepEqual([...t.capabilities].sort(), ["create", "revoke", "rotate", "verify"]);
  });

  it("single-user: replaces the user's password; the old one stops working", async () => {
    const old = await stored("app/pw");
    const e = engine();
    try {
      const r = await e.rotate("prod", "PW");
      assert.deepEqual(
        r.record.steps.map((s) => `${s.name}:${s.outcome}`),
        ["generate:ok", "stage:ok", "apply:ok", "verify:ok", "promote:ok", "retire:skipped"],
      );
    } finally {
      await e.close();
    }
    const now = await stored("app/pw");
    assert.notEqual(now, old);
    assert.equal(await redis.canLogin("app", now), true);
    assert.equal(await redis.canLogin("app", old), false);
    assert.deepEqual(await passwordsOf("app"), [redisPasswordHash(now)], "one password, sent hashed");
  });

  it("single-user on a user that does not exist yet: created with create_with, then set", async () => {
    const e = engine();
    try {
      await e.rotate("prod", "NEWUSER");
    } finally {
      await e.close();
    }
    assert.equal(await redis.canLogin("fresh", await stored("app/newuser")), true);
    const info = (await redis.command(["ACL", "GETUSER", "fresh"])) as unknown[];
    assert.match(JSON.stringify(info), /~app:\*/);
  });

  it("alternating-users: changes the inactive user; the previous user keeps working", async () => {
    const first = await storedCred("app/login");
    const e = engine();
    try {
      await e.rotate("prod", "LOGIN");
      const second = await storedCred("app/login");
      assert.equal(second.username, "app_b");
      assert.equal(await redis.canLogin("app_b", second.password), true);
      assert.equal(await redis.canLogin("app_a", first.password), true);
      await e.rotate("prod", "LOGIN");
      const third = await storedCred("app/login");
      assert.equal(third.username, "app_a");
      assert.equal(await redis.canLogin("app_a", third.password), true);
      assert.equal(await redis.canLogin("app_a", first.password), false);
      assert.equal(await redis.canLogin("app_b", second.password), true);
    } finally {
      await e.close();
    }
  });

  it("two-secret: both passwords work during the grace period; the old one is revoked after it", async () => {
    const old = await storedCred("app/token");
    const e = engine();
    try {
      const r = await e.rotate("prod", "TOKEN");
      assert.equal(r.record.status, "grace");
      assert.deepEqual(
        r.record.steps.map((s) => `${s.name}:${s.outcome}`),
        ["apply:ok", "stage:ok", "verify:ok", "promote:ok"],
      );
      const now = await storedCred("app/token");
      assert.equal(now.username, "svc");
      assert.equal(await redis.canLogin("svc", now.password), true);
      assert.equal(await redis.canLogin("svc", old.password), true, "the old password works during the grace period");
      assert.equal((await passwordsOf("svc")).length, 2);
      await assert.rejects(e.rotate("prod", "TOKEN"), /grace period until/);
      clock.advance(3600 * 1000 + 1);
      const done = await e.rotate("prod", "TOKEN");
      assert.equal(done.resumed, true);
      assert.equal(done.record.status, "succeeded");
      assert.equal(await redis.canLogin("svc", old.password), false, "the old password is revoked after the grace period");
      assert.equal(await redis.canLogin("svc", now.password), true);
      assert.deepEqual(await passwordsOf("svc"), [redisPasswordHash(now.password)]);
    } finally {
      await e.close();
    }
  });

  it("single-user: a failing verification rolls back; the old password still works", async () => {
    const old = await stored("app/bad");
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "BAD");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, /rolled back: .*NOPERM/);
    assert.equal(await stored("app/bad"), old);
    assert.equal(await redis.canLogin("bad", old), true);
    assert.equal((await store().stagesOf("app/bad")).pending, undefined);
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.equal(rec.status, "rolled-back");
  });

  it("two-secret: a failing verification revokes the new password; the old one still works", async () => {
    const old = await storedCred("app/bad-token");
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "BAD_TOKEN");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.deepEqual(await storedCred("app/bad-token"), old);
    assert.equal(await redis.canLogin("badsvc", old.password), true);
    assert.deepEqual(await passwordsOf("badsvc"), [redisPasswordHash(old.password)], "the new password is gone");
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.deepEqual(
      rec.steps.map((s) => `${s.name}:${s.outcome}`),
      ["apply:ok", "stage:ok", "verify:failed", "restore:ok", "discard:ok"],
    );
  });

  it("two-secret: a run that dies at each step is finished by the next run; the stored credential works throughout", async () => {
    const points = ["apply", "stage", "verify", "promote"].flatMap((x) => [`before:${x}`, `after:${x}`]) as FaultPoint[];
    for (const point of points) {
      const crashing = engine({
        fault: (p) => {
          if (p === point) throw new Error(`simulated crash at ${p}`);
        },
      });
      await assert.rejects(crashing.rotate("prod", "CRASH"), /simulated crash/);
      await crashing.close();
      const cur = await storedCred("app/crash");
      assert.equal(await redis.canLogin(cur.username, cur.password), true, `${point}: stored current works after the crash`);
      clock.advance(2000); // past the 1 s grace period
      const e = engine();
      try {
        let r = await e.rotate("prod", "CRASH");
        assert.equal(r.resumed, true, point);
        if (r.record.status === "grace") {
          clock.advance(2000);
          r = await e.rotate("prod", "CRASH");
        }
        assert.equal(r.record.status, "succeeded", point);
      } finally {
        await e.close();
      }
      const now = await storedCred("app/crash");
      assert.equal(await redis.canLogin(now.username, now.password), true, `${point}: current works after the resume`);
      // An orphan (a password minted by a crashed apply and never staged) may remain: the target cannot list passwords by owner.
      assert.ok((await passwordsOf("crashsvc")).includes(redisPasswordHash(now.password)));
    }
  });

  it("a user its administrator switched off stays off (single-user and two-secret): verification fails, the rotation rolls back, its passwords are as they were", async () => {
    // ACL GETUSER answers a flat field/value list or a map, depending on protocol and client.
    const flags = async (user: string) => {
      const info = await redis.command(["ACL", "GETUSER", user]);
      let f: unknown;
      if (Array.isArray(info)) f = info[info.findIndex((x) => String(x) === "flags") + 1];
      else if (info instanceof Map) f = info.get("flags");
      else f = (info as Record<string, unknown>).flags;
      assert.ok(Array.isArray(f), `ACL GETUSER ${user}: no flags in ${JSON.stringify(info)}`);
      return (f as unknown[]).map(String);
    };
    for (const [variable, key, user, json] of [
      ["OFF", "app/off", "offuser", false],
      ["OFF_TOKEN", "app/off-token", "offsvc", true],
    ] as const) {
      await redis.command(["ACL", "SETUSER", user, "off"]);
      const before = await passwordsOf(user);
      const old = await stored(key);
      const e = engine();
      let err: unknown;
      try {
        await e.rotate("prod", variable);
      } catch (x) {
        err = x;
      } finally {
        await e.close();
      }
      assert.ok(err instanceof RotationError, `${variable}: ${String(err)}`);
      outputs.push((err as Error).message);
      assert.match((err as Error).message, new RegExp(`rolled back: .*AUTH as "${user}" failed`), variable);
      assert.ok((await flags(user)).includes("off"), `${variable}: the user is still off`);
      assert.ok(!(await flags(user)).includes("on"), variable);
      assert.deepEqual(await passwordsOf(user), before, `${variable}: the user's passwords are the ones it had`);
      assert.equal(await stored(key), old, variable);
      assert.equal((await store().stagesOf(key)).pending, undefined, variable);
      // Switched on by its administrator, the stored password works (it was never changed).
      await redis.command(["ACL", "SETUSER", user, "on"]);
      const pw = json ? (JSON.parse(old) as { password: string }).password : old;
      assert.equal(await redis.canLogin(user, pw), true, variable);
    }
  });

  it("revoke: one password, all passwords, a missing user; errors carry no value", async () => {
    const t = new RedisTarget("cache", config.raw.services.cache, {
      resolveRef: async () => new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })),
      clock: systemClock,
      configDir: dir,
    });
    try {
      const a = await t.create("revk", new Secret(`Rv-${Math.random()}`));
      const b = await t.create("revk", new Secret(`Rv-${Math.random()}`));
      values.add(a.secret.reveal()).add(b.secret.reveal());
      assert.equal(await redis.canLogin("revk", a.secret.reveal()), true);
      await t.revoke(a);
      await t.revoke(a); // again: no-op
      assert.equal(await redis.canLogin("revk", a.secret.reveal()), false);
      assert.equal(await redis.canLogin("revk", b.secret.reveal()), true);
      await t.revoke({ principal: "revk", secret: new Secret("") });
      assert.equal(await redis.canLogin("revk", b.secret.reveal()), false);
      await t.revoke({ principal: "no-such-user", secret: a.secret });
      assert.equal(await redis.command(["ACL", "GETUSER", "no-such-user"]), null, "revoke does not create a user");
      await assert.rejects(t.verify(b), (e: Error) => {
        outputs.push(e.message);
        return /AUTH as "revk" failed/.test(e.message) && !e.message.includes(b.secret.reveal());
      });
      const noCreate = new RedisTarget("c2", { type: "redis", port: redis.port, admin: "store://local/redis/admin" }, {
        resolveRef: async () => new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })),
        clock: systemClock,
        configDir: dir,
      });
      try {
        await assert.rejects(noCreate.setSecret({ principal: "ghost", secret: a.secret }), /Redis user "ghost" does not exist/);
      } finally {
        await noCreate.close();
      }
    } finally {
      await t.close();
    }
  });

  it("no value in records, events, errors or the server's log", () => {
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    const log = redis.log();
    assert.ok(values.size > 10);
    for (const v of values) {
      assert.ok(!recs.includes(v), "a value is in the history");
      assert.ok(!log.includes(v), "a value is in the server log");
      for (const o of outputs) assert.ok(!o.includes(v), "a value is in an event or error");
    }
  });
});
