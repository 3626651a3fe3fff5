import { closeSync, fstatSync, mkdirSync, openSync, readSync, chmodSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Clock } from "../../core/clock";
import { DsopsError } from "../../core/errors";
import { fsErrorCode, fsErrorText, writeAll } from "../../core/fsutil";
import { HistoryWriteError } from "../errors";
import { FileLocks } from "../lock";
import type { HeldLock, LockOwner, RotationRecord } from "../types";
import type { HistoryBackend, HistoryFilter } from "./types";

/**
 * The embedded default history: a JSON-lines file (mode 0600), one full snapshot of a record
 * per line, appended at each step; the last line of an id wins. Appends of whole lines never
 * rewrite earlier ones, so a crash loses at most the line being written (a torn last line is
 * skipped). Locks are files in `<file>.locks/` (see FileLocks).
 */
export class FileHistory implements HistoryBackend {
  readonly kind = "file";
  private readonly locks: FileLocks;
  private offset = 0;
  private readonly records = new Map<string, RotationRecord>();
  /** Bytes of a torn (unterminated) last line left for the next read. */
  private partial = "";

  constructor(
    readonly path: string,
    clock: Clock,
  ) {
    this.locks = new FileLocks(`${path}.locks`, clock);
  }

  /** Append the record; a full or read-only disk is a HistoryWriteError (a torn line it leaves is skipped by readers). */
  async save(rec: RotationRecord): Promise<void> {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(this.path, "a+", 0o600);
      try {
        // A line torn by a crash (or a full disk) must not swallow this one: start on a fresh line.
        const size = fstatSync(fd).size;
        let lead = "";
        if (size > 0) {
          const last = Buffer.alloc(1);
          readSync(fd, last, 0, 1, size - 1);
          if (last[0] !== 0x0a) lead = "\n";
        }
        writeAll(fd, lead + JSON.stringify(rec) + "\n");
      } finally {
        closeSync(fd);
      }
      chmodSync(this.path, 0o600);
    } catch (e) {
      if (!fsErrorCode(e)) throw e;
      throw new HistoryWriteError(`rotation history ${this.path}: cannot write: ${fsErrorText(e)}`);
    }
  }

  async get(id: string): Promise<RotationRecord | undefined> {
    return this.read().get(id);
  }

  async list(filter: HistoryFilter = {}): Promise<RotationRecord[]> {
    const all = [...this.read().values()].filter(
      (r) =>
        (!filter.secret || r.secret === filter.secret) &&
        (!filter.service || r.service === filter.service) &&
        (!filter.env || r.env === filter.env) &&
        (!filter.variable || r.variable === filter.variable) &&
        (!filter.status || filter.status.includes(r.status)) &&
        isGovernance(r) === (filter.governance === true),
    );
    all.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
    return filter.limit ? all.slice(0, filter.limit) : all;
  }

  async lock(secret: string, owner: LockOwner): Promise<HeldLock> {
    return this.locks.acquire(secret, owner);
  }

  async holder(secret: string): Promise<LockOwner | undefined> {
    return this.locks.holder(secret);
  }

  async close(): Promise<void> {}

  /** Read what was appended since the last read (other processes append too). */
  private read(): Map<string, RotationRecord> {
    if (!existsSync(this.path)) return this.records;
    const fd = openSync(this.path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) {
        this.offset = 0;
        this.partial = "";
        this.records.clear();
      }
      if (size === this.offset) return this.records;
      const buf = Buffer.alloc(size - this.offset);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      this.offset += got;
      const text = this.partial + buf.subarray(0, got).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          const r = JSON.parse(line) as RotationRecord;
          if (r && typeof r.id === "string") this.records.set(r.id, r);
        } catch {
          /* a line torn by a crash: skipped */
        }
      }
      return this.records;
    } catch (e) {
      throw new DsopsError(`rotation history ${this.path}: cannot read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
    } finally {
      closeSync(fd);
    }
  }
}

/** Whether a stored record is an approval, break-glass or break-glass read record (provider/rotation/governance.ts), not a rotation. */
export function isGovernance(r: { kind: string }): boolean {
  return r.kind === "approval" || r.kind === "breakglass" || r.kind === "breakglass-read";
}

/** Where the default history goes for a file store at `storePath`: `<dir>/dsops-rotation-history.jsonl`. */
export function defaultHistoryPath(dir: string): string {
  return join(dir, "dsops-rotation-history.jsonl");
}
