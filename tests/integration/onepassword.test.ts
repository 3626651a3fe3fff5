// Local server speaking the 1Password Connect REST API (tests/support/op-connect-server.ts) to the real official client @1password/connect: no Connect server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../../provider/core/clock";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { storeEncryption } from "../../provider/guard/policy";
import { OnePasswordStore, totp } from "../../provider/stores/onepassword";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { startOpConnectServer, type OpConnectServer } from "../support/op-connect-server";
import { freePort } from "../support/server";
import { storeContract } from "../support/store-contract";

const TOKEN = `eyJhbGciOiJFUzI1NiJ9.${randomBytes(24).toString("hex")}`;
const VAULT = "Dev";

describe("onepassword store (Connect)", function () {
  this.timeout(60000);
  let srv: OpConnectServer;
  let vaultId: string;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  const tokens = [TOKEN];
  const values: string[] = [];
  const val = (tag: string) => {
    const v = `opv-${tag}-${randomBytes(8).toString("hex")}`;
    values.push(v);
    return v;
  };
  const makeStore = (extra: Record<string, unknown> = {}, c: StoreContext = ctx, name = "op") =>
    new OnePasswordStore(name, storeSettingsSchemas.onepassword.parse({ type: "onepassword", connect_host: srv.url, connect_token: TOKEN, ...extra }), c);
  const assertClean = (text: string, what: string) => {
    for (const t of tokens) assert.ok(!text.includes(t), `${what} holds a token:\n${text}`);
    for (const v of values) assert.ok(!text.includes(v), `${what} holds a value:\n${text}`);
  };
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
  /** Write through the wire as another Connect client would: POST the item, then PUT each later value. */
  async function seedItem(title: string, fieldLabel: string, valuesInOrder: string[]): Promise<string[]> {
    const h = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const created = await fetch(`${srv.url}/v1/vaults/${vaultId}/items`, {
      method: "POST",
      headers: h,
      body: JSON.stringify({ title, category: "PASSWORD", fields: [{ label: fieldLabel, type: "CONCEALED", value: valuesInOrder[0] }] }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    let item = (await created.json()) as { id: string; version: number; fields: Array<{ value: string }> };
    const ids = [String(item.version)];
    for (const v of valuesInOrder.slice(1)) {
      item.fields[0].value = v;
      const r = await fetch(`${srv.url}/v1/vaults/${vaultId}/items/${item.id}`, { method: "PUT", headers: h, body: JSON.stringify(item) });
      assert.equal(r.status, 200);
      item = (await r.json()) as typeof item;
      ids.push(String(item.version));
    }
    return ids;
  }

  before(async () => {
    srv = await startOpConnectServer({ tokens });
    vaultId = srv.addVault(VAULT);
  });
  after(async () => {
    await srv?.stop();
  });
  afterEach(() => srv.fault(undefined));

  storeContract("onepassword (Connect)", async () => ({
    store: makeStore(),
    key: (name) => `op://${VAULT}/${name}/password`,
    seed: (key, vs) => seedItem(key.split("/")[3], "password", vs),
    seedBinary: async (key, bytes) => {
      const item = srv.addItem(vaultId, { title: key.split("/")[3], category: "DOCUMENT" });
      srv.addFile(vaultId, item.id, "password", bytes);
    },
    missingVersion: "999999",
  }));

  describe("references", () => {
    let itemId: string;
    let fieldIds: Record<string, string>;
    const v = { user: "", pw: "", host: "", port: "", apiKey: "" };
    before(() => {
      v.user = val("user");
      v.pw = val("pw");
      v.host = val("host");
      v.port = val("port");
      v.apiKey = val("apikey");
      const item = srv.addItem(vaultId, {
        title: "Database",
        category: "LOGIN",
        sections: [{ id: "conn", label: "Connection" }, { id: "other", label: "Other" }],
        fields: [
          { label: "username", type: "STRING", purpose: "USERNAME", value: v.user },
          { label: "password", type: "CONCEALED", purpose: "PASSWORD", value: v.pw },
          { label: "host", type: "STRING", value: v.host, section: { id: "conn" } },
          { label: "port", type: "STRING", value: v.port, section: { id: "conn" } },
          { label: "host", type: "STRING", value: v.apiKey, section: { id: "other" } },
          { label: "one-time password", type: "OTP", value: "otpauth://totp/db?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8" },
        ],
      });
      itemId = item.id;
      fieldIds = Object.fromEntries((item.fields ?? []).map((f) => [`${f.section?.id ?? ""}/${f.label ?? ""}`, f.id ?? ""]));
      srv.addFile(vaultId, item.id, "cert.der", Buffer.from([0x30, 0x82, 0x00, 0xff, 0x00, 0x0a]), "conn");
    });

    it("reads op://vault/item/field by label, by field id, vault and item by id, and section/field", async () => {
      const s = makeStore();
      assert.equal((await s.get({ key: "op://Dev/Database/password" })).value.reveal(), v.pw);
      assert.equal((await s.get({ key: "Dev/Database/username" })).value.reveal(), v.user);
      assert.equal((await s.get({ key: `op://${vaultId}/${itemId}/password` })).value.reveal(), v.pw);
      assert.equal((await s.get({ key: `op://Dev/Database/${fieldIds["/username"]}` })).value.reveal(), v.user);
      assert.equal((await s.get({ key: "op://Dev/Database/Connection/host" })).value.reveal(), v.host);
      assert.equal((await s.get({ key: "op://Dev/Database/Other/host" })).value.reveal(), v.apiKey);
      assert.equal((await s.get({ key: "op://Dev/Database/Connection.port" })).value.reveal(), v.port, "dsops's Section.field");
      assert.equal((await s.get({ key: "op://Dev/Database/PASSWORD" })).value.reveal(), v.pw, "a label matches case-insensitively when nothing matches exactly");
      const got = await s.get({ key: "op://Dev/Database/password" });
      assert.equal(got.versionId, "1");
    });

    it("a whole item is its fields as JSON (sections nested), so #field picks one", async () => {
      const doc = JSON.parse((await makeStore().get({ key: "Dev/Database" })).value.reveal()) as Record<string, unknown>;
      assert.equal(doc.password, v.pw);
      assert.deepEqual(doc.Connection, { host: v.host, port: v.port });
      assert.deepEqual(doc.Other, { host: v.apiKey });
    });

    it("?attribute=totp computes the one-time password of the OTP field at the clock's time (RFC 6238 vectors)", async () => {
      const at = (ms: number): StoreContext => ({ ...ctx, clock: { now: () => ms, sleep: systemClock.sleep } as Clock });
      assert.equal((await makeStore({}, at(59000)).get({ key: "op://Dev/Database/one-time password?attribute=totp" })).value.reveal(), "94287082");
      assert.equal((await makeStore({}, at(1111111109000)).get({ key: "op://Dev/Database/one-time password?attribute=otp" })).value.reveal(), "07081804");
      assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1234567890000), "005924");
      await assert.rejects(makeStore().get({ key: "op://Dev/Database/password?attribute=totp" }), (e: unknown) => {
        assert.ok(e instanceof DsopsError && !(e instanceof StoreError));
        assert.match((e as Error).message, /store "op": "op:\/\/Dev\/Database\/password\?attribute=totp": field "password" is not a one-time password field/);
        assertClean(errorText(e), "the error");
        return true;
      });
      assert.equal((await makeStore().get({ key: "op://Dev/Database/password?attribute=type" })).value.reveal(), "concealed");
    });

    it("a file of the item reads as bytes (base64, binary), in its section", async () => {
      const got = await makeStore().get({ key: "op://Dev/Database/Connection/cert.der" });
      assert.equal(got.binary, true);
      assert.deepEqual([...Buffer.from(got.value.reveal(), "base64")], [0x30, 0x82, 0x00, 0xff, 0x00, 0x0a]);
    });

    it("several fields of one item: one item fetch, one result per key in order", async () => {
      const s = makeStore();
      const before = srv.requests.length;
      const r = await s.getMany([{ key: "op://Dev/Database/username" }, { key: "op://Dev/Database/nope" }, { key: "op://Dev/Database/Connection/port" }]);
      assert.equal((r[0] as { value: Secret }).value.reveal(), v.user);
      assert.ok(r[1] instanceof NotFoundError);
      assert.match((r[1] as Error).message, /store "op": "op:\/\/Dev\/Database\/nope": item "Database" has no field or file "nope"/);
      assert.equal((r[2] as { value: Secret }).value.reveal(), v.port);
      const calls = srv.requests.slice(before);
      assert.equal(calls.filter((c) => /^GET \/v1\/vaults\/[a-z0-9]+\/items\/[a-z0-9]+$/.test(c)).length, 1, calls.join("\n"));
    });

    it("bad keys are errors naming the key", async () => {
      for (const key of ["op://Dev", "Dev//x", "op://a/b/c/d/e", "op://Dev/Database/password?attribute=bogus", "op://Dev/Database/password?foo=1"]) {
        await assert.rejects(makeStore().get({ key }), (e: unknown) => {
          assert.ok(e instanceof DsopsError, String(e));
          assert.ok((e as Error).message.includes(`store "op"`), (e as Error).message);
          return true;
        });
      }
    });

    it("a missing vault or item is NotFoundError naming the key", async () => {
      for (const key of ["op://Nowhere/Database/password", "op://Dev/Nothing/password"]) {
        await assert.rejects(makeStore().get({ key }), (e: unknown) => {
          assert.ok(e instanceof NotFoundError, String(e));
          assert.ok((e as Error).message.includes(`store "op": read of "${key}"`), (e as Error).message);
          return true;
        });
      }
    });
  });

  describe("writes", () => {
    it("updates a field in place (other fields kept), adds a missing field in a section, creates a missing item", async () => {
      const s = makeStore();
      const keep = val("keep");
      const item = srv.addItem(vaultId, { title: "Api", fields: [{ label: "username", value: keep }, { label: "credential", type: "CONCEALED", value: val("old") }] });
      const nv = val("new");
      const w = await s.put("op://Dev/Api/credential", new Secret(nv));
      assert.equal(w.versionId, "2");
      const stored = srv.vaults.get(vaultId)?.items.get(item.id);
      assert.equal(stored?.fields?.find((f) => f.label === "credential")?.value, nv);
      assert.equal(stored?.fields?.find((f) => f.label === "username")?.value, keep);
      const sv = val("sect");
      await s.put("op://Dev/Api/Extra/token", new Secret(sv));
      assert.equal((await s.get({ key: "op://Dev/Api/Extra/token" })).value.reveal(), sv);
      const cv = val("created");
      const c = await s.put("op://Dev/Brand New/api key", new Secret(cv));
      assert.equal(c.versionId, "1");
      assert.equal((await s.get({ key: "op://Dev/Brand New/api key" })).value.reveal(), cv);
      await assert.rejects(s.put("op://Dev/Api", new Secret(val("x"))), /a write names one field/);
    });
  });

  describe("attacks", () => {
    const key = "op://Dev/Database/password";
    const check = async (store: OnePasswordStore, type: new (...a: never[]) => Error, pattern: RegExp, retryable?: boolean) => {
      await assert.rejects(store.get({ key }), (e: unknown) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
        assert.match((e as Error).message, pattern);
        assert.ok((e as Error).message.includes(`store "op"`) && (e as Error).message.includes(key), (e as Error).message);
        if (retryable !== undefined) assert.equal((e as StoreError).retryable, retryable);
        assertClean(errorText(e), "the error");
        return true;
      });
    };

    it("a server that is down: retryable StoreError naming the store, key and cause", async () => {
      const port = await freePort();
      const s = new OnePasswordStore("op", storeSettingsSchemas.onepassword.parse({ type: "onepassword", connect_host: `http://127.0.0.1:${port}`, connect_token: TOKEN }), ctx);
      await check(s, StoreError, /cannot reach the Connect server http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/, true);
    });

    it("a refused token: AuthError (HTTP 401) with a hint, never the token", async () => {
      const bad = `eyJ.${randomBytes(16).toString("hex")}`;
      tokens.push(bad);
      await check(makeStore({ connect_token: bad }), AuthError, /the Connect token was refused \(HTTP 401\)/);
      await assert.rejects(makeStore({ connect_token: undefined }).get({ key }), (e: unknown) => e instanceof AuthError && /no Connect token: set connect_token/.test((e as Error).message));
    });

    it("404 of the server: NotFoundError", async () => {
      srv.fault({ kind: "status", status: 404 });
      await check(makeStore(), NotFoundError, /not found \(HTTP 404\)/);
    });

    it("429: a retryable StoreError saying throttled; 503 retryable too", async () => {
      srv.fault({ kind: "status", status: 429, retryAfter: 3 });
      await check(makeStore(), StoreError, /throttled \(HTTP 429\)/, true);
      srv.fault({ kind: "status", status: 503 });
      await check(makeStore(), StoreError, /HTTP 503/, true);
    });

    it("a server that hangs: TimeoutError after timeout_ms", async () => {
      srv.fault({ kind: "hang" });
      await check(makeStore({ timeout_ms: 300 }), TimeoutError, /no answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms \(timeout_ms\)/, true);
    });

    it("malformed answers (not JSON): StoreError, never an internal error", async () => {
      srv.fault({ kind: "malformed" });
      await check(makeStore(), StoreError, /answer is not what the API returns|could not be read|not JSON/);
      // The vault already known (cached): the item's own lookup gets the bad answer.
      srv.fault(undefined);
      srv.addItem(vaultId, { title: "Probe", fields: [{ label: "password", type: "CONCEALED", value: val("probe") }] });
      const warm = makeStore();
      await warm.get({ key: "op://Dev/Probe/password" });
      srv.fault({ kind: "malformed" });
      await assert.rejects(warm.get({ key: "op://Dev/Probe/password" }), (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.match((e as Error).message, /^store "op": read of "op:\/\/Dev\/Probe\/password": the Connect server's answer (is not what the API returns|could not be read)/);
        assertClean(errorText(e), "the error");
        return true;
      });
    });

    it("through the CLI: values out, errors exit 1 naming store and key, never 70, no token or value anywhere; doctor; login", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-op-"));
      try {
        const pw = val("cli");
        const totpSeed = srv.addItem(vaultId, {
          title: "Cli Item",
          fields: [
            { label: "password", type: "CONCEALED", value: pw },
            { label: "otp", type: "OTP", value: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" },
          ],
        });
        assert.ok(totpSeed.id);
        writeFileSync(
          join(dir, "dsops.yaml"),
          `version: 1
secretStores:
  op: { type: 1password, connect_host: "${srv.url}", connect_token: "\${OPC_TOKEN}", vault: Dev, retries: 1 }
envs:
  app:
    PW: { from: "op:op://Dev/Cli Item/password" }
    PW2: { from: "store://op/Dev/Cli%20Item#password" }
    CODE: { from: { store: op, key: "op://Dev/Cli Item/otp?attribute=totp" } }
`,
        );
        const ok = await dsopsRun(["render", "--env", "app", "--format", "json", "--out", "out.json"], { cwd: dir, env: { OPC_TOKEN: TOKEN, DSOPS_CLOCK: "1970-01-01T00:00:59Z" } });
        assert.equal(ok.status, 0, ok.stderr);
        assert.deepEqual((JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: unknown }).variables, { PW: pw, PW2: pw, CODE: "287082" });
        assertClean(ok.stdout, "render's stdout");
        srv.fault({ kind: "status", status: 429, count: 1 });
        const retried = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: dir, env: { OPC_TOKEN: TOKEN } });
        assert.equal(retried.status, 0, retried.stderr);
        assert.equal(retried.stdout.trim(), pw);
        assert.match(retried.stderr, /retry 1 .*throttled \(HTTP 429\)/);
        assertClean(retried.stderr, "get's stderr");
        assertClean(ok.stderr, "render's stderr");
        const bad = `eyJ.${randomBytes(16).toString("hex")}`;
        tokens.push(bad);
        const r = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: dir, env: { OPC_TOKEN: bad } });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /PW \(store op, key op:\/\/Dev\/Cli Item\/password\): store "op": read of "op:\/\/Dev\/Cli Item\/password": the Connect token was refused \(HTTP 401\)/);
        assertClean(r.stdout + r.stderr, "get's output");
        srv.fault({ kind: "malformed" });
        const m = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: dir, env: { OPC_TOKEN: TOKEN } });
        assert.equal(m.status, 1, m.stderr);
        srv.fault(undefined);
        const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env: { OPC_TOKEN: TOKEN } });
        assert.equal(doc.status, 0, doc.stderr);
        assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
        const docBad = await dsopsRun(["doctor"], { cwd: dir, env: { OPC_TOKEN: bad } });
        assert.equal(docBad.status, 1, docBad.stderr);
        assert.match(docBad.stdout + docBad.stderr, /op +onepassword +failed .*token was refused/);
        assertClean(doc.stdout + doc.stderr + docBad.stdout + docBad.stderr, "doctor's output");
        const login = await dsopsRun(["login", "op"], { cwd: dir, env: { OPC_TOKEN: TOKEN } });
        assert.equal(login.status, 0, login.stderr);
        assert.match(login.stderr, /uses a Connect server .*nothing to log in to/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("require_encryption: a plain-http connect_host is refused, https and the other paths pass", () => {
    assert.deepEqual(storeEncryption({ type: "onepassword", connect_host: "http://op-connect:8080" }), { ok: false, why: "its connect_host http://op-connect:8080 is plain http (not encrypted in transit)" });
    assert.deepEqual(storeEncryption({ type: "onepassword", connect_host: "https://op-connect" }), { ok: true });
    assert.deepEqual(storeEncryption({ type: "onepassword" }), { ok: true });
  });

  describe("the service-account path (@1password/sdk: it cannot be pointed at a local server, so only what it refuses without a network)", () => {
    it("a token the SDK cannot read: AuthError naming the store, never the token; no token at all: AuthError with the settings to set", async () => {
      const bad = `ops_${randomBytes(24).toString("base64url")}`;
      tokens.push(bad);
      const s = new OnePasswordStore("op", storeSettingsSchemas.onepassword.parse({ type: "onepassword", service_account_token: bad }), ctx);
      assert.equal(s.mode, "service_account");
      assert.deepEqual(s.capabilities, { write: false, versions: false, batch: 0, binary: false, staging: false });
      await assert.rejects(s.get({ key: "op://Dev/Item/password" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /^store "op": sign-in with the service account: invalid service account token/);
        assertClean(errorText(e), "the error");
        return true;
      });
      const none = new OnePasswordStore("op", storeSettingsSchemas.onepassword.parse({ type: "onepassword", mode: "service_account" }), ctx);
      await assert.rejects(none.get({ key: "op://Dev/Item/password" }), (e: unknown) => e instanceof AuthError && /no service account token: set service_account_token in its settings or OP_SERVICE_ACCOUNT_TOKEN/.test((e as Error).message));
      await assert.rejects(s.put?.("op://Dev/Item/password", new Secret("x")) ?? Promise.reject(new Error("no put")), /writes go through a Connect server only/);
    });
  });

  describe("the op CLI path (no `op` binary here: only what runs without one)", () => {
    it("op not on PATH: an error naming the store and the CLI, and login prints the op signin hint", async () => {
      const s = new OnePasswordStore("op", storeSettingsSchemas.onepassword.parse({ type: "onepassword", op_path: "/nonexistent/op" }), ctx);
      assert.equal(s.mode, "cli");
      await assert.rejects(s.get({ key: "op://Dev/Database/password" }), (e: unknown) => {
        assert.ok(e instanceof DsopsError);
        assert.match((e as Error).message, /store "op": read of "op:\/\/Dev\/Database\/password": the 1Password CLI \(\/nonexistent\/op\) is not installed or not on PATH/);
        return true;
      });
      const dir = mkdtempSync(join(tmpdir(), "dsops-op-login-"));
      try {
        writeFileSync(join(dir, "dsops.yaml"), `version: 1\nsecretStores:\n  op: { type: onepassword, account: my.1password.com }\nenvs: { dev: {} }\n`);
        const login = await dsopsRun(["login", "op"], { cwd: dir, env: { PATH: "/nonexistent", OP_CONNECT_HOST: "", OP_SERVICE_ACCOUNT_TOKEN: "" } });
        assert.match(login.stdout + login.stderr, /op signin --account my\.1password\.com/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
