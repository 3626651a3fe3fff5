// Real peers: Debian's `pass` and GnuPG with a throwaway GNUPGHOME and key, read by the dsops dynamic provider inside a real `pulumi up` (file backend).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

describe("Pulumi end to end: pass through SecretReference and Environment", function () {
  this.timeout(300000);
  const root = mkdtempSync(join(tmpdir(), "dsops-e2e-pass-"));
  const gnupg = join(root, "gnupg");
  const storeDir = join(root, "store");
  let project: PulumiProject | undefined;
  const run = (cmd: string, args: string[], input?: string) => {
    const r = spawnSync(cmd, args, { env: { PATH: process.env.PATH, HOME: root, GNUPGHOME: gnupg, PASSWORD_STORE_DIR: storeDir }, input, encoding: "utf8" });
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(() => {
    pulumiBinDir();
    mkdirSync(gnupg, { mode: 0o700 });
    run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "e2e <e2e@example.invalid>", "default", "default", "never"]);
    const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(run("gpg", ["--with-colons", "--list-secret-keys"]))![1];
    run("pass", ["init", fpr]);
  });
  after(() => {
    spawnSync("gpgconf", ["--kill", "all"], { env: { PATH: process.env.PATH, GNUPGHOME: gnupg } });
    project?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it("resolves an entry's first line and its #user field; the values stay out of state and output", () => {
    const pw = `pw-${randomBytes(9).toString("base64url")}`;
    const user = `user-${randomBytes(6).toString("hex")}`;
    run("pass", ["insert", "--multiline", "--force", "e2e/db"], `${pw}\nuser: ${user}\n`);
    const store = `{ type: "pass", store_dir: ${JSON.stringify(storeDir)}, gpg_home: ${JSON.stringify(gnupg)} }`;
    project = new PulumiProject(
      "dsops-pass",
      `"use strict";
const dsops = require("@dsops/pulumi");
const store = ${store};
const ref = new dsops.SecretReference("pw", { store, key: "e2e/db" });
const env = new dsops.Environment("env", { env: "e", config: { secretStores: { pw: store }, envs: { e: { U: { from: "store://pw/e2e/db#user" }, P: { from: "pw:e2e/db" } } } } });
exports.a = ref.value;
exports.b = env.variables;
exports.storeType = ref.storeType;
`,
    );
    project.ok(["stack", "init", "pass"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.secretOutputs();
    assert.equal(out.a, pw);
    assert.deepEqual(out.b, { U: user, P: pw });
    assert.equal(project.outputs().storeType, "pass");
    assert.deepEqual(project.previewSummary(), { same: 3 });
    project.assertNoLeak([pw, user]);
  });
});
