// Real peers: a private D-Bus session bus (dbus-daemon --session) with GNOME Keyring's Secret Service (gnome-keyring-daemon --components=secrets) in a throwaway HOME; items written with secret-tool. macOS Keychain (security) is not tested here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { KeychainStore } from "../../provider/stores/keychain";
import { contentVersion } from "../../provider/stores/literal";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { startSecretService, type SecretService } from "../support/secret-service";
import { storeContract } from "../support/store-contract";

const root = mkdtempSync(join(tmpdir(), "dsops-keychain-"));
let svc: SecretService;
let env: NodeJS.ProcessEnv = {};

const values: string[] = [];
const val = (tag: string) => {
  const v = `kv-${tag}-${randomBytes(8).toString("hex")}`;
  values.push(v);
  return v;
};
const assertClean = (text: string, what: string) => {
  for (const v of values) assert.ok(!text.includes(v), `${what} holds a value:\n${text}`);
  assert.ok(!text.includes(svc.password), `${what} holds the keyring's password`);
};
const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;

const tool = (args: string[], input?: string) => svc.tool(args, input);
const storeItem = (service: string, account: string, value: string) => svc.storeItem(service, account, value);

const ctx = (): StoreContext => ({ configDir: root, clock: systemClock, env });
const makeStore = (extra: Record<string, unknown> = {}, name = "kc") => new KeychainStore(name, storeSettingsSchemas.keychain.parse({ type: "keychain", ...extra }), ctx());

