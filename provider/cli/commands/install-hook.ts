import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { installHook, uninstallHook } from "../../guard/hook";
import { isSingleExecutable } from "../../core/self";

/** The installed `bin/dsops` script of this installation; none in the single executable (it is `node` itself). */
export function dsopsBinPath(): string | undefined {
  if (isSingleExecutable()) return undefined;
  const bin = join(__dirname, "..", "..", "..", "..", "bin", "dsops");
  if (existsSync(bin)) return realpathSync(bin);
  return realpathSync(process.argv[1]);
}

/** `dsops install-hook`: a pre-commit hook that blocks commits adding secrets, and only those. */
export function register(program: Command): void {
  program
    .command("install-hook")
    .description("install a git pre-commit hook that blocks a commit when its staged changes add a secret")
    .argument("[dir]", "a folder in the repository", ".")
    .option("--force", "replace a pre-commit hook that dsops did not write (it is kept as pre-commit.dsops-backup)")
    .option("--uninstall", "remove dsops's hook (only it), putting back a hook --force had kept aside")
    .action((dir: string, o: { force?: boolean; uninstall?: boolean }, cmd: Command) => {
      if (o.uninstall) {
        if (o.force) cmd.error("error: --uninstall takes no --force: it never removes a hook dsops did not write", { exitCode: 2 });
        const u = uninstallHook(dir);
        if (u.action === "none") process.stderr.write(`no pre-commit hook at ${u.hook}; nothing to remove\n`);
        else process.stderr.write(`removed ${u.hook}${u.restored ? `; put back the previous hook from ${u.restored}` : ""}\n`);
        return;
      }
      const bin = dsopsBinPath();
      const r = installHook(dir, { ...(bin ? { bin } : {}), ...(o.force ? { force: true } : {}) });
      if (r.backup) process.stderr.write(`kept the previous hook as ${r.backup}\n`);
      process.stderr.write(`${r.action} ${r.hook}\n`);
    });
}
