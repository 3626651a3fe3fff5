import type { RotationStrategyName } from "../settings";
import { Secret, scrub } from "../../core/secret";
import { RotationError } from "../errors";
import { DsopsError, NotFoundError } from "../../core/errors";
import { checkPolicy, defaultGeneratorPolicy, generate } from "../generator";
import { progressOf, type RolloutRecord } from "../rollout/plan";
import { resolveStrategy, type ResolvedStrategy } from "../strategies/index";
import type { Credential, Target } from "../targets/types";
import type { RotationRecord, StepName } from "../types";
import { StepFailure, rollingBack, type EngineContext, type RunState } from "./context";
import { healthGate } from "./health-gate";
import { emit } from "./publish";
import { planRollout, prepareTargets, rolloutApply, rolloutRestore } from "./rollout";
import { pendingOf, putCurrentBack, readPending, readStage, restoreOn, revokeMadeByRun, step, unfinishedError, verifyWithRetries } from "./step";
import { recordSubject, type Subject } from "./wiring";

/**
 * The step machine (see ../types.ts `rotationSteps`): create pending → apply → verify → promote
 * → retire, each step recorded before it runs and after, under the secret's lock. A run killed
 * at any instant is resumed by the next run of the same secret; a failed apply, stage or verify
 * rolls back (restore, discard).
 */

export async function start(ctx: EngineContext, subject: Subject, strategy: ResolvedStrategy, id: string, reason?: string, newValue?: Secret): Promise<RotationRecord> {
  const current = await readStage(subject, "current");
  const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(current ? { current: current.value } : {}), path: subject.path });
  if (plan.apply === "set") checkPolicy(subject.policy.generator ?? defaultGeneratorPolicy, subject.target.valueRules);
  else if (newValue)
    throw new DsopsError(`${subject.path}: service "${subject.target.name}" (${subject.target.type}) mints its own credential with strategy ${strategy.shape.name}: a new value cannot be given`, { hint: "rotate without --new-value" });
  const rollout = await planRollout(ctx, subject, plan);
  await prepareTargets(ctx, subject, rollout);
  const rec: RolloutRecord = {
    id,
    kind: "rotate",
    ...recordSubject(subject),
    strategy: strategy.name,
    ...(strategy.name !== strategy.shape.name ? { base: strategy.shape.name } : {}),
    who: ctx.who,
    ...(reason ? { reason } : {}),
    startedAt: ctx.nowIso(),
    status: "running",
    steps: [],
    ...(current ? { oldVersionId: current.versionId } : {}),
    ...(plan.old ? { oldPrincipal: plan.old.principal } : {}),
    newPrincipal: plan.principal,
    ...(rollout ? { rollout } : {}),
  };
  const st: RunState = { subject, strategy, rec, plan, secrets: plan.old ? [plan.old.secret] : [], ...(newValue ? { newValue } : {}) };
  if (newValue) st.secrets.push(newValue);
  ctx.log(`${subject.secret}: rotation ${id} (${strategy.name}) of ${plan.principal} started${rollout ? ` on ${rollout.instances.length} instance(s) in ${rollout.waves.length} wave(s)` : ""}`);
  emit(ctx, "started", subject, rec);
  return run(ctx, st);
}

