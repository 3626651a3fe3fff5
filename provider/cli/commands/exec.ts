import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { constants } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { progress } from "../progress";
import { warnUnfinishedRotations, withResolver } from "../util";

const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** `dsops exec`: run a command with an env's variables in its environment; its exit code passes through. */
export function register(program: Command): void {
  program
    .command("exec")
    .description("run a command with the env's variables in its environment")
    .requiredOption("-e, --env <env>", "env name")
    .option("--print", "show the variables (masked) before running")
    .option("--allow-override", "let the env replace variables already set in the environment")
    .option("--timeout <seconds>", "kill the command after this many seconds")
    .option("--working-dir <dir>", "run the command in this folder (checked before anything is resolved)")
    .argument("<command...>", "command and its arguments (after --)")
    .action(async (command: string[], o: { env: string; print?: boolean; allowOverride?: boolean; timeout?: string; workingDir?: string }, cmd: Command) => {
      const cwd = o.workingDir === undefined ? undefined : workingDir(o.workingDir);
      const bar = progress("resolving");
      const vars = await withResolver(
        cmd,
        async (r) => {
          const { audited } = require("../../guard/policy") as typeof import("../../guard/policy");
          return audited(r.config, { command: "exec", env: o.env }, async (note) => {
            const { sealedOfEnv, withSealedReads } = require("../../compose/sealed-reads") as typeof import("../../compose/sealed-reads");
            const res = await withSealedReads(r.config, sealedOfEnv(r.config, o.env), "dsops exec", () => r.resolveEnv(o.env));
            note({ variables: Object.values(res.variables).map((v) => ({ name: v.name, store: v.store, key: v.key, versionId: v.versionId })) });
            bar.end();
            await warnUnfinishedRotations(cmd, r, o.env, Object.keys(res.variables));
            return res.variables;
          });
        },
        { onProgress: bar.update },
      ).finally(bar.end);
      const conflicts = Object.keys(vars).filter((k) => process.env[k] !== undefined);
      if (conflicts.length && !o.allowOverride)
        throw new DsopsError(`already set in the environment: ${conflicts.join(", ")}`, { hint: "pass --allow-override to replace them" });
      if (o.print) for (const [k, v] of Object.entries(vars)) process.stderr.write(`${k}=${v.value.masked()}\n`);
      const env = { ...process.env, ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.value.reveal()])) };
      const code = await runChild(command, env, o.timeout ? Number(o.timeout) : undefined, cwd);
      process.exitCode = code;
    });
}

/** `--working-dir`: an existing folder (relative to the current one), else a user error. */
function workingDir(dir: string): string {
  const abs = resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DsopsError(`--working-dir ${dir}: ${code === "ENOENT" ? "no such folder" : (code ?? "cannot be read")}`, { hint: "pass an existing folder", cause: e });
  }
  if (!isDir) throw new DsopsError(`--working-dir ${dir}: not a folder`, { hint: "pass an existing folder" });
  return abs;
}

function runChild(command: string[], env: NodeJS.ProcessEnv, timeoutSeconds?: number, cwd?: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command[0], command.slice(1), { env, stdio: "inherit", ...(cwd ? { cwd } : {}) });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = SIGNALS.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    const timer = timeoutSeconds ? setTimeout(() => child.kill("SIGTERM"), timeoutSeconds * 1000) : undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(new DsopsError(`cannot run ${command[0]}: ${e.code === "ENOENT" ? "command not found" : e.code ?? e.message}`, { cause: e }));
    });
    child.on("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) resolvePromise(128 + (constants.signals[signal] ?? 1));
      else resolvePromise(code ?? 1);
    });
  });
}
