import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Clock } from "../core/clock";
import { fsErrorCode, fsErrorText } from "../core/fsutil";
import { LockFile, ownerIsDead, whoAmI } from "../core/lock";
import { HistoryWriteError, RotationInProgressError } from "./errors";
import type { HeldLock, LockOwner } from "./types";

export { ownerIsDead, whoAmI };

export function lockOwner(clock: Clock, rotationId?: string): LockOwner {
  return { pid: process.pid, host: hostname(), who: whoAmI(), since: new Date(clock.now()).toISOString(), ...(rotationId ? { rotationId } : {}) };
}

/**
 * One lock file per secret in `dir` (`<sha256 of the secret id>.lock`), holding its owner as
 * JSON (pid, host, who, since, rotation id), so a refused run can say who rotates. The lock
 * is the engine's LockFile (see provider/core/lock.ts): a lock whose owner pid is dead
 * (same host) is taken over safely; a live one refuses the run at once (no waiting).
 */
export class FileLocks {
  constructor(
    readonly dir: string,
    // Kept for callers; lock files are aged by the filesystem's time, not a clock.
    _clock?: Clock,
  ) {}

  pathOf(secret: string): string {
    return join(this.dir, `${createHash("sha256").update(secret).digest("hex").slice(0, 32)}.lock`);
  }

  /** The current holder of a secret's lock, if any. */
  holder(secret: string): LockOwner | undefined {
    return new LockFile<LockOwner>(this.pathOf(secret)).holder();
  }

  /** Take the lock; a full or read-only disk is a HistoryWriteError (nothing is left behind). */
  async acquire(secret: string, owner: LockOwner): Promise<HeldLock> {
    let r: ReturnType<LockFile<LockOwner>["tryAcquire"]>;
    try {
      r = new LockFile<LockOwner>(this.pathOf(secret)).tryAcquire(owner);
    } catch (e) {
      if (!fsErrorCode(e)) throw e;
      throw new HistoryWriteError(`cannot take the rotation lock of ${secret} in ${this.dir}: ${fsErrorText(e)}`, {
        hint: "nothing was changed; free space on that disk (or make it writable) and run again",
      });
    }
    if (!("held" in r)) throw new RotationInProgressError(secret, r.busy as LockOwner | undefined);
    const held = r.held;
    return {
      owner,
      release: async () => held.release(),
    };
  }
}
