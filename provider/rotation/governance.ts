import { randomBytes } from "node:crypto";
import { durationMs, formatDuration, parseDuration } from "../core/duration";
import type { Clock } from "../core/clock";
import { DsopsError } from "../core/errors";
import type { Config } from "../engine/config/load";
import type { Resolver } from "../engine/resolve";
import type { RotateOptions, RotationResult } from "./engine/api";
import { eventTitles, type RotationEvent, type RotationEventType } from "./events";
import type { HistoryBackend, HistoryFilter } from "./history/types";
import type { NotifyPort } from "./ports";
import type { ApprovalPolicy, VariableRotation } from "./settings";
import type { RotationRecord } from "./types";
import type { ApproverIdentity } from "./approval-identity";
import { RotationInProgressError } from "./errors";
import { envFaultHook } from "./fault";
import { lockOwner } from "./lock";

/**
 * Approvals and break-glass. Their records live in the variable's rotation history backend
 * (same file or table as the rotations), one record per request or break-glass, saved again at
 * each change (the last snapshot of an id wins); `history.list()` hides them unless asked with
 * `governance: true`. No record, event or message holds a secret value: names, ids, who, why.
 * Every change of an approval request (a decision, its expiry, its use) is made under the
 * request's own lock in that backend (`approval <id>`), on the request read again once the lock
 * is held: two decisions at once are both kept, and a status once final is never turned back.
 *
 * - A policy with `rotation.approval` that is due (`rotation run --due`, the scheduler) opens an
 *   approval request and waits (`pending`) until `required` distinct approvers other than the
 *   requester granted it (then the next pass rotates and marks it `used`), one denied it
 *   (`denied`: not asked again before the request's expiry), or it expired (`expired`).
 * - Break-glass: a time-boxed grant on one secret, recorded and sent to every channel; with
 *   `rotate`, an emergency rotation now (no approval, no window). When it is closed (by hand, or
 *   by the first pass after its expiry) the credential is rotated (forced).
 */

export interface ApprovalDecision {
  readonly by: string;
  readonly identity: ApproverIdentity["method"];
  readonly decision: "granted" | "denied";
  readonly reason: string;
  readonly at: string;
}

interface Subjectish {
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  readonly service: string;
  readonly targetType?: string;
}

export interface ApprovalRecord extends Subjectish {
  /** `apr-<time>-<random>`. */
  readonly id: string;
  readonly kind: "approval";
  /** `used`: the rotation it granted ran. */
  status: "pending" | "granted" | "denied" | "expired" | "used";
  readonly requestedBy: string;
  /** When it was requested (ISO-8601). */
  readonly startedAt: string;
  readonly expiresAt: string;
  readonly required: number;
  /** Who may approve (empty: anyone but the requester). */
  readonly approvers: string[];
  /** How approvers prove who they are, and (token) the reference of the key that signs tokens: the policy's, when it was requested. */
  readonly identity: ApprovalPolicy["identity"];
  readonly tokenKey?: string;
  /** The policy field errors name: `envs.<env>.<VAR>.rotation.approval`, or `RotationPolicy <secret> approval`. */
  readonly policyPath: string;
  decisions: ApprovalDecision[];
  /** When it was decided, expired or used. */
  finishedAt?: string;
  /** The rotation it let run. */
  rotationId?: string;
  /** Why it was requested (`due`). */
  readonly reason?: string;
}

export interface BreakGlassRecord extends Subjectish {
  /** `bg-<time>-<random>`. */
  readonly id: string;
  readonly kind: "breakglass";
  status: "open" | "closed";
  readonly openedBy: string;
  /** When it was opened (ISO-8601). */
  readonly startedAt: string;
  readonly reason: string;
  readonly ttl: string;
  readonly expiresAt: string;
  readonly rotate: boolean;
  emergencyRotationId?: string;
  finishedAt?: string;
  closedBy?: string;
  closedHow?: "manual" | "expired";
  forcedRotationId?: string;
  forcedRotationStatus?: string;
  /** The last failed attempt to close it (the forced rotation failed; it stays open and the next pass tries again). */
  closeError?: string;
  /** Reads of a sealed variable (`access: breakglass`) made under this grant: who, when, which command. Never a value. */
  reads?: BreakGlassRead[];
}

