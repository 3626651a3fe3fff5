import { spawn } from "node:child_process";
import { isAbsolute, resolve } from "node:path";
import type { Secret } from "../../core/secret";
import { TargetError, parseServiceSettings, scrubError } from "./errors";
import type { TargetContext } from "./types";
import { ProtocolTarget, type ProtocolAction } from "./webhook";
import { scriptSettingsSchema, type ScriptSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { scriptSettingsSchema, type ScriptSettings } from "./settings";

/** Most bytes of stdout read (a protocol answer is small). */
const MAX_OUTPUT = 1 << 20;

/**
 * Runs an executable per request: the protocol request is written to its stdin as JSON, its
 * stdout is read as the protocol response. Exit status non-zero is a failure (its stderr,
 * scrubbed and shortened, says why). The secret is never in argv nor the environment.
 */
export class ScriptTarget extends ProtocolTarget {
  readonly type = "script" as const;
  readonly settings: ScriptSettings;
  private readonly command: string;

  constructor(
    name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    const settings = parseServiceSettings(scriptSettingsSchema, name, raw);
    super(name, settings.capabilities);
    this.settings = settings;
    const c = settings.command;
    this.command = isAbsolute(c) || !c.includes("/") ? c : resolve(ctx.configDir, c);
  }

  protected send(body: string, action: ProtocolAction, secrets: Array<Secret | string>): Promise<string> {
    const s = this.settings;
    return new Promise((resolvePromise, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...s.env, DSOPS_ACTION: action, DSOPS_SERVICE_NAME: this.name };
      // Never pass on a variable that holds one of the secrets in play.
      const vals = secrets.map((x) => (typeof x === "string" ? x : x.reveal())).filter((v) => v.length > 0);
      for (const [k, v] of Object.entries(env)) if (v !== undefined && vals.includes(v)) delete env[k];
      const child = spawn(this.command, s.args, { cwd: this.ctx.configDir, env, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        finish(() => reject(new TargetError(`service "${this.name}": ${action}: ${s.command} timed out after ${s.timeout_ms} ms`, true)));
      }, s.timeout_ms);
      child.stdout.on("data", (d: Buffer) => {
        if (out.length < MAX_OUTPUT) out += d.toString("utf8");
      });
      child.stderr.on("data", (d: Buffer) => {
        if (err.length < 8192) err += d.toString("utf8");
      });
      child.on("error", (e) =>
        finish(() => reject(new TargetError(`service "${this.name}": cannot run ${s.command}: ${(e as NodeJS.ErrnoException).code ?? scrubError(e, secrets)}`))),
      );
      child.on("close", (code, signal) =>
        finish(() => {
          if (code === 0) return resolvePromise(out);
          const tail = scrubError(err.trim().slice(-500), secrets);
          reject(new TargetError(`service "${this.name}": ${action}: ${s.command} exited with ${signal ?? code}${tail ? `: ${tail}` : ""}`));
        }),
      );
      child.stdin.on("error", () => undefined); // a script that does not read its stdin
      child.stdin.end(body);
    });
  }
}
