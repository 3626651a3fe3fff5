import { strict as assert } from "node:assert";
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
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

  it("--passes N overwrites N times before deleting; a bad N is a usage error", () => {
    const content = "PASSES_SECRET=" + "y".repeat(3000);
    writeFileSync(join(dir, "p.env"), content);
    linkSync(join(dir, "p.env"), join(dir, "p.view"));
    const r = run(["shred", "--passes", "3", "p.env"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, `shredded p.env (${content.length} bytes, 3 passes)\n`);
    assert.ok(!existsSync(join(dir, "p.env")));
    const left = readFileSync(join(dir, "p.view"));
    assert.equal(left.length, content.length);
    assert.ok(!left.toString("latin1").includes("PASSES_SECRET"));
    for (const bad of ["0", "-1", "2.5", "x", "101"]) {
      writeFileSync(join(dir, "q"), "q");
      const b = run(["shred", "--passes", bad, "q"]);
      assert.equal(b.status, 2, bad);
      assert.match(b.stderr, /--passes <n>' must be a whole number from 1 to 100/);
      assert.ok(existsSync(join(dir, "q")), "nothing shredded on a usage error");
    }
  });

  it("--recursive shreds every file under a folder and removes it; a symbolic link inside is left (exit 1), its target untouched", () => {
    mkdirSync(join(dir, "tree", "sub", "deeper"), { recursive: true });
    writeFileSync(join(dir, "tree", "a.env"), "A=1");
    writeFileSync(join(dir, "tree", "sub", "b.env"), "B=22");
    writeFileSync(join(dir, "tree", "sub", "deeper", "c.env"), "");
    linkSync(join(dir, "tree", "sub", "b.env"), join(dir, "b.view"));
    const r = run(["shred", "--recursive", "--passes", "2", "tree"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "shredded tree/a.env (3 bytes, 2 passes)\nshredded tree/sub/b.env (4 bytes, 2 passes)\nshredded tree/sub/deeper/c.env (0 bytes, 2 passes)\nremoved tree\n");
    assert.ok(!existsSync(join(dir, "tree")));
    assert.notEqual(readFileSync(join(dir, "b.view"), "utf8"), "B=22");
    // A link inside: refused, so its folder stays; the other files are still shredded.
    mkdirSync(join(dir, "t2"));
    writeFileSync(join(dir, "keep"), "keep me");
    writeFileSync(join(dir, "t2", "x"), "x");
    symlinkSync(join(dir, "keep"), join(dir, "t2", "link"));
    const l = run(["shred", "-r", "t2"]);
    assert.equal(l.status, 1);
    assert.match(l.stderr, /error: t2\/link: is a symbolic link/);
    assert.ok(!existsSync(join(dir, "t2", "x")));
    assert.ok(existsSync(join(dir, "t2", "link")));
    assert.equal(readFileSync(join(dir, "keep"), "utf8"), "keep me");
    // Without --recursive a folder is still refused.
    mkdirSync(join(dir, "t3"));
    writeFileSync(join(dir, "t3", "y"), "y");
    const n = run(["shred", "t3"]);
    assert.equal(n.status, 1);
    assert.ok(existsSync(join(dir, "t3", "y")));
  });
});
