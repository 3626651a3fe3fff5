import type { RotationStrategyName, VariableRotation } from "../settings";
import { DsopsError } from "../../core/errors";
import { alternatingUsers } from "./alternating-users";
import { singleUserFor } from "./single-user";
import { twoSecret } from "./two-secret";
import { pluginStrategy } from "./plugins";
import type { BaseStrategyName, PlanContext, RotationPlan, Strategy } from "./types";

export type { BaseStrategyName, PlanContext, RotationPlan, Strategy } from "./types";
export { durationMs } from "./two-secret";

/** Every strategy name maps to its shape; exhaustive. */
const shapes: Record<BaseStrategyName, (policy: VariableRotation) => Strategy> = {
  "single-user": (p) => singleUserFor(p.user ?? ""),
  "alternating-users": () => alternatingUsers,
  "two-secret": () => twoSecret,
};

/** A strategy as run: its shape, and the mode (`immediate`, `emergency`) over it. */
export interface ResolvedStrategy {
  /** What the user asked for (a built-in name or a plugin strategy's). */
  readonly name: RotationStrategyName | string;
  readonly shape: Strategy;
  /** `emergency`: reason required, old credential revoked at once, grace periods cut short. */
  readonly emergency: boolean;
  /** `immediate` or `emergency`: no grace period; the old credential is revoked at once where it differs from the new one. */
  readonly immediate: boolean;
  plan(ctx: PlanContext): RotationPlan;
}

/**
 * `immediate` and `emergency` keep the value shape of the variable: the configured strategy
 * when it is a shape (a built-in one or a plugin's), else alternating-users when `users` is
 * set, else single-user.
 */
export function baseShapeOf(policy: VariableRotation): string {
  const s = policy.strategy as string;
  if (s === "single-user" || s === "alternating-users" || s === "two-secret" || pluginStrategy(s)) return s;
  return policy.users ? "alternating-users" : "single-user";
}

/** The shape of this name: a built-in one, or a loaded plugin's. */
function shapeOf(base: string, policy: VariableRotation): Strategy {
  if (Object.hasOwn(shapes, base)) return shapes[base as BaseStrategyName](policy);
  const p = pluginStrategy(base);
  if (!p)
    throw new DsopsError(`strategy "${base}" is not a built-in strategy and no loaded plugin adds it`, {
      hint: "list the plugin that adds it under plugins: in dsops.yaml (or dsops:plugins for a Pulumi program)",
    });
  return p.shape;
}

export function resolveStrategy(policy: VariableRotation, requested?: RotationStrategyName | string): ResolvedStrategy {
  const name = requested ?? policy.strategy;
  const base = name === "immediate" || name === "emergency" ? baseShapeOf(policy) : name;
  if (base !== baseShapeOf(policy) && requested)
    throw new DsopsError(`--strategy ${requested}: the stored value has the ${baseShapeOf(policy)} shape; change rotation.strategy in dsops.yaml to switch shapes`);
  const shape = shapeOf(base, policy);
  const immediate = name === "immediate" || name === "emergency";
  return {
    name,
    shape,
    emergency: name === "emergency",
    immediate,
    plan(ctx) {
      const p = shape.plan(ctx);
      if (!immediate) return p;
      // Revoke at once what the new credential does not replace in place.
      const replacesInPlace = p.apply === "set" && p.old?.principal === p.principal;
      return { ...p, retire: replacesInPlace || !p.old ? "none" : "now", graceMs: 0 };
    },
  };
}
