// Local stand-in server speaking Bitwarden Secrets Manager's real wire protocol (identity client_credentials login with the encrypted org key, secrets API, EncString type 2; tests/support/bitwarden-sm-server.ts) to the real @bitwarden/sdk-napi: no Bitwarden server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { BitwardenSmStore, sdkCall } from "../../provider/stores/bitwarden-sm";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { startBitwardenSmServer, type BwsServer } from "../support/bitwarden-sm-server";
import { storeContract } from "../support/store-contract";

/**
 * The real SDK as an admin's machine account, to seed the server through the wire: a client of
 * its own in the store's SDK thread (the native SDK must not be loaded by a second thread of the
 * process; Node aborts when it is).
 */
class AdminSdk {
  private static n = 0;
  private readonly client = `admin#${++AdminSdk.n}`;
  constructor(
    private readonly apiUrl: string,
    private readonly identityUrl: string,
  ) {}
  async call<T>(op: string, ...args: unknown[]): Promise<T> {
    if (op === "login") await sdkCall(this.client, "open", [this.apiUrl, this.identityUrl], "admin", 30000);
    return (await sdkCall(this.client, op as Parameters<typeof sdkCall>[1], args, "admin", 30000)) as T;
  }
  async stop(): Promise<void> {
    await sdkCall(this.client, "close", [], "admin", 30000);
  }
}
type Seeded = { id: string; key: string; note: string; projectId?: string | null; value: string; revisionDate: string };