/** One read of a sealed value under a break-glass grant. */
export interface BreakGlassRead {
  readonly by: string;
  readonly at: string;
  /** `dsops get`, `dsops render`, `pulumi SecretReference create` … */
  readonly command: string;
}

export type GovernanceRecord = ApprovalRecord | BreakGlassRecord;

/** Which governance records `listGovernance` returns. */
export interface GovernanceFilter {
  readonly env?: string;
  readonly variable?: string;
  readonly secret?: string;
  readonly kind?: GovernanceRecord["kind"];
  /** Only those started at or after this instant (ISO-8601). */
  readonly since?: string;
}

/** What the governance functions use of a rotation engine (RotationEngine and ComposedRotationEngine are). */
export interface GovernanceEngine {
  readonly config: Config;
  rotated(env?: string): Array<{ env: string; variable: string }>;
  readonly resolver: Resolver;
  historyFor(env: string, variable: string): HistoryBackend;
  history(filter?: HistoryFilter & { env?: string }): Promise<RotationRecord[]>;
  rotate(env: string, variable: string, options?: RotateOptions): Promise<RotationResult>;
}

export interface GovernanceContext {
  readonly engine: GovernanceEngine;
  readonly clock: Clock;
  /** Where approval and break-glass events go (every configured channel). */
  readonly notify?: NotifyPort;
  /**
   * Histories to read besides those of the engine's rotated variables: the CLI passes the
   * default history of each file store, where RotationPolicy resources keep theirs.
   */
  readonly extraHistories?: readonly HistoryBackend[];
}

/** The backend each listed record came from (a record is saved back where it was read). */
const origin = new WeakMap<object, HistoryBackend>();

/**
 * Approval and break-glass records of every rotated variable (of `filter`), newest first: from
 * the history backend of each rotated variable of the engine's configuration, plus `extra`
 * backends (deduplicated by id).
 */
export async function listGovernance(
  engine: Pick<GovernanceEngine, "rotated" | "historyFor">,
  filter: GovernanceFilter = {},
  extra: readonly HistoryBackend[] = [],
  /** Skip a history that cannot be read (a user error: database down) instead of throwing (a pass reports those per rotation). */
  opts: { skipUnreadable?: boolean } = {},
): Promise<GovernanceRecord[]> {
  const backends = new Set<HistoryBackend>();
  for (const v of engine.rotated(filter.env)) {
    if (filter.variable && v.variable !== filter.variable) continue;
    try {
      backends.add(engine.historyFor(v.env, v.variable));
    } catch (e) {
      if (!(opts.skipUnreadable && e instanceof DsopsError)) throw e;
    }
  }
  for (const b of extra) backends.add(b);
  const seen = new Map<string, GovernanceRecord>();
  for (const b of backends) {
    let recs: GovernanceRecord[];
    try {
      recs = (await b.list({
        governance: true,
        ...(filter.env ? { env: filter.env } : {}),
        ...(filter.variable ? { variable: filter.variable } : {}),
        ...(filter.secret ? { secret: filter.secret } : {}),
      })) as unknown as GovernanceRecord[];
    } catch (e) {
      if (opts.skipUnreadable && e instanceof DsopsError) continue;
      throw e;
    }
    for (const r of recs) {
      if (seen.has(r.id)) continue;
      seen.set(r.id, r);
      origin.set(r, b);
    }
  }
  foldReads(seen);
  const all = [...seen.values()].filter((r) => (!filter.kind || r.kind === filter.kind) && (!filter.since || r.startedAt >= filter.since));
  return all.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
}

/**
 * A read under a break-glass is stored as a record of its own (kind `breakglass-read`, appended,
 * never re-saved), not by saving the grant again: two reads at once would each save the grant with
 * only their own read, and a read saving a grant that a close had just saved would open it again.
 * Here each grant gets its reads back (`reads`, oldest first) and the read records leave the list.
 */
