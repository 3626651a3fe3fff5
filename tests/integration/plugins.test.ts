import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { configFromObject, loadConfigFile } from "../../provider/compose/config";
import { PluginError, registerPlugin } from "../../provider/compose/plugins";
import { createStore } from "../../provider/stores/registry";
import { dsopsRun, type CliResult } from "../support/cli";
import { startRedis, type RunningRedis } from "../support/redis";
import { storeContract } from "../support/store-contract";
import { stagingContract } from "../support/staging-contract";

/**
 * Plugins (README "Plugins"): the example plugin (examples/plugin-acme) installed in a project's
 * node_modules and named in dsops.yaml; `dsops get` reads its store, `dsops secrets rotate`
 * rotates a real Redis ACL user through its target, `dsops providers` and `dsops doctor` list it;
 * the store and staging contracts pass against its store; and every way a plugin can be broken
 * is refused with exit 1, naming the plugin and the cause, before any store is created.
 */
const ROOT = join(__dirname, "..", "..", "..");
const EXAMPLE = join(ROOT, "examples", "plugin-acme");

/** A project folder as a user has it: node_modules/@dsops/pulumi and the example plugin installed (linked). */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), "dsops-plugins-"));
  mkdirSync(join(dir, "node_modules", "@dsops"), { recursive: true });
  mkdirSync(join(dir, "node_modules", "@acme"), { recursive: true });
  symlinkSync(ROOT, join(dir, "node_modules", "@dsops", "pulumi"));
  symlinkSync(EXAMPLE, join(dir, "node_modules", "@acme", "dsops-plugin-example"));
  return dir;
}

/** A plugin package of the test under ./plugins/<name>. */
function plugin(dir: string, name: string, source: string): string {
  mkdirSync(join(dir, "plugins", name), { recursive: true });
  writeFileSync(join(dir, "plugins", name, "index.js"), source);
  return `./plugins/${name}`;
}

const run = (dir: string, args: string[]): Promise<CliResult> => dsopsRun(args, { cwd: dir });

