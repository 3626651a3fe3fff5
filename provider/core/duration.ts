import * as z from "zod";
import { DsopsError } from "./errors";

/**
 * The one duration grammar of dsops, everywhere a duration is written (dsops.yaml settings,
 * resource inputs, CLI flags, environment variables): one or more `<number><unit>` parts with
 * unit `ms`, `s`, `m`, `h`, `d` or `w` (`500ms`, `30s`, `15m`, `1h30m`, `7d`, `2w`; blanks between
 * parts are allowed), or a bare number of seconds (`30`, and YAML numbers).
 */
const UNIT_MS: Record<string, number> = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const PART = /(\d+(?:\.\d+)?)(ms|w|d|h|m|s)/y;

export const DURATION_EXAMPLES = "500ms, 30s, 15m, 4h, 1h30m, 30d, 2w, or a number of seconds";

/** Milliseconds of a duration, or undefined when `text` is not one. */
export function tryParseDuration(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? Math.round(text * 1000) : undefined;
  const t = String(text).replace(/\s+/g, "");
  if (!t) return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  let total = 0;
  let pos = 0;
  PART.lastIndex = 0;
  for (let m = PART.exec(t); m; m = PART.exec(t)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = PART.lastIndex;
  }
  return pos === t.length ? Math.round(total) : undefined;
}

/**
 * Milliseconds of a duration; `field` names the setting or flag in the error. Zero is refused
 * unless `allowZero` (a monitoring period of 0 means "none").
 */
export function parseDuration(text: string | number, field = "duration", opts: { allowZero?: boolean } = {}): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new DsopsError(`${field}: "${text}" is not a duration`, { hint: `use ${DURATION_EXAMPLES}` });
  if (ms <= 0 && !opts.allowZero) throw new DsopsError(`${field}: "${text}" must be longer than zero`);
  return ms;
}

/** The shortest way to write `ms` in the grammar above (`5400000` → `1h30m`, `250` → `250ms`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = Math.round(ms / 1000);
  let out = "";
  for (const [unit, size] of [["w", 604_800], ["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

/** A duration in a zod schema (dsops.yaml, resource inputs): a number of seconds or a string of the grammar above. */
export const durationSchema = z.union([
  z.number().min(0),
  z.string().refine((s) => tryParseDuration(s) !== undefined, { message: `expected a duration such as ${DURATION_EXAMPLES}` }),
]);
export type Duration = z.infer<typeof durationSchema>;

/** Milliseconds of a value the schema accepted (zero allowed: the schema decides). */
export function durationMs(d: Duration): number {
  return parseDuration(d, "duration", { allowZero: true });
}
