// Local servers speaking Google's real protocols (Secret Manager gRPC over TLS, the OAuth 2.0 token endpoint, the IAM Credentials API) to the real @google-cloud/secret-manager and google-auth-library clients, reached under Google's own host names through an HTTP CONNECT proxy: no real Google endpoint can be used here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { systemClock } from "../../provider/core/clock";
import { AuthError } from "../../provider/core/errors";
import { GcpSecretManagerStore } from "../../provider/stores/gcp-secretmanager";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { loginPlan } from "../../provider/cli/commands/login";
import { dsopsRun } from "../support/cli";
import { startGcpSecretManagerServer, type GcpSecretManagerServer, type GoogleFront } from "../support/gcp-secretmanager-server";

const PROJECT = "dsops-test";
const LOCATION = "us-central1";
/** Has a key, and may read secrets itself. */
const APP = "app@dsops-test.iam.gserviceaccount.com";
/** Has a key; may not read secrets, but may act as READER. */
const DEPLOYER = "deployer@dsops-test.iam.gserviceaccount.com";
/** Has a key; may neither read secrets nor act as anyone. */
const OUTSIDER = "outsider@dsops-test.iam.gserviceaccount.com";
/** No key: reached only by impersonation. */
const READER = "reader@dsops-test.iam.gserviceaccount.com";

