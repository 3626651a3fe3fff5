import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

/** This package's `dsops` command (from dist/provider/library/testing/), run as users run it. */
export const DSOPS_BIN = join(__dirname, "..", "..", "..", "..", "bin", "dsops");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `dsops` and wait for it. */
export function dsops(args: string[], opts: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): CliResult {
  const r = spawnSync(process.execPath, [DSOPS_BIN, ...args], { cwd: opts.cwd, input: opts.input, env: { ...process.env, ...opts.env }, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run `dsops` without blocking the caller's event loop (servers the test runs keep answering). */
export function dsopsRun(args: string[], opts: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [DSOPS_BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
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
