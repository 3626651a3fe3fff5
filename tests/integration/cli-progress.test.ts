import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CMD, dsops } from "../support/cli";

const VARS = 60;
const STORES = 12;
const VALUE = "progress-secret-" + Math.random().toString(36).slice(2);

/** `script` (util-linux) runs a command on a pseudo-terminal: stderr is then a TTY. */
function haveScript(): boolean {
  return spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe("dsops progress (on a terminal only)", function () {
  this.timeout(60000);
  let dir: string;
  const outputs: string[] = [];
  const run = (args: string[], input?: string) => {
    const r = dsops(args, { cwd: dir, input });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  /** Run dsops on a pseudo-terminal; everything it printed (stdout and stderr) comes back. */
  const onTerminal = (args: string[]) => {
    const cmd = [...DSOPS_CMD, ...args].map(sh).join(" ");
    const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { cwd: dir, encoding: "utf8", input: "" });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-progress-"));
    const vars = Array.from({ length: VARS }, (_, i) => `    V${i}: { from: "store://local/all#k${i}" }`).join("\n");
    const stores = Array.from({ length: STORES }, (_, i) => `  s${i}: { type: file, path: ./s${i}.store }`).join("\n");
    writeFileSync(join(dir, "dsops.yaml"), `version: 1\nsecretStores:\n  local: { type: file }\n${stores}\nenvs:\n  big:\n${vars}\n`);
    const json = JSON.stringify(Object.fromEntries(Array.from({ length: VARS }, (_, i) => [`k${i}`, `${VALUE}-${i}`])));
    assert.equal(run(["secrets", "set", "--store", "local", "--key", "all"], json).status, 0);
  });
  after(() => {
    for (const out of outputs) assert.ok(!out.includes(VALUE), "a secret appeared in output");
    rmSync(dir, { recursive: true, force: true });
  });

  it("is quiet when stderr is not a terminal (render, exec, doctor)", () => {
    const render = run(["render", "--env", "big", "--out", "big.env"]);
    assert.equal(render.status, 0, render.stderr);
    assert.equal(render.stderr, `wrote ${VARS} variables to big.env (dotenv, mode 0600)\n`);
    const exec = run(["exec", "--env", "big", "--", process.execPath, "-e", "0"]);
    assert.equal(exec.status, 0, exec.stderr);
    assert.equal(exec.stderr, "");
    const doctor = run(["doctor"]);
    assert.equal(doctor.status, 0, doctor.stdout + doctor.stderr);
    assert.equal(doctor.stderr, "");
    assert.ok(!doctor.stdout.includes("\r"));
  });

  it("shows a progress line on a terminal, and clears it before the result", function () {
    if (!haveScript()) this.skip();
    const render = onTerminal(["render", "--env", "big", "--out", "tty.env"]);
    assert.equal(render.status, 0, render.stdout);
    assert.match(render.stdout, new RegExp(`\\r\\x1b\\[Kresolving ${VARS}/${VARS}\\r\\x1b\\[Kwrote ${VARS} variables`));
    const doctor = onTerminal(["doctor"]);
    assert.equal(doctor.status, 0, doctor.stdout);
    assert.match(doctor.stdout, new RegExp(`checking stores ${STORES + 1}/${STORES + 1}\\r\\x1b\\[KSTORE`));
    const quiet = spawnSync("script", ["-qec", `DSOPS_PROGRESS=0 ${[...DSOPS_CMD, "doctor"].map(sh).join(" ")}`, "/dev/null"], { cwd: dir, encoding: "utf8", input: "" });
    assert.ok(!quiet.stdout.includes("checking stores"), "DSOPS_PROGRESS=0 turns it off");
  });
});
