import { strict as assert } from "node:assert";
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

describe("dsops shred (built binary)", function () {
  this.timeout(60000);
  let dir: string;
  const run = (args: string[]) => dsops(args, { cwd: dir });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "dsops-shred-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("overwrites the content in place (a hard link sees random bytes of the same size) and unlinks", () => {
    const content = "SECRET=" + "s".repeat(3000) + "\n";
    writeFileSync(join(dir, "a.env"), content);
    linkSync(join(dir, "a.env"), join(dir, "witness"));
    const r = run(["shred", "a.env"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, `shredded a.env (${content.length} bytes)\n`);
    assert.ok(!existsSync(join(dir, "a.env")));
    const after = readFileSync(join(dir, "witness"));
    assert.equal(after.length, content.length);
    assert.ok(!after.toString("latin1").includes("SECRET="), "the old content is gone");
    assert.ok(new Set(after).size > 100, "random bytes");
  });

  it("shreds several files and an empty one; a missing file or a directory is an error (exit 1), the rest still done", () => {
    writeFileSync(join(dir, "one"), "1");
    writeFileSync(join(dir, "empty"), "");
    const r = run(["shred", "one", "missing", ".", "empty"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^shredded one \(1 bytes\)\nerror: missing: no such file\nerror: \.: not a regular file\nshredded empty \(0 bytes\)\n$/);
    assert.ok(!existsSync(join(dir, "one")) && !existsSync(join(dir, "empty")));
  });

  it("refuses a symbolic link and leaves its target alone", () => {
    writeFileSync(join(dir, "target"), "keep me");
    symlinkSync(join(dir, "target"), join(dir, "link"));
    const r = run(["shred", "link"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /link: is a symbolic link/);
    assert.equal(readFileSync(join(dir, "target"), "utf8"), "keep me");
    assert.ok(statSync(join(dir, "link")).isFile());
  });

  it("needs at least one file (usage error)", () => {
    assert.equal(run(["shred"]).status, 2);
  });
});
