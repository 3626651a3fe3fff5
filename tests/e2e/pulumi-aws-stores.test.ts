// Runs against moto_server (a local server speaking the AWS Secrets Manager, SSM and STS wire protocols), not real AWS, and a local server speaking the SSO portal API (tests/support/sso-portal.ts: moto has none), with the real Pulumi CLI.
import { strict as assert } from "node:assert";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";
import { startSsoPortalProcess, SSO_ACCOUNT, SSO_ROLE, type SsoPortalProcess } from "../support/sso-portal";

describe("Pulumi end to end: the aws router, aws.sts (moto) and aws.sso (local SSO portal)", function () {
  this.timeout(600000);
  let moto: Moto;
  let project: PulumiProject;
  let portal: SsoPortalProcess;
  const ssoToken = `aoa${randomBytes(24).toString("hex")}`;
  let cache: string;

  before(async () => {
    pulumiBinDir();
    moto = await startMoto();
    portal = await startSsoPortalProcess(ssoToken);
    cache = mkdtempSync(join(tmpdir(), "dsops-e2e-sso-"));
  });
  after(async () => {
    await moto?.stop();
    await portal?.stop();
    rmSync(cache, { recursive: true, force: true });
    project?.cleanup();
  });

  it("SecretReference and Environment read sm:, /ssm and sts: keys of one aws store, an aws.sts store and an aws.sso store; no value in state or output", async () => {
    const pw = `pw-${randomBytes(9).toString("base64url")}`;
    const param = `param-${randomBytes(9).toString("base64url")}`;
    const sm = new SecretsManagerClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    await sm.send(new CreateSecretCommand({ Name: "e2e/db", SecretString: JSON.stringify({ password: pw }) }));
    sm.destroy();
    const ssm = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    await ssm.send(new PutParameterCommand({ Name: "/e2e/param", Value: param, Type: "SecureString" }));
    ssm.destroy();
    const role = "arn:aws:iam::123456789012:role/e2e";
    // The token `aws sso login` would cache for this start URL.
    const startUrl = "https://corp.awsapps.com/start";
    mkdirSync(cache, { recursive: true });
    writeFileSync(
      join(cache, `${createHash("sha1").update(startUrl).digest("hex")}.json`),
      JSON.stringify({ startUrl, region: "eu-west-1", accessToken: ssoToken, expiresAt: new Date(Date.now() + 8 * 3600_000).toISOString().replace(/\.\d+Z$/, "Z") }),
    );
    const sso = { type: "aws.sso", sso_start_url: startUrl, sso_region: "eu-west-1", account_id: SSO_ACCOUNT, role_name: SSO_ROLE, endpoint: portal.endpoint, cache_path: cache };
    project = new PulumiProject(
      "dsops-aws-stores",
      `"use strict";
const dsops = require("@dsops/pulumi");
const creds = { region: "us-east-1", endpoint: ${JSON.stringify(moto.endpoint)}, access_key_id: "test", secret_access_key: "test" };
const store = { type: "aws", ...creds, sts: { assume_role: ${JSON.stringify(role)} } };
const db = new dsops.SecretReference("db", { store, key: "sm:e2e/db#password" });
const ssoKey = new dsops.SecretReference("sso", { store: ${JSON.stringify(sso)}, key: "secret_access_key" });
const env = new dsops.Environment("env", {
  env: "e",
  config: {
    secretStores: { aws: store, "temp-role": { type: "aws.sts", assume_role: ${JSON.stringify(role)}, ...creds } },
    envs: { e: { P: { from: "aws:/e2e/param" }, K: { from: "temp-role:access_key_id" }, R: { from: "aws:sts:assumed_role_arn" } } },
  },
});
exports.db = db.value;
exports.sso = ssoKey.value;
exports.vars = env.variables;
`,
    );
    project.ok(["stack", "init", "aws"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs() as { db: string; sso: string; vars: Record<string, string> };
    assert.equal(out.db, pw);
    assert.equal(out.vars.P, param);
    assert.match(out.vars.K, /^ASIA/);
    assert.match(out.vars.R, /assumed-role\/e2e\//);
    assert.ok((await portal.issued()).includes(out.sso), "the aws.sso value is a secret key the SSO portal issued");
    project.assertNoLeak([pw, param, out.sso, ssoToken]);
  });
});
