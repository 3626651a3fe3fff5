import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** True when a start-up error says the port was taken (by anyone) between freePort() and the bind. */
export function isPortClash(err: unknown): boolean {
  return /address already in use|EADDRINUSE|could not bind/i.test(err instanceof Error ? err.message : String(err));
}

/**
 * Start a server on a free port, and on a new one when the port was taken between freePort()
 * and the server's own bind (outgoing connections of every process on the machine draw from
 * the same ephemeral range): up to `tries` ports, then the last error.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, tries = 4): Promise<T> {
  for (let i = 1; ; i++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      if (i >= tries || !isPortClash(err)) throw err;
    }
  }
}

/**
 * Start several things at once; when one fails, stop those that started (with `stop`) before
 * rethrowing, so that a failed `before` hook leaves no server behind (mocha would wait for it
 * forever).
 */
export async function startAll<T extends readonly unknown[]>(
  starts: { [K in keyof T]: Promise<T[K]> },
  stop: (started: T[number]) => Promise<unknown> | unknown,
): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly Promise<unknown>[]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
  await Promise.all(settled.map((s) => (s.status === "fulfilled" ? Promise.resolve(stop(s.value as T[number])).catch(() => undefined) : undefined)));
  throw failed.reason;
}

/** A server process started for a test, stopped by `stop()`. */
export interface RunningServer {
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the process printed so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Start `command` and wait until `ready()` resolves true (polled every 100 ms, up to
 * `timeoutMs`). Real servers need real start-up time; this waits on readiness, not on a clock.
 */
export async function startServer(
  command: string,
  args: string[],
  opts: { port: number; ready: () => Promise<boolean>; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunningServer> {
  // The server writes to a file, not a pipe: a test that blocks its event loop (spawnSync of the
  // Pulumi CLI) would otherwise stop draining the pipe, and the server would hang on a full pipe.
  const logDir = mkdtempSync(join(tmpdir(), "dsops-server-log-"));
  const logPath = join(logDir, "output.log");
  const fd = openSync(logPath, "a");
  const child = spawn(command, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const read = () => {
    try {
      return readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };
  let exited = false;
  child.on("exit", () => (exited = true));
  const deadline = Date.now() + (opts.timeoutMs ?? 30000);
  for (;;) {
    if (exited) throw new Error(`${command} exited during start-up:\n${read().slice(-2000)}`);
    if (await opts.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${command} not ready after ${opts.timeoutMs ?? 30000} ms:\n${read().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port: opts.port,
    process: child,
    output: read,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(logDir, { recursive: true, force: true });
          resolve();
        };
        if (exited) return done();
        child.once("exit", done);
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

/** True when an HTTP GET of `url` answers (any status below 500). */
export async function httpReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.status < 500;
  } catch {
    return false;
  }
}
