import { strict as assert } from "node:assert";
import { Window } from "../../provider/schedule/window";
import { parseDuration, formatDuration } from "../../provider/core/duration";
import { instantOf, wallTime } from "../../provider/schedule/zone";

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
const at = (s: string) => Date.parse(s);

describe("schedule: durations, zones, maintenance windows", () => {
  it("parses durations and names the field on bad input", () => {
    assert.equal(parseDuration("4h"), 4 * 3600000);
    assert.equal(parseDuration("1h30m"), 90 * 60000);
    assert.equal(parseDuration("30d"), 30 * 86400000);
    assert.equal(parseDuration("2w"), 14 * 86400000);
    assert.equal(formatDuration(90 * 60000), "1h30m");
    assert.throws(() => parseDuration("4 hours", "duration"), /^DsopsError: duration: "4 hours" is not a duration$/);
    assert.throws(() => parseDuration("0h"), /must be longer than zero/);
    assert.throws(() => parseDuration(""), /is not a duration/);
  });

  it("maps wall times to instants, with the documented rules for DST gaps and overlaps", () => {
    // Europe/Berlin jumps from 02:00 to 03:00 on 2026-03-29: 02:30 does not exist → 03:00 CEST (01:00Z).
    assert.equal(iso(instantOf({ year: 2026, month: 3, day: 29, hour: 2, minute: 30 }, "Europe/Berlin")), "2026-03-29T01:00:00.000Z");
    // 2026-10-25 02:30 happens twice (clocks set back at 03:00 CEST) → the first one, 00:30Z.
    assert.equal(iso(instantOf({ year: 2026, month: 10, day: 25, hour: 2, minute: 30 }, "Europe/Berlin")), "2026-10-25T00:30:00.000Z");
    assert.equal(iso(instantOf({ year: 2026, month: 7, day: 1, hour: 2, minute: 30 }, "Europe/Berlin")), "2026-07-01T00:30:00.000Z");
    assert.equal(iso(instantOf({ year: 2026, month: 3, day: 8, hour: 2, minute: 15 }, "America/New_York")), "2026-03-08T07:00:00.000Z");
    assert.deepEqual(wallTime(at("2026-03-29T01:00:00Z"), "Europe/Berlin"), { year: 2026, month: 3, day: 29, hour: 3, minute: 0 });
  });

  it("a weekly window opens and closes in its zone, across DST changes", () => {
    const w = new Window({ schedule: "30 2 * * SUN", duration: "2h", timezone: "Europe/Berlin" });
    // Saturday before the spring change: next opening is the non-existent 02:30 → 03:00 CEST.
    let s = w.state(at("2026-03-28T12:00:00Z"));
    assert.deepEqual([s.isOpen, iso(s.nextOpenAt), iso(s.nextCloseAt)], [false, "2026-03-29T01:00:00.000Z", "2026-03-29T03:00:00.000Z"]);
    s = w.state(at("2026-03-29T02:00:00Z"));
    assert.equal(s.isOpen, true);
    // A summer Sunday: 02:30 CEST = 00:30Z.
    s = w.state(at("2026-07-04T12:00:00Z"));
    assert.equal(iso(s.nextOpenAt), "2026-07-05T00:30:00.000Z");
    // Winter: 02:30 CET = 01:30Z.
    s = w.state(at("2026-12-01T00:00:00Z"));
    assert.equal(iso(s.nextOpenAt), "2026-12-06T01:30:00.000Z");
  });

  it("blackouts close a window and push the next opening past them, with their reason", () => {
    const w = new Window({
      schedule: "0 22 * * *",
      duration: "4h",
      timezone: "UTC",
      blackouts: [{ start: "2026-12-24", end: "2026-12-26", reason: "holiday freeze" }],
    });
    let s = w.state(at("2026-12-24T23:00:00Z"));
    assert.equal(s.isOpen, false);
    assert.equal(s.blockedBy, "holiday freeze");
    assert.equal(iso(s.nextOpenAt), "2026-12-27T00:00:00.000Z", "the 26th's window, after the freeze ends at midnight");
    assert.equal(iso(s.nextCloseAt), "2026-12-27T02:00:00.000Z");
    s = w.state(at("2026-12-23T23:00:00Z"));
    assert.deepEqual([s.isOpen, iso(s.nextOpenAt), iso(s.nextCloseAt)], [true, "2026-12-23T22:00:00.000Z", "2026-12-24T00:00:00.000Z"]);
  });

  it("several schedules, day-of-month OR day-of-week, disabled windows", () => {
    const w = new Window({ schedule: ["0 1 1 * *", "0 3 * * MON"], duration: "1h" });
    assert.equal(iso(w.state(at("2026-11-29T00:00:00Z")).nextOpenAt), "2026-11-30T03:00:00.000Z");
    assert.equal(iso(w.state(at("2026-11-30T05:00:00Z")).nextOpenAt), "2026-12-01T01:00:00.000Z");
    const either = new Window({ schedule: "0 0 13 * FRI", duration: "1h" });
    assert.equal(iso(either.state(at("2026-11-01T00:00:00Z")).nextOpenAt), "2026-11-06T00:00:00.000Z");
    assert.deepEqual(new Window({ schedule: "* * * * *", duration: "1h", enabled: false }).state(0), { isOpen: false });
  });

  it("names the field and the reason for invalid cron, zone, duration and blackouts", () => {
    const cases: Array<[object, RegExp]> = [
      [{ schedule: "0 2 * *", duration: "1h" }, /^schedule: "0 2 \* \*" must have 5 fields/],
      [{ schedule: "61 2 * * *", duration: "1h" }, /^schedule: "61 2 \* \* \*" is not a valid cron expression: .*61/],
      [{ schedule: ["0 2 * * *", "x"], duration: "1h" }, /^schedule\[1\]: "x" must have 5 fields/],
      [{ schedule: "0 2 * * *", duration: "1h", timezone: "Mars/Olympus" }, /^timezone: "Mars\/Olympus" is not an IANA time zone/],
      [{ schedule: "0 2 * * *", duration: "soon" }, /^duration: "soon" is not a duration/],
      [{ schedule: "0 2 * * *", duration: "1h", blackouts: [{ start: "2026-12-26", end: "2026-12-24", reason: "x" }] }, /^blackouts\[0\]: end must be after start/],
      [{ schedule: "0 2 * * *", duration: "1h", blackouts: [{ start: "tomorrow", end: "2026-12-24", reason: "x" }] }, /^blackouts\[0\]\.start: "tomorrow" is not an ISO-8601/],
      [{ schedule: "0 2 * * *", duration: "1h", blackouts: [{ start: "2026-12-24", end: "2026-12-25", reason: "" }] }, /^blackouts\[0\]\.reason: a blackout needs a reason/],
    ];
    for (const [spec, re] of cases) assert.throws(() => new Window(spec as never), (e: Error) => re.test(e.message), JSON.stringify(spec));
  });

  // Issue 17: `L` and `#` used to be accepted and then never open (only numeric days were kept).
  it("L (last day of the month) opens on month ends: 30 and 31 days, February, a leap year", () => {
    const w = new Window({ schedule: "0 3 L * *", duration: "2h", timezone: "UTC" });
    const opens = (from: string, n: number) => [...take(w.openings(at(from)), n)].map(iso);
    assert.deepEqual(opens("2026-01-15T00:00:00Z", 4), ["2026-01-31T03:00:00.000Z", "2026-02-28T03:00:00.000Z", "2026-03-31T03:00:00.000Z", "2026-04-30T03:00:00.000Z"]);
    assert.deepEqual(opens("2028-02-01T00:00:00Z", 1), ["2028-02-29T03:00:00.000Z"]);
    // On the clock: open on the last day, closed the day before and after the window.
    assert.equal(w.state(at("2026-04-30T04:00:00Z")).isOpen, true);
    assert.deepEqual([w.state(at("2026-04-29T04:00:00Z")).isOpen, iso(w.state(at("2026-04-29T04:00:00Z")).nextOpenAt)], [false, "2026-04-30T03:00:00.000Z"]);
    assert.equal(iso(w.state(at("2026-04-30T05:00:00Z")).nextOpenAt), "2026-05-31T03:00:00.000Z");
  });

  it("L and # are read on the window's own calendar, not UTC's", () => {
    // 01:00 on the last day in Tokyo is the day before in UTC.
    const tokyo = new Window({ schedule: "0 1 L * *", duration: "1h", timezone: "Asia/Tokyo" });
    assert.equal(iso(tokyo.state(at("2026-02-01T00:00:00Z")).nextOpenAt), "2026-02-27T16:00:00.000Z");
    // 23:00 on the first Monday in Los Angeles is the Tuesday in UTC.
    const la = new Window({ schedule: "0 23 * * 1#1", duration: "1h", timezone: "America/Los_Angeles" });
    assert.equal(iso(la.state(at("2026-06-01T00:00:00Z")).nextOpenAt), "2026-06-02T06:00:00.000Z");
  });

  it("last weekday (5L) and nth weekday (5#3) of the month, across DST changes", () => {
    // The last Sunday of March 2026 is the spring change in Berlin: 02:30 does not exist → 03:00 CEST (01:00Z).
    const lastSunday = new Window({ schedule: "30 2 * * 0L", duration: "2h", timezone: "Europe/Berlin" });
    let s = lastSunday.state(at("2026-03-20T00:00:00Z"));
    assert.deepEqual([s.isOpen, iso(s.nextOpenAt), iso(s.nextCloseAt)], [false, "2026-03-29T01:00:00.000Z", "2026-03-29T03:00:00.000Z"]);
    assert.equal(lastSunday.state(at("2026-03-29T02:00:00Z")).isOpen, true);
    // The last Sunday of October 2026 is the autumn change: 02:30 happens twice → the first one (00:30Z).
    s = lastSunday.state(at("2026-10-20T00:00:00Z"));
    assert.deepEqual([iso(s.nextOpenAt), iso(s.nextCloseAt)], ["2026-10-25T00:30:00.000Z", "2026-10-25T02:30:00.000Z"]);
    const thirdFriday = new Window({ schedule: "0 22 * * 5#3", duration: "1h", timezone: "Europe/Berlin" });
    assert.deepEqual([...take(thirdFriday.openings(at("2026-01-01T00:00:00Z")), 3)].map(iso), ["2026-01-16T21:00:00.000Z", "2026-02-20T21:00:00.000Z", "2026-03-20T21:00:00.000Z"]);
    // May 2026 has five Fridays; 5#5 opens only in months that have a fifth.
    const fifth = new Window({ schedule: "0 12 * * FRI#5", duration: "1h" });
    assert.deepEqual([...take(fifth.openings(at("2026-01-01T00:00:00Z")), 2)].map(iso), ["2026-01-30T12:00:00.000Z", "2026-05-29T12:00:00.000Z"]);
  });

  it("refuses W (nearest weekday) and H (hashed) with a field error, and cron days that never come", () => {
    const cases: Array<[string, RegExp]> = [
      ["0 2 15W * *", /^windows\[0\]\.schedule: "0 2 15W \* \*": "W" \(nearest weekday\) in the day-of-month field is not supported$/],
      ["0 2 LW * *", /"W" \(nearest weekday\)/],
      ["H 2 * * *", /^windows\[0\]\.schedule: "H 2 \* \* \*": "H" \(a hashed value\) in the minute field picks a different time on every run$/],
      ["0 2 30 2 *", /^windows\[0\]\.schedule: "0 2 30 2 \*" is not a valid cron expression/],
      ["0 2 * * 5#6", /is not a valid cron expression/],
      ["0 2 * * L", /is not a valid cron expression/],
    ];
    for (const [schedule, re] of cases)
      assert.throws(() => new Window({ schedule, duration: "1h" }, "windows[0]"), (e: Error) => re.test(e.message), schedule);
    // Day names with W and H in them are names, not those characters.
    assert.equal(iso(new Window({ schedule: "0 2 * * WED,THU", duration: "1h" }).state(at("2026-06-01T00:00:00Z")).nextOpenAt), "2026-06-03T02:00:00.000Z");
  });
});

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  for (const x of it) {
    yield x;
    if (--n <= 0) return;
  }
}
