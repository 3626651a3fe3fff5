// Local servers (tests/support/{doppler,infisical,akeyless,gcp-secretmanager}-server.ts, in a child process) speaking Doppler's REST API v3, Infisical's REST API, Akeyless's V2 API and the Secret Manager gRPC protocol to the stores' real clients (@infisical/sdk, akeyless, @google-cloud/secret-manager) inside a real `pulumi up`: no such servers can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { configFromObject } from "../../provider/compose/config";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { createStore } from "../../provider/stores/registry";
import type { Store } from "../../provider/stores/types";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";
import { startSaasServersProcess, type SaasServersProcess } from "../support/saas-servers-process";

const DOPPLER_TOKEN = `dp.pt.${randomBytes(12).toString("hex")}`;
const INFISICAL_CLIENT = "ua-client-e2e";
const INFISICAL_SECRET = `ua-secret-${randomBytes(12).toString("hex")}`;
const INFISICAL_PROJECT = "7a2d-proj-e2e";
const AKEYLESS_ID = "p-dsopse2e1";
const AKEYLESS_KEY = `ak-${randomBytes(16).toString("base64url")}`;
const GCP_PROJECT = "dsops-e2e";
const CREDENTIALS = [DOPPLER_TOKEN, INFISICAL_SECRET, AKEYLESS_KEY];

const KEYS = { dp: "DB_PASSWORD", inf: "API_TOKEN", ak: "/dsops/app/signing-key", gcp: "sm:webhook-secret" } as const;
type Name = keyof typeof KEYS;
const NAMES = Object.keys(KEYS) as Name[];

const PROGRAM = `"use strict";
const dsops = require("@dsops/pulumi");
const refs = {};
for (const [name, key] of Object.entries(${JSON.stringify(KEYS)})) refs[name] = new dsops.SecretReference(name, { ref: "store://" + name + "/" + key });
const env = new dsops.Environment("env", { configFile: "dsops.yaml", env: "app" });
for (const [name, ref] of Object.entries(refs)) {
  exports[name] = ref.value;
  exports[name + "Type"] = ref.storeType;
}
exports.variables = env.variables;
`;

function value(tag: string): string {
  return `e2e-${tag}-${randomBytes(9).toString("base64url")}`;
}

describe("Pulumi end to end: doppler, infisical, akeyless and gcp through SecretReference and Environment", function () {
  this.timeout(600000);
  let srv: SaasServersProcess;
  let project: PulumiProject | undefined;
  const stores = {} as Record<Name, Store>;
  const used: string[] = [...CREDENTIALS];

  before(async () => {
    pulumiBinDir();
    srv = await startSaasServersProcess({
      doppler: { projects: { backend: ["prd"] }, tokens: { [DOPPLER_TOKEN]: { kind: "personal" } } },
      infisical: { projects: { [INFISICAL_PROJECT]: ["prod"] }, identities: [{ clientId: INFISICAL_CLIENT, clientSecret: INFISICAL_SECRET, projects: [INFISICAL_PROJECT] }] },
      akeyless: { accessKeys: [{ accessId: AKEYLESS_ID, accessKey: AKEYLESS_KEY, prefix: "/dsops/" }] },
      gcp: { projects: [GCP_PROJECT] },
    });
  });
  after(async () => {
    for (const s of Object.values(stores)) await s.close?.();
    await srv?.stop();
    project?.cleanup();
  });

  it("up resolves one reference per store and an env reading all four; values stay out of state and output; a store change is drift on preview", async () => {
    const settings: Record<Name, Record<string, unknown>> = {
      dp: { type: "doppler", token: DOPPLER_TOKEN, project: "backend", config: "prd", api_url: srv.dopplerUrl },
      inf: {
        type: "infisical",
        project_id: INFISICAL_PROJECT,
        environment: "prod",
        site_url: srv.infisicalUrl,
        auth: { method: "universal_auth", client_id: INFISICAL_CLIENT, client_secret: INFISICAL_SECRET },
      },
      ak: { type: "akeyless", access_id: AKEYLESS_ID, gateway_url: srv.akeylessUrl, auth: { method: "api_key", access_key: AKEYLESS_KEY } },
      gcp: { type: "gcp", project_id: GCP_PROJECT, endpoint: "127.0.0.1", port: srv.gcpPort, insecure: true },
    };
    project = new PulumiProject("dsops-saas-gcp", PROGRAM);
    const envLines = NAMES.map((n) => `    ${n.toUpperCase()}: { from: "store://${n}/${KEYS[n]}" }`).join("\n");
    project.write("dsops.yaml", `secretStores:\n${NAMES.map((n) => `  ${n}: ${JSON.stringify(settings[n])}`).join("\n")}\nenvs:\n  app:\n${envLines}\n`);
    // Seed and change the stores through the wire, with the stores' own clients.
    const cfg = configFromObject({ secretStores: settings });
    for (const n of NAMES) stores[n] = createStore(n, cfg.stores[n], { configDir: project.dir, clock: new ManualClock(Date.now()), env: {} });
    const putAll = async (tag: string): Promise<Record<Name, string>> => {
      const vals = {} as Record<Name, string>;
      for (const n of NAMES) {
        vals[n] = value(`${tag}-${n}`);
        used.push(vals[n]);
        await stores[n].put!(KEYS[n], new Secret(vals[n]));
      }
      return vals;
    };
    const v1 = await putAll("v1");

    project.ok(["stack", "init", "saas"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["up", "--yes", "--skip-preview"]);

    const out = project.secretOutputs();
    for (const n of NAMES) assert.equal(out[n], v1[n], `the ${n} reference's value`);
    assert.deepEqual(out.variables, { AK: v1.ak, DP: v1.dp, GCP: v1.gcp, INF: v1.inf });
    const shown = project.outputs();
    assert.deepEqual(
      NAMES.map((n) => [shown[n], shown[`${n}Type`]]),
      [
        ["[secret]", "doppler"],
        ["[secret]", "infisical"],
        ["[secret]", "akeyless"],
        ["[secret]", "gcp"],
      ],
    );
    assert.deepEqual(project.previewSummary(), { same: 6 }, "nothing changed: the stack, four references and the env are the same");

    const v2 = await putAll("v2");
    assert.deepEqual(project.previewSummary(), { same: 1, update: 5 }, "each reference and the env drifted");

    const exported = project.ok(["stack", "export"]).stdout;
    for (const v of [...used, ...Object.values(v2)]) assert.ok(!exported.includes(v), `a value or credential (${v.length} chars) is in plain text in \`pulumi stack export\``);
    project.assertNoLeak(used);
  });
});
