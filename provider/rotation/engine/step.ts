import { DsopsError, NotFoundError, errorMessage } from "../../core/errors";
import { Secret, scrub } from "../../core/secret";
import { HistoryWriteError, RotationError, RotationInProgressError } from "../errors";
import { RolloutHalted } from "../rollout/plan";
import { VerificationError } from "../targets/errors";
import type { Credential, Target } from "../targets/types";
import type { StepName, StepRecord } from "../types";
import { StepFailure, type EngineContext, type RunState } from "./context";
import type { Subject } from "./wiring";

/**
 * The primitives every run is made of: one recorded step, a verification with retries, the
 * stored versions read back, the target put back to the credential stored as current, and the
 * error a run that did not finish throws.
 */

/**
 * Run one step: record it started, call the fault hook, act, call the fault hook, record the
 * outcome. A step already `ok` (or `skipped`) in the record is not run again. The action
 * returns a reason to mark the step skipped. A failing `apply`, `stage` or `verify` becomes a
 * StepFailure (the caller rolls back); other failures leave the record `running` for the next run.
 */
export async function step(ctx: EngineContext, st: RunState, name: StepName, act: () => Promise<string | undefined | void>): Promise<void> {
  const { rec, subject } = st;
  let s: StepRecord | undefined = rec.steps.find((x) => x.name === name);
  if (s && (s.outcome === "ok" || s.outcome === "skipped")) return;
  if (!s) {
    s = { name, startedAt: ctx.nowIso() };
    rec.steps.push(s);
  } else {
    s.startedAt = ctx.nowIso();
    delete s.outcome;
    delete s.message;
    delete s.finishedAt;
  }
  await subject.history.save(rec);
  ctx.hit(`before:${name}`);
  let skipped: string | undefined | void;
  const warned = rec.warnings?.length ?? 0;
  const logWarnings = () => {
    for (const w of rec.warnings?.slice(warned) ?? []) ctx.log(`${subject.secret}: rotation ${rec.id}: warning: ${w}`);
  };
  try {
    skipped = await act();
    logWarnings();
  } catch (e) {
    logWarnings();
    const msg = scrub(errorMessage(e), st.secrets);
    if (e instanceof RolloutHalted) {
      // `on_failure: stop`: the step stays open; the next run resumes the rollout at the halted wave.
      s.message = msg;
      await subject.history.save(rec);
      throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${msg}`, rec.id, {
        hint: "the instances of earlier waves keep the new credential (not yet current); fix the failed instance and run again to resume at that wave, or run `dsops rotation rollback` to put the old credential back everywhere",
      });
    }
    s.outcome = "failed";
    s.message = msg;
    s.finishedAt = ctx.nowIso();
    if (name === "generate" || name === "apply" || name === "stage" || name === "verify") {
      rec.error = msg;
      await subject.history.save(rec);
      throw new StepFailure(msg);
    }
    rec.error = msg;
    await subject.history.save(rec);
    throw new RotationError(`${subject.secret}: rotation ${rec.id}: step ${name} failed: ${msg}`, rec.id, {
      hint: "the next run of the same secret resumes it",
    });
  }
  ctx.hit(`after:${name}`);
  s.outcome = skipped ? "skipped" : "ok";
  if (skipped) s.message = skipped;
  s.finishedAt = ctx.nowIso();
  await subject.history.save(rec);
}

export async function verifyWithRetries(ctx: EngineContext, st: RunState, cred: Credential, target: Target = st.subject.target): Promise<void> {
  const v = st.subject.policy.verification;
  const retries = v?.retries ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await (target.verify as NonNullable<Target["verify"]>).call(target, cred, {
        ...(v?.query ? { query: v.query } : {}),
        ...(v?.timeout_ms ? { timeoutMs: v.timeout_ms } : {}),
      });
      return;
    } catch (e) {
      if (!(e instanceof VerificationError) || attempt >= retries) throw e;
      await ctx.clock.sleep(Math.min(1000 * 2 ** attempt, 10000));
    }
  }
}

export async function readStage(subject: Subject, stage: "current" | "previous"): Promise<{ value: Secret; versionId: string } | undefined> {
  try {
    const v = await subject.store.get({ key: subject.ref.key, version: stage });
    return { value: v.value, versionId: v.versionId };
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

export async function readPending(st: RunState): Promise<Credential> {
  const v = await st.subject.store.get({ key: st.subject.ref.key, version: st.rec.newVersionId as string });
  const cred = st.strategy.shape.decode(v.value, st.subject.path);
  st.secrets.push(cred.secret);
  return cred;
}

export function pendingOf(st: RunState): Credential {
  if (!st.pending) throw new DsopsError(`rotation ${st.rec.id}: no pending credential (internal)`);
  return st.pending;
}

/** Put one target back to the credential stored as current (a skip reason, or undefined). */
export async function restoreOn(st: RunState, target: Target): Promise<string | undefined> {
  const { rec, subject, plan } = st;
  if (plan.apply === "create") {
    const pending = st.pending ?? (rec.newVersionId ? await readPending(st).catch(() => undefined) : undefined);
    if (!pending && !st.pending && target.list && target.revoke) {
      // create's answer was lost (a timeout): what it made is found by listing (a target that names its own credentials: access keys, created users).
      const made = await revokeMadeByRun(st, target);
      return made.length ? undefined : "no new credential to revoke";
    }
    if (!pending) return "no new credential to revoke";
    if (target.revoke) await target.revoke(pending);
    return undefined;
  }
  if (plan.old && plan.old.principal === plan.principal) {
    await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, plan.old);
    return undefined;
  }
  // alternating-users: the changed user was the inactive one; give it back its previous stored credential if it had one.
  const prev = await readStage(subject, "previous");
  const prevCred = prev ? st.strategy.shape.decode(prev.value, subject.path) : undefined;
  if (prevCred && prevCred.principal === plan.principal) {
    st.secrets.push(prevCred.secret);
    await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, prevCred);
    return undefined;
  }
  if (target.revoke) {
    await target.revoke({ principal: plan.principal, secret: new Secret("") });
    return `"${plan.principal}" had no stored credential; its login was disabled`;
  }
  return `"${plan.principal}" had no stored credential to restore`;
}

/**
 * A create-type target that lists a principal's credentials: revoke those this rotation made
 * (listed now, but neither listed before its first `create` — `rec.listedBeforeCreate`, saved
 * before that call — nor the stored one), and leave every other credential alone with a
 * warning naming its id: a key or role an administrator made by hand is never revoked. With no
 * list saved, `create` was never called by this rotation: nothing is revoked. Returns the ids revoked.
 */
export async function revokeMadeByRun(st: RunState, target: Target, listed?: string[]): Promise<string[]> {
  const { rec, plan } = st;
  const ids = listed ?? (await (target.list as NonNullable<Target["list"]>).call(target, plan.principal));
  const before = rec.listedBeforeCreate ? new Set(rec.listedBeforeCreate) : undefined;
  const known = new Set([plan.old?.principal, rec.newPrincipal].filter((x): x is string => !!x));
  const made = before ? ids.filter((id) => !known.has(id) && !before.has(id)) : [];
  for (const id of made) await (target.revoke as NonNullable<Target["revoke"]>).call(target, { principal: id, secret: new Secret("") });
  for (const id of ids) if (!known.has(id) && !made.includes(id)) warnRun(st, `credential ${id} of "${plan.principal}" at service "${target.name}" was not made by rotation ${rec.id} (it existed before it, or is not stored): left as it is`);
  return made;
}

/** Record a warning on the run (once); `step` logs it. */
export function warnRun(st: RunState, message: string): void {
  if (st.rec.warnings?.includes(message)) return;
  st.rec.warnings = [...(st.rec.warnings ?? []), message];
}

/**
 * After a run ended in an unhandled error: when the target may hold the new credential of a
 * principal changed in place (`inPlace`) while the store's current version is still the old
 * one, `restore` gives it back the credential stored as current. Says what was left how.
 */
export async function putCurrentBack(ctx: EngineContext, st: RunState, inPlace: boolean, restore: () => Promise<unknown>): Promise<string> {
  const { rec, subject } = st;
  const ok = (n: StepName) => rec.steps.some((x) => x.name === n && x.outcome === "ok");
  const service = `service "${subject.target.name}"`;
  if (!rec.steps.some((x) => x.name === "apply")) return `nothing was changed at ${service}`;
  if (st.promoted || ok("promote")) return `version ${rec.newVersionId} (verified) is current`;
  if (ok("restore")) return `the credential stored as current was put back at ${service}`;
  if (!inPlace) return `the credential stored as current was not changed at ${service}`;
  let current: string | undefined | null;
  try {
    current = (await subject.store.stagesOf(subject.ref.key)).current;
  } catch {
    current = null;
  }
  if (current === null) return `the store could not be read to tell whether version ${rec.newVersionId} became current; "${st.plan.principal}" may hold that version's password`;
  if (current === rec.newVersionId) return `version ${rec.newVersionId} (verified) is current`;
  let note: string;
  try {
    await restore();
    note = `the password of "${st.plan.principal}" stored as current (version ${current}) was put back at ${service}, so it is the one the target accepts`;
  } catch (e2) {
    note = `putting the password stored as current back at ${service} failed too (${scrub(errorMessage(e2), st.secrets)}): "${st.plan.principal}" may hold version ${rec.newVersionId}'s password until the next run finishes`;
  }
  ctx.log(`${subject.secret}: ${rec.kind === "rollback" ? "rollback" : "rotation"} ${rec.id}: ${note}`);
  return note;
}

/** The error a run that did not finish throws: what happened, what was left how, and the command that finishes it. */
export function unfinishedError(st: RunState, e: unknown, note: string | undefined, what: string, again: string): unknown {
  const { rec, subject } = st;
  // Bugs (and the crash tests' simulated crashes) surface as they are; so does a run that recorded its end.
  if (!(e instanceof DsopsError) || e instanceof RotationInProgressError || (e instanceof RotationError && rec.status !== "running")) return e;
  const msg = e instanceof RotationError ? e.message : `${subject.secret}: ${what} did not finish: ${scrub(errorMessage(e), st.secrets)}`;
  const disk = e instanceof HistoryWriteError || /ENOSPC|EDQUOT|EROFS/.test(errorMessage(e)) ? "free space on that disk (or make it writable), then " : "";
  return new RotationError(`${msg}${note ? `; ${note}` : ""}`, rec.id, { hint: `${disk}run \`${again}\` again: it finishes ${what}`, cause: e });
}
