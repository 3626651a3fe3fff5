import { CronExpressionParser } from "cron-parser";
import { DsopsError } from "../engine/errors";
import { parseDuration } from "./duration";
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

interface Fields {
  minutes: number[];
  hours: number[];
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
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

function matchesDay(c: Fields, w: { year: number; month: number; day: number }): boolean {
  if (!c.months.has(w.month)) return false;
  const dow = new Date(Date.UTC(w.year, w.month - 1, w.day)).getUTCDay();
  const domOk = c.days.has(w.day);
  const dowOk = c.weekdays.has(dow);
  // Classic cron: when both day fields are restricted, either one matching is enough.
  if (c.domRestricted && c.dowRestricted) return domOk || dowOk;
  return domOk && dowOk;
}

/** Parse and check a 5-field cron expression (minute hour day-of-month month day-of-week). */
export function parseCron(expr: string, field = "schedule"): Fields {
  const text = String(expr).trim();
  if (text.split(/\s+/).length !== 5)
    throw new DsopsError(`${field}: "${expr}" must have 5 fields (minute hour day-of-month month day-of-week)`, { hint: 'e.g. "0 2 * * SUN" for Sundays at 02:00' });
  let f;
  try {
    f = CronExpressionParser.parse(text).fields;
  } catch (e) {
    throw new DsopsError(`${field}: "${expr}" is not a valid cron expression: ${(e as Error).message}`);
  }
  // "L" (last day of month) is not supported: only numeric days are kept.
  const days = (f.dayOfMonth.values as unknown[]).filter((d): d is number => typeof d === "number");
  const weekdays = f.dayOfWeek.values.map((d) => (Number(d) === 7 ? 0 : Number(d)));
  const [, , domText, , dowText] = text.split(/\s+/);
  return {
    minutes: [...f.minute.values].map(Number),
    hours: [...f.hour.values].map(Number),
    days: new Set(days),
    months: new Set([...f.month.values].map(Number)),
    weekdays: new Set(weekdays),
    domRestricted: domText !== "*" && domText !== "?",
    dowRestricted: dowText !== "*" && dowText !== "?",
  };
}
