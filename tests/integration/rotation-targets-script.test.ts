import { strict as assert } from "node:assert";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { createTarget } from "../../provider/rotation/index";
import { ScriptTarget } from "../../provider/rotation/targets/script";
import { targetContract } from "../support/target-contract";

/**
 * The script target runs a real executable (a Node script written by the test) that plays the
 * external system: it reads dsops's JSON request on stdin, keeps a password per user in a state
 * file, refuses to verify users named bad…, answers on stdout, and logs its argv and environment
 * so the test can search them. The target contract runs against it, then the script's own
 * tests: argv and environment, exit statuses, garbage and timeouts.
 */
const SCRIPT = `#!/usr/bin/env node
const fs = require("fs");
const dir = __dirname;
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  fs.appendFileSync(dir + "/calls.log", JSON.stringify({ argv: process.argv, env: process.env, action: req.action, user: req.user }) + "\\n");
  const statePath = dir + "/state.json";
  const state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, "utf8")) : {};
  const out = (o) => process.stdout.write(JSON.stringify(o));
  if (req.user === "crashy") { process.stderr.write("boom while setting " + req.new_secret + "\\n"); process.exit(3); }
  if (req.user === "hangs") { setInterval(() => {}, 1000); return; }
  if (req.user === "garbage") { process.stdout.write("not json"); return; }
  switch (req.action) {
    case "rotate": state[req.user] = req.new_secret; fs.writeFileSync(statePath, JSON.stringify(state)); return out({ success: true, message: "set", warnings: [] });
    case "verify":
      if (req.user.startsWith("bad")) return out({ success: false, error: "policy check failed for " + req.new_secret });
      return out(state[req.user] === req.new_secret ? { success: true } : { success: false, error: "wrong password" });
    case "status": return out({ success: true, message: "ready" });
    default: return out({ success: false, error: "unknown action" });
  }
});
`;

let dir: string;
const statePath = () => join(dir, "rotator", "state.json");
const state = () => (existsSync(statePath()) ? (JSON.parse(readFileSync(statePath(), "utf8")) as Record<string, string>) : {});

targetContract(
  {
    label: "script (a real executable, JSON on stdin/stdout)",
    type: "script",
    service: "rotator",
    badSettings: [
      [{ command: "" }, /services\.x\.command/],
      [{ command: "./x", capabilities: ["create"] }, /services\.x\.capabilities/],
    ],
    minimalSettings: { command: "./x" },
    targetClass: ScriptTarget,
    capabilities: ["rotate", "verify"],
    async setup(bench) {
      dir = bench.dir;
      mkdirSync(join(dir, "rotator"));
      writeFileSync(join(dir, "rotator", "rotate.js"), SCRIPT);
      chmodSync(join(dir, "rotator", "rotate.js"), 0o755);
      return {
        service: { type: "script", command: "./rotator/rotate.js", args: ["--mode", "test"], env: { ROTATOR_REGION: "eu" } },
        async principal(user, password) {
          writeFileSync(statePath(), JSON.stringify({ ...state(), [user]: password }));
          bench.values.add(password);
          return { username: user, password };
        },
        canLogin: async (user, password) => state()[user] === password,
        failingVerification: { refusesBad: true, reason: /policy check failed for \[secret\]/ },
        stop: async () => undefined,
      };
    },
  },
  (bench) => {
    const target = (raw: Record<string, unknown> = {}) =>
      createTarget("s", { type: "script", command: "./rotator/rotate.js", args: ["--mode", "test"], ...raw }, { resolveRef: async () => new Secret(""), clock: systemClock, configDir: dir }) as ScriptTarget;

    it("single-user: the script sets and verifies; the secret only on stdin, never in argv or the environment", async () => {
      const now = await bench.stored("c/single");
      assert.equal(state().single, now);
      const calls = readFileSync(join(dir, "rotator", "calls.log"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { argv: string[]; env: Record<string, string>; action: string; user?: string })
        .filter((c) => c.user === "single");
      assert.deepEqual(calls.map((c) => c.action), ["rotate", "verify"]);
      for (const c of calls) {
        assert.deepEqual(c.argv.slice(2), ["--mode", "test"]);
        assert.equal(c.env.ROTATOR_REGION, "eu");
        assert.equal(c.env.DSOPS_SERVICE_NAME, "rotator");
        assert.ok(!JSON.stringify(c.argv).includes(now) && !JSON.stringify(c.env).includes(now), "the secret is never in argv or the environment");
      }
    });

    it("a failing exit status, garbage output, a missing executable and a timeout are errors without the value", async () => {
      const check = async (op: () => Promise<unknown>, re: RegExp) => {
        const e = await op().then(
          () => undefined,
          (x: unknown) => x,
        );
        assert.ok(e instanceof Error, "expected an error");
        bench.outputs.push(e.message);
        assert.match(e.message, re);
      };
      const sec = new Secret(`S-${Math.random()}`);
      bench.values.add(sec.reveal());
      await check(() => target().setSecret({ principal: "crashy", secret: sec }), /exited with 3: boom while setting \[secret\]/);
      await check(() => target().setSecret({ principal: "garbage", secret: sec }), /the answer is not JSON/);
      await check(() => target({ command: "./rotator/missing" }).setSecret({ principal: "x", secret: sec }), /cannot run \.\/rotator\/missing: ENOENT/);
      await check(() => target({ timeout_ms: 300 }).setSecret({ principal: "hangs", secret: sec }), /timed out after 300 ms/);
      await target().check();
      assert.ok(existsSync(join(dir, "rotator", "calls.log")));
    });
  },
);
