// Real peer: Debian's lpass (lastpass-cli) with a throwaway LPASS_HOME, never signed in: no LastPass-protocol server can run here, so only the signed-out path, a missing CLI and a hanging CLI are tested (the type is experimental).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, StoreError, TimeoutError } from "../../provider/core/errors";
import { LastPassStore } from "../../provider/stores/lastpass";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { dsopsRun } from "../support/cli";

const hasLpass = spawnSync("lpass", ["--version"]).status === 0;

describe("lastpass store (real lpass, signed out; experimental)", function () {
  this.timeout(60000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const makeStore = (extra: Record<string, unknown> = {}) =>
    new LastPassStore("lp", storeSettingsSchemas.lastpass.parse({ type: "lastpass", username: "dev@example.test", ...extra }), { configDir: dir, clock: systemClock, env });

  before(function () {
    if (!hasLpass) this.skip();
    dir = mkdtempSync(join(tmpdir(), "dsops-lpass-"));
    env = { ...process.env, LPASS_HOME: join(dir, "lpass-home") };
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("a signed-out lpass: get and check are AuthErrors naming the store and key, whose hint is `lpass login <email>`", async () => {
    const store = makeStore();
    await assert.rejects(store.get({ key: "Shared-Infra/db" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /^store "lp": read of "Shared-Infra\/db": the LastPass CLI is not signed in/);
      assert.match(String((e as DsopsError).hint), /lpass login dev@example\.test/);
      return true;
    });
    await assert.rejects(store.get({ key: "Shared-Infra/db", field: "username" }), (e: unknown) => e instanceof AuthError && /\(field username\)/.test((e as Error).message));
    await assert.rejects(store.check(), (e: unknown) => e instanceof AuthError && /check: the LastPass CLI is not signed in \(lpass: Not logged in\.\); sign in with `lpass login dev@example\.test`$/.test((e as Error).message));
    assert.equal(store.capabilities.write, false);
    assert.equal(store.readsField("username"), true);
    assert.equal(store.readsField(".a.b"), false);
  });

  it("a key that lpass would read as an option is refused", async () => {
    await assert.rejects(makeStore().get({ key: "--all" }), (e: unknown) => e instanceof DsopsError && /is not a LastPass entry name or id/.test((e as Error).message));
  });

  it("a missing lpass and an lpass that hangs: a StoreError saying how to install it, a TimeoutError", async () => {
    await assert.rejects(makeStore({ cli: join(dir, "no-lpass") }).get({ key: "x" }), (e: unknown) => {
      assert.ok(e instanceof StoreError && !e.retryable, String(e));
      assert.match(String((e as DsopsError).hint), /apt-get install lastpass-cli/);
      return true;
    });
    const hang = join(dir, "hang.sh");
    writeFileSync(hang, "#!/bin/sh\nexec sleep 60\n");
    chmodSync(hang, 0o755);
    await assert.rejects(makeStore({ cli: hang, timeout_ms: 300 }).get({ key: "x" }), TimeoutError);
  });

  it("through the CLI: get exits 1 with the sign-in hint, doctor fails the store, secrets set is refused, login --list names lpass login", async () => {
    writeFileSync(join(dir, "dsops.yaml"), `version: 1\nsecretStores:\n  lp: { type: lastpass, username: dev@example.test }\nenvs:\n  app:\n    DB: { from: "store://lp/Shared-Infra/db#username" }\n`);
    const g = await dsopsRun(["get", "--env", "app", "--var", "DB"], { cwd: dir, env: { LPASS_HOME: env.LPASS_HOME } });
    assert.equal(g.status, 1, g.stderr);
    assert.match(g.stderr, /DB \(store lp, key Shared-Infra\/db\): store "lp": read of "Shared-Infra\/db" \(field username\): the LastPass CLI is not signed in/);
    assert.match(g.stderr, /lpass login dev@example\.test/);
    const doc = await dsopsRun(["doctor", "--store", "lp"], { cwd: dir, env: { LPASS_HOME: env.LPASS_HOME } });
    assert.equal(doc.status, 1, doc.stdout + doc.stderr);
    assert.match(doc.stdout + doc.stderr, /lp +lastpass +failed .*not signed in/);
    const set = await dsopsRun(["secrets", "set", "--store", "lp", "--key", "Shared-Infra/db"], { cwd: dir, env: { LPASS_HOME: env.LPASS_HOME }, input: "never-written\n" });
    assert.equal(set.status, 1, set.stderr);
    assert.match(set.stderr, /store "lp" \(lastpass\) is read-only/);
    const login = await dsopsRun(["login", "--list", "--json"], { cwd: dir, env: { LPASS_HOME: env.LPASS_HOME } });
    assert.equal(login.status, 0, login.stderr);
    assert.deepEqual(JSON.parse(login.stdout), [{ store: "lp", type: "lastpass", login: "interactive", how: "dsops login lp runs lpass login dev@example.test", cli: "lpass" }]);
  });
});
