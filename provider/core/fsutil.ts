import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync, chmodSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Write all of `data` at the file's current position (or at `position`): `writeSync` may write
 * fewer bytes than asked (a disk that fills up mid-write), which must end in an error (ENOSPC
 * from the next call), never in a short file taken for a whole one.
 */
export function writeAll(fd: number, data: string | Buffer, position?: number): void {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  let done = 0;
  while (done < buf.length) {
    const n = writeSync(fd, buf, done, buf.length - done, position === undefined ? null : position + done);
    if (n <= 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    done += n;
  }
}

/** A failed file-system call (`ENOSPC`, `EROFS`, `EACCES`, `EDQUOT`, `EIO` …): its errno code, else undefined. */
export function fsErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) && typeof (e as NodeJS.ErrnoException).syscall === "string" ? code : undefined;
}

/** What to tell a user about a failed file-system call: the errno message (`ENOSPC: no space left on device, write`). */
export function fsErrorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Write `data` to `path` atomically with mode `mode` (default 0600): a temporary file in the
 * same folder (`.<name>.<12 hex digits>.tmp`, unique), fsync, rename. An existing file with
 * wider permissions is replaced by one with the requested mode; a crash leaves either the old
 * file or the new one, never half of one, and a failure (a full or read-only disk) leaves the old
 * file, removes the temporary one and throws. `beforeRename` runs once the temporary file is
 * complete (crash tests).
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600, beforeRename?: () => void): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  let renamed = false;
  try {
    try {
      writeAll(fd, data);
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
