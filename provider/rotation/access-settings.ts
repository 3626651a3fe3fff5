import * as z from "zod";
import type { ConfigCheck } from "../engine/config/load";

/**
 * A variable's `access:` rule. `breakglass`: the value is sealed; `dsops get/render/exec`, a
 * SecretReference and an Environment read it only while an open, unexpired break-glass grant
 * (`dsops breakglass open --secret ENV/VAR …`) covers it, and each read is recorded on the grant.
 * `open` (the default): read as usual.
 */
export const variableAccessSchema = z.enum(["open", "breakglass"]);
export type VariableAccess = z.infer<typeof variableAccessSchema>;

declare module "../engine/config/schema" {
  interface VariableSections {
    /** Who may read the value: `open` (default), or `breakglass` (only under an open break-glass grant). */
    access?: VariableAccess;
  }
}

/**
 * `access: breakglass` needs a `rotation:` block: a break-glass grant is opened on a rotated
 * variable, and its close rotates the credential so what was read stops working.
 */
export const accessConfigCheck: ConfigCheck = (raw, { findings }) => {
  for (const [env, vars] of Object.entries(raw.envs))
    for (const [name, spec] of Object.entries(vars))
      if (spec.access === "breakglass" && !spec.rotation)
        findings.error(
          ["envs", env, name, "access"],
          "breakglass needs a rotation: block on the variable (a break-glass grant is opened on a rotated variable, and closing it rotates the credential so what was read stops working)",
        );
  return raw;
};
