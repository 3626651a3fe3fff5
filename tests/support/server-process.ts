import { spawn } from "node:child_process";

/**
 * Test servers run in a child process, for tests whose own event loop blocks while a client
 * runs (spawnSync of the Pulumi CLI). The server's file starts itself when run as
 * `node <file> serve`, prints one JSON line saying where it listens (`serveInChild`), and stops
 * on SIGTERM.
 */
export async function startServerProcess<Ready extends object>(file: string, env: NodeJS.ProcessEnv, what: string): Promise<Ready & { stop(): Promise<void> }> {
  const child = spawn(process.execPath, [file, "serve"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const ready = await new Promise<Ready>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Ready);
    });
    child.on("exit", (code) => reject(new Error(`${what} process exited (${code}) before it was ready`)));
  });
  return {
    ...ready,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** In the child: say where the server listens (one JSON line), and stop it on SIGTERM. */
export function serveInChild(ready: object, stop: () => Promise<unknown>): void {
  process.stdout.write(JSON.stringify(ready) + "\n");
  process.on("SIGTERM", () => void stop().then(() => process.exit(0)));
}
