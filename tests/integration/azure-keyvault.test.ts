// Local HTTPS server speaking the real Azure Key Vault REST API and the Microsoft Entra token endpoints (tests/support/azure-keyvault-server.ts) to the real @azure/keyvault-secrets + @azure/identity clients: no Key Vault emulator can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as tls from "node:tls";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AzureKeyVaultStore } from "../../provider/stores/azure-keyvault";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { startAzureKeyVaultServer, type AzureKeyVaultServer } from "../support/azure-keyvault-server";
import { storeContract } from "../support/store-contract";
import { stagingContract } from "../support/staging-contract";

const CLIENT_ID = "dsops-test-app";
const CLIENT_SECRET = `cs-${randomBytes(12).toString("hex")}`;

/** Trust the test CA in this process (the clients use Node's default CA store). */
export function trustCa(caPem: string): () => void {
  const before = tls.getCACertificates("default");
  tls.setDefaultCACertificates([...before, caPem]);
  return () => tls.setDefaultCACertificates(before);
}

describe("azure.keyvault store", function () {
  this.timeout(60000);
  let srv: AzureKeyVaultServer;
  let untrust: () => void;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  const settings = (extra: Record<string, unknown> = {}) =>
    storeSettingsSchemas["azure.keyvault"].parse({
      type: "azure.keyvault",
      vault_url: srv.url + "/",
      tenant_id: srv.tenantId,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      authority_host: srv.url,
      disable_instance_discovery: true,
      disable_challenge_resource_verification: true,
      ...extra,
    });
  const makeStore = (extra: Record<string, unknown> = {}) => new AzureKeyVaultStore("kv", settings(extra), ctx);
  const unique = (p: string) => `${p}-${randomBytes(4).toString("hex")}`;

  before(async () => {
    srv = await startAzureKeyVaultServer();
    srv.addClient({ clientId: CLIENT_ID, secret: CLIENT_SECRET });
    untrust = trustCa(srv.caPem);
  });
  after(async () => {
    untrust?.();
    await srv?.stop();
  });

  /** Seed through the vault's REST API with the real client (the store's put is under test elsewhere). */
  async function seed(key: string, values: string[]): Promise<string[]> {
    const admin = await adminClient();
    const ids: string[] = [];
    for (const v of values) ids.push((await admin.setSecret(key, v)).properties.version as string);
    return ids;
  }
  let admin: import("@azure/keyvault-secrets").SecretClient | undefined;
  async function adminClient() {
    if (!admin) {
      const { SecretClient } = await import("@azure/keyvault-secrets");
      const { ClientSecretCredential } = await import("@azure/identity");
      admin = new SecretClient(srv.url, new ClientSecretCredential(srv.tenantId, CLIENT_ID, CLIENT_SECRET, { authorityHost: srv.url, disableInstanceDiscovery: true }), {
        disableChallengeResourceVerification: true,
      });
    }
    return admin;
  }

  storeContract("azure.keyvault", async () => ({ store: makeStore(), seed, missingVersion: "0123456789abcdef0123456789abcdef" }));

  describe("Key Vault specifics", () => {
    let store: AzureKeyVaultStore;
    before(() => (store = makeStore()));

    it("reads a version as name/<version> (dsops's form), name@<version> and ?version=", async () => {
      const name = unique("ver");
      const [v1, v2] = await seed(name, ['{"db":{"host":"h1"}}', '{"db":{"host":"h2"}}']);
      assert.equal((await store.get({ key: `${name}/${v1}` })).value.reveal(), '{"db":{"host":"h1"}}');
      assert.equal((await store.get({ key: `${name}@${v1}` })).versionId, v1);
      assert.equal((await store.get({ key: name, version: v1 })).versionId, v1);
      assert.equal((await store.get({ key: name })).versionId, v2);
      assert.equal((await store.get({ key: name, version: "latest" })).versionId, v2);
    });

    it("refuses a name Key Vault cannot hold, naming the key", async () => {
      await assert.rejects(store.get({ key: "bad_name!" }), (e: Error) => e instanceof DsopsError && /"bad_name!" is not a Key Vault secret name/.test(e.message));
    });

    it("a soft-deleted secret is not found (naming the key); writing its name says to recover or purge it", async () => {
      const name = unique("deleted");
      await seed(name, ["x-" + randomBytes(4).toString("hex")]);
      srv.softDelete(name);
      await assert.rejects(store.get({ key: name }), (e: Error) => e instanceof NotFoundError && e.message.includes(name));
      const v = `sd-${randomBytes(8).toString("hex")}`;
      const err = await store.put(name, new Secret(v)).then(() => undefined, (e: unknown) => e as DsopsError);
      assert.ok(err instanceof StoreError && !err.retryable, String(err));
      assert.match(err.message, /soft-deleted/);
      assert.match(err.hint ?? "", /recover.*purge/);
      assert.ok(!`${err.message}${err.stack}`.includes(v));
    });

    it("soft delete, recover and purge through the real client; the store reads a recovered secret again", async () => {
      const name = unique("recover");
      await seed(name, ["r1"]);
      const admin = await adminClient();
      await (await admin.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
      assert.equal((await admin.getDeletedSecret(name)).name, name);
      await assert.rejects(store.get({ key: name }), NotFoundError);
      await (await admin.beginRecoverDeletedSecret(name, { intervalInMs: 10 })).pollUntilDone();
      assert.equal((await store.get({ key: name })).value.reveal(), "r1");
      await (await admin.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
      await admin.purgeDeletedSecret(name);
      await assert.rejects(admin.getDeletedSecret(name), (e: { statusCode?: number }) => e.statusCode === 404);
      // A purged name is free again.
      assert.ok((await store.put(name, new Secret("r2"))).versionId);
    });

    it("a vault whose challenge names another domain: a clear error with the setting that allows it", async () => {
      const strict = makeStore({ disable_challenge_resource_verification: false });
      const e = (await strict.get({ key: "anything" }).catch((x: Error) => x)) as DsopsError;
      assert.ok(e instanceof DsopsError && !(e instanceof StoreError && e.retryable), String(e));
      assert.match(e.message, /store "kv": read of secret "anything": the vault's authentication challenge names another domain than vault_url/);
      assert.match(e.hint ?? "", /disable_challenge_resource_verification: true/);
    });

    it("a disabled version is not found, with a hint", async () => {
      const name = unique("disabled");
      const [id] = await seed(name, ["d1"]);
      await (await adminClient()).updateSecretProperties(name, id, { enabled: false });
      await assert.rejects(store.get({ key: `${name}/${id}` }), (e: Error) => e instanceof NotFoundError && /disabled/.test(e.message) && e.message.includes(name));
    });

    it("doctor's check lists the vault", async () => {
      await store.check();
      assert.equal(store.credentialKind, "client secret");
    });
  });

  describe("credentials", () => {
    it("a wrong client secret is an AuthError naming the store and key, never carrying the secret", async () => {
      const wrong = `wrong-${randomBytes(10).toString("hex")}`;
      const s = makeStore({ client_secret: wrong });
      const err = await s.get({ key: "anything" }).then(() => undefined, (e: unknown) => e as Error);
      assert.ok(err instanceof AuthError, String(err));
      assert.match(err.message, /store "kv".*client secret.*secret "anything"/);
      assert.match(err.message, /AADSTS7000215/);
      const text = `${err.message}\n${err.stack}\n${JSON.stringify(err)}\n${(err as DsopsError).hint}`;
      assert.ok(!text.includes(wrong) && !text.includes(CLIENT_SECRET), "an error carried the client secret");
    });

    it("a client certificate signs an assertion the token endpoint verifies", async () => {
      const cert = srv.makeClientCertificate("cert-app");
      srv.addClient({ clientId: "cert-app", certificatePem: cert.certificatePem });
      const name = unique("cert");
      await seed(name, ["by-cert"]);
      const s = makeStore({ client_secret: undefined, client_id: "cert-app", client_certificate_path: cert.path });
      assert.equal((await s.get({ key: name })).value.reveal(), "by-cert");
      // Another client's certificate is refused.
      const other = srv.makeClientCertificate("other");
      await assert.rejects(makeStore({ client_secret: undefined, client_id: "cert-app", client_certificate_path: other.path }).get({ key: name }), AuthError);
    });

    it("workload identity: the federated token file is the client assertion", async () => {
      const { mkdtempSync, writeFileSync } = await import("node:fs");
      const { join } = await import("node:path");
      const { tmpdir } = await import("node:os");
      const token = `fed-${randomBytes(16).toString("hex")}`;
      srv.addClient({ clientId: "wi-app", federatedToken: token });
      const file = join(mkdtempSync(join(tmpdir(), "dsops-wi-")), "token");
      writeFileSync(file, token);
      const name = unique("wi");
      await seed(name, ["by-workload"]);
      const s = makeStore({ client_secret: undefined, client_id: "wi-app", use_workload_identity: true, federated_token_file: file });
      assert.equal((await s.get({ key: name })).value.reveal(), "by-workload");
      assert.equal(s.credentialKind, "workload identity");
    });

    describe("managed identity (App Service endpoint: IDENTITY_ENDPOINT, IDENTITY_HEADER)", () => {
      const saved: Record<string, string | undefined> = {};
      before(() => {
        for (const k of ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]) saved[k] = process.env[k];
        process.env.IDENTITY_ENDPOINT = srv.identityEndpoint;
        process.env.IDENTITY_HEADER = srv.identityHeader;
      });
      after(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      });

      it("system-assigned and user-assigned identities get vault tokens", async () => {
        const name = unique("mi");
        await seed(name, ["by-mi"]);
        const msiBefore = srv.counts.msi ?? 0;
        const sys = makeStore({ client_secret: undefined, client_id: undefined, tenant_id: undefined, use_managed_identity: true });
        assert.equal((await sys.get({ key: name })).value.reveal(), "by-mi");
        const user = makeStore({ client_secret: undefined, client_id: undefined, tenant_id: undefined, use_managed_identity: true, user_assigned_identity_id: srv.managedIdentities.userAssigned[0] });
        assert.equal((await user.get({ key: name })).value.reveal(), "by-mi");
        assert.ok((srv.counts.msi ?? 0) >= msiBefore + 2, "the tokens came from the managed-identity endpoint");
        const unknown = makeStore({ client_secret: undefined, client_id: undefined, tenant_id: undefined, use_managed_identity: true, user_assigned_identity_id: "not-assigned-here" });
        await assert.rejects(unknown.get({ key: name }), (e: Error) => e instanceof AuthError && /managed identity/.test(e.message));
      });
    });

    it("require_encryption accepts the Azure stores (https only), and the store refuses an http vault_url", async () => {
      const { storeEncryption } = await import("../../provider/guard/policy");
      for (const type of ["azure.keyvault", "azure", "azure.identity"]) assert.deepEqual(storeEncryption({ type }), { ok: true });
      assert.throws(() => makeStore({ vault_url: "http://localhost:1/" }), (e: Error) => e instanceof DsopsError && /vault_url must be https:\/\//.test(e.message));
    });

    it("settings: one way to sign in, and what each way needs", () => {
      const parse = (extra: Record<string, unknown>) => storeSettingsSchemas["azure.keyvault"].safeParse({ type: "azure.keyvault", vault_url: "https://v.vault.azure.net/", ...extra });
      const msg = (r: ReturnType<typeof parse>) => (r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      assert.match(msg(parse({ client_secret: "x", use_managed_identity: true, tenant_id: "t", client_id: "c" })), /use_managed_identity: choose one way to sign in to Azure, not client_secret and use_managed_identity/);
      assert.match(msg(parse({ client_secret: "x" })), /tenant_id: required with client_secret but missing; client_id: required with client_secret/);
      assert.match(msg(parse({ user_assigned_identity_id: "u" })), /user_assigned_identity_id: belongs to use_managed_identity: true/);
      assert.match(msg(parse({ vault_url: "not a url" })), /vault_url/);
      assert.ok(parse({}).success, "no credential settings: DefaultAzureCredential");
    });
  });

  describe("faults", () => {
    let store: AzureKeyVaultStore;
    let name: string;
    const value = `fault-${randomBytes(8).toString("hex")}`;
    before(async () => {
      store = makeStore({ timeout_ms: 1500 });
      name = unique("fault");
      await seed(name, [value]);
      await store.get({ key: name }); // token cached: the faults below hit the vault call
    });
    afterEach(() => srv.setFault(undefined));
    const noValue = (e: Error) => {
      const text = `${e.message}\n${e.stack}\n${JSON.stringify(e)}`;
      assert.ok(!text.includes(value) && !text.includes(CLIENT_SECRET), "an error carried a value or the client secret");
      assert.ok(!/kvtok-/.test(`${text}\n${String((e as { cause?: unknown }).cause ?? "")}`), "an error carried the bearer token");
    };

    it("429 with Retry-After: a retryable StoreError naming store, key and the wait", async () => {
      srv.setFault({ kind: "status", status: 429, retryAfter: 7 });
      const e = (await store.get({ key: name }).catch((x: Error) => x)) as StoreError;
      assert.ok(e instanceof StoreError && e.retryable, String(e));
      assert.match(e.message, new RegExp(`store "kv": read of secret "${name}" failed \\(429 Throttled\\); the service asks to retry after 7 s`));
      noValue(e);
    });

    it("403: an AuthError with a role hint, not retried", async () => {
      srv.setFault({ kind: "status", status: 403, code: "Forbidden", message: "The user, group or application does not have secrets get permission" });
      const e = (await store.get({ key: name }).catch((x: Error) => x)) as AuthError;
      assert.ok(e instanceof AuthError, String(e));
      assert.match(e.message, new RegExp(`store "kv": read of secret "${name}" forbidden \\(403 Forbidden\\)`));
      assert.match(e.hint ?? "", /Key Vault Secrets User/);
      noValue(e);
    });

    it("503: retryable", async () => {
      srv.setFault({ kind: "status", status: 503 });
      const e = (await store.get({ key: name }).catch((x: Error) => x)) as StoreError;
      assert.ok(e instanceof StoreError && e.retryable, String(e));
    });

    it("a hanging vault: TimeoutError after timeout_ms (retryable)", async () => {
      srv.setFault({ kind: "hang" });
      const e = (await store.get({ key: name }).catch((x: Error) => x)) as StoreError;
      assert.ok(e instanceof TimeoutError && e.retryable, String(e));
      assert.match(e.message, new RegExp(`store "kv": read of secret "${name}": no answer within 1500 ms`));
    });

    it("malformed JSON: a retryable StoreError naming the key", async () => {
      srv.setFault({ kind: "malformed" });
      const e = (await store.get({ key: name }).catch((x: Error) => x)) as StoreError;
      assert.ok(e instanceof StoreError, String(e));
      assert.ok(!(e instanceof NotFoundError));
      assert.match(e.message, new RegExp(`store "kv": read of secret "${name}"`));
      noValue(e);
    });

    it("a vault that is down: a retryable StoreError (connection refused)", async () => {
      const { freePort } = await import("../support/server");
      const port = await freePort();
      const down = makeStore({ vault_url: `https://localhost:${port}/` });
      const e = (await down.get({ key: name }).catch((x: Error) => x)) as StoreError;
      assert.ok(e instanceof StoreError && e.retryable, String(e));
      assert.match(e.message, /cannot reach the service \(ECONNREFUSED\)/);
      assert.ok(e.message.includes(name));
    });
  });
});

describe("azure.keyvault staging (local HTTPS Key Vault server)", function () {
  this.timeout(60000);
  let srv: AzureKeyVaultServer;
  let untrust: () => void;
  const makeStore = () =>
    new AzureKeyVaultStore(
      "kv",
      storeSettingsSchemas["azure.keyvault"].parse({
        type: "azure.keyvault",
        vault_url: srv.url,
        tenant_id: srv.tenantId,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        authority_host: srv.url,
        disable_instance_discovery: true,
        disable_challenge_resource_verification: true,
      }),
      { configDir: process.cwd(), clock: systemClock, env: {} },
    );
  before(async () => {
    srv = await startAzureKeyVaultServer();
    srv.addClient({ clientId: CLIENT_ID, secret: CLIENT_SECRET });
    untrust = trustCa(srv.caPem);
  });
  after(async () => {
    untrust?.();
    await srv?.stop();
  });

  // dsops readers are the plain readers here: a read of the latest version outside dsops gets
  // the pending version during a rotation (documented on the store).
  stagingContract("azure.keyvault", async () => ({ store: makeStore(), missingVersion: "0123456789abcdef0123456789abcdef" }));

  it("keeps the stages in the versions' dsops-stage tags, other tags untouched", async () => {
    const store = makeStore();
    const name = `tags-${randomBytes(4).toString("hex")}`;
    const a = await store.put(name, new Secret("a"), { description: "first" });
    const p = await store.putPending(name, new Secret("b"));
    const tags = () => Object.fromEntries(srv.versionsOf(name).map((v) => [v.id, v.tags ?? {}]));
    assert.deepEqual(tags(), { [a.versionId]: { description: "first", "dsops-stage": "current" }, [p.versionId]: { "dsops-stage": "pending" } });
    await store.promote(name, p.versionId);
    assert.deepEqual(tags(), { [a.versionId]: { description: "first", "dsops-stage": "previous" }, [p.versionId]: { "dsops-stage": "current" } });
    // A plain write: the new latest version is current, the old current previous.
    const n = await store.put(name, new Secret("c"));
    assert.deepEqual(await store.stagesOf(name), { current: n.versionId, previous: p.versionId });
  });
});