/** Continue a record left `running` (or finish the retire step of one in `grace`). */
export async function resume(ctx: EngineContext, subject: Subject, rec: RotationRecord, retireNow = false): Promise<RotationRecord> {
  rec.resumedBy = [...(rec.resumedBy ?? []), `${ctx.who} pid ${process.pid}`];
  if (rec.kind === "rollback") {
    // As for a rotation: the version is set again at the target unless it was made current.
    if (!rec.steps.some((x) => x.outcome === "failed" || x.name === "restore" || (x.name === "promote" && x.outcome === "ok")))
      for (const x of rec.steps)
        if (x.name === "apply" || x.name === "verify") {
          delete x.outcome;
          delete x.message;
          delete x.finishedAt;
        }
    return ctx.ops.runManualRollback(subject, rec);
  }
  const strategy = resolveStrategy(subject.policy, rec.strategy as RotationStrategyName);
  // The plan is rebuilt from the value that was current when the rotation started.
  const oldValue = rec.oldVersionId ? (await subject.store.get({ key: subject.ref.key, version: rec.oldVersionId })).value : undefined;
  const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(oldValue ? { current: oldValue } : {}), path: subject.path });
  const st: RunState = { subject, strategy, rec, plan, secrets: plan.old ? [plan.old.secret] : [] };
  if (retireNow) {
    rec.status = "running";
    if (plan.retire === "grace") st.plan = { ...plan, retire: "now" };
    const s = rec.steps.find((x) => x.name === "retire");
    if (s) delete s.outcome;
  } else if (plan.apply === "set" && !progressOf(rec) && !rollingBack(rec) && !rec.steps.some((x) => x.name === "promote" && x.outcome === "ok")) {
    // Not promoted yet: the earlier run may have put the old password back without being able
    // to record it (a full disk). Setting the pending value again is harmless, and verified again.
    for (const x of rec.steps)
      if (x.name === "apply" || x.name === "verify") {
        delete x.outcome;
        delete x.message;
        delete x.finishedAt;
      }
  }
  return run(ctx, st);
}

/** The step machine, and what is done when it ends in an error none of its steps handled. */
export async function run(ctx: EngineContext, st: RunState): Promise<RotationRecord> {
  try {
    return await runSteps(ctx, st);
  } catch (e) {
    throw await salvage(ctx, st, e);
  }
}

/**
 * A run ended in an error its steps did not handle (the history or the store could not be
 * written, promote failed, a bug). A single-user target changed in place may then hold the
 * new password while the store's current version is still the old one: it gets the old
 * password back, so the credential stored as current works. This is not recorded (the history
 * may be what failed): the record stays `running`, and the next run resumes it and sets the
 * pending value again. Returns the error to throw, saying what was left how.
 */
export async function salvage(ctx: EngineContext, st: RunState, e: unknown): Promise<unknown> {
  const { rec, subject, plan } = st;
  const inPlace = plan.apply === "set" && !!plan.old && plan.old.principal === plan.principal;
  const note = progressOf(rec) ? undefined : await putCurrentBack(ctx, st, inPlace, () => restoreOn(st, subject.target));
  return unfinishedError(st, e, note, `rotation ${rec.id}`, `dsops secrets rotate --env ${subject.env} --var ${subject.variable}`);
}

/** The policies a generated value of `env` must meet (undefined: none). */
function valueCheck(ctx: EngineContext, env: string): ((value: string) => readonly string[]) | undefined {
  const port = ctx.valuePolicy;
  return port ? (value) => port.problems(env, value) : undefined;
}

