import type { Command } from "commander";
import { errorMessage } from "../../core/errors";
import { shredFile } from "../../guard/shred";
import { EXIT } from "../util";

/** `dsops shred <file…>`: overwrite each file with random bytes, fsync, unlink. */
export function register(program: Command): void {
  program
    .command("shred")
    .description("overwrite files with random bytes (their full size, fsync'd), then delete them")
    .argument("<files...>", "files to destroy")
    .action((files: string[]) => {
      let failed = 0;
      for (const f of files) {
        try {
          const n = shredFile(f);
          process.stderr.write(`shredded ${f} (${n} bytes)\n`);
        } catch (e) {
          failed++;
          process.stderr.write(`error: ${errorMessage(e)}\n`);
        }
      }
      if (failed) process.exitCode = EXIT.user;
    });
}
