import { performance } from "node:perf_hooks";

/**
 * One HTTP request of a health check (the `http` check and the HTTP API checks of
 * ./http-checks.ts share it): the answer with its latency, or why there was none. Never throws.
 */

/** Where a check goes, without query string or credentials (messages). */
export const plainUrl = (u: string): string => {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return "(invalid URL)";
  }
};

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** Milliseconds from sending to the end of the body. */
  readonly ms: number;
}

export interface HttpAsk {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;
}

/** The answer, or `{ error }` (no answer within the timeout, refused, reset …; the URL without query string). */
export async function httpAsk(a: HttpAsk): Promise<HttpAnswer | { readonly error: string }> {
  const t0 = performance.now();
  let res: Response;
  try {
    res = await fetch(a.url, { method: a.method, headers: a.headers, signal: AbortSignal.timeout(a.timeoutMs) });
  } catch (e) {
    const name = (e as Error).name;
    return {
      error: `${plainUrl(a.url)}: ${name === "TimeoutError" || name === "AbortError" ? `no answer within ${a.timeoutMs} ms` : ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message)}`,
    };
  }
  let body = "";
  try {
    body = a.method === "HEAD" ? "" : await res.text();
  } catch (e) {
    const name = (e as Error).name;
    if (name === "TimeoutError" || name === "AbortError") return { error: `${plainUrl(a.url)}: no complete answer within ${a.timeoutMs} ms` };
  }
  return { status: res.status, headers: res.headers, body, ms: performance.now() - t0 };
}

/** Whether `status` is one of `expect` (default: any 2xx). */
export function statusExpected(status: number, expect: number | readonly number[] | undefined): boolean {
  const list = expect === undefined ? undefined : Array.isArray(expect) ? expect : [expect as number];
  return list ? list.includes(status) : status >= 200 && status <= 299;
}

/** `200 or 204`, or `2xx`. */
export function expectedText(expect: number | readonly number[] | undefined): string {
  return expect === undefined ? "2xx" : Array.isArray(expect) ? expect.join(" or ") : String(expect);
}
