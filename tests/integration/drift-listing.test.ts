import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { startMoto, startAwsProxy, motoCredentials, type Moto, type AwsProxy } from "../support/moto";

/**
 * Drift checks of many SecretReferences (Pulumi calls `diff` one resource at a time): the
 * provider lists current versions once per store (ListSecrets on moto_server) instead of
 * reading each secret, and still sees a changed secret.
 */
describe("SecretReference drift checks use one listing per store", function () {
  this.timeout(60000);
  let moto: Moto;
  let proxy: AwsProxy;
  let dir: string;
  const oldCwd = process.cwd();

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
    moto = await startMoto();
    proxy = await startAwsProxy(moto.endpoint);
    dir = mkdtempSync(join(tmpdir(), "dsops-drift-"));
  });
  after(async () => {
    process.chdir(oldCwd);
    await proxy?.close();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 30 sequential diffs with one ListSecrets call and detects the changed secret", async () => {
    const client = new SecretsManagerClient({ endpoint: moto.endpoint, region: "us-east-1", credentials: motoCredentials, maxAttempts: 1 });
    const versions: string[] = [];
    for (let i = 0; i < 30; i++) versions.push((await client.send(new CreateSecretCommand({ Name: `drift/s${i}`, SecretString: `v${i}` }))).VersionId as string);
    const changed = (await client.send(new PutSecretValueCommand({ SecretId: "drift/s7", SecretString: "v7-new" }))).VersionId as string;
    client.destroy();

    process.chdir(dir);
    const h = require("../../provider/dynamic/handlers") as typeof import("../../provider/dynamic/handlers");
    const stores = JSON.stringify({ aws: { type: "aws.secretsmanager", endpoint: proxy.endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test" } });
    h.configure((k) => (k === "dsops:stores" ? stores : undefined));
    proxy.reset();
    const results: boolean[] = [];
    for (let i = 0; i < 30; i++) {
      const ref = `store://aws/drift/s${i}`;
      const d = await h.secretReference.diff("id", { ref, versionId: versions[i] }, { ref });
      results.push(Boolean(d.changes));
    }
    assert.deepEqual(results.map((c, i) => (c ? i : -1)).filter((i) => i >= 0), [7], "only the changed secret drifted");
    assert.equal(proxy.calls.filter((c) => c === "ListSecrets").length, 1, proxy.calls.join(","));
    assert.equal(proxy.calls.filter((c) => c === "GetSecretValue" || c === "BatchGetSecretValue" || c === "DescribeSecret").length, 0, proxy.calls.join(","));
    // A pinned reference is not listed: it never drifts.
    assert.equal((await h.secretReference.diff("id", { ref: "store://aws/drift/s7", version: "AWSPREVIOUS", versionId: versions[7] }, { ref: "store://aws/drift/s7", version: "AWSPREVIOUS" })).changes, false);
    assert.ok(changed);
  });
});
