// Real peers: GNOME Keyring's Secret Service on a private D-Bus session (tests/support/secret-service.ts), read through secret-tool by the dsops dynamic provider inside a real `pulumi up` (file backend). macOS Keychain is not tested here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";
import { startSecretService, type SecretService } from "../support/secret-service";

describe("Pulumi end to end: keychain (Linux Secret Service) through SecretReference and Environment", function () {
  this.timeout(300000);
  let svc: SecretService;
  let project: PulumiProject | undefined;

  before(async () => {
    pulumiBinDir();
    svc = await startSecretService();
  });
  after(() => {
    project?.cleanup();
    svc?.stop();
  });

  it("resolves service/account items (with service_prefix); the values stay out of state and output", () => {
    const [a, b] = [`kc-${randomBytes(9).toString("base64url")}`, `kc-${randomBytes(9).toString("base64url")}`];
    svc.storeItem("myapp", "db-password", a);
    svc.storeItem("com.acme.github.com", "token", b);
    project = new PulumiProject(
      "dsops-keychain",
      `"use strict";
const dsops = require("@dsops/pulumi");
const ref = new dsops.SecretReference("kc", { store: { type: "keychain" }, key: "myapp/db-password" });
const env = new dsops.Environment("env", { env: "e", config: { secretStores: { work: { type: "keychain", service_prefix: "com.acme" } }, envs: { e: { GH: { from: "work:github.com/token" } } } } });
exports.a = ref.value;
exports.b = env.variables;
exports.storeType = ref.storeType;
`,
      { DBUS_SESSION_BUS_ADDRESS: svc.env.DBUS_SESSION_BUS_ADDRESS },
    );
    project.ok(["stack", "init", "kc"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, a);
    assert.deepEqual(out.b, { GH: b });
    assert.equal(project.outputs().storeType, "keychain");
    assert.deepEqual(project.previewSummary(), { same: 3 });
    project.assertNoLeak([a, b, svc.password]);
  });
});
