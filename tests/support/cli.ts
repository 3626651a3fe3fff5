import { spawnSync, spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { join } from "node:path";

/** The built `dsops` command, run as users run it. */
export const DSOPS_BIN = join(__dirname, "..", "..", "..", "bin", "dsops");

/**
 * `DSOPS_CLI_BIN=/path/to/dsops`: the CLI tests run that single executable (`npm run build:bin`;
 * `npm run test:bin` builds it and runs them) instead of `node bin/dsops`.
 */
export const DSOPS_CLI_BIN: string | undefined = process.env.DSOPS_CLI_BIN || undefined;

/** The program and first arguments that start dsops: `node bin/dsops`, or the single executable. */
export const DSOPS_CMD: readonly [string, ...string[]] = DSOPS_CLI_BIN ? [DSOPS_CLI_BIN] : [process.execPath, DSOPS_BIN];
const [PROGRAM, ...FIRST_ARGS] = DSOPS_CMD;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function dsops(args: string[], opts: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): CliResult {
  const r = spawnSync(PROGRAM, [...FIRST_ARGS, ...args], {
    cwd: opts.cwd,
    input: opts.input,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start `dsops` without waiting (signals, long runs). */
export function dsopsAsync(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; stdin?: "ignore" | "pipe" }) {
  return spawn(PROGRAM, [...FIRST_ARGS, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: [opts.stdin ?? "ignore", "pipe", "pipe"] }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
}

/**
 * Run `dsops` without blocking the test's event loop (unlike `dsops`, whose spawnSync would
 * stop servers the test itself runs, such as a fault-injecting proxy, from answering).
 */
export function dsopsRun(args: string[], opts: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(PROGRAM, [...FIRST_ARGS, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolvePromise({ status, stdout, stderr }));
    child.stdin.on("error", () => undefined); // a command that does not read its input
    child.stdin.end(opts.input ?? "");
  });
}
