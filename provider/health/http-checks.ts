import { durationMs } from "../core/duration";
import type { HealthContext } from "../rotation/ports";
import { expectedText, httpAsk, plainUrl, statusExpected, type HttpAnswer } from "./http";
import { httpApiCheckTypes, type HttpApiCheckSettings } from "./http-settings";

/**
 * The HTTP API checks (dsops's `http_endpoint`, `response_time`, `error_rate`, `rate_limit`),
 * on the request code of the `http` check (./http.ts). A check's requests go one after the
 * other; its verdict is a message (unhealthy) or undefined. Messages carry the URL without its
 * query string, statuses and numbers; never the credential a check authenticates with.
 */

export function isHttpApiCheck(c: { type: string }): c is HttpApiCheckSettings {
  return httpApiCheckTypes.has(c.type);
}

type Check<T extends HttpApiCheckSettings["type"]> = Extract<HttpApiCheckSettings, { type: T }>;

/** The headers of each request: the configured ones, plus the rotated credential when `auth` asks for it. */
function requestHeaders(c: HttpApiCheckSettings, ctx: HealthContext): { headers: Record<string, string> } | { error: string } {
  if (!c.auth) return { headers: c.headers };
  const cred = ctx.credential;
  if (!cred) return { error: `auth: ${c.auth.type}: this rotation has no new credential to authenticate with` };
  const value = cred.secret.reveal();
  switch (c.auth.type) {
    case "bearer":
      return { headers: { ...c.headers, authorization: `Bearer ${value}` } };
    case "basic":
      return { headers: { ...c.headers, authorization: `Basic ${Buffer.from(`${c.auth.username ?? cred.principal}:${value}`).toString("base64")}` } };
    case "header":
      return { headers: { ...c.headers, [c.auth.header.toLowerCase()]: value } };
  }
}

/** `samples` requests one after the other (answers, and the failures of requests that got none; with `stopOnError`, up to the first of these). */
async function sample(c: HttpApiCheckSettings, headers: Record<string, string>, n: number, stopOnError = false): Promise<Array<HttpAnswer | { error: string }>> {
  const url = (c.url ?? c.endpoint) as string;
  const timeoutMs = c.timeout !== undefined ? Math.max(durationMs(c.timeout), 1) : c.timeout_ms;
  const out: Array<HttpAnswer | { error: string }> = [];
  for (let i = 0; i < n; i++) {
    const a = await httpAsk({ url, method: c.method, headers, timeoutMs });
    out.push(a);
    if (stopOnError && "error" in a) break;
  }
  return out;
}

/** The `q` quantile (nearest rank) of `xs`. */
export function percentile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

const pct = (part: number, whole: number) => (whole ? (100 * part) / whole : 0);
const round1 = (x: number) => Math.round(x * 10) / 10;

function endpoint(c: Check<"http_endpoint">, a: HttpAnswer, where: string): string | undefined {
  const expect = c.expected_status ?? c.expect_status;
  if (!statusExpected(a.status, expect)) return `${where}: HTTP ${a.status} (expected ${expectedText(expect)})`;
  const match = c.expected_body ?? c.body_match;
  if (match !== undefined && !new RegExp(match).test(a.body)) return `${where}: body does not match /${match}/`;
  return undefined;
}

function responseTime(c: Check<"response_time">, answers: readonly HttpAnswer[], where: string): string | undefined {
  const bad = answers.find((a) => !statusExpected(a.status, c.expected_status));
  if (bad) return `${where}: HTTP ${bad.status} (expected ${expectedText(c.expected_status)})`;
  const ms = answers.map((a) => a.ms);
  const over: string[] = [];
  const limits: Array<[string, number | undefined, number]> = [
    ["p50", c.p50_threshold_ms, percentile(ms, 0.5)],
    ["p95", c.p95_threshold_ms, percentile(ms, 0.95)],
    ["p99", c.p99_threshold_ms, percentile(ms, 0.99)],
    ["avg", c.avg_threshold_ms, ms.reduce((a, b) => a + b, 0) / ms.length],
  ];
  for (const [what, limit, got] of limits) if (limit !== undefined && got > limit) over.push(`${what} ${Math.round(got)} ms (limit ${limit} ms)`);
  return over.length ? `${where}: over ${ms.length} request(s): ${over.join(", ")}` : undefined;
}

