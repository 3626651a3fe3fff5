import { CronExpressionParser, type CronExpression } from "cron-parser";
import { DsopsError } from "../core/errors";
import { parseDuration } from "../core/duration";
import { checkZone, instantOf, wallTime } from "./zone";

/** A period when nothing may rotate, even inside a window. */
export interface Blackout {
  /** ISO-8601 instant or date (`2026-12-24`, midnight in the window's zone). */
  start: string;
  /** ISO-8601 instant or date; a date means the end of that day. */
  end: string;
  reason: string;
}

/** A maintenance window, as MaintenanceWindow and `rotation.windows` declare it. */
export interface WindowSpec {
  /** One 5-field cron expression or several: when the window opens. */
  schedule: string | string[];
  /** How long it stays open (`4h`, `30m`, `1h30m`). */
  duration: string;
  /** IANA zone the cron expressions are read in (default UTC). */
  timezone?: string;
  blackouts?: Blackout[];
  /** A disabled window never opens (default true). */
  enabled?: boolean;
}

/** A checked cron expression: the minutes and hours of a matching day, and the day test. */
interface Fields {
  minutes: number[];
  hours: number[];
  /** cron-parser's expression read in UTC: days are tested on their wall-clock date. */
  days: CronExpression;
}

/** A checked window that answers "is it open, and when does it open and close next". */
export class Window {
  private readonly crons: Fields[];
  readonly durationMs: number;
  readonly zone: string;
  private readonly blackouts: Array<{ start: number; end: number; reason: string }>;
  readonly enabled: boolean;

  constructor(spec: WindowSpec, field = "") {
    const at = (f: string) => (field ? `${field}.${f}` : f);
    this.zone = spec.timezone ?? "UTC";
    checkZone(this.zone, at("timezone"));
    this.durationMs = parseDuration(spec.duration, at("duration"));
    const schedules = Array.isArray(spec.schedule) ? spec.schedule : [spec.schedule];
    if (schedules.length === 0) throw new DsopsError(`${at("schedule")}: at least one cron expression is needed`);
    this.crons = schedules.map((s, i) => parseCron(s, Array.isArray(spec.schedule) ? `${at("schedule")}[${i}]` : at("schedule")));
    this.enabled = spec.enabled !== false;
    this.blackouts = (spec.blackouts ?? []).map((b, i) => {
      const start = this.parseWhen(b.start, `${at("blackouts")}[${i}].start`, false);
      const end = this.parseWhen(b.end, `${at("blackouts")}[${i}].end`, true);
      if (!(end > start)) throw new DsopsError(`${at("blackouts")}[${i}]: end must be after start`);
      if (!b.reason || !String(b.reason).trim()) throw new DsopsError(`${at("blackouts")}[${i}].reason: a blackout needs a reason`);
      return { start, end, reason: b.reason };
    });
  }

  /** Openings (window start instants) at or after `from`, in order. */
  *openings(from: number): Generator<number> {
    // Walk local calendar days; at most ~2 years ahead.
    let day = wallTime(from, this.zone);
    let dayStart = instantOf({ ...day, hour: 0, minute: 0 }, this.zone);
    for (let n = 0; n < 800; n++) {
      const found: number[] = [];
      for (const c of this.crons) {
        if (!matchesDay(c, day)) continue;
        for (const h of c.hours) for (const m of c.minutes) found.push(instantOf({ ...day, hour: h, minute: m }, this.zone));
      }
      for (const t of [...new Set(found)].sort((a, b) => a - b)) if (t >= from) yield t;
      // Next local day (noon avoids DST edges).
      const next = wallTime(dayStart + 36 * 3600000, this.zone);
      day = { ...next, hour: 0, minute: 0 };
      dayStart = instantOf(day, this.zone);
    }
  }

  /**
   * The window that is open at `now`, or the next one: start and end with blackouts cut out,
   * and whether `now` is inside it. `blockedBy` names a blackout covering `now` inside a window.
   */
  state(now: number): { isOpen: boolean; nextOpenAt?: number; nextCloseAt?: number; blockedBy?: string } {
    if (!this.enabled) return { isOpen: false };
    let blockedBy: string | undefined;
    for (const open of this.openings(now - this.durationMs)) {
      const close = open + this.durationMs;
      if (close <= now) continue;
      for (const [s, e] of this.subtractBlackouts(open, close)) {
        if (e <= now) continue;
        if (s <= now) return { isOpen: true, nextOpenAt: s, nextCloseAt: e };
        if (!blockedBy && open <= now) blockedBy = this.blackouts.find((b) => b.start <= now && now < b.end)?.reason;
        return { isOpen: false, nextOpenAt: s, nextCloseAt: e, ...(blockedBy ? { blockedBy } : {}) };
      }
      if (!blockedBy && open <= now) blockedBy = this.blackouts.find((b) => b.start <= now && now < b.end)?.reason;
    }
    return { isOpen: false, ...(blockedBy ? { blockedBy } : {}) };
  }

