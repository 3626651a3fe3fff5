import { DsopsError } from "../core/errors";

/** A wall-clock time in some zone. Months are 1-12. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Check an IANA zone name; throws naming the field. */
export function checkZone(zone: string, field = "timezone"): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
  } catch {
    throw new DsopsError(`${field}: "${zone}" is not an IANA time zone`, { hint: "e.g. UTC, Europe/Berlin, America/New_York" });
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The wall-clock time in `zone` at instant `t` (ms), to the minute. */
export function wallTime(t: number, zone: string): WallTime {
  const parts = Object.fromEntries(formatter(zone).formatToParts(new Date(t)).map((p) => [p.type, p.value]));
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour) % 24, minute: Number(parts.minute) };
}

/** A wall time as a comparable number of minutes (as if it were UTC). */
function wallMinutes(w: WallTime): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute) / 60000;
}

/**
 * The instant at which the clocks of `zone` show `w`.
 * - A wall time that happens twice (clocks set back) is its first occurrence.
 * - A wall time that does not happen (clocks set forward: 02:30 on a day that jumps from 02:00
 *   to 03:00) is the next valid instant: the moment of the jump, when clocks show 03:00.
 */
export function instantOf(w: WallTime, zone: string): number {
  const target = wallMinutes(w);
  const naive = target * 60000;
  // Candidates from the zone's offsets around that day (at most two differ across a change).
  const candidates = new Set<number>();
  for (const probe of [naive - 86400000, naive, naive + 86400000]) {
    const offset = wallMinutes(wallTime(probe, zone)) * 60000 - Math.floor(probe / 60000) * 60000;
    candidates.add(naive - offset);
  }
  const exact = [...candidates].filter((c) => wallMinutes(wallTime(c, zone)) === target).sort((a, b) => a - b);
  if (exact.length) return exact[0];
  // In a gap: the first instant whose wall time is past the target.
  let lo = Math.min(...candidates) - 3 * 3600000;
  let hi = Math.max(...candidates) + 3 * 3600000;
  while (hi - lo > 60000) {
    const mid = Math.floor((lo + hi) / 2 / 60000) * 60000;
    if (wallMinutes(wallTime(mid, zone)) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}