function errorRate(c: Check<"error_rate">, all: ReadonlyArray<HttpAnswer | { error: string }>, where: string): string | undefined {
  const isError = (r: HttpAnswer | { error: string }) => ("error" in r ? true : c.error_codes ? c.error_codes.includes(r.status) : r.status < 200 || r.status > 399);
  const errors = all.filter(isError);
  const rate = pct(errors.length, all.length);
  if (rate <= c.max_error_rate_pct) return undefined;
  const kinds = new Map<string, number>();
  for (const e of errors) {
    const k = "error" in e ? `no answer: ${e.error.slice(where.length + 2)}` : `HTTP ${e.status}`;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  return `${where}: ${errors.length} of ${all.length} request(s) failed (${round1(rate)}% > ${c.max_error_rate_pct}%: ${[...kinds].map(([k, n]) => `${n}× ${k}`).join(", ")})`;
}

/** Remaining and limit from the standard (`RateLimit-*`) or the common (`X-RateLimit-*`) headers. */
function quota(h: Headers): { remaining: number; limit: number } | undefined {
  for (const p of ["ratelimit-", "x-ratelimit-"]) {
    const remaining = Number.parseFloat(h.get(`${p}remaining`) ?? "");
    const limit = Number.parseFloat(h.get(`${p}limit`) ?? "");
    if (Number.isFinite(remaining) && Number.isFinite(limit) && limit > 0) return { remaining, limit };
  }
  return undefined;
}

function rateLimit(c: Check<"rate_limit">, all: ReadonlyArray<HttpAnswer | { error: string }>, where: string): string | undefined {
  const failed = all.find((r) => "error" in r);
  if (failed && "error" in failed) return failed.error;
  const answers = all as readonly HttpAnswer[];
  const throttled = answers.filter((a) => a.status === 429).length;
  const share = pct(throttled, answers.length);
  if (share > c.max_throttled_pct) return `${where}: ${throttled} of ${answers.length} request(s) answered 429 Too Many Requests (${round1(share)}% > ${c.max_throttled_pct}%)`;
  const other = answers.find((a) => a.status !== 429 && (a.status < 200 || a.status > 399));
  if (other) return `${where}: HTTP ${other.status}`;
  if (!c.check_headers) return undefined;
  const last = [...answers].reverse().map((a) => quota(a.headers)).find((q) => q !== undefined);
  if (!last) return undefined;
  const left = pct(last.remaining, last.limit);
  return left < c.warning_threshold_pct ? `${where}: ${last.remaining} of ${last.limit} requests of the rate limit left (${round1(left)}% < ${c.warning_threshold_pct}%)` : undefined;
}

/** Run one HTTP API check: a message when unhealthy, undefined when healthy. */
export async function runHttpApiCheck(c: HttpApiCheckSettings, ctx: HealthContext): Promise<string | undefined> {
  const r = requestHeaders(c, ctx);
  if ("error" in r) return r.error;
  const h = r.headers;
  const where = plainUrl((c.url ?? c.endpoint) as string);
  switch (c.type) {
    case "http_endpoint": {
      const [a] = await sample(c, h, 1);
      return a && "error" in a ? a.error : endpoint(c, a as HttpAnswer, where);
    }
    case "response_time": {
      const all = await sample(c, h, c.samples, true);
      const failed = all.find((r) => "error" in r);
      if (failed && "error" in failed) return failed.error;
      return responseTime(c, all as HttpAnswer[], where);
    }
    case "error_rate":
      return errorRate(c, await sample(c, h, c.samples), where);
    case "rate_limit":
      return rateLimit(c, await sample(c, h, c.samples), where);
  }
}