export function foldReads(seen: Map<string, GovernanceRecord>): void {
  const reads = new Map<string, BreakGlassRead[]>();
  for (const [id, r] of seen) {
    const rd = r as unknown as Partial<BreakGlassReadRecord>;
    if (rd.kind !== "breakglass-read") continue;
    seen.delete(id);
    if (!rd.grantId || !rd.by || !rd.startedAt) continue;
    reads.set(rd.grantId, [...(reads.get(rd.grantId) ?? []), { by: rd.by, at: rd.startedAt, command: rd.command ?? "?" }]);
  }
  for (const r of seen.values()) {
    if (r.kind !== "breakglass") continue;
    const own = reads.get(r.id);
    if (own) r.reads = [...(r.reads ?? []), ...own].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }
}

/** How a read under a break-glass is stored (see foldReads). */
interface BreakGlassReadRecord {
  readonly id: string;
  readonly kind: "breakglass-read";
  readonly grantId: string;
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  readonly service: string;
  readonly status: "read";
  readonly startedAt: string;
  readonly by: string;
  readonly command: string;
}

const list = (ctx: GovernanceContext, filter: GovernanceFilter) => listGovernance(ctx.engine, filter, ctx.extraHistories);

/** Save a governance record where it was read, else in its variable's history backend (the backend stores any record with the indexed fields). */
async function save(ctx: GovernanceContext, rec: GovernanceRecord): Promise<void> {
  // A grant's reads are records of their own (foldReads): its snapshot never carries them.
  const stored = rec.kind === "breakglass" ? { ...rec, reads: undefined } : rec;
  await (origin.get(rec) ?? ctx.engine.historyFor(rec.env, rec.variable)).save(stored as unknown as RotationRecord);
}

function newId(prefix: string, now: number): string {
  return `${prefix}-${new Date(now).toISOString().replace(/[-:.]/g, "").replace("T", "-").replace("Z", "")}-${randomBytes(3).toString("hex")}`;
}

const iso = (t: number) => new Date(t).toISOString();

/** The variable's secret, service and policy (`envs.<env>.<VAR>.rotation`). */
export function governedSubject(engine: GovernanceEngine, env: string, variable: string): Subjectish & { policy: VariableRotation; path: string } {
  const v = engine.config.envs[env]?.[variable];
  const policy = v?.spec.rotation as VariableRotation | undefined;
  if (!v || !policy) throw new DsopsError(`${env}/${variable}: no such rotated variable in dsops.yaml`, { hint: "dsops rotation status lists the rotated variables" });
  const secret = v.ref ? `store://${v.ref.store}/${v.ref.key}` : "-";
  const type = engine.config.raw.services[policy.service]?.type;
  return { secret, env, variable, service: policy.service, ...(type ? { targetType: type } : {}), policy, path: `envs.${env}.${variable}.rotation` };
}

function emit(ctx: GovernanceContext, type: RotationEventType, rec: GovernanceRecord, extra: Partial<RotationEvent> = {}): void {
  ctx.notify?.emit({
    type,
    title: eventTitles[type],
    service: rec.service,
    env: rec.env,
    variable: rec.variable,
    secret: rec.secret,
    at: iso(ctx.clock.now()),
    ...(rec.kind === "approval" ? { approvalId: rec.id } : { breakGlassId: rec.id }),
    expiresAt: rec.expiresAt,
    ...extra,
  });
}

// ---------------------------------------------------------------- approvals

/** Mark the variable's pending or granted requests whose time ran out `expired` (and say so on every channel); returns them. */
export async function expireApprovals(ctx: GovernanceContext, env?: string, variable?: string): Promise<ApprovalRecord[]> {
  const now = ctx.clock.now();
  const out: ApprovalRecord[] = [];
  const live = (a: ApprovalRecord) => (a.status === "pending" || a.status === "granted") && now >= Date.parse(a.expiresAt);
  for (const r of await list(ctx, { kind: "approval", ...(env ? { env } : {}), ...(variable ? { variable } : {}) })) {
    if (!live(r as ApprovalRecord)) continue;
    const a = await underRequestLock(ctx, r as ApprovalRecord, async (fresh) => {
      if (!live(fresh)) return undefined; // decided or used meanwhile: left as it is
      fresh.status = "expired";
      fresh.finishedAt = iso(now);
      await save(ctx, fresh);
      return fresh;
    });
    if (!a) continue;
    emit(ctx, "approval-expired", a, { status: "expired" });
    out.push(a);
  }
  return out;
}

