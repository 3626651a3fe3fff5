import type { VariableRotation } from "../settings";
import type { Secret } from "../../core/secret";
import type { Credential, Target, TargetCapability } from "../targets/types";

/** The value shapes: how a credential is stored, and who gets the new one. */
export type BaseStrategyName = "single-user" | "alternating-users" | "two-secret";

/** What one rotation will do, decided before it starts (and recorded). */
export interface RotationPlan {
  /** The principal that gets the new credential. */
  readonly principal: string;
  /** The credential the stored current value stands for (absent on a first rotation). */
  readonly old?: Credential;
  /** `set`: the engine generates the value and the target sets it; `create`: the target mints it. */
  readonly apply: "set" | "create";
  /**
   * The old credential after promotion: `none` (already replaced, or kept working until the
   * next rotation), `now` (revoked at once), `grace` (revoked after `graceMs`).
   */
  readonly retire: "none" | "now" | "grace";
  readonly graceMs?: number;
}

/**
 * A value shape: single-user (the stored value is the password), alternating-users (JSON
 * {"username","password"} naming the current user), two-secret (JSON {"username","password"}
 * where username is the key id). `immediate` and `emergency` are modes over a shape
 * (./index.ts): they change `retire` and the checks, never the stored shape.
 */
export interface Strategy {
  /** A built-in shape's name, or a plugin strategy's (`acme.suffix-user`). */
  readonly name: string;
  /** Capabilities the target must have for this shape. */
  readonly requires: readonly TargetCapability[];
  /** Decide the rotation from the current stored value. Throws DsopsError on a misconfiguration. */
  plan(ctx: PlanContext): RotationPlan;
  /** The stored value of a credential. */
  encode(cred: Credential): Secret;
  /** The credential a stored value stands for; `path` names the variable in errors. */
  decode(value: Secret, path: string): Credential;
}

export interface PlanContext {
  readonly policy: VariableRotation;
  readonly target: Target;
  /** The current stored value, when there is one. */
  readonly current?: Secret;
  /** `envs.<env>.<VAR>.rotation`, for error messages. */
  readonly path: string;
}
