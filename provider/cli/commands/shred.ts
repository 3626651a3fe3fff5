import { lstatSync } from "node:fs";
import type { Command } from "commander";
import { errorMessage } from "../../core/errors";
import { shredFile, shredTree } from "../../guard/shred";
import { EXIT } from "../util";

/** `--passes N`: a whole number from 1 to 100. */
function passesOf(v: string, cmd: Command): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 100) cmd.error(`error: option '--passes <n>' must be a whole number from 1 to 100, not "${v}"`, { exitCode: EXIT.usage });
  return n;
}

/** `dsops shred <file…>`: overwrite each file with random bytes, fsync, unlink. */
export function register(program: Command): void {
  program
    .command("shred")
    .description("overwrite files with random bytes (their full size, fsync'd), then delete them")
    .argument("<files...>", "files (with --recursive, folders too) to destroy")
    .option("-n, --passes <n>", "overwrite this many times (each pass fsync'd) before deleting", "1")
    .option("-r, --recursive", "shred every file under a folder, then remove the folders")
    .action((files: string[], o: { passes: string; recursive?: boolean }, cmd: Command) => {
      const passes = passesOf(o.passes, cmd);
      let failed = 0;
      for (const f of files) {
        let isDir = false;
        try {
          const st = lstatSync(f);
          isDir = st.isDirectory();
        } catch {
          // shredFile says what is wrong
        }
        // Without --recursive a folder is refused by shredFile ("not a regular file").
        if (isDir && o.recursive) {
          const r = shredTree(f, passes);
          for (const s of r.shredded) process.stderr.write(`shredded ${s.path} (${s.bytes} bytes${passes > 1 ? `, ${passes} passes` : ""})\n`);
          for (const e of r.errors) process.stderr.write(`error: ${e}\n`);
          if (r.errors.length) failed++;
          else process.stderr.write(`removed ${f}\n`);
          continue;
        }
        try {
          const n = shredFile(f, undefined, passes);
          process.stderr.write(`shredded ${f} (${n} bytes${passes > 1 ? `, ${passes} passes` : ""})\n`);
        } catch (e) {
          failed++;
          process.stderr.write(`error: ${errorMessage(e)}\n`);
        }
      }
      if (failed) process.exitCode = EXIT.user;
    });
}
