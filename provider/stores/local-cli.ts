import { spawn } from "node:child_process";
import { DsopsError, TimeoutError } from "../core/errors";

/** What a local command printed, and how it ended. */
export interface CliOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Process groups of the local commands running now: ended with dsops (a Ctrl-C leaves no gpg waiting on a pinentry). */
const running = new Set<number>();
let exitHook = false;
function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * While commands run, a SIGINT/SIGTERM/SIGHUP to dsops (Ctrl-C: the terminal signals only its
 * foreground group, and our children have their own) also ends their groups; then dsops dies of
 * the signal as it would have, unless something else of dsops listens for it.
 */
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let watching = false;
function onSignal(sig: NodeJS.Signals): void {
  running.forEach(killGroup);
  running.clear();
  unwatchSignals();
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}
function watchSignals(): void {
  if (watching) return;
  watching = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}
function unwatchSignals(): void {
  if (!watching) return;
  watching = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** How a bounded run of a command ended: it finished, hit its deadline, or could not be started. */
export type BoundedRun =
  | ({ readonly kind: "done" } & CliOutcome)
  | { readonly kind: "timeout" }
  | { readonly kind: "error"; readonly error: NodeJS.ErrnoException };

/**
 * Run a command once with `input` on stdin (then closed) and a deadline; the caller turns the
 * outcome into its own messages. With `group` the child runs in its own process group, the whole
 * group is killed at the deadline and when dsops is interrupted or exits, and the timeout is
 * told once the group is gone; without it only the child is killed and the timeout is told at
 * once.
 */
export function runBounded(
  cli: string,
  args: readonly string[],
  opts: { env: NodeJS.ProcessEnv; input?: string; timeoutMs: number; cwd?: string; group: boolean },
): Promise<BoundedRun> {
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cli, [...args], { env: opts.env, stdio: ["pipe", "pipe", "pipe"], detached: opts.group, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    } catch (e) {
      resolve({ kind: "error", error: e as NodeJS.ErrnoException });
      return;
    }
    const pid = opts.group ? child.pid : undefined;
    if (pid !== undefined) {
      running.add(pid);
      if (!exitHook) {
        exitHook = true;
        process.once("exit", () => running.forEach(killGroup));
      }
      watchSignals();
    }
    const release = () => {
      clearTimeout(timer);
      if (pid === undefined) return;
      running.delete(pid);
      if (running.size === 0) unwatchSignals();
    };
    let settled = false;
    const settle = (r: BoundedRun) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid);
      else {
        child.kill("SIGKILL");
        settle({ kind: "timeout" });
      }
    }, opts.timeoutMs);
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.stdin?.on("error", () => undefined); // a child that exits before reading its input
    child.on("error", (e: NodeJS.ErrnoException) => {
      release();
      settle({ kind: "error", error: e });
    });
    child.on("close", (code, signal) => {
      release();
      settle(timedOut ? { kind: "timeout" } : { kind: "done", code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
    child.stdin?.end(opts.input ?? "");
  });
}

/**
 * Run a local command (`pass`, `secret-tool`, `security`) with a timeout. Secrets travel only on
 * stdin (`input`) or in the child's environment, never in `args`. The child runs in its own
 * process group, and the whole group is killed at the timeout (a `pass` whose gpg waits on a
 * pinentry leaves nothing behind). A missing command is a DsopsError naming it and `install`.
 */
export async function runLocalCli(
  cli: string,
  args: readonly string[],
  opts: { env: NodeJS.ProcessEnv; input?: string; timeoutMs: number; what: string; install: string; cwd?: string },
): Promise<CliOutcome> {
  const r = await runBounded(cli, args, { ...opts, group: true });
  if (r.kind === "timeout") throw new TimeoutError(`${opts.what}: "${cli} ${args[0] ?? ""}" gave no answer within ${opts.timeoutMs} ms (timeout_ms); it was stopped`);
  if (r.kind === "error") {
    if (r.error.code === "ENOENT") throw new DsopsError(`${opts.what}: the command "${cli}" is not installed (not found on PATH)`, { hint: opts.install });
    throw new DsopsError(`${opts.what}: cannot run "${cli}": ${r.error.code ?? r.error.message}`, { hint: opts.install });
  }
  return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The last few lines of a command's stderr, for an error message (callers scrub values first). */
export function stderrTail(stderr: string, max = 300): string {
  const t = stderr.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "").trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}
