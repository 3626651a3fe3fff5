import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { outputFormats } from "../../provider/engine/render";
import { renderFormats } from "../../provider/cli/commands/render";
import { dsops } from "../support/cli";

const TOKEN = "ttl-token-" + Math.random().toString(36).slice(2);

/** Wait until `cond()` holds, checking every 100 ms, up to `limitMs` (an outside process does the work). */
async function eventually(cond: () => boolean, limitMs: number): Promise<boolean> {
  for (let waited = 0; waited <= limitMs; waited += 100) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

describe("dsops render --ttl (built binary, a detached watcher deletes the file)", function () {
  this.timeout(60000);
  let dir: string;
  const outputs: string[] = [];
  const watchers: number[] = [];
  const run = (args: string[], input?: string) => {
    const r = dsops(args, { cwd: dir, input });
    outputs.push(r.stdout, r.stderr);
    const pid = /\(watcher pid (\d+)\)/.exec(r.stderr);
    if (pid) watchers.push(Number(pid[1]));
    return r;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-ttl-"));
    writeFileSync(join(dir, "dsops.yaml"), "version: 1\nsecretStores:\n  local: { type: file }\nenvs:\n  dev:\n    TOKEN: { from: \"store://local/token\" }\n    MODE: { literal: dev }\n");
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "token"], TOKEN).status, 0);
  });
  after(() => {
    // Stop the watchers this file started that are still waiting (the 1h30m one).
    // Only a pid that is still a ttl-watcher (a finished one's pid may have been reused).
    for (const pid of watchers) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("ttl-watcher")) process.kill(pid, "SIGTERM");
      } catch {
        // already finished
      }
    }
    for (const out of outputs) assert.ok(!out.includes(TOKEN), "the secret appeared in output");
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the file, says when it goes, and the file is gone after the TTL though dsops has exited", async () => {
    const out = join(dir, "short.env");
    const r = run(["render", "--env", "dev", "--out", "short.env", "--ttl", "2s"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /short\.env will be shredded and deleted in 2s \(watcher pid \d+\)\n/);
    assert.ok(existsSync(out), "the file exists right after render");
    assert.match(readFileSync(out, "utf8"), /^MODE=dev\nTOKEN=/);
    assert.ok(await eventually(() => !existsSync(out), 15000), "the file was deleted after its TTL");
  });

  it("leaves a file alone that was rendered again after the TTL was set", async () => {
    const first = join(dir, "replaced.env");
    const marker = join(dir, "marker.env");
    assert.equal(run(["render", "--env", "dev", "--out", "replaced.env", "--ttl", "1s"]).status, 0);
    // rendered again without a TTL: a new file (new inode), which the first watcher must not touch
    assert.equal(run(["render", "--env", "dev", "--out", "replaced.env"]).status, 0);
    // a later watcher with a longer TTL: once it has run, the first one (due earlier) has too
    assert.equal(run(["render", "--env", "dev", "--out", "marker.env", "--ttl", "2s"]).status, 0);
    assert.ok(await eventually(() => !existsSync(marker), 15000), "the marker file was deleted");
    assert.ok(existsSync(first), "the re-rendered file is still there");
  });

  it("rejects a malformed or zero --ttl before writing anything", () => {
    for (const ttl of ["soon", "10x", "0s"]) {
      const r = run(["render", "--env", "dev", "--out", "bad.env", "--ttl", ttl]);
      assert.equal(r.status, 1, ttl);
      assert.match(r.stderr, /--ttl/);
    }
    assert.ok(!existsSync(join(dir, "bad.env")));
    const ok = run(["render", "--env", "dev", "--out", "long.env", "--ttl", "1h30m"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /deleted in 1h30m/);
  });

  it("--format choices match the engine's output formats", () => {
    assert.deepEqual([...renderFormats], [...outputFormats]);
  });
});
