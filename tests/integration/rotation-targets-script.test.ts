import { strict as assert } from "node:assert";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError, createTarget } from "../../provider/rotation/index";
import type { ScriptTarget } from "../../provider/rotation/targets/script";
import { FileStore } from "../../provider/stores/file";

/**
 * The script target runs a real executable (a Node script written by the test) that plays the
 * external system: it reads dsops's JSON request on stdin, keeps a password per user in a state
 * file, answers on stdout, and logs its argv and environment so the test can search them.
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
      if (req.user === "picky") return out({ success: false, error: "policy check failed for " + req.new_secret });
      return out(state[req.user] === req.new_secret ? { success: true } : { success: false, error: "wrong password" });
    case "status": return out({ success: true, message: "ready" });
    default: return out({ success: false, error: "unknown action" });
  }
});
`;

describe("rotation: script target (a real executable, JSON on stdin/stdout)", function () {
  this.timeout(60000);
  let dir: string;
  let config: Config;
  const values = new Set<string>();
  const outputs: string[] = [];
  const env = { DSOPS_FILE_KEY: "sc-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const engine = () => new RotationEngine(config, { env: { ...process.env, ...env }, onEvent: (m) => outputs.push(m) });
  const state = () => JSON.parse(readFileSync(join(dir, "rotator", "state.json"), "utf8")) as Record<string, string>;
  const target = (raw: Record<string, unknown> = {}) =>
    createTarget("s", { type: "script", command: "./rotator/rotate.js", args: ["--mode", "test"], ...raw }, { resolveRef: async () => new Secret(""), clock: systemClock, configDir: dir }) as ScriptTarget;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-script-"));
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "rotator"));
    writeFileSync(join(dir, "rotator", "rotate.js"), SCRIPT);
    chmodSync(join(dir, "rotator", "rotate.js"), 0o755);
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  rotator:
    type: script
    command: ./rotator/rotate.js
    args: ["--mode", "test"]
    env: { ROTATOR_REGION: eu }
envs:
  prod:
    PW:
      from: "store://local/app/pw"
      rotation: { service: rotator, strategy: single-user, user: app }
    PICKY:
      from: "store://local/app/picky"
      rotation: { service: rotator, strategy: single-user, user: picky }
    LOGIN:
      from: "store://local/app/login"
      rotation: { service: rotator, strategy: alternating-users, users: [a, b] }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const init: Record<string, string> = {};
    for (const u of ["app", "picky", "a"]) {
      init[u] = `init-${u}-${Math.random().toString(36).slice(2)}`;
      values.add(init[u]);
    }
    writeFileSync(join(dir, "rotator", "state.json"), JSON.stringify(init));
    await store().put("app/pw", new Secret(init.app));
    await store().put("app/picky", new Secret(init.picky));
    await store().put("app/login", new Secret(JSON.stringify({ username: "a", password: init.a })));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("single-user end to end: the script sets and verifies; the secret only on stdin", async () => {
    const e = engine();
    try {
      const r = await e.rotate("prod", "PW");
      assert.equal(r.record.status, "succeeded");
    } finally {
      await e.close();
    }
    const now = (await store().get({ key: "app/pw" })).value.reveal();
    values.add(now);
    assert.equal(state().app, now);
    const calls = readFileSync(join(dir, "rotator", "calls.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; env: Record<string, string>; action: string });
    assert.deepEqual(calls.map((c) => c.action), ["rotate", "verify"]);
    for (const c of calls) {
      assert.deepEqual(c.argv.slice(2), ["--mode", "test"]);
      assert.equal(c.env.ROTATOR_REGION, "eu");
      assert.equal(c.env.DSOPS_SERVICE_NAME, "rotator");
      assert.ok(!JSON.stringify(c.argv).includes(now) && !JSON.stringify(c.env).includes(now), "the secret is never in argv or the environment");
    }
  });

  it("alternating-users end to end", async () => {
    const e = engine();
    try {
      await e.rotate("prod", "LOGIN");
    } finally {
      await e.close();
    }
    const cur = JSON.parse((await store().get({ key: "app/login" })).value.reveal()) as { username: string; password: string };
    values.add(cur.password);
    assert.equal(cur.username, "b");
    assert.equal(state().b, cur.password);
  });

  it("a refused verification rolls back: the script is given the old password back", async () => {
    const old = (await store().get({ key: "app/picky" })).value.reveal();
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "PICKY");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, /rolled back: .*policy check failed for \[secret\]/);
    assert.equal(state().picky, old);
    assert.equal((await store().get({ key: "app/picky" })).value.reveal(), old);
  });

  it("a failing exit status, garbage output, a missing executable and a timeout are errors without the value", async () => {
    const check = async (op: () => Promise<unknown>, re: RegExp) => {
      const e = await op().then(
        () => undefined,
        (x: unknown) => x,
      );
      assert.ok(e instanceof Error, "expected an error");
      outputs.push(e.message);
      assert.match(e.message, re);
    };
    const sec = new Secret(`S-${Math.random()}`);
    values.add(sec.reveal());
    await check(() => target().setSecret({ principal: "crashy", secret: sec }), /exited with 3: boom while setting \[secret\]/);
    await check(() => target().setSecret({ principal: "garbage", secret: sec }), /the answer is not JSON/);
    await check(() => target({ command: "./rotator/missing" }).setSecret({ principal: "x", secret: sec }), /cannot run \.\/rotator\/missing: ENOENT/);
    await check(() => target({ timeout_ms: 300 }).setSecret({ principal: "hangs", secret: sec }), /timed out after 300 ms/);
    await target().check();
    assert.ok(existsSync(join(dir, "rotator", "calls.log")));
  });

  it("no value in records, events or errors", () => {
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) {
      assert.ok(!recs.includes(v), "a value is in the history");
      for (const o of outputs) assert.ok(!o.includes(v), "a value is in an event or error");
    }
  });
});
