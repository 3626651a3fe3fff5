// moto has no SSO portal (only sso-admin): these tests run a local server speaking the SSO portal API (GetRoleCredentials: GET /federation/credentials, x-amz-sso_bearer_token) and the SSO OIDC API (CreateToken: POST /token) to the real @aws-sdk/client-sso and @aws-sdk/client-sso-oidc clients; the token cache and ~/.aws/config are real files in a temp HOME.
import { strict as assert } from "node:assert";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { AuthError, ConfigError, NotFoundError, StoreError } from "../../provider/core/errors";
import { AwsSsoStore } from "../../provider/stores/aws-sso";
import { REFRESH_MARGIN_MS } from "../../provider/stores/aws-credentials";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { dsopsRun } from "../support/cli";
import { freePort } from "../support/server";
import { SsoPortal, SSO_ACCOUNT as ACCOUNT, SSO_ROLE as ROLE } from "../support/sso-portal";

const START_URL = "https://corp.awsapps.com/start";

describe("aws.sso store (local SSO portal server, real token cache files)", function () {
  this.timeout(60000);
  let clock = new ManualClock(Date.parse("2026-11-30T12:00:00Z"));
  const portal = new SsoPortal(() => clock);
  let home: string;

  /** Write the token `aws sso login` would cache for `key` (an sso-session name or a start URL). */
  function login(key: string, expiresInMs: number): string {
    const token = `aoa${randomBytes(24).toString("hex")}`;
    portal.validToken = token;
    const dir = join(home, ".aws", "sso", "cache");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, `${createHash("sha1").update(key).digest("hex")}.json`),
      JSON.stringify({ startUrl: START_URL, region: "eu-west-1", accessToken: token, expiresAt: new Date(clock.now() + expiresInMs).toISOString().replace(/\.\d+Z$/, "Z") }),
    );
    return token;
  }

  /** A login `aws sso login --sso-session` caches: with a client registration and a refresh token. */
  function loginWithRefresh(key: string, expiresInMs: number, registrationExpiresInMs = 90 * 86400_000): { file: string; token: string; refresh: string } {
    const token = login(key, expiresInMs);
    portal.client.secret = `secret-${randomBytes(16).toString("hex")}`;
    portal.refreshToken = `aor${randomBytes(24).toString("hex")}`;
    const file = join(home, ".aws", "sso", "cache", `${createHash("sha1").update(key).digest("hex")}.json`);
    const cached = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    writeFileSync(
      file,
      JSON.stringify({
        ...cached,
        refreshToken: portal.refreshToken,
        clientId: portal.client.id,
        clientSecret: portal.client.secret,
        registrationExpiresAt: new Date(clock.now() + registrationExpiresInMs).toISOString().replace(/\.\d+Z$/, "Z"),
      }),
    );
    return { file, token, refresh: portal.refreshToken };
  }

  const store = (extra: Record<string, unknown>) =>
    new AwsSsoStore("sso-dev", storeSettingsSchemas["aws.sso"].parse({ type: "aws.sso", endpoint: portal.endpoint, ...extra }), { configDir: home, clock, env: { HOME: home } });

  before(async () => {
    await portal.start();
    home = mkdtempSync(join(tmpdir(), "dsops-sso-home-"));
    mkdirSync(join(home, ".aws"), { recursive: true });
    writeFileSync(
      join(home, ".aws", "config"),
      [
        "[profile dev]",
        "sso_session = corp",
        `sso_account_id = ${ACCOUNT}`,
        `sso_role_name = ${ROLE}`,
        "region = eu-west-1",
        "",
        "[sso-session corp]",
        `sso_start_url = ${START_URL}`,
        "sso_region = eu-west-1",
        "sso_registration_scopes = sso:account:access",
        "",
        "[profile legacy]",
        `sso_start_url = ${START_URL}`,
        "sso_region = eu-west-1",
        `sso_account_id = ${ACCOUNT}`,
        `sso_role_name = ${ROLE}`,
        "",
      ].join("\n"),
    );
  });
  beforeEach(() => {
    clock = new ManualClock(Date.parse("2026-11-30T12:00:00Z"));
    portal.fault = undefined;
  });
  after(async () => {
    await portal.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("a profile with an sso-session: role credentials by component, cached until shortly before they expire", async () => {
    login("corp", 8 * 3600_000);
    const s = store({ profile: "dev" });
    try {
      const before = portal.calls;
      const akid = (await s.get({ key: "access_key_id" })).value.reveal();
      const all = JSON.parse((await s.get({ key: "credentials" })).value.reveal()) as Record<string, string>;
      assert.equal(portal.calls - before, 1);
      assert.equal(all.AccessKeyId, akid);
      assert.equal((await s.get({ key: "secret_access_key" })).value.reveal(), all.SecretAccessKey);
      assert.equal((await s.get({ key: "session_token" })).value.reveal(), all.SessionToken);
      assert.equal((await s.get({ key: "expiration" })).value.reveal(), "2026-11-30T13:00:00.000Z");
      clock.advance(3600_000 - REFRESH_MARGIN_MS - 1000);
      await s.get({ key: "access_key_id" });
      assert.equal(portal.calls - before, 1, "still cached");
      clock.advance(2000);
      assert.notEqual((await s.get({ key: "access_key_id" })).value.reveal(), akid);
      assert.equal(portal.calls - before, 2, "fetched again within 5 minutes of expiry");
      await assert.rejects(s.get({ key: "nope" }), NotFoundError);
    } finally {
      await s.close();
    }
  });

  it("a legacy profile (start URL in the profile: the cache file is keyed by the URL), and explicit settings", async () => {
    login(START_URL, 3600_000);
    const legacy = store({ profile: "legacy" });
    assert.match((await legacy.get({ key: "access_key_id" })).value.reveal(), /^ASIA/);
    await legacy.close();
    const explicit = store({ sso_start_url: START_URL, sso_region: "eu-west-1", account_id: ACCOUNT, role_name: ROLE });
    assert.match((await explicit.get({ key: "access_key_id" })).value.reveal(), /^ASIA/);
    await explicit.close();
    // dsops's example shape: start_url (renamed by the loader) and region standing for sso_region
    const dsopsShape = store({ sso_start_url: START_URL, region: "eu-west-1", account_id: ACCOUNT, role_name: ROLE });
    assert.match((await dsopsShape.get({ key: "access_key_id" })).value.reveal(), /^ASIA/);
    await dsopsShape.close();
  });

  it("an expired login is an AuthError with the exact hint; no call is made", async () => {
    login("corp", 60_000);
    const s = store({ profile: "dev" });
    clock.advance(120_000);
    const before = portal.calls;
    await assert.rejects(s.get({ key: "access_key_id" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.equal((e as Error).message, `store "sso-dev": the SSO session of ${START_URL} expired at 2026-11-30T12:01:00.000Z; log in again: aws sso login --profile dev`);
      assert.equal((e as AuthError).hint, "log in again: aws sso login --profile dev");
      return true;
    });
    assert.equal(portal.calls, before);
    await s.close();
  });

  it("a token within 5 minutes of expiry is refreshed (SSO OIDC CreateToken) and written back to the cache, as the AWS CLI does", async () => {
    const { file, token, refresh } = loginWithRefresh("corp", 2 * 60_000);
    const s = store({ profile: "dev" });
    try {
      const calls = portal.refreshCalls;
      assert.match((await s.get({ key: "access_key_id" })).value.reveal(), /^ASIA/);
      assert.equal(portal.refreshCalls - calls, 1);
      const cached = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
      assert.notEqual(cached.accessToken, token);
      assert.equal(cached.accessToken, portal.validToken, "the new token is in the cache file");
      assert.notEqual(cached.refreshToken, refresh);
      assert.equal(cached.refreshToken, portal.refreshToken);
      assert.equal(cached.expiresAt, "2026-11-30T20:00:00Z");
      assert.equal(cached.clientSecret, portal.client.secret, "the registration is kept");
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      await s.close();
    }
  });

  it("a refused refresh (revoked refresh token) is an AuthError saying how to log in; the cache file is left as it was; an expired registration is not refreshed", async () => {
    const { file } = loginWithRefresh("corp", 60_000);
    portal.refreshToken = "revoked";
    const before = readFileSync(file, "utf8");
    const s = store({ profile: "dev" });
    clock.advance(120_000);
    try {
      await assert.rejects(s.get({ key: "access_key_id" }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.equal((e as Error).message, `store "sso-dev": the SSO session of ${START_URL} could not be refreshed (InvalidGrantException); log in again: aws sso login --profile dev`);
        return true;
      });
      assert.equal(readFileSync(file, "utf8"), before);
    } finally {
      await s.close();
    }
    loginWithRefresh("corp", 60_000, 30_000);
    const calls = portal.refreshCalls;
    const s2 = store({ profile: "dev" });
    clock.advance(120_000);
    try {
      await assert.rejects(s2.get({ key: "access_key_id" }), /expired at .*; log in again: aws sso login --profile dev$/);
      assert.equal(portal.refreshCalls, calls, "no refresh with an expired client registration");
    } finally {
      await s2.close();
    }
  });

  it("no cached login, a token the portal refuses, throttling, a server that is down: errors naming the store and cause, never a value", async () => {
    rmSync(join(home, ".aws", "sso", "cache"), { recursive: true, force: true });
    const s = store({ profile: "dev" });
    await assert.rejects(s.get({ key: "access_key_id" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /^store "sso-dev": no SSO token cached for https:\/\/corp\.awsapps\.com\/start \(.*[\\/]\.aws[\\/]sso[\\/]cache[\\/][0-9a-f]{40}\.json\); log in again: aws sso login --profile dev$/);
      assert.equal((e as AuthError).hint, "log in again: aws sso login --profile dev");
      return true;
    });
    const token = login("corp", 3600_000);
    portal.validToken = "another";
    const msgs: string[] = [];
    await assert.rejects(s.get({ key: "access_key_id" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /^store "sso-dev": the SSO session of https:\/\/corp\.awsapps\.com\/start was refused \(.*UnauthorizedException \(HTTP 401\).*\); log in again: aws sso login --profile dev$/);
      assert.equal((e as AuthError).hint, "log in again: aws sso login --profile dev");
      msgs.push((e as Error).message);
      return true;
    });
    portal.fault = { status: 429, type: "TooManyRequestsException" };
    await assert.rejects(s.get({ key: "access_key_id" }), (e: unknown) => {
      assert.ok(e instanceof StoreError && e.retryable, String(e));
      assert.match((e as Error).message, /^store "sso-dev": getting SSO credentials of role "Developer" of account 123456789012 failed: TooManyRequestsException \(HTTP 429\)/);
      msgs.push((e as Error).message);
      return true;
    });
    await s.close();
    const down = new AwsSsoStore("sso-dev", storeSettingsSchemas["aws.sso"].parse({ type: "aws.sso", profile: "dev", endpoint: `http://127.0.0.1:${await freePort()}` }), { configDir: home, clock, env: { HOME: home } });
    await assert.rejects(down.get({ key: "access_key_id" }), (e: unknown) => e instanceof StoreError && e.retryable && /ECONNREFUSED/.test((e as Error).message));
    await down.close();
    for (const m of msgs) for (const v of [token, ...portal.issued]) assert.ok(!m.includes(v), "a secret in an error");
  });

  it("settings: a profile missing from ~/.aws/config, and missing fields, are ConfigErrors naming them", () => {
    assert.throws(() => store({ profile: "nope" }), (e: unknown) => e instanceof ConfigError && /store "sso-dev": profile "nope" is not in .*config/.test((e as Error).message));
    assert.throws(() => store({ sso_start_url: START_URL }), (e: unknown) => e instanceof ConfigError && (e as Error).message === 'store "sso-dev": missing sso_region, account_id, role_name');
  });

  it("through the CLI with HOME pointing at the cache: sso-dev:access_key_id; an expired login exits 1 with the hint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-sso-cli-"));
    try {
      writeFileSync(
        join(dir, "dsops.yaml"),
        ["secretStores:", "  sso-dev:", "    type: aws.sso", "    profile: dev", `    endpoint: ${portal.endpoint}`, "envs:", "  dev:", "    KEY: { from: sso-dev:access_key_id }", ""].join("\n"),
      );
      // The CLI runs on the system clock: the token is dated by it.
      clock = new ManualClock(Date.now());
      login("corp", 3600_000);
      const ok = await dsopsRun(["get", "--env", "dev", "--var", "KEY"], { cwd: dir, env: { HOME: home, AWS_CONFIG_FILE: "" } });
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout.trim(), /^ASIA[0-9A-F]+$/);
      login("corp", -60_000);
      const expired = await dsopsRun(["get", "--env", "dev", "--var", "KEY"], { cwd: dir, env: { HOME: home, AWS_CONFIG_FILE: "" } });
      assert.equal(expired.status, 1, expired.stderr);
      assert.match(expired.stderr, /store "sso-dev": the SSO session of https:\/\/corp\.awsapps\.com\/start expired at /);
      assert.match(expired.stderr, /aws sso login --profile dev/);
      for (const v of portal.issued) assert.ok(!expired.stderr.includes(v) && !ok.stderr.includes(v));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
