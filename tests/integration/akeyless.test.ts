// Local server speaking Akeyless's real V2 API (/auth, /describe-item, /get-secret-value, … ; tests/support/akeyless-server.ts) to the real `akeyless` SDK: no Akeyless gateway can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AkeylessStore } from "../../provider/stores/akeyless";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { startAkeylessServer, type AkeylessServer } from "../support/akeyless-server";
import { storeContract } from "../support/store-contract";

const ACCESS_ID = "p-dsopstest1";
const ACCESS_KEY = `ak-${randomBytes(16).toString("base64url")}`;
const ADMIN_TOKEN = `t-admin-${randomBytes(12).toString("hex")}`;

/** The real SDK (untyped package), used as another client to seed the server through the wire. */
const akeyless = require("akeyless") as {
  ApiClient: new (base: string) => unknown;
  V2Api: new (c: unknown) => Record<string, (b: unknown) => Promise<unknown>>;
  CreateSecret: { constructFromObject(d: object): unknown };
  UpdateSecretVal: { constructFromObject(d: object): unknown };
};

describe("akeyless store", function () {
  this.timeout(60000);
  let srv: AkeylessServer;
  let admin: Record<string, (b: unknown) => Promise<unknown>>;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  const secretsUsed: string[] = [ACCESS_KEY, ADMIN_TOKEN];
  const val = (tag: string) => {
    const v = `akv-${tag}-${randomBytes(8).toString("hex")}`;
    secretsUsed.push(v);
    return v;
  };
  const assertClean = (text: string, what: string) => {
    for (const s of secretsUsed) assert.ok(!text.includes(s), `${what} holds a secret:\n${text}`);
  };
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
  const makeStore = (extra: Record<string, unknown> = {}) =>
    new AkeylessStore("ak", storeSettingsSchemas.akeyless.parse({ type: "akeyless", access_id: ACCESS_ID, gateway_url: srv.url, auth: { method: "api_key", access_key: ACCESS_KEY }, ...extra }), ctx);
  async function seed(name: string, values: string[]): Promise<string[]> {
    for (const [i, v] of values.entries()) {
      if (i === 0) await admin.createSecret(akeyless.CreateSecret.constructFromObject({ name, value: v, token: ADMIN_TOKEN }));
      else await admin.updateSecretVal(akeyless.UpdateSecretVal.constructFromObject({ name, value: v, token: ADMIN_TOKEN }));
    }
    return values.map((_, i) => String(i + 1));
  }

  before(async () => {
    srv = await startAkeylessServer();
    srv.addAccessKey(ACCESS_ID, ACCESS_KEY, "/dsops/");
    srv.addToken(ADMIN_TOKEN);
    admin = new akeyless.V2Api(new akeyless.ApiClient(srv.url));
  });
  after(async () => {
    await srv?.stop();
  });

  storeContract("akeyless", async () => ({ store: makeStore(), seed: (key, values) => seed(key, values), key: (n) => `/dsops/contract/${n}`, missingVersion: "999" }));

  describe("beyond the contract", () => {
    beforeEach(() => srv.fault(undefined));

    it("a static read: describe-item for the last version, then that version's value; one /auth for many reads", async () => {
      const [v1, v2] = [val("s1"), val("s2")];
      await seed("/dsops/app/db-password", [v1, v2]);
      const store = makeStore();
      srv.requests.length = 0;
      const got = await store.get({ key: "dsops/app/db-password" });
      assert.deepEqual([got.value.reveal(), got.versionId], [v2, "2"]);
      assert.equal((await store.get({ key: "/dsops/app/db-password@v1" })).value.reveal(), v1);
      assert.equal((await store.describe({ key: "/dsops/app/db-password" })).versionId, "2");
      assert.deepEqual(srv.requests.map((r) => r.path), ["/auth", "/describe-item", "/get-secret-value", "/get-secret-value", "/describe-item"]);
    });

    it("dynamic and rotated secrets are read as values (JSON text)", async () => {
      srv.addDynamic("/dsops/db/dynamic");
      const pw = val("rot");
      srv.addRotated("/dsops/db/rotated", "app", pw);
      const store = makeStore();
      const d1 = await store.get({ key: "/dsops/db/dynamic", options: { type: "dynamic" } });
      const d2 = await store.get({ key: "/dsops/db/dynamic", options: { type: "dynamic" } });
      const c1 = JSON.parse(d1.value.reveal()) as { user: string; password: string };
      assert.match(c1.user, /^tmp-/);
      assert.notEqual(d1.versionId, d2.versionId, "each read of a dynamic secret is new credentials");
      const r = await store.get({ key: "/dsops/db/rotated", options: { type: "rotated" } });
      assert.deepEqual(JSON.parse(r.value.reveal()), { username: "app", password: pw });
      await assert.rejects(store.get({ key: "/dsops/db/rotated" }), NotFoundError);
      await assert.rejects(store.get({ key: "/dsops/x", options: { type: "weird" } }), (e: unknown) => e instanceof DsopsError && /static, dynamic or rotated/.test((e as Error).message));
    });

    it("writes: update-secret-val makes a new version, create-secret a new item; a token works too", async () => {
      const store = makeStore({ access_id: undefined, auth: { method: "token", token: ADMIN_TOKEN } });
      const [v1, v2] = [val("w1"), val("w2")];
      assert.equal((await store.put("/dsops/new/item", new Secret(v1))).versionId, "1");
      assert.equal((await store.put("/dsops/new/item", new Secret(v2))).versionId, "2");
      assert.equal(srv.current("/dsops/new/item"), v2);
    });

    it("logs in again when the token is refused (expired)", async () => {
      const v = val("relog");
      await seed("/dsops/relog", [v]);
      const store = makeStore();
      await store.get({ key: "/dsops/relog" });
      srv.revokeIssuedTokens();
      assert.equal((await store.get({ key: "/dsops/relog" })).value.reveal(), v);
    });

    describe("attacks", () => {
      it("a wrong access key: AuthError naming store and key, no key in it", async () => {
        const wrong = `ak-${randomBytes(16).toString("base64url")}`;
        secretsUsed.push(wrong);
        await assert.rejects(makeStore({ auth: { access_key: wrong } }).get({ key: "/dsops/any" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /^store "ak": read of secret "\/dsops\/any" \(describe-item\): authentication \(\/auth\): refused \(HTTP 401\): Unauthorized/);
          assertClean(errorText(e), "the error");
          return true;
        });
        await assert.rejects(makeStore({ auth: {} }).check(), (e: unknown) => e instanceof AuthError && /needs access_id and auth\.access_key/.test((e as Error).message));
      });

      it("an item outside the access role: 403 AuthError", async () => {
        await assert.rejects(makeStore().get({ key: "/other/secret" }), (e: unknown) => e instanceof AuthError && /describe-item\): not allowed \(HTTP 403\)/.test((e as Error).message));
      });

      it("429 and 503: retryable StoreErrors", async () => {
        const store = makeStore();
        await store.check();
        srv.fault({ kind: "status", status: 429 });
        await assert.rejects(store.get({ key: "/dsops/t" }), (e: unknown) => e instanceof StoreError && e.retryable && /throttled \(HTTP 429\): rate limit exceeded/.test((e as Error).message));
        srv.fault({ kind: "status", status: 503 });
        await assert.rejects(store.get({ key: "/dsops/t" }), (e: unknown) => e instanceof StoreError && e.retryable && /HTTP 503/.test((e as Error).message));
      });

      it("a hang: TimeoutError after timeout_ms", async () => {
        const store = makeStore({ timeout_ms: 300 });
        await store.check();
        srv.fault({ kind: "hang" });
        await assert.rejects(store.get({ key: "/dsops/hang" }), (e: unknown) => {
          assert.ok(e instanceof TimeoutError, String(e));
          assert.match((e as Error).message, /read of secret "\/dsops\/hang" \(describe-item\): no answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms \(timeout_ms\)/);
          return true;
        });
      });

      it("an answer that is not JSON: a StoreError without the body", async () => {
        const store = makeStore();
        await store.check();
        srv.fault({ kind: "malformed" });
        await assert.rejects(store.get({ key: "/dsops/m" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !(e instanceof NotFoundError), String(e));
          assert.doesNotMatch((e as Error).message, /html/);
          return true;
        });
      });

      it("a server that is down: a retryable StoreError naming the gateway", async () => {
        const down = await startAkeylessServer();
        const url = down.url;
        await down.stop();
        await assert.rejects(makeStore({ gateway_url: url }).get({ key: "/dsops/down" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && e.retryable, String(e));
          assert.equal((e as Error).message, `store "ak": read of secret "/dsops/down" (describe-item): authentication (/auth): cannot reach ${url}: ECONNREFUSED`);
          return true;
        });
      });
    });

    it("through the CLI: dsops's shape (access_id, auth.method api_key), render with @v1 and optional, doctor, secrets set", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-akeyless-"));
      try {
        const [v1, v2] = [val("c1"), val("c2")];
        await seed("/dsops/cli/key", [v1, v2]);
        writeFileSync(
          join(dir, "dsops.yaml"),
          `version: 1
secretStores:
  akeyless:
    type: akeyless
    access_id: ${ACCESS_ID}
    gateway_url: "${srv.url}"
    auth: { method: api_key, access_key: "\${AK_KEY}" }
envs:
  app:
    NOW: { from: "store://akeyless/dsops/cli/key" }
    OLD: { from: "store://akeyless/dsops/cli/key@v1" }
    GONE: { from: "store://akeyless/dsops/none", optional: true }
`,
        );
        const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env: { AK_KEY: ACCESS_KEY } });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual((JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: unknown }).variables, { NOW: v2, OLD: v1 });
        assert.match(r.stderr, /GONE: optional, left out: .*not found/);
        const bad = await dsopsRun(["get", "--env", "app", "--var", "NOW"], { cwd: dir, env: { AK_KEY: "nope" } });
        assert.equal(bad.status, 1, bad.stderr);
        assert.match(bad.stderr, /NOW \(store akeyless, key dsops\/cli\/key\): .*refused \(HTTP 401\)/);
        const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env: { AK_KEY: ACCESS_KEY } });
        assert.equal(doc.status, 0, doc.stderr);
        const v3 = val("c3");
        const set = await dsopsRun(["secrets", "set", "--store", "akeyless", "--key", "/dsops/cli/key"], { cwd: dir, env: { AK_KEY: ACCESS_KEY }, input: v3 });
        assert.equal(set.status, 0, set.stderr);
        assert.equal(srv.current("/dsops/cli/key"), v3);
        assertClean(r.stdout + r.stderr + bad.stdout + bad.stderr + doc.stdout + doc.stderr + set.stdout + set.stderr, "the CLI's output");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
