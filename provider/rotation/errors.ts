import { DsopsError } from "../core/errors";
import type { LockOwner } from "./types";

/** Another run holds the secret's rotation lock. */
export class RotationInProgressError extends DsopsError {
  constructor(
    readonly secret: string,
    readonly owner?: LockOwner,
  ) {
    super(
      `rotation of ${secret} in progress by ${owner ? `${owner.who} (pid ${owner.pid} on ${owner.host}, since ${owner.since}${owner.rotationId ? `, rotation ${owner.rotationId}` : ""})` : "another run"}`,
      { hint: "wait for it to finish; a lock of a process that died is taken over by the next run" },
    );
  }
}

/** A rotation failed; `recordId` names its history record. */
export class RotationError extends DsopsError {
  constructor(
    message: string,
    readonly recordId?: string,
    options?: { hint?: string; cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The rotation history could not record a step (a full or read-only disk, a lost database). */
export class HistoryWriteError extends DsopsError {}

/** A scheduled pass found, under the lock, that another run rotated the secret since it looked: not due any more. */
export class RotatedElsewhereError extends DsopsError {
  constructor(readonly secret: string) {
    super(`${secret} was rotated by another run since this pass looked: not due any more`);
  }
}
