import * as z from "zod";
import { durationSchema } from "../core/duration";

/**
 * The HTTP API health checks of dsops's examples (`http_endpoint`, `response_time`,
 * `error_rate`, `rate_limit`), with dsops's field names; zod only, run by ./http-checks.ts.
 * Each takes its URL as `url` or `endpoint` (dsops writes both; an absolute URL).
 */

const common = {
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/).optional(),
  /** Milliseconds one request may take (`timeout`, dsops's duration, wins when given). */
  timeout_ms: z.number().int().positive().max(600000).default(10000),
  timeout: durationSchema.optional(),
  url: z.string().url().optional(),
  endpoint: z.string().optional(),
  method: z.enum(["GET", "HEAD", "POST"]).default("GET"),
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * Send the rotated (new) credential: `bearer` (`Authorization: Bearer <value>`), `basic`
   * (`username`, default the rotated principal, and the value as password) or `header` (the
   * value in header `header`). Never shown in messages.
   */
  auth: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("bearer") }),
      z.strictObject({ type: z.literal("basic"), username: z.string().min(1).optional() }),
      z.strictObject({ type: z.literal("header"), header: z.string().regex(/^[A-Za-z0-9-]+$/) }),
    ])
    .optional(),
};

/** `url` or `endpoint` is there and absolute (dsops's relative `endpoint: /v1/ping` needs the service's base URL, which a dsops.yaml does not give). */
const urlGiven = (c: { url?: string | undefined; endpoint?: string | undefined }, x: z.RefinementCtx) => {
  if (c.url !== undefined && c.endpoint !== undefined) x.addIssue({ code: "custom", path: ["endpoint"], message: "give url or endpoint, not both" });
  const u = c.url ?? c.endpoint;
  if (u === undefined) return x.addIssue({ code: "custom", path: ["url"], message: "url (or endpoint) is required: the address the check sends its requests to" });
  if (!URL.canParse(u))
    x.addIssue({ code: "custom", path: [c.url !== undefined ? "url" : "endpoint"], message: `"${u}" is not an absolute URL (write the whole address, e.g. https://api.example.com/v1/ping)` });
};

const statusList = z.union([z.number().int(), z.array(z.number().int()).min(1)]);

export const httpEndpointCheckSchema = z
  .strictObject({
    ...common,
    type: z.literal("http_endpoint"),
    /** Healthy statuses (default any 2xx); `expect_status` is our `http` check's spelling. */
    expected_status: statusList.optional(),
    expect_status: statusList.optional(),
    /** A regular expression the body must match. */
    expected_body: z.string().optional(),
    body_match: z.string().optional(),
  })
  .superRefine(urlGiven)
  .superRefine((c, x) => {
    for (const k of ["expected_body", "body_match"] as const) {
      const re = c[k];
      if (re === undefined) continue;
      try {
        new RegExp(re);
      } catch (e) {
        x.addIssue({ code: "custom", path: [k], message: `not a regular expression: ${(e as Error).message}` });
      }
    }
  });

export const responseTimeCheckSchema = z
  .strictObject({
    ...common,
    type: z.literal("response_time"),
    /** Requests per round (one after the other); the percentiles are over these. */
    samples: z.number().int().min(1).max(1000).default(5),
    p50_threshold_ms: z.number().positive().optional(),
    p95_threshold_ms: z.number().positive().optional(),
    p99_threshold_ms: z.number().positive().optional(),
    avg_threshold_ms: z.number().positive().optional(),
    /** Statuses that count as an answer (default any 2xx); another status fails the check. */
    expected_status: statusList.optional(),
  })
  .superRefine(urlGiven)
  .superRefine((c, x) => {
    if ([c.p50_threshold_ms, c.p95_threshold_ms, c.p99_threshold_ms, c.avg_threshold_ms].every((t) => t === undefined))
      x.addIssue({ code: "custom", path: ["p95_threshold_ms"], message: "response_time needs a threshold: p50_threshold_ms, p95_threshold_ms, p99_threshold_ms or avg_threshold_ms" });
  });

export const errorRateCheckSchema = z
  .strictObject({
    ...common,
    type: z.literal("error_rate"),
    /** Requests per round; the error rate is over these. */
    samples: z.number().int().min(1).max(1000).default(20),
    /** Unhealthy when more than this share (percent) of the samples are errors. */
    max_error_rate_pct: z.number().min(0).max(100).default(5),
    /** Statuses that count as errors (default: any status that is not 2xx/3xx). No answer is always an error. */
    error_codes: z.array(z.number().int()).min(1).optional(),
    /** dsops's rate window: accepted; the rate is over each round's `samples` (rounds repeat per `monitor.interval`). */
    window: durationSchema.optional(),
  })
  .superRefine(urlGiven);

export const rateLimitCheckSchema = z
  .strictObject({
    ...common,
    type: z.literal("rate_limit"),
    /** Requests per round. */
    samples: z.number().int().min(1).max(1000).default(3),
    /** Read the quota headers (`RateLimit-Remaining`/`-Limit`, `X-RateLimit-Remaining`/`-Limit`). */
    check_headers: z.boolean().default(true),
    /** Unhealthy when less than this share (percent) of the quota remains (after the last sample). */
    warning_threshold_pct: z.number().min(0).max(100).default(20),
    /** Unhealthy when more than this share (percent) of the samples are answered 429 Too Many Requests. */
    max_throttled_pct: z.number().min(0).max(100).default(0),
  })
  .superRefine(urlGiven);

/** The four schemas, for the health-check union of ./settings.ts. */
export const httpApiCheckSchemas = [httpEndpointCheckSchema, responseTimeCheckSchema, errorRateCheckSchema, rateLimitCheckSchema] as const;

export type HttpApiCheckSettings =
  | z.infer<typeof httpEndpointCheckSchema>
  | z.infer<typeof responseTimeCheckSchema>
  | z.infer<typeof errorRateCheckSchema>
  | z.infer<typeof rateLimitCheckSchema>;
export const httpApiCheckTypes: ReadonlySet<string> = new Set(["http_endpoint", "response_time", "error_rate", "rate_limit"]);
