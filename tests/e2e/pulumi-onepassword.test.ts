// Local server speaking the 1Password Connect REST API (tests/support/op-connect-server.ts, in a child process) to the real @1password/connect client inside a real `pulumi up`: no Connect server can run here.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { startOpConnectServerProcess, type OpConnectServerProcess } from "../support/op-connect-server";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

const TOKEN = `eyJ.${randomBytes(20).toString("hex")}`;

describe("Pulumi end to end: 1Password (Connect) through SecretReference and Environment", function () {
  this.timeout(300000);
  let srv: OpConnectServerProcess;
  let project: PulumiProject | undefined;

  before(async () => {
    pulumiBinDir();
    srv = await startOpConnectServerProcess([TOKEN], ["Dev"]);
  });
  after(async () => {
    await srv?.stop();
    project?.cleanup();
  });

  it("resolves op:// references; the Connect token and the values stay out of state and output", async () => {
    const { ItemBuilder, ItemCategory, FieldType, OnePasswordConnect } = await import("@1password/connect");
    const admin = OnePasswordConnect({ serverURL: srv.url, token: TOKEN });
    const vault = await admin.getVaultByTitle("Dev");
    const pw = `pw-${randomBytes(9).toString("base64url")}`;
    const host = `db-${randomBytes(6).toString("hex")}.internal`;
    await admin.createItem(
      vault.id as string,
      new ItemBuilder()
        .setCategory(ItemCategory.Login)
        .setTitle("Database")
        .addField({ label: "password", value: pw, type: FieldType.Concealed })
        .addSection("Connection")
        .addField({ label: "host", value: host, type: FieldType.String, sectionName: "Connection" })
        .build(),
    );

    project = new PulumiProject(
      "dsops-op",
      `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const op = { type: "onepassword", connect_host: "${srv.url}", connect_token: cfg.requireSecret("tok") };
const ref = new dsops.SecretReference("pw", { store: op, key: "op://Dev/Database/password" });
const env = new dsops.Environment("env", { env: "e", config: { secretStores: { op }, envs: { e: { H: { from: "op:op://Dev/Database/Connection/host" }, P: { from: "store://op/Dev/Database#password" } } } } });
exports.a = ref.value;
exports.b = env.variables;
exports.storeType = ref.storeType;
`,
    );
    project.ok(["stack", "init", "op"]);
    project.run(["config", "set", "--secret", "tok", TOKEN], {}, false);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, pw);
    assert.deepEqual(out.b, { H: host, P: pw });
    assert.equal(project.outputs().storeType, "onepassword");
    assert.deepEqual(project.previewSummary(), { same: 3 });
    project.assertNoLeak([pw, host, TOKEN]);
  });
});