  private subtractBlackouts(open: number, close: number): Array<[number, number]> {
    let parts: Array<[number, number]> = [[open, close]];
    for (const b of this.blackouts) {
      parts = parts.flatMap(([s, e]): Array<[number, number]> => {
        if (b.end <= s || b.start >= e) return [[s, e]];
        const out: Array<[number, number]> = [];
        if (b.start > s) out.push([s, b.start]);
        if (b.end < e) out.push([b.end, e]);
        return out;
      });
    }
    return parts;
  }

  private parseWhen(text: string, field: string, endOfDay: boolean): number {
    const s = String(text).trim();
    const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (date) {
      const w = { year: Number(date[1]), month: Number(date[2]), day: Number(date[3]), hour: 0, minute: 0 };
      const t = instantOf(w, this.zone);
      if (!endOfDay) return t;
      const next = wallTime(t + 36 * 3600000, this.zone);
      return instantOf({ ...next, hour: 0, minute: 0 }, this.zone);
    }
    const t = Date.parse(s);
    if (Number.isNaN(t) || !/\d{4}-\d{2}-\d{2}T/.test(s)) throw new DsopsError(`${field}: "${text}" is not an ISO-8601 date or instant`);
    return t;
  }
}

/**
 * Does the cron match this calendar day (of the window's zone)? cron-parser decides, so every
 * day syntax it iterates works: `L` (last day of the month), `5L` (last Friday), `5#3` (third
 * Friday), names, ranges, steps, and the classic rule that either day field may match when both
 * are restricted. The wall date is tested as a UTC date at the day's first listed time.
 */
function matchesDay(c: Fields, w: { year: number; month: number; day: number }): boolean {
  return c.days.includesDate(new Date(Date.UTC(w.year, w.month - 1, w.day, c.hours[0], c.minutes[0])));
}

/**
 * Parse and check a 5-field cron expression (minute hour day-of-month month day-of-week).
 * `L`, `<weekday>L` and `<weekday>#<n>` are supported; `W` (nearest weekday) and `H` (a hashed,
 * random value) are refused with a field error rather than read as something else.
 */
export function parseCron(expr: string, field = "schedule"): Fields {
  const text = String(expr).trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5)
    throw new DsopsError(`${field}: "${expr}" must have 5 fields (minute hour day-of-month month day-of-week)`, { hint: 'e.g. "0 2 * * SUN" for Sundays at 02:00' });
  const names = ["minute", "hour", "day-of-month", "month", "day-of-week"];
  parts.forEach((p, i) => {
    if (/W/i.test(p.replace(/WED/gi, "")))
      throw new DsopsError(`${field}: "${expr}": "W" (nearest weekday) in the ${names[i]} field is not supported`, {
        hint: 'name the days instead: "0 2 1-3 * MON-FRI" is a weekday among the 1st to the 3rd; "L" (last day of the month), "5L" (last Friday) and "5#1" (first Friday) are supported',
      });
    if (/H/i.test(p.replace(/THU/gi, "")))
      throw new DsopsError(`${field}: "${expr}": "H" (a hashed value) in the ${names[i]} field picks a different time on every run`, { hint: "write the value itself" });
  });
  let e: CronExpression;
  try {
    // A fixed start: nothing here iterates from "now" (time comes from the project clock).
    e = CronExpressionParser.parse(text, { tz: "UTC", currentDate: 0 });
  } catch (err) {
    throw new DsopsError(`${field}: "${expr}" is not a valid cron expression: ${(err as Error).message}`, {
      hint: 'fields: minute hour day-of-month month day-of-week; e.g. "0 2 * * SUN", "0 3 L * *" (last day of the month), "0 2 * * 6#1" (first Saturday)',
    });
  }
  const f = e.fields;
  return {
    minutes: [...f.minute.values].map(Number),
    hours: [...f.hour.values].map(Number),
    days: e,
  };
}
