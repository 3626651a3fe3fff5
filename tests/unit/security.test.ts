import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { ManualClock } from "../../provider/core/clock";
import { DSOPS_BIN } from "../support/cli";

/** Security properties, each able to fail: where a secret value must never appear. */
describe("security: secret values stay where they belong", function () {
  this.timeout(30000);

  it("console.log, console.error, thrown errors and their stack traces print [secret]", () => {
    const value = "console-needle-7f3a9c";
    const script = `
      const { Secret } = require(${JSON.stringify(join(__dirname, "..", "..", "provider", "core", "secret.js"))});
      const s = new Secret(${JSON.stringify(value)});
      console.log(s, { s }, [s], \`\${s}\`, "" + s);
      console.error("%s %o %j", s, s, { s });
      const e = new Error("failed for " + s);
      console.log(e.stack);
      throw new Error(\`boom \${s}\`);
    `;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    assert.notEqual(r.status, 0, "the script ends with an uncaught error");
    const all = r.stdout + r.stderr;
    assert.match(all, /\[secret\]/);
    assert.ok(!all.includes(value), "a secret value reached stdout or stderr");
  });

  it("dsops exec puts values in the child's environment, never in its argv or dsops's own", () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-argv-"));
    try {
      const value = "argv-needle-5b2e71d0";
      const store = new FileStore("local", { type: "file", path: "./s.store" }, { configDir: dir, clock: new ManualClock(0), env: {} });
      return store.put("k", new Secret(value)).then(() => {
        writeFileSync(join(dir, "dsops.yaml"), `secretStores:\n  local: { type: file, path: ./s.store }\nenvs:\n  e:\n    V: { from: "store://local/k" }\n`);
        // The child reports its own argv and its parent's (dsops) from /proc, and whether it got the value.
        const probe = `const fs = require("fs");
          const own = fs.readFileSync("/proc/self/cmdline", "utf8");
          const parent = fs.readFileSync("/proc/" + process.ppid + "/cmdline", "utf8");
          const digest = require("crypto").createHash("sha256").update(process.env.V || "").digest("hex");
          process.stdout.write(JSON.stringify({ own, parent, got: digest === ${JSON.stringify(createHash("sha256").update(value).digest("hex"))} }));`;
        const r = spawnSync(process.execPath, [DSOPS_BIN, "exec", "--env", "e", "--", process.execPath, "-e", probe], { cwd: dir, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        const seen = JSON.parse(r.stdout) as { own: string; parent: string; got: boolean };
        assert.equal(seen.got, true, "the child received the value in its environment");
        assert.ok(!seen.own.includes(value) && !seen.parent.includes(value), "a value appeared in a command line");
        assert.ok(!r.stderr.includes(value));
      });
    } finally {
      setTimeout(() => rmSync(dir, { recursive: true, force: true }), 0).unref();
    }
  });

  it("the file store never writes a plaintext value, even across many versions", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-at-rest-"));
    try {
      const store = new FileStore("local", { type: "file", path: "./s.store" }, { configDir: dir, clock: new ManualClock(0), env: {} });
      const values = Array.from({ length: 5 }, (_, i) => `at-rest-needle-${i}-${Math.random().toString(36).slice(2)}`);
      for (const v of values) await store.put("k", new Secret(v));
      const text = readFileSync(join(dir, "s.store"), "utf8");
      for (const v of values) assert.ok(!text.includes(v));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
