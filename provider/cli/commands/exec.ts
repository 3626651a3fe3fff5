import { spawn } from "node:child_process";
import { constants } from "node:os";
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
    .argument("<command...>", "command and its arguments (after --)")
    .action(async (command: string[], o: { env: string; print?: boolean; allowOverride?: boolean; timeout?: string }, cmd: Command) => {
      const bar = progress("resolving");
      const vars = await withResolver(
        cmd,
        async (r) => {
          const res = await r.resolveEnv(o.env);
          bar.end();
          await warnUnfinishedRotations(cmd, r, o.env, Object.keys(res.variables));
          return res.variables;
        },
        { onProgress: bar.update },
      ).finally(bar.end);
      const conflicts = Object.keys(vars).filter((k) => process.env[k] !== undefined);
      if (conflicts.length && !o.allowOverride)
        throw new DsopsError(`already set in the environment: ${conflicts.join(", ")}`, { hint: "pass --allow-override to replace them" });
      if (o.print) for (const [k, v] of Object.entries(vars)) process.stderr.write(`${k}=${v.value.masked()}\n`);
      const env = { ...process.env, ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.value.reveal()])) };
      const code = await runChild(command, env, o.timeout ? Number(o.timeout) : undefined);
      process.exitCode = code;
    });
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
