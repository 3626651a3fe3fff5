import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, chmodSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Write `data` to `path` atomically with mode `mode` (default 0600): a temporary file in the
 * same folder (`.<name>.<12 hex digits>.tmp`, unique), fsync, rename. An existing file with
 * wider permissions is replaced by one with the requested mode; a crash leaves either the old
 * file or the new one, never half of one, and a failure removes the temporary file.
 * `beforeRename` runs once the temporary file is complete (crash tests).
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600, beforeRename?: () => void): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  let renamed = false;
  try {
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    beforeRename?.();
    renameSync(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }
}

/** The pattern of writeFileAtomic's temporary files for `path` (to sweep those a killed writer left). */
export function atomicTempPattern(path: string): RegExp {
  return new RegExp(`^\\.${basename(path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.[0-9a-f]{12}\\.tmp$`);
}