/** What a due rotation under `rotation.approval` may do now. */
export type ApprovalGate =
  | { readonly go: true; readonly approval: ApprovalRecord }
  | { readonly go: false; readonly approval: ApprovalRecord; readonly reason: string; readonly created: boolean };

/**
 * Asked by a pass for a due rotation whose policy requires approval: a granted request lets it
 * run; a pending or recently denied one keeps it waiting; otherwise a request is opened (and
 * every channel told). `requester` is who runs the pass.
 */
export async function approvalGate(ctx: GovernanceContext, env: string, variable: string, policy: ApprovalPolicy, requester: string, policyPath = `envs.${env}.${variable}.rotation.approval`): Promise<ApprovalGate> {
  await expireApprovals(ctx, env, variable);
  const now = ctx.clock.now();
  const latest = (await list(ctx, { kind: "approval", env, variable }))[0] as ApprovalRecord | undefined;
  if (latest?.status === "granted") return { go: true, approval: latest };
  if (latest?.status === "pending")
    return { go: false, created: false, approval: latest, reason: `pending approval ${latest.id} (${granted(latest)} of ${latest.required} granted; expires ${latest.expiresAt})` };
  if (latest?.status === "denied" && now < Date.parse(latest.expiresAt)) {
    const d = latest.decisions.find((x) => x.decision === "denied");
    return { go: false, created: false, approval: latest, reason: `denied ${latest.id} by ${d?.by ?? "?"}: ${d?.reason ?? ""} (not asked again before ${latest.expiresAt})` };
  }
  const s = governedSubject(ctx.engine, env, variable);
  const rec: ApprovalRecord = {
    id: newId("apr", now),
    kind: "approval",
    secret: s.secret,
    env,
    variable,
    service: s.service,
    ...(s.targetType ? { targetType: s.targetType } : {}),
    status: "pending",
    requestedBy: requester,
    startedAt: iso(now),
    expiresAt: iso(now + durationMs(policy.expires)),
    required: policy.required,
    approvers: policy.approvers ? [...policy.approvers] : [],
    identity: policy.identity,
    ...(policy.token_key ? { tokenKey: policy.token_key } : {}),
    policyPath,
    decisions: [],
    reason: "due",
  };
  await save(ctx, rec);
  emit(ctx, "approval-requested", rec, { status: "pending", who: requester, reason: `approve with: dsops rotation approve ${rec.id} --reason "…"` });
  return { go: false, created: true, approval: rec, reason: `pending approval ${rec.id} (requested now; expires ${rec.expiresAt})` };
}

const granted = (a: ApprovalRecord) => a.decisions.filter((d) => d.decision === "granted").length;

/** The granted request was used by rotation `rotationId`. */
export async function markApprovalUsed(ctx: GovernanceContext, approval: ApprovalRecord, rotationId: string): Promise<void> {
  const a = await underRequestLock(ctx, approval, async (fresh) => {
    // Denied or expired meanwhile (a race with the rotation it let run): that status stays; the rotation is still named.
    if (fresh.status === "granted") {
      fresh.status = "used";
      fresh.finishedAt = iso(ctx.clock.now());
    }
    fresh.rotationId = rotationId;
    await save(ctx, fresh);
    return fresh;
  });
  Object.assign(approval, { status: a.status, rotationId: a.rotationId, finishedAt: a.finishedAt, decisions: a.decisions });
}

/** How many times (of about 25 ms each) a change of a request waits for another change of it to finish. */
const REQUEST_LOCK_TRIES = 400;

/**
 * Run `change` on the request read again under its lock (`approval <id>` in its history backend),
 * so concurrent changes of one request (decisions, expiry, use) apply one after the other, each
 * on what the one before saved. A lock whose holder died is taken over (see HistoryBackend.lock).
 */
