import { ConfigError, DsopsError, errorMessage } from "../../core/errors";
import { scrub } from "../../core/secret";
import { parseStoreUri } from "../../engine/refs";
import { RolloutHalted, newProgress, planWaves, rolloutInstances, waveName, type RolloutProgress } from "../rollout/plan";
import type { RotationPlan } from "../strategies/index";
import type { Target } from "../targets/types";
import type { EngineContext, RunState } from "./context";
import { waveHealth } from "./health-gate";
import { pendingOf, restoreOn, verifyWithRetries } from "./step";
import type { Subject } from "./wiring";

/**
 * Gradual rollout (`rotation.rollout`, ../rollout): the instances and their waves, checked
 * before anything changes; the apply step wave by wave with health checks between waves; the
 * rollback of every instance that got the new credential.
 */

/** `rotation.rollout`: the instances (listed or discovered) and the waves, checked before anything changes. */
export async function planRollout(ctx: EngineContext, subject: Subject, plan: RotationPlan, strategy?: "all"): Promise<RolloutProgress | undefined> {
  const r = subject.policy.rollout;
  if (!r) return undefined;
  const path = `${subject.path}.rollout`;
  if (plan.apply !== "set")
    throw new DsopsError(`${path}: strategy ${subject.policy.strategy} mints a credential per target; a rollout applies one credential to many instances (use single-user or alternating-users)`);
  if (!ctx.config.raw.services[subject.policy.service]) throw new ConfigError(`${path}: service "${subject.policy.service}" is not in services: (a rollout builds its instances from that entry)`);
  const instances = await rolloutInstances(r, path, async (ref) => (await ctx.resolver.resolveRef(parseStoreUri(ref))).value, { configDir: ctx.config.dir, env: ctx.env ?? process.env });
  const settings = strategy ? { ...r, strategy } : r;
  const progress = newProgress(settings, instances, strategy ? [{ label: "all", instances: instances.map((i) => i.name) }] : planWaves(settings, instances, path));
  // Build each instance's target now: a wrong setting is an error before any change.
  for (const i of instances) {
    const t = ctx.wiring.instanceTarget(subject, progress, i.name);
    if (!t.setSecret) throw new DsopsError(`${path}: instance "${i.name}" (${t.type}) cannot set a secret`);
  }
  return progress;
}

/** `Target.prepare` of the target (or of each rollout instance): refuse before anything changes. */
export async function prepareTargets(ctx: EngineContext, subject: Subject, rollout: RolloutProgress | undefined): Promise<void> {
  const targets = rollout ? rollout.instances.map((i) => ctx.wiring.instanceTarget(subject, rollout, i.name)) : [subject.target];
  for (const t of targets) await t.prepare?.();
}

/**
 * The apply step of a rollout: wave by wave, each instance gets the new credential and logs in
 * with it; between waves the health checks run (`rollout.monitor`). Progress is saved before
 * each instance's apply and after each wave, so a resumed run starts at the first unfinished
 * wave (instances of it already verified are not touched again). A failure follows
 * `on_failure`: `rollback_all` fails the step (the engine rolls every applied instance back),
 * `continue` puts the failed instances back and goes on, `stop` puts them back and halts.
 */
