import type { RotationStrategyName } from "../settings";
import { DsopsError } from "../../core/errors";
import { RotationError } from "../errors";
import { lockOwner } from "../lock";
import { progressOf, type RolloutRecord } from "../rollout/plan";
import { resolveStrategy } from "../strategies/index";
import type { Credential, Target } from "../targets/types";
import type { RotationRecord } from "../types";
import { StepFailure, newRotationId, type EngineContext, type RunState } from "./context";
import type { RollbackOptions, RollbackPlan } from "./api";
import { resume, rollBackRun } from "./machine";
import { emit, failedEvent } from "./publish";
import { planRollout } from "./rollout";
import { putCurrentBack, readPending, step, unfinishedError, verifyWithRetries } from "./step";
import { recordSubject, type Subject } from "./wiring";

/**
 * Manual rollback (`dsops rotation rollback`, RotationPolicy `rollback`): the chosen version is
 * applied at the target (every rollout instance), verified and promoted; a failure puts the
 * target back to the credential stored as current. A rollout halted by `on_failure: stop` is
 * rolled back instead.
 */

/** `dsops rotation rollback` of a rollout halted by `on_failure: stop`: put the old credential back on every instance, drop the pending version. */
export async function abortHalted(ctx: EngineContext, subject: Subject, open: RotationRecord, reason: string): Promise<RotationRecord> {
  open.resumedBy = [...(open.resumedBy ?? []), `${ctx.who} pid ${process.pid}`];
  const strategy = resolveStrategy(subject.policy, open.strategy as RotationStrategyName);
  const oldValue = open.oldVersionId ? (await subject.store.get({ key: subject.ref.key, version: open.oldVersionId })).value : undefined;
  const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(oldValue ? { current: oldValue } : {}), path: subject.path });
  const st: RunState = { subject, strategy, rec: open, plan, secrets: plan.old ? [plan.old.secret] : [] };
  if (open.newVersionId) await readPending(st).then((c) => (st.pending = c)).catch(() => undefined);
  return rollBackRun(ctx, st, `${open.error ?? "rollout halted"}; rolled back by hand: ${reason}`, "manual");
}

export async function rollbackOne(ctx: EngineContext, subject: Subject, options: RollbackOptions): Promise<RotationRecord> {
  const strategy = resolveStrategy(subject.policy);
  const lock = await subject.history.lock(subject.secret, lockOwner(ctx.clock));
  try {
    const open = (await subject.history.list({ secret: subject.secret, status: ["running"], limit: 1 }))[0];
    if (open && progressOf(open)?.halted) return await abortHalted(ctx, subject, open, options.reason);
    if (open) {
      // Finish (or roll back) what a crashed run left first; then roll back as asked.
      const finished = await resume(ctx, subject, open).catch((e) => {
        if (!(e instanceof RotationError)) throw e;
        return undefined;
      });
      // The unfinished run was this same rollback (killed, or its disk was full): finishing it is what was asked.
      if (finished?.kind === "rollback" && finished.status === "succeeded" && (!options.version || options.version === finished.newVersionId)) {
        emit(ctx, "rollback", subject, finished, { trigger: "manual" });
        return finished;
      }
    }
    const stages = await subject.store.stagesOf(subject.ref.key);
    const to = options.version ?? stages.previous;
    if (!to) throw new DsopsError(`${subject.secret}: no previous version to roll back to`);
    if (to === stages.current) throw new DsopsError(`${subject.secret}: version ${to} is already current`);
    const rec: RotationRecord = {
      id: newRotationId(ctx.clock),
      kind: "rollback",
      ...recordSubject(subject),
      strategy: "rollback",
      base: strategy.shape.name,
      who: ctx.who,
      reason: options.reason,
      startedAt: ctx.nowIso(),
      status: "running",
      steps: [],
      ...(stages.current ? { oldVersionId: stages.current } : {}),
      newVersionId: to,
    };
    // A rollout: the version goes back on every instance.
    const rollout = await planRollout(ctx, subject, { principal: "", apply: "set", retire: "none" }, "all");
    if (rollout) (rec as RolloutRecord).rollout = rollout;
    const done = await runManualRollback(ctx, subject, rec);
    emit(ctx, "rollback", subject, done, { trigger: "manual" });
    return done;
  } catch (e) {
    await failedEvent(ctx, subject, e, undefined, "rollback", options.reason);
    throw e;
  } finally {
    await lock.release();
  }
}

/**
 * What `rollbackOne` would do, found without changing anything: no lock is taken, no record is
 * written, the target is not touched. The same refusals as the real run (no previous version,
 * the version already current, a version the store does not have).
 */