async function underRequestLock<T>(ctx: GovernanceContext, a: ApprovalRecord, change: (fresh: ApprovalRecord) => Promise<T>): Promise<T> {
  const backend = origin.get(a) ?? ctx.engine.historyFor(a.env, a.variable);
  const name = `approval ${a.id}`;
  for (let tries = 0; ; tries++) {
    let held: Awaited<ReturnType<HistoryBackend["lock"]>>;
    try {
      held = await backend.lock(name, lockOwner(ctx.clock));
    } catch (e) {
      if (!(e instanceof RotationInProgressError)) throw e;
      if (tries >= REQUEST_LOCK_TRIES)
        throw new DsopsError(`approval ${a.id} (${a.env}/${a.variable}): another change of it is still being recorded (${e.owner ? `${e.owner.who}, pid ${e.owner.pid} on ${e.owner.host}` : "another run"})`, {
          hint: "run the command again in a moment",
        });
      // Polling interval, not elapsed time.
      await new Promise((res) => setTimeout(res, 10 + Math.ceil(Math.random() * 30)));
      continue;
    }
    try {
      const fresh = (await backend.list({ governance: true, env: a.env, variable: a.variable })).find((r) => r.id === a.id) as unknown as ApprovalRecord | undefined;
      if (fresh) origin.set(fresh, backend);
      return await change(fresh ?? a);
    } finally {
      await held.release();
    }
  }
}

/** Find an approval request by id among every rotated variable's history. */
/**
 * Read only (the preview of a RotationPolicy): whether the variable's latest request is granted
 * and still valid, else why it waits. Nothing is written or sent.
 */
export async function peekApproval(ctx: GovernanceContext, env: string, variable: string): Promise<{ granted: boolean; approval?: ApprovalRecord; reason: string }> {
  const now = ctx.clock.now();
  const latest = (await list(ctx, { kind: "approval", env, variable }))[0] as ApprovalRecord | undefined;
  if (!latest) return { granted: false, reason: "waiting for approval: no request yet (pulumi up or dsops rotation run --due requests it)" };
  const live = now < Date.parse(latest.expiresAt);
  if (latest.status === "granted" && live) return { granted: true, approval: latest, reason: `approved (${latest.id} by ${latest.decisions.filter((d) => d.decision === "granted").map((d) => d.by).join(", ")})` };
  if (latest.status === "pending" && live) return { granted: false, approval: latest, reason: `waiting for approval: ${latest.id} pending (${granted(latest)} of ${latest.required} granted; expires ${latest.expiresAt})` };
  if (latest.status === "denied" && live) return { granted: false, approval: latest, reason: `waiting for approval: ${latest.id} was denied` };
  return { granted: false, approval: latest, reason: `waiting for approval: ${latest.id} is ${live ? latest.status : "expired"}; a new request is made at the next pulumi up or dsops rotation run --due` };
}

export async function findApproval(ctx: GovernanceContext, id: string): Promise<ApprovalRecord> {
  const a = (await list(ctx, { kind: "approval" })).find((r) => r.id === id) as ApprovalRecord | undefined;
  if (!a) throw new DsopsError(`approval ${id}: no such approval request`, { hint: "dsops rotation approvals lists them (pending first)" });
  return a;
}

/**
 * Record `who`'s decision on request `id`. Refused (DsopsError naming the request and the
 * policy field): a request no longer pending (decided, expired), the requester deciding their
 * own request, someone not in `rotation.approval.approvers`, the same approver twice.
 */
export async function decideApproval(ctx: GovernanceContext, id: string, who: ApproverIdentity, decision: "granted" | "denied", reason: string): Promise<ApprovalRecord> {
  if (!reason.trim()) throw new DsopsError(`approval ${id}: a reason is required (--reason "…")`);
  await expireApprovals(ctx);
  const found = await findApproval(ctx, id);
  envFaultHook()?.("approval:before:decide");
  // Checked and recorded on the request as saved by the changes before this one (see underRequestLock).
  const a = await underRequestLock(ctx, found, (fresh) => recordDecision(ctx, fresh, who, decision, reason));
  if (a.status === "denied") emit(ctx, "approval-denied", a, { status: "denied", who: who.id, reason });
  else if (a.status === "granted") emit(ctx, "approval-granted", a, { status: "granted", who: who.id, reason });
  return a;
}

