import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { startRedis, type RunningRedis } from "../support/redis";

/**
 * A RotationPolicy whose `strategy` is a plugin's (the example plugin's acme.json-login), the
 * plugin loaded by the provider from the stack config `dsops:plugins`: `check` (preview) accepts
 * it and refuses an unknown name on the policy's `strategy`, with did-you-mean; `create` with
 * rotateOnCreate rotates a real Redis ACL user through the plugin's target and stores the
 * plugin's JSON shape in the real file store.
 */
const ROOT = join(__dirname, "..", "..", "..");
const EXAMPLE = join(ROOT, "examples", "plugin-acme");

describe("RotationPolicy with a plugin's rotation strategy (dsops:plugins, real Redis)", function () {
  this.timeout(60000);
  let dir: string | undefined;
  let redis: RunningRedis | undefined;
  const FILE_KEY = "policy-plugin-key-" + Math.random().toString(36).slice(2);
  const initial = `Init-${Math.random().toString(36).slice(2)}-pol`;
  let ctx: typeof import("../../provider/dynamic/context") | undefined;
  let rotationPolicy: (typeof import("../../provider/dynamic/rotation-policy"))["rotationPolicy"];
  const saved = { key: process.env.DSOPS_FILE_KEY, cwd: "" };
  const store = () => new FileStore("local", { type: "file", path: join(dir!, "secrets.store") }, { configDir: dir!, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });
  const inputs = (over: Record<string, unknown> = {}) =>
    ({
      secret: "store://local/app/login",
      target: { type: "acme.redis-acl", port: redis!.port, admin: "store://local/redis/admin" },
      strategy: "acme.json-login",
      user: "app",
      schedule: { every: "30d" },
      ...over,
    }) as Record<string, unknown>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-policy-plugin-"));
    mkdirSync(join(dir, "node_modules", "@dsops"), { recursive: true });
    mkdirSync(join(dir, "node_modules", "@acme"), { recursive: true });
    symlinkSync(ROOT, join(dir, "node_modules", "@dsops", "pulumi"));
    symlinkSync(EXAMPLE, join(dir, "node_modules", "@acme", "dsops-plugin-example"));
    process.env.DSOPS_FILE_KEY = FILE_KEY;
    redis = await startRedis();
    await store().put("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
    await store().put("app/login", new Secret(JSON.stringify({ user: "app", password: initial })));
    await redis.command(["ACL", "SETUSER", "app", "on", `>${initial}`, "+ping"]);
    writeFileSync(join(dir, "dsops.yaml"), "version: 1\nsecretStores:\n  local: { type: file, path: ./secrets.store }\n");
    ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
    rotationPolicy = (require("../../provider/dynamic/rotation-policy") as typeof import("../../provider/dynamic/rotation-policy")).rotationPolicy;
    const st = ctx.state as { cwd: string };
    saved.cwd = st.cwd;
    st.cwd = dir;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : k === "dsops:plugins" ? '["@acme/dsops-plugin-example"]' : undefined));
  });
  after(async () => {
    ctx?.configure(() => undefined);
    if (ctx) (ctx.state as { cwd: string }).cwd = saved.cwd;
    const dynamicDir = dirname(require.resolve("../../provider/dynamic/context"));
    for (const k of Object.keys(require.cache)) if (k.startsWith(dynamicDir + sep)) delete require.cache[k];
    if (saved.key === undefined) delete process.env.DSOPS_FILE_KEY;
    else process.env.DSOPS_FILE_KEY = saved.key;
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("check accepts the plugin's strategy, and refuses an unknown one on `strategy` with did-you-mean and the known strategies", async () => {
    assert.deepEqual((await rotationPolicy.check(undefined, inputs())).failures ?? [], []);
    const f = (await rotationPolicy.check(undefined, inputs({ strategy: "acme.json-logn" }))).failures ?? [];
    assert.equal(f.length, 1, JSON.stringify(f));
    assert.equal(f[0].property, "strategy");
    assert.match(f[0].reason, /unknown strategy "acme\.json-logn" \(did you mean "acme\.json-login"\?\): built-in strategies are .*; plugin strategies: acme\.json-login/);
  });

  it("create with rotateOnCreate rotates the Redis user and stores the plugin's JSON shape", async () => {
    await rotationPolicy.create(inputs({ rotateOnCreate: true }));
    const now = JSON.parse((await store().get({ key: "app/login" })).value.reveal()) as { user: string; password: string; rotatedAt: string };
    assert.equal(now.user, "app");
    assert.notEqual(now.password, initial);
    assert.ok(!Number.isNaN(Date.parse(now.rotatedAt)));
    assert.equal(await redis!.canLogin("app", now.password), true, "the new password works at Redis");
    assert.equal(await redis!.canLogin("app", initial), false, "the old one no longer does");
    assert.ok(!redis!.log().includes(now.password) && !redis!.log().includes(initial));
  });
});
