import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A private D-Bus session bus with GNOME Keyring's Secret Service, in a throwaway HOME. */
export interface SecretService {
  /** The environment of a process in the session (DBUS_SESSION_BUS_ADDRESS, HOME, XDG_*). */
  readonly env: NodeJS.ProcessEnv;
  /** The login keyring's password. */
  readonly password: string;
  /** Start the keyring daemon (or replace the running one) and unlock the login keyring, the password on stdin. */
  unlock(replace?: boolean): void;
  /** Lock the login keyring through the Secret Service API. */
  lock(): void;
  /** Run secret-tool in the session. */
  tool(args: string[], input?: string): { status: number | null; stdout: string; stderr: string };
  /** Write an item with the attributes service and account (the value on stdin). */
  storeItem(service: string, account: string, value: string): void;
  stop(): void;
}

/**
 * Start `dbus-daemon --session` and `gnome-keyring-daemon --unlock --components=secrets` on it.
 * Services the bus activates get the bus's environment, so the bus runs with the throwaway HOME
 * and XDG folders too; the keyring daemon leaves with its bus.
 */
export async function startSecretService(): Promise<SecretService> {
  const root = mkdtempSync(join(tmpdir(), "dsops-secret-service-"));
  const HOME = join(root, "home");
  const RUNTIME = join(root, "run");
  mkdirSync(HOME, { recursive: true });
  mkdirSync(RUNTIME, { mode: 0o700 });
  const password = `kr-${randomBytes(6).toString("hex")}`;
  const sessionEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME,
    LANG: "C",
    XDG_RUNTIME_DIR: RUNTIME,
    XDG_DATA_HOME: join(HOME, ".local/share"),
    XDG_CONFIG_HOME: join(HOME, ".config"),
    XDG_CACHE_HOME: join(HOME, ".cache"),
  };
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], { stdio: ["ignore", "pipe", "ignore"], env: sessionEnv });
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    bus.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve(out.trim());
    });
    bus.on("exit", (c) => reject(new Error(`dbus-daemon exited (${c})`)));
  });
  const env = { ...sessionEnv, DBUS_SESSION_BUS_ADDRESS: address };
  const svc: SecretService = {
    env,
    password,
    unlock(replace = false) {
      const r = spawnSync("gnome-keyring-daemon", [...(replace ? ["--replace"] : []), "--unlock", "--components=secrets"], { env, input: password, encoding: "utf8", timeout: 30000 });
      assert.equal(r.status, 0, r.stderr);
    },
    lock() {
      const r = spawnSync(
        "dbus-send",
        ["--session", "--dest=org.freedesktop.secrets", "--print-reply", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock", "array:objpath:/org/freedesktop/secrets/collection/login"],
        { env, encoding: "utf8", timeout: 30000 },
      );
      assert.equal(r.status, 0, r.stderr);
    },
    tool(args, input) {
      const r = spawnSync("secret-tool", args, { env, input, encoding: "utf8", timeout: 30000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    storeItem(service, account, value) {
      const r = svc.tool(["store", "--label=test item", "service", service, "account", account], value);
      assert.equal(r.status, 0, r.stderr);
    },
    stop() {
      bus.kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
  svc.unlock(); // starts the daemon on this bus and creates the login keyring with this password
  return svc;
}