async function recordDecision(ctx: GovernanceContext, a: ApprovalRecord, who: ApproverIdentity, decision: "granted" | "denied", reason: string): Promise<ApprovalRecord> {
  const id = a.id;
  const s = { path: a.policyPath.replace(/\.approval$/, "") };
  const policy = { approvers: a.approvers.length ? a.approvers : undefined };
  if (a.status !== "pending")
    throw new DsopsError(`approval ${id} (${a.env}/${a.variable}) is ${a.status}${a.finishedAt ? ` since ${a.finishedAt}` : ""}, not pending: it cannot be ${decision} any more`, {
      hint: a.status === "expired" ? "the next dsops rotation run --due asks again" : "dsops rotation approvals shows it",
    });
  const same = (x: string, y: string) => x.toLowerCase() === y.toLowerCase();
  if (same(who.id, a.requestedBy))
    throw new DsopsError(`approval ${id}: ${who.id} requested this rotation and may not ${decision === "granted" ? "approve" : "deny"} it (${s.path}.approval: the approver may not be the requester)`, {
      hint: "ask another approver",
    });
  if (policy.approvers && !policy.approvers.some((p) => same(p, who.id)))
    throw new DsopsError(`approval ${id}: ${who.id} (${who.method} identity) is not in ${s.path}.approval.approvers (${policy.approvers.join(", ")})`);
  if (a.decisions.some((d) => same(d.by, who.id))) throw new DsopsError(`approval ${id}: ${who.id} already decided it`);
  const now = ctx.clock.now();
  a.decisions.push({ by: who.id, identity: who.method, decision, reason, at: iso(now) });
  if (decision === "denied") {
    a.status = "denied";
    a.finishedAt = iso(now);
  } else if (granted(a) >= a.required) {
    a.status = "granted";
    a.finishedAt = iso(now);
  }
  await save(ctx, a);
  return a;
}

// ---------------------------------------------------------------- break-glass

/**
 * Open a break-glass on a rotated variable: recorded, sent to every channel at once; with
 * `rotate`, an emergency rotation now (no approval asked, no window waited for).
 */
export async function openBreakGlass(
  ctx: GovernanceContext,
  o: { env: string; variable: string; reason: string; ttl: string; by: string; rotate?: boolean },
): Promise<{ record: BreakGlassRecord; rotation?: RotationResult }> {
  if (!o.reason.trim()) throw new DsopsError("breakglass open: a reason is required (--reason \"…\")");
  const s = governedSubject(ctx.engine, o.env, o.variable);
  const now = ctx.clock.now();
  const ttlMs = parseDuration(o.ttl, "--ttl");
  const rec: BreakGlassRecord = {
    id: newId("bg", now),
    kind: "breakglass",
    secret: s.secret,
    env: o.env,
    variable: o.variable,
    service: s.service,
    ...(s.targetType ? { targetType: s.targetType } : {}),
    status: "open",
    openedBy: o.by,
    startedAt: iso(now),
    reason: o.reason,
    ttl: formatDuration(ttlMs),
    expiresAt: iso(now + ttlMs),
    rotate: o.rotate === true,
  };
  await save(ctx, rec);
  emit(ctx, "breakglass-opened", rec, { status: "open", who: o.by, reason: o.reason });
  if (!o.rotate) return { record: rec };
  const rotation = await ctx.engine.rotate(o.env, o.variable, { strategy: "emergency", reason: `break-glass ${rec.id}: ${o.reason}`, force: true });
  rec.emergencyRotationId = rotation.record.id;
  await save(ctx, rec);
  return { record: rec, rotation };
}

