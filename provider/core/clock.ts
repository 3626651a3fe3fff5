import { setTimeout as delay } from "node:timers/promises";

/**
 * The one clock. Nothing else reads the system time: tests and drills set
 * `DSOPS_CLOCK=<ISO-8601 instant>` or install a clock with `setClock`.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolve after `ms` milliseconds of this clock's time. A pending sleep keeps the process
   * alive, like any timer the program waits on. When `signal` aborts first, the sleep is
   * cancelled (its timer cleared) and the promise rejects with the signal's reason.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => {
    const fixed = process.env.DSOPS_CLOCK;
    if (fixed) {
      const t = Date.parse(fixed);
      if (Number.isNaN(t)) throw new Error(`DSOPS_CLOCK: not an ISO-8601 instant: ${fixed}`);
      return t;
    }
    return Date.now();
  },
  // A referenced timer: an unreferenced one let Node exit (with code 0) in the middle of a
  // retry backoff, when the sleep was all the command was waiting on.
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined),
};

let current: Clock = systemClock;

export function clock(): Clock {
  return current;
}

/** Install a clock (tests); returns the previous one. */
export function setClock(c: Clock): Clock {
  const prev = current;
  current = c;
  return prev;
}

/** A manual clock for tests: time moves only when `advance` is called; sleeps resolve then. */
export class ManualClock implements Clock {
  private waiters: Array<{ at: number; resolve: () => void }> = [];
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const w = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener("abort", cancel);
          resolve();
        },
      };
      const cancel = () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", cancel, { once: true });
      this.waiters.push(w);
    });
  }
  /** Move time forward and wake every sleeper that is due. */
  advance(ms: number): void {
    this.t += ms;
    const due = this.waiters.filter((w) => w.at <= this.t);
    this.waiters = this.waiters.filter((w) => w.at > this.t);
    for (const w of due) w.resolve();
  }
  /** Number of pending sleeps. */
  get sleepers(): number {
    return this.waiters.length;
  }
}

export function isoNow(): string {
  return new Date(clock().now()).toISOString();
}
