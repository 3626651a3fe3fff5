import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { loadConfigFile } from "../../provider/compose/config";
import { FileStore } from "../../provider/stores/file";
import { createStore } from "../../provider/stores/registry";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";
import { startRedis, type RunningRedis } from "../support/redis";

/**
 * Plugins in a Pulumi program (real Pulumi CLI, file backend): the example plugin
 * (examples/plugin-acme) installed in the program's node_modules. Resources run in Pulumi's
 * provider process and load it by name (`plugins:` of the dsops.yaml they read, and the stack
 * config `dsops:plugins` for inline stores); the program's own getSecret uses `registerPlugin`.
 * A plugin that cannot load fails the update with its name and the cause.
 */
const EXAMPLE = join(__dirname, "..", "..", "..", "examples", "plugin-acme");

describe("Pulumi end to end: plugins", function () {
  this.timeout(300000);
  let project: PulumiProject | undefined;
  const value = `plg-${randomBytes(9).toString("base64url")}`;

  before(() => {
    pulumiBinDir();
  });
  after(() => project?.cleanup());

  it("SecretReference reads a plugin's store (dsops.yaml plugins:, dsops:plugins), getSecret after registerPlugin; a missing plugin fails the update naming it", async () => {
    project = new PulumiProject(
      "dsops-plugins",
      `"use strict";
const dsops = require("@dsops/pulumi");
const loaded = dsops.registerPlugin("@acme/dsops-plugin-example");
const fromFile = new dsops.SecretReference("from-file", { ref: "store://kv/app/token" });
const inline = new dsops.SecretReference("inline", { store: { type: "acme.jsonfile", path: "./secrets.json" }, key: "app/token" });
exports.a = fromFile.value;
exports.b = inline.value;
exports.type = inline.storeType;
exports.c = dsops.getSecret({ store: { type: "acme.jsonfile", path: "./secrets.json" }, key: "app/token" }).then((r) => r.value);
exports.plugin = loaded.name + ": " + loaded.stores.join(",") + " / " + loaded.targets.join(",");
`,
    );
    const dir = project.dir;
    mkdirSync(join(dir, "node_modules", "@acme"), { recursive: true });
    symlinkSync(EXAMPLE, join(dir, "node_modules", "@acme", "dsops-plugin-example"), "dir");
    writeFileSync(join(dir, "dsops.yaml"), 'plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  kv: { type: acme.jsonfile, path: ./secrets.json }\n');
    const config = loadConfigFile(join(dir, "dsops.yaml"));
    await createStore("kv", config.stores.kv, { configDir: dir, clock: systemClock, env: {} }).put!("app/token", new Secret(value));

    project.ok(["stack", "init", "plugins"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["config", "set", "--path", "dsops:plugins[0]", "@acme/dsops-plugin-example"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, value);
    assert.equal(out.b, value);
    assert.equal(out.c, value);
    assert.equal(out.type, "acme.jsonfile");
    assert.equal(out.plugin, "@acme/dsops-plugin-example: acme.jsonfile / acme.redis-acl");
    project.assertNoLeak([value]);

    // A plugin the provider process cannot find: the update fails, naming it and the cause.
    project.ok(["config", "set", "--path", "dsops:plugins[1]", "@acme/not-installed"]);
    const r = project.run(["preview"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /plugin "@acme\/not-installed" \(dsops:plugins\[1\]\): cannot find it from/);
  });

  it("RotationPolicy with the plugin's strategy (acme.json-login, plugins: of dsops.yaml) rotates a real Redis user through the plugin's target at up", async () => {
    const FILE_KEY = `k-${randomBytes(9).toString("base64url")}`;
    const initial = `Init-${randomBytes(9).toString("base64url")}`;
    let redis: RunningRedis | undefined;
    let p: PulumiProject | undefined;
    try {
      redis = await startRedis();
      p = new PulumiProject(
        "dsops-plugin-strategy",
        `"use strict";
const dsops = require("@dsops/pulumi");
const policy = new dsops.RotationPolicy("login", {
  secret: "store://local/app/login", target: "cache", strategy: "acme.json-login", user: "app",
  schedule: { every: "30d" }, rotateOnCreate: true,
});
exports.status = policy.status;
`,
        { DSOPS_FILE_KEY: FILE_KEY },
      );
      const dir = p.dir;
      mkdirSync(join(dir, "node_modules", "@acme"), { recursive: true });
      symlinkSync(EXAMPLE, join(dir, "node_modules", "@acme", "dsops-plugin-example"), "dir");
      p.write(
        "dsops.yaml",
        `plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  cache: { type: acme.redis-acl, port: ${redis.port}, admin: "store://local/redis/admin" }\n`,
      );
      const store = new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });
      await store.put("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
      await store.put("app/login", new Secret(JSON.stringify({ user: "app", password: initial })));
      await redis.command(["ACL", "SETUSER", "app", "on", `>${initial}`, "+ping"]);
      p.ok(["stack", "init", "strategy"]);
      p.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
      p.ok(["up", "--yes", "--skip-preview"]);
      const now = JSON.parse((await store.get({ key: "app/login" })).value.reveal()) as { user: string; password: string; rotatedAt: string };
      assert.equal(now.user, "app");
      assert.notEqual(now.password, initial);
      assert.equal(await redis.canLogin("app", now.password), true, "the new password works at Redis");
      assert.equal(await redis.canLogin("app", initial), false, "the old one no longer does");
      p.assertNoLeak([initial, now.password]);
      // A typo in the strategy: preview fails on the policy's `strategy`, naming the plugin's one.
      p.write("index.js", readFileSync(join(dir, "index.js"), "utf8").replace('strategy: "acme.json-login"', 'strategy: "acme.json-logn"'));
      const bad = p.run(["preview"]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, /strategy.*unknown strategy "acme\.json-logn" \(did you mean "acme\.json-login"\?\)/);
    } finally {
      await redis?.stop();
      p?.cleanup();
    }
  });
});
