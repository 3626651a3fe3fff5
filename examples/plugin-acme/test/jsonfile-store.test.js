// The store and staging contracts of @dsops/pulumi (the suites every built-in store passes), run
// against this plugin's acme.jsonfile store: `npm test` (mocha) in this folder.
const { mkdtempSync, rmSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join } = require("node:path");
const { storeContract, stagingContract } = require("@dsops/pulumi/testing");
const { Secret } = require("@dsops/pulumi/plugin");
const plugin = require("..");

const dirs = [];
const clock = { now: () => Date.now() };

/** A store of the plugin's type, built as dsops builds it: settings checked with the plugin's schema, then create(). */
function newStore() {
  const dir = mkdtempSync(join(tmpdir(), "acme-jsonfile-"));
  dirs.push(dir);
  const def = plugin.stores["acme.jsonfile"];
  const settings = def.settings.parse({ path: "./secrets.json" });
  return def.create("kv", settings, { configDir: dir, clock, env: {} });
}

const cleanup = async () => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
};

storeContract(
  "acme.jsonfile",
  async () => {
    const store = newStore();
    return {
      store,
      async seed(key, values) {
        const ids = [];
        for (const v of values) ids.push((await store.put(key, new Secret(v))).versionId);
        return ids;
      },
    };
  },
  cleanup,
);

stagingContract("acme.jsonfile", async () => ({ store: newStore() }), cleanup);
