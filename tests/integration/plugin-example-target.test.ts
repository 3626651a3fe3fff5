import { createHash } from "node:crypto";
import { join } from "node:path";
import { Secret } from "../../provider/core/secret";
import { userPasswords } from "../../provider/rotation/targets/redis";
import { startRedis, type RunningRedis } from "../support/redis";
import type { RotationBench } from "../../provider/library/testing/index";

// The contract as a plugin author gets it: the package's `testing` export (node_modules/@dsops/pulumi is this checkout).
const { targetContract } = require("@dsops/pulumi/testing") as typeof import("../../provider/library/testing/index");

/**
 * The example plugin's rotation target (examples/plugin-acme, type acme.redis-acl) against a real
 * Redis 7 server on loopback, through the same target contract as the built-in targets: the
 * contract's dsops.yaml names the plugin (`plugins:`), so the in-process engine and every `dsops`
 * run of the crash scenarios load it by path, as a user's dsops.yaml would.
 */
const PLUGIN = join(__dirname, "..", "..", "..", "examples", "plugin-acme");
let redis: RunningRedis;
/** Rotated users may PING and GET app:* keys only: a verification query `GET secret:x` fails. */
const RULES = ["~app:*", "+ping", "+get"];
const sha256 = (p: string) => createHash("sha256").update(p, "utf8").digest("hex");

async function passwordsOf(user: string): Promise<string[]> {
  return userPasswords(await redis.command(["ACL", "GETUSER", user]));
}

async function createUser(bench: RotationBench, user: string, password: string): Promise<void> {
  bench.values.add(password);
  await redis.command(["ACL", "SETUSER", user, "on", `#${sha256(password)}`, ...RULES]);
}

targetContract({
  label: "acme.redis-acl (the example plugin, real Redis ACL users)",
  type: "acme.redis-acl",
  plugins: [PLUGIN],
  service: "cache",
  badSettings: [
    [{ admin: "x" }, /services\.x\.admin: expected a reference/],
    [{ admin: "store://a/b", port: "x" }, /services\.x\.port/],
    [{ admin: "store://a/b", nope: 1 }, /services\.x: .*nope/],
  ],
  minimalSettings: { admin: "store://a/b" },
  capabilities: ["rotate", "revoke", "verify"],
  async setup(bench) {
    redis = await startRedis();
    await bench.store().put("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
    bench.adminKeys.add("redis/admin");
    return {
      service: { type: "acme.redis-acl", host: "127.0.0.1", port: redis.port, admin: "store://local/redis/admin" },
      async principal(user, password) {
        await createUser(bench, user, password);
        return { username: user, password };
      },
      canLogin: (user, password) => redis.canLogin(user, password),
      failingVerification: { query: "GET secret:x", reason: /NOPERM/ },
      credentialsOf: passwordsOf,
      credentialId: (_user, cred) => sha256(cred.password),
      haystacks: async () => [["Redis log", redis.log()]],
      stop: async () => redis?.stop(),
    };
  },
});