/** Close an open break-glass: the credential is rotated (forced) first; a failed rotation leaves it open (the next pass tries again) and is thrown. */
export async function closeBreakGlass(ctx: GovernanceContext, rec: BreakGlassRecord, how: "manual" | "expired", by: string): Promise<BreakGlassRecord> {
  if (rec.status !== "open") throw new DsopsError(`break-glass ${rec.id} (${rec.env}/${rec.variable}) is already closed (${rec.finishedAt ?? ""})`);
  let rotation: RotationResult;
  try {
    rotation = await ctx.engine.rotate(rec.env, rec.variable, { reason: `break-glass ${rec.id} closed (${how})`, force: true });
  } catch (e) {
    rec.closeError = e instanceof Error ? e.message : String(e);
    await save(ctx, rec);
    throw e;
  }
  const now = ctx.clock.now();
  rec.status = "closed";
  rec.finishedAt = iso(now);
  rec.closedBy = by;
  rec.closedHow = how;
  rec.forcedRotationId = rotation.record.id;
  rec.forcedRotationStatus = rotation.record.status;
  delete rec.closeError;
  await save(ctx, rec);
  emit(ctx, "breakglass-closed", rec, { status: "closed", who: by, rotationId: rotation.record.id, reason: how === "expired" ? "its time ran out; credential rotated" : "closed; credential rotated" });
  return rec;
}

/**
 * The open, unexpired break-glass grant covering `env`/`variable` now (the newest), else why none
 * does (read only). A history that cannot be read throws: the caller refuses the read.
 */
export async function activeBreakGlass(ctx: GovernanceContext, env: string, variable: string): Promise<{ grant?: BreakGlassRecord; why: string }> {
  const now = ctx.clock.now();
  const all = (await list(ctx, { kind: "breakglass", env, variable })).filter((r) => r.env === env && r.variable === variable) as BreakGlassRecord[];
  const grant = all.find((b) => b.status === "open" && now < Date.parse(b.expiresAt));
  if (grant) return { grant, why: `break-glass ${grant.id} open until ${grant.expiresAt}` };
  const latest = all[0];
  if (!latest) return { why: "no break-glass grant was opened for it" };
  if (latest.status === "closed") return { why: `break-glass ${latest.id} was closed at ${latest.finishedAt ?? "?"}` };
  return { why: `break-glass ${latest.id} expired at ${latest.expiresAt}` };
}

/** Record a read of a sealed value on its grant (saved where the grant was read). */
export async function recordBreakGlassRead(ctx: GovernanceContext, grant: BreakGlassRecord, read: Omit<BreakGlassRead, "at">): Promise<void> {
  const now = ctx.clock.now();
  const rec: BreakGlassReadRecord = {
    id: newId("bgr", now),
    kind: "breakglass-read",
    grantId: grant.id,
    secret: grant.secret,
    env: grant.env,
    variable: grant.variable,
    service: grant.service,
    status: "read",
    startedAt: iso(now),
    by: read.by,
    command: read.command,
  };
  await (origin.get(grant) ?? ctx.engine.historyFor(grant.env, grant.variable)).save(rec as unknown as RotationRecord);
  grant.reads = [...(grant.reads ?? []), { by: rec.by, at: rec.startedAt, command: rec.command }];
}

/** Find a break-glass by id. */
export async function findBreakGlass(ctx: GovernanceContext, id: string): Promise<BreakGlassRecord> {
  const b = (await list(ctx, { kind: "breakglass" })).find((r) => r.id === id) as BreakGlassRecord | undefined;
  if (!b) throw new DsopsError(`break-glass ${id}: no such break-glass`, { hint: "dsops breakglass list shows them" });
  return b;
}

/** Close every open break-glass whose time ran out (a pass of `rotation run --due` or the scheduler); a failure of one is returned, the others still close. */
export async function closeExpiredBreakGlass(ctx: GovernanceContext, by: string, env?: string): Promise<Array<{ record: BreakGlassRecord; error?: unknown }>> {
  const now = ctx.clock.now();
  const out: Array<{ record: BreakGlassRecord; error?: unknown }> = [];
  for (const r of await listGovernance(ctx.engine, { kind: "breakglass", ...(env ? { env } : {}) }, ctx.extraHistories, { skipUnreadable: true })) {
    const b = r as BreakGlassRecord;
    if (b.status !== "open" || now < Date.parse(b.expiresAt)) continue;
    try {
      out.push({ record: await closeBreakGlass(ctx, b, "expired", by) });
    } catch (e) {
      out.push({ record: b, error: e });
    }
  }
  return out;
}
