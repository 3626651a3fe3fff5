import { DsopsError } from "../core/errors";
import { parseDuration } from "../core/duration";
import type { Config } from "../engine/config/load";
import type { VariableRotation } from "./settings";
import type { Store } from "../stores/types";
import { Window } from "../schedule/window";
import type { HistoryFilter } from "./history/types";
import type { RotationRecord } from "./types";

/**
 * The due decision, asked by every face (the Pulumi RotationPolicy at plan time, `dsops secrets
 * due`): what is due now (schedule + last rotation + clock), and may it run (maintenance
 * windows and their blackouts). No face computes it; no value is read.
 */

/** When rotations are due: a cron expression (read in `timezone`, default UTC) or a period after the last rotation. */
export interface DueSchedule {
  readonly cron?: string;
  readonly timezone?: string;
  readonly every?: string;
}

/** The setting paths errors name: `cron` (also the window's, unless `window` is given) and `every`. */
export interface DuePaths {
  readonly cron: string;
  readonly window?: string;
  readonly every?: string;
}

/** The schedule, checked: when the next rotation is due after one at `last` (ms). */
export function dueAfter(schedule: DueSchedule, paths: DuePaths): (last: number) => number {
  if (schedule.every) {
    const every = schedule.every;
    return (last) => last + parseDuration(every, paths.every ?? "every");
  }
  const cron = new Window({ schedule: schedule.cron as string, duration: "1m", timezone: schedule.timezone }, paths.window ?? paths.cron);
  return (last) => {
    const next = cron.openings(last + 60000).next();
    if (next.done) throw new DsopsError(`${paths.cron}: "${schedule.cron}" has no occurrence in the next two years`);
    return next.value;
  };
}

/** Whether a rotation may run at `now`: a window is open (no window declared: always). */
export interface WindowDecision {
  readonly open: boolean;
  /** The latest close of the open windows. */
  readonly closesAt?: number;
  /** All closed: the earliest next opening. */
  readonly nextOpenAt?: number;
  /** The reason of the first blackout that keeps a window shut. */
  readonly blockedBy?: string;
}

export function windowsAt(windows: readonly Window[], now: number): WindowDecision {
  let open = windows.length === 0;
  let closesAt: number | undefined;
  let nextOpenAt: number | undefined;
  let blockedBy: string | undefined;
  for (const w of windows) {
    const st = w.state(now);
    if (st.isOpen) {
      open = true;
      closesAt = Math.max(closesAt ?? 0, st.nextCloseAt as number);
    } else if (st.nextOpenAt !== undefined && (nextOpenAt === undefined || st.nextOpenAt < nextOpenAt)) nextOpenAt = st.nextOpenAt;
    blockedBy ??= st.blockedBy;
  }
  return { open, ...(closesAt !== undefined ? { closesAt } : {}), ...(nextOpenAt !== undefined ? { nextOpenAt } : {}), ...(blockedBy ? { blockedBy } : {}) };
}

/** The due decision at `now`. */
export interface DueDecision {
  /** When the rotation is (was) due; absent when never rotated (due at once). */
  readonly nextDueAt?: number;
  readonly due: boolean;
  readonly window: WindowDecision;
}

export function decideDue(o: { schedule: DueSchedule; paths: DuePaths; lastRotatedAt?: number; windows?: readonly Window[]; now: number }): DueDecision {
  const next = dueAfter(o.schedule, o.paths);
  const nextDueAt = o.lastRotatedAt === undefined ? undefined : next(o.lastRotatedAt);
  return { ...(nextDueAt !== undefined ? { nextDueAt } : {}), due: nextDueAt === undefined || o.now >= nextDueAt, window: windowsAt(o.windows ?? [], o.now) };
}

/** What the due decision reads rotation records from (a RotationEngine). */
export interface DueHistory {
  history(filter: HistoryFilter & { env?: string }): Promise<RotationRecord[]>;
}

/**
 * When the secret's current version was made (a RotationPolicy: the store's own date of the
 * current version, else the finish of the rotation that made it current); absent when there is
 * no current version or its age is unknown.
 */
export async function currentVersionAge(store: Pick<Store, "describe">, key: string, current: string | undefined, source: DueHistory, filter: { variable: string; secret: string }): Promise<number | undefined> {
  if (!current) return undefined;
  const info = await store.describe({ key });
  if (info.updatedAt) return Date.parse(info.updatedAt);
  const rec = (await source.history({ ...filter, limit: 20 })).find((r) => r.status === "succeeded" && r.newVersionId === current);
  return rec?.finishedAt ? Date.parse(rec.finishedAt) : undefined;
}

/** When the last rotation of `secret` that made a version current finished (records newest first). */
export function lastRotationAt(records: readonly RotationRecord[], secret: string): number | undefined {
  const last = records.find((r) => r.secret === secret && r.kind === "rotate" && (r.status === "succeeded" || r.status === "grace"));
  return last ? Date.parse(last.finishedAt ?? last.steps.find((s) => s.name === "promote")?.finishedAt ?? last.startedAt) : undefined;
}

/** A rotated secret whose next rotation falls within the lead time (or is overdue). */
export interface DueSecret {
  readonly env: string;
  readonly variable: string;
  readonly service: string;
  readonly secret: string;
  /** The cron of `rotation.schedule` (UTC), or `every <ttl>` (dsops's `rotation.ttl`), or both joined by " or ". */
  readonly schedule: string;
  /** When the last rotation that made a version current finished (absent: never rotated). */
  readonly lastRotatedAt?: string;
  /** The first cron occurrence after the last rotation (never rotated: now). */
  readonly dueAt: string;
  readonly overdue: boolean;
}

