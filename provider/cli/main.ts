import { Command, CommanderError } from "commander";
import { ConfigError, DsopsError } from "../core/errors";
import { debugDetail, setTermOptions, termOptions } from "./term";
import { EXIT, wantsHardExit } from "./util";

export { EXIT } from "./util";

/** A command module: adds its command(s) to the program. */
export interface CommandModule {
  register(program: Command): void;
}

/**
 * The command modules, in the order `--help` lists them, each with the command names it adds.
 * A command module keeps the engine (zod, yaml, store SDKs) out of its top level; and when the
 * command line names one of these commands, only its module is loaded (`dsops --help`, `help`,
 * `completion` or an unknown word load them all: they need the whole tree).
 */
const COMMAND_MODULES: ReadonlyArray<{
  readonly commands: readonly string[];
  readonly load: () => CommandModule;
  /** A group other modules add subcommands to: the optional modules are registered with it. */
  readonly group?: boolean;
}> = [
  { commands: ["init"], load: () => require("./commands/init") },
  { commands: ["plan"], load: () => require("./commands/plan") },
  { commands: ["get"], load: () => require("./commands/get") },
  { commands: ["render"], load: () => require("./commands/render") },
  { commands: ["exec"], load: () => require("./commands/exec") },
  // `secrets` is a group the rotation module adds to (secrets rotate|status|history).
  { commands: ["secrets"], load: () => require("./commands/secrets"), group: true },
  { commands: ["doctor"], load: () => require("./commands/doctor") },
  { commands: ["providers"], load: () => require("./commands/providers") },
  { commands: ["login"], load: () => require("./commands/login") },
  { commands: ["guard"], load: () => require("./commands/guard") },
  { commands: ["install-hook"], load: () => require("./commands/install-hook") },
  { commands: ["leak"], load: () => require("./commands/leak") },
  { commands: ["shred"], load: () => require("./commands/shred") },
  { commands: ["metrics", "notify"], load: () => require("./commands/metrics") },
  { commands: ["worker"], load: () => require("./commands/worker") },
  { commands: ["chaos"], load: () => require("./commands/chaos") },
  { commands: ["breakglass"], load: () => require("./commands/breakglass") },
  { commands: ["report"], load: () => require("./commands/report") },
  { commands: [], load: () => require("./commands/completion") },
];

/**
 * Modules that may not be installed yet: registered when present. A module that exists but
 * fails to load (a missing dependency of its own, a syntax error) is an error, not skipped.
 * (Required by name, so that the bundled entry, dist/cli/dsops.js, contains them.)
 */
const OPTIONAL_MODULES: ReadonlyArray<() => CommandModule> = [() => require("./commands/rotation"), () => require("./commands/metrics")];

function optionalModule(load: () => CommandModule): CommandModule | undefined {
  try {
    return load();
  } catch (e) {
    // Missing is only the module this file asked for, not one that module asked for.
    const err = e as NodeJS.ErrnoException & { requireStack?: string[] };
    if (err.code === "MODULE_NOT_FOUND" && err.requireStack?.[0] === __filename) return undefined;
    throw e;
  }
}

/** The first word of the command line that is not a global option (`-c FILE` skipped). */
function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") return undefined;
    if (a === "-c" || a === "--config") i++;
    else if (!a.startsWith("-")) return a;
  }
  return undefined;
}

function version(): string {
  try {
    return (require("../../../package.json") as { version: string }).version; // the bundle too: scripts/build-cli.js
  } catch {
    return "unknown";
  }
}

/**
 * The dsops program. With `argv`, only the module of the command it names is registered
 * (start-up speed); without, every command (help, completion, tests).
 */
export function buildProgram(argv?: readonly string[]): Command {
  const program = new Command("dsops")
    .description("Resolve secrets from your stores into files and processes, and rotate them")
    .version(version(), "-V, --version", "print the version")
    .option("-c, --config <path>", "configuration file", process.env.DSOPS_CONFIG ?? "dsops.yaml")
    .option("--debug", "more detail on errors (where they came from, their causes; never values)")
    .option("--no-color", "no colours or terminal control codes (also: NO_COLOR set)")
    .option("--non-interactive", "never prompt nor start an interactive program; fail instead (also: DSOPS_NON_INTERACTIVE=1)")
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const word = argv ? commandWord(argv) : undefined;
  const only = word === undefined ? undefined : COMMAND_MODULES.find((m) => m.commands.includes(word));
  if (only) {
    only.load().register(program);
    if (only.group) for (const load of OPTIONAL_MODULES) optionalModule(load)?.register(program);
  } else {
    for (const m of COMMAND_MODULES) m.load().register(program);
    for (const load of OPTIONAL_MODULES) optionalModule(load)?.register(program);
  }
  return program;
}

