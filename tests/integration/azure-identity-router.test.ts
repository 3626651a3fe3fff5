// Local HTTPS server speaking the real Azure Key Vault REST API and the Microsoft Entra token endpoints (tests/support/azure-keyvault-server.ts) to the real @azure/keyvault-secrets + @azure/identity clients, in process and through the dsops CLI: no Key Vault emulator can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { Clock } from "../../provider/core/clock";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AzureStore } from "../../provider/stores/azure";
import { AzureIdentityStore } from "../../provider/stores/azure-identity";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { startAzureKeyVaultServer, type AzureKeyVaultServer } from "../support/azure-keyvault-server";
import { dsopsRun } from "../support/cli";
import { stagingContract } from "../support/staging-contract";
import { storeContract } from "../support/store-contract";

const CLIENT_ID = "dsops-router-app";
const CLIENT_SECRET = `cs-${randomBytes(12).toString("hex")}`;

describe("azure.identity and the azure router", function () {
  this.timeout(60000);
  let srv: AzureKeyVaultServer;
  let restoreCa: string[];
  const creds = () => ({
    tenant_id: srv.tenantId,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    authority_host: srv.url,
    disable_instance_discovery: true,
  });
  const unique = (p: string) => `${p}-${randomBytes(4).toString("hex")}`;
  const router = (extra: Record<string, unknown> = {}) =>
    new AzureStore(
      "azure",
      storeSettingsSchemas.azure.parse({
        type: "azure",
        ...creds(),
        keyvault: { vault_url: srv.url + "/", disable_challenge_resource_verification: true },
        identity: { scope: "https://graph.microsoft.com/.default" },
        ...extra,
      }),
      { configDir: process.cwd(), clock: systemClock, env: {} },
    );

  before(async () => {
    srv = await startAzureKeyVaultServer();
    srv.addClient({ clientId: CLIENT_ID, secret: CLIENT_SECRET });
    restoreCa = tls.getCACertificates("default");
    tls.setDefaultCACertificates([...restoreCa, srv.caPem]);
  });
  after(async () => {
    if (restoreCa) tls.setDefaultCACertificates(restoreCa);
    await srv?.stop();
  });

  describe("azure.identity", () => {
    const identity = (clock: Clock = systemClock, extra: Record<string, unknown> = {}) =>
      new AzureIdentityStore("tok", storeSettingsSchemas["azure.identity"].parse({ type: "azure.identity", ...creds(), ...extra }), { configDir: process.cwd(), clock, env: {} });

    it("gives the access token of a scope (the server accepts it as a vault bearer token)", async () => {
      const s = identity();
      const t = await s.get({ key: "https://vault.azure.net/.default:access_token" });
      assert.match(t.value.reveal(), /^kvtok-/);
      const same = await s.get({ key: "https://vault.azure.net/.default" });
      assert.equal(same.value.reveal(), t.value.reveal(), "the credential caches the token");
      // The token opens the vault: a real REST call with it.
      srv.seed("probe", "probe-value");
      const res = await fetch(`${srv.url}/secrets/probe?api-version=2026-04-01`, { headers: { authorization: `Bearer ${t.value.reveal()}` } });
      assert.equal(res.status, 200);
    });

    it("expires_at, expires_in (by the engine's clock), token_info; the store's scope is the default", async () => {
      const s = identity(systemClock, { scope: "https://storage.azure.com/.default" });
      const at = (await s.get({ key: "expires_at" })).value.reveal();
      assert.ok(!Number.isNaN(Date.parse(at)));
      const clock: Clock = { now: () => Date.parse(at) - 120_000, sleep: systemClock.sleep };
      const s2 = identity(clock, { scope: "https://storage.azure.com/.default" });
      const inS = Number((await s2.get({ key: "expires_in" })).value.reveal());
      assert.ok(inS >= 119 && inS <= 120, String(inS));
      const info = JSON.parse((await s.get({ key: "token_info" })).value.reveal()) as Record<string, unknown>;
      assert.equal(info.scope, "https://storage.azure.com/.default");
      assert.equal(info.token_type, "Bearer");
      assert.match(String(info.access_token), /^kvtok-/);
    });

    it("a key that is neither a field nor a scope is refused, naming it", async () => {
      await assert.rejects(identity().get({ key: "nonsense" }), (e: Error) => e instanceof DsopsError && /"nonsense" is neither a token field/.test(e.message));
    });

    it("a refused client secret is an AuthError naming store and scope, without the secret", async () => {
      const wrong = `bad-${randomBytes(10).toString("hex")}`;
      const e = (await identity(systemClock, { client_secret: wrong }).get({ key: "access_token" }).catch((x: Error) => x)) as AuthError;
      assert.ok(e instanceof AuthError, String(e));
      assert.match(e.message, /store "tok": signing in to Azure with client secret failed \(token request of scope "https:\/\/management\.azure\.com\/\.default"\)/);
      assert.ok(!`${e.message}${e.stack}${e.hint}`.includes(wrong));
    });
  });

  describe("router", () => {
    storeContract("azure (router, Key Vault keys)", async () => ({
      store: router(),
      seed: async (key: string, values: string[]) => values.map((v) => srv.seed(key, v)),
      missingVersion: "0123456789abcdef0123456789abcdef",
    }));

    stagingContract("azure (router, kv: prefix)", async () => ({ store: router(), key: (n: string) => `kv:${n}`, missingVersion: "0123456789abcdef0123456789abcdef" }));

    it("routes by dsops's prefixes and patterns", () => {
      const r = router();
      const cases: Array<[string, string, string]> = [
        ["kv:db", "keyvault", "db"],
        ["keyvault:db/abc", "keyvault", "db/abc"],
        ["vault:db", "keyvault", "db"],
        ["secrets:db", "keyvault", "db"],
        ["identity:https://management.azure.com/.default:access_token", "identity", "https://management.azure.com/.default:access_token"],
        ["auth:access_token", "identity", "access_token"],
        ["token:expires_at", "identity", "expires_at"],
        ["managed:access_token", "identity", "access_token"],
        ["access_token", "identity", "access_token"],
        ["https://graph.microsoft.com/.default", "identity", "https://graph.microsoft.com/.default"],
        ["https://graph.microsoft.com/.default:expires_in", "identity", "https://graph.microsoft.com/.default:expires_in"],
        ["my-simple-secret", "keyvault", "my-simple-secret"],
        ["api-key/v2", "keyvault", "api-key/v2"],
      ];
      for (const [key, service, rest] of cases) assert.deepEqual(r.route(key), { service, key: rest }, key);
      assert.deepEqual(router({ default_service: "identity" }).route("whatever"), { service: "identity", key: "whatever" });
    });

    it("one credential for both services: a vault secret and a token", async () => {
      const r = router();
      const name = unique("both");
      srv.seed(name, '{"host":"h"}');
      assert.equal((await r.get({ key: `keyvault:${name}` })).value.reveal(), '{"host":"h"}');
      assert.equal((await r.get({ key: name })).value.reveal(), '{"host":"h"}');
      assert.match((await r.get({ key: "identity:access_token" })).value.reveal(), /^kvtok-/);
      await assert.rejects(r.put("identity:access_token", new Secret("x")), /tokens \(identity\) cannot be written/);
    });

    it("a Key Vault key without keyvault settings says what to add", async () => {
      const r = new AzureStore("azure", storeSettingsSchemas.azure.parse({ type: "azure", ...creds() }), { configDir: process.cwd(), clock: systemClock, env: {} });
      await assert.rejects(r.get({ key: "db" }), (e: DsopsError) => /has no keyvault settings/.test(e.message) && /vault_url/.test(e.hint ?? ""));
      assert.match((await r.get({ key: "access_token" })).value.reveal(), /^kvtok-/);
    });
  });

  describe("through the CLI (NODE_EXTRA_CA_CERTS trusts the test CA)", () => {
    let dir: string;
    const env = () => ({ NODE_EXTRA_CA_CERTS: srv.caFile, AZ_SECRET: CLIENT_SECRET });
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "dsops-azure-cli-"));
      const c = creds();
      const credYaml = `tenant_id: "${c.tenant_id}"\n    client_id: ${c.client_id}\n    client_secret: "\${AZ_SECRET}"\n    authority_host: ${c.authority_host}\n    disable_instance_discovery: true`;
      writeFileSync(
        join(dir, "dsops.yaml"),
        `version: 1
secretStores:
  kv:
    type: azure.keyvault
    vault_url: ${srv.url}/
    disable_challenge_resource_verification: true
    ${credYaml}
  azure:
    type: azure
    ${credYaml}
    keyvault:
      vault_url: ${srv.url}/
      disable_challenge_resource_verification: true
  tok:
    type: azure.identity
    scope: https://vault.azure.net/.default
    ${credYaml}
envs:
  dev:
    DB_HOST:
      from: "azure:kv:cli-db#.db.host"
    DB_PLAIN:
      from: "kv:cli-db"
    OLD:
      from: "store://kv/cli-db/OLDVERSION#.db.host"
    TOKEN_EXPIRY:
      from: "tok:expires_at"
    MISSING:
      from: "azure:keyvault:not-there"
      optional: true
`,
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("secrets set writes a version; get reads shorthand azure:kv:…#field, a version, and a token field; doctor passes", async () => {
      const v1 = srv.seed("cli-db", JSON.stringify({ db: { host: "old-host" } }));
      const yaml = join(dir, "dsops.yaml");
      const { readFileSync } = await import("node:fs");
      writeFileSync(yaml, readFileSync(yaml, "utf8").replace("OLDVERSION", v1));
      const value = JSON.stringify({ db: { host: "new-host", password: `pw-${randomBytes(8).toString("hex")}` } });
      const set = await dsopsRun(["secrets", "set", "--store", "azure", "--key", "kv:cli-db"], { cwd: dir, input: value, env: env() });
      assert.equal(set.status, 0, set.stderr);
      assert.equal(srv.versionsOf("cli-db").length, 2, "a second version on the server");
      const host = await dsopsRun(["get", "--env", "dev", "--var", "DB_HOST"], { cwd: dir, env: env() });
      assert.equal(host.status, 0, host.stderr);
      assert.equal(host.stdout.trim(), "new-host");
      const old = await dsopsRun(["get", "--env", "dev", "--var", "OLD"], { cwd: dir, env: env() });
      assert.equal(old.status, 0, old.stderr);
      assert.equal(old.stdout.trim(), "old-host");
      const exp = await dsopsRun(["get", "--env", "dev", "--var", "TOKEN_EXPIRY"], { cwd: dir, env: env() });
      assert.equal(exp.status, 0, exp.stderr);
      assert.ok(!Number.isNaN(Date.parse(exp.stdout.trim())), exp.stdout);
      const doctor = await dsopsRun(["doctor", "--json"], { cwd: dir, env: env() });
      assert.equal(doctor.status, 0, doctor.stdout + doctor.stderr);
      const report = JSON.parse(doctor.stdout) as { stores: Array<{ store: string; status: string; auth?: string }> };
      for (const name of ["kv", "azure", "tok"]) {
        const row = report.stores.find((s) => s.store === name);
        assert.equal(row?.status, "ok", JSON.stringify(row));
        assert.equal(row?.auth, "client secret");
      }
      for (const r of [set, host, old, exp, doctor]) assert.ok(!`${r.stdout}${r.stderr}`.includes(CLIENT_SECRET), "output carried the client secret");
    });

    it("a wrong client secret: doctor and get exit 1 naming the store, never the secret", async () => {
      const wrong = `wrong-${randomBytes(8).toString("hex")}`;
      const doctor = await dsopsRun(["doctor", "--store", "kv"], { cwd: dir, env: { ...env(), AZ_SECRET: wrong } });
      assert.equal(doctor.status, 1, doctor.stdout + doctor.stderr);
      assert.match(doctor.stdout + doctor.stderr, /kv .*failed.*signing in to Azure with client secret failed/s);
      const get = await dsopsRun(["get", "--env", "dev", "--var", "DB_PLAIN"], { cwd: dir, env: { ...env(), AZ_SECRET: wrong } });
      assert.equal(get.status, 1, get.stderr);
      assert.match(get.stderr, /DB_PLAIN \(store kv, key cli-db\)/);
      for (const r of [doctor, get]) assert.ok(!`${r.stdout}${r.stderr}`.includes(wrong), "output carried the wrong secret");
    });

    it("retries a throttled vault (429, Retry-After), leaves out an optional missing secret, and times out a hanging vault (exit 1, naming store and key)", async () => {
      const own = mkdtempSync(join(tmpdir(), "dsops-azure-faults-"));
      try {
        const c = creds();
        const value = `retry-${randomBytes(8).toString("hex")}`;
        srv.seed("cli-retry", value);
        writeFileSync(
          join(own, "dsops.yaml"),
          `version: 1
secretStores:
  kv:
    type: azure.keyvault
    vault_url: ${srv.url}/
    disable_challenge_resource_verification: true
    timeout_ms: 1500
    retries: 2
    tenant_id: "${c.tenant_id}"
    client_id: ${c.client_id}
    client_secret: "\${AZ_SECRET}"
    authority_host: ${c.authority_host}
    disable_instance_discovery: true
envs:
  dev:
    V:
      from: "kv:cli-retry"
    GONE:
      from: "kv:never-written"
      optional: true
`,
        );
        const kvBefore = srv.counts.kv ?? 0;
        srv.setFault({ kind: "status", status: 429, retryAfter: 1 }, 2);
        const got = await dsopsRun(["get", "--env", "dev", "--var", "V"], { cwd: own, env: env() });
        assert.equal(got.status, 0, got.stderr);
        assert.equal(got.stdout.trim(), value);
        assert.ok((srv.counts.kv ?? 0) >= kvBefore + 3, "two throttled answers, then the read");

        const probe = "console.log(JSON.stringify({V: process.env.V === " + JSON.stringify(value) + ", GONE: process.env.GONE === undefined}))";
        const ex = await dsopsRun(["exec", "--env", "dev", "--", process.execPath, "-e", probe], { cwd: own, env: env() });
        assert.equal(ex.status, 0, ex.stderr);
        assert.deepEqual(JSON.parse(ex.stdout), { V: true, GONE: true });
        assert.match(ex.stderr, /GONE/);

        srv.setFault({ kind: "hang" });
        const hung = await dsopsRun(["get", "--env", "dev", "--var", "V"], { cwd: own, env: env() });
        srv.setFault(undefined);
        assert.equal(hung.status, 1, hung.stderr);
        assert.match(hung.stderr, /V \(store kv, key cli-retry\).*no answer within 1500 ms/s);
        for (const r of [got, hung]) assert.ok(!r.stderr.includes(value) && !r.stderr.includes(CLIENT_SECRET));
      } finally {
        srv.setFault(undefined);
        rmSync(own, { recursive: true, force: true });
      }
    });

    it("login: a store that signs in by itself needs nothing; DefaultAzureCredential points at az login", async () => {
      const r = await dsopsRun(["login", "kv"], { cwd: dir, env: env() });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /signs in by itself with its client secret/);
      const list = await dsopsRun(["login", "azure", "--non-interactive"], { cwd: mkdtempSync(join(tmpdir(), "dsops-azure-login-")), env: { PATH: "/nonexistent" } });
      assert.match(list.stderr, /az login/);
    });
  });
});
