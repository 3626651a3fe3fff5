import type { Clock } from "./clock";
import { StoreError, TimeoutError } from "./errors";

export interface CallPolicy {
  /** Milliseconds (of `clock`) one attempt may take; undefined: no timeout of its own (the client's applies). */
  readonly timeoutMs: number | undefined;
  /** Further attempts after a retryable failure. */
  readonly retries: number;
  /** First backoff ceiling in ms; doubles each attempt (full jitter), capped at `maxBackoffMs`. */
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly clock: Clock;
  /** Random source in [0, 1) for jitter (tests may fix it). */
  readonly random?: () => number;
  /** Told of each retry (progress, logs). */
  readonly onRetry?: (attempt: number, delayMs: number, error: Error) => void;
}

export function isRetryable(e: unknown): boolean {
  return e instanceof StoreError && e.retryable;
}

/** Run `fn` with a timeout per attempt and jittered exponential backoff on retryable errors only. */
export async function callWithPolicy<T>(what: string, fn: () => Promise<T>, p: CallPolicy): Promise<T> {
  const random = p.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    try {
      return p.timeoutMs === undefined ? await fn() : await withTimeout(what, fn, p.timeoutMs, p.clock);
    } catch (e) {
      if (!isRetryable(e) || attempt >= p.retries) throw e;
      const ceiling = Math.min(p.maxBackoffMs, p.baseBackoffMs * 2 ** attempt);
      const delay = Math.floor(random() * ceiling);
      p.onRetry?.(attempt + 1, delay, e as Error);
      await p.clock.sleep(delay);
    }
  }
}

/**
 * One attempt, abandoned after `ms` of the clock. The timeout's sleep is cancelled as soon as
 * the call settles: a left-over timer would keep the process waiting the full timeout after
 * the work was done.
 */
async function withTimeout<T>(what: string, fn: () => Promise<T>, ms: number, clock: Clock): Promise<T> {
  const cancel = new AbortController();
  const timedOut = Symbol("timeout");
  const timer = clock.sleep(ms, cancel.signal).then(
    () => timedOut,
    () => undefined, // cancelled: the call settled first
  );
  try {
    const call = fn();
    const winner = await Promise.race([call.then((v) => ({ v })), timer]);
    if (winner === timedOut) {
      call.catch(() => undefined); // the abandoned call's late failure is not unhandled
      throw new TimeoutError(`${what}: no answer within ${ms} ms (timeout_ms)`);
    }
    return (winner as { v: T }).v;
  } finally {
    cancel.abort();
  }
}
