import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createConnection, type Connection } from "mysql2/promise";
import { freePort } from "./server";

const SERVER = "/usr/sbin/mariadbd";
/** The unprivileged account the server runs as (it refuses root without --user). */
const RUN_AS = "mysql";

/** A throwaway MariaDB server on a free loopback port, password logins over TCP. */
export interface RunningMariaDb {
  readonly host: string;
  readonly port: number;
  /** An admin user (`dsops_admin`@`%`, all privileges with grant option) and its password. */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** A connection as `user` (throws when the login is refused). */
  connect(user: string, password: string): Promise<Connection>;
  /** True when `user`/`password` logs in and `SELECT 1` answers. */
  canLogin(user: string, password: string): Promise<boolean>;
  /** The server's general query log so far (every statement: tests search it for values). */
  log(): string;
  stop(): Promise<void>;
}

export function haveMariaDb(): boolean {
  return existsSync(SERVER);
}

function run(args: string[], what: string): string {
  const r = spawnSync("runuser", ["-u", RUN_AS, "--", ...args], { cwd: "/", encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${(r.stdout ?? "") + (r.stderr ?? "")}`.slice(0, 4000));
  return r.stdout;
}

/**
 * mariadb-install-db into a fresh folder under /tmp owned by `mysql`, then mariadbd (as `mysql`,
 * no option files, loopback only, general log on) on a free port; an admin user with a random
 * password is created over the local socket. `stop()` stops the server and deletes the folder.
 */
export async function startMariaDb(): Promise<RunningMariaDb> {
  if (!haveMariaDb()) throw new Error(`MariaDB is not installed (${SERVER}): run scripts/peers/install-db.sh`);
  const root = mkdtempSync("/tmp/dsops-mariadb-");
  chmodSync(root, 0o755);
  const data = join(root, "data");
  const sock = join(root, "mysqld.sock");
  const logFile = join(root, "general.log");
  const errFile = join(root, "error.log");
  spawnSync("chown", ["-R", `${RUN_AS}:${RUN_AS}`, root]);
  run(["mariadb-install-db", "--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"], "mariadb-install-db");
  const port = await freePort();
  const child: ChildProcess = spawn(
    "runuser",
    [
      "-u",
      RUN_AS,
      "--",
      SERVER,
      "--no-defaults",
      `--datadir=${data}`,
      `--socket=${sock}`,
      `--pid-file=${join(root, "mysqld.pid")}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=16M",
      "--innodb-flush-log-at-trx-commit=0",
      "--general-log=1",
      `--general-log-file=${logFile}`,
      `--log-error=${errFile}`,
      "--max-connections=300",
    ],
    { cwd: "/", stdio: "ignore" },
  );
  let exited = false;
  child.on("exit", () => (exited = true));
  const host = "127.0.0.1";
  const adminUser = "dsops_admin";
  const adminPassword = randomBytes(18).toString("base64url");
  const readFile = (p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return "";
    }
  };
  // Ready when root logs in over the socket (no password: install-db's "normal" root).
  const deadline = Date.now() + 60000;
  let rootConn: Connection | undefined;
  while (!rootConn) {
    if (exited) throw new Error(`mariadbd exited during start-up:\n${readFile(errFile).slice(-2000)}`);
    try {
      rootConn = await createConnection({ socketPath: sock, user: "root" });
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`mariadbd not ready after 60 s:\n${readFile(errFile).slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    await rootConn.query("CREATE USER ?@'%' IDENTIFIED BY ?", [adminUser, adminPassword]);
    await rootConn.query("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", [adminUser]);
  } finally {
    await rootConn.end();
  }
  const connect = (user: string, password: string) => createConnection({ host, port, user, password, connectTimeout: 5000 });
  const canLogin = async (user: string, password: string): Promise<boolean> => {
    try {
      const c = await connect(user, password);
      try {
        await c.query("SELECT 1");
        return true;
      } finally {
        await c.end();
      }
    } catch {
      return false;
    }
  };
  let stopped = false;
  return {
    host,
    port,
    adminUser,
    adminPassword,
    connect,
    canLogin,
    log: () => readFile(logFile),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        if (!exited) {
          const done = new Promise<void>((r) => child.once("exit", () => r()));
          const pid = Number(readFile(join(root, "mysqld.pid")).trim());
          // The server's own pid (runuser does not pass signals on in every version).
          if (pid > 0) process.kill(pid, "SIGTERM");
          else child.kill("SIGTERM");
          const t = setTimeout(() => (pid > 0 ? process.kill(pid, "SIGKILL") : child.kill("SIGKILL")), 15000);
          await done;
          clearTimeout(t);
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
