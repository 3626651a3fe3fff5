// Local server speaking Infisical's real REST API (universal-auth login, raw secrets v3; tests/support/infisical-server.ts) to the real @infisical/sdk: no Infisical server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InfisicalSDK } from "@infisical/sdk";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { InfisicalStore } from "../../provider/stores/infisical";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { startInfisicalServer, type InfisicalServer } from "../support/infisical-server";
import { storeContract } from "../support/store-contract";

const PROJECT = "6f1c0e2a-proj-app";
const OTHER = "6f1c0e2a-proj-other";
const CLIENT_ID = "ua-client-dsops";
const CLIENT_SECRET = `ua-secret-${randomBytes(12).toString("hex")}`;
const ACCESS_TOKEN = `inf-token-${randomBytes(12).toString("hex")}`;

describe("infisical store", function () {
  this.timeout(60000);
  let srv: InfisicalServer;
  /** The real SDK, logged in as another client: seeds through the wire. */
  let admin: InfisicalSDK;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  const secretsUsed: string[] = [CLIENT_SECRET, ACCESS_TOKEN];
  const val = (tag: string) => {
    const v = `iv-${tag}-${randomBytes(8).toString("hex")}`;
    secretsUsed.push(v);
    return v;
  };
  const assertClean = (text: string, what: string) => {
    for (const s of secretsUsed) assert.ok(!text.includes(s), `${what} holds a secret:\n${text}`);
  };
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
  const makeStore = (extra: Record<string, unknown> = {}) =>
    new InfisicalStore(
      "inf",
      storeSettingsSchemas.infisical.parse({
        type: "infisical",
        project_id: PROJECT,
        environment: "dev",
        site_url: srv.url,
        auth: { method: "universal_auth", client_id: CLIENT_ID, client_secret: CLIENT_SECRET },
        ...extra,
      }),
      ctx,
    );
  async function seed(name: string, values: string[], path = "/"): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, v] of values.entries()) {
      const opts = { projectId: PROJECT, environment: "dev", secretPath: path, secretValue: v };
      const r = i === 0 ? await admin.secrets().createSecret(name, opts) : await admin.secrets().updateSecret(name, opts);
      ids.push(String(r.secret.version));
    }
    return ids;
  }

  before(async () => {
    srv = await startInfisicalServer({ projects: { [PROJECT]: ["dev", "prod"], [OTHER]: ["dev"] } });
    srv.addIdentity({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, projects: [PROJECT] });
    srv.addIdentity({ clientId: "admin", clientSecret: "admin-secret", projects: [PROJECT, OTHER] });
    srv.addAccessToken(ACCESS_TOKEN, [PROJECT]);
    admin = await new InfisicalSDK({ siteUrl: srv.url }).auth().universalAuth.login({ clientId: "admin", clientSecret: "admin-secret" });
  });
  after(async () => {
    await srv?.stop();
  });

  storeContract("infisical", async () => ({ store: makeStore(), seed: (key, values) => seed(key, values), missingVersion: "999999" }));

  describe("beyond the contract", () => {
    beforeEach(() => {
      srv.fault(undefined);
    });

    it("logs in once (universal auth), reads a folder's keys with ONE list call, versions one by one", async () => {
      const [a, b, c] = [val("a"), val("b"), val("c")];
      await seed("A_KEY", [a], "/payments/stripe");
      await seed("B_KEY", [b], "/payments/stripe");
      const ids = await seed("C_KEY", [c, val("c2")]);
      const store = makeStore();
      srv.requests.length = 0;
      const r = await store.getMany([{ key: "payments/stripe/A_KEY" }, { key: "/payments/stripe/B_KEY" }, { key: "payments/stripe/NOPE" }, { key: `C_KEY@v${ids[0]}` }]);
      assert.equal((r[0] as { value: Secret }).value.reveal(), a);
      assert.equal((r[1] as { value: Secret }).value.reveal(), b);
      assert.ok(r[2] instanceof NotFoundError && /secret "payments\/stripe\/NOPE"/.test(r[2].message), String(r[2]));
      assert.equal((r[3] as { value: Secret; versionId: string }).value.reveal(), c);
      assert.equal((r[3] as { versionId: string }).versionId, ids[0]);
      const calls = srv.requests.map((q) => `${q.method} ${q.path}`);
      assert.deepEqual(calls.filter((x) => x.includes("login")), ["POST /api/v1/auth/universal-auth/login"]);
      assert.deepEqual(calls.filter((x) => x === "GET /api/v3/secrets/raw"), ["GET /api/v3/secrets/raw"]);
      assert.equal(srv.requests.find((q) => q.path === "/api/v3/secrets/raw")?.query.secretPath, "/payments/stripe");
      assert.equal(calls.length, 3, calls.join("\n"));
    });

    it("the store's path prefixes keys; references expand; describe sends no value", async () => {
      const host = val("host");
      await seed("HOST", [host], "/svc");
      await seed("URL", ["https://${HOST}/x"], "/svc");
      const store = makeStore({ path: "/svc" });
      assert.equal((await store.get({ key: "URL" })).value.reveal(), `https://${host}/x`);
      srv.requests.length = 0;
      const d = await store.describe({ key: "HOST" });
      assert.equal(d.versionId, "1");
      assert.equal(srv.requests[0].query.viewSecretValue, "false");
    });

    it("writes: update makes a new version, a new name is created; an access token works too", async () => {
      const store = makeStore({ auth: { method: "service_token", token: ACCESS_TOKEN } });
      const [v1, v2] = [val("w1"), val("w2")];
      const first = await store.put("team/NEW_SECRET", new Secret(v1));
      const second = await store.put("team/NEW_SECRET", new Secret(v2));
      assert.deepEqual([first.versionId, second.versionId], ["1", "2"]);
      assert.equal(srv.read(PROJECT, "dev", "/team", "NEW_SECRET"), v2);
      assert.equal((await store.get({ key: "team/NEW_SECRET", version: "1" })).value.reveal(), v1);
    });

    it("logs in again when the access token is refused (expired)", async () => {
      const v = val("relog");
      await seed("RELOG", [v]);
      const store = makeStore();
      await store.get({ key: "RELOG" });
      srv.revokeLoginTokens();
      srv.requests.length = 0;
      assert.equal((await store.get({ key: "RELOG" })).value.reveal(), v);
      assert.deepEqual(srv.requests.map((q) => q.path), ["/api/v3/secrets/raw/RELOG", "/api/v1/auth/universal-auth/login", "/api/v3/secrets/raw/RELOG"]);
      await admin.auth().universalAuth.login({ clientId: "admin", clientSecret: "admin-secret" });
    });

    describe("attacks", () => {
      it("a wrong client secret: AuthError naming store and key, no secret in it", async () => {
        const wrong = `wrong-${randomBytes(8).toString("hex")}`;
        secretsUsed.push(wrong);
        await assert.rejects(makeStore({ auth: { client_id: CLIENT_ID, client_secret: wrong } }).get({ key: "ANY" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /^store "inf": read of secret "ANY" \(environment "dev", folder "\/"\): login \(universal auth\): credentials refused \(HTTP 401\): Invalid credentials$/);
          assertClean(errorText(e), "the error");
          return true;
        });
        await assert.rejects(makeStore({ auth: { client_id: CLIENT_ID } }).get({ key: "ANY" }), (e: unknown) => e instanceof AuthError && /needs auth\.client_id and auth\.client_secret/.test((e as Error).message));
      });

      it("another project: 403 is an AuthError naming the secret", async () => {
        await assert.rejects(makeStore({ project_id: OTHER }).get({ key: "X" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /read of secret "X" \(environment "dev", folder "\/"\): not allowed \(HTTP 403\)/);
          return true;
        });
      });

      it("429: the SDK retries it by itself; when it persists, a retryable StoreError", async function () {
        this.timeout(90000);
        const v = val("throttle");
        await seed("THROTTLED", [v]);
        const store = makeStore();
        await store.check();
        srv.fault({ kind: "status", status: 429, count: 1 });
        assert.equal((await store.get({ key: "THROTTLED" })).value.reveal(), v);
        // Persisting: the SDK gives up after its 4 retries (about 15 s of its own waits).
        srv.fault({ kind: "status", status: 429 });
        await assert.rejects(store.get({ key: "THROTTLED" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && e.retryable, String(e));
          assert.match((e as Error).message, /read of secret "THROTTLED" .*: throttled \(HTTP 429, after the SDK's own retries\): Rate limit exceeded/);
          return true;
        });
        srv.fault({ kind: "status", status: 503 });
        await assert.rejects(store.get({ key: "THROTTLED" }), (e: unknown) => e instanceof StoreError && e.retryable && /HTTP 503/.test((e as Error).message));
      });

      it("a hang: TimeoutError after timeout_ms", async () => {
        const store = makeStore({ timeout_ms: 300 });
        await store.check();
        srv.fault({ kind: "hang", count: 1 });
        await assert.rejects(store.get({ key: "HANG" }), (e: unknown) => {
          assert.ok(e instanceof TimeoutError, String(e));
          assert.match((e as Error).message, /read of secret "HANG" .*: no answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms \(timeout_ms\)/);
          return true;
        });
      });

      it("an answer that is not JSON: a StoreError, not a NotFoundError, no body in it", async () => {
        const store = makeStore();
        await store.check();
        srv.fault({ kind: "malformed" });
        await assert.rejects(store.get({ key: "MALFORMED" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !(e instanceof NotFoundError), String(e));
          assert.match((e as Error).message, /read of secret "MALFORMED" .*: the answer holds no secret/);
          return true;
        });
        const r = await store.getMany([{ key: "M1" }, { key: "M2" }]);
        assert.ok(r.every((x) => x instanceof StoreError && /holds no list of secrets/.test(x.message)), r.map(String).join("\n"));
      });

      it("a server that is down: a retryable StoreError naming the address", async () => {
        const down = await startInfisicalServer({ projects: {} });
        const url = down.url;
        await down.stop();
        await assert.rejects(makeStore({ site_url: url, timeout_ms: 60000 }).get({ key: "DOWN" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && e.retryable && !(e instanceof TimeoutError), String(e));
          assert.match((e as Error).message, new RegExp(`read of secret "DOWN" .*: login \\(universal auth\\): cannot reach ${url.replace(/[.:/]/g, "\\$&")}: `));
          return true;
        });
      });

      it("bad keys are refused before any call", async () => {
        const store = makeStore();
        srv.requests.length = 0;
        await assert.rejects(store.get({ key: "a//B" }), (e: unknown) => e instanceof DsopsError && !(e instanceof StoreError) && /is not an Infisical secret/.test((e as Error).message));
        await assert.rejects(store.get({ key: "B@latest-ish" }), NotFoundError);
        assert.equal(srv.requests.length, 0);
      });
    });

    it("through the CLI: dsops.yaml in dsops's shape (host, auth.method machine_identity), render, optional, doctor", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-infisical-"));
      try {
        const [v1, v2] = [val("c1"), val("c2")];
        await seed("CLI_ONE", [v1]);
        await seed("CLI_TWO", [v2], "/api");
        writeFileSync(
          join(dir, "dsops.yaml"),
          `version: 1
secretStores:
  infisical:
    type: infisical
    host: "${srv.url}"
    project_id: "${PROJECT}"
    environment: dev
    auth:
      method: machine_identity
      client_id: ${CLIENT_ID}
      client_secret: "\${INF_SECRET}"
envs:
  app:
    ONE: { from: "store://infisical/CLI_ONE" }
    TWO: { from: "infisical:api/CLI_TWO" }
    OLD: { from: "store://infisical/CLI_ONE@v1" }
    GONE: { from: "store://infisical/flags/NOT_THERE", optional: true }
`,
        );
        const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env: { INF_SECRET: CLIENT_SECRET } });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual((JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: unknown }).variables, { ONE: v1, OLD: v1, TWO: v2 });
        assert.match(r.stderr, /GONE: optional, left out: .*not found/);
        assertClean(r.stdout + r.stderr, "render's output");
        const bad = await dsopsRun(["get", "--env", "app", "--var", "ONE"], { cwd: dir, env: { INF_SECRET: "nope-nope" } });
        assert.equal(bad.status, 1, bad.stderr);
        assert.match(bad.stderr, /ONE \(store infisical, key CLI_ONE\): store "infisical": read of secret "CLI_ONE" \(environment "dev", folder "\/"\): login \(universal auth\): credentials refused \(HTTP 401\)/);
        const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env: { INF_SECRET: CLIENT_SECRET } });
        assert.equal(doc.status, 0, doc.stderr);
        assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
        const login = await dsopsRun(["login", "infisical"], { cwd: dir, env: { INF_SECRET: CLIENT_SECRET } });
        assert.equal(login.status, 0, login.stderr);
        assert.match(login.stderr, /logs in by itself with universal auth/);
        const set = await dsopsRun(["secrets", "set", "--store", "infisical", "--key", "api/CLI_TWO"], { cwd: dir, env: { INF_SECRET: CLIENT_SECRET }, input: val("c3") });
        assert.equal(set.status, 0, set.stderr);
        assert.equal(srv.read(PROJECT, "dev", "/api", "CLI_TWO"), secretsUsed.at(-1));
        assertClean(bad.stdout + bad.stderr + doc.stdout + doc.stderr + set.stdout + set.stderr, "the CLI's output");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
