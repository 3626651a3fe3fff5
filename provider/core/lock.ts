// Over 400 lines on purpose: the lock-file protocol (publish, stale detection, takeover, sweep) is one
// state machine whose invariants span all of its functions; split up, a reader would lose them.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { basename, dirname, join } from "node:path";
import { DsopsError } from "./errors";
import { writeAll } from "./fsutil";

/**
 * Who holds a lock: a process (`pid`) on a host. `who`, `since` and `rotationId` only serve
 * messages and callers; they are kept as written.
 */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly who?: string;
  /** ISO-8601. */
  readonly since?: string;
  readonly rotationId?: string;
}

/** A lock this process holds. */
export interface HeldLockFile<O extends LockOwner = LockOwner> {
  readonly owner: O;
  /** Remove the lock if it is still ours; idempotent. */
  release(): void;
}

/** The answer of one attempt: held, or busy with whoever holds it (undefined: an unreadable lock file). */
export type LockAttempt<O extends LockOwner> = { held: HeldLockFile<O> } | { busy: LockOwner | undefined; id: string };

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

/** True when `owner` is a process of this host that no longer exists. Owners on other hosts are never dead here. */
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

/** "pid 42 on host box (ops@box, since …)". */
export function describeOwner(owner: LockOwner): string {
  const extra = [owner.who, owner.since ? `since ${owner.since}` : undefined].filter(Boolean).join(", ");
  return `pid ${owner.pid} on host ${owner.host}${extra ? ` (${extra})` : ""}`;
}

