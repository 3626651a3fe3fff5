import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { writeFileAtomic } from "../../core/fsutil";
import { git, repoRoot } from "../git";

/** The line that marks a hook as dsops's own (safe to replace). */
export const HOOK_MARKER = "# dsops pre-commit hook";

/** The installed `bin/dsops` script of this installation. */
export function dsopsBinPath(): string {
  const bin = join(__dirname, "..", "..", "..", "..", "bin", "dsops");
  if (existsSync(bin)) return realpathSync(bin);
  return realpathSync(process.argv[1]);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The hook: this node and this dsops, by absolute path, scanning only what is staged. */
export function hookScript(node = process.execPath, bin = dsopsBinPath()): string {
  return `#!/bin/sh
${HOOK_MARKER} (installed by \`dsops install-hook\`; reinstall with the same command).
# Scans only the staged changes and stops the commit when a line it adds holds a secret.
# A false positive: put "dsops:ignore" in a comment on that line, or list the file in .dsopsignore.
exec ${shellQuote(node)} ${shellQuote(bin)} guard repo --staged
`;
}

/** `dsops install-hook`: a pre-commit hook that blocks commits adding secrets, and only those. */
export function register(program: Command): void {
  program
    .command("install-hook")
    .description("install a git pre-commit hook that blocks a commit when its staged changes add a secret")
    .argument("[dir]", "a folder in the repository", ".")
    .option("--force", "replace a pre-commit hook that dsops did not write (it is kept as pre-commit.dsops-backup)")
    .action((dir: string, o: { force?: boolean }) => {
      const root = repoRoot(dir);
      // `--git-path` honours core.hooksPath and linked work trees.
      const rel = git(root, ["rev-parse", "--git-path", "hooks/pre-commit"]).stdout.trim();
      const hook = isAbsolute(rel) ? rel : resolve(root, rel);
      let existing: string | undefined;
      try {
        existing = readFileSync(hook, "utf8");
      } catch {
        // none yet
      }
      if (existing !== undefined && !existing.includes(HOOK_MARKER)) {
        if (!o.force) throw new DsopsError(`${hook} exists and was not written by dsops; not replacing it`, { hint: "pass --force to replace it (it is kept as pre-commit.dsops-backup), or call `dsops guard repo --staged` from it" });
        renameSync(hook, `${hook}.dsops-backup`);
        process.stderr.write(`kept the previous hook as ${hook}.dsops-backup\n`);
      }
      mkdirSync(dirname(hook), { recursive: true });
      writeFileAtomic(hook, hookScript(), 0o755);
      chmodSync(hook, 0o755);
      process.stderr.write(`${existing?.includes(HOOK_MARKER) ? "updated" : "installed"} ${hook}\n`);
    });
}
