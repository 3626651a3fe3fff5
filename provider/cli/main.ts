import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { DsopsError, ResolveError, ConfigError } from "../engine/errors";
import { loadConfigFile, type Config } from "../engine/config/load";
import { Resolver } from "../engine/resolve";
import { Secret } from "../engine/secret";
import { isoNow } from "../engine/clock";
import { formatFromPath, outputFormats, render, type OutputFormat } from "../engine/render";
import { writeFileAtomic } from "../engine/fsutil";

/** Exit codes: 0 ok, 1 user error, 2 usage; `exec` passes the child's code through. */
export const EXIT = { ok: 0, user: 1, usage: 2 } as const;

interface GlobalOptions {
  config: string;
}

function loadConfig(cmd: Command): Config {
  const opts = cmd.optsWithGlobals() as GlobalOptions;
  return loadConfigFile(opts.config);
}

function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

async function withResolver<T>(cmd: Command, fn: (r: Resolver) => Promise<T>): Promise<T> {
  const r = new Resolver(loadConfig(cmd), { onWarning: warn });
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n") + "\n";
}

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    throw new DsopsError("no value on standard input", { hint: "pipe the value in: printf %s \"$VALUE\" | dsops secrets set …" });
  }
}

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

export function buildProgram(): Command {
  const program = new Command("dsops")
    .description("Resolve secrets from your stores into files and processes, and rotate them")
    .option("-c, --config <path>", "configuration file", process.env.DSOPS_CONFIG ?? "dsops.yaml")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command("plan")
    .description("show what an env would resolve, from where; no store is called and no value shown")
    .requiredOption("-e, --env <env>", "env name")
    .option("--json", "machine-readable output")
    .action(async (o: { env: string; json?: boolean }, cmd: Command) => {
      const r = new Resolver(loadConfig(cmd));
      const plan = r.plan(o.env);
      if (o.json) {
        process.stdout.write(JSON.stringify({ env: o.env, variables: plan }, null, 2) + "\n");
        return;
      }
      const rows = [["VARIABLE", "SOURCE", "STORE", "KEY", "TRANSFORMS"]];
      for (const p of plan)
        rows.push([
          p.name + (p.optional ? " (optional)" : ""),
          p.source,
          p.store ? `${p.store} (${p.storeType})` : "-",
          p.key ? `${p.key}${p.field ? `#${p.field}` : ""}${p.version ? `@${p.version}` : ""}` : "-",
          p.transforms.join(" | ") || "-",
        ]);
      process.stdout.write(table(rows));
    });

  program
    .command("get")
    .description("print one variable's value (the only command that prints a secret)")
    .requiredOption("-e, --env <env>", "env name")
    .requiredOption("--var <name>", "variable name")
    .option("--json", "print {name, value, store, key, versionId}")
    .action(async (o: { env: string; var: string; json?: boolean }, cmd: Command) => {
      await withResolver(cmd, async (r) => {
        const res = await r.resolveEnv(o.env, [o.var]);
        const v = res.variables[o.var];
        if (!v) throw new DsopsError(`${o.var} is optional and could not be resolved`);
        if (o.json) {
          const { value, ...meta } = v;
          process.stdout.write(JSON.stringify({ ...meta, value: value.reveal() }) + "\n");
        } else process.stdout.write(v.value.reveal() + "\n");
      });
    });

  program
    .command("render")
    .description("write an env to a file (mode 0600 by default)")
    .requiredOption("-e, --env <env>", "env name")
    .requiredOption("-o, --out <path>", "output file")
    .addOption(new Option("-f, --format <format>", "output format (default from the file extension)").choices(outputFormats))
    .option("-t, --template <file>", "template file (template format)")
    .option("--permissions <mode>", "file mode, octal", "0600")
    .action(async (o: { env: string; out: string; format?: OutputFormat; template?: string; permissions: string }, cmd: Command) => {
      const format = o.format ?? (o.template ? "template" : formatFromPath(o.out));
      if (!format) throw new DsopsError(`cannot tell the format of ${o.out} from its name`, { hint: `pass --format ${outputFormats.join("|")}` });
      const mode = parseInt(o.permissions, 8);
      if (!/^0?[0-7]{3}$/.test(o.permissions)) throw new DsopsError(`--permissions ${o.permissions}: expected an octal mode such as 0600`);
      let template: string | undefined;
      if (format === "template") {
        if (!o.template) throw new DsopsError("the template format needs --template FILE");
        try {
          template = readFileSync(o.template, "utf8");
        } catch {
          throw new DsopsError(`cannot read template ${o.template}`);
        }
      }
      await withResolver(cmd, async (r) => {
        const res = await r.resolveEnv(o.env);
        const vars = Object.fromEntries(Object.entries(res.variables).map(([k, v]) => [k, v.value]));
        const text = render(format, { variables: vars, generatedAt: isoNow(), template, templateName: o.template });
        writeFileAtomic(resolve(o.out), text, mode);
        process.stderr.write(`wrote ${Object.keys(vars).length} variables to ${o.out} (${format}, mode ${o.permissions})\n`);
      });
    });

  program
    .command("exec")
    .description("run a command with the env's variables in its environment")
    .requiredOption("-e, --env <env>", "env name")
    .option("--print", "show the variables (masked) before running")
    .option("--allow-override", "let the env replace variables already set in the environment")
    .option("--timeout <seconds>", "kill the command after this many seconds")
    .argument("<command...>", "command and its arguments (after --)")
    .action(async (command: string[], o: { env: string; print?: boolean; allowOverride?: boolean; timeout?: string }, cmd: Command) => {
      const vars = await withResolver(cmd, async (r) => (await r.resolveEnv(o.env)).variables);
      const conflicts = Object.keys(vars).filter((k) => process.env[k] !== undefined);
      if (conflicts.length && !o.allowOverride)
        throw new DsopsError(`already set in the environment: ${conflicts.join(", ")}`, { hint: "pass --allow-override to replace them" });
      if (o.print) for (const [k, v] of Object.entries(vars)) process.stderr.write(`${k}=${v.value.masked()}\n`);
      const env = { ...process.env, ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.value.reveal()])) };
      const code = await runChild(command, env, o.timeout ? Number(o.timeout) : undefined);
      process.exitCode = code;
    });

  const secrets = program.command("secrets").description("write and inspect secrets in writable stores");
  secrets
    .command("set")
    .description("write a new version of a secret; the value is read from standard input")
    .requiredOption("-s, --store <store>", "store name")
    .requiredOption("-k, --key <key>", "key in the store")
    .option("--description <text>", "description kept with the version")
    .action(async (o: { store: string; key: string; description?: string }, cmd: Command) => {
      await withResolver(cmd, async (r) => {
        const store = r.store(o.store);
        if (!store.capabilities.write || !store.put) throw new DsopsError(`store "${o.store}" (${store.type}) is read-only`);
        let value = readStdin();
        if (value.endsWith("\n")) value = value.slice(0, -1);
        if (value.endsWith("\r")) value = value.slice(0, -1);
        if (value === "") throw new DsopsError("empty value on standard input");
        const info = await store.put(o.key, new Secret(value), o.description ? { description: o.description } : undefined);
        process.stderr.write(`store ${o.store}: ${o.key} → version ${info.versionId}\n`);
      });
    });

  return program;
}

function runChild(command: string[], env: NodeJS.ProcessEnv, timeoutSeconds?: number): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command[0], command.slice(1), { env, stdio: "inherit" });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = SIGNALS.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    const timer = timeoutSeconds ? setTimeout(() => child.kill("SIGTERM"), timeoutSeconds * 1000) : undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(new DsopsError(`cannot run ${command[0]}: ${e.code === "ENOENT" ? "command not found" : e.code ?? e.message}`));
    });
    child.on("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) {
        const num = (require("node:os") as typeof import("node:os")).constants.signals[signal] ?? 1;
        resolvePromise(128 + num);
      } else resolvePromise(code ?? 1);
    });
  });
}

function printError(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.usage;
  if (e instanceof ConfigError) {
    process.stderr.write(`error: invalid configuration:\n${e.problems.map((p) => `  - ${p}`).join("\n")}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    return EXIT.user;
  }
  if (e instanceof ResolveError || e instanceof DsopsError) {
    process.stderr.write(`error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    return EXIT.user;
  }
  process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 70;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = printError(e);
  }
}
