import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import type { Clock } from "../engine/clock";
import { fsErrorCode, fsErrorText, writeAll } from "../engine/fsutil";
import { HistoryWriteError, RotationInProgressError } from "./errors";
import type { HeldLock, LockOwner } from "./types";

/** `user@host` of this process. */
export function whoAmI(): string {
  let user = process.env.DSOPS_USER ?? process.env.USER ?? "";
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = "unknown";
    }
  }
  return `${user}@${hostname()}`;
}

export function lockOwner(clock: Clock, rotationId?: string): LockOwner {
  return { pid: process.pid, host: hostname(), who: whoAmI(), since: new Date(clock.now()).toISOString(), ...(rotationId ? { rotationId } : {}) };
}

/** True when `owner` is a process of this host that no longer exists. Owners on other hosts are never stale here. */
export function ownerIsDead(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * One lock file per secret in `dir` (`<sha256 of the secret id>.lock`), created with O_EXCL and
 * holding its owner as JSON (pid, host, who, since, rotation id), so a refused run can say who
 * rotates. A lock whose owner pid is dead (same host) is taken over: the taker first holds
 * `<lock>.takeover` (O_EXCL), re-reads the lock, and replaces it only if the same dead owner
 * still holds it, so two runs taking over at once cannot both win.
 */
export class FileLocks {
  constructor(
    readonly dir: string,
    private readonly clock: Clock,
  ) {}

  pathOf(secret: string): string {
    return join(this.dir, `${createHash("sha256").update(secret).digest("hex").slice(0, 32)}.lock`);
  }

  /** The current holder of a secret's lock, if any. */
  holder(secret: string): LockOwner | undefined {
    return readOwner(this.pathOf(secret));
  }

  /** Take the lock; a full or read-only disk is a HistoryWriteError (nothing is left behind). */
  async acquire(secret: string, owner: LockOwner): Promise<HeldLock> {
    try {
      return this.acquireOnDisk(secret, owner);
    } catch (e) {
      if (!fsErrorCode(e)) throw e;
      throw new HistoryWriteError(`cannot take the rotation lock of ${secret} in ${this.dir}: ${fsErrorText(e)}`, {
        hint: "nothing was changed; free space on that disk (or make it writable) and run again",
      });
    }
  }

  private acquireOnDisk(secret: string, owner: LockOwner): HeldLock {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = this.pathOf(secret);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (tryCreate(path, owner)) return this.held(path, owner);
      const current = readOwner(path);
      if (current === undefined) {
        // Vanished between our attempt and the read: try again. Unreadable: a run is between
        // creating and writing it, or died there; stale only once it is 10 s old.
        if (!existsPath(path)) continue;
        if (this.clock.now() - statSync(path).mtimeMs < 10000) throw new RotationInProgressError(secret);
      } else if (!ownerIsDead(current)) {
        throw new RotationInProgressError(secret, current);
      }
      if (this.takeOver(path, current, owner)) return this.held(path, owner);
    }
    throw new RotationInProgressError(secret, readOwner(path));
  }

  private held(path: string, owner: LockOwner): HeldLock {
    let released = false;
    return {
      owner,
      release: async () => {
        if (released) return;
        released = true;
        const now = readOwner(path);
        if (now && now.pid === owner.pid && now.host === owner.host && now.since === owner.since) {
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
        }
      },
    };
  }

  private takeOver(path: string, stale: LockOwner | undefined, owner: LockOwner): boolean {
    const guard = `${path}.takeover`;
    let fd: number;
    try {
      fd = openSync(guard, "wx", 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // A taker that died while holding the guard: the guard is stale after 30 s of our clock.
      try {
        if (this.clock.now() - statSync(guard).mtimeMs > 30000) unlinkSync(guard);
      } catch {
        /* gone */
      }
      return false;
    }
    try {
      try {
        writeAll(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      const again = readOwner(path);
      const same = JSON.stringify(again) === JSON.stringify(stale);
      if (!same) return tryCreate(path, owner);
      // Write the new owner beside it and rename over the stale lock (atomic).
      const tmp = `${path}.${process.pid}.tmp`;
      const tfd = openSync(tmp, "w", 0o600);
      try {
        writeAll(tfd, JSON.stringify(owner));
      } catch (e) {
        closeSync(tfd);
        unlinkQuietly(tmp);
        throw e;
      }
      closeSync(tfd);
      renameSync(tmp, path);
      return true;
    } finally {
      try {
        unlinkSync(guard);
      } catch {
        /* gone */
      }
    }
  }
}

function existsPath(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

function tryCreate(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    writeAll(fd, JSON.stringify(owner));
  } catch (e) {
    // A lock file without its owner would block the next run: remove it.
    closeSync(fd);
    unlinkQuietly(path);
    throw e;
  }
  closeSync(fd);
  return true;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone, or a read-only disk */
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as LockOwner;
    return typeof o.pid === "number" && typeof o.host === "string" ? o : undefined;
  } catch {
    return undefined;
  }
}
