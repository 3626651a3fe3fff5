import { checkPolicy, defaultGeneratorPolicy } from "../generator";
import { waveName } from "../rollout/plan";
import type { ResolvedStrategy } from "../strategies/index";
import type { RotationRecord } from "../types";
import type { RotationResult } from "./api";
import type { EngineContext } from "./context";
import { planRollout, prepareTargets } from "./rollout";
import { readStage } from "./step";
import { recordSubject, type Subject } from "./wiring";

/** A dry run: everything a rotation checks (stores, target, rollout instances), and the steps it would run, in words. Nothing is changed or recorded. */

export async function dryRun(ctx: EngineContext, subject: Subject, strategy: ResolvedStrategy, reason?: string): Promise<RotationResult> {
  const current = await readStage(subject, "current");
  // A first rotation creates the secret; a typo in the key would too, so say so before the checks.
  const missing = current
    ? undefined
    : `${subject.secret} has no current version in store "${subject.ref.store}" (it does not exist yet, or its first rotation never finished): a rotation creates it; check the key if you expected an existing secret`;
  if (missing) ctx.log(`warning: ${missing}`);
  const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(current ? { current: current.value } : {}), path: subject.path });
  if (plan.apply === "set") checkPolicy(subject.policy.generator ?? defaultGeneratorPolicy, subject.target.valueRules);
  const rollout = await planRollout(ctx, subject, plan);
  if (rollout) for (const i of rollout.instances) await ctx.wiring.instanceTarget(subject, rollout, i.name).check?.();
  else await subject.target.check?.();
  await prepareTargets(ctx, subject, rollout);
  const holder = await subject.history.holder(subject.secret);
  const steps = [
    ...(plan.apply === "set"
      ? [`generate: a new value (${subject.policy.generator?.format ?? "password"}, ${subject.policy.generator?.length ?? 32} characters)`, `stage: store it as the pending version of ${subject.secret}`, `apply: set the password of "${plan.principal}" at ${subject.target.name}`]
      : [`apply: create a new credential for "${plan.principal}" at ${subject.target.name}`, `stage: store it as the pending version of ${subject.secret}`]),
    subject.target.verify ? `verify: log in as "${plan.principal}" with the new credential` : "verify: skipped (the target cannot verify)",
    `promote: make it current (version ${current?.versionId ?? "none"} becomes previous)`,
    plan.retire === "none"
      ? `retire: nothing (${plan.old?.principal === plan.principal ? "replaced in place" : plan.old ? `"${plan.old.principal}" keeps working until the next rotation` : "no old credential"})`
      : plan.retire === "now"
        ? `retire: revoke "${plan.old?.principal}" at once`
        : `retire: revoke "${plan.old?.principal}" after ${Math.round((plan.graceMs ?? 0) / 1000)} s`,
  ];
  if (rollout) {
    const at = steps.findIndex((x) => x.startsWith("apply:"));
    steps.splice(
      at,
      1,
      ...rollout.waves.map((w, i) => `apply: ${waveName(rollout, i)}: set the password of "${plan.principal}" on ${w.instances.join(", ")} and log in with it${i < rollout.waves.length - 1 && subject.policy.health?.length ? "; then the health checks" : ""}`),
    );
    const v = steps.findIndex((x) => x.startsWith("verify:"));
    steps[v] = "verify: done on each instance during the rollout";
    steps.push(`on failure: ${rollout.onFailure}`);
  }
  if (holder) steps.unshift(`(a rotation is in progress by ${holder.who}, pid ${holder.pid}: a real run would be refused now)`);
  if (missing) steps.unshift(`(${missing})`);
  const rec: RotationRecord = {
    id: "dry-run",
    kind: "rotate",
    ...recordSubject(subject),
    strategy: strategy.name,
    who: ctx.who,
    ...(reason ? { reason } : {}),
    startedAt: ctx.nowIso(),
    status: "succeeded",
    steps: [],
    ...(current ? { oldVersionId: current.versionId } : {}),
    ...(plan.old ? { oldPrincipal: plan.old.principal } : {}),
    newPrincipal: plan.principal,
  };
  return { record: rec, resumed: false, dryRun: true, plan: steps };
}
