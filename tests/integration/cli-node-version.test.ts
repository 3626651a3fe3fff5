import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_BIN, DSOPS_CLI_BIN, DSOPS_CMD } from "../support/cli";

const ROOT = join(__dirname, "..", "..", "..");

describe("the Node.js runtime dsops runs on", function () {
  this.timeout(30000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-node-"));
    // Makes the running Node report an older version before bin/dsops reads it.
    writeFileSync(join(dir, "old-node.js"), 'Object.defineProperty(process.versions, "node", { value: "20.20.2" });\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the tests themselves run on Node.js 22 or newer (the project's scripts provision it)", () => {
    assert.ok(Number(process.versions.node.split(".")[0]) >= 22, `running on ${process.version}`);
  });

  it("package.json declares engines.node >= 22", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    assert.equal(pkg.engines.node, ">=22");
  });

  it("on an older Node, dsops says which version it needs and exits 1, without a stack trace", function () {
    // The single executable carries its own runtime: no other Node can run it.
    if (DSOPS_CLI_BIN) this.skip();
    const r = spawnSync(process.execPath, ["-r", join(dir, "old-node.js"), DSOPS_BIN, "plan", "--env", "dev"], { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^dsops: Node\.js 20\.20\.2 is not supported: dsops needs Node\.js 22 or newer/);
    assert.match(r.stderr, /^hint: /m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
  });

  it("on the running Node, dsops starts", () => {
    const r = spawnSync(DSOPS_CMD[0], [...DSOPS_CMD.slice(1), "--version"], { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });
});
