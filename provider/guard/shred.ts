import { randomFillSync } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, rmdirSync, unlinkSync, writeSync, constants } from "node:fs";
import { join } from "node:path";
import { DsopsError } from "../core/errors";

const CHUNK = 1 << 20;

/**
 * Overwrite a regular file with random bytes (its whole size, then fsync) and unlink it. With
 * `expect`, only when the file is still that one (checked on the open file, then on the name).
 * Symbolic links and anything but a regular file are refused: shredding through a link would
 * destroy a file the user did not name. Returns the number of bytes overwritten.
 *
 * On copy-on-write or journaling file systems (btrfs, ZFS, data=journal ext4) and on SSDs
 * older copies of the blocks may survive; the overwrite still removes the plaintext from the
 * file every other hard link shows. `passes` overwrites (each fsync'd) are made before the unlink.
 */
export function shredFile(path: string, expect?: FileIdentity, passes = 1): number {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DsopsError(`${path}: ${code === "ENOENT" ? "no such file" : code ?? "cannot read"}`);
  }
  if (st.isSymbolicLink()) throw new DsopsError(`${path}: is a symbolic link; shred the file it points to by its own name`);
  if (!st.isFile()) throw new DsopsError(`${path}: not a regular file`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    throw new DsopsError(`${path}: cannot open for writing (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let size: number;
  try {
    if (expect && !sameIdentity(fstatSync(fd, { bigint: true }), expect)) {
      throw new DsopsError(`${path}: replaced since it was written; left alone`);
    }
    size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
    // Each pass writes new random bytes over the whole file and reaches the disk before the next.
    for (let pass = 0; pass < passes; pass++) {
      for (let pos = 0; pos < size; ) {
        const n = Math.min(buf.length, size - pos);
        randomFillSync(buf, 0, n);
        pos += writeSync(fd, buf, 0, n, pos);
      }
      fsyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  // The name may have been pointed at another file meanwhile: unlink only the file overwritten.
  // (The overwrite changed the modification time: device and inode tell it now.)
  if (expect && !sameIdentity(lstatSync(path, { bigint: true }), expect, false)) throw new DsopsError(`${path}: replaced while being shredded; left alone`);
  unlinkSync(path);
  return size;
}

/** Which file a path named when it was written: device, inode, modification time (ns). */
export interface FileIdentity {
  readonly dev: string;
  readonly ino: string;
  readonly mtimeNs: string;
}

function sameIdentity(st: { dev: bigint; ino: bigint; mtimeNs: bigint }, id: FileIdentity, mtime = true): boolean {
  return String(st.dev) === id.dev && String(st.ino) === id.ino && (!mtime || String(st.mtimeNs) === id.mtimeNs);
}

/** What shredTree did: files shredded (with their sizes), and the problems met (each a message). */
export interface ShredTreeResult {
  readonly shredded: Array<{ path: string; bytes: number }>;
  readonly errors: string[];
  readonly removedDirs: string[];
}

/**
 * Shred every regular file under the folder `dir` (depth first), then remove the folders left
 * empty. Symbolic links are not followed: each is a problem left in place (so its folder stays).
 */
export function shredTree(dir: string, passes = 1): ShredTreeResult {
  const out: ShredTreeResult = { shredded: [], errors: [], removedDirs: [] };
  const walk = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      out.errors.push(`${d}: cannot list (${(e as NodeJS.ErrnoException).code ?? "error"})`);
      return false;
    }
    let empty = true;
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!walk(p)) empty = false;
        continue;
      }
      try {
        out.shredded.push({ path: p, bytes: shredFile(p, undefined, passes) });
      } catch (err) {
        empty = false;
        out.errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    if (!empty) return false;
    try {
      rmdirSync(d);
      out.removedDirs.push(d);
      return true;
    } catch (e) {
      out.errors.push(`${d}: cannot remove the folder (${(e as NodeJS.ErrnoException).code ?? "error"})`);
      return false;
    }
  };
  walk(dir);
  return out;
}
