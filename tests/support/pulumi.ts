import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..", "..");

let binDir: string | undefined;

/** The real Pulumi CLI, built by scripts/install-pulumi.sh (cached; built on first use). */
export function pulumiBinDir(): string {
  if (!binDir) {
    const out = execFileSync("bash", [join(ROOT, "scripts", "install-pulumi.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    binDir = out.trim().split("\n").pop() as string;
  }
  return binDir;
}

export interface PulumiRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A Pulumi program in a temporary folder that consumes the package as users do: its
 * node_modules links @dsops/pulumi to this repository and @pulumi/pulumi to the one copy the
 * package uses. File backend, offline, its own passphrase.
 */
export class PulumiProject {
  readonly dir: string;
  readonly stateDir: string;
  /** Everything the CLI printed, for the secret-leak checks. */
  readonly transcript: string[] = [];
  env: NodeJS.ProcessEnv;

  constructor(name: string, program: string, extraEnv: NodeJS.ProcessEnv = {}) {
    this.dir = mkdtempSync(join(tmpdir(), `dsops-e2e-${name}-`));
    this.stateDir = join(this.dir, ".state");
    mkdirSync(join(this.dir, "node_modules", "@dsops"), { recursive: true });
    mkdirSync(join(this.dir, "node_modules", "@pulumi"), { recursive: true });
    symlinkSync(ROOT, join(this.dir, "node_modules", "@dsops", "pulumi"), "dir");
    symlinkSync(join(ROOT, "node_modules", "@pulumi", "pulumi"), join(this.dir, "node_modules", "@pulumi", "pulumi"), "dir");
    writeFileSync(join(this.dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n`);
    writeFileSync(join(this.dir, "index.js"), program);
    mkdirSync(this.stateDir);
    this.env = {
      ...process.env,
      PATH: `${pulumiBinDir()}:${process.env.PATH}`,
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_HOME: join(this.stateDir, ".pulumi-home"),
      PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...extraEnv,
    };
  }

  write(file: string, text: string): void {
    writeFileSync(join(this.dir, file), text);
  }

  /** How long one pulumi command may run before it is killed (the benchmark's 1,000-resource stacks need more). */
  timeoutMs = 180_000;

  run(args: string[], env: NodeJS.ProcessEnv = {}, record = true): PulumiRun {
    const r = spawnSync("pulumi", [...args, "--non-interactive"], { cwd: this.dir, env: { ...this.env, ...env }, encoding: "utf8", timeout: this.timeoutMs });
    const res = { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    if (record) this.transcript.push(`$ pulumi ${args.join(" ")}\n${res.stdout}\n${res.stderr}`);
    return res;
  }

  /** The stack's outputs with secrets shown, read for assertions only (not recorded in the transcript). */
  secretOutputs(): Record<string, unknown> {
    const r = this.run(["stack", "output", "--json", "--show-secrets"], {}, false);
    if (r.status !== 0) throw new Error(`pulumi stack output exited ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** Run and fail with the CLI's output when it does not exit 0. */
  ok(args: string[], env: NodeJS.ProcessEnv = {}): PulumiRun {
    const r = this.run(args, env);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  /** `pulumi preview --json`: the change summary by operation. */
  previewSummary(env: NodeJS.ProcessEnv = {}): Record<string, number> {
    const r = this.ok(["preview", "--json"], env);
    return (JSON.parse(r.stdout) as { changeSummary: Record<string, number> }).changeSummary;
  }

  outputs(): Record<string, unknown> {
    return JSON.parse(this.ok(["stack", "output", "--json"]).stdout) as Record<string, unknown>;
  }

  /** The text of every state file and checkpoint backup of the stack. */
  stateText(): string {
    const out: string[] = [];
    const walk = (d: string) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.json(\.bak)?$|\.json\.attrs$/.test(e.name) || e.name.endsWith(".bak")) out.push(readFileSync(p, "utf8"));
      }
    };
    walk(join(this.stateDir, ".pulumi"));
    return out.join("\n");
  }

  /** Fail when any of the values appears in plaintext in the state or in anything the CLI printed. */
  assertNoLeak(values: string[]): void {
    const state = this.stateText();
    const printed = this.transcript.join("\n");
    for (const v of values) {
      if (state.includes(v)) throw new Error(`a secret value appears in plaintext in the Pulumi state (${v.length} chars)`);
      if (printed.includes(v)) throw new Error(`a secret value appears in the Pulumi CLI output (${v.length} chars)`);
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The lines of one `dsops:index:<type>` resource's block (the one named `name`) of a `pulumi preview --diff` display. */
export function diffBlock(text: string, type: string, name: string): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l, i) => l.includes(`dsops:index:${type}: (`) && lines.slice(i, i + 4).some((x) => x.includes(`::${name}]`)));
  if (start < 0) return "";
  const end = lines.findIndex((l, i) => i > start && /^\s*[~+-]?\s*[\w-]+:[\w/:]+: \(/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}
