// Runs against moto_server, a local server speaking the AWS Secrets Manager wire protocol, not real AWS.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { DescribeSecretCommand, GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { AwsSecretsManagerStore } from "../../provider/stores/aws-secretsmanager";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { stagingContract } from "../support/staging-contract";

function makeStore(endpoint: string): AwsSecretsManagerStore {
  return new AwsSecretsManagerStore(
    "aws",
    { type: "aws.secretsmanager", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test" },
    { configDir: tmpdir(), clock: systemClock, env: {} },
  );
}

describe("aws.secretsmanager staging (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let admin: SecretsManagerClient;
  before(async () => {
    moto = await startMoto();
    admin = new SecretsManagerClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
  });
  after(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  stagingContract("aws.secretsmanager", async () => ({
    store: makeStore(moto.endpoint),
    // A reader that knows nothing of dsops reads AWSCURRENT (AWS's default). It names the stage
    // because moto answers a GetSecretValue without one from a default version of its own that
    // UpdateSecretVersionStage does not move (real AWS returns AWSCURRENT).
    plainRead: async (key) => (await admin.send(new GetSecretValueCommand({ SecretId: key, VersionStage: "AWSCURRENT" }))).SecretString as string,
    firstVersionIsCurrent: true,
    missingVersion: "00000000-0000-4000-8000-000000000000",
  }));

  it("uses AWS's own labels: AWSPENDING, then AWSCURRENT with AWSPREVIOUS on the old version", async () => {
    const store = makeStore(moto.endpoint);
    try {
      const key = `labels-${randomBytes(4).toString("hex")}`;
      const a = await store.put(key, new Secret(`a-${randomBytes(6).toString("hex")}`));
      const p = await store.putPending(key, new Secret(`b-${randomBytes(6).toString("hex")}`));
      let d = await admin.send(new DescribeSecretCommand({ SecretId: key }));
      assert.deepEqual(d.VersionIdsToStages?.[p.versionId], ["AWSPENDING"]);
      assert.deepEqual(d.VersionIdsToStages?.[a.versionId], ["AWSCURRENT"]);
      await store.promote(key, p.versionId);
      d = await admin.send(new DescribeSecretCommand({ SecretId: key }));
      assert.deepEqual(d.VersionIdsToStages?.[p.versionId], ["AWSCURRENT"]);
      assert.deepEqual(d.VersionIdsToStages?.[a.versionId], ["AWSPREVIOUS"]);
      // "pending" and "previous" read through the stage names
      assert.equal((await store.describe({ key, version: "previous" })).versionId, a.versionId);
    } finally {
      await store.close();
    }
  });
});