/** What `dueSoon` reads: the configuration, its rotated variables and their history (a RotationEngine). */
export interface DueSource extends DueHistory {
  readonly config: Config;
  rotated(env?: string): Array<{ env: string; variable: string }>;
}

/**
 * Secrets with a `rotation.schedule` or `rotation.ttl` whose rotation is due within `withinMs` of `now` (both on
 * the project clock): the due date is the schedule's first occurrence after the last rotation
 * in the history (a secret never rotated is due now). Secrets without a schedule are skipped.
 */
export async function dueSoon(source: DueSource, o: { now: number; withinMs: number; env?: string }): Promise<DueSecret[]> {
  const out: DueSecret[] = [];
  for (const v of source.rotated(o.env)) {
    const variable = source.config.envs[v.env][v.variable];
    const policy = variable.spec.rotation as VariableRotation;
    if (!policy.schedule && policy.ttl === undefined) continue;
    const secret = variable.ref ? `store://${variable.ref.store}/${variable.ref.key}` : "-";
    const lastAt = lastRotationAt(await source.history({ env: v.env, variable: v.variable }), secret);
    const due = variableDueAt(policy, `envs.${v.env}.${v.variable}.rotation`, lastAt, o.now) as number;
    if (due > o.now + o.withinMs) continue;
    out.push({
      env: v.env,
      variable: v.variable,
      service: policy.service,
      secret,
      schedule: [policy.schedule, policy.ttl !== undefined ? `every ${policy.ttl}` : undefined].filter((x) => x !== undefined).join(" or "),
      ...(lastAt !== undefined ? { lastRotatedAt: new Date(lastAt).toISOString() } : {}),
      dueAt: new Date(due).toISOString(),
      overdue: due <= o.now,
    });
  }
  return out.sort((a, b) => (a.dueAt < b.dueAt ? -1 : a.dueAt > b.dueAt ? 1 : 0));
}

/**
 * When a variable's rotation is due after a last rotation at `lastAt` (never rotated: `now`):
 * `rotation.schedule` (cron, UTC) or `rotation.ttl`; with both, the earlier wins. Undefined: the
 * block has neither (rotated only by hand).
 */
export function variableDueAt(policy: Pick<VariableRotation, "schedule" | "ttl">, at: string, lastAt: number | undefined, now: number): number | undefined {
  const last = lastAt !== undefined ? { lastRotatedAt: lastAt } : {};
  const dues = [
    ...(policy.schedule ? [decideDue({ schedule: { cron: policy.schedule }, paths: { cron: `${at}.schedule` }, now, ...last })] : []),
    ...(policy.ttl !== undefined ? [decideDue({ schedule: { every: String(policy.ttl) }, paths: { cron: `${at}.ttl`, every: `${at}.ttl` }, now, ...last })] : []),
  ].map((d) => d.nextDueAt ?? now);
  return dues.length ? Math.min(...dues) : undefined;
}

/** The maintenance windows of a rotation block (`rotation.windows`), checked; none: always open. */
export function rotationWindows(policy: Pick<VariableRotation, "windows">, at: string): Window[] {
  return (policy.windows ?? []).map((w, i) => new Window(w, `${at}.windows[${i}]`));
}

/** One rotation's decision in a scheduled pass (`dsops rotation run --due`). */
export type RotationDecision =
  | { readonly state: "due"; readonly lastRotatedAt?: number; readonly dueAt: number }
  | { readonly state: "waiting"; readonly lastRotatedAt?: number; readonly dueAt: number; readonly opensAt?: number }
  | { readonly state: "not-due"; readonly lastRotatedAt?: number; readonly dueAt: number }
  | { readonly state: "blocked"; readonly lastRotatedAt?: number; readonly reason: string };

/**
 * The decision of a variable's rotation at `now` from its records (newest first): not due until
 * the schedule says; due and inside an open window (or none declared): due now; due with every
 * window closed: waiting for the next opening, or blocked by the blackout that keeps it shut.
 * A block with neither `schedule` nor `ttl` is rotated by hand only: blocked.
 */
export function decideRotation(policy: Pick<VariableRotation, "schedule" | "ttl" | "windows">, o: { at: string; secret: string; records: readonly RotationRecord[]; now: number }): RotationDecision {
  const lastAt = lastRotationAt(o.records, o.secret);
  const last = lastAt !== undefined ? { lastRotatedAt: lastAt } : {};
  const dueAt = variableDueAt(policy, o.at, lastAt, o.now);
  if (dueAt === undefined) return { state: "blocked", ...last, reason: `${o.at} has no schedule or ttl: rotated by hand only` };
  if (o.now < dueAt) return { state: "not-due", ...last, dueAt };
  const w = windowsAt(rotationWindows(policy, o.at), o.now);
  if (w.open) return { state: "due", ...last, dueAt };
  if (w.blockedBy) return { state: "blocked", ...last, reason: `blackout: ${w.blockedBy}` };
  return { state: "waiting", ...last, dueAt, ...(w.nextOpenAt !== undefined ? { opensAt: w.nextOpenAt } : {}) };
}
