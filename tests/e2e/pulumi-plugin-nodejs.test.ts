import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { pulumiBinDir, PulumiProject } from "../support/pulumi";

/**
 * A TypeScript/JavaScript program can use either host: the dynamic SecretReference of
 * @dsops/pulumi (no plugin) and the plugin's `dsops:index:SecretReference` (bin/pulumi-resource-dsops
 * on PATH, declared with pulumi.CustomResource and the schema's token) side by side in one program,
 * through the real Pulumi CLI and Node.js language host, on the embedded file store.
 */
const ROOT = join(__dirname, "..", "..", "..");

const program = `const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
// The dynamic resource: no plugin; its provider code is serialized into the state.
const dynamic = new dsops.SecretReference("dynamic", { ref: "store://local/app/token" });
// The plugin's resource: the schema's type token; outputs declared so they come back.
const plugin = new pulumi.CustomResource("dsops:index:SecretReference", "plugin",
  { ref: "store://local/app/token", value: undefined, versionId: undefined }, { additionalSecretOutputs: ["value"] });
module.exports = { dynamic: dynamic.value, plugin: plugin.value, pluginVersion: plugin.versionId };
`;

describe("TypeScript/JavaScript: the dynamic resources and the dsops plugin in one program", function () {
  this.timeout(300000);
  const projects: PulumiProject[] = [];
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  after(() => projects.forEach((p) => p.cleanup()));

  it("both resolve the same secret; state holds a pulumi-nodejs:dynamic resource with its serialized provider and a dsops:index resource of the pulumi:providers:dsops provider; no plaintext", async () => {
    assert.ok(existsSync(join(ROOT, "dist", "provider", "plugin", "main.js")), "build first: dist/provider/plugin/main.js is missing");
    const PATH = `${join(ROOT, "bin")}:${dirname(process.execPath)}:${pulumiBinDir()}:${process.env.PATH}`;
    const project = new PulumiProject("dsops-both", program, { DSOPS_FILE_KEY: FILE_KEY, PATH });
    projects.push(project);
    project.write("dsops.yaml", "secretStores:\n  local: { type: file, path: ./secrets.store }\n");
    const value = `both-${randomBytes(12).toString("base64url")}`;
    await new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.now()), env: { DSOPS_FILE_KEY: FILE_KEY } }).put("app/token", new Secret(value));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    const up = project.ok(["up", "--yes", "--skip-preview"]);
    assert.match(up.stdout, /\+ 3 created/, up.stdout);
    const outs = project.secretOutputs();
    assert.equal(outs.dynamic, value);
    assert.equal(outs.plugin, value);
    assert.equal(outs.pluginVersion, "1");
    const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; provider?: string; inputs?: Record<string, unknown> }> } };
    const byName = (n: string) => state.deployment.resources.find((r) => r.urn.endsWith(`::${n}`));
    assert.equal(byName("dynamic")?.type, "pulumi-nodejs:dynamic/dsops:SecretReference");
    assert.equal(typeof byName("dynamic")?.inputs?.__provider, "string", "the dynamic provider's code is serialized into the state");
    assert.equal(byName("plugin")?.type, "dsops:index:SecretReference");
    assert.match(String(byName("plugin")?.provider), /::pulumi:providers:dsops::default/);
    assert.equal(byName("plugin")?.inputs?.__provider, undefined, "no code in the plugin resource's state");
    assert.deepEqual(project.previewSummary(), { same: 3 });
    project.ok(["destroy", "--yes", "--skip-preview"]);
    project.assertNoLeak([value]);
  });
});
