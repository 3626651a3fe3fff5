// Local HTTPS server (tests/support/azure-keyvault-server.ts, in a child process) speaking the real Azure Key Vault REST API and the Microsoft Entra token endpoint to the real @azure/keyvault-secrets + @azure/identity clients, with a real PostgreSQL 15 as the rotation target: no Key Vault emulator can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { Client } from "pg";
import { startAzureKeyVaultServerProcess, type AzureKeyVaultServerProcess } from "../support/azure-keyvault-server";
import { dsopsRun } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

const CLIENT_ID = "dsops-rotation-app";
const CLIENT_SECRET = `cs-${randomBytes(12).toString("hex")}`;

describe("rotation through the CLI with an azure.keyvault store (stages as version tags) and a real PostgreSQL", function () {
  this.timeout(180000);
  let srv: AzureKeyVaultServerProcess;
  let pg: RunningPostgres;
  let dir: string;
  let restoreCa: string[];
  let client: import("@azure/keyvault-secrets").SecretClient;

  before(async () => {
    srv = await startAzureKeyVaultServerProcess([{ clientId: CLIENT_ID, secret: CLIENT_SECRET }]);
    restoreCa = tls.getCACertificates("default");
    tls.setDefaultCACertificates([...restoreCa, srv.caPem]);
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), "dsops-azure-rotation-"));
    const { SecretClient } = await import("@azure/keyvault-secrets");
    const { ClientSecretCredential } = await import("@azure/identity");
    client = new SecretClient(srv.url, new ClientSecretCredential(srv.tenantId, CLIENT_ID, CLIENT_SECRET, { authorityHost: srv.url, disableInstanceDiscovery: true }), {
      disableChallengeResourceVerification: true,
    });
  });
  after(async () => {
    if (restoreCa) tls.setDefaultCACertificates(restoreCa);
    await srv?.stop();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("secrets rotate stages the new password as a pending version, applies it, promotes it; the old version is tagged previous", async () => {
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    const initial = `Init-${randomBytes(8).toString("hex")}`;
    try {
      await admin.query("CREATE ROLE az_app LOGIN");
      await admin.query(`ALTER ROLE az_app WITH PASSWORD '${initial}'`);
    } finally {
      await admin.end();
    }
    await client.setSecret("pg-admin", JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }));
    const first = await client.setSecret("app-db-password", initial);
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  kv:
    type: azure.keyvault
    vault_url: ${srv.url}/
    disable_challenge_resource_verification: true
    tenant_id: "${srv.tenantId}"
    client_id: ${CLIENT_ID}
    client_secret: "\${AZ_SECRET}"
    authority_host: ${srv.url}
    disable_instance_discovery: true
  local:
    type: file
services:
  app-db:
    type: postgresql
    host: 127.0.0.1
    port: ${pg.port}
    database: postgres
    admin: "store://kv/pg-admin"
envs:
  prod:
    DB_PASSWORD:
      from: "store://kv/app-db-password"
      rotation: { service: app-db, strategy: single-user, user: az_app }
`,
    );
    const env = { NODE_EXTRA_CA_CERTS: srv.caFile, AZ_SECRET: CLIENT_SECRET };
    const r = await dsopsRun(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"], { cwd: dir, env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const now = await client.getSecret("app-db-password");
    assert.notEqual(now.value, initial, "a new current version");
    assert.notEqual(now.properties.version, first.properties.version);
    assert.equal(now.properties.tags?.["dsops-stage"], "current");
    assert.equal((await client.getSecret("app-db-password", { version: first.properties.version })).properties.tags?.["dsops-stage"], "previous");
    assert.equal(await pg.canLogin("az_app", now.value as string), true, "the target accepts the new password");
    assert.equal(await pg.canLogin("az_app", initial), false, "the old password no longer works");
    const got = await dsopsRun(["get", "--env", "prod", "--var", "DB_PASSWORD"], { cwd: dir, env });
    assert.equal(got.status, 0, got.stderr);
    assert.equal(got.stdout.trim(), now.value);
    for (const out of [r, got]) assert.ok(!`${out.stdout}${out.stderr}`.includes(CLIENT_SECRET));
    assert.ok(!`${r.stdout}${r.stderr}`.includes(now.value as string), "rotate never prints the new value");
  });
});
