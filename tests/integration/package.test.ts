import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

/**
 * The package as users get it: `npm pack` from a fresh checkout, and its type declarations
 * compiled by the project's TypeScript under the tsconfig `pulumi new typescript` writes
 * (strict, no skipLibCheck, no esModuleInterop), together with the README's TypeScript examples.
 */
const ROOT = join(__dirname, "..", "..", "..");

/** compilerOptions of the `pulumi new typescript` template's tsconfig.json. */
const TEMPLATE_OPTIONS = {
  strict: true,
  outDir: "bin",
  target: "es2020",
  module: "commonjs",
  moduleResolution: "node",
  sourceMap: true,
  experimentalDecorators: true,
  pretty: true,
  noFallthroughCasesInSwitch: true,
  noImplicitReturns: true,
  forceConsistentCasingInFileNames: true,
};

/** A program folder whose node_modules holds the package, @pulumi/pulumi and @types/node, as after `npm install`. */
function programDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dsops-types-"));
  mkdirSync(join(dir, "node_modules", "@dsops"), { recursive: true });
  mkdirSync(join(dir, "node_modules", "@pulumi"), { recursive: true });
  mkdirSync(join(dir, "node_modules", "@types"), { recursive: true });
  symlinkSync(ROOT, join(dir, "node_modules", "@dsops", "pulumi"), "dir");
  symlinkSync(join(ROOT, "node_modules", "@pulumi", "pulumi"), join(dir, "node_modules", "@pulumi", "pulumi"), "dir");
  symlinkSync(join(ROOT, "node_modules", "@types", "node"), join(dir, "node_modules", "@types", "node"), "dir");
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: TEMPLATE_OPTIONS, files: Object.keys(files) }, null, 4));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function tsc(dir: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json", "--noEmit", "--pretty", "false"], { cwd: dir, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A program that uses every export of the SDK the way the README shows. */
const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import * as dsops from "@dsops/pulumi";

const cfg = new pulumi.Config();
const token = new dsops.SecretReference("token", { ref: "store://local/app/token" });
const byName = new dsops.SecretReference("by-name", { store: "local", key: "app/db#password", transform: ["trim"] });
const inline = new dsops.SecretReference("inline", { store: { type: "vault", address: cfg.require("address"), token: cfg.requireSecret("token") }, key: "secret/app" });
const env = new dsops.Environment("env", { configFile: "dsops.yaml", env: "dev" });
const weekly = new dsops.MaintenanceWindow("weekly", { schedule: "0 2 * * SUN", duration: "4h", timezone: "Europe/Berlin", blackouts: [{ start: "2026-12-24", end: "2026-12-26", reason: "freeze" }] });
const policy = new dsops.RotationPolicy("policy", {
  secret: token, target: "app-db", strategy: "alternating-users", users: ["app_a", "app_b"],
  schedule: { every: "30d" }, windows: [weekly, { schedule: "0 3 * * *", duration: "1h" }], triggers: { n: cfg.get("n") ?? "0" },
});
const viaOutput = dsops.getSecretOutput({ store: "local", key: byName.storeType.apply(() => "app/token") });
const envOutput = dsops.getEnvironmentOutput({ configFile: cfg.get("file") ?? "dsops.yaml", env: "dev" });
const rows: pulumi.Output<dsops.EnvironmentPlanRow[]> = env.plan;

export const value: pulumi.Output<string> = viaOutput.value;
export const versionId: pulumi.Output<string> = viaOutput.versionId;
export const variables: pulumi.Output<Record<string, string>> = envOutput.variables;
export const plan = rows;
export const status: pulumi.Output<string> = policy.status;
export const isOpen: pulumi.Output<boolean> = weekly.isOpen;
export const inlineValue = inline.value;
export const later: Promise<pulumi.Output<string>> = dsops.getSecret({ ref: "store://local/app/token" }).then((r) => r.value);
export const laterEnv = dsops.getEnvironment({ configFile: "dsops.yaml", env: "dev" }).then((r) => r.plan.map((p) => p.name));
export const token2 = dsops.schemaToken("SecretReference");
`;

/** The \`\`\`ts blocks of README.md. */
function readmeBlocks(): string[] {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

function walk(dir: string, skip: Set<string>, out: string[] = [], base = dir): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, skip, out, base);
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

describe("the published package", function () {
  this.timeout(300000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("compiles with its types under the `pulumi new typescript` tsconfig (no skipLibCheck, no esModuleInterop)", () => {
    const dir = programDir({ "index.ts": PROGRAM });
    dirs.push(dir);
    const r = tsc(dir);
    assert.equal(r.status, 0, r.output.split("\n").slice(0, 15).join("\n"));
  });

  it("the README's TypeScript examples compile as programs under that tsconfig", () => {
    const blocks = readmeBlocks();
    assert.ok(blocks.length >= 3, `found ${blocks.length} ts blocks`);
    const files = Object.fromEntries(blocks.map((b, i) => [`example${i + 1}.ts`, b]));
    const dir = programDir(files);
    dirs.push(dir);
    const r = tsc(dir);
    assert.equal(r.status, 0, r.output.split("\n").slice(0, 15).join("\n"));
  });

  it("`npm pack` of a fresh checkout builds and ships dist/ (sdk and provider, declarations included), without tests or benchmarks", () => {
    // A fresh checkout: the sources without dist/ (nor node_modules, which is linked as after `npm ci`).
    const dir = mkdtempSync(join(tmpdir(), "dsops-pack-"));
    dirs.push(dir);
    for (const f of walk(ROOT, new Set(["node_modules", "dist", ".git", "coverage", ".state", ".nyc_output"]))) {
      mkdirSync(join(dir, f, ".."), { recursive: true });
      cpSync(join(ROOT, f), join(dir, f));
    }
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
    const r = spawnSync("npm", ["pack", "--dry-run", "--json"], { cwd: dir, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });
    assert.equal(r.status, 0, `npm pack exited ${r.status}: ${r.stderr.slice(-2000)}`);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf("["))) as Array<{ files: Array<{ path: string }> }>;
    const paths = report[0].files.map((f) => f.path);
    for (const p of ["dist/sdk/index.js", "dist/sdk/index.d.ts", "dist/provider/dynamic/handlers.js", "dist/provider/dynamic/providers.js", "dist/provider/engine/index.js", "dist/cli/dsops.js", "bin/dsops", "schema.json", "README.md", "package.json"])
      assert.ok(paths.includes(p), `${p} is missing from the package (${paths.length} files)`);
    const unwanted = paths.filter((p) => /^(dist\/)?(tests|bench)\//.test(p) || p.endsWith(".ts") && !p.endsWith(".d.ts"));
    assert.deepEqual(unwanted, [], "no tests, benchmarks or TypeScript sources in the package");
  });
});