export async function runSteps(ctx: EngineContext, st: RunState): Promise<RotationRecord> {
  const { rec, subject, plan } = st;
  const { store, target } = subject;
  const key = subject.ref.key;
  const stepsDone = (n: StepName) => rec.steps.find((s) => s.name === n)?.outcome === "ok";
  let preStaged: Credential | undefined;

  // A failure already recorded (or a rollback already begun) by a crashed run: finish the rollback.
  const failed = rec.steps.find((s) => s.outcome === "failed" && (s.name === "apply" || s.name === "verify" || s.name === "stage"));
  if (failed || rec.steps.some((s) => s.name === "restore" || s.name === "discard")) {
    return autoRollback(ctx, st, rec.error ?? failed?.message ?? "an earlier run failed");
  }

  // The value lives only in memory until staged: a run resumed before `stage` finished draws a new one.
  if (!stepsDone("stage")) {
    // A create-type run killed after `create` (the value was kept as the pending version first):
    // what it may have created at the target is revoked before a new credential is made.
    if (plan.apply === "create" && rec.newVersionId && preStages(target)) await revokePreStaged(ctx, st);
    rec.steps = rec.steps.filter((s) => s.name !== "generate" && s.name !== "stage" && s.name !== "apply");
    delete rec.newVersionId;
  } else {
    st.pending = await readPending(st);
  }

  try {
    if (plan.apply === "set") {
      await step(ctx, st, "generate", async () => {
        const policy = subject.policy.generator ?? defaultGeneratorPolicy;
        st.pending = { principal: plan.principal, secret: st.newValue ?? generate(policy, target.valueRules, valueCheck(ctx, subject.env)) };
        st.secrets.push(st.pending.secret);
      });
      await step(ctx, st, "stage", async () => {
        await store.discardPending(key);
        const info = await store.putPending(key, st.strategy.shape.encode(pendingOf(st)), { description: `rotation ${rec.id}` });
        rec.newVersionId = info.versionId;
      });
      await step(ctx, st, "apply", async () => {
        const p = progressOf(rec);
        if (p) return rolloutApply(ctx, st, p);
        await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, pendingOf(st));
        return undefined;
      });
    } else {
      await step(ctx, st, "apply", async () => {
        // A crashed earlier attempt may have minted a credential that was never staged: revoke it.
        // Only what this rotation made (listed now, not before its first create) is revoked.
        if (target.list && target.revoke) {
          const listed = await target.list(plan.principal);
          await revokeMadeByRun(st, target, listed);
          if (!rec.listedBeforeCreate) {
            rec.listedBeforeCreate = listed;
            await subject.history.save(rec);
          }
        }
        const policy = subject.policy.generator ?? defaultGeneratorPolicy;
        const value = generate(policy, target.valueRules, valueCheck(ctx, subject.env));
        st.secrets.push(value);
        if (preStages(target)) {
          // Kept as the pending version before the target sees it: when create's answer is lost
          // (a timeout) or the run is killed before `stage`, the credential create made is known
          // and revoked (restore, or the next run), never left behind at the target.
          await store.discardPending(key);
          const info = await store.putPending(key, st.strategy.shape.encode({ principal: plan.principal, secret: value }), { description: `rotation ${rec.id}` });
          rec.newVersionId = info.versionId;
          preStaged = { principal: plan.principal, secret: value };
          await subject.history.save(rec);
        }
        st.pending = await (target.create as NonNullable<Target["create"]>).call(target, plan.principal, value, plan.old);
        st.secrets.push(st.pending.secret);
      });
      await step(ctx, st, "stage", async () => {
        const p = pendingOf(st);
        // The target took the value staged before create: it is staged already.
        if (preStaged && rec.newVersionId && p.principal === preStaged.principal && p.secret.reveal() === preStaged.secret.reveal()) return undefined;
        await store.discardPending(key);
        const info = await store.putPending(key, st.strategy.shape.encode(pendingOf(st)), { description: `rotation ${rec.id}` });
        rec.newVersionId = info.versionId;
      });
    }
    rec.newPrincipal = pendingOf(st).principal;
    await step(ctx, st, "verify", async () => {
      if (progressOf(rec)) return "verified on each instance during the rollout";
      if (!target.verify) return "the target cannot verify";
      await verifyWithRetries(ctx, st, pendingOf(st));
      return undefined;
    });
  } catch (e) {
    if (e instanceof StepFailure) return autoRollback(ctx, st, e.message);
    throw e;
  }

  await step(ctx, st, "promote", async () => {
    await store.promote(key, rec.newVersionId as string);
    st.promoted = true;
  });
  await healthGate(ctx, st);
  return retire(ctx, st);
}

