import { spawn, type ChildProcess } from "node:child_process";
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
  const child = spawn(command, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  let exited = false;
  child.on("exit", () => (exited = true));
  const deadline = Date.now() + (opts.timeoutMs ?? 30000);
  for (;;) {
    if (exited) throw new Error(`${command} exited during start-up:\n${out.slice(-2000)}`);
    if (await opts.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${command} not ready after ${opts.timeoutMs ?? 30000} ms:\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port: opts.port,
    process: child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once("exit", () => resolve());
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
