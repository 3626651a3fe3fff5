import type { HeldLock, LockOwner, RotationRecord, RotationStatus } from "../types";

/* The history backend interface: the file and postgres backends import it from here, not from the barrel (no cycle). */

/** Which records `list` returns. */
export interface HistoryFilter {
  readonly secret?: string;
  readonly service?: string;
  readonly env?: string;
  readonly variable?: string;
  readonly status?: readonly RotationStatus[];
  /**
   * true: only the approval and break-glass records (provider/rotation/governance.ts) kept in the
   * same backend; false or absent: only rotation (and rollback) records.
   */
  readonly governance?: boolean;
  /** Newest first; at most this many. */
  readonly limit?: number;
}

/**
 * Where rotation records and the per-secret locks live. One backend serves every runner that
 * shares it: the file backend on one machine, the postgres backend across machines.
 */
export interface HistoryBackend {
  readonly kind: string;
  /** Insert or replace the record of `rec.id` (called before and after each step). */
  save(rec: RotationRecord): Promise<void>;
  get(id: string): Promise<RotationRecord | undefined>;
  /** Records, newest first. */
  list(filter?: HistoryFilter): Promise<RotationRecord[]>;
  /**
   * Take the secret's rotation lock, or throw RotationInProgressError naming the holder. A
   * lock whose holder died is taken over (file: dead pid on this host; postgres: the holder's
   * session ended, which releases its advisory lock).
   */
  lock(secret: string, owner: LockOwner): Promise<HeldLock>;
  /** Who holds the secret's lock now, if anyone (status). */
  holder(secret: string): Promise<LockOwner | undefined>;
  close(): Promise<void>;
}
