import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "redis";
import { freePort } from "./server";

const SERVER = "/usr/bin/redis-server";
/** The unprivileged account the server runs as. */
const RUN_AS = "redis";

/** A throwaway Redis server (ACL users) on a free loopback port. */
export interface RunningRedis {
  readonly host: string;
  readonly port: number;
  /** The admin user (`default`, all commands) and its password. */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** True when `user`/`password` logs in (AUTH) and PING answers PONG. */
  canLogin(user: string, password: string): Promise<boolean>;
  /** Run one command as the admin. */
  command(args: string[]): Promise<unknown>;
  /** The server's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export function haveRedis(): boolean {
  return existsSync(SERVER);
}

/**
 * redis-server as `redis`, from a config file in a fresh folder under /tmp (loopback only, no
 * persistence, the `default` user protected by a random password). `stop()` stops it and
 * deletes the folder.
 */
export async function startRedis(): Promise<RunningRedis> {
  if (!haveRedis()) throw new Error(`Redis is not installed (${SERVER}): run scripts/peers/install-db.sh`);
  const root = mkdtempSync("/tmp/dsops-redis-");
  chmodSync(root, 0o755);
  const port = await freePort();
  const adminPassword = randomBytes(18).toString("base64url");
  const conf = join(root, "redis.conf");
  const logFile = join(root, "redis.log");
  writeFileSync(
    conf,
    [`port ${port}`, "bind 127.0.0.1", `dir ${root}`, 'save ""', "appendonly no", `logfile ${logFile}`, `pidfile ${join(root, "redis.pid")}`, `user default on >${adminPassword} ~* &* +@all`, "protected-mode yes"].join("\n") + "\n",
    { mode: 0o600 },
  );
  spawnSync("chown", ["-R", `${RUN_AS}:${RUN_AS}`, root]);
  const child: ChildProcess = spawn("runuser", ["-u", RUN_AS, "--", SERVER, conf], { cwd: "/", stdio: "ignore" });
  let exited = false;
  child.on("exit", () => (exited = true));
  const host = "127.0.0.1";
  const readLog = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const canLogin = async (user: string, password: string): Promise<boolean> => {
    const c = createClient({ socket: { host, port, connectTimeout: 3000, reconnectStrategy: false }, username: user, password });
    c.on("error", () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      if (c.isOpen) c.destroy();
    }
  };
  const deadline = Date.now() + 30000;
  while (!(await canLogin("default", adminPassword))) {
    if (exited) throw new Error(`redis-server exited during start-up:\n${readLog().slice(-2000)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server not ready after 30 s:\n${readLog().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = createClient({ socket: { host, port, reconnectStrategy: false }, username: "default", password: adminPassword });
  admin.on("error", () => undefined);
  await admin.connect();
  let stopped = false;
  return {
    host,
    port,
    adminUser: "default",
    adminPassword,
    canLogin,
    command: (args) => admin.sendCommand(args),
    log: readLog,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        if (admin.isOpen) admin.destroy();
        if (!exited) {
          const done = new Promise<void>((r) => child.once("exit", () => r()));
          // The server's own pid (runuser does not pass signals on in every version).
          let pid = 0;
          try {
            pid = Number(readFileSync(join(root, "redis.pid"), "utf8").trim());
          } catch {
            /* no pid file yet */
          }
          const kill = (sig: NodeJS.Signals) => (pid > 0 ? process.kill(pid, sig) : child.kill(sig));
          kill("SIGTERM");
          const t = setTimeout(() => kill("SIGKILL"), 10000);
          await done;
          clearTimeout(t);
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