/** Waiting for a lock ended: the same holder kept it for the whole wait. */
export class LockBusyError extends DsopsError {
  constructor(
    readonly path: string,
    /** Undefined: the lock file is unreadable (and younger than the grace period). */
    readonly holder: LockOwner | undefined,
    readonly waitedMs: number,
  ) {
    super(
      holder
        ? `${path} is held by ${describeOwner(holder)}, ${holder.host === hostname() ? "which is still running" : "which dsops cannot check from this host"}; gave up after waiting ${seconds(waitedMs)}`
        : `${path} is held by an unreadable lock file; gave up after waiting ${seconds(waitedMs)}`,
    );
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** What a lock (or claim) file holds. `id` names this very file: its nonce, else a digest of its bytes and inode. */
type Seen = { kind: "free" } | { kind: "held"; owner: LockOwner; id: string; root?: string } | { kind: "unreadable"; id: string; mtimeMs: number };

/** Hard links are not available on every filesystem; these codes fall back to an exclusive create. */
const NO_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

/**
 * One lock file, the single lock primitive of dsops (the file store's writes, rotation's
 * per-secret locks).
 *
 * - Taking it: the owner is written to a unique temporary file and hard-linked to the lock
 *   path (fails if it exists), so a lock file is never seen empty or half-written. It holds
 *   the owner as JSON (pid, host, who, since) and a random `lock` nonce.
 * - A holder is never broken while its pid lives on this host; holders on other hosts are
 *   never broken at all. A lock whose pid is gone (this host), or an unreadable one (empty or
 *   garbled: a writer of an older dsops killed mid-write) older than `graceMs`, is stale.
 * - Taking over a stale lock: the taker first creates the claim file `<lock>.claim.<id of
 *   the stale lock>` (exclusive), re-reads the lock, and renames its own lock file over it
 *   only if it still is that same stale lock. Ids never repeat, so no two takers can replace
 *   the same lock. A claim whose taker died is itself claimed (`<lock>.claim.<its id>`), so
 *   a taker killed mid-takeover never blocks the lock.
 * - Temporary files carry the pid; leftovers of dead processes, and claims of locks that no
 *   longer exist, are removed after each acquisition.
 * File ages are compared with the age of a file just written, never with a clock.
 */
export class LockFile<O extends LockOwner = LockOwner> {
  readonly dir: string;
  private readonly base: string;

  constructor(
    readonly path: string,
    private readonly graceMs = 2000,
  ) {
    this.dir = dirname(path);
    this.base = basename(path);
  }

  /** The current holder, if any (undefined also for an unreadable lock file). */
  holder(): O | undefined {
    const s = read(this.path);
    return s.kind === "held" ? (s.owner as O) : undefined;
  }

  /** One attempt, without waiting: take the lock if it is free or stale. */
  tryAcquire(owner: O): LockAttempt<O> {
    const seen = read(this.path);
    if (seen.kind === "held" && !ownerIsDead(seen.owner)) return { busy: seen.owner, id: seen.id };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const nonce = randomBytes(12).toString("hex");
    const content = JSON.stringify({ ...owner, lock: nonce });
    let tmp = this.writeTemp(content);
    try {
      for (let attempt = 0; attempt < 8; attempt++) {
        let made: boolean | "gone";
        try {
          made = publish(tmp, this.path, content);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
          made = "gone";
        }
        if (made === "gone") {
          // Our temporary file was swept (this process was stopped for long): write it again.
          tmp = this.writeTemp(content);
          continue;
        }
        if (made) return { held: this.held(owner, nonce) };
        const cur = read(this.path);
        if (cur.kind === "free") continue;
        if (cur.kind === "held" && !ownerIsDead(cur.owner)) return { busy: cur.owner, id: cur.id };
        if (cur.kind === "unreadable" && this.ageOf(cur.mtimeMs, tmp) < this.graceMs) return { busy: undefined, id: cur.id };
        const r = this.takeOver(cur.id, tmp);
        if (r === "taken") return { held: this.held(owner, nonce) };
        if (r !== "lost") return r;
        tmp = existsOrRewrite(tmp, () => this.writeTemp(content));
      }
      const last = read(this.path);
      return last.kind === "held" ? { busy: last.owner, id: last.id } : { busy: undefined, id: last.kind === "free" ? "" : last.id };
    } finally {
      removeQuietly(tmp);
    }
  }

  /**
   * Take the lock, waiting while another process holds it. Gives up (LockBusyError naming the
   * holder) once one holder kept it for `waitMs` of polling; a lock that changes hands keeps
   * the wait going, so a queue of writers all get their turn.
   */
  async acquire(owner: O, waitMs: number): Promise<HeldLockFile<O>> {
    let waited = 0;
    let delay = 1;
    let last: string | undefined;
    for (;;) {
      const r = this.tryAcquire(owner);
      if ("held" in r) return r.held;
      if (r.id !== last) {
        last = r.id;
        waited = 0;
        delay = 1;
      } else if (waited >= waitMs) {
        throw new LockBusyError(this.path, r.busy, waited);
      }
      const ms = Math.max(1, Math.min(delay, waitMs - waited));
      // Polling interval, not elapsed time: the wait is counted in requested sleeps.
      await new Promise((res) => setTimeout(res, Math.ceil(ms * (0.5 + Math.random()))));
      waited += ms;
      delay = Math.min(delay * 2, 50);
    }
  }

  private held(owner: O, nonce: string): HeldLockFile<O> {
    let released = false;
    this.sweep();
    return {
      owner,
      release: () => {
        if (released) return;
        released = true;
        // Nobody replaces a lock whose holder lives, so the check and the unlink cannot race.
        const now = read(this.path);
        if (now.kind === "held" && now.id === nonce) removeQuietly(this.path);
      },
    };
  }

  /** Replace the stale lock `root` by our own (`tmp`) if we win its claim. */
  private takeOver(root: string, tmp: string): "taken" | "lost" | { busy: LockOwner | undefined; id: string } {
    const walked: string[] = [];
    let target = root;
    for (let depth = 0; depth < 16; depth++) {
      const claim = `${this.path}.claim.${target}`;
      const content = JSON.stringify({ pid: process.pid, host: hostname(), lock: randomBytes(12).toString("hex"), root });
      const mine = this.writeTemp(content);
      let made: boolean;
      try {
        made = publish(mine, claim, content);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        continue;
      } finally {
        removeQuietly(mine);
      }
      if (!made) {
        const c = read(claim);
        if (c.kind === "free") continue;
        if (c.kind === "held" && !ownerIsDead(c.owner)) return { busy: c.owner, id: root };
        if (c.kind === "unreadable" && this.ageOf(c.mtimeMs, tmp) < this.graceMs) return { busy: undefined, id: root };
        // The taker died: claim its claim.
        walked.push(claim);
        target = c.id;
        continue;
      }
      walked.push(claim);
      const now = read(this.path);
      let result: "taken" | "lost" = "lost";
      if (now.kind !== "free" && now.id === root) {
        renameSync(tmp, this.path);
        result = "taken";
      }
      // `root` is gone for good (ids never repeat): its claims serve nobody any more.
      for (const w of walked) removeQuietly(w);
      return result;
    }
    return { busy: undefined, id: root };
  }

  private writeTemp(content: string): string {
    const tmp = join(this.dir, `.${this.base}.${hostTag()}-${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeAll(fd, content);
    } catch (e) {
      closeSync(fd);
      removeQuietly(tmp);
      throw e;
    }
    closeSync(fd);
    return tmp;
  }

  /** Age of a file modified at `mtimeMs`, by the filesystem's time (the mtime of `fresh`, just written). */
  private ageOf(mtimeMs: number, fresh: string): number {
    const now = mtimeOf(fresh);
    return now === undefined ? 0 : now - mtimeMs;
  }

  /** The filesystem's time now: the mtime of a temporary file written for the purpose. */
  private filesystemNow(): number {
    let probe: string | undefined;
    try {
      probe = this.writeTemp("");
      return mtimeOf(probe) ?? 0;
    } catch {
      return 0;
    } finally {
      if (probe) removeQuietly(probe);
    }
  }

  /**
   * Remove what dead processes left beside the lock: temporary files of dead pids (of this
   * host; of other hosts after an hour), claims of locks that are gone, and the takeover guard
   * and temporary files of older dsops versions.
   */
  private sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    const ours = `${this.base}.`;
    const claims: string[] = [];
    let now: number | undefined;
    const fsNow = () => (now ??= this.filesystemNow());
    for (const name of names) {
      const full = join(this.dir, name);
      const temp = name.startsWith(`.${ours}`) ? /^([0-9a-f]{8})-(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(ours.length + 1)) : null;
      if (temp) {
        const dead = temp[1] === hostTag() ? ownerIsDead({ pid: Number(temp[2]), host: hostname() }) : fsNow() - (mtimeOf(full) ?? Infinity) > 3_600_000;
        if (dead) removeQuietly(full);
      } else if (name.startsWith(`${ours}claim.`)) {
        claims.push(full);
      } else if (name === `${ours}takeover` || (name.startsWith(ours) && /^\d+\.tmp$/.test(name.slice(ours.length)))) {
        const pid = Number(name.endsWith(".tmp") ? name.slice(ours.length, -4) : readQuietly(full));
        if (pid > 0 && ownerIsDead({ pid, host: hostname() })) removeQuietly(full);
      }
    }
    for (const claim of claims) {
      // The claim first, then the lock: a claim whose root is not the lock now never serves again.
      const c = read(claim);
      if (c.kind === "free") continue;
      if (c.kind === "unreadable" && fsNow() - c.mtimeMs < this.graceMs) continue;
      const lock = read(this.path);
      const root = c.kind === "held" ? c.root : undefined;
      if (lock.kind === "free" || root === undefined || lock.id !== root) removeQuietly(claim);
    }
  }
}

/** Link `tmp` to `path` unless `path` exists; true when we made it. */
function publish(tmp: string, path: string, content: string): boolean {
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code === "EEXIST") return false;
    if (!NO_LINKS.has(code)) throw e;
  }
  // No hard links here: an exclusive create (an instant exists where it is empty; readers treat
  // an unreadable lock younger than the grace period as held).
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    writeAll(fd, content);
  } catch (e) {
    // A lock file without its owner would hold the next run back: remove it.
    closeSync(fd);
    removeQuietly(path);
    throw e;
  }
  closeSync(fd);
  return true;
}

function read(path: string): Seen {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return { kind: "free" };
  }
  try {
    const st = fstatSync(fd);
    const text = readFileSync(fd, "utf8");
    const digest = () => createHash("sha256").update(`${st.ino}:${st.mtimeMs}:${st.size}:${text}`).digest("hex").slice(0, 24);
    const t = text.trim();
    // dsops before 0.2: the file store's lock held a bare pid (of this host).
    if (/^\d+$/.test(t)) return { kind: "held", owner: { pid: Number(t), host: hostname() }, id: digest() };
    try {
      const o = JSON.parse(t) as Record<string, unknown>;
      if (o && typeof o.pid === "number" && typeof o.host === "string") {
        const { lock, root, ...owner } = o;
        return {
          kind: "held",
          owner: owner as unknown as LockOwner,
          id: typeof lock === "string" && /^[0-9a-f]{8,64}$/.test(lock) ? lock : digest(),
          ...(typeof root === "string" ? { root } : {}),
        };
      }
    } catch {
      /* unreadable */
    }
    return { kind: "unreadable", id: digest(), mtimeMs: st.mtimeMs };
  } catch {
    return { kind: "free" };
  } finally {
    closeSync(fd);
  }
}

function existsOrRewrite(tmp: string, rewrite: () => string): string {
  return mtimeOf(tmp) === undefined ? rewrite() : tmp;
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function readQuietly(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

let tagCache: string | undefined;
/** 8 hex digits naming this host in temporary file names. */
function hostTag(): string {
  return (tagCache ??= createHash("sha256").update(hostname()).digest("hex").slice(0, 8));
}
