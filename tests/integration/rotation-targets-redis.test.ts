import { strict as assert } from "node:assert";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { RotationError } from "../../provider/rotation/index";
import { RedisTarget, redisPasswordHash, userPasswords } from "../../provider/rotation/targets/redis";
import { startRedis, type RunningRedis } from "../support/redis";
import { targetContract, type RotationBench } from "../support/target-contract";

/**
 * Rotation of real Redis 7 ACL users (a server started by the test on a free loopback port): the
 * target contract (single-user, alternating-users, two-secret with a grace period — two
 * passwords valid at once —, failing verifications rolled back, emergency, crashes at every
 * step, no value anywhere, the server's log included), then what only this target does: users
 * created with create_with, users switched off that stay off, revoking one or every password.
 */
let redis: RunningRedis;
const adminCred = () => JSON.stringify({ username: redis.adminUser, password: redis.adminPassword });
/** Rotated users may PING and GET app:* keys only: a verification query `GET secret:x` fails. */
const RULES = ["~app:*", "+ping", "+get"];

async function passwordsOf(user: string): Promise<string[]> {
  return userPasswords(await redis.command(["ACL", "GETUSER", user]));
}

async function createUser(bench: RotationBench, user: string, password: string): Promise<void> {
  bench.values.add(password);
  await redis.command(["ACL", "SETUSER", user, "on", `#${redisPasswordHash(password)}`, ...RULES]);
}

targetContract(
  {
    label: "redis (real Redis ACL users)",
    type: "redis",
    service: "cache",
    badSettings: [
      [{ admin: "x" }, /services\.x\.admin/],
      [{ admin: "store://a/b", port: "x" }, /services\.x\.port/],
    ],
    minimalSettings: { admin: "store://a/b" },
    targetClass: RedisTarget,
    capabilities: ["rotate", "create", "revoke", "verify"],
    async setup(bench) {
      redis = await startRedis();
      await bench.store().put("redis/admin", new Secret(adminCred()));
      bench.adminKeys.add("redis/admin");
      const init = (u: string) => `Init-${u}-${Math.random().toString(36).slice(2)}`;
      const off = init("offuser");
      await createUser(bench, "offuser", off);
      await bench.seed("app/off", off);
      const offsvc = init("offsvc");
      await createUser(bench, "offsvc", offsvc);
      await bench.seed("app/off-token", JSON.stringify({ username: "offsvc", password: offsvc }));
      const rotation = (strategy: string, user: string) => ({ service: "cache", strategy, user });
      return {
        service: { type: "redis", host: "127.0.0.1", port: redis.port, admin: "store://local/redis/admin", create_with: ["~app:*", "+@read", "+ping"] },
        moreVariables: {
          NEWUSER: { from: "store://local/app/newuser", rotation: rotation("single-user", "fresh") },
          OFF: { from: "store://local/app/off", rotation: rotation("single-user", "offuser") },
          OFF_TOKEN: { from: "store://local/app/off-token", rotation: rotation("two-secret", "offsvc") },
        },
        async principal(user, password) {
          await createUser(bench, user, password);
          return { username: user, password };
        },
        canLogin: (user, password) => redis.canLogin(user, password),
        failingVerification: { query: "GET secret:x", reason: /NOPERM/ },
        credentialsOf: passwordsOf,
        // passwords travel and are kept as their SHA-256
        credentialId: (_user, cred) => redisPasswordHash(cred.password),
        checkMinted: (user, cred) => assert.equal(cred.username, user),
        haystacks: async () => [["Redis log", redis.log()]],
        stop: async () => redis?.stop(),
      };
    },
  },
  (bench) => {
    const target = (raw: unknown = bench.config.raw.services.cache) =>
      new RedisTarget("cache", raw, { resolveRef: async () => new Secret(adminCred()), clock: systemClock, configDir: bench.dir });

    it("single-user on a user that does not exist yet: created with create_with, then set", async () => {
      const r = await bench.rotate("NEWUSER");
      assert.ok(!(r instanceof Error), String(r));
      assert.equal(await redis.canLogin("fresh", await bench.stored("app/newuser")), true);
      const info = (await redis.command(["ACL", "GETUSER", "fresh"])) as unknown[];
      assert.match(JSON.stringify(info), /~app:\*/);
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
        const old = await bench.stored(key);
        const err = await bench.rotate(variable);
        assert.ok(err instanceof RotationError, `${variable}: ${String(err)}`);
        assert.match(err.message, new RegExp(`rolled back: .*AUTH as "${user}" failed`), variable);
        assert.ok((await flags(user)).includes("off"), `${variable}: the user is still off`);
        assert.ok(!(await flags(user)).includes("on"), variable);
        assert.deepEqual(await passwordsOf(user), before, `${variable}: the user's passwords are the ones it had`);
        assert.equal(await bench.stored(key), old, variable);
        assert.equal((await bench.store().stagesOf(key)).pending, undefined, variable);
        // Switched on by its administrator, the stored password works (it was never changed).
        await redis.command(["ACL", "SETUSER", user, "on"]);
        const pw = json ? (JSON.parse(old) as { password: string }).password : old;
        assert.equal(await redis.canLogin(user, pw), true, variable);
      }
    });

    it("revoke: one password, all passwords, a missing user; errors carry no value", async () => {
      const t = target();
      try {
        const a = await t.create("revk", new Secret(`Rv-${Math.random()}`));
        const b = await t.create("revk", new Secret(`Rv-${Math.random()}`));
        bench.values.add(a.secret.reveal()).add(b.secret.reveal());
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
          bench.outputs.push(e.message);
          return /AUTH as "revk" failed/.test(e.message) && !e.message.includes(b.secret.reveal());
        });
        const noCreate = target({ type: "redis", port: redis.port, admin: "store://local/redis/admin" });
        try {
          await assert.rejects(noCreate.setSecret({ principal: "ghost", secret: a.secret }), /Redis user "ghost" does not exist/);
        } finally {
          await noCreate.close();
        }
      } finally {
        await t.close();
      }
    });
  },
);