export async function retire(ctx: EngineContext, st: RunState): Promise<RotationRecord> {
  const { rec, plan, subject } = st;
  const old = plan.old;
  const retireOld = async () => {
    if (!old) return "no old credential";
    if (old.principal === rec.newPrincipal && plan.apply === "set") return "replaced in place";
    if (!subject.target.revoke) return "the target cannot revoke";
    const p = progressOf(rec);
    if (p) {
      // Instances left on the old credential (on_failure: continue) keep it.
      for (const name of p.verified) {
        const t = ctx.wiring.instanceTarget(subject, p, name);
        await (t.revoke as NonNullable<Target["revoke"]>).call(t, old);
      }
      return undefined;
    }
    await subject.target.revoke(old);
    return undefined;
  };
  if (plan.retire === "grace" && old) {
    const retireAfter = new Date(ctx.clock.now() + (plan.graceMs ?? 0)).toISOString();
    if (ctx.clock.now() < Date.parse(rec.retireAfter ?? retireAfter)) {
      rec.retireAfter = rec.retireAfter ?? retireAfter;
      rec.status = "grace";
      await subject.history.save(rec);
      ctx.log(`${subject.secret}: rotation ${rec.id}: new credential current; the old one is revoked after ${rec.retireAfter}`);
      emit(ctx, "completed", subject, rec);
      return rec;
    }
  }
  await step(ctx, st, "retire", async () => (plan.retire === "none" ? "the strategy keeps the old credential" : retireOld()));
  rec.status = "succeeded";
  rec.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
  ctx.log(`${subject.secret}: rotation ${rec.id} succeeded (version ${rec.newVersionId})`);
  emit(ctx, "completed", subject, rec);
  return rec;
}

/** Put the target back to the credential stored as current, drop the pending version, record why. */
export async function autoRollback(ctx: EngineContext, st: RunState, why: string): Promise<never> {
  const { rec, subject } = st;
  await rollBackRun(ctx, st, why, "automatic");
  throw new RotationError(`${subject.secret}: rotation ${rec.id} rolled back: ${rec.error}`, rec.id, {
    hint: `the credential stored as current is unchanged${rec.oldVersionId ? ` (version ${rec.oldVersionId})` : ""}; see \`dsops secrets history\``,
  });
}

/** The rollback of a run: restore (every instance that got the new credential, in a rollout), discard, record `rolled-back`, send the event. */
export async function rollBackRun(ctx: EngineContext, st: RunState, why: string, trigger: "automatic" | "manual"): Promise<RotationRecord> {
  const { rec, subject } = st;
  rec.error = scrub(why, st.secrets);
  ctx.log(`${subject.secret}: rotation ${rec.id} failed (${rec.error}); rolling back`);
  const p = progressOf(rec);
  await step(ctx, st, "restore", async () => {
    if (p) return rolloutRestore(ctx, st, p);
    if (!rec.steps.some((s) => s.name === "apply")) return "nothing was applied";
    return restoreOn(st, subject.target);
  });
  await step(ctx, st, "discard", async () => {
    await subject.store.discardPending(subject.ref.key, rec.newVersionId);
  });
  rec.status = "rolled-back";
  rec.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
  emit(ctx, "rollback", subject, rec, { trigger });
  return rec;
}

/**
 * A create-type target that can revoke but cannot list its credentials (Redis ACL passwords, a
 * plugin's): the engine keeps the value it hands to `create` as the pending version first, so
 * what `create` made is known even when its answer is lost or the run is killed. (A target with
 * `list` has its orphans found by listing.)
 */
function preStages(target: Target): boolean {
  return !!target.create && !!target.revoke && !target.list;
}

/** Revoke the credential an earlier attempt kept as the pending version before `create` (a no-op at the target when create never ran). */
async function revokePreStaged(ctx: EngineContext, st: RunState): Promise<void> {
  const { rec, subject } = st;
  let cred: Credential;
  try {
    cred = await readPending(st);
  } catch (e) {
    if (e instanceof NotFoundError) return;
    throw e;
  }
  await (subject.target.revoke as NonNullable<Target["revoke"]>).call(subject.target, cred);
  ctx.log(`${subject.secret}: rotation ${rec.id}: the credential an interrupted create may have made for "${cred.principal}" was revoked`);
}
