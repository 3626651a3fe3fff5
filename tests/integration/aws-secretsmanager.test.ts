// Runs against moto_server, a local server speaking the AWS Secrets Manager wire protocol, not real AWS; fault tests put a loopback proxy in front of it that answers chosen calls with AWS errors.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { systemClock } from "../../provider/core/clock";
import { AuthError, ConfigError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { awsClientConfig } from "../../provider/stores/aws-common";
import { AwsSecretsManagerStore, versionSelector } from "../../provider/stores/aws-secretsmanager";
import type { StoreSettings } from "../../provider/stores/settings";
import type { SecretVersion } from "../../provider/stores/types";
import { motoCredentials, startAwsProxy, startMoto, type AwsProxy, type Moto } from "../support/moto";
import { storeContract } from "../support/store-contract";
import { freePort } from "../support/server";

type SmSettings = Extract<StoreSettings, { type: "aws.secretsmanager" }>;

function uid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

function makeStore(endpoint: string, extra: Partial<SmSettings> = {}, env: NodeJS.ProcessEnv = {}): AwsSecretsManagerStore {
  return new AwsSecretsManagerStore(
    "aws",
    { type: "aws.secretsmanager", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", ...extra },
    { configDir: tmpdir(), clock: systemClock, env },
  );
}

function value(r: SecretVersion | Error): string {
  if (r instanceof Error) throw r;
  return r.value.reveal();
}

describe("aws.secretsmanager store (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let admin: SecretsManagerClient;

  /** Create `name` with `values` as successive versions (oldest first); their version ids and the ARN. */
  async function seed(name: string, values: string[]): Promise<{ ids: string[]; arn: string }> {
    const created = await admin.send(new CreateSecretCommand({ Name: name, SecretString: values[0] }));
    const ids = [created.VersionId as string];
    for (const v of values.slice(1)) {
      ids.push((await admin.send(new PutSecretValueCommand({ SecretId: name, SecretString: v }))).VersionId as string);
    }
    return { ids, arn: created.ARN as string };
  }

  before(async () => {
    moto = await startMoto();
    admin = new SecretsManagerClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
  });
  after(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  storeContract("aws.secretsmanager", async () => ({
    store: makeStore(moto.endpoint),
    seed: async (key, values) => (await seed(key, values)).ids,
    seedBinary: async (key, bytes) => void (await admin.send(new CreateSecretCommand({ Name: key, SecretBinary: bytes }))),
    missingVersion: "00000000-0000-4000-8000-000000000000",
  }));

  describe("versions and stages", () => {
    let store: AwsSecretsManagerStore;
    before(() => (store = makeStore(moto.endpoint)));
    after(() => store.close());

    it("tells version ids from staging labels", () => {
      assert.deepEqual(versionSelector("AWSCURRENT"), { VersionStage: "AWSCURRENT" });
      assert.deepEqual(versionSelector("AWSPREVIOUS"), { VersionStage: "AWSPREVIOUS" });
      assert.deepEqual(versionSelector("MY_STAGE"), { VersionStage: "MY_STAGE" });
      assert.deepEqual(versionSelector("blue"), { VersionStage: "blue" });
      assert.deepEqual(versionSelector("0d7a4d2c-5c9e-4f7e-9d5f-2b3c4d5e6f70"), { VersionId: "0d7a4d2c-5c9e-4f7e-9d5f-2b3c4d5e6f70" });
      assert.deepEqual(versionSelector("a".repeat(40)), { VersionId: "a".repeat(40) });
      assert.deepEqual(versionSelector("x", { version_id: "custom-token" }), { VersionId: "custom-token" });
      assert.deepEqual(versionSelector(undefined, { version_stage: "blue" }), { VersionStage: "blue" });
      assert.equal(versionSelector(undefined), undefined);
    });

    it("reads AWSCURRENT and AWSPREVIOUS after two versions, and describes each", async () => {
      const key = uid("stages");
      const { ids } = await seed(key, ["first-value", "second-value"]);
      const cur = await store.get({ key, version: "AWSCURRENT" });
      assert.equal(cur.value.reveal(), "second-value");
      assert.equal(cur.versionId, ids[1]);
      assert.ok(cur.updatedAt && !Number.isNaN(Date.parse(cur.updatedAt)));
      const prev = await store.get({ key, version: "AWSPREVIOUS" });
      assert.equal(prev.value.reveal(), "first-value");
      assert.equal(prev.versionId, ids[0]);
      assert.equal((await store.describe({ key, version: "AWSPREVIOUS" })).versionId, ids[0]);
      assert.equal((await store.describe({ key, version: ids[0] })).versionId, ids[0]);
      assert.equal((await store.describe({ key })).versionId, ids[1]);
      await assert.rejects(store.get({ key, version: "AWSPENDING" }), NotFoundError);
      await assert.rejects(store.describe({ key, version: "AWSPENDING" }), NotFoundError);
    });

    it("reads versions by custom staging labels, lower or upper case", async () => {
      const key = uid("custom-stage");
      const { ids } = await seed(key, ["blue-value", "green-value"]);
      await admin.send(new UpdateSecretVersionStageCommand({ SecretId: key, VersionStage: "blue", MoveToVersionId: ids[0] }));
      await admin.send(new UpdateSecretVersionStageCommand({ SecretId: key, VersionStage: "GREEN", MoveToVersionId: ids[1] }));
      assert.equal((await store.get({ key, version: "blue" })).value.reveal(), "blue-value");
      assert.equal((await store.get({ key, version: "GREEN" })).value.reveal(), "green-value");
      assert.equal((await store.get({ key, options: { version_stage: "blue" } })).versionId, ids[0]);
      assert.equal((await store.describe({ key, version: "blue" })).versionId, ids[0]);
      await assert.rejects(store.get({ key, version: "purple" }), (e: unknown) => {
        assert.ok(e instanceof NotFoundError);
        assert.match((e as Error).message, new RegExp(`secret "${key}" stage "purple" not found`));
        return true;
      });
    });

    it("reads a secret by full ARN and by partial ARN", async () => {
      const key = uid("by-arn");
      const { ids, arn } = await seed(key, ["arn-value"]);
      const full = await store.get({ key: arn });
      assert.equal(full.value.reveal(), "arn-value");
      assert.equal(full.versionId, ids[0]);
      const partial = arn.slice(0, -7); // without "-" and the 6-character suffix
      assert.equal((await store.get({ key: partial })).value.reveal(), "arn-value");
      assert.equal((await store.describe({ key: arn })).versionId, ids[0]);
    });

    it("reads binary secrets as base64, alone and in a batch", async () => {
      const key = uid("bin");
      const bytes = randomBytes(64);
      await admin.send(new CreateSecretCommand({ Name: key, SecretBinary: bytes }));
      const one = await store.get({ key });
      assert.equal(one.binary, true);
      assert.ok(Buffer.from(one.value.reveal(), "base64").equals(bytes));
      const [many] = await store.getMany([{ key }]);
      assert.ok(!(many instanceof Error));
      assert.equal(many.binary, true);
      assert.ok(Buffer.from(many.value.reveal(), "base64").equals(bytes));
    });
  });

  describe("batches", () => {
    let proxy: AwsProxy;
    let store: AwsSecretsManagerStore;
    before(async () => {
      proxy = await startAwsProxy(moto.endpoint);
      store = makeStore(proxy.endpoint);
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("reads 45 keys (names and ARNs, one missing) in 3 BatchGetSecretValue calls", async () => {
      const names = Array.from({ length: 44 }, (_, i) => uid(`b45-${i}`));
      const seeded = await Promise.all(names.map((n, i) => seed(n, [`batch-value-${i}`])));
      const missing = uid("b45-missing");
      // Every third key is asked for by its ARN.
      const keys = names.map((n, i) => (i % 3 === 0 ? seeded[i].arn : n));
      keys.splice(17, 0, missing);
      proxy.reset();
      const results = await store.getMany(keys.map((key) => ({ key })));
      assert.equal(results.length, 45);
      results.forEach((r, i) => {
        if (keys[i] === missing) {
          assert.ok(r instanceof NotFoundError, `slot ${i}: ${String(r)}`);
          assert.ok(r.message.includes(missing), r.message);
          return;
        }
        const n = keys[i].startsWith("arn:") ? seeded.findIndex((s) => s.arn === keys[i]) : names.indexOf(keys[i]);
        assert.equal(value(r), `batch-value-${n}`, `slot ${i}`);
        assert.equal((r as SecretVersion).versionId, seeded[n].ids[0]);
      });
      assert.deepEqual(proxy.calls, ["BatchGetSecretValue", "BatchGetSecretValue", "BatchGetSecretValue"]);
    });

    it("reads keys with a version one by one, and a key asked twice once", async () => {
      const a = uid("mix-a");
      const b = uid("mix-b");
      await seed(a, ["a1", "a2"]);
      const { ids: bIds } = await seed(b, ["b1", "b2"]);
      proxy.reset();
      const results = await store.getMany([{ key: a }, { key: b, version: "AWSPREVIOUS" }, { key: a }, { key: b, version: bIds[1] }, { key: b }]);
      assert.deepEqual(results.map(value), ["a2", "b1", "a2", "b2", "b2"]);
      assert.deepEqual([...proxy.calls].sort(), ["BatchGetSecretValue", "GetSecretValue", "GetSecretValue"]);
    });

    it("falls back to one GetSecretValue per key when BatchGetSecretValue is refused", async () => {
      const a = uid("refused-a");
      const b = uid("refused-b");
      await seed(a, ["ra"]);
      await seed(b, ["rb"]);
      const local = makeStore(proxy.endpoint);
      try {
        proxy.reset();
        proxy.fail("BatchGetSecretValue", { status: 400, type: "AccessDeniedException", message: "not authorized to perform secretsmanager:BatchGetSecretValue" });
        const missing = uid("refused-missing");
        const results = await local.getMany([{ key: a }, { key: missing }, { key: b }]);
        assert.equal(value(results[0]), "ra");
        assert.ok(results[1] instanceof NotFoundError);
        assert.equal(value(results[2]), "rb");
        assert.deepEqual(proxy.calls.filter((c) => c === "BatchGetSecretValue").length, 1);
        // Remembered: the next batch does not try BatchGetSecretValue again.
        proxy.reset();
        assert.deepEqual((await local.getMany([{ key: a }, { key: b }])).map(value), ["ra", "rb"]);
        assert.deepEqual(proxy.calls, ["GetSecretValue", "GetSecretValue"]);
      } finally {
        await local.close();
      }
    });

    it("fails the whole batch as retryable when BatchGetSecretValue is throttled", async () => {
      proxy.fail("BatchGetSecretValue", { status: 400, type: "ThrottlingException", message: "Rate exceeded" }, 1);
      await assert.rejects(store.getMany([{ key: uid("t1") }, { key: uid("t2") }]), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.retryable, String(e));
        return true;
      });
    });
  });

  describe("writes", () => {
    let store: AwsSecretsManagerStore;
    before(() => (store = makeStore(moto.endpoint)));
    after(() => store.close());

    it("creates a missing secret, then adds AWSCURRENT versions", async () => {
      const key = uid("put");
      const first = await store.put(key, new Secret("put-one"), { description: "made by dsops" });
      const d1 = await admin.send(new DescribeSecretCommand({ SecretId: key }));
      assert.equal(d1.Description, "made by dsops");
      assert.deepEqual(d1.VersionIdsToStages?.[first.versionId], ["AWSCURRENT"]);
      const second = await store.put(key, new Secret("put-two"));
      assert.notEqual(second.versionId, first.versionId);
      const cur = await admin.send(new GetSecretValueCommand({ SecretId: key }));
      assert.equal(cur.VersionId, second.versionId);
      assert.equal(cur.SecretString, "put-two");
      assert.equal((await store.get({ key, version: "AWSPREVIOUS" })).versionId, first.versionId);
    });

    it("writes through an ARN to an existing secret", async () => {
      const key = uid("put-arn");
      const { arn } = await seed(key, ["old"]);
      const v = await store.put(arn, new Secret("new"));
      assert.equal((await store.get({ key })).versionId, v.versionId);
    });
  });

  describe("errors", () => {
    let proxy: AwsProxy;
    let store: AwsSecretsManagerStore;
    before(async () => {
      proxy = await startAwsProxy(moto.endpoint);
      store = makeStore(proxy.endpoint);
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("names the store and key of a missing secret or version, never the value", async () => {
      const key = uid("err");
      await seed(key, ["do-not-leak-this-value"]);
      for (const [k, version] of [[uid("absent"), undefined], [key, "00000000-0000-4000-8000-000000000000"], [key, "NOSUCHSTAGE"]] as const) {
        await assert.rejects(store.get({ key: k, version }), (e: unknown) => {
          assert.ok(e instanceof NotFoundError, String(e));
          assert.ok(e.message.startsWith(`store "aws": secret "${k}"`), e.message);
          assert.ok(!`${e.message}${e.stack}${JSON.stringify(e)}`.includes("do-not-leak-this-value"));
          return true;
        });
      }
      await assert.rejects(store.describe({ key: uid("absent") }), NotFoundError);
    });

    for (const [type, status] of [["ThrottlingException", 400], ["InternalServiceError", 500], ["ServiceUnavailable", 503]] as const) {
      it(`maps ${type} (HTTP ${status}) to a retryable StoreError`, async () => {
        proxy.fail("GetSecretValue", { status, type }, 1);
        await assert.rejects(store.get({ key: "anything" }), (e: unknown) => {
          assert.ok(e instanceof StoreError, String(e));
          assert.equal(e.retryable, true);
          assert.ok(e.message.includes(type) && e.message.includes('"anything"'), e.message);
          return true;
        });
      });
    }

    it("maps a refused request to AuthError, not retryable", async () => {
      proxy.fail("GetSecretValue", { status: 400, type: "AccessDeniedException", message: "User is not authorized" }, 1);
      await assert.rejects(store.get({ key: "anything" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.ok(e.hint);
        return true;
      });
    });

    it("maps a refused connection to a retryable StoreError", async () => {
      const port = await freePort(); // nothing listens there
      const dead = makeStore(`http://127.0.0.1:${port}`);
      try {
        await assert.rejects(dead.get({ key: "x" }), (e: unknown) => e instanceof StoreError && e.retryable && /ECONNREFUSED/.test(e.message));
        await assert.rejects(dead.check(), (e: unknown) => e instanceof StoreError && e.retryable);
      } finally {
        await dead.close();
      }
    });

    it("leaves the service's message out of write errors (it may echo the value)", async () => {
      const v = `leaky-${randomBytes(6).toString("hex")}`;
      proxy.fail("PutSecretValue", { status: 400, type: "ValidationException", message: `Value '${v}' at 'secretString' failed to satisfy constraint` }, 1);
      await assert.rejects(store.put("some-secret", new Secret(v)), (e: unknown) => {
        assert.ok(e instanceof StoreError && !e.retryable, String(e));
        assert.ok(e.message.includes("ValidationException") && e.message.includes('"some-secret"'), e.message);
        assert.ok(!`${e.message}${e.stack}${JSON.stringify(e)}${String(e.cause)}`.includes(v));
        return true;
      });
    });

    it("checks connectivity with one ListSecrets call", async () => {
      await store.check();
      assert.deepEqual(proxy.calls, ["ListSecrets"]);
    });
  });

  describe("client configuration", () => {
    it("takes the region from the settings, then AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1", () => {
      assert.equal(awsClientConfig("s", { region: "eu-west-1" }, { AWS_REGION: "x" }).region, "eu-west-1");
      assert.equal(awsClientConfig("s", {}, { AWS_REGION: "eu-central-1", AWS_DEFAULT_REGION: "x" }).region, "eu-central-1");
      assert.equal(awsClientConfig("s", {}, { AWS_DEFAULT_REGION: "ap-south-1" }).region, "ap-south-1");
      assert.equal(awsClientConfig("s", {}, {}).region, "us-east-1");
      assert.equal(awsClientConfig("s", {}, {}).maxAttempts, 1);
    });

    it("uses static credentials or a profile, and refuses half or conflicting settings", () => {
      assert.deepEqual(awsClientConfig("s", { access_key_id: "a", secret_access_key: "b", session_token: "c" }, {}).credentials, {
        accessKeyId: "a",
        secretAccessKey: "b",
        sessionToken: "c",
      });
      assert.equal(awsClientConfig("s", { profile: "dev" }, {}).profile, "dev");
      assert.equal(awsClientConfig("s", {}, {}).credentials, undefined);
      assert.throws(() => awsClientConfig("s", { access_key_id: "a" }, {}), ConfigError);
      assert.throws(() => awsClientConfig("s", { session_token: "c" }, {}), ConfigError);
      assert.throws(() => awsClientConfig("s", { access_key_id: "a", secret_access_key: "b", profile: "p" }, {}), ConfigError);
      assert.throws(() => awsClientConfig("s", { endpoint: "not a url" }, {}), ConfigError);
    });

    it("reads credentials from a named profile, and reports a missing one as AuthError", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-aws-"));
      const saved = { creds: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
      writeFileSync(join(dir, "credentials"), "[dsops-test]\naws_access_key_id = test\naws_secret_access_key = test\n");
      writeFileSync(join(dir, "config"), "");
      process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "credentials");
      process.env.AWS_CONFIG_FILE = join(dir, "config");
      const key = uid("profile");
      await seed(key, ["profile-value"]);
      const settings = { type: "aws.secretsmanager", endpoint: moto.endpoint, region: "us-east-1" } as const;
      const good = new AwsSecretsManagerStore("aws", { ...settings, profile: "dsops-test" }, { configDir: dir, clock: systemClock, env: {} });
      const bad = new AwsSecretsManagerStore("aws", { ...settings, profile: "no-such-profile" }, { configDir: dir, clock: systemClock, env: {} });
      try {
        assert.equal((await good.get({ key })).value.reveal(), "profile-value");
        await assert.rejects(bad.get({ key }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.ok(e instanceof DsopsError && e.message.includes(key));
          return true;
        });
      } finally {
        await good.close();
        await bad.close();
        for (const [k, v] of [["AWS_SHARED_CREDENTIALS_FILE", saved.creds], ["AWS_CONFIG_FILE", saved.config]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
