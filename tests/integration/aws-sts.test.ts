// Runs against moto_server (a local server speaking the AWS STS, IAM and SSM wire protocols), not real AWS; fault tests put a loopback proxy in front of it (tests/support/fault-proxy.ts, and a small one here answering AssumeRole with an STS error document).
import { strict as assert } from "node:assert";
import { createServer, request, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ManualClock } from "../../provider/core/clock";
import { AuthError, ConfigError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { AwsSsmStore } from "../../provider/stores/aws-ssm";
import { AwsStsStore } from "../../provider/stores/aws-sts";
import { REFRESH_MARGIN_MS } from "../../provider/stores/aws-credentials";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { dsops, dsopsRun } from "../support/cli";
import { startFaultProxy } from "../support/fault-proxy";
import { motoCredentials, startAwsProxy, startMoto, type Moto } from "../support/moto";
import { freePort } from "../support/server";

const ACCOUNT = "111111111111";
const ROLE = `arn:aws:iam::${ACCOUNT}:role/deploy`;

/** A proxy in front of moto that answers AssumeRole with an STS (query protocol) error while `fault` is set, and counts AssumeRole calls. */
async function startStsProxy(target: string): Promise<{ endpoint: string; assumeCalls: () => number; fault: { status: number; code: string } | undefined; set(f?: { status: number; code: string }): void; close(): Promise<void> }> {
  const t = new URL(target);
  let calls = 0;
  const state = {
    fault: undefined as { status: number; code: string } | undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const isAssume = /(^|&)Action=AssumeRole(&|$)/.test(body.toString());
      if (isAssume) calls++;
      if (isAssume && state.fault) {
        const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${state.fault.code}</Code><Message>injected ${state.fault.code}</Message></Error><RequestId>fault</RequestId></ErrorResponse>`;
        res.writeHead(state.fault.status, { "content-type": "text/xml" });
        res.end(xml);
        return;
      }
      const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on("error", () => res.writeHead(502).end());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    assumeCalls: () => calls,
    get fault() {
      return state.fault;
    },
    set: (f) => (state.fault = f),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("aws.sts store and assume_role (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let proxy: Awaited<ReturnType<typeof startStsProxy>>;
  // Moto dates credentials by the system time: each test starts its manual clock there.
  let clock = new ManualClock(Date.now());
  beforeEach(() => (clock = new ManualClock(Date.now())));
  /** Every credential value handed out by a test, searched for in messages. */
  const seen: string[] = [];

  const sts = (extra: Record<string, unknown> = {}, endpoint = proxy.endpoint) =>
    new AwsStsStore(
      "temp-role",
      storeSettingsSchemas["aws.sts"].parse({ type: "aws.sts", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", assume_role: ROLE, role_session_name: "dsops-test", ...extra }),
      { configDir: tmpdir(), clock, env: {} },
    );

  before(async () => {
    moto = await startMoto();
    proxy = await startStsProxy(moto.endpoint);
    // The role is created first (in its own account, through moto's IAM).
    const iam = new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    const trust = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { AWS: "*" }, Action: "sts:AssumeRole" }] });
    await iam.send(new CreateRoleCommand({ RoleName: "deploy", AssumeRolePolicyDocument: trust }));
    iam.destroy();
  });
  after(async () => {
    await proxy?.close();
    await moto?.stop();
  });

  it("hands out each component of one AssumeRole, cached until shortly before expiry", async () => {
    const store = sts({ duration: 900, external_id: "ext-1" });
    try {
      const before = proxy.assumeCalls();
      const akid = (await store.get({ key: "access_key_id" })).value.reveal();
      const secret = (await store.get({ key: "secret_access_key" })).value.reveal();
      const token = (await store.get({ key: "session_token" })).value.reveal();
      const exp = (await store.get({ key: "expiration" })).value.reveal();
      const all = JSON.parse((await store.get({ key: "credentials" })).value.reveal()) as Record<string, string>;
      const arn = (await store.get({ key: "assumed_role_arn" })).value.reveal();
      seen.push(secret, token);
      assert.equal(proxy.assumeCalls() - before, 1, "one AssumeRole serves every key");
      assert.match(akid, /^ASIA/);
      assert.ok(secret.length > 10 && token.length > 10);
      assert.deepEqual(all, { AccessKeyId: akid, SecretAccessKey: secret, SessionToken: token, Expiration: exp });
      assert.match(arn, /assumed-role\/deploy\/dsops-test/);
      // dsops's other spellings of the same components
      assert.equal((await store.get({ key: "AWS_ACCESS_KEY_ID" })).value.reveal(), akid);
      assert.equal((await store.get({ key: "SessionToken" })).value.reveal(), token);
      const described = await store.describe({ key: "access_key_id" });
      assert.equal(described.versionId, exp);

      // Still valid (6 minutes before expiry by the store's clock): cached.
      const expiry = Date.parse(exp);
      clock.advance(expiry - REFRESH_MARGIN_MS - 60_000 - clock.now());
      assert.equal((await store.get({ key: "access_key_id" })).value.reveal(), akid);
      assert.equal(proxy.assumeCalls() - before, 1);
      // Within 5 minutes of expiry: a new AssumeRole, new credentials.
      clock.advance(2 * 60_000);
      const akid2 = (await store.get({ key: "access_key_id" })).value.reveal();
      assert.equal(proxy.assumeCalls() - before, 2);
      assert.notEqual(akid2, akid);
    } finally {
      await store.close();
    }
  });

  it("concurrent reads of a new store share one AssumeRole", async () => {
    const store = sts();
    try {
      const before = proxy.assumeCalls();
      const got = await Promise.all(["access_key_id", "secret_access_key", "session_token", "credentials", "expiration"].map((key) => store.get({ key })));
      assert.equal(proxy.assumeCalls() - before, 1);
      const all = JSON.parse(got[3].value.reveal()) as Record<string, string>;
      assert.equal(all.AccessKeyId, got[0].value.reveal());
      seen.push(all.SecretAccessKey, all.SessionToken);
    } finally {
      await store.close();
    }
  });

  it("an unknown key is NotFoundError naming the store, the key and the valid keys, without calling STS", async () => {
    const store = sts();
    const before = proxy.assumeCalls();
    await assert.rejects(store.get({ key: "password" }), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.match((e as Error).message, /store "temp-role": key "password" names no credential component \(keys: access_key_id, secret_access_key, session_token, expiration, credentials/);
      return true;
    });
    assert.equal(proxy.assumeCalls(), before);
    await store.close();
  });

  it("is read-only: a write is refused with the reason", async () => {
    const store = sts();
    assert.equal(store.capabilities.write, false);
    await assert.rejects(store.put(), (e: unknown) => {
      assert.ok(e instanceof DsopsError);
      assert.equal((e as Error).message, 'store "temp-role" (aws.sts) is read-only: it hands out temporary credentials, which cannot be written');
      return true;
    });
    await store.close();
  });

  it("AccessDenied on AssumeRole is an AuthError naming the store, the role and the cause", async () => {
    const store = sts();
    proxy.set({ status: 403, code: "AccessDenied" });
    try {
      await assert.rejects(store.get({ key: "access_key_id" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /^store "temp-role": access refused while assuming role "arn:aws:iam::111111111111:role\/deploy": AccessDenied \(HTTP 403\)/);
        return true;
      });
    } finally {
      proxy.set(undefined);
      await store.close();
    }
  });

  it("throttling of AssumeRole is a retryable StoreError; a failure is not cached", async () => {
    const store = sts();
    proxy.set({ status: 400, code: "Throttling" });
    try {
      await assert.rejects(store.get({ key: "session_token" }), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.retryable, String(e));
        assert.match((e as Error).message, /^store "temp-role": assuming role "arn:aws:iam::111111111111:role\/deploy" failed: Throttling/);
        return true;
      });
      proxy.set(undefined);
      const v = await store.get({ key: "session_token" });
      seen.push(v.value.reveal());
    } finally {
      proxy.set(undefined);
      await store.close();
    }
  });

  it("a 503 from a proxy, a server that never answers and a server that is down are retryable StoreErrors naming the store", async () => {
    const faults = await startFaultProxy(moto.endpoint, { kind: "status", status: 503 });
    const store = sts({}, faults.endpoint);
    try {
      await assert.rejects(store.get({ key: "access_key_id" }), (e: unknown) => e instanceof StoreError && e.retryable && /^store "temp-role": assuming role/.test((e as Error).message));
    } finally {
      await store.close();
      await faults.close();
    }
    const hang = await startFaultProxy(moto.endpoint, { kind: "hang" });
    const slow = sts({ timeout_ms: 300 }, hang.endpoint);
    try {
      await assert.rejects(slow.get({ key: "access_key_id" }), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.retryable, String(e));
        assert.match((e as Error).message, /^store "temp-role": assuming role "arn:aws:iam::111111111111:role\/deploy" failed: TimeoutError/);
        return true;
      });
    } finally {
      await slow.close();
      await hang.close();
    }
    const down = sts({}, `http://127.0.0.1:${await freePort()}`);
    await assert.rejects(down.get({ key: "access_key_id" }), (e: unknown) => {
      assert.ok(e instanceof StoreError && e.retryable, String(e));
      assert.match((e as Error).message, /^store "temp-role": assuming role "arn:aws:iam::111111111111:role\/deploy" failed: .*ECONNREFUSED/);
      return true;
    });
    await down.close();
  });

  it("MFA: mfa_serial_number needs mfa_token_code; with both, the code goes to AssumeRole", async () => {
    assert.throws(() => sts({ mfa_serial_number: "arn:aws:iam::111111111111:mfa/alice" }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal((e as Error).message, 'store "temp-role": mfa_serial_number needs mfa_token_code (the current code of the device)');
      return true;
    });
    const store = sts({ mfa_serial_number: "arn:aws:iam::111111111111:mfa/alice", mfa_token_code: "123456", session_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}' });
    assert.match((await store.get({ key: "access_key_id" })).value.reveal(), /^ASIA/);
    await store.close();
    assert.throws(() => sts({ assume_role: "deploy" }), /store "temp-role": assume_role is not a role ARN: deploy/);
  });

  it("assume_role on aws.ssm: the store reads with the role's credentials (the role's account), renewed when they expire", async () => {
    // What the role's account holds, written with the role's own credentials.
    const direct = new STSClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    const c = (await direct.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: "seed" }))).Credentials!;
    direct.destroy();
    const inRole = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! }, maxAttempts: 1 });
    await inRole.send(new PutParameterCommand({ Name: "/role/only", Value: "in-role-account", Type: "SecureString" }));
    inRole.destroy();

    const ctx = { configDir: tmpdir(), clock, env: {} };
    const base = { type: "aws.ssm" as const, endpoint: proxy.endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", with_decryption: true };
    const plain = new AwsSsmStore("ssm", base, ctx);
    await assert.rejects(plain.get({ key: "/role/only" }), NotFoundError, "without assume_role the parameter of the role's account is not visible");
    await plain.close();

    const store = new AwsSsmStore("ssm", { ...base, assume_role: ROLE, duration: 900 }, ctx);
    try {
      const before = proxy.assumeCalls();
      assert.equal((await store.get({ key: "/role/only" })).value.reveal(), "in-role-account");
      assert.equal((await store.get({ key: "/role/only" })).value.reveal(), "in-role-account");
      assert.equal(proxy.assumeCalls() - before, 1, "the role is assumed once");
      // The clock passes the credentials' expiry: the next call assumes the role again.
      clock.advance(3600_000);
      assert.equal((await store.get({ key: "/role/only" })).value.reveal(), "in-role-account");
      // (moto dates the new credentials by the system time, already past by this clock: so
      // they are renewed at each request from now on; at least once is what is checked.)
      assert.ok(proxy.assumeCalls() - before >= 2, "the role is assumed again after its credentials expired");
      proxy.set({ status: 403, code: "AccessDenied" });
      clock.advance(3600_000);
      await assert.rejects(store.get({ key: "/role/only" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /^store "ssm": access refused while assuming role "arn:aws:iam::111111111111:role\/deploy"/);
        return true;
      });
    } finally {
      proxy.set(undefined);
      await store.close();
    }
    assert.throws(() => new AwsSsmStore("ssm", { ...base, external_id: "x" }, ctx), /store "ssm": external_id needs assume_role/);
  });

  it("dsops's aws.sts and aws.sso shapes (duration, external_id, MFA, session policy; start_url + region) plan", () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-sts-plan-"));
    try {
      writeFileSync(
        join(dir, "dsops.yaml"),
        [
          "providers:",
          "  secure-role:",
          "    type: aws.sts",
          "    assume_role: arn:aws:iam::123456789012:role/SecureAdminRole",
          "    mfa_serial_number: arn:aws:iam::123456789012:mfa/alice",
          '    mfa_token_code: "123456"',
          "    duration: 900",
          "    external_id: ext",
          "    session_policy: |",
          '      {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}',
          "  sso-dev:",
          "    type: aws.sso",
          "    start_url: https://my-company.awsapps.com/start",
          '    account_id: "123456789012"',
          "    role_name: DeveloperAccess",
          "    region: us-east-1",
          "envs:",
          "  deployment:",
          "    K: { from: secure-role:access_key_id }",
          "    ARN: { from: secure-role:assumed_role_arn }",
          "    S: { from: sso-dev:credentials }",
          "",
        ].join("\n"),
      );
      const r = dsops(["plan", "--env", "deployment"], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /secure-role/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("assume_role: credentials the service refuses as expired before their time are dropped, and the next call assumes the role again", async () => {
    // store → a proxy answering SSM calls with chosen errors → the AssumeRole-counting proxy → moto
    const faults = await startAwsProxy(proxy.endpoint);
    const name = "/role/expired-early";
    const direct = new STSClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    const c = (await direct.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: "seed" }))).Credentials!;
    direct.destroy();
    const inRole = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! }, maxAttempts: 1 });
    await inRole.send(new PutParameterCommand({ Name: name, Value: "still-here", Type: "SecureString" }));
    inRole.destroy();
    const store = new AwsSsmStore(
      "ssm",
      { type: "aws.ssm", endpoint: faults.endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", with_decryption: true, assume_role: ROLE },
      { configDir: tmpdir(), clock, env: {} },
    );
    try {
      const before = proxy.assumeCalls();
      assert.equal((await store.get({ key: name })).value.reveal(), "still-here");
      faults.fail("GetParameter", { status: 400, type: "ExpiredTokenException", message: "The security token included in the request is expired" }, 1);
      await assert.rejects(store.get({ key: name }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /^store "ssm": access refused while reading parameter "\/role\/expired-early.*ExpiredTokenException/);
        return true;
      });
      assert.equal(proxy.assumeCalls() - before, 1);
      assert.equal((await store.get({ key: name })).value.reveal(), "still-here");
      assert.equal(proxy.assumeCalls() - before, 2, "the refused credentials were dropped");
    } finally {
      await store.close();
      await faults.close();
    }
  });

  it("through the CLI: the shorthand temp-role:access_key_id and store://temp-role/credentials; no secret in the output of a failure", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-sts-"));
    try {
      writeFileSync(
        join(dir, "dsops.yaml"),
        [
          "secretStores:",
          "  temp-role:",
          "    type: aws.sts",
          `    assume_role: ${ROLE}`,
          "    role_session_name: dsops-cli",
          "    duration: 3600",
          "    region: us-east-1",
          `    endpoint: ${moto.endpoint}`,
          "    access_key_id: test",
          "    secret_access_key: test",
          "envs:",
          "  dev:",
          "    AWS_ACCESS_KEY_ID: { from: temp-role:access_key_id }",
          '    CREDS: { from: "store://temp-role/credentials" }',
          "    BAD: { from: temp-role:nope, optional: true }",
          "",
        ].join("\n"),
      );
      const r = dsops(["get", "--env", "dev", "--var", "AWS_ACCESS_KEY_ID"], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout.trim(), /^ASIA[A-Z0-9]+$/);
      const j = dsops(["get", "--env", "dev", "--var", "CREDS"], { cwd: dir });
      assert.equal(j.status, 0, j.stderr);
      const creds = JSON.parse(j.stdout) as Record<string, string>;
      assert.deepEqual(Object.keys(creds), ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]);
      const denied = await startStsProxy(moto.endpoint);
      denied.set({ status: 403, code: "AccessDenied" });
      try {
        writeFileSync(join(dir, "dsops.yaml"), readFileSync(join(dir, "dsops.yaml"), "utf8").replace(moto.endpoint, denied.endpoint));
        const g = await dsopsRun(["get", "--env", "dev", "--var", "AWS_ACCESS_KEY_ID"], { cwd: dir });
        assert.equal(g.status, 1, g.stderr);
        assert.match(g.stderr, /store "temp-role": access refused while assuming role "arn:aws:iam::111111111111:role\/deploy": AccessDenied/);
        for (const v of [...seen, creds.SecretAccessKey, creds.SessionToken]) assert.ok(!g.stderr.includes(v) && !g.stdout.includes(v), "a secret in the output");
      } finally {
        await denied.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
