// Local HTTPS server (tests/support/azure-keyvault-server.ts, in a child process) speaking the real Azure Key Vault REST API and the Microsoft Entra token endpoint to the real @azure/keyvault-secrets + @azure/identity clients inside a real `pulumi up`: no Key Vault emulator can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as tls from "node:tls";
import { startAzureKeyVaultServerProcess, type AzureKeyVaultServerProcess } from "../support/azure-keyvault-server";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

const CLIENT_ID = "dsops-e2e-app";
const CLIENT_SECRET = `cs-${randomBytes(12).toString("hex")}`;

describe("Pulumi end to end: Azure Key Vault through SecretReference and Environment", function () {
  this.timeout(300000);
  let srv: AzureKeyVaultServerProcess;
  let project: PulumiProject | undefined;
  let restoreCa: string[];

  before(async () => {
    pulumiBinDir();
    srv = await startAzureKeyVaultServerProcess([{ clientId: CLIENT_ID, secret: CLIENT_SECRET }]);
    restoreCa = tls.getCACertificates("default");
    tls.setDefaultCACertificates([...restoreCa, srv.caPem]);
  });
  after(async () => {
    if (restoreCa) tls.setDefaultCACertificates(restoreCa);
    await srv?.stop();
    project?.cleanup();
  });

  it("resolves an azure.keyvault reference, an azure router env and an azure.identity token; the client secret, the value and the token stay out of state", async () => {
    const { SecretClient } = await import("@azure/keyvault-secrets");
    const { ClientSecretCredential } = await import("@azure/identity");
    const admin = new SecretClient(srv.url, new ClientSecretCredential(srv.tenantId, CLIENT_ID, CLIENT_SECRET, { authorityHost: srv.url, disableInstanceDiscovery: true }), {
      disableChallengeResourceVerification: true,
    });
    const pw = `pw-${randomBytes(9).toString("base64url")}`;
    await admin.setSecret("e2e-db", JSON.stringify({ password: pw }));

    const creds = `{ tenant_id: "${srv.tenantId}", client_id: "${CLIENT_ID}", client_secret: cfg.requireSecret("cs"), authority_host: "${srv.url}", disable_instance_discovery: true }`;
    project = new PulumiProject(
      "dsops-azure",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const creds = ${creds};
const kv = { vault_url: "${srv.url}/", disable_challenge_resource_verification: true };
const ref = new dsops.SecretReference("kv", { store: { type: "azure.keyvault", ...creds, ...kv }, key: "e2e-db#password" });
const env = new dsops.Environment("env", { env: "e", config: { secretStores: { azure: { type: "azure", ...creds, keyvault: kv } }, envs: { e: { P: { from: "azure:kv:e2e-db#password" } } } } });
// azure.identity: a Microsoft Entra token for Key Vault's scope, as a secret output.
const tok = new dsops.SecretReference("tok", { store: { type: "azure.identity", ...creds }, key: "https://vault.azure.net/.default:access_token" });
exports.a = ref.value;
exports.tok = tok.value;
exports.b = env.variables;
exports.storeType = ref.storeType;
`,
      { NODE_EXTRA_CA_CERTS: srv.caFile },
    );
    project.ok(["stack", "init", "az"]);
    project.run(["config", "set", "--secret", "cs", CLIENT_SECRET], {}, false);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, pw);
    assert.deepEqual(out.b, { P: pw });
    assert.equal(project.outputs().storeType, "azure.keyvault");
    // The token from azure.identity is one the vault accepts: read the secret with it.
    const tok = out.tok as string;
    assert.match(tok, /\S{16,}/);
    const viaToken = await fetch(`${srv.url}/secrets/e2e-db?api-version=7.5`, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(viaToken.status, 200);
    assert.equal(JSON.parse(((await viaToken.json()) as { value: string }).value).password, pw);
    // A token is new at each read: the identity reference shows as changed, the others do not.
    const summary = project.previewSummary();
    assert.deepEqual(summary, { same: 3, update: 1 });
    project.assertNoLeak([pw, CLIENT_SECRET, tok]);
  });
});