export async function planRollbackOne(ctx: EngineContext, subject: Subject, options: RollbackOptions): Promise<RollbackPlan> {
  const notes: string[] = [];
  const holder = await subject.history.holder(subject.secret);
  if (holder) notes.push(`the rotation lock is held by ${holder.who} pid ${holder.pid}: the rollback would wait for nothing and fail`);
  const open = (await subject.history.list({ secret: subject.secret, status: ["running"], limit: 1 }))[0];
  if (open) notes.push(`${open.kind === "rollback" ? "rollback" : "rotation"} ${open.id} by ${open.who} is unfinished: it would be ${progressOf(open)?.halted ? "rolled back instead" : "finished (or rolled back) first"}`);
  const stages = await subject.store.stagesOf(subject.ref.key);
  const to = options.version ?? stages.previous;
  if (!to) throw new DsopsError(`${subject.secret}: no previous version to roll back to`);
  if (to === stages.current) throw new DsopsError(`${subject.secret}: version ${to} is already current`);
  const back = resolveStrategy(subject.policy).shape.decode((await subject.store.get({ key: subject.ref.key, version: to })).value, subject.path);
  const t = subject.target;
  const steps = [
    t.setSecret ? `apply: set version ${to}'s credential${back.principal ? ` (${back.principal})` : ""} at ${t.name} (${t.type})` : `apply: skipped (${t.type} cannot set a secret; version ${to} must still be valid there)`,
    t.verify ? `verify: log in to ${t.name} with it` : `verify: skipped (${t.type} cannot verify)`,
    `promote: make version ${to} current in the store${stages.current ? ` (version ${stages.current} becomes previous)` : ""}`,
  ];
  return {
    secret: subject.secret,
    env: subject.env,
    variable: subject.variable,
    service: t.name,
    ...(stages.current ? { fromVersion: stages.current } : {}),
    toVersion: to,
    ...(back.principal ? { toPrincipal: back.principal } : {}),
    steps,
    notes,
  };
}

/** Manual rollback machine: apply the chosen version at the target, verify it, promote it. A failure puts the target back to current. */
export async function runManualRollback(ctx: EngineContext, subject: Subject, rec: RotationRecord): Promise<RotationRecord> {
  let st: RunState | undefined;
  let cur: Credential | undefined;
  try {
    return await runManualRollbackSteps(ctx, subject, rec, (s, c) => ((st = s), (cur = c)));
  } catch (e) {
    if (!st) throw e;
    const run: RunState = st;
    // The credential stored as current when the rollback began: put back where the rollback changed that very principal.
    const current: Credential | undefined = cur;
    const targets = () => {
      const p = progressOf(rec);
      return p ? p.waves.flatMap((w) => w.instances).map((n) => ctx.wiring.instanceTarget(subject, p, n)) : [subject.target];
    };
    const inPlace = !!current && current.principal === run.plan.principal && !!subject.target.setSecret;
    const note = await putCurrentBack(ctx, run, inPlace, async () => {
      for (const t of targets()) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, current as Credential);
    });
    throw unfinishedError(run, e, note, `rollback ${rec.id}`, `dsops rotation rollback --service ${subject.target.name} --env ${subject.env} --var ${subject.variable} --reason …`);
  }
}

export async function runManualRollbackSteps(ctx: EngineContext, subject: Subject, rec: RotationRecord, started: (st: RunState, cur: Credential | undefined) => void): Promise<RotationRecord> {
  const strategy = resolveStrategy(subject.policy);
  const target = subject.target;
  const key = subject.ref.key;
  const back = strategy.shape.decode((await subject.store.get({ key, version: rec.newVersionId as string })).value, subject.path);
  const cur = rec.oldVersionId ? strategy.shape.decode((await subject.store.get({ key, version: rec.oldVersionId })).value, subject.path) : undefined;
  rec.newPrincipal = back.principal;
  if (cur) rec.oldPrincipal = cur.principal;
  const st: RunState = { subject, strategy, rec, plan: { principal: back.principal, apply: "set", retire: "none" }, pending: back, secrets: [back.secret, ...(cur ? [cur.secret] : [])] };
  started(st, cur);
  if (rec.steps.some((s) => s.outcome === "failed") || rec.steps.some((s) => s.name === "restore")) return failManualRollback(ctx, st, cur);
  const p = progressOf(rec);
  const targets = p ? p.waves.flatMap((w) => w.instances).map((n) => ctx.wiring.instanceTarget(subject, p, n)) : [target];
  try {
    await step(ctx, st, "apply", async () => {
      if (!target.setSecret) return "the target cannot set a secret; the version must still be valid there";
      for (const t of targets) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, back);
      return undefined;
    });
    await step(ctx, st, "verify", async () => {
      if (!target.verify) return "the target cannot verify";
      for (const t of targets) await verifyWithRetries(ctx, st, back, t);
      return undefined;
    });
  } catch (e) {
    if (e instanceof StepFailure) {
      rec.error = e.message;
      return failManualRollback(ctx, st, cur);
    }
    throw e;
  }
  await step(ctx, st, "promote", async () => {
    await subject.store.promote(key, rec.newVersionId as string);
    st.promoted = true;
  });
  rec.status = "succeeded";
  rec.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
  ctx.log(`${subject.secret}: rolled back to version ${rec.newVersionId} (${rec.id})`);
  return rec;
}

export async function failManualRollback(ctx: EngineContext, st: RunState, cur: Credential | undefined): Promise<never> {
  const { rec, subject } = st;
  await step(ctx, st, "restore", async () => {
    if (!cur || !subject.target.setSecret || cur.principal !== st.plan.principal) return "the current credential was not changed";
    const p = progressOf(rec);
    for (const t of p ? p.waves.flatMap((w) => w.instances).map((n) => ctx.wiring.instanceTarget(subject, p, n)) : [subject.target]) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, cur);
    return undefined;
  });
  rec.status = "failed";
  rec.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
  throw new RotationError(`${subject.secret}: rollback ${rec.id} failed: ${rec.error ?? "an earlier run failed"}; the current version is unchanged`, rec.id);
}
