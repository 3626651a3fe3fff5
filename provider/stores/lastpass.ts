import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret } from "../core/secret";
import { runCli, type CliResult } from "./cli-run";
import { contentVersion } from "./literal";
import type { SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";
import type { StoreSettings } from "./settings";

type Settings = Extract<StoreSettings, { type: "lastpass" }>;

const INSTALL = "install the LastPass CLI (Debian/Ubuntu: apt-get install lastpass-cli; macOS: brew install lastpass-cli), or set cli: to its path";

/** `#field` names that are lpass show's own options; any other field is `--field=<name>`. */
const OPTIONS: Readonly<Record<string, string>> = {
  password: "--password",
  username: "--username",
  user: "--username",
  url: "--url",
  notes: "--notes",
  name: "--name",
  id: "--id",
};

/** What `lpass show --color=never` prints, exiting 0, when a name matches several entries. */
const MULTIPLE = /^Multiple matches found\.\r?\n/;

/**
 * LastPass through the `lpass` CLI, read-only (experimental: there is no LastPass-protocol
 * peer to test against; only the signed-out path and the error mapping are tested). The key is
 * an entry's unique name (`Folder/Name`) or id; the value is its password; `#username`, `#url`,
 * `#notes`, `#name`, `#id` read those, any other `#field` a custom field (`--field=`). lpass
 * keeps its own session (LPASS_HOME, LPASS_AGENT_TIMEOUT … as lpass reads them); it is never
 * asked to prompt (LPASS_DISABLE_PINENTRY=1, stdin closed), so a signed-out CLI is an auth error
 * whose hint is `lpass login`.
 */
export class LastPassStore implements Store {
  readonly type = "lastpass" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false, staging: false };
  private readonly cli: string;
  private readonly timeoutMs: number;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {
    this.cli = settings.cli ?? "lpass";
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  /** Every `#field` is an attribute of the entry, except a JSON path into the password (`.a.b`, `[0]`), which the engine reads. */
  readsField(field: string): boolean {
    return !/^[.[]/.test(field);
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const entry = k.key;
    if (entry.trim() === "" || entry.startsWith("-")) throw new DsopsError(`store "${this.name}": "${entry}" is not a LastPass entry name or id`);
    const field = k.field ?? k.options?.field;
    const opt = field === undefined ? "--password" : (OPTIONS[field.toLowerCase()] ?? `--field=${field}`);
    const what = `read of "${entry}"${field === undefined ? "" : ` (field ${field})`}`;
    const r = await this.run(["show", "--sync=auto", "--color=never", opt, entry], what);
    if (r.code !== 0) this.fail(r, what, { entry, ...(field !== undefined ? { field } : {}) });
    // lpass lists an ambiguous name's matches on stdout and exits 0 (cmd-show.c): never a value.
    if (MULTIPLE.test(r.stdout))
      throw new DsopsError(`store "${this.name}": ${what}: "${entry}" names several entries`, { hint: "use the entry's unique name (Folder/Name) or its id (lpass ls --long shows them)" });
    const text = r.stdout.endsWith("\n") ? r.stdout.slice(0, -1) : r.stdout;
    const versionId = contentVersion(text);
    if (k.version !== undefined && k.version !== versionId && !["current", "latest"].includes(k.version.toLowerCase()))
      throw new NotFoundError(`store "${this.name}": "${entry}" has no version "${k.version}" (LastPass entries are read at their current value only)`);
    return { value: new Secret(text), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }

  /** lpass is signed in (`lpass status`). */
  async check(): Promise<void> {
    const r = await this.run(["status"], "check");
    if (r.code !== 0) this.fail({ ...r, stderr: `${r.stderr}\n${r.stdout}` }, "check", {}); // status says "Not logged in." on stdout, and holds no value
  }

  private run(args: string[], what: string): Promise<CliResult> {
    return runCli({
      cli: this.cli,
      args,
      stdin: "",
      env: { ...this.ctx.env, LPASS_DISABLE_PINENTRY: "1" },
      timeoutMs: this.timeoutMs,
      what: `store "${this.name}": ${what}`,
      install: INSTALL,
    });
  }

  private fail(r: CliResult, what: string, about: { entry?: string; field?: string }): never {
    // stderr only: stdout of a failed show is never quoted (it could hold a value).
    const said = r.stderr.replace(/^Error:\s*/gm, "").trim();
    const prefix = `store "${this.name}": ${what}`;
    const first = said.split("\n")[0].slice(0, 300);
    if (/not logged in|could not find decryption key|need to login|lpass login/i.test(said)) {
      const login = `lpass login ${this.settings.username ?? "<email>"}`;
      throw new AuthError(`${prefix}: the LastPass CLI is not signed in (lpass: ${first}); sign in with \`${login}\``, { hint: `${login} (or dsops login ${this.name})` });
    }
    if (/could not find specified account/i.test(said)) throw new NotFoundError(`${prefix}: no entry "${about.entry}"`);
    if (/could not find specified field/i.test(said)) throw new NotFoundError(`${prefix}: entry "${about.entry}" has no field "${about.field}"`);
    throw new StoreError(`${prefix}: ${this.cli} failed (exit ${r.code})${first ? `: ${first}` : ""}`);
  }
}
