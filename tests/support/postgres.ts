import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { onFreePort } from "./server";

const BIN = "/usr/lib/postgresql/15/bin";

/** A throwaway PostgreSQL 15 server on a free loopback port, password logins over TCP (SCRAM). */
export interface RunningPostgres {
  readonly host: string;
  readonly port: number;
  /** The superuser (`postgres`) and its password. */
  readonly adminUser: string;
  readonly adminPassword: string;
  /** `postgresql://user:pw@127.0.0.1:port/db` (values percent-encoded). */
  connectionString(user: string, password: string, database?: string): string;
  /** True when `user`/`password` logs in over TCP and `SELECT 1` answers. */
  canLogin(user: string, password: string): Promise<boolean>;
  /** The server's log so far (every statement is logged: tests search it for values). */
  log(): string;
  stop(): Promise<void>;
}

/** True when PostgreSQL 15's server binaries are installed. */
export function havePostgres(): boolean {
  return existsSync(join(BIN, "postgres"));
}

function run(args: string[], what: string): string {
  // The server refuses to run as root: every command runs as the `postgres` user, from `/`.
  const r = spawnSync("runuser", ["-u", "postgres", "--", ...args], { cwd: "/", encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${(r.stdout ?? "") + (r.stderr ?? "")}`.slice(0, 4000));
  return r.stdout;
}

/** `pg_ctl start`; on failure the error carries the end of the server's log (a bind error is there, not in pg_ctl's output). */
function pgCtlStart(root: string, args: string[], what: string): void {
  try {
    run(args, what);
  } catch (err) {
    let log = "";
    try {
      log = readFileSync(join(root, "server.log"), "utf8").slice(-2000);
    } catch {
      // no log written
    }
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err });
  }
}

/**
 * initdb (local trust, host scram-sha-256) in a fresh folder under /tmp owned by `postgres`,
 * then `pg_ctl start -w` on a free port; the superuser's password is set over the local socket.
 * `stop()` stops the server and deletes the folder.
 */
export async function startPostgres(options: { maxConnections?: number } = {}): Promise<RunningPostgres> {
  if (!havePostgres()) throw new Error(`PostgreSQL 15 is not installed (${BIN}): run scripts/peers/install-db.sh`);
  const root = mkdtempSync("/tmp/dsops-pg-");
  chmodSync(root, 0o755);
  const data = join(root, "data");
  const sock = join(root, "sock");
  spawnSync("mkdir", ["-p", sock]);
  spawnSync("chown", ["-R", "postgres:postgres", root]);
  const adminPassword = randomBytes(18).toString("base64url");
  const pwFile = join(root, "pw");
  writeFileSync(pwFile, adminPassword + "\n", { mode: 0o600 });
  spawnSync("chown", ["postgres:postgres", pwFile]);
  run([join(BIN, "initdb"), "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${pwFile}`, "-E", "UTF8", "--no-sync"], "initdb");
  rmSync(pwFile);
  const port = await onFreePort(async (port) => {
    pgCtlStart(root, [join(BIN, "pg_ctl"), "-D", data, "-l", join(root, "server.log"), "-o", `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=${options.maxConnections ?? 200} -c log_statement=all`, "-w", "-t", "60", "start"], "pg_ctl start");
    return port;
  });
  const host = "127.0.0.1";
  const connectionString = (user: string, password: string, database = "postgres") =>
    `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
  // Readiness as a client sees it: a password login over TCP.
  const c = new Client({ host, port, user: "postgres", password: adminPassword, database: "postgres" });
  await c.connect();
  await c.end();
  const canLogin = async (user: string, password: string): Promise<boolean> => {
    const client = new Client({ host, port, user, password, database: "postgres" });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  let stopped = false;
  return {
    host,
    port,
    adminUser: "postgres",
    adminPassword,
    connectionString,
    canLogin,
    log: () => {
      try {
        return readFileSync(join(root, "server.log"), "utf8");
      } catch {
        return "";
      }
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        run([join(BIN, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], "pg_ctl stop");
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

/** A streaming standby of a RunningPostgres: its own loopback port, the primary's roles and data. */
export interface RunningStandby {
  readonly host: string;
  readonly port: number;
  /** True when `user`/`password` logs in at the standby over TCP and `SELECT 1` answers. */
  canLogin(user: string, password: string): Promise<boolean>;
  /** Wait until the standby has replayed everything the primary had written when called. */
  catchUp(): Promise<void>;
  /** Kill the standby's postmaster (SIGKILL): it stops answering at once. */
  kill(): void;
  log(): string;
  stop(): Promise<void>;
}

/**
 * A hot standby of `primary`: `pg_basebackup -R` from it over TCP (as its superuser) into a fresh
 * folder, then `pg_ctl start -w` on another free loopback port with the same max_connections
 * (a hot standby needs at least the primary's). It streams from the primary until killed.
 */
export async function startStandby(primary: RunningPostgres, options: { maxConnections?: number } = {}): Promise<RunningStandby> {
  const root = mkdtempSync("/tmp/dsops-pgstandby-");
  chmodSync(root, 0o755);
  const data = join(root, "data");
  const sock = join(root, "sock");
  spawnSync("mkdir", ["-p", sock]);
  spawnSync("chown", ["-R", "postgres:postgres", root]);
  const pass = join(root, "pgpass");
  writeFileSync(pass, `${primary.host}:${primary.port}:*:${primary.adminUser}:${primary.adminPassword.replace(/[:\\]/g, "\\$&")}\n`, { mode: 0o600 });
  spawnSync("chown", ["postgres:postgres", pass]);
  run(["env", `PGPASSFILE=${pass}`, join(BIN, "pg_basebackup"), "-h", primary.host, "-p", String(primary.port), "-U", primary.adminUser, "-D", data, "-R", "-X", "stream", "--no-sync"], "pg_basebackup");
  // primary_conninfo (written by -R) points at the password file, which stays while the standby runs.
  writeFileSync(join(data, "postgresql.auto.conf"), readFileSync(join(data, "postgresql.auto.conf"), "utf8").replace(/primary_conninfo = '/, `primary_conninfo = 'passfile=${pass} `));
  const port = await onFreePort(async (port) => {
    pgCtlStart(root, [join(BIN, "pg_ctl"), "-D", data, "-l", join(root, "server.log"), "-o", `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on -c max_connections=${options.maxConnections ?? 200} -c log_statement=all`, "-w", "-t", "60", "start"], "pg_ctl start (standby)");
    return port;
  });
  const host = "127.0.0.1";
  const admin = () => {
    const c = new Client({ host, port, user: primary.adminUser, password: primary.adminPassword, database: "postgres" });
    c.on("error", () => undefined);
    return c;
  };
  const canLogin = async (user: string, password: string): Promise<boolean> => {
    const client = new Client({ host, port, user, password, database: "postgres" });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const catchUp = async () => {
    const p = new Client({ host: primary.host, port: primary.port, user: primary.adminUser, password: primary.adminPassword, database: "postgres" });
    await p.connect();
    const lsn = (await p.query("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0].lsn as string;
    await p.end();
    const s = admin();
    await s.connect();
    try {
      for (let i = 0; i < 600; i++) {
        if ((await s.query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [lsn])).rows[0].ok === true) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the standby did not replay ${lsn} within 30 s`);
    } finally {
      await s.end();
    }
  };
  // Streaming, as seen from the standby.
  const s = admin();
  await s.connect();
  for (let i = 0; ; i++) {
    if ((await s.query("SELECT status FROM pg_stat_wal_receiver")).rows[0]?.status === "streaming") break;
    if (i > 600) throw new Error("the standby is not streaming after 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  await s.end();
  let stopped = false;
  const kill = () => {
    const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    if (pid > 0) process.kill(pid, "SIGKILL");
  };
  return {
    host,
    port,
    canLogin,
    catchUp,
    kill,
    log: () => {
      try {
        return readFileSync(join(root, "server.log"), "utf8");
      } catch {
        return "";
      }
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        spawnSync("runuser", ["-u", "postgres", "--", join(BIN, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], { cwd: "/" });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
