import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { DsopsError } from "../core/errors";
import { writeFileAtomic } from "../core/fsutil";
import { git, repoRoot } from "./git";

/** The line that marks a hook as dsops's own (safe to replace). */
export const HOOK_MARKER = "# dsops pre-commit hook";

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The hook: this node and this dsops (`bin`), by absolute path, scanning only what is staged.
 * Without `bin`, `node` is dsops itself (the single executable).
 */
export function hookScript(node: string, bin?: string): string {
  return `#!/bin/sh
${HOOK_MARKER} (installed by \`dsops install-hook\`; reinstall with the same command).
# Scans only the staged changes and stops the commit when a line it adds holds a secret.
# A false positive: put "dsops:ignore" in a comment on that line, or list the file in .dsopsignore.
exec ${[node, ...(bin ? [bin] : [])].map(shellQuote).join(" ")} guard repo --staged
`;
}

/** What installHook did. */
export interface HookInstall {
  /** The hook file. */
  readonly hook: string;
  readonly action: "installed" | "updated";
  /** Where a hook dsops did not write was moved (with `force`). */
  readonly backup?: string;
}

/**
 * Write the pre-commit hook of the repository that holds `dir` (`core.hooksPath` and linked work
 * trees honoured). A hook dsops did not write is replaced only with `force`, and kept as
 * `pre-commit.dsops-backup`.
 */
export function installHook(dir: string, opts: { bin?: string; node?: string; force?: boolean }): HookInstall {
  const hook = hookPath(dir);
  let existing: string | undefined;
  try {
    existing = readFileSync(hook, "utf8");
  } catch {
    // none yet
  }
  let backup: string | undefined;
  if (existing !== undefined && !existing.includes(HOOK_MARKER)) {
    if (!opts.force)
      throw new DsopsError(`${hook} exists and was not written by dsops; not replacing it`, {
        hint: "pass --force to replace it (it is kept as pre-commit.dsops-backup), or call `dsops guard repo --staged` from it",
      });
    backup = `${hook}.dsops-backup`;
    renameSync(hook, backup);
  }
  mkdirSync(dirname(hook), { recursive: true });
  writeFileAtomic(hook, hookScript(opts.node ?? process.execPath, opts.bin), 0o755);
  chmodSync(hook, 0o755);
  return { hook, action: existing?.includes(HOOK_MARKER) ? "updated" : "installed", ...(backup ? { backup } : {}) };
}

/** The pre-commit hook file of the repository that holds `dir` (`core.hooksPath` honoured). */
function hookPath(dir: string): string {
  const root = repoRoot(dir);
  const rel = git(root, ["rev-parse", "--git-path", "hooks/pre-commit"]).stdout.trim();
  return isAbsolute(rel) ? rel : resolve(root, rel);
}

/** What uninstallHook did. */
export interface HookUninstall {
  readonly hook: string;
  /** removed: dsops's hook deleted; none: there was no pre-commit hook. */
  readonly action: "removed" | "none";
  /** The hook that `install-hook --force` had put aside, put back in place. */
  readonly restored?: string;
}

/**
 * Remove dsops's pre-commit hook, and only it: a hook dsops did not write is an error, left as
 * it is. A hook `install-hook --force` had kept as `pre-commit.dsops-backup` is put back.
 */
export function uninstallHook(dir: string): HookUninstall {
  const hook = hookPath(dir);
  let existing: string | undefined;
  try {
    existing = readFileSync(hook, "utf8");
  } catch {
    // none
  }
  if (existing === undefined) return { hook, action: "none" };
  if (!existing.includes(HOOK_MARKER))
    throw new DsopsError(`${hook} was not written by dsops; not removing it`, { hint: "remove it yourself if you mean to, or take the `dsops guard repo --staged` line out of it" });
  const backup = `${hook}.dsops-backup`;
  if (existsSync(backup)) {
    renameSync(backup, hook);
    return { hook, action: "removed", restored: backup };
  }
  unlinkSync(hook);
  return { hook, action: "removed" };
}