describe("keychain store on Linux (real Secret Service: gnome-keyring on a private D-Bus session)", function () {
  this.timeout(120000);

  before(async () => {
    svc = await startSecretService();
    env = svc.env;
  });

  after(() => {
    svc?.stop(); // gnome-keyring-daemon leaves with its bus
    rmSync(root, { recursive: true, force: true });
  });

  describe("contract", () => {
    storeContract("keychain (Secret Service via secret-tool)", async () => ({
      store: makeStore(),
      seed: async (key: string, vals: string[]) => {
        const [service, account] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
        for (const v of vals) storeItem(service, account, v);
        return vals.map((v) => contentVersion(v));
      },
      key: (name: string) => `contract/${name}`,
    }));
  });

  it("reads service/account items (service_prefix joined with '.'), writes with the value on stdin; secret-tool finds what the store wrote", async () => {
    const v = val("prefixed");
    storeItem("com.acme.db", "password", v);
    const store = makeStore({ service_prefix: "com.acme" });
    const got = await store.get({ key: "db/password" });
    assert.equal(got.value.reveal(), v);
    assert.equal(got.versionId, contentVersion(v));
    assert.equal((await store.get({ key: "db/password", version: "current" })).value.reveal(), v);
    await assert.rejects(store.get({ key: "db/password", version: "abc" }), NotFoundError);
    // the account is everything after the first "/"
    const w = val("written");
    const info = await store.put("api/ci/token", new Secret(w));
    assert.equal(info.versionId, contentVersion(w));
    const look = tool(["lookup", "service", "com.acme.api", "account", "ci/token"]);
    assert.equal(look.status, 0, look.stderr);
    assert.equal(look.stdout, w);
    // overwrite: one item, the new value
    const w2 = val("written2");
    await store.put("api/ci/token", new Secret(w2));
    const search = tool(["search", "--all", "service", "com.acme.api", "account", "ci/token"]);
    assert.equal((search.stdout.match(/^\[\//gm) ?? []).length, 1, search.stdout);
    assert.equal((await store.get({ key: "api/ci/token" })).value.reveal(), w2);
  });

  it("missing items, keys without an account, no D-Bus session, no secret-tool: clear errors without values", async () => {
    const store = makeStore();
    await assert.rejects(store.get({ key: "nosuch/item" }), (e: unknown) => e instanceof NotFoundError && /item "nosuch\/item" is not in the keychain \(service "nosuch", account "item"\)/.test((e as Error).message));
    for (const bad of ["noslash", "/account", "service/"])
      await assert.rejects(store.get({ key: bad }), (e: unknown) => e instanceof DsopsError && !(e instanceof NotFoundError) && /is not a keychain key \(service\/account/.test((e as Error).message), bad);
    const noBus = new KeychainStore("kc", storeSettingsSchemas.keychain.parse({ type: "keychain" }), { ...ctx(), env: { PATH: process.env.PATH, HOME: env.HOME } });
    await assert.rejects(noBus.get({ key: "a/b" }), (e: unknown) => e instanceof StoreError && /no Secret Service on the D-Bus session/.test((e as Error).message) && /dbus-run-session/.test(String((e as StoreError).hint)));
    await assert.rejects(noBus.check(), /no Secret Service on the D-Bus session/);
    const emptyBin = join(root, "empty-bin");
    mkdirSync(emptyBin, { recursive: true });
    const noTool = new KeychainStore("kc", storeSettingsSchemas.keychain.parse({ type: "keychain" }), { ...ctx(), env: { ...env, PATH: emptyBin } });
    await assert.rejects(noTool.get({ key: "a/b" }), (e: unknown) => e instanceof DsopsError && /the command "secret-tool" is not installed/.test((e as Error).message) && /libsecret-tools/.test(String((e as DsopsError).hint)));
    await makeStore().check();
  });

  it("through the CLI in the session: get and render, optional missing item, doctor, providers, login; no value in any output", async () => {
    const dir = mkdtempSync(join(root, "cli-"));
    const [a, b] = [val("cli-a"), val("cli-b")];
    storeItem("myapp", "database-password", a);
    storeItem("dev.github.com", "token", b);
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  keychain: { type: keychain }
  work: { type: keychain, service_prefix: dev }
envs:
  app:
    DB: { from: "keychain:myapp/database-password" }
    GH: { from: { store: work, key: github.com/token } }
    GONE: { from: "store://keychain/myapp/absent", optional: true }
`,
    );
    const g = await dsopsRun(["get", "--env", "app", "--var", "GH"], { cwd: dir, env });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout.trim(), b);
    const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: Record<string, string> }).variables, { DB: a, GH: b });
    assert.match(r.stderr, /GONE: optional, left out: .*not in the keychain/);
    assertClean(r.stdout + r.stderr, "render's output");
    const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env });
    assert.equal(doc.status, 0, doc.stdout + doc.stderr);
    const docNoBus = await dsopsRun(["doctor", "--store", "keychain"], { cwd: dir, env: { ...env, DBUS_SESSION_BUS_ADDRESS: "" } });
    assert.equal(docNoBus.status, 1, docNoBus.stdout + docNoBus.stderr);
    assert.match(docNoBus.stdout + docNoBus.stderr, /keychain +keychain +failed .*no Secret Service/);
    const nv = val("set");
    const set = await dsopsRun(["secrets", "set", "--store", "work", "--key", "github.com/token"], { cwd: dir, env, input: nv });
    assert.equal(set.status, 0, set.stderr);
    assertClean(set.stdout + set.stderr, "secrets set's output");
    assert.equal(tool(["lookup", "service", "dev.github.com", "account", "token"]).stdout, nv);
    const prov = await dsopsRun(["providers"], { cwd: dir, env });
    assert.match(prov.stdout, /^keychain +yes +no\*? +- +no +no +check +the OS keychain/m);
    const login = await dsopsRun(["login", "keychain"], { cwd: dir, env });
    assert.equal(login.status, 0, login.stderr);
    assert.match(login.stdout + login.stderr, /Secret Service of the D-Bus session/);
    assertClean(g.stderr + doc.stdout + doc.stderr + login.stdout + login.stderr, "the CLI's output");
  });

  // last: the other tests need the keyring unlocked
  describe("locked keyring", () => {
    it("a locked keyring: reads and writes are auth errors naming the unlock; unlocking (password on stdin) makes them work again", async () => {
      const v = val("locked");
      storeItem("locked-svc", "acct", v);
      svc.lock();
      const store = makeStore();
      await assert.rejects(store.get({ key: "locked-svc/acct" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /read of item "locked-svc\/acct" .*: the item is in a locked keyring/);
        assert.match(String((e as AuthError).hint), /gnome-keyring-daemon --unlock/);
        assertClean(errorText(e), "the error");
        return true;
      });
      const w = val("locked-write");
      await assert.rejects(store.put("locked-svc/other", new Secret(w)), (e: unknown) => e instanceof AuthError && /locked collection/.test((e as Error).message) && !errorText(e).includes(w));
      svc.unlock(true);
      assert.equal((await store.get({ key: "locked-svc/acct" })).value.reveal(), v);
      await store.put("locked-svc/other", new Secret(w));
      assert.equal(tool(["lookup", "service", "locked-svc", "account", "other"]).stdout, w);
    });
  });
});
