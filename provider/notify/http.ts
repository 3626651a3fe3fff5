import type { Clock } from "../core/clock";

/** A delivery failed; `retryable` for network errors, timeouts, 408, 429 and 5xx. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface PostOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body: string;
  readonly timeoutMs: number;
  /** Further attempts after a retryable failure. */
  readonly retries?: number;
  /** First wait between attempts (doubled each time), on `clock`. */
  readonly backoffMs?: number;
  readonly clock?: Clock;
  /** Recomputes headers before each attempt (a fresh signature timestamp). */
  readonly headersFor?: (attempt: number) => Record<string, string>;
}

/** Where a URL goes, for messages: scheme, host and path only (a webhook URL's path may be its credential: only its first segment). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    const first = u.pathname.split("/").filter(Boolean)[0];
    return `${u.protocol}//${u.host}${first ? `/${first}/…` : "/"}`;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Send one HTTP request with a timeout per attempt, retrying retryable failures with
 * exponential backoff. Resolves with the response status; throws DeliveryError naming the URL
 * (without its path) and the last failure.
 */
export async function post(url: string, o: PostOptions): Promise<number> {
  const retries = o.retries ?? 0;
  let lastErr: DeliveryError | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0 && o.clock) await o.clock.sleep((o.backoffMs ?? 500) * 2 ** (attempt - 1));
    try {
      const res = await fetch(url, {
        method: o.method ?? "POST",
        headers: { ...o.headers, ...o.headersFor?.(attempt) },
        body: o.body,
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return res.status;
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      lastErr = new DeliveryError(`${safeUrl(url)} answered HTTP ${res.status}`, retryable);
    } catch (e) {
      const name = (e as Error).name;
      const why = name === "TimeoutError" || name === "AbortError" ? `no answer within ${o.timeoutMs} ms` : ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message);
      lastErr = new DeliveryError(`${safeUrl(url)}: ${why}`, true);
    }
    if (!lastErr.retryable) break;
  }
  const err = lastErr as DeliveryError;
  throw new DeliveryError(retries > 0 && err.retryable ? `${err.message} (after ${retries + 1} attempts)` : err.message, err.retryable);
}