describe("plugins", function () {
  this.timeout(120000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const newProject = () => {
    const d = project();
    dirs.push(d);
    return d;
  };

  /** The example's store, built from a dsops.yaml that names the plugin (so through the loader and the registry). */
  function exampleStore() {
    const dir = newProject();
    writeFileSync(join(dir, "dsops.yaml"), `plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  kv: { type: acme.jsonfile, path: ./kv.json }\n`);
    const config = loadConfigFile(join(dir, "dsops.yaml"));
    const store = createStore("kv", config.stores.kv, { configDir: dir, clock: systemClock, env: process.env });
    return { dir, store };
  }

  storeContract("acme.jsonfile (the example plugin, named in dsops.yaml)", async () => {
    const { store } = exampleStore();
    return {
      store,
      async seed(key, values) {
        const ids: string[] = [];
        for (const v of values) ids.push((await store.put!(key, new Secret(v))).versionId);
        return ids;
      },
    };
  });

  stagingContract("acme.jsonfile (the example plugin, named in dsops.yaml)", async () => {
    const { store } = exampleStore();
    return { store: store as never };
  });

  it("the example's own tests (npm test in examples/plugin-acme: mocha) run the contract suites from @dsops/pulumi/testing and pass", async () => {
    const mocha = join(ROOT, "node_modules", "mocha", "bin", "mocha.js");
    const r = await new Promise<CliResult>((resolvePromise, reject) => {
      const child = spawn(process.execPath, [mocha], { cwd: EXAMPLE, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", reject);
      child.on("close", (status) => resolvePromise({ status, stdout, stderr }));
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /store contract: acme\.jsonfile/);
    assert.match(r.stdout, /staging contract: acme\.jsonfile/);
    assert.match(r.stdout, /\b15 passing/);
    assert.doesNotMatch(r.stdout, /failing/);
  });

  describe("the example plugin end to end: dsops get, dsops secrets rotate (real Redis), providers, doctor", () => {
    let redis: RunningRedis | undefined;
    let dir: string;
    const initial = `Init-${Math.random().toString(36).slice(2)}-app`;
    before(async () => {
      redis = await startRedis();
      dir = newProject();
      writeFileSync(
        join(dir, "dsops.yaml"),
        [
          "plugins:",
          '  - "@acme/dsops-plugin-example"',
          "secretStores:",
          "  kv:",
          "    type: acme.jsonfile",
          "    path: ./secrets.json",
          "services:",
          "  cache:",
          "    type: acme.redis-acl",
          `    port: ${redis.port}`,
          "    admin: store://kv/redis/admin",
          "envs:",
          "  prod:",
          "    APP_PASSWORD:",
          "      from: store://kv/app/password",
          "      rotation: { service: cache, strategy: single-user, user: app }",
          "",
        ].join("\n"),
      );
      const config = loadConfigFile(join(dir, "dsops.yaml"));
      const store = createStore("kv", config.stores.kv, { configDir: dir, clock: systemClock, env: process.env });
      await store.put!("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
      await store.put!("app/password", new Secret(initial));
      await redis.command(["ACL", "SETUSER", "app", "on", `>${initial}`, "~app:*", "+ping", "+get"]);
    });
    after(async () => {
      await redis?.stop();
    });

    it("dsops get reads the plugin's store", async () => {
      const r = await run(dir, ["get", "--env", "prod", "--var", "APP_PASSWORD"]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${initial}\n`);
    });

    it("dsops secrets rotate rotates the Redis user through the plugin's target and stages in the plugin's store", async () => {
      const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_PASSWORD"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /succeeded/);
      const got = await run(dir, ["get", "--env", "prod", "--var", "APP_PASSWORD"]);
      assert.equal(got.status, 0, got.stderr);
      const now = got.stdout.trim();
      assert.notEqual(now, initial);
      assert.equal(await redis!.canLogin("app", now), true, "the new password works at Redis");
      assert.equal(await redis!.canLogin("app", initial), false, "the old one no longer does");
      const file = JSON.parse(readFileSync(join(dir, "secrets.json"), "utf8")) as { secrets: Record<string, { current: string; previous: string; pending?: string; versions: Array<{ id: string; value: string }> }> };
      const e = file.secrets["app/password"];
      assert.equal(e.versions.find((v) => v.id === e.previous)?.value, initial, "the old value is kept as previous");
      assert.equal(e.pending, undefined);
      for (const text of [r.stdout, r.stderr, redis!.log()]) assert.ok(!text.includes(now) && !text.includes(initial), "a value appears in the output or the server's log");
    });

    it("dsops providers lists the plugin and its types (text and --json)", async () => {
      const r = await run(dir, ["providers"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Plugins:\n  @acme\/dsops-plugin-example \(@acme\/dsops-plugin-example\)\n    store type acme\.jsonfile: secrets in a JSON file/);
      assert.match(r.stdout, /rotation target type acme\.redis-acl \(rotate, revoke, verify\): passwords of Redis/);
      const j = await run(dir, ["providers", "--json"]);
      assert.equal(j.status, 0, j.stderr);
      const out = JSON.parse(j.stdout) as { plugins: Array<{ name: string; stores: Array<{ type: string; capabilities: { staging: boolean } }>; targets: Array<{ type: string; capabilities: string[] }> }> };
      assert.equal(out.plugins[0].name, "@acme/dsops-plugin-example");
      assert.deepEqual(out.plugins[0].stores.map((s) => [s.type, s.capabilities.staging]), [["acme.jsonfile", true]]);
      assert.deepEqual(out.plugins[0].targets, [{ type: "acme.redis-acl", description: "passwords of Redis 6+ ACL users (sent as their SHA-256, never in plaintext)", capabilities: ["rotate", "revoke", "verify"] }]);
    });

    it("dsops doctor checks the plugin's store and lists the plugin", async () => {
      const j = await run(dir, ["doctor", "--json"]);
      assert.equal(j.status, 0, j.stderr);
      const out = JSON.parse(j.stdout) as { ok: boolean; stores: Array<{ store: string; type: string; status: string }>; plugins: Array<{ name: string; targets: Array<{ type: string }> }> };
      assert.deepEqual(out.stores.map((s) => [s.store, s.type, s.status]), [["kv", "acme.jsonfile", "ok"]]);
      assert.equal(out.plugins[0].name, "@acme/dsops-plugin-example");
      assert.equal(out.plugins[0].targets[0].type, "acme.redis-acl");
      const t = await run(dir, ["doctor"]);
      assert.equal(t.status, 0, t.stderr);
      assert.match(t.stdout, /^Plugins:\n  @acme\/dsops-plugin-example/);
    });
  });

  describe("a plugin's rotation strategy (acme.json-login) end to end against a real Redis: rotate, a failed verification rolled back, emergency", () => {
    let redis: RunningRedis | undefined;
    let dir: string;
    const initial = `Init-${Math.random().toString(36).slice(2)}-json`;
    type Login = { user: string; password: string; rotatedAt?: string };
    const current = async (): Promise<Login> => {
      const got = await run(dir, ["get", "--env", "prod", "--var", "APP_LOGIN"]);
      assert.equal(got.status, 0, got.stderr);
      return JSON.parse(got.stdout) as Login;
    };
    const history = async () => {
      const h = await run(dir, ["secrets", "history", "--env", "prod", "--var", "APP_LOGIN", "--json"]);
      assert.equal(h.status, 0, h.stderr);
      return JSON.parse(h.stdout) as Array<{ strategy: string; status: string; error?: string }>;
    };
    const seen: string[] = [initial];
    const noValueIn = (...texts: string[]) => {
      for (const t of texts) for (const v of seen) assert.ok(!t.includes(v), "a value appears in the output or the server's log");
    };
    before(async () => {
      redis = await startRedis();
      dir = newProject();
      writeFileSync(
        join(dir, "dsops.yaml"),
        [
          'plugins: ["@acme/dsops-plugin-example"]',
          "secretStores:",
          "  kv: { type: acme.jsonfile, path: ./secrets.json }",
          "services:",
          `  cache: { type: acme.redis-acl, port: ${redis.port}, admin: store://kv/redis/admin }`,
          "envs:",
          "  prod:",
          "    APP_LOGIN:",
          "      from: store://kv/app/login",
          "      rotation: { service: cache, strategy: acme.json-login, user: app }",
          "",
        ].join("\n"),
      );
      const config = loadConfigFile(join(dir, "dsops.yaml"));
      const store = createStore("kv", config.stores.kv, { configDir: dir, clock: systemClock, env: process.env });
      await store.put!("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
      await store.put!("app/login", new Secret(JSON.stringify({ user: "app", password: initial })));
      await redis.command(["ACL", "SETUSER", "app", "on", `>${initial}`, "~app:*", "+ping", "+get"]);
    });
    after(async () => {
      await redis?.stop();
    });

    it("dsops secrets rotate stores JSON {user, password, rotatedAt}; the new password logs in, the old one is refused; the record names the strategy", async () => {
      const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /succeeded/);
      const now = await current();
      seen.push(now.password);
      assert.equal(now.user, "app");
      assert.notEqual(now.password, initial);
      assert.ok(!Number.isNaN(Date.parse(now.rotatedAt ?? "")), "rotatedAt is an instant");
      assert.equal(await redis!.canLogin("app", now.password), true, "the new password works at Redis");
      assert.equal(await redis!.canLogin("app", initial), false, "the old one no longer does");
      const [last] = await history();
      assert.deepEqual([last.strategy, last.status], ["acme.json-login", "succeeded"]);
      noValueIn(r.stdout, r.stderr, redis!.log());
    });

    it("a failing verification (the Redis user switched off) rolls back: the stored login is unchanged and still works", async () => {
      const before = await current();
      await redis!.command(["ACL", "SETUSER", "app", "off"]);
      const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN"]);
      await redis!.command(["ACL", "SETUSER", "app", "on"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /rolled back|rolled-back/i);
      assert.deepEqual(await current(), before, "the stored value did not change");
      assert.equal(await redis!.canLogin("app", before.password), true, "the old password was put back");
      const file = JSON.parse(readFileSync(join(dir, "secrets.json"), "utf8")) as { secrets: Record<string, { pending?: string }> };
      assert.equal(file.secrets["app/login"].pending, undefined, "the pending version was discarded");
      const [last] = await history();
      assert.deepEqual([last.strategy, last.status], ["acme.json-login", "rolled-back"]);
      noValueIn(r.stdout, r.stderr, redis!.log());
    });

    it("an emergency rotation over the plugin's shape keeps the JSON shape, and the old password stops working", async () => {
      const before = await current();
      const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN", "--strategy", "emergency", "--reason", "leaked in a ticket"]);
      assert.equal(r.status, 0, r.stderr);
      const now = await current();
      seen.push(now.password);
      assert.equal(now.user, "app");
      assert.notEqual(now.password, before.password);
      assert.equal(await redis!.canLogin("app", now.password), true);
      assert.equal(await redis!.canLogin("app", before.password), false);
      const [last] = await history();
      assert.deepEqual([last.strategy, last.status], ["emergency", "succeeded"]);
      noValueIn(r.stdout, r.stderr, redis!.log());
    });

    it("--strategy takes the plugin strategy's name (the configured shape); another shape or an unknown plugin name is refused before anything changes", async () => {
      const dry = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN", "--strategy", "acme.json-login", "--dry-run"]);
      assert.equal(dry.status, 0, dry.stderr);
      assert.match(dry.stdout, /with acme\.json-login at cache/);
      const before = await current();
      const other = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN", "--strategy", "acme.other"]);
      assert.equal(other.status, 1, other.stderr);
      assert.match(other.stderr, /--strategy acme\.other: the stored value has the acme\.json-login shape/);
      assert.deepEqual(await current(), before);
      const usage = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "APP_LOGIN", "--strategy", "Json Login"]);
      assert.equal(usage.status, 2, usage.stderr);
      assert.match(usage.stderr, /Allowed choices are single-user.*or a plugin's strategy \(<prefix>\.<name>\)/);
    });

    it("dsops providers and dsops doctor list the plugin's strategy with what it requires", async () => {
      const r = await run(dir, ["providers"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /rotation strategy acme\.json-login \(requires rotate\): one user whose password changes in place/);
      const j = await run(dir, ["providers", "--json"]);
      const out = JSON.parse(j.stdout) as { plugins: Array<{ strategies: Array<{ name: string; requires: string[] }> }> };
      assert.deepEqual(out.plugins[0].strategies.map((x) => [x.name, x.requires]), [["acme.json-login", ["rotate"]]]);
      const d = await run(dir, ["doctor", "--json"]);
      assert.equal(d.status, 0, d.stderr);
      const doc = JSON.parse(d.stdout) as { plugins: Array<{ strategies: Array<{ name: string }> }> };
      assert.equal(doc.plugins[0].strategies[0].name, "acme.json-login");
    });
  });

  describe("plugin strategies: every refusal names the plugin or the field", () => {
    const yaml = (plugins: string[], strategy: string) =>
      `plugins: [${plugins.map((p) => `"${p}"`).join(", ")}]\nsecretStores:\n  kv: { type: acme.jsonfile, path: ./x.json }\nservices:\n  cache: { type: acme.redis-acl, admin: store://kv/a }\nenvs:\n  prod:\n    A: { from: store://kv/a, rotation: { service: cache, strategy: ${strategy}, user: app } }\n`;
    const strat = (name: string, def: string) => `module.exports = { apiVersion: 1, name: "${name}", strategies: ${def} };\n`;
    const GOOD = '{ requires: ["rotate"], plan: () => ({ principal: "app", apply: "set", retire: "none" }), encode: (c) => c.secret, decode: (v) => ({ principal: "app", secret: v }) }';

    it("a strategy named like a built-in one, or without its prefix, is refused", async () => {
      const dir = newProject();
      const p = plugin(dir, "shadow", strat("shadow", `{ "single-user": ${GOOD}, "overlap": ${GOOD}, "mine": ${GOOD} }`));
      writeFileSync(join(dir, "dsops.yaml"), yaml(["@acme/dsops-plugin-example", p], "single-user"));
      const r = await run(dir, ["plan", "--env", "prod"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /plugin "\.\/plugins\/shadow" \(plugins\[1\]\) breaks the plugin interface:\n  strategies\.single-user: "single-user" is a built-in strategy; a plugin cannot replace it/);
      assert.match(r.stderr, /strategies\.overlap: "overlap" is a built-in strategy/);
      assert.match(r.stderr, /strategies\.mine: a strategy name is "<prefix>\.<name>"/);
    });

    it("a strategy another plugin already adds is refused, naming both plugins", async () => {
      const dir = newProject();
      const p = plugin(dir, "twice", strat("twice", `{ "acme.json-login": ${GOOD} }`));
      writeFileSync(join(dir, "dsops.yaml"), yaml(["@acme/dsops-plugin-example", p], "acme.json-login"));
      const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /plugin "\.\/plugins\/twice" \(plugins\[1\]\) breaks the plugin interface:\n  strategies\.acme\.json-login: strategy "acme\.json-login" is already added by plugin "@acme\/dsops-plugin-example"/);
    });

    it("a strategy that breaks the interface (no requires, plan not a function, an unknown key) is refused", async () => {
      const dir = newProject();
      const p = plugin(dir, "broken", strat("broken", '{ "broken.x": { requires: ["fly"], plan: 1, encode: (c) => c.secret, decode: (v) => v, when: "now" } }'));
      writeFileSync(join(dir, "dsops.yaml"), yaml(["@acme/dsops-plugin-example", p], "single-user"));
      const r = await run(dir, ["providers"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /plugin "\.\/plugins\/broken" \(plugins\[1\]\) breaks the plugin interface:\n  strategies\.broken\.x\.when: unknown key.*\n  strategies\.broken\.x\.requires: expected a list of create, rotate, revoke, verify.*\n  strategies\.broken\.x\.plan: expected a function/);
    });

    it("an unknown strategy in dsops.yaml is refused naming the field, with did-you-mean and the built-in and plugin strategies", async () => {
      const dir = newProject();
      writeFileSync(join(dir, "dsops.yaml"), yaml(["@acme/dsops-plugin-example"], "acme.json-logn"));
      const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        /envs\.prod\.A\.rotation\.strategy: Invalid option: unknown strategy "acme\.json-logn" \(did you mean "acme\.json-login"\?\): built-in strategies are single-user, alternating-users, two-secret, immediate, emergency; plugin strategies: acme\.json-login/,
      );
      const none = newProject();
      writeFileSync(join(none, "dsops.yaml"), yaml([], "acme.json-login").replace("plugins: []\n", "").replace(/acme\.jsonfile, path: \.\/x\.json/, "file, path: ./x.json").replace("acme.redis-acl, admin: store://kv/a", "postgresql, host: 127.0.0.1, admin: store://kv/a"));
      const n = await run(none, ["get", "--env", "prod", "--var", "A"]);
      assert.equal(n.status, 1, n.stderr);
      assert.match(n.stderr, /envs\.prod\.A\.rotation\.strategy: Invalid option: unknown strategy "acme\.json-login".*no plugin strategies are loaded/);
    });

    it("dsops's form (a service's rotation.strategy) takes a plugin strategy; a typo there is named with did-you-mean", async () => {
      const dir = newProject();
      const text = (strategy: string) =>
        `plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  kv: { type: acme.jsonfile, path: ./x.json }\nservices:\n  cache:\n    type: acme.redis-acl\n    admin: store://kv/a\n    rotation: { strategy: ${strategy}, user: app }\nenvs:\n  prod:\n    A: { from: store://kv/a, service: cache, rotation: { ttl: 30d } }\n`;
      writeFileSync(join(dir, "dsops.yaml"), text("acme.json-login"));
      const ok = await run(dir, ["secrets", "status", "--env", "prod", "--json"]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as Array<{ strategy: string }>)[0].strategy, "acme.json-login");
      writeFileSync(join(dir, "dsops.yaml"), text("acme.json-logn"));
      const bad = await run(dir, ["secrets", "status", "--env", "prod"]);
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /services\.cache\.rotation\.strategy: unknown strategy "acme\.json-logn" \(did you mean "acme\.json-login"\?\) at dsops\.yaml:8:27/);
    });

    it("a plugin strategy needing a capability the target lacks is named when the file loads", async () => {
      const dir = newProject();
      const p = plugin(dir, "mint", strat("mint", '{ "mint.key": { requires: ["create", "revoke"], plan: () => ({}), encode: (c) => c.secret, decode: (v) => v } }'));
      writeFileSync(join(dir, "dsops.yaml"), yaml(["@acme/dsops-plugin-example", p], "mint.key"));
      const r = await run(dir, ["plan", "--env", "prod"]);
      assert.match(r.stderr + r.stdout, /envs\.prod\.A\.rotation\.strategy: strategy mint\.key needs a target that can create; service "cache" \(acme\.redis-acl\) cannot/);
    });

    describe("a plugin strategy's own bugs against a real Redis: exit 1 naming the plugin, never 70; the rotation rolled back", () => {
      let redis: RunningRedis | undefined;
      const initial = `Init-${Math.random().toString(36).slice(2)}-bug`;
      before(async () => {
        redis = await startRedis();
        await redis.command(["ACL", "SETUSER", "app", "on", `>${initial}`, "+ping"]);
      });
      after(async () => {
        await redis?.stop();
      });
      const setUp = async (def: string) => {
        const dir = newProject();
        const p = plugin(dir, "buggy", strat("buggy", `{ "buggy.login": ${def} }`));
        writeFileSync(
          join(dir, "dsops.yaml"),
          yaml(["@acme/dsops-plugin-example", p], "buggy.login").replace("acme.redis-acl, admin: store://kv/a", `acme.redis-acl, port: ${redis!.port}, admin: store://kv/admin`),
        );
        const config = loadConfigFile(join(dir, "dsops.yaml"));
        const store = createStore("kv", config.stores.kv, { configDir: dir, clock: systemClock, env: process.env });
        await store.put!("admin", new Secret(JSON.stringify({ username: redis!.adminUser, password: redis!.adminPassword })));
        await store.put!("a", new Secret(initial));
        return dir;
      };

      it("plan() throwing a TypeError: exit 1, the strategy and the plugin named, nothing changed", async () => {
        const dir = await setUp('{ requires: ["rotate"], plan: (ctx) => ctx.policy.nothing.user, encode: (c) => c.secret, decode: (v) => ({ principal: "app", secret: v }) }');
        const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "A"]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /strategy "buggy\.login" \(plugin "buggy"\): plan\(\) failed: Cannot read properties of undefined/);
        assert.equal(await redis!.canLogin("app", initial), true);
      });

      it("plan() returning what breaks the interface (apply \"mint\"): exit 1 naming the strategy, the plugin and the field", async () => {
        const dir = await setUp('{ requires: ["rotate"], plan: () => ({ principal: "app", apply: "mint", retire: "none" }), encode: (c) => c.secret, decode: (v) => ({ principal: "app", secret: v }) }');
        const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "A"]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /strategy "buggy\.login" \(plugin "buggy"\): plan\(\) returned apply "mint" \(expected "set" or "create"\)/);
        assert.equal(await redis!.canLogin("app", initial), true);
      });

      it("encode() throwing (with the value in its message) mid-rotation: the rotation is rolled back, the value never shown", async () => {
        const dir = await setUp(
          '{ requires: ["rotate"], plan: (ctx) => ({ principal: "app", old: { principal: "app", secret: ctx.current }, apply: "set", retire: "none" }), encode: (c) => { throw new RangeError("cannot encode " + c.secret.reveal()); }, decode: (v) => ({ principal: "app", secret: v }) }',
        );
        const r = await run(dir, ["secrets", "rotate", "--env", "prod", "--var", "A"]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /strategy "buggy\.login" \(plugin "buggy"\): encode\(\) failed: cannot encode \[secret\]/);
        assert.match(r.stderr, /rolled back|rolled-back/i);
        const got = await run(dir, ["get", "--env", "prod", "--var", "A"]);
        assert.equal(got.stdout, `${initial}\n`, "the stored value did not change");
        assert.equal(await redis!.canLogin("app", initial), true, "the target keeps the old password");
        const h = JSON.parse((await run(dir, ["secrets", "history", "--env", "prod", "--var", "A", "--json"])).stdout) as Array<{ strategy: string; status: string }>;
        assert.deepEqual([h[0].strategy, h[0].status], ["buggy.login", "rolled-back"]);
      });
    });
  });

  describe("settings are checked with the plugin's schema, errors naming the field", () => {
    it("a store's and a target's settings: path, line and column", async () => {
      const dir = newProject();
      writeFileSync(
        join(dir, "dsops.yaml"),
        'plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  kv:\n    type: acme.jsonfile\n    pth: ./x.json\nservices:\n  cache:\n    type: acme.redis-acl\n    port: "6379"\n    admin: store://kv/a\nenvs:\n  prod:\n    A: { from: store://kv/a, rotation: { service: cache, user: app } }\n',
      );
      const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /secretStores\.kv\.path: required \(string\) but missing at dsops\.yaml:4:5/);
      assert.match(r.stderr, /secretStores\.kv\.pth: unknown key .*at dsops\.yaml:5:5/);
      assert.match(r.stderr, /services\.cache\.port: .*expected number.*at dsops\.yaml:9:11/i);
    });

    it("a strategy the plugin's target cannot do is named when the file loads (strict: a rotation)", async () => {
      const dir = newProject();
      writeFileSync(
        join(dir, "dsops.yaml"),
        'plugins: ["@acme/dsops-plugin-example"]\nsecretStores:\n  kv: { type: acme.jsonfile, path: ./x.json }\nservices:\n  cache: { type: acme.redis-acl, admin: store://kv/a }\nenvs:\n  prod:\n    A: { from: store://kv/a, rotation: { service: cache, strategy: two-secret, user: app } }\n',
      );
      const r = await run(dir, ["plan", "--env", "prod"]);
      assert.match(r.stderr + r.stdout, /envs\.prod\.A\.rotation\.strategy: strategy two-secret needs a target that can create; service "cache" \(acme\.redis-acl\) cannot/);
    });
  });

  describe("a plugin that fails to load or breaks the interface is refused: exit 1, the plugin and the cause named, no store created", () => {
    /** A good plugin whose store, when created, leaves a file: proof that no store was touched. */
    const MARKER = `const { z } = require("@dsops/pulumi/plugin");
module.exports = { apiVersion: 1, name: "marker", stores: { "marker.kv": { settings: z.strictObject({}), create(name) {
  require("node:fs").writeFileSync(require("node:path").join(process.cwd(), "touched"), name);
  return { name, type: "marker.kv", capabilities: { write: false, versions: false, batch: 0, binary: false }, async get() { return { value: new (require("@dsops/pulumi/plugin").Secret)("v"), versionId: "1" }; }, async describe() { return { versionId: "1" }; } };
} } } };
`;
    const GOOD_STORE = (type: string) => `{ "${type}": { settings: z.strictObject({}), create: () => ({}) } }`;
    const cases: Array<{ title: string; broken: (dir: string) => string; expect: RegExp }> = [
      { title: "a package that is not installed", broken: () => "@acme/not-installed", expect: /plugin "@acme\/not-installed" \(plugins\[1\]\): cannot find it from .*\n.*npm install @acme\/not-installed/ },
      { title: "a module that throws at import", broken: (d) => plugin(d, "throws", 'throw new Error("no licence key configured");\n'), expect: /plugin "\.\/plugins\/throws" \(plugins\[1\]\): loading it failed: no licence key configured/ },
      { title: "a module that exports no object", broken: (d) => plugin(d, "number", "module.exports = 42;\n"), expect: /plugin "\.\/plugins\/number" \(plugins\[1\]\): the module exports no plugin object/ },
      {
        title: "a wrong apiVersion",
        broken: (d) => plugin(d, "v2", 'module.exports = { apiVersion: 2, name: "v2" };\n'),
        expect: /plugin "\.\/plugins\/v2" \(plugins\[1\]\): apiVersion 2 is not supported; this dsops implements plugin apiVersion 1/,
      },
      {
        title: "exports that break the interface",
        broken: (d) => plugin(d, "shape", 'const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "shape", store: {}, targets: { "shape.db": { settings: z.strictObject({}), create: 1, capabilities: ["fly"] } } };\n'),
        expect: /plugin "\.\/plugins\/shape" \(plugins\[1\]\) breaks the plugin interface:\n  store: unknown export.*\n  targets\.shape\.db\.create: expected a function.*\n  targets\.shape\.db\.capabilities: expected a list of create, rotate, revoke, verify/,
      },
      {
        title: "a type without its settings schema",
        broken: (d) => plugin(d, "noschema", 'module.exports = { apiVersion: 1, name: "noschema", stores: { "noschema.kv": { create: () => ({}) } } };\n'),
        expect: /plugin "\.\/plugins\/noschema" \(plugins\[1\]\) breaks the plugin interface:\n  stores\.noschema\.kv\.settings: missing zod schema/,
      },
      {
        title: "a type that shadows a built-in store or target type",
        broken: (d) => plugin(d, "shadow", `const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "shadow", stores: ${GOOD_STORE("vault")}, targets: { postgresql: { settings: z.strictObject({}), create: () => ({}), capabilities: ["rotate"] } } };\n`),
        expect: /stores\.vault: "vault" is a built-in store type; a plugin cannot replace it.*\n  targets\.postgresql: "postgresql" is a built-in rotation target type/,
      },
      {
        title: "a type another plugin already adds",
        broken: (d) => plugin(d, "twice", `const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "twice", stores: ${GOOD_STORE("marker.kv")} };\n`),
        expect: /plugin "\.\/plugins\/twice" \(plugins\[1\]\) breaks the plugin interface:\n  stores\.marker\.kv: type "marker\.kv" is already added by plugin "marker"/,
      },
      {
        // Issue 15 asks for plugin strategies: apiVersion 1 now accepts `strategies` (an optional key); a broken one is still refused.
        title: "rotation strategies that break the interface (a name without its prefix, no requires/plan/encode/decode)",
        broken: (d) => plugin(d, "strategy", 'module.exports = { apiVersion: 1, name: "strategy", strategies: { canary: {} } };\n'),
        expect: /plugin "\.\/plugins\/strategy" \(plugins\[1\]\) breaks the plugin interface:\n  strategies\.canary: a strategy name is "<prefix>\.<name>".*\n  strategies\.canary\.requires: expected a list.*\n  strategies\.canary\.plan: expected a function/,
      },
    ];
    for (const c of cases)
      it(c.title, async () => {
        const dir = newProject();
        const marker = plugin(dir, "marker", MARKER);
        const broken = c.broken(dir);
        writeFileSync(join(dir, "dsops.yaml"), `plugins: ["${marker}", "${broken}"]\nsecretStores:\n  m: { type: marker.kv }\nenvs:\n  prod:\n    A: { from: store://m/a }\n`);
        for (const args of [["get", "--env", "prod", "--var", "A"], ["doctor"], ["providers"]]) {
          const r = await run(dir, args);
          assert.equal(r.status, 1, `${args[0]}: ${r.status} ${r.stderr}`);
          assert.match(r.stderr, c.expect, args[0]);
          assert.equal(existsSync(join(dir, "touched")), false, `${args[0]}: a store was created`);
        }
      });

    it("a store whose create() breaks the Store interface is refused when created, naming what is missing", async () => {
      const dir = newProject();
      const p = plugin(dir, "hollow", 'const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "hollow", stores: { "hollow.kv": { settings: z.strictObject({}), create: (name) => ({ name, capabilities: { write: true, versions: false, batch: 0, binary: false } }) } } };\n');
      writeFileSync(join(dir, "dsops.yaml"), `plugins: ["${p}"]\nsecretStores:\n  h: { type: hollow.kv }\nenvs:\n  prod:\n    A: { from: store://h/a }\n`);
      const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /plugin "hollow": store type "hollow\.kv": create\(\) returned a store without get\(\), describe\(\), put\(\) \(capabilities\.write is true\)/);
    });
  });

  it("a plugin store's own bug (a TypeError) is a user-facing error naming the store and the plugin: exit 1, never 70", async () => {
    const dir = newProject();
    const p = plugin(
      dir,
      "buggy",
      'const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "buggy", stores: { "buggy.kv": { settings: z.strictObject({}), create: (name) => ({ name, type: "buggy.kv", capabilities: { write: false, versions: false, batch: 0, binary: false }, async get() { return undefined.value; }, async describe() { return { versionId: "1" }; } }) } } };\n',
    );
    writeFileSync(join(dir, "dsops.yaml"), `plugins: ["${p}"]\nsecretStores:\n  b: { type: buggy.kv }\nenvs:\n  prod:\n    A: { from: store://b/a }\n`);
    const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /store "b" \(buggy\.kv, plugin "buggy"\): get\(\) failed: Cannot read properties of undefined/);
  });

  it("a plugin store that hangs is abandoned at its timeout_ms (a setting of every store, checked by dsops), a TimeoutError naming the store: exit 1", async () => {
    const dir = newProject();
    const p = plugin(
      dir,
      "hangs",
      'const { z } = require("@dsops/pulumi/plugin");\nmodule.exports = { apiVersion: 1, name: "hangs", stores: { "hangs.kv": { settings: z.strictObject({}), create: (name) => ({ name, type: "hangs.kv", capabilities: { write: false, versions: false, batch: 0, binary: false }, get: () => new Promise(() => {}), async describe() { return { versionId: "1" }; } }) } } };\n',
    );
    writeFileSync(join(dir, "dsops.yaml"), `plugins: ["${p}"]\nsecretStores:\n  h: { type: hangs.kv, timeout_ms: 200, retries: 0 }\nenvs:\n  prod:\n    A: { from: store://h/a }\n`);
    const r = await run(dir, ["get", "--env", "prod", "--var", "A"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /store "h".*(timed out|timeout|no answer)/i);
    writeFileSync(join(dir, "dsops.yaml"), `plugins: ["${p}"]\nsecretStores:\n  h: { type: hangs.kv, timeout_ms: -1, retries: 99 }\nenvs:\n  prod:\n    A: { from: store://h/a }\n`);
    const bad = await run(dir, ["get", "--env", "prod", "--var", "A"]);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /secretStores\.h\.timeout_ms: .*at dsops\.yaml:3:/);
    assert.match(bad.stderr, /secretStores\.h\.retries: .*at dsops\.yaml:3:/);
  });

  describe("registerPlugin (a program's own plugin object, the library API)", () => {
    const { z } = require("zod") as typeof import("zod");
    const mem = (type: string) => ({
      apiVersion: 1 as const,
      name: `mem-${type}`,
      stores: {
        [type]: {
          settings: z.strictObject({ value: z.string() }),
          create: (name: string, s: { value: string }) => ({
            name,
            type,
            capabilities: { write: false, versions: false, batch: 0, binary: false },
            get: async () => ({ value: new Secret(s.value), versionId: "1" }),
            describe: async () => ({ versionId: "1" }),
          }),
        },
      },
    });

    it("registers the object's types for configurations loaded afterwards; the same object twice is one registration", async () => {
      const p = mem("mem.one");
      const a = registerPlugin(p);
      assert.equal(registerPlugin(p), a);
      assert.deepEqual(a.stores, ["mem.one"]);
      const config = configFromObject({ secretStores: { m: { type: "mem.one", value: "hello-plugin" } }, envs: { dev: { A: { from: "store://m/x" } } } });
      const store = createStore("m", config.stores.m, { configDir: ".", clock: systemClock, env: {} });
      assert.equal((await store.get({ key: "x" })).value.reveal(), "hello-plugin");
      assert.throws(
        () => configFromObject({ secretStores: { m: { type: "mem.one", valu: "x" } } }),
        (e: Error) => /secretStores\.m\.value/.test(e.message) && /secretStores\.m\.valu: unknown key/.test(e.message),
      );
    });

    it("another object adding the same type is refused (PluginError naming both plugins)", () => {
      const other = { ...mem("mem.one"), name: "mem-other" };
      assert.throws(() => registerPlugin(other), (e: Error) => e instanceof PluginError && /plugin "mem-other" breaks the plugin interface:\n  stores\.mem\.one: type "mem\.one" is already added by plugin "mem-mem\.one"/.test(e.message));
    });
  });
});
