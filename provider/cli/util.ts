import { writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { DsopsError } from "../core/errors";
import type { Config, LoadOptions } from "../compose/config";
import type { Resolver, ResolverOptions } from "../engine/resolve";

/**
 * Helpers shared by the command modules. The engine (zod, yaml, the resolver) is `require`d
 * inside the functions that need it, so commands that never read dsops.yaml (guard, shred,
 * completion, install-hook, leak) start without loading it: the pre-commit hook stays fast.
 */

/** Exit codes: 0 ok, 1 user error, 2 usage, 70 internal error (a bug); `exec` passes the child's code through. */
export const EXIT = { ok: 0, user: 1, usage: 2, internal: 70 } as const;

export interface GlobalOptions {
  config: string;
}

/** The `--config` path as given (default `$DSOPS_CONFIG`, else `dsops.yaml`). */
export function configPath(cmd: Command): string {
  return (cmd.optsWithGlobals() as GlobalOptions).config;
}

/** Folder of the configuration file (it need not exist). */
export function configDir(cmd: Command): string {
  return dirname(resolve(configPath(cmd)));
}

/**
 * The command's dsops.yaml. An unset `${VAR}` in a store's settings is reported when that store
 * is called (a command that never calls it, and `plan`, go on without it).
 */
export function loadConfig(cmd: Command, opts: LoadOptions = {}): Config {
  const { loadConfigFile } = require("../compose/config") as typeof import("../compose/config");
  return loadConfigFile(configPath(cmd), { deferUnsetEnv: true, ...opts });
}

/**
 * Write `text` to standard output, straight to file descriptor 1: making `process.stdout` (its
 * stream) costs a tiny `get` ~2.5 ms. On Linux Node writes stdout synchronously anyway (file, pipe
 * or terminal), so the order is the same. What fd 1 does not take at once (a full non-blocking
 * pipe) or refuses (a closed pipe, any error) goes to `process.stdout`, which handles it as before.
 */
export function writeOut(text: string): void {
  const buf = Buffer.from(text);
  let done = 0;
  try {
    while (done < buf.length) {
      const n = writeSync(1, buf, done);
      if (n <= 0) break;
      done += n;
    }
  } catch {
    // the rest goes through the stream
  }
  if (done < buf.length) process.stdout.write(buf.subarray(done));
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** Run `fn` with a resolver over the command's configuration; stores are closed afterwards. */
export async function withResolver<T>(cmd: Command, fn: (r: Resolver) => Promise<T>, opts: ResolverOptions = {}): Promise<T> {
  const { Resolver } = require("../engine/resolve") as typeof import("../engine/resolve");
  const r = new Resolver(loadConfig(cmd), { onWarning: warn, ...opts });
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

/**
 * Warn on stderr about unfinished rotations of the rotated variables among those a reader
 * (`get`, `render`, `exec`) hands out: the value stored as current may already be refused by
 * the target (single-user). Nothing is loaded and nothing is asked when no variable read has a
 * `rotation:` block; a failed check is a warning too, never an error of the reader.
 */
export async function warnUnfinishedRotations(cmd: Command, r: Resolver, env: string, variables?: readonly string[]): Promise<void> {
  const vars = r.config.envs[env];
  if (!vars) return;
  const rotated = (variables ?? Object.keys(vars)).filter((n) => vars[n]?.spec.rotation);
  if (!rotated.length) return;
  const { RotationEngine } = require("../rotation/engine") as typeof import("../rotation/engine");
  const { unfinishedRotations } = require("../rotation/unfinished") as typeof import("../rotation/unfinished");
  // Reads the history only: the bare engine, without notifications or metrics.
  const engine = new RotationEngine(r.config, { resolver: r });
  const given = (cmd.optsWithGlobals() as GlobalOptions).config;
  const config = given === (process.env.DSOPS_CONFIG ?? "dsops.yaml") ? "" : ` --config ${shellWord(given)}`;
  try {
    for (const m of await unfinishedRotations(engine, env, rotated, (v) => `dsops${config} secrets rotate --env ${shellWord(env)} --var ${shellWord(v)}`)) warn(m);
  } catch (e) {
    warn(`could not check for unfinished rotations: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await engine.close();
  }
}

/** A word as a shell reads it back (quoted when it holds anything but safe characters). */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** A plain-text table: columns padded to their widest cell, the last column unpadded. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n") + "\n";
}

/** Print data as JSON on stdout (the `--json` form of a command). */
export function printJson(data: unknown): void {
  process.stdout.write(JSON.stringify(data, null, 2) + "\n");
}

/**
 * All of standard input, read as a stream: a pipe whose writer has not written yet is waited
 * for (a synchronous read of a non-blocking pipe fails with EAGAIN instead).
 */
export async function readStdin(): Promise<string> {
  const none = () => new DsopsError("no value on standard input", { hint: "pipe the value in: printf %s \"$VALUE\" | dsops secrets set …" });
  if (process.stdin.isTTY) throw none();
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } catch {
    throw none();
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Durations of flags (`--ttl`, `--timeout`, `--within`): the one grammar of provider/core/duration. */
// Loaded on call: core/duration holds the zod duration schema too, and commands that read no
// dsops.yaml (guard, shred, leak, completion) must not load zod.
export const parseDuration: typeof import("../core/duration").parseDuration = (...args) =>
  (require("../core/duration") as typeof import("../core/duration")).parseDuration(...args);
export const formatDuration: typeof import("../core/duration").formatDuration = (...args) =>
  (require("../core/duration") as typeof import("../core/duration")).formatDuration(...args);

let hardExit = false;

/**
 * Ask `main` to end the process once the command has finished, even when a store client keeps
 * a socket open (a `doctor` check abandoned at its timeout).
 */
export function exitWhenDone(): void {
  hardExit = true;
}

export function wantsHardExit(): boolean {
  return hardExit;
}

/**
 * The group command `name` (`secrets`, `leak`, `rotation` …), created on first use: command
 * modules add subcommands to a group another module created (`secrets rotate` beside
 * `secrets set`) without knowing the registration order.
 */
export function commandGroup(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}
