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
