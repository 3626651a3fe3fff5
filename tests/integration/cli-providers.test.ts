import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeTypeInfo } from "../../provider/cli/capabilities";
import { systemClock } from "../../provider/core/clock";
import { createStore } from "../../provider/stores/registry";
import { plannedStoreTypes, storeSettingsSchemas, storeTypes, type StoreSettings, type StoreType } from "../../provider/stores/settings";
import { dsops } from "../support/cli";

/**
 * Settings that construct each store type without connecting anywhere (clients connect on
 * their first call; no call is made here).
 */
const DUMMY: { [T in StoreType]: Record<string, unknown> } = {
  literal: {},
  env: {},
  mock: {},
  json: { data: "{}" },
  file: { path: "./unused.store" },
  "aws.secretsmanager": { region: "us-east-1", access_key_id: "x", secret_access_key: "y" },
  "aws.ssm": { region: "us-east-1", access_key_id: "x", secret_access_key: "y" },
  "aws.sts": { region: "us-east-1", access_key_id: "x", secret_access_key: "y", assume_role: "arn:aws:iam::123456789012:role/probe" },
  "aws.sso": { sso_start_url: "https://example.awsapps.com/start", sso_region: "us-east-1", account_id: "123456789012", role_name: "probe" },
  aws: { region: "us-east-1", access_key_id: "x", secret_access_key: "y" },
  vault: { address: "http://127.0.0.1:1", token: "t" },
  "gcp.secretmanager": { project_id: "p", endpoint: "127.0.0.1:1", insecure: true },
  gcp: { project_id: "p", endpoint: "127.0.0.1:1", insecure: true },
  "azure.keyvault": { vault_url: "https://unused.vault.azure.net/", tenant_id: "t", client_id: "c", client_secret: "s" },
  "azure.identity": { tenant_id: "t", client_id: "c", client_secret: "s" },
  azure: { tenant_id: "t", client_id: "c", client_secret: "s", keyvault: { vault_url: "https://unused.vault.azure.net/" } },
  doppler: { token: "dp.st.x", api_url: "http://127.0.0.1:1" },
  infisical: { project_id: "p", environment: "dev", site_url: "http://127.0.0.1:1", auth: { client_id: "i", client_secret: "s" } },
  akeyless: { access_id: "p-x", gateway_url: "http://127.0.0.1:1", auth: { access_key: "k" } },
  onepassword: { connect_host: "http://127.0.0.1:1", connect_token: "t" },
  keepassxc: { database: "./unused.kdbx", password: "p" },
  lastpass: {},
  pass: { store_dir: "./unused-password-store" },
  keychain: { service_prefix: "com.example" },
  bitwarden: { cli_path: "/nonexistent/bw" },
  "bitwarden-sm": { access_token: "0.x.y:z", api_url: "http://127.0.0.1:1", identity_url: "http://127.0.0.1:1" },
};

describe("dsops providers (static capabilities, checked against real store instances)", function () {
  this.timeout(60000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "dsops-providers-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const type of storeTypes) {
    it(`the table's capabilities of ${type} are those of a real ${type} store`, async () => {
      const settings = storeSettingsSchemas[type].parse({ type, ...DUMMY[type] }) as StoreSettings;
      const store = createStore("probe", settings, { configDir: dir, clock: systemClock, env: {} });
      try {
        assert.deepEqual(storeTypeInfo[type].capabilities, { staging: false, ...store.capabilities });
        assert.equal(storeTypeInfo[type].check, typeof store.check === "function");
      } finally {
        await store.close?.();
      }
    });
  }

  it("lists every store type with its capabilities, and the planned ones (no config needed)", () => {
    const r = dsops(["providers"], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^TYPE +WRITE +VERSIONS +BATCH +BINARY +STAGING +DOCTOR +DESCRIPTION\n/);
    assert.match(r.stdout, /^file +yes +yes +1000 +no +(yes|no) +check +the embedded store/m);
    assert.match(r.stdout, /^literal +no +no +- +no +no +- +/m);
    assert.match(r.stdout, /^vault +yes +yes\* +- +no +(yes|no) +check /m);
    for (const t of storeTypes) assert.match(r.stdout, new RegExp(`^${t.replace(/\./g, "\\.")} `, "m"));
    assert.match(r.stdout, new RegExp(`Store types not supported yet: ${plannedStoreTypes.join(", ")}\\n`));
    assert.match(r.stdout, /Rotation targets/);
  });

  it("--json gives the same data", () => {
    const r = dsops(["providers", "--json"], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { stores: Array<{ type: string; supported: boolean; capabilities: object }>; planned: Array<{ type: string; supported: boolean }>; targets: unknown[] };
    assert.deepEqual(j.stores.map((s) => s.type), storeTypes);
    assert.deepEqual(j.stores.find((s) => s.type === "aws.secretsmanager")?.capabilities, storeTypeInfo["aws.secretsmanager"].capabilities);
    assert.deepEqual(j.planned, plannedStoreTypes.map((type) => ({ type, supported: false })));
    assert.ok(Array.isArray(j.targets));
  });
});
