// Runs against moto_server (a local server speaking the AWS Secrets Manager, SSM and STS wire protocols), not real AWS, with the real Pulumi CLI.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

describe("Pulumi end to end: the aws router and aws.sts (moto)", function () {
  this.timeout(600000);
  let moto: Moto;
  let project: PulumiProject;

  before(async () => {
    pulumiBinDir();
    moto = await startMoto();
  });
  after(async () => {
    await moto?.stop();
    project?.cleanup();
  });

  it("SecretReference and Environment read sm:, /ssm and sts: keys of one aws store, and an aws.sts store; no value in state or output", async () => {
    const pw = `pw-${randomBytes(9).toString("base64url")}`;
    const param = `param-${randomBytes(9).toString("base64url")}`;
    const sm = new SecretsManagerClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    await sm.send(new CreateSecretCommand({ Name: "e2e/db", SecretString: JSON.stringify({ password: pw }) }));
    sm.destroy();
    const ssm = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    await ssm.send(new PutParameterCommand({ Name: "/e2e/param", Value: param, Type: "SecureString" }));
    ssm.destroy();
    const role = "arn:aws:iam::123456789012:role/e2e";
    project = new PulumiProject(
      "dsops-aws-stores",
      `"use strict";
const dsops = require("@dsops/pulumi");
const creds = { region: "us-east-1", endpoint: ${JSON.stringify(moto.endpoint)}, access_key_id: "test", secret_access_key: "test" };
const store = { type: "aws", ...creds, sts: { assume_role: ${JSON.stringify(role)} } };
const db = new dsops.SecretReference("db", { store, key: "sm:e2e/db#password" });
const env = new dsops.Environment("env", {
  env: "e",
  config: {
    secretStores: { aws: store, "temp-role": { type: "aws.sts", assume_role: ${JSON.stringify(role)}, ...creds } },
    envs: { e: { P: { from: "aws:/e2e/param" }, K: { from: "temp-role:access_key_id" }, R: { from: "aws:sts:assumed_role_arn" } } },
  },
});
exports.db = db.value;
exports.vars = env.variables;
`,
    );
    project.ok(["stack", "init", "aws"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs() as { db: string; vars: Record<string, string> };
    assert.equal(out.db, pw);
    assert.equal(out.vars.P, param);
    assert.match(out.vars.K, /^ASIA/);
    assert.match(out.vars.R, /assumed-role\/e2e\//);
    project.assertNoLeak([pw, param]);
  });
});
