import { spawn } from "node:child_process";
import { StoreError, TimeoutError } from "../core/errors";

/** What a password manager's CLI said. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** How to run a password manager's CLI for a store. */
export interface CliRun {
  /** The program (a name on PATH, or a path). */
  readonly cli: string;
  readonly args: readonly string[];
  /** Written to the child's stdin, then stdin is closed (passwords go here, never in argv). */
  readonly stdin?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  /** `store "<name>": <what>`, the start of every error. */
  readonly what: string;
  /** How to install the CLI, for the error when it is missing. */
  readonly install: string;
}

/**
 * Run a CLI once, with its input on stdin and a deadline: past `timeoutMs` the child is killed
 * and the call fails with a TimeoutError. A missing program is a StoreError saying how to
 * install it. The exit code, stdout and stderr are the caller's to interpret.
 */
export function runCli(r: CliRun): Promise<CliResult> {
  return new Promise<CliResult>((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(r.cli, [...r.args], { env: r.env, stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      reject(new StoreError(`${r.what}: cannot run ${r.cli}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, false, { hint: r.install }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let done = false;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(() => reject(new TimeoutError(`${r.what}: ${r.cli} did not finish within ${r.timeoutMs} ms (timeout_ms)`)));
    }, r.timeoutMs);
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      const missing = e.code === "ENOENT";
      finish(() => reject(new StoreError(`${r.what}: ${missing ? `${r.cli} not found` : `cannot run ${r.cli}: ${e.code ?? e.message}`}`, false, { hint: r.install })));
    });
    child.on("close", (code, signal) => {
      finish(() => resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
    });
    // A child that exits before reading its input closes the pipe: not an error of ours.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(r.stdin ?? "");
  });
}
