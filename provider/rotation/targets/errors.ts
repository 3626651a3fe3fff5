import type { z } from "zod";
import { ConfigError, DsopsError } from "../../core/errors";
import { scrub, type Secret } from "../../core/secret";

/** The credential did not work at the target (login refused, check query failed). */
export class VerificationError extends DsopsError {}

/** The target refused or failed a change (ALTER ROLE failed, API error). */
export class TargetError extends DsopsError {
  constructor(
    message: string,
    /** True for network failures and timeouts, where trying again may work. */
    readonly retryable = false,
  ) {
    super(message);
  }
}

/** An error's message with every given secret replaced by `[secret]` (also URL-encoded forms). */
export function scrubError(e: unknown, secrets: Array<Secret | string | undefined>): string {
  const vals: string[] = [];
  for (const s of secrets) {
    if (s === undefined) continue;
    const v = typeof s === "string" ? s : s.reveal();
    vals.push(v, encodeURIComponent(v));
  }
  const msg = e instanceof Error ? e.message : String(e);
  return scrub(msg, vals);
}

/** Check a `services:` entry with the target's zod schema; errors carry the YAML path. */
export function parseServiceSettings<S extends z.ZodType>(schema: S, name: string, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const path = ["services", name, ...i.path.map(String)].join(".");
    if (i.code === "unrecognized_keys") return `${path}: unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`;
    return `${path}: ${i.message}`;
  });
  throw new ConfigError(problems.join("\n"), problems);
}