export async function rolloutApply(ctx: EngineContext, st: RunState, p: RolloutProgress): Promise<string | undefined> {
  const { rec, subject } = st;
  const pending = pendingOf(st);
  const failedNames = () => new Set(p.failed.map((f) => f.instance));
  if (p.halted) {
    ctx.log(`${subject.secret}: rotation ${rec.id}: resuming the rollout halted at ${waveName(p, p.halted.wave - 1)}`);
    // The instances that failed there are tried again.
    p.failed = p.failed.filter((f) => f.wave !== p.halted?.wave);
    delete p.halted;
    await subject.history.save(rec);
  }
  for (let w = p.wave; w < p.waves.length; w++) {
    const wave = p.waves[w];
    ctx.hit(`before:wave:${w + 1}`);
    ctx.log(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: ${wave.instances.join(", ")}`);
    let failures: Array<{ instance: string; error: string }> = [];
    for (const name of wave.instances) {
      if (p.verified.includes(name) || failedNames().has(name)) continue;
      const real = ctx.wiring.instanceTarget(subject, p, name);
      const target = subject.chaosInstance ? subject.chaosInstance(real, w + 1, name) : real;
      if (!p.applied.includes(name)) p.applied.push(name);
      await subject.history.save(rec); // progress before the apply
      ctx.hit(`before:instance:${name}`);
      try {
        await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, pending);
        if (target.verify) await verifyWithRetries(ctx, st, pending, target);
      } catch (e) {
        failures.push({ instance: name, error: scrub(errorMessage(e), st.secrets) });
        ctx.log(`${subject.secret}: rotation ${rec.id}: instance ${name} failed`);
        if (p.onFailure !== "continue") break;
        continue;
      }
      p.verified.push(name);
      await subject.history.save(rec);
      ctx.hit(`after:instance:${name}`);
      ctx.log(`${subject.secret}: rotation ${rec.id}: instance ${name}: new credential applied and verified`);
    }
    if (!failures.length && w < p.waves.length - 1) {
      const healthy = wave.instances.filter((n) => p.verified.includes(n));
      const why = healthy.length ? await waveHealth(ctx, st, p, w, healthy) : undefined;
      if (why) failures = healthy.map((instance) => ({ instance, error: `health checks after ${waveName(p, w)} failed: ${why}` }));
    }
    if (failures.length) {
      const summary = failures.map((f) => `${f.instance}: ${f.error}`).join("; ");
      if (p.onFailure === "rollback_all") throw new Error(`rollout ${waveName(p, w)} failed: ${summary}`);
      // continue / stop: the failed instances go back to the old credential.
      for (const f of failures) {
        try {
          await restoreOn(st, ctx.wiring.instanceTarget(subject, p, f.instance));
        } catch (e) {
          f.error += `; putting the old credential back failed too: ${scrub(errorMessage(e), st.secrets)}`;
        }
        p.verified = p.verified.filter((n) => n !== f.instance);
        p.failed.push({ instance: f.instance, wave: w + 1, error: f.error });
      }
      if (p.onFailure === "stop") {
        p.halted = { wave: w + 1, error: summary, at: ctx.nowIso() };
        rec.error = `rollout halted at ${waveName(p, w)}: ${summary}`;
        await subject.history.save(rec);
        throw new RolloutHalted(rec.error);
      }
      ctx.log(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: ${failures.length} instance(s) left on the old credential; continuing`);
    }
    p.wave = w + 1;
    await subject.history.save(rec);
    ctx.hit(`after:wave:${w + 1}`);
  }
  if (!p.verified.length) throw new Error(`rollout: no instance took the new credential: ${p.failed.map((f) => `${f.instance}: ${f.error}`).join("; ")}`);
  if (p.failed.length) rec.error = `rollout: ${p.failed.length} instance(s) left on the old credential: ${p.failed.map((f) => `${f.instance} (${f.error})`).join("; ")}`;
  return undefined;
}

/** Rollback of a rollout: every instance that may hold the new credential gets the old one back (progress saved per instance). */
export async function rolloutRestore(ctx: EngineContext, st: RunState, p: RolloutProgress): Promise<string | undefined> {
  const { rec, subject } = st;
  const todo = p.applied.filter((n) => !p.restored.includes(n));
  if (!p.applied.length) return "nothing was applied";
  const errors: string[] = [];
  for (const n of todo) {
    try {
      await restoreOn(st, ctx.wiring.instanceTarget(subject, p, n));
      p.restored.push(n);
      await subject.history.save(rec);
      ctx.log(`${subject.secret}: rotation ${rec.id}: instance ${n}: old credential put back`);
    } catch (e) {
      errors.push(`${n}: ${scrub(errorMessage(e), st.secrets)}`);
    }
  }
  if (errors.length) throw new Error(`putting the old credential back failed on ${errors.length} instance(s): ${errors.join("; ")}`);
  return undefined;
}
