import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { contentVersion } from "./literal";
import { runLocalCli, stderrTail, type CliOutcome } from "./local-cli";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "keychain" }>;

/** Where an item lives: the Secret Service attributes / macOS generic-password service and account. */
interface Item {
  readonly service: string;
  readonly account: string;
}

const SECRET_TOOL_INSTALL = "install secret-tool and a Secret Service: apt-get install libsecret-tools gnome-keyring (or KWallet's Secret Service)";
const LOCKED_HINT = "unlock the keyring: log in to the desktop session, or run gnome-keyring-daemon --unlock (the keyring's password on stdin) in this D-Bus session";

/**
 * The OS keychain (dsops's `keychain`). A key is `service/account` (the first "/" splits them;
 * `service_prefix` is joined with "." before the service). On macOS: generic passwords of the
 * user's keychains through `security` (read with find-generic-password -w; written through
 * `security -i` with the value on stdin, hex-encoded). On Linux: the Secret Service of the D-Bus
 * session (GNOME Keyring, KWallet) through `secret-tool`, items with the attributes `service`
 * and `account` (written with the value on stdin). The keychain keeps no versions: the version id
 * is derived from the value.
 */
export class KeychainStore implements Store {
  readonly type = "keychain" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: false, batch: 0, binary: false, staging: false };
  private readonly timeoutMs: number;
  private readonly platform: NodeJS.Platform;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.timeoutMs = settings.timeout_ms ?? 30000;
    this.platform = process.platform;
    if (settings.access_group !== undefined)
      ctx.onWarning?.(`store "${name}": access_group is not used (the security command cannot select a keychain access group)`);
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const item = this.item(k.key);
    const text = await this.read(item, k.key);
    const versionId = contentVersion(text);
    if (k.version !== undefined && k.version !== versionId && !["current", "latest"].includes(k.version.toLowerCase()))
      throw new NotFoundError(`store "${this.name}": item "${k.key}" has no version "${k.version}" (the keychain keeps no versions; only the current value is read)`);
    return { value: new Secret(text), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }

  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const item = this.item(key);
    const what = `write of item "${key}" (service "${item.service}", account "${item.account}")`;
    const v = value.reveal();
    if (this.platform === "darwin") {
      const q = (s: string) => `"${s}"`;
      for (const [n, s] of Object.entries(item))
        if (/["\\\n\r]/.test(s)) throw new DsopsError(`store "${this.name}": ${what}: the ${n} holds a quote, backslash or line break, which security -i cannot take`);
      const cmd = `add-generic-password -U -s ${q(item.service)} -a ${q(item.account)} -l ${q(`dsops: ${item.service}/${item.account}`)} -X ${Buffer.from(v, "utf8").toString("hex")}\n`;
      const r = await this.cli("security", ["-i"], what, cmd);
      if (r.code !== 0 || /error|could not be|denied/i.test(r.stderr)) throw this.failure(r, what, [value, Buffer.from(v, "utf8").toString("hex")]);
    } else {
      const r = await this.cli("secret-tool", ["store", `--label=dsops: ${item.service}/${item.account}`, "service", item.service, "account", item.account], what, v);
      if (r.code !== 0) throw this.failure(r, what, [value]);
    }
    return { versionId: contentVersion(v) };
  }

  /** The keychain answers (a lookup of an item that need not exist; no value is kept). */
  async check(): Promise<void> {
    const probe: Item = { service: "dsops-doctor-probe", account: "none" };
    try {
      await this.read(probe, "dsops-doctor-probe/none");
    } catch (e) {
      if (e instanceof NotFoundError) return;
      throw e;
    }
  }

  private item(key: string): Item {
    const slash = key.indexOf("/");
    if (slash <= 0 || slash === key.length - 1)
      throw new DsopsError(`store "${this.name}": "${key}" is not a keychain key (service/account, e.g. myapp/database-password)`, { hint: "the part before the first / is the service, the rest the account" });
    const service = key.slice(0, slash);
    return { service: this.settings.service_prefix ? `${this.settings.service_prefix}.${service}` : service, account: key.slice(slash + 1) };
  }

  private async read(item: Item, key: string): Promise<string> {
    const what = `read of item "${key}" (service "${item.service}", account "${item.account}")`;
    if (this.platform === "darwin") {
      const r = await this.cli("security", ["find-generic-password", "-s", item.service, "-a", item.account, "-w"], what);
      if (r.code === 0) return r.stdout.replace(/\n$/, "");
      if (r.code === 44 || /could not be found/i.test(r.stderr)) throw new NotFoundError(`store "${this.name}": item "${key}" is not in the keychain (service "${item.service}", account "${item.account}")`);
      throw this.failure(r, what);
    }
    const r = await this.cli("secret-tool", ["lookup", "service", item.service, "account", item.account], what);
    if (r.code === 0) return r.stdout;
    if (r.code === 1 && r.stdout === "" && stderrTail(r.stderr) === "") {
      // secret-tool says nothing both when the item is missing and when it is locked: ask which.
      const s = await this.cli("secret-tool", ["search", "service", item.service, "account", item.account], what);
      if (s.code === 0 && /^\[\//m.test(s.stdout))
        throw new AuthError(`store "${this.name}": ${what}: the item is in a locked keyring`, { hint: LOCKED_HINT });
      throw new NotFoundError(`store "${this.name}": item "${key}" is not in the keychain (service "${item.service}", account "${item.account}")`);
    }
    throw this.failure(r, what);
  }

  private cli(cli: "security" | "secret-tool", args: string[], what: string, input?: string): Promise<CliOutcome> {
    if (this.platform !== "darwin" && this.platform !== "linux" && !this.platform.endsWith("bsd"))
      throw new DsopsError(`store "${this.name}": the keychain store works on macOS (Keychain) and Linux (Secret Service), not on ${this.platform}`);
    return runLocalCli(cli, args, {
      env: this.ctx.env,
      input,
      timeoutMs: this.timeoutMs,
      what: `store "${this.name}": ${what}`,
      install: cli === "security" ? "security ships with macOS (/usr/bin/security); check PATH" : SECRET_TOOL_INSTALL,
    });
  }

  private failure(r: CliOutcome, what: string, secrets: Array<Secret | string> = []): Error {
    const said = scrub(stderrTail(r.stderr), secrets);
    const prefix = `store "${this.name}": ${what}`;
    if (/locked/i.test(said)) return new AuthError(`${prefix}: ${said}`, { hint: LOCKED_HINT });
    if (/user interaction is not allowed|authorization|denied|cancel/i.test(said))
      return new AuthError(`${prefix}: ${said}`, { hint: "unlock the keychain (security unlock-keychain) and allow security to use the item" });
    if (/d-bus|dbus|given address is empty|org\.freedesktop\.secrets|was not provided by any \.service files/i.test(said))
      return new StoreError(`${prefix}: no Secret Service on the D-Bus session: ${said}`, false, {
        hint: "run inside a desktop session, or start one: dbus-run-session -- sh -c 'gnome-keyring-daemon --unlock --components=secrets; …' (DBUS_SESSION_BUS_ADDRESS must be set)",
      });
    return new StoreError(`${prefix}: ${r.code === null ? `stopped by ${r.signal}` : `exit ${r.code}`}${said ? `: ${said}` : ""}`);
  }
}