describe("bitwarden-sm store (Bitwarden Secrets Manager)", function () {
  this.timeout(60000);
  let srv: BwsServer;
  let admin: AdminSdk;
  let project: string;
  let other: string;
  let token: string;
  let adminToken: string;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  const secretsUsed: string[] = [];
  const val = (tag: string) => {
    const v = `bws-${tag}-${randomBytes(8).toString("hex")}`;
    secretsUsed.push(v);
    return v;
  };
  const assertClean = (text: string, what: string) => {
    for (const s of secretsUsed) assert.ok(!text.includes(s), `${what} holds a secret:\n${text}`);
  };
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
  const makeStore = (extra: Record<string, unknown> = {}, c: StoreContext = ctx) =>
    new BitwardenSmStore(
      "bws",
      storeSettingsSchemas["bitwarden-sm"].parse({
        type: "bitwarden-sm",
        access_token: token,
        organization_id: srv.organizationId,
        project_id: project,
        api_url: srv.apiUrl,
        identity_url: srv.identityUrl,
        ...extra,
      }),
      c,
    );
  async function seed(name: string, values: string[], proj = project): Promise<{ id: string; revisions: string[] }> {
    const made = await admin.call<Seeded>("create", srv.organizationId, name, values[0], "seeded", [proj]);
    const revisions = [made.revisionDate];
    for (const v of values.slice(1)) revisions.push((await admin.call<Seeded>("update", srv.organizationId, made.id, name, v, "seeded", [proj])).revisionDate);
    return { id: made.id, revisions };
  }

  before(async () => {
    srv = await startBitwardenSmServer();
    project = srv.addProject("app");
    other = srv.addProject("other");
    token = srv.newAccessToken();
    adminToken = srv.newAccessToken();
    secretsUsed.push(token.split(":")[0].split(".")[2], token.split(":")[1], adminToken.split(":")[0].split(".")[2]);
    admin = new AdminSdk(srv.apiUrl, srv.identityUrl);
    await admin.call("login", adminToken);
  });
  after(async () => {
    assertClean(srv.storedRaw(), "the server's stored records");
    await admin?.stop();
    await srv?.stop();
  });

  describe("contract (keys are names, looked up in the project)", () => {
    let store: BitwardenSmStore;
    storeContract("bitwarden-sm", async () => {
      store = makeStore();
      return {
        store,
        seed: async (key, values) => (await seed(key, values)).revisions,
        missingVersion: "2001-01-01T00:00:00.000Z",
      };
    });
  });

  describe("keys: ids and names", () => {
    it("reads by id (no organization_id needed), and by name; the version id is the revision date", async () => {
      const v = val("id");
      const s = await seed("BY_ID", [v]);
      const store = makeStore({ organization_id: undefined, project_id: undefined });
      try {
        const got = await store.get({ key: s.id });
        assert.equal(got.value.reveal(), v);
        assert.equal(got.versionId, s.revisions[0]);
        assert.equal((await store.get({ key: s.id.toUpperCase() })).value.reveal(), v);
        assert.equal((await store.get({ key: s.id, version: s.revisions[0] })).value.reveal(), v);
        await assert.rejects(store.get({ key: s.id, version: "2020-01-01T00:00:00.000Z" }), NotFoundError);
        await assert.rejects(store.get({ key: "BY_ID" }), (e: unknown) => {
          assert.ok(e instanceof DsopsError && !(e instanceof StoreError), String(e));
          assert.match((e as Error).message, /store "bws": read of secret "BY_ID": looking a secret up by name \(or creating one\) needs organization_id/);
          return true;
        });
        await assert.rejects(store.get({ key: "8e9c6a4e-0000-4000-8000-000000000000" }), (e: unknown) => e instanceof NotFoundError && /secret "8e9c6a4e-0000-4000-8000-000000000000" not found/.test((e as Error).message));
      } finally {
        await store.close();
      }
    });

    it("a name several secrets have is an error listing their ids; project_id narrows the lookup to one project", async () => {
      const [a, b] = [val("amb-a"), val("amb-b")];
      const sa = await seed("SHARED_NAME", [a], project);
      const sb = await seed("SHARED_NAME", [b], other);
      const wide = makeStore({ project_id: undefined });
      try {
        await assert.rejects(wide.get({ key: "SHARED_NAME" }), (e: unknown) => {
          assert.ok(e instanceof DsopsError && !(e instanceof NotFoundError) && !(e instanceof StoreError), String(e));
          assert.match((e as Error).message, /secret name "SHARED_NAME" is ambiguous: 2 secrets in organisation [0-9a-f-]+ have it \(ids /);
          assert.ok((e as Error).message.includes(sa.id) && (e as Error).message.includes(sb.id), (e as Error).message);
          assert.match(String((e as DsopsError).hint), /use the secret's id as the key, or set project_id/);
          assertClean(errorText(e), "the ambiguity error");
          return true;
        });
        assert.equal((await wide.get({ key: sb.id })).value.reveal(), b);
      } finally {
        await wide.close();
      }
      const narrow = makeStore();
      const inOther = makeStore({ project_id: other });
      try {
        assert.equal((await narrow.get({ key: "SHARED_NAME" })).value.reveal(), a);
        assert.equal((await inOther.get({ key: "SHARED_NAME" })).value.reveal(), b);
        const only = await seed("ONLY_IN_OTHER", [val("o")], other);
        await assert.rejects(narrow.get({ key: "ONLY_IN_OTHER" }), (e: unknown) => e instanceof NotFoundError && /no secret named "ONLY_IN_OTHER" in organisation [0-9a-f-]+, project /.test((e as Error).message));
        assert.ok((await narrow.get({ key: only.id })).value.reveal().startsWith("bws-o-"), "an id is read whatever its project");
      } finally {
        await narrow.close();
        await inOther.close();
      }
    });

    it("getMany: names with one list, ids with getByIds; a missing id in the batch is its own NotFoundError", async () => {
      const [x, y, z] = [val("gx"), val("gy"), val("gz")];
      const sx = await seed("MANY_X", [x]);
      const sy = await seed("MANY_Y", [y]);
      await seed("MANY_Z", [z]);
      const store = makeStore();
      try {
        srv.requests.length = 0;
        const missing = "8e9c6a4e-1111-4000-8000-000000000000";
        const r = await store.getMany([{ key: sx.id }, { key: "MANY_Z" }, { key: missing }, { key: sy.id }, { key: "MANY_NONE" }]);
        assert.equal((r[0] as { value: Secret }).value.reveal(), x);
        assert.equal((r[1] as { value: Secret }).value.reveal(), z);
        assert.ok(r[2] instanceof NotFoundError && r[2].message.includes(missing), String(r[2]));
        assert.equal((r[3] as { value: Secret }).value.reveal(), y);
        assert.ok(r[4] instanceof NotFoundError && /no secret named "MANY_NONE"/.test(r[4].message), String(r[4]));
        const lists = srv.requests.filter((q) => /\/organizations\/.*\/secrets$/.test(q.path));
        assert.equal(lists.length, 1, JSON.stringify(srv.requests));
        // The batch with the missing id is refused (404, as Bitwarden does); its ids are then read one by one.
        assert.ok(srv.requests.some((q) => q.path === "/api/secrets/get-by-ids"));
      } finally {
        await store.close();
      }
    });
  });

  describe("writes", () => {
    it("put updates by id or name (key, note and project kept), creates a new name in project_id; the server holds only ciphertext", async () => {
      const store = makeStore();
      try {
        const s = await seed("WRITE_ME", [val("w0")]);
        const v1 = val("w1");
        const byId = await store.put(s.id, new Secret(v1));
        assert.notEqual(byId.versionId, s.revisions[0]);
        const after = await admin.call<Seeded>("get", s.id);
        assert.deepEqual([after.key, after.note, after.projectId, after.value], ["WRITE_ME", "seeded", project, v1]);
        const v2 = val("w2");
        await store.put("WRITE_ME", new Secret(v2));
        assert.equal(srv.storedValue(s.id), v2);
        const v3 = val("w3");
        const made = await store.put("NEW_NAME", new Secret(v3));
        const got = await store.get({ key: "NEW_NAME" });
        assert.equal(got.value.reveal(), v3);
        assert.equal(got.versionId, made.versionId);
        const noProject = makeStore({ project_id: undefined });
        await assert.rejects(noProject.put("ANOTHER_NEW", new Secret(val("w4"))), (e: unknown) => e instanceof DsopsError && /creating one needs project_id/.test((e as Error).message));
        await noProject.close();
        await assert.rejects(store.put("8e9c6a4e-2222-4000-8000-000000000000", new Secret(val("w5"))), NotFoundError);
      } finally {
        await store.close();
      }
    });
  });

  describe("faults", () => {
    it("a wrong access token: an AuthError with a hint, no secret in it", async () => {
      const wrong = token.replace(/^(0\.[^.]+\.)[^:]+/, "$1WrongSecretWrongSecretWrongSe");
      const store = makeStore({ access_token: wrong });
      try {
        await assert.rejects(store.get({ key: "ANY" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /store "bws": read of secret "ANY": login: the access token was refused \(HTTP 400 invalid_client\)/);
          assert.match(String((e as AuthError).hint), /BWS_ACCESS_TOKEN/);
          assertClean(errorText(e), "the auth error");
          assert.ok(!errorText(e).includes("WrongSecret"), "the error carries the token");
          return true;
        });
      } finally {
        await store.close();
      }
      const garbled = makeStore({ access_token: "not-a-token" });
      await assert.rejects(garbled.get({ key: "ANY" }), (e: unknown) => e instanceof AuthError && /the access token is malformed/.test((e as Error).message) && /0\.<id>\.<secret>:<key>/.test(String((e as AuthError).hint)));
      await garbled.close();
      const none = makeStore({ access_token: undefined });
      await assert.rejects(none.get({ key: "ANY" }), (e: unknown) => e instanceof AuthError && /no access token: set BWS_ACCESS_TOKEN/.test((e as Error).message));
      await none.close();
      const fromEnv = makeStore({ access_token: undefined }, { ...ctx, env: { BWS_ACCESS_TOKEN: token } });
      const s = await seed("FROM_ENV", [val("env")]);
      assert.ok((await fromEnv.get({ key: s.id })).value.reveal().startsWith("bws-env-"));
      await fromEnv.close();
    });

    it("an expired bearer token (401) logs in again once, transparently", async () => {
      const store = makeStore();
      try {
        const s = await seed("RELOGIN", [val("re")]);
        await store.get({ key: s.id });
        srv.revokeBearerTokens();
        srv.requests.length = 0;
        assert.ok((await store.get({ key: s.id })).value.reveal().startsWith("bws-re-"));
        assert.equal(srv.requests.filter((q) => q.path === "/identity/connect/token").length, 1);
      } finally {
        await admin.call("login", adminToken);
        await store.close();
      }
    });

    it("429 and 503: retryable StoreErrors; 404: NotFoundError", async () => {
      const store = makeStore();
      try {
        const s = await seed("THROTTLED", [val("t")]);
        await store.get({ key: s.id });
        srv.fault({ kind: "status", status: 429, count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => e instanceof StoreError && e.retryable && /read of secret "[0-9a-f-]+": throttled \(HTTP 429\)/.test((e as Error).message));
        srv.fault({ kind: "status", status: 503, count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => e instanceof StoreError && e.retryable && /HTTP 503/.test((e as Error).message));
        srv.fault({ kind: "status", status: 403, count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => e instanceof AuthError && /not allowed \(HTTP 403\)/.test((e as Error).message) && /give the machine account access/.test(String((e as AuthError).hint)));
        srv.fault({ kind: "status", status: 404, count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => e instanceof NotFoundError && (e as Error).message.includes(s.id));
        srv.fault({ kind: "status", status: 500, count: 1, on: "identity" });
        const fresh = makeStore();
        await assert.rejects(fresh.get({ key: s.id }), (e: unknown) => e instanceof StoreError && e.retryable && /login: HTTP 500/.test((e as Error).message));
        assert.ok((await fresh.get({ key: s.id })).value.reveal().startsWith("bws-t-"), "a failed login is tried again on the next call");
        await fresh.close();
      } finally {
        srv.fault(undefined);
        await store.close();
      }
    });

    it("a hang: a TimeoutError after timeout_ms; the hung SDK call is abandoned in the SDK thread and the next call works", async () => {
      const store = makeStore({ timeout_ms: 500 });
      try {
        const s = await seed("HANG", [val("h")]);
        srv.fault({ kind: "hang", count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => {
          assert.ok(e instanceof TimeoutError, String(e));
          assert.match((e as Error).message, /store "bws": read of secret "[0-9a-f-]+": no answer from http:\/\/127\.0\.0\.1:\d+\/api within 500 ms \(timeout_ms\)/);
          return true;
        });
        assert.ok((await store.get({ key: s.id })).value.reveal().startsWith("bws-h-"));
        srv.fault({ kind: "hang", count: 1, on: "identity" });
        const fresh = makeStore({ timeout_ms: 500 });
        await assert.rejects(fresh.get({ key: s.id }), (e: unknown) => e instanceof TimeoutError && /login: no answer from http:\/\/127\.0\.0\.1:\d+\/identity within 500 ms/.test((e as Error).message));
        await fresh.close();
      } finally {
        srv.fault(undefined);
        await store.close();
      }
    });

    it("an answer that is not JSON: a StoreError (not retryable, not NotFound), no body in it", async () => {
      const store = makeStore();
      try {
        const s = await seed("MALFORMED", [val("m")]);
        await store.get({ key: s.id });
        srv.fault({ kind: "malformed", count: 1 });
        await assert.rejects(store.get({ key: s.id }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !e.retryable && !(e instanceof NotFoundError), String(e));
          assert.match((e as Error).message, /read of secret "[0-9a-f-]+": malformed answer from the server/);
          return true;
        });
        srv.fault({ kind: "malformed", count: 1, on: "identity" });
        const fresh = makeStore();
        await assert.rejects(fresh.get({ key: s.id }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !e.retryable, String(e));
          assert.match((e as Error).message, /login: malformed answer from the server \(HTTP 200, not the JSON expected\)/);
          return true;
        });
        await fresh.close();
      } finally {
        srv.fault(undefined);
        await store.close();
      }
    });

    it("a server that is down (connection refused): a retryable StoreError naming the address", async () => {
      const down = await startBitwardenSmServer();
      const [api, identity] = [down.apiUrl, down.identityUrl];
      await down.stop();
      const store = makeStore({ api_url: api, identity_url: identity });
      await assert.rejects(store.get({ key: "8e9c6a4e-3333-4000-8000-000000000000" }), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.retryable && !(e instanceof TimeoutError), String(e));
        assert.ok((e as Error).message.includes(`login: cannot reach ${identity}`), (e as Error).message);
        return true;
      });
      await store.close();
    });

    it("bad settings are refused: ids that are not UUIDs, a URL that is not http(s)", () => {
      assert.throws(() => storeSettingsSchemas["bitwarden-sm"].parse({ type: "bitwarden-sm", organization_id: "acme" }), /not a UUID/);
      assert.throws(() => makeStore({ api_url: "ftp://x" }), /api_url "ftp:\/\/x" is not an http\(s\) URL/);
    });

    it("state_file: a second store logs in from the SDK's saved state, without the identity server", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-bws-state-"));
      try {
        const s = await seed("STATEFUL", [val("st")]);
        const first = makeStore({ state_file: "bws.state" }, { ...ctx, configDir: dir });
        await first.get({ key: s.id });
        await first.close();
        assert.ok(existsSync(join(dir, "bws.state")));
        assertClean(readFileSync(join(dir, "bws.state"), "utf8"), "the state file");
        srv.requests.length = 0;
        const second = makeStore({ state_file: join(dir, "bws.state") });
        assert.ok((await second.get({ key: s.id })).value.reveal().startsWith("bws-st-"));
        await second.close();
        assert.equal(srv.requests.filter((q) => q.path === "/identity/connect/token").length, 0, JSON.stringify(srv.requests));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("through the CLI", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "dsops-bws-cli-"));
      writeFileSync(
        join(dir, "dsops.yaml"),
        `version: 1
secretStores:
  bws:
    type: bitwarden-sm
    access_token: "\${BWS_ACCESS_TOKEN}"
    organization_id: "${srv.organizationId}"
    project_id: "${project}"
    api_url: "${srv.apiUrl}"
    identity_url: "${srv.identityUrl}"
    timeout_ms: 2000
    retries: 0
envs:
  app:
    DB_PASSWORD: { from: "store://bws/CLI_DB_PASSWORD" }
    API_KEY: { from: "bws:CLI_API_KEY" }
    GONE: { from: "store://bws/CLI_NOT_THERE", optional: true }
`,
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("render, get, secrets set, doctor and login with BWS_ACCESS_TOKEN; no value in the output", async () => {
      const [pw, key] = [val("cli-pw"), val("cli-key")];
      await seed("CLI_DB_PASSWORD", [pw]);
      const k = await seed("CLI_API_KEY", [JSON.stringify({ key })]);
      const env = { BWS_ACCESS_TOKEN: token };
      const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual((JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: unknown }).variables, { DB_PASSWORD: pw, API_KEY: JSON.stringify({ key }) });
      assert.match(r.stderr, /GONE: optional, left out: .*no secret named "CLI_NOT_THERE"/);
      const g = await dsopsRun(["get", "--env", "app", "--var", "DB_PASSWORD"], { cwd: dir, env });
      assert.equal(g.status, 0, g.stderr);
      assert.equal(g.stdout.trim(), pw);
      writeFileSync(join(dir, "dsops.yaml"), `${readFileSync(join(dir, "dsops.yaml"), "utf8")}  by-id:\n    KEY: { from: "store://bws/${k.id}#.key" }\n`);
      const byId = await dsopsRun(["get", "--env", "by-id", "--var", "KEY"], { cwd: dir, env });
      assert.equal(byId.status, 0, byId.stderr);
      assert.equal(byId.stdout.trim(), key);
      const nv = val("cli-set");
      const set = await dsopsRun(["secrets", "set", "--store", "bws", "--key", "CLI_DB_PASSWORD"], { cwd: dir, env, input: nv });
      assert.equal(set.status, 0, set.stderr);
      assert.equal((await dsopsRun(["get", "--env", "app", "--var", "DB_PASSWORD"], { cwd: dir, env })).stdout.trim(), nv);
      const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env });
      assert.equal(doc.status, 0, doc.stderr + doc.stdout);
      assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
      const login = await dsopsRun(["login", "bws"], { cwd: dir, env });
      assert.equal(login.status, 0, login.stderr);
      assert.match(login.stderr + login.stdout, /logs in by itself with a machine account's access token: BWS_ACCESS_TOKEN/);
      assertClean(r.stdout + r.stderr + g.stderr + byId.stderr + set.stdout + set.stderr + doc.stdout + doc.stderr + login.stdout + login.stderr, "the CLI's output");
    });

    it("a bad token exits 1 with the auth error; a hang exits 1 with the timeout (the process ends); no package: the install hint", async () => {
      const wrong = token.replace(/^(0\.[^.]+\.)[^:]+/, "$1WrongSecretWrongSecretWrongSe");
      const bad = await dsopsRun(["get", "--env", "app", "--var", "DB_PASSWORD"], { cwd: dir, env: { BWS_ACCESS_TOKEN: wrong } });
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /DB_PASSWORD \(store bws, key CLI_DB_PASSWORD\): store "bws": read of secret "CLI_DB_PASSWORD": login: the access token was refused \(HTTP 400 invalid_client\)/);
      assert.ok(!bad.stderr.includes("WrongSecret"));
      srv.fault({ kind: "hang" });
      try {
        const hung = await dsopsRun(["get", "--env", "app", "--var", "DB_PASSWORD"], { cwd: dir, env: { BWS_ACCESS_TOKEN: token } });
        assert.equal(hung.status, 1, hung.stderr);
        assert.match(hung.stderr, /DB_PASSWORD \(store bws, key CLI_DB_PASSWORD\): store "bws".*no answer .*within 2000 ms \(timeout_ms\)/);
      } finally {
        srv.fault(undefined);
      }
      const noPkg = await dsopsRun(["get", "--env", "app", "--var", "DB_PASSWORD"], { cwd: dir, env: { BWS_ACCESS_TOKEN: token, NODE_PATH: "" } });
      assert.equal(noPkg.status, 1, noPkg.stderr);
      assert.match(noPkg.stderr, /bitwarden-sm store "bws": needs the optional package @bitwarden\/sdk-napi \(npm install @bitwarden\/sdk-napi\)/);
      assertClean(bad.stdout + bad.stderr + noPkg.stdout + noPkg.stderr, "the CLI's output");
    });
  });
});
