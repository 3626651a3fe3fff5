import type { Clock } from "../../core/clock";
import { DsopsError, StoreError } from "../../core/errors";
import { Secret } from "../../core/secret";
import type { Config } from "../../engine/config/load";
import { chaosRefusal } from "../chaos-settings";
import type { ChaosFault } from "../fault";
import { TargetError } from "../targets/errors";
import type { Credential, Target } from "../targets/types";
import type { Subject } from "./wiring";

/**
 * The chaos faults that are not a kill (../fault.ts `ChaosFault`), laid over one rotation's
 * subject: the real store and target answer every call except the one the fault names. Refused
 * unless the env is a chaos env (`chaos.envs`, never one named like production).
 */
export function withChaos(config: Config, subject: Subject, faults: readonly ChaosFault[], clock: Clock): Subject {
  const acting = faults.filter((f) => f.kind !== "kill-at" && f.kind !== "kill-at-wave");
  if (!acting.length) return subject;
  const refusal = chaosRefusal(config.raw, subject.env);
  if (refusal) throw new DsopsError(`chaos: ${refusal}; nothing was injected`, { hint: "run chaos in a test or staging env listed in chaos.envs of dsops.yaml" });
  if (subject.policy.rollout) return withRolloutChaos(subject, acting, clock);
  for (const f of acting)
    if (f.kind !== "store-write-failure" && f.wave !== undefined)
      throw new DsopsError(`${subject.path}: chaos fault ${f.kind}@wave:${f.wave}: this variable has no rotation.rollout (no waves)`, { hint: `inject ${f.kind} without @wave` });
  let store = subject.store;
  let target = subject.target;
  for (const f of acting) {
    if (f.kind === "store-write-failure") store = failPendingWrite(store, subject);
    else if (f.kind === "target-timeout") target = loseApplyAnswer(target, f.ms, clock);
    else if (f.kind === "verification-failure") {
      if (!target.verify) throw new DsopsError(`${subject.path}: service "${target.name}" (${target.type}) cannot verify a credential: verification-failure cannot be injected`);
      target = failVerification(target);
    }
  }
  return { ...subject, store, target };
}

/** `real` with the given members answered by `members` instead (every other member is the real one's). */
function override<T extends object>(real: T, members: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(real, {
    get(t, p) {
      if (Object.hasOwn(members, p)) return members[p as keyof T];
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

function failPendingWrite(store: Subject["store"], subject: Subject): Subject["store"] {
  return override(store, {
    putPending: async () => {
      throw new StoreError(`store "${subject.ref.store}": writing the new pending version of ${subject.ref.key} failed: injected by dsops chaos (store-write-failure)`);
    },
  });
}

/** The first `setSecret`/`create` (the apply step) reaches the target; its answer is lost: the call fails after `ms` as a timeout. */
function loseApplyAnswer(target: Target, ms: number, clock: Clock): Target {
  let fired = false;
  const lose = async <R>(call: () => Promise<R>): Promise<R> => {
    if (fired) return call();
    fired = true;
    await call();
    await clock.sleep(ms);
    throw new TargetError(`service "${target.name}": no answer within ${ms} ms: injected by dsops chaos (target-timeout; the change was made at the target, its answer lost)`, true);
  };
  const members: Partial<Record<keyof Target, unknown>> = {};
  if (target.setSecret) members.setSecret = (cred: Credential) => lose(() => (target.setSecret as NonNullable<Target["setSecret"]>).call(target, cred));
  if (target.create)
    members.create = (principal: string, value?: Secret, replacing?: Credential) => lose(() => (target.create as NonNullable<Target["create"]>).call(target, principal, value, replacing));
  return override(target, members);
}

/** Every verification logs in with the new credential's secret altered: the real target refuses it. */
function failVerification(target: Target): Target {
  return override(target, {
    verify: (cred: Credential, options?: Parameters<NonNullable<Target["verify"]>>[1]) =>
      (target.verify as NonNullable<Target["verify"]>).call(target, { principal: cred.principal, secret: new Secret(`${cred.secret.reveal()}~chaos`) }, options),
  });
}

/**
 * A gradual rollout (`rotation.rollout`): `store-write-failure` strikes the stage step as without
 * one; `target-timeout` and `verification-failure` strike the instances of one wave (`@wave:<n>`,
 * default 1) in the apply step, where a rollout sets and logs in at each instance: the first
 * instance of that wave makes the change and its answer is lost, or every instance of it refuses
 * the login. The real instance targets answer everything else, the rollback included.
 */
function withRolloutChaos(subject: Subject, faults: readonly ChaosFault[], clock: Clock): Subject {
  let store = subject.store;
  const perWave: Array<{ wave: number; wrap: (t: Target) => Target }> = [];
  let timedOut = false;
  for (const f of faults) {
    if (f.kind === "store-write-failure") store = failPendingWrite(store, subject);
    else if (f.kind === "target-timeout")
      perWave.push({
        wave: f.wave ?? 1,
        // Once: the first instance of the wave (rollback_all then rolls the waves back; continue/stop go on with the others).
        wrap: (t) => {
          if (timedOut) return t;
          timedOut = true;
          return loseApplyAnswer(t, f.ms, clock);
        },
      });
    else if (f.kind === "verification-failure")
      perWave.push({
        wave: f.wave ?? 1,
        wrap: (t) => {
          if (!t.verify) throw new DsopsError(`${subject.path}: service "${t.name}" (${t.type}) cannot verify a credential: verification-failure cannot be injected`);
          return failVerification(t);
        },
      });
  }
  const chaosInstance = (target: Target, wave: number): Target => perWave.filter((x) => x.wave === wave).reduce((t, x) => x.wrap(t), target);
  return { ...subject, store, chaosInstance };
}
