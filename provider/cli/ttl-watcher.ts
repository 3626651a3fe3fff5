/**
 * The detached watcher `dsops render --ttl` starts: it outlives the command, sleeps until the
 * deadline, then shreds and unlinks the rendered file, but only if the file is still the one
 * render wrote (same device, inode and modification time). A file rendered again in the
 * meantime (a new inode: render writes a temporary file and renames it) is left alone.
 *
 *   node ttl-watcher.js <path> <delay-ms> <dev> <ino> <mtime-ns>
 *
 * Its standard streams are closed; it reports nothing. It checks the file every minute and exits
 * early once the file is gone or replaced, so no watcher outlives its file for long.
 */
import { statSync } from "node:fs";
import { shredFile } from "../guard/shred";

/** How often the watcher looks whether the file is still there (it exits early when not). */
const CHECK_EVERY_MS = 60_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when `path` is still the file render wrote. */
function sameFile(path: string, dev: string, ino: string, mtime: string): boolean {
  try {
    const st = statSync(path, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino && String(st.mtimeNs) === mtime;
  } catch {
    return false;
  }
}

export async function watch(argv: string[]): Promise<void> {
  const [path, delayMs, dev, ino, mtime] = argv;
  if (!path || [delayMs, dev, ino, mtime].some((v) => v === undefined || !/^\d+$/.test(v))) return;
  // Sleep until the deadline in steps, leaving early once the file is gone or replaced.
  for (let left = Number(delayMs); left > 0; ) {
    const step = Math.min(left, CHECK_EVERY_MS);
    await delay(step);
    left -= step;
    if (!sameFile(path, dev, ino, mtime)) return;
  }
  if (!sameFile(path, dev, ino, mtime)) return;
  try {
    shredFile(path, { dev, ino, mtimeNs: mtime });
  } catch {
    // nothing to report to: the file stays, as it would without --ttl
  }
}

if (require.main === module) void watch(process.argv.slice(2));
