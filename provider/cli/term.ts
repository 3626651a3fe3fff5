/**
 * The global output switches of the CLI: `--debug`, `--no-color` (and `NO_COLOR`),
 * `--non-interactive` (and `DSOPS_NON_INTERACTIVE`). Read from the command line before commander
 * parses it, so that errors raised while parsing are printed the same way.
 */
export interface TermOptions {
  debug: boolean;
  color: boolean;
  interactive: boolean;
}

const state: TermOptions = { debug: false, color: true, interactive: true };

/** Global flags among `argv` (before a `--`); the environment decides what they do not. */
export function setTermOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const end = argv.indexOf("--");
  const args = end < 0 ? argv : argv.slice(0, end);
  const on = (v: string | undefined) => v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
  state.debug = args.includes("--debug") || on(env.DSOPS_DEBUG);
  // https://no-color.org: any non-empty NO_COLOR turns colour off.
  state.color = !(args.includes("--no-color") || (env.NO_COLOR !== undefined && env.NO_COLOR !== ""));
  state.interactive = !(args.includes("--non-interactive") || on(env.DSOPS_NON_INTERACTIVE));
}

export function termOptions(): Readonly<TermOptions> {
  return state;
}

/** Quoted text in a message (a library's message may quote its input: a value) replaced. */
function unquote(message: string): string {
  return message.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`\n]*`/g, (q) => `${q[0]}…${q[0]}`);
}

/**
 * What `--debug` adds to an error: the places in the code it came from, and its chain of
 * causes (type, code, message with any quoted text elided: no value can be in it).
 */
export function debugDetail(e: unknown): string {
  const lines: string[] = [];
  const frames = (err: Error) => (err.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).map((l) => `    ${l.trim()}`);
  if (e instanceof Error) lines.push(`debug: ${e.name} raised`, ...frames(e));
  let cause = e instanceof Error ? e.cause : undefined;
  const seen = new Set<unknown>([e]);
  for (let depth = 1; cause !== undefined && !seen.has(cause) && depth <= 10; depth++) {
    seen.add(cause);
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      const syscall = (cause as NodeJS.ErrnoException).syscall;
      lines.push(`debug: caused by ${cause.name}${code ? ` [${code}${syscall ? ` ${syscall}` : ""}]` : ""}: ${unquote(cause.message.split("\n")[0])}`);
      lines.push(...frames(cause).slice(0, 5));
      cause = cause.cause;
    } else {
      lines.push(`debug: caused by a thrown ${typeof cause} (not shown: it may hold a value)`);
      break;
    }
  }
  if (e instanceof Error && e.cause === undefined) lines.push("debug: no underlying cause recorded");
  return lines.join("\n") + "\n";
}
