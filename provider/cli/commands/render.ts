import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { DsopsError } from "../../core/errors";
import { progress } from "../progress";
import { formatDuration, parseDuration, warnUnfinishedRotations, withResolver } from "../util";
import { isSingleExecutable, SELF_ROLE_ENV } from "../../core/self";

/** Same list as the engine's `outputFormats` (kept here so `--help` does not load the engine; checked by a test). */
export const renderFormats = ["dotenv", "json", "yaml", "template"] as const;

/** `dsops render`: write an env to a file, mode 0600, optionally deleted after `--ttl`. */
export function register(program: Command): void {
  program
    .command("render")
    .description("write an env to a file (mode 0600 by default)")
    .requiredOption("-e, --env <env>", "env name")
    .requiredOption("-o, --out <path>", "output file")
    .addOption(new Option("-f, --format <format>", "output format (default from the file extension)").choices(renderFormats))
    .option("-t, --template <file>", "template file (template format)")
    .option("--permissions <mode>", "file mode, octal", "0600")
    .option("--ttl <duration>", "shred and delete the file after this long (30s, 10m, 1h), even after dsops has exited")
    .action(async (o: { env: string; out: string; format?: (typeof renderFormats)[number]; template?: string; permissions: string; ttl?: string }, cmd: Command) => {
      const engine = require("../../engine/render") as typeof import("../../engine/render");
      const { isoNow } = require("../../core/clock") as typeof import("../../core/clock");
      const { writeFileAtomic } = require("../../core/fsutil") as typeof import("../../core/fsutil");
      const format = o.format ?? (o.template ? "template" : engine.formatFromPath(o.out));
      if (!format) throw new DsopsError(`cannot tell the format of ${o.out} from its name`, { hint: `pass --format ${engine.outputFormats.join("|")}` });
      const mode = parseInt(o.permissions, 8);
      if (!/^0?[0-7]{3}$/.test(o.permissions)) throw new DsopsError(`--permissions ${o.permissions}: expected an octal mode such as 0600`);
      const ttlMs = o.ttl !== undefined ? parseDuration(o.ttl, "--ttl") : undefined;
      if (ttlMs !== undefined && ttlMs <= 0) throw new DsopsError(`--ttl ${o.ttl}: must be longer than zero`);
      let template: string | undefined;
      if (format === "template") {
        if (!o.template) throw new DsopsError("the template format needs --template FILE");
        try {
          template = readFileSync(o.template, "utf8");
        } catch {
          throw new DsopsError(`cannot read template ${o.template}`);
        }
      }
      const bar = progress("resolving");
      await withResolver(
        cmd,
        async (r) => {
          const policy = require("../../guard/policy") as typeof import("../../guard/policy");
          return policy.audited(r.config, { command: "render", env: o.env, out: resolve(o.out) }, async (note) => {
            policy.checkOutput(r.config, o.env, o.out, ttlMs);
            const { sealedOfEnv, withSealedReads } = require("../../compose/sealed-reads") as typeof import("../../compose/sealed-reads");
            // One sealed variable without a grant refuses the whole render before anything is read or written.
            const res = await withSealedReads(r.config, sealedOfEnv(r.config, o.env), "dsops render", () => r.resolveEnv(o.env));
            note({ variables: Object.values(res.variables).map((v) => ({ name: v.name, store: v.store, key: v.key, versionId: v.versionId })) });
            bar.end();
            await warnUnfinishedRotations(cmd, r, o.env, Object.keys(res.variables));
            const vars = Object.fromEntries(Object.entries(res.variables).map(([k, v]) => [k, v.value]));
            const text = engine.render(format, { variables: vars, generatedAt: isoNow(), template, templateName: o.template });
            const out = resolve(o.out);
            writeFileAtomic(out, text, mode);
            process.stderr.write(`wrote ${Object.keys(vars).length} variables to ${o.out} (${format}, mode ${o.permissions})\n`);
            if (ttlMs !== undefined) {
              const pid = scheduleDeletion(out, ttlMs);
              process.stderr.write(`${o.out} will be shredded and deleted in ${formatDuration(ttlMs)} (watcher pid ${pid})\n`);
            }
          });
        },
        { onProgress: bar.update },
      ).finally(bar.end);
    });
}

/**
 * Start the detached watcher that deletes `path` after `delayMs` unless it was replaced (killing
 * it cancels the deletion); returns its pid. It
 * is its own process group with closed stdio, so it survives the end of dsops (and of the
 * terminal's job) and never holds a pipe of the caller open.
 */
export function scheduleDeletion(path: string, delayMs: number): number | undefined {
  const st = statSync(path, { bigint: true });
  const args = [path, String(delayMs), String(st.dev), String(st.ino), String(st.mtimeNs)];
  // The single executable runs the watcher itself when told so by SELF_ROLE_ENV (it has no
  // script file on disk); Node runs ttl-watcher.js.
  const single = isSingleExecutable();
  // Loaded here: a render without a TTL starts no process (node:child_process costs ~2 ms to load).
  const { spawn } = require("node:child_process") as typeof import("node:child_process");
  const child = spawn(process.execPath, single ? args : [join(__dirname, "..", "ttl-watcher.js"), ...args], {
    detached: true,
    stdio: "ignore",
    cwd: "/",
    // The watcher lives on for the whole TTL: it gets none of dsops's environment (which may
    // hold store credentials), only what coverage tooling needs.
    env: {
      ...(process.env.NODE_V8_COVERAGE ? { NODE_V8_COVERAGE: process.env.NODE_V8_COVERAGE } : {}),
      ...(single ? { [SELF_ROLE_ENV]: "ttl-watcher" } : {}),
    },
  });
  child.unref();
  return child.pid;
}
