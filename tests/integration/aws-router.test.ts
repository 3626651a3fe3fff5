// Runs against moto_server (a local server speaking the AWS Secrets Manager, SSM, STS and IAM wire protocols), not real AWS; the sso: keys talk to a local server speaking the SSO portal API (moto has none) with the real @aws-sdk/client-sso client.
import { strict as assert } from "node:assert";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ManualClock, systemClock } from "../../provider/core/clock";
import { ConfigError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AwsRouterStore, routeAwsKey } from "../../provider/stores/aws-router";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { dsops, dsopsRun } from "../support/cli";
import { startFaultProxy } from "../support/fault-proxy";
import { freePort } from "../support/server";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { stagingContract } from "../support/staging-contract";
import { storeContract } from "../support/store-contract";

const ROLE = "arn:aws:iam::123456789012:role/router";

function uid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

describe("aws router store (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let sm: SecretsManagerClient;
  let ssm: SSMClient;

  const router = (extra: Record<string, unknown> = {}, endpoint = moto.endpoint, clock = systemClock, env: NodeJS.ProcessEnv = {}) =>
    new AwsRouterStore(
      "aws",
      storeSettingsSchemas.aws.parse({ type: "aws", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", ...extra }),
      { configDir: tmpdir(), clock, env },
    );

  async function seedSm(name: string, values: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, v] of values.entries()) {
      const out = i === 0 ? await sm.send(new CreateSecretCommand({ Name: name, SecretString: v })) : await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: v }));
      ids.push(out.VersionId!);
    }
    return ids;
  }
  async function seedSsm(name: string, values: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, v] of values.entries()) ids.push(String((await ssm.send(new PutParameterCommand({ Name: name, Value: v, Type: "SecureString", Overwrite: i > 0 }))).Version));
    return ids;
  }

  before(async () => {
    moto = await startMoto();
    sm = new SecretsManagerClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    ssm = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
  });
  after(async () => {
    sm?.destroy();
    ssm?.destroy();
    await moto?.stop();
  });

  it("routes keys as dsops's aws-unified does", () => {
    assert.deepEqual(routeAwsKey("sm:prod/db", "sm"), { service: "sm", key: "prod/db" });
    assert.deepEqual(routeAwsKey("secretsmanager:prod/db", "ssm"), { service: "sm", key: "prod/db" });
    assert.deepEqual(routeAwsKey("ssm:/app/param", "sm"), { service: "ssm", key: "/app/param" });
    assert.deepEqual(routeAwsKey("sts:credentials", "sm"), { service: "sts", key: "credentials" });
    assert.deepEqual(routeAwsKey("sso:access_key_id", "sm"), { service: "sso", key: "access_key_id" });
    assert.deepEqual(routeAwsKey("/app/param", "sm"), { service: "ssm", key: "/app/param" });
    assert.deepEqual(routeAwsKey("prod/app/key", "sm"), { service: "sm", key: "prod/app/key" });
    assert.deepEqual(routeAwsKey("config-key", "ssm"), { service: "ssm", key: "config-key" });
    const smArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    assert.deepEqual(routeAwsKey(smArn, "ssm"), { service: "sm", key: smArn });
    const ssmArn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/x";
    assert.deepEqual(routeAwsKey(ssmArn, "sm"), { service: "ssm", key: ssmArn });
    // A plain credential key goes to the sts: (else sso:) section when the store has one.
    assert.deepEqual(routeAwsKey("access_key_id", "sm", "sts"), { service: "sts", key: "access_key_id" });
    assert.deepEqual(routeAwsKey("credentials", "sm", "sso"), { service: "sso", key: "credentials" });
    assert.deepEqual(routeAwsKey("credentials", "sm"), { service: "sm", key: "credentials" });
    // A colon that is not a service prefix stays in the key.
    assert.deepEqual(routeAwsKey("team:db", "sm"), { service: "sm", key: "team:db" });
  });

  // Secrets Manager by default (plain names), SSM for keys starting with "/".
  storeContract("aws (router, Secrets Manager keys)", async () => ({ store: router(), seed: seedSm, missingVersion: "00000000-0000-0000-0000-000000000000" }));
  storeContract("aws (router, SSM keys: /path)", async () => ({ store: router(), seed: seedSsm, key: (n) => `/router/${n}`, missingVersion: "999" }));
  stagingContract("aws (router, sm: keys)", async () => ({
    store: router(),
    key: (n) => `sm:router-stg/${n}`,
    // As in staging-aws-secretsmanager.test.ts: moto's GetSecretValue without a stage does not follow AWSCURRENT.
    plainRead: async (key) => (await sm.send(new GetSecretValueCommand({ SecretId: key.replace(/^sm:/, ""), VersionStage: "AWSCURRENT" }))).SecretString as string,
    firstVersionIsCurrent: true,
    missingVersion: "00000000-0000-4000-8000-000000000000",
  }));
  stagingContract("aws (router, ssm: keys)", async () => ({ store: router(), key: (n) => `ssm:/router-stg/${n}` }));

  it("one store name for every service: sm:, ssm:, plain keys, sts: with the same credentials; getMany mixes them", async () => {
    const name = uid("prod/db");
    await seedSm(name, ["sm-value"]);
    const param = `/app/${uid("param")}`;
    await seedSsm(param, ["ssm-value"]);
    const clock = new ManualClock(Date.now());
    const store = router({ sts: { assume_role: ROLE, role_session_name: "router", duration: 900 }, ssm: { parameter_prefix: "/app" } }, moto.endpoint, clock);
    try {
      assert.equal((await store.get({ key: `sm:${name}` })).value.reveal(), "sm-value");
      assert.equal((await store.get({ key: name })).value.reveal(), "sm-value");
      assert.equal((await store.get({ key: `ssm:${param}` })).value.reveal(), "ssm-value");
      assert.equal((await store.get({ key: param })).value.reveal(), "ssm-value");
      const akid = (await store.get({ key: "sts:access_key_id" })).value.reveal();
      assert.match(akid, /^ASIA/);
      const creds = JSON.parse((await store.get({ key: "sts:credentials" })).value.reveal()) as Record<string, string>;
      assert.equal((await store.get({ key: "access_key_id" })).value.reveal(), akid, "a plain credential key goes to the sts: section");
      assert.equal(creds.AccessKeyId, akid, "one AssumeRole serves every sts: key");
      const many = await store.getMany([{ key: `sm:${name}` }, { key: param }, { key: "sts:session_token" }, { key: "sm:missing-x" }]);
      assert.equal((many[0] as { value: Secret }).value.reveal(), "sm-value");
      assert.equal((many[1] as { value: Secret }).value.reveal(), "ssm-value");
      assert.equal((many[2] as { value: Secret }).value.reveal(), creds.SessionToken);
      assert.ok(many[3] instanceof NotFoundError);
      // writes go to the chosen service
      const written = uid("written");
      await store.put(`sm:${written}`, new Secret("w1"));
      assert.equal((await store.get({ key: written })).value.reveal(), "w1");
      await store.put(`ssm:/app/${written}`, new Secret("w2"));
      assert.equal((await store.get({ key: `/app/${written}` })).value.reveal(), "w2");
      // sts: and sso: keys are read-only
      await assert.rejects(store.put("sts:access_key_id", new Secret("x")), (e: unknown) => {
        assert.ok(e instanceof DsopsError);
        assert.equal((e as Error).message, 'store "aws" (aws, sts: keys) is read-only: it hands out temporary credentials, which cannot be written');
        return true;
      });
      await assert.rejects(store.get({ key: "sso:access_key_id" }), (e: unknown) => e instanceof ConfigError && /store "aws": sso: keys need an sso: section/.test((e as Error).message));
      await assert.rejects(store.get({ key: "sm:" }), /store "aws": key "sm:" names no sm key after the prefix/);
    } finally {
      await store.close();
    }
  });

  it("default_service: ssm sends a plain key to SSM; assume_role applies to every service at once", async () => {
    const name = uid("plain");
    await seedSsm(name, ["plain-ssm"]);
    const store = router({ default_service: "ssm" });
    assert.equal((await store.get({ key: name })).value.reveal(), "plain-ssm");
    await store.close();
    const assumed = router({ assume_role: ROLE, default_service: "ssm" });
    // The role is in the same (moto default) account, so both services see what was seeded.
    assert.equal((await assumed.get({ key: name })).value.reveal(), "plain-ssm");
    const smName = uid("assumed");
    await seedSm(smName, ["assumed-sm"]);
    assert.equal((await assumed.get({ key: `sm:${smName}` })).value.reveal(), "assumed-sm");
    await assumed.check();
    await assumed.close();
  });

  it("dsops's per-service sections: secretsmanager.version_stage is the stage of a read without a version; the aws-unified shape loads", async () => {
    const name = uid("staged");
    await seedSm(name, ["old-value", "new-value"]);
    const store = router({ secretsmanager: { timeout_ms: 5000, version_stage: "AWSPREVIOUS" } });
    try {
      assert.equal((await store.get({ key: `sm:${name}` })).value.reveal(), "old-value");
      assert.equal((await store.get({ key: `sm:${name}`, version: "AWSCURRENT" })).value.reveal(), "new-value");
    } finally {
      await store.close();
    }
    const dir = mkdtempSync(join(tmpdir(), "dsops-router-plan-"));
    try {
      writeFileSync(
        join(dir, "dsops.yaml"),
        [
          "providers:",
          "  aws-advanced:",
          "    type: aws",
          "    region: us-east-1",
          "    profile: prod",
          "    default_service: ssm",
          "    secretsmanager: { timeout_ms: 5000, version_stage: AWSCURRENT }",
          "    ssm: { with_decryption: true, parameter_prefix: /myapp/prod/ }",
          "    sts: { assume_role: arn:aws:iam::123456789012:role/ProdRole, duration: 3600, external_id: my-external-id }",
          '    sso: { start_url: https://my-company.awsapps.com/start, account_id: "123456789012", role_name: AdministratorAccess }',
          "envs:",
          "  production:",
          "    A: { from: aws-advanced:sm:prod/database/password }",
          "    B: { from: aws-advanced:config-key }",
          "    C: { from: aws-advanced:sts:credentials }",
          "",
        ].join("\n"),
      );
      const r = dsops(["plan", "--env", "production"], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sso: keys read the role credentials of the sso: section (a local SSO portal), dsops's start_url spelling", async () => {
    const home = mkdtempSync(join(tmpdir(), "dsops-router-sso-"));
    const token = `aoa${randomBytes(16).toString("hex")}`;
    const server: Server = createServer((req, res) => {
      const ok = req.headers["x-amz-sso_bearer_token"] === token;
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json", ...(ok ? {} : { "x-amzn-errortype": "UnauthorizedException" }) });
      res.end(JSON.stringify(ok ? { roleCredentials: { accessKeyId: "ASIASSOROUTER", secretAccessKey: "s".repeat(30), sessionToken: "t".repeat(30), expiration: Date.now() + 3600_000 } } : { message: "bad token" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const start = "https://corp.awsapps.com/start";
      mkdirSync(join(home, ".aws", "sso", "cache"), { recursive: true });
      writeFileSync(join(home, ".aws", "sso", "cache", `${createHash("sha1").update(start).digest("hex")}.json`), JSON.stringify({ accessToken: token, expiresAt: new Date(Date.now() + 3600_000).toISOString() }));
      const store = router(
        { sso: { start_url: start, sso_region: "eu-west-1", account_id: "123456789012", role_name: "Dev", endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}` } },
        moto.endpoint,
        systemClock,
        { HOME: home },
      );
      assert.equal((await store.get({ key: "sso:access_key_id" })).value.reveal(), "ASIASSOROUTER");
      await store.close();
    } finally {
      server.closeAllConnections();
      server.close();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("throttling and a server that is down: retryable StoreErrors naming the store and key", async () => {
    const proxy = await startFaultProxy(moto.endpoint, { kind: "status", status: 429 });
    const store = router({}, proxy.endpoint);
    try {
      await assert.rejects(store.get({ key: "sm:prod/db" }), (e: unknown) => e instanceof StoreError && e.retryable && /^store "aws", key "sm:prod\/db": reading secret "prod\/db" failed: .*HTTP 429/.test((e as Error).message));
      await assert.rejects(store.get({ key: "/app/x" }), (e: unknown) => e instanceof StoreError && e.retryable && /^store "aws": .*parameter "\/app\/x.*429/.test((e as Error).message));
    } finally {
      await store.close();
      await proxy.close();
    }    const down = router({}, `http://127.0.0.1:${await freePort()}`);
    await assert.rejects(down.get({ key: "ssm:/app/y" }), (e: unknown) => e instanceof StoreError && e.retryable && /^store "aws", key "ssm:\/app\/y": .*parameter "\/app\/y.*ECONNREFUSED/.test((e as Error).message));
    await down.close();
  });

  it("through the CLI: the aws:sm:… and aws:/… shorthands and store://aws/ssm:…", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-router-cli-"));
    try {
      const name = uid("cli/db");
      const param = `/cli/${uid("p")}`;
      await seedSm(name, ['{"password":"pw-cli"}']);
      await seedSsm(param, ["param-cli"]);
      {
        writeFileSync(
          join(dir, "dsops.yaml"),
          [
            "secretStores:",
            "  aws:",
            "    type: aws",
            "    region: us-east-1",
            `    endpoint: ${moto.endpoint}`,
            "    access_key_id: test",
            "    secret_access_key: test",
            "envs:",
            "  dev:",
            `    DB: { from: "aws:sm:${name}#password" }`,
            `    P1: { from: "aws:${param}" }`,
            `    P2: { from: "store://aws/ssm:${param}" }`,
            `    P3: { from: "store://aws/sm:${name}?version_stage=AWSCURRENT" }`,
            "",
          ].join("\n"),
        );
        for (const [v, want] of [["DB", "pw-cli"], ["P1", "param-cli"], ["P2", "param-cli"], ["P3", '{"password":"pw-cli"}']]) {
          const r = dsops(["get", "--env", "dev", "--var", v], { cwd: dir });
          assert.equal(r.status, 0, r.stderr);
          assert.equal(r.stdout.replace(/\n$/, ""), want);
        }
        const set = dsops(["secrets", "set", "--store", "aws", "--key", "sm:cli/written"], { cwd: dir, input: "cli-written\n" });
        assert.equal(set.status, 0, set.stderr);
        assert.equal((await sm.send(new GetSecretValueCommand({ SecretId: "cli/written", VersionStage: "AWSCURRENT" }))).SecretString, "cli-written");
        const refused = dsops(["secrets", "set", "--store", "aws", "--key", "sts:access_key_id"], { cwd: dir, input: "x\n" });
        assert.equal(refused.status, 1, refused.stderr);
        assert.match(refused.stderr, /store "aws" \(aws, sts: keys\) is read-only: it hands out temporary credentials, which cannot be written/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("dsops doctor checks the router, an aws.sts store (moto) and an aws.sso store without a login (exit 1, with the login command)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-router-doctor-"));
    try {
      const creds = `    region: us-east-1\n    endpoint: ${moto.endpoint}\n    access_key_id: test\n    secret_access_key: test\n`;
      writeFileSync(
        join(dir, "dsops.yaml"),
        "secretStores:\n" +
          `  aws:\n    type: aws\n${creds}    sts: { assume_role: "${ROLE}" }\n` +
          `  temp-role:\n    type: aws.sts\n    assume_role: "${ROLE}"\n${creds}` +
          // dsops's spelling start_url (for sso_start_url)
          "  sso-dev:\n    type: aws.sso\n    start_url: https://corp.awsapps.com/start\n    sso_region: eu-west-1\n    account_id: \"123456789012\"\n    role_name: Dev\n" +
          "envs: { dev: {} }\n",
      );
      const r = await dsopsRun(["doctor"], { cwd: dir, env: { HOME: dir } });
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^aws +aws +ok +\d+ms +connected and authenticated$/m);
      assert.match(r.stdout, /^temp-role +aws\.sts +ok +\d+ms +connected and authenticated$/m);
      assert.match(r.stdout, /^sso-dev +aws\.sso +failed +\d+ms +store "sso-dev": no SSO token cached for https:\/\/corp\.awsapps\.com\/start .*log in again: aws sso login --profile <a profile with sso_start_url https:\/\/corp\.awsapps\.com\/start>/m);
      assert.match(r.stdout, /\n1 of 3 stores failed\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
