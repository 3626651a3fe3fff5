import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { Secret } from "../../provider/core/secret";
import { ManualClock } from "../../provider/core/clock";
import { configFromObject } from "../../provider/compose/config";
import { createStore } from "../../provider/stores/registry";
import { startOpenBao, type OpenBao } from "../support/openbao";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * The provider's configuration through stack config (`dsops:stores`), inline stores whose
 * credentials must stay secret in state, inline Environment configs, and getSecret: real
 * Pulumi CLI, real OpenBao.
 */
describe("Pulumi end to end: provider configuration, inline stores, functions", function () {
  this.timeout(300000);
  let bao: OpenBao;
  let project: PulumiProject;
  const used: string[] = [];

  before(async () => {
    pulumiBinDir();
    bao = await startOpenBao();
  });
  after(async () => {
    await bao?.stop();
    project?.cleanup();
  });

  it("reads stores from dsops:stores and inline configs, keeps the token out of state, and getSecret works", async () => {
    const token = bao.rootToken;
    const v = `cfg-${randomBytes(9).toString("base64url")}`;
    used.push(v, token);
    const settings = configFromObject({ secretStores: { v: { type: "vault", address: bao.address, token } } }).stores.v;
    const store = createStore("v", settings, { configDir: "/", clock: new ManualClock(0), env: {} });
    await store.put!("secret/app/cfg", new Secret(JSON.stringify({ password: v })));
    await store.close?.();

    project = new PulumiProject(
      "dsops-config",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const fromStackConfig = new dsops.SecretReference("stack-config", { ref: "store://bao/secret/app/cfg#password" });
const inline = new dsops.SecretReference("inline", { store: { type: "vault", address: cfg.require("address"), token: cfg.requireSecret("token") }, key: "secret/app/cfg#password" });
const env = new dsops.Environment("inline-env", { env: "e", config: { secretStores: { s: { type: "vault", address: cfg.require("address"), token: cfg.requireSecret("token") } }, envs: { e: { P: { from: "store://s/secret/app/cfg#password" } } } } });
exports.a = fromStackConfig.value;
exports.b = inline.value;
exports.c = env.variables;
exports.d = dsops.getSecret({ ref: "store://bao/secret/app/cfg#password" }).then((r) => r.value);
exports.storeType = inline.storeType;
`,
    );
    project.ok(["stack", "init", "cfg"]);
    project.ok(["config", "set", "address", bao.address]);
    project.run(["config", "set", "--secret", "token", token], {}, false);
    project.run(["config", "set", "--secret", "--path", "dsops:stores.bao.type", "vault"], {}, false);
    project.ok(["config", "set", "--path", "dsops:stores.bao.address", bao.address]);
    project.run(["config", "set", "--secret", "--path", "dsops:stores.bao.token", token], {}, false);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, v);
    assert.equal(out.b, v);
    assert.deepEqual(out.c, { P: v });
    assert.equal(out.d, v);
    assert.equal(project.outputs().storeType, "vault");
    assert.deepEqual(project.previewSummary(), { same: 4 });
    project.assertNoLeak(used);
  });
});