describe("gcp.secretmanager credentials and locations (service_account_key_path, impersonate_service_account, location)", function () {
  this.timeout(60000);
  let srv: GcpSecretManagerServer;
  let google: GoogleFront;
  let admin: SecretManagerServiceClient;
  let dir: string;
  let home: string;

  const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;
  const value = () => `v-${randomBytes(12).toString("hex")}`;

  async function seed(id: string, v: string, location?: string): Promise<void> {
    const parent = location ? `projects/${PROJECT}/locations/${location}` : `projects/${PROJECT}`;
    const [secret] = await admin.createSecret({ parent, secretId: id, secret: location ? {} : { replication: { automatic: {} } } });
    await admin.addSecretVersion({ parent: secret.name, payload: { data: Buffer.from(v, "utf8") } });
  }

  /** `dsops get` of one variable read from a store with `settings`, in a child process sent to Google's front. */
  async function get(settings: string, key: string) {
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1\nsecretStores:\n  gcp:\n    type: gcp.secretmanager\n    project_id: ${PROJECT}\n${settings}envs:\n  prod:\n    SECRET: { from: "gcp:${key}" }\n`,
    );
    return dsopsRun(["get", "--env", "prod", "--var", "SECRET"], { cwd: dir, env: { ...google.childEnv(), HOME: home } });
  }

  const privateKeyOf = (email: string) => (JSON.parse(readFileSync(google.keyFile(email), "utf8")) as { private_key: string }).private_key;
  /** A few lines of the body of a private key: none may ever be printed. */
  const keyMaterial = (email: string) => privateKeyOf(email).split("\n").slice(1, 4);
  const assertNoKeyMaterial = (out: string) => {
    assert.doesNotMatch(out, /PRIVATE KEY/);
    for (const email of [APP, DEPLOYER, OUTSIDER]) for (const line of keyMaterial(email)) assert.ok(!out.includes(line), "a private key line was printed");
  };

  before(async () => {
    srv = await startGcpSecretManagerServer({
      projects: [PROJECT],
      locations: [LOCATION],
      google: { serviceAccounts: [APP, DEPLOYER, OUTSIDER], readers: [APP, READER], impersonation: { [READER]: [DEPLOYER] } },
    });
    google = srv.google as GoogleFront;
    admin = new SecretManagerServiceClient(srv.clientOptions());
    dir = mkdtempSync(join(tmpdir(), "dsops-gcp-creds-"));
    home = join(dir, "home");
    mkdirSync(join(home, "gcp"), { recursive: true });
    copyFileSync(google.keyFile(APP), join(home, "gcp", "app.json"));
  });
  after(async () => {
    await admin?.close();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("service_account_key_path (~/ is the home folder): the service account's token (JWT-bearer grant at oauth2.googleapis.com) reaches secretmanager.googleapis.com", async () => {
    const id = unique("sa-key");
    const v = value();
    await seed(id, v);
    const before = srv.received.length;
    const r = await get(`    service_account_key_path: ~/gcp/app.json\n`, id);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), v);
    const access = srv.received.slice(before).filter((c) => c.method === "AccessSecretVersion");
    assert.ok(access.length >= 1, JSON.stringify(srv.received.slice(before)));
    for (const c of access) {
      assert.equal(c.principal, APP);
      assert.equal(c.authority.replace(/:\d+$/, ""), "secretmanager.googleapis.com");
      assert.match(c.name ?? "", new RegExp(`^projects/${PROJECT}/secrets/${id}/versions/`));
    }
    assert.ok(google.connects.includes("secretmanager.googleapis.com"), google.connects.join(", "));
    assert.doesNotMatch(r.stderr, /deprecated|does not validate/, "no library warnings");
    assertNoKeyMaterial(r.stdout + r.stderr);
  });

  it("impersonate_service_account: the key's account gets a token for the target from generateAccessToken, and Secret Manager sees the target", async () => {
    const id = unique("impersonated");
    const v = value();
    await seed(id, v);
    const before = srv.received.length;
    const grants = google.impersonations.length;
    const key = google.keyFile(DEPLOYER);
    const r = await get(`    service_account_key_path: ${key}\n    impersonate_service_account: ${READER}\n`, id);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), v);
    assert.deepEqual(google.impersonations.slice(grants), [{ source: DEPLOYER, target: READER, granted: true }]);
    const access = srv.received.slice(before).filter((c) => c.method === "AccessSecretVersion");
    assert.ok(access.length >= 1);
    for (const c of access) assert.equal(c.principal, READER, "Secret Manager must see the impersonated account, not the key's");
    for (const host of ["oauth2.googleapis.com", "iamcredentials.googleapis.com", "secretmanager.googleapis.com"]) assert.ok(google.connects.includes(host), host);
    assert.doesNotMatch(r.stderr, /deprecated|does not validate/, "no library warnings");
    assertNoKeyMaterial(r.stdout + r.stderr);
  });

  it("the key's own account without impersonation is refused by Secret Manager (the test front checks who calls)", async () => {
    const id = unique("not-a-reader");
    await seed(id, value());
    const r = await get(`    service_account_key_path: ${google.keyFile(DEPLOYER)}\n`, id);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`store "gcp": access to secret "${id}" denied \\(PERMISSION_DENIED\\)`));
  });

  it("a refused impersonation is an auth error naming the store, the setting and the account (exit 1, no key material)", async () => {
    const id = unique("refused");
    await seed(id, value());
    const grants = google.impersonations.length;
    const r = await get(`    service_account_key_path: ${google.keyFile(OUTSIDER)}\n    impersonate_service_account: ${READER}\n`, id);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`store "gcp": impersonate_service_account "${READER.replace(/\./g, "\\.")}": the IAM Credentials API refused an access token \\(the source credentials need roles/iam\\.serviceAccountTokenCreator on it\\): Permission 'iam\\.serviceAccounts\\.getAccessToken' denied`));
    assert.deepEqual(google.impersonations.slice(grants), [{ source: OUTSIDER, target: READER, granted: false }]);
    assertNoKeyMaterial(r.stdout + r.stderr);
  });

  it("an IAM Credentials outage (503) is a transient failure: the engine retries it (retries: N), then exit 1 naming the setting", async () => {
    const id = unique("iam-down");
    await seed(id, value());
    const settings = (retries: number) => `    service_account_key_path: ${google.keyFile(DEPLOYER)}\n    impersonate_service_account: ${READER}\n    retries: ${retries}\n`;
    google.failIam(503);
    try {
      let before = google.iamRequests();
      const once = await get(settings(0), id);
      const attempts = google.iamRequests() - before;
      assert.equal(once.status, 1, once.stderr);
      assert.match(once.stderr, new RegExp(`store "gcp": impersonate_service_account "${READER.replace(/\./g, "\\.")}": no access token from the IAM Credentials API \\(UNAVAILABLE\\): The service is currently unavailable\\.`));
      assert.ok(attempts >= 1);
      before = google.iamRequests();
      const twice = await get(settings(1), id);
      assert.equal(twice.status, 1, twice.stderr);
      assert.equal(google.iamRequests() - before, 2 * attempts, "one engine retry repeats the whole token request");
    } finally {
      google.failIam(undefined);
    }
    // Once the service is back, the same settings read the value.
    const ok = await get(settings(0), id);
    assert.equal(ok.status, 0, ok.stderr);
  });

  it("a key the token endpoint refuses (deleted from its account) is an auth error naming the setting and the file", async () => {
    const id = unique("deleted-key");
    await seed(id, value());
    const { generateKeyPairSync } = await import("node:crypto");
    const stale = JSON.parse(readFileSync(google.keyFile(DEPLOYER), "utf8")) as Record<string, string>;
    const newKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const path = join(dir, "stale.json");
    writeFileSync(path, JSON.stringify({ ...stale, private_key: newKey }));
    const r = await get(`    service_account_key_path: ${path}\n    impersonate_service_account: ${READER}\n`, id);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`store "gcp": service_account_key_path "${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}": the token endpoint refused the key \\(invalid_grant`));
    for (const line of newKey.split("\n").slice(1, 4)) assert.ok(!r.stderr.includes(line));
    assertNoKeyMaterial(r.stdout + r.stderr);
  });

  it("location: regional names at secretmanager.<location>.rep.googleapis.com", async () => {
    const id = unique("regional");
    const v = value();
    await seed(id, v, LOCATION);
    const before = srv.received.length;
    const r = await get(`    service_account_key_path: ${google.keyFile(APP)}\n    location: ${LOCATION}\n`, id);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), v);
    const calls = srv.received.slice(before);
    assert.ok(calls.length >= 1);
    for (const c of calls) {
      assert.match(c.name ?? "", new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/secrets/${id}/versions/`));
      assert.equal(c.authority.replace(/:\d+$/, ""), `secretmanager.${LOCATION}.rep.googleapis.com`);
      assert.equal(c.principal, APP);
    }
    assert.ok(google.connects.includes(`secretmanager.${LOCATION}.rep.googleapis.com`));
    // The same secret without location: the global endpoint has no such secret.
    const global = await get(`    service_account_key_path: ${google.keyFile(APP)}\n`, id);
    assert.equal(global.status, 1);
    assert.match(global.stderr, new RegExp(`store "gcp": secret "${id}" not found in project "${PROJECT}"`));
  });

  it("login says which key file and which impersonated account a store signs in with", () => {
    const parse = (x: Record<string, unknown>) => storeSettingsSchemas["gcp.secretmanager"].parse({ type: "gcp.secretmanager", project_id: PROJECT, ...x });
    assert.deepEqual(loginPlan("gcp", parse({ service_account_key_path: "~/gcp/app.json", impersonate_service_account: READER })), {
      nothingToDo: true,
      guidance: `store "gcp" (gcp.secretmanager) uses the key file ~/gcp/app.json, acting as ${READER} (impersonate_service_account); nothing to log in to`,
    });
    const adc = loginPlan("gcp", storeSettingsSchemas.gcp.parse({ type: "gcp", project_id: PROJECT, impersonate_service_account: READER }));
    assert.deepEqual(adc.commands, [{ cli: "gcloud", args: ["auth", "application-default", "login"] }]);
    assert.match(adc.guidance, new RegExp(`^store "gcp" \\(gcp\\) uses Application Default Credentials, acting as ${READER.replace(/\./g, "\\.")} \\(impersonate_service_account\\)\\.\n`));
    assert.match(adc.guidance, /those credentials need roles\/iam\.serviceAccountTokenCreator on /);
  });

  describe("key files that cannot be used: AuthError naming the store and the setting, never the file's content", () => {
    const store = (settings: Record<string, unknown>) =>
      new GcpSecretManagerStore(
        "gcp",
        storeSettingsSchemas["gcp.secretmanager"].parse({ type: "gcp.secretmanager", project_id: PROJECT, endpoint: "127.0.0.1", port: srv.port, ...settings }),
        { configDir: dir, clock: systemClock, env: {} },
      );
    async function refused(settings: Record<string, unknown>, message: RegExp, secretText?: string): Promise<void> {
      const s = store(settings);
      try {
        await assert.rejects(s.get({ key: "anything" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, message);
          if (secretText) assert.ok(!(e as Error).message.includes(secretText) && !String((e as AuthError).hint ?? "").includes(secretText));
          return true;
        });
      } finally {
        await s.close();
      }
    }

    it("a path that cannot be read (relative to the config folder)", async () => {
      await refused({ service_account_key_path: "keys/none.json" }, new RegExp(`^store "gcp": service_account_key_path "${dir}/keys/none\\.json" cannot be read \\(ENOENT\\)$`));
    });

    it("a file that is not JSON: a PEM key pasted instead", async () => {
      const pem = privateKeyOf(APP);
      writeFileSync(join(dir, "pasted.json"), pem);
      await refused({ service_account_key_path: "pasted.json" }, /^store "gcp": service_account_key_path ".*\/pasted\.json" is not a JSON key file \(not valid JSON\)$/, pem.split("\n")[1]);
    });

    it("a service-account key without client_email, and one whose private_key is broken", async () => {
      const key = JSON.parse(readFileSync(google.keyFile(APP), "utf8")) as Record<string, string>;
      writeFileSync(join(dir, "no-email.json"), JSON.stringify({ ...key, client_email: undefined }));
      await refused({ service_account_key_path: "no-email.json" }, /service_account_key_path ".*\/no-email\.json" is a service-account key without "client_email"$/);
      const broken = key.private_key.replace(/[A-Za-z]{20}/, "AAAAAAAAAAAAAAAAAAAA");
      writeFileSync(join(dir, "broken.json"), JSON.stringify({ ...key, private_key: broken }));
      await refused({ credentials_file: "broken.json" }, /^store "gcp": credentials_file ".*\/broken\.json": its "private_key" is not a PEM private key$/, broken.split("\n")[2]);
    });

    it("refused by the settings: both spellings with different files, credentials with insecure, a malformed account", () => {
      const schema = storeSettingsSchemas["gcp.secretmanager"];
      const issues = (x: Record<string, unknown>) => {
        const r = schema.safeParse({ type: "gcp.secretmanager", project_id: PROJECT, ...x });
        assert.ok(!r.success);
        return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
      };
      assert.deepEqual(issues({ credentials_file: "a.json", service_account_key_path: "b.json" }), [
        "service_account_key_path: service_account_key_path and credentials_file are the same setting with different values; keep one",
      ]);
      assert.deepEqual(issues({ endpoint: "127.0.0.1", insecure: true, impersonate_service_account: READER }), [
        "impersonate_service_account: insecure: true sends no credentials; remove insecure or this setting",
      ]);
      assert.deepEqual(issues({ impersonate_service_account: "reader" }), ["impersonate_service_account: expected a service account e-mail (name@project.iam.gserviceaccount.com)"]);
      assert.deepEqual(issues({ location: "US Central" }), ["location: expected a location such as us-central1 or global"]);
    });
  });
});
