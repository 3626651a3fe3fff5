import { DsopsError } from "../engine/errors";

const UNITS: Record<string, number> = { w: 7 * 86400000, d: 86400000, h: 3600000, m: 60000, s: 1000 };

/** Parse a duration such as `4h`, `30d`, `1h30m`, `2w`, `90s` into milliseconds. */
export function parseDuration(text: string, field = "duration"): number {
  const s = String(text).trim();
  const parts = [...s.matchAll(/(\d+)\s*([wdhms])/g)];
  if (!s || parts.map((p) => p[0]).join("").replace(/\s+/g, "") !== s.replace(/\s+/g, ""))
    throw new DsopsError(`${field}: "${text}" is not a duration`, { hint: "use a number and a unit: 30m, 4h, 1h30m, 30d, 2w" });
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]], 0);
  if (ms <= 0) throw new DsopsError(`${field}: "${text}" must be longer than zero`);
  return ms;
}

/** Format milliseconds back into the shortest duration string (`90m` → `1h30m`). */
export function formatDuration(ms: number): string {
  let rest = ms;
  let out = "";
  for (const [u, size] of Object.entries(UNITS)) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${u}`;
      rest -= n * size;
    }
  }
  return out || "0s";
}
