import { StoreError, TimeoutError } from "../core/errors";
import { runBounded } from "./local-cli";

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
 * install it. The exit code, stdout and stderr are the caller's to interpret. (The process
 * handling is local-cli's `runBounded`, without a process group of its own.)
 */
export async function runCli(r: CliRun): Promise<CliResult> {
  const o = await runBounded(r.cli, r.args, { env: r.env, input: r.stdin, timeoutMs: r.timeoutMs, group: false });
  if (o.kind === "timeout") throw new TimeoutError(`${r.what}: ${r.cli} did not finish within ${r.timeoutMs} ms (timeout_ms)`);
  if (o.kind === "error") {
    const missing = o.error.code === "ENOENT";
    throw new StoreError(`${r.what}: ${missing ? `${r.cli} not found` : `cannot run ${r.cli}: ${o.error.code ?? o.error.message}`}`, false, { hint: r.install });
  }
  return { code: o.code ?? (o.signal ? 128 : 1), stdout: o.stdout, stderr: o.stderr };
}
