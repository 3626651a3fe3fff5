import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CLI_BIN, dsops } from "../support/cli";

const ROOT = join(__dirname, "..", "..", "..");
const BUNDLE = join(ROOT, "dist", "cli", "dsops.js");
const UNBUNDLED = join(ROOT, "dist", "provider", "cli", "main.js");

const readIfThere = (file: string) => (existsSync(file) ? readFileSync(file, "utf8") : undefined);

/** The module paths a run printed with DSOPS_DEBUG_MODULES=list, and the packages line. */
function modulesLoaded(stderr: string): { paths: string[]; packages: string[] } {
  const m = /^dsops debug: \d+ modules loaded; packages: (.*)$/m.exec(stderr);
  assert.ok(m, `no debug line in: ${stderr}`);
  const paths = [...stderr.matchAll(/^dsops debug: (?!\d+ modules loaded)(.*)$/gm)].map((x) => x[1]);
  return { paths, packages: m[1] === "none" ? [] : m[1].split(", ") };
}

describe("dsops start-up: the bundled entry (dist/cli/dsops.js) runs, and loads only what the command uses", function () {
  this.timeout(60000);
  let dir: string;
  // The bundle, even where the rest of the suite runs tsc's modules (scripts/test.sh, for coverage).
  const run = (args: string[], env: NodeJS.ProcessEnv = {}, input?: string) => dsops(args, { cwd: dir, env: { DSOPS_UNBUNDLED: "0", ...env }, input });

  before(function () {
    // These are about bin/dsops and its Node bundle: the single executable (DSOPS_CLI_BIN) has neither.
    if (DSOPS_CLI_BIN) this.skip();
  });

  before(() => {
    // `npm run build` (and setup.sh) write the bundle after tsc; a build by tsc alone leaves none,
    // or an older one bin/dsops ignores: build it here then.
    let fresh = false;
    try {
      fresh = statSync(BUNDLE).mtimeMs >= statSync(UNBUNDLED).mtimeMs;
    } catch {
      // none yet
    }
    if (!fresh) {
      const b = spawnSync(process.execPath, [join(ROOT, "scripts", "build-cli.js")], { cwd: ROOT, encoding: "utf8" });
      assert.equal(b.status, 0, b.stderr);
    }
    dir = mkdtempSync(join(tmpdir(), "dsops-bundle-"));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file }
  aws: { type: aws.secretsmanager, region: us-east-1 }
  gcp: { type: gcp.secretmanager, project_id: p }
  azure: { type: azure.keyvault, vault_url: "https://v.vault.azure.net" }
  vault: { type: vault, address: "http://127.0.0.1:1", token: t }
envs:
  dev:
    GREETING: { literal: "hello" }
    PORT: { literal: "8080" }
  cloud:
    SECRET: { from: "store://aws/app/secret" }
`,
    );
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("bin/dsops runs the bundle; get of a literal loads no store SDK, no zod locale but English, no store module", () => {
    const r = run(["get", "--env", "dev", "--var", "GREETING"], { DSOPS_DEBUG_MODULES: "list" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "hello\n");
    const { paths, packages } = modulesLoaded(r.stderr);
    assert.ok(paths.includes(BUNDLE), paths.join("\n"));
    assert.ok(!paths.includes(UNBUNDLED), "the modules tsc wrote ran too");
    assert.ok(paths.includes("bundled:provider/cli/main.ts") && paths.includes("bundled:provider/cli/commands/get.ts"), paths.join("\n"));
    // Only what `get` uses, all of it inside the bundle: no file from node_modules at all.
    // (yaml only when the file is outside the plain subset or a message needs a line:col.)
    assert.deepEqual(packages, ["commander", "zod"]);
    assert.deepEqual(paths.filter((p) => p.includes("node_modules") && !p.startsWith("bundled:")), []);
    assert.deepEqual(paths.filter((p) => /zod\/v4\/locales\//.test(p) && !p.endsWith("/en.js") && !p.endsWith("/index.js")), []);
    // The stores' modules (which load their SDKs) do not run either: only the registry's list.
    assert.deepEqual(paths.filter((p) => /^bundled:provider\/stores\/(aws|gcp|azure|vault|hashicorp)/.test(p)), []);
    // Nor does any feature's part of the file (schema or check): the file has none of their sections.
    assert.deepEqual(paths.filter((p) => /^bundled:provider\/(rotation|notify|metrics|health|report)\/|^bundled:provider\/guard\/policy-settings|^bundled:provider\/compose\/(dsops-rotation|plugins)/.test(p)), []);
  });

  it("get writes a value larger than a pipe's buffer whole, and --json too (stdout written to fd 1 directly)", () => {
    const big = "x".repeat(300_000) + "-end";
    writeFileSync(join(dir, "big.yaml"), `envs:\n  dev:\n    BIG: { literal: "${big}" }\n`);
    for (const unbundled of ["0", "1"]) {
      const r = run(["--config", "big.yaml", "get", "--env", "dev", "--var", "BIG"], { DSOPS_UNBUNDLED: unbundled });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, big + "\n");
      const j = run(["--config", "big.yaml", "get", "--env", "dev", "--var", "BIG", "--json"], { DSOPS_UNBUNDLED: unbundled });
      assert.equal(j.status, 0, j.stderr);
      assert.equal((JSON.parse(j.stdout) as { value: string }).value, big);
    }
  });

  it("the bundle and the modules tsc wrote (DSOPS_UNBUNDLED=1) answer alike: value, errors, exit codes", () => {
    const cases: Array<[number, string[]]> = [
      [0, ["get", "--env", "dev", "--var", "GREETING"]],
      [1, ["get", "--env", "dev", "--var", "NOPE"]],
      [1, ["get", "--env", "nope", "--var", "GREETING"]],
      [2, ["get", "--env", "dev"]],
      [0, ["render", "--env", "dev", "--out", "out.env"]],
      [1, ["render", "--env", "dev", "--out", "out.env", "--permissions", "999"]],
      [3, ["exec", "--env", "dev", "--", process.execPath, "-e", "process.stdout.write(process.env.GREETING + process.env.PORT); process.exit(3)"]],
      [1, ["--config", "missing.yaml", "get", "--env", "dev", "--var", "GREETING"]],
      [2, ["frobnicate"]],
    ];
    for (const [expected, args] of cases) {
      rmSync(join(dir, "out.env"), { force: true });
      const bundled = { ...run(args), file: readIfThere(join(dir, "out.env")) };
      rmSync(join(dir, "out.env"), { force: true });
      const unbundled = { ...run(args, { DSOPS_UNBUNDLED: "1", DSOPS_DEBUG_MODULES: "list" }), file: readIfThere(join(dir, "out.env")) };
      assert.equal(bundled.status, expected, `${args.join(" ")}: ${bundled.stderr}`);
      if (args[0] === "exec") assert.equal(bundled.stdout, "hello8080");
      if (args[0] === "render" && expected === 0) assert.match(bundled.file ?? "", /^GREETING=.*hello/m);
      assert.ok(modulesLoaded(unbundled.stderr).paths.includes(UNBUNDLED), args.join(" "));
      const stderr = unbundled.stderr.replace(/^dsops debug: .*\n/gm, "");
      const { status, stdout, file } = unbundled;
      assert.deepEqual({ status: bundled.status, stdout: bundled.stdout, stderr: bundled.stderr, file: bundled.file }, { status, stdout, stderr, file }, args.join(" "));
    }
  });

  it("the bundle finds what lies beside tsc's modules: the package's version, the rotation commands, the rotation target types", () => {
    for (const args of [["--version"], ["--help"], ["secrets", "rotate", "--help"], ["providers"]]) {
      const bundled = run(args);
      const unbundled = run(args, { DSOPS_UNBUNDLED: "1" });
      assert.equal(bundled.status, 0, `${args.join(" ")}: ${bundled.stderr}`);
      assert.deepEqual(bundled, unbundled, args.join(" "));
    }
    assert.match(run(["--version"]).stdout, /^\d+\.\d+\.\d+/);
  });

  it("a bundle older than tsc's output is not run (a later `tsc` alone never runs stale code)", () => {
    const { atime, mtime } = statSync(BUNDLE);
    const older = new Date(statSync(UNBUNDLED).mtimeMs - 60_000);
    utimesSync(BUNDLE, older, older);
    try {
      const r = run(["get", "--env", "dev", "--var", "GREETING"], { DSOPS_DEBUG_MODULES: "list" });
      assert.equal(r.status, 0, r.stderr);
      const { paths } = modulesLoaded(r.stderr);
      assert.ok(paths.includes(UNBUNDLED) && !paths.includes(BUNDLE), paths.join("\n"));
    } finally {
      utimesSync(BUNDLE, atime, mtime);
    }
  });

  it("in an installed package (no sources; npm dates files by when it unpacked them) the bundle runs even if older", () => {
    const pkg = mkdtempSync(join(tmpdir(), "dsops-installed-"));
    try {
      mkdirSync(join(pkg, "bin"));
      mkdirSync(join(pkg, "dist", "cli"), { recursive: true });
      copyFileSync(join(ROOT, "bin", "dsops"), join(pkg, "bin", "dsops"));
      copyFileSync(BUNDLE, join(pkg, "dist", "cli", "dsops.js"));
      copyFileSync(join(ROOT, "package.json"), join(pkg, "package.json"));
      symlinkSync(join(ROOT, "dist", "provider"), join(pkg, "dist", "provider"), "dir");
      symlinkSync(join(ROOT, "node_modules"), join(pkg, "node_modules"), "dir");
      const older = new Date(statSync(UNBUNDLED).mtimeMs - 60_000);
      utimesSync(join(pkg, "dist", "cli", "dsops.js"), older, older);
      const r = spawnSync(process.execPath, [join(pkg, "bin", "dsops"), "get", "--env", "dev", "--var", "GREETING"], {
        cwd: dir,
        env: { ...process.env, DSOPS_UNBUNDLED: "0", DSOPS_DEBUG_MODULES: "list" },
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "hello\n");
      const { paths } = modulesLoaded(r.stderr);
      assert.ok(paths.includes(join(pkg, "dist", "cli", "dsops.js")), paths.join("\n"));
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });
});