function printError(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  const code = printErrorMessage(e);
  if (termOptions().debug && code !== EXIT.internal) process.stderr.write(debugDetail(e));
  return code;
}

function printErrorMessage(e: unknown): number {
  if (e instanceof ConfigError) {
    process.stderr.write(`error: invalid configuration:\n${e.problems.map((p) => `  - ${p}`).join("\n")}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    return EXIT.user;
  }
  if (e instanceof DsopsError) {
    process.stderr.write(`error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    return EXIT.user;
  }
  process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return EXIT.internal;
}

function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  for (const c of cmd.commands) exitOverrideAll(c);
}

/** In the bundled entry (scripts/build-cli.js): the bundled modules that have run, in order. */
declare const __dsopsBundledModules: readonly string[] | undefined;

/**
 * `DSOPS_DEBUG_MODULES=1`: at exit, print on stderr how many modules were loaded and from which
 * packages (to check that a command loads no store SDK it does not use); `=list` adds every path.
 * The modules of the bundled entry that ran count too, listed as `bundled:<path in the repository>`.
 */
function debugModules(): void {
  const mode = process.env.DSOPS_DEBUG_MODULES;
  if (!mode || mode === "0") return;
  process.on("exit", () => {
    const bundled = typeof __dsopsBundledModules === "undefined" ? [] : __dsopsBundledModules.map((p) => `bundled:${p}`);
    const paths = [...Object.keys(require.cache), ...bundled];
    const packages = new Set<string>();
    for (const p of paths) {
      const m = /^node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(p.slice(p.lastIndexOf("node_modules")));
      if (m) packages.add(m[1].replace(/\\/g, "/"));
    }
    process.stderr.write(`dsops debug: ${paths.length} modules loaded; packages: ${[...packages].sort().join(", ") || "none"}\n`);
    if (mode === "list") for (const p of paths) process.stderr.write(`dsops debug: ${p}\n`);
  });
}

/**
 * `dsops rotation rollback … --version V` (dsops's own flag) would be taken by the root's
 * `--version`; for that one command it means `--to-version V`.
 */
export function rewriteArgv(argv: string[]): string[] {
  const args = argv.slice(2);
  const words = args.filter((a) => !a.startsWith("-"));
  if (words[0] !== "rotation" || words[1] !== "rollback") return argv;
  return [...argv.slice(0, 2), ...args.map((a) => (a === "--version" ? "--to-version" : a.startsWith("--version=") ? `--to-version=${a.slice(10)}` : a))];
}

export async function main(rawArgv: string[]): Promise<void> {
  const argv = rewriteArgv(rawArgv);
  setTermOptions(argv.slice(2));
  debugModules();
  let program: Command;
  try {
    program = buildProgram(argv);
  } catch (e) {
    process.exitCode = printError(e);
    return;
  }
  exitOverrideAll(program);
  const stop = exitIfAbandoned();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = printError(e);
  } finally {
    stop();
  }
  if (wantsHardExit()) process.exit();
}

/**
 * The safety net under every command: Node ends a process whose event loop has nothing left
 * to wait on, with code 0, even while the command's promise is still pending (a timer that does
 * not keep the process alive, a promise nothing will settle). The command then did not do its
 * job, so that end is an internal error (exit 70), never a success. Returns the function that
 * takes the net away once the command has finished.
 */
function exitIfAbandoned(): () => void {
  const abandoned = () => {
    process.stderr.write(
      "internal error: dsops stopped waiting before the command finished (nothing was left to wait on); " +
        "the command may not have done its work. Please report this bug.\n",
    );
    process.exit(EXIT.internal);
  };
  process.on("beforeExit", abandoned);
  return () => process.off("beforeExit", abandoned);
}
