import * as z from "zod";
import { composeConfigSchema, type RawConfig } from "../engine/config/schema";
import type { ConfigRules } from "../engine/config/load";
import { policyConfigCheck } from "../guard/policy";
import { policySettingsSchema } from "../guard/policy-settings";
import { healthCheckSchema } from "../health/settings";
import { metricsSchema } from "../metrics/settings";
import { notificationsSchema, variableNotificationsSchema } from "../notify/settings";
import { accessConfigCheck, variableAccessSchema } from "../rotation/access-settings";
import { chaosConfigCheck, chaosSchema } from "../rotation/chaos-settings";
import { complianceSchema } from "../report/settings";
import { rotationConfigCheck } from "../rotation/config-check";
import { chainConfigCheck } from "../rotation/chain/check";
import { chainsSchema } from "../rotation/chain/settings";
import { rotationShapeHead, rotationShapeTail, strategyNameSchema } from "../rotation/settings";
import { dsopsRotationCheck, dsopsRotationDefaultsSchema } from "./dsops-rotation";
import { preparePlugins } from "./plugins";

/**
 * The dsops.yaml schema, composed: the one module that knows every feature's part of the file.
 * The engine gives its sections (stores, variables, transforms, templates, policies, resolver),
 * each feature its own (zod only, from its settings.ts: no client library loads), and the
 * features' checks run after the engine's. Key order is the documented one, so "expected one
 * of" lists read the same everywhere.
 */

/**
 * dsops's forms leave `service` (the variable's `service:` names it) and `strategy` (the
 * service's `rotation.strategy` gives it) out of a variable's block: both are optional here, and
 * the dsops check (./dsops-rotation.ts, run first) fills them in or reports the block, so the
 * checks after it see them set (the types say so).
 */
const dsopsOptionalHead = {
  service: rotationShapeHead.service.optional() as unknown as typeof rotationShapeHead.service,
  strategy: strategyNameSchema.optional() as unknown as typeof rotationShapeHead.strategy,
};

/** A variable's `rotation:` block: the rotation's keys with the ops' (`notifications`, `health`) laid in. */
export const variableRotationSchema = z.strictObject({
  ...rotationShapeHead,
  ...dsopsOptionalHead,
  /** Which rotation events this variable sends, and to which channels (see `notifications:`). */
  notifications: variableNotificationsSchema.optional(),
  /** Health checks run once the new credential is current; failures roll the rotation back. */
  health: z.array(healthCheckSchema).optional(),
  ...rotationShapeTail,
});

/** The whole file; it parses to `RawConfig`, the type the features declared (the compiler checks they agree). */
export const configSchema = composeConfigSchema({
  sections: {
    /** `policies:` with dsops's keys (provider/guard/policy-settings.ts); it keeps the engine's place in the file. */
    policies: policySettingsSchema.optional(),
    /** Notification channels (provider/notify/settings.ts). */
    notifications: notificationsSchema.optional(),
    /** Prometheus metrics (provider/metrics/settings.ts). */
    metrics: metricsSchema.optional(),
    /** dsops's top-level `rotation:` block: defaults for every rotated variable (./dsops-rotation.ts). */
    rotation: dsopsRotationDefaultsSchema.optional(),
    /** Plugin packages (or paths) adding store and target types, resolved from the file's folder (./plugins.ts). */
    plugins: z.array(z.string().min(1)).optional(),
    /** Where `dsops chaos` may inject faults into rotations (provider/rotation/chaos-settings.ts). */
    chaos: chaosSchema.optional(),
    /** Multi-environment rotations: stages, soak (provider/rotation/chain/settings.ts). */
    chains: chainsSchema.optional(),
    /** Waivers of the compliance report (provider/report/settings.ts). */
    compliance: complianceSchema.optional(),
  },
  variable: {
    rotation: variableRotationSchema.optional(),
    /** Who may read the value: `breakglass` seals it behind an open break-glass grant (provider/rotation/access-settings.ts). */
    access: variableAccessSchema.optional(),
  },
}) satisfies z.ZodType<RawConfig>;

/** What the composed loader checks with: the schema, then dsops's rotation shapes read as ours, then the rotation check of `services:` and `rotation:` blocks, then the policies' check. */
export const configRules: ConfigRules = { schema: configSchema, checks: [dsopsRotationCheck, rotationConfigCheck, policyConfigCheck, chaosConfigCheck, chainConfigCheck, accessConfigCheck], prepare: preparePlugins };
