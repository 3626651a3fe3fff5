import * as z from "zod";
import { durationSchema } from "../core/duration";
import { policiesSchema } from "../engine/config/schema";

/**
 * dsops's `policies:` keys, on top of the engine's own (`allowed_store_types`,
 * `blocked_store_types`, `max_secrets`, `output`). Zod only: provider/compose/config-schema.ts
 * lays this schema over the engine's `policies:`; provider/guard/policy.ts enforces it.
 */

/** Rules a value must meet (`secrets set`, and what a rotation would write). */
export const secretComplexitySchema = z.strictObject({
  min_length: z.number().int().min(1).optional(),
  max_length: z.number().int().min(1).optional(),
  require_upper: z.boolean().optional(),
  require_lower: z.boolean().optional(),
  require_numbers: z.boolean().optional(),
  require_special: z.boolean().optional(),
});

export const outputRestrictionsSchema = z.strictObject({
  /** gitignore-style patterns, relative to dsops.yaml's folder: an output must match one. */
  allowed_paths: z.array(z.string()).optional(),
  /** gitignore-style patterns: an output matching one is refused (wins over allowed_paths). */
  blocked_paths: z.array(z.string()).optional(),
  /** The output must be ignored by git (`git check-ignore`). */
  require_gitignore: z.boolean().optional(),
  /** `render --ttl` at most this long, and required when set. */
  max_ttl: durationSchema.optional(),
});

export const auditLoggingSchema = z.strictObject({
  enabled: z.boolean().optional(),
  log_path: z.string().optional(),
  log_level: z.enum(["debug", "info", "warn", "error"]).optional(),
  /** Accepted by the schema only to be refused with a reason by the check. */
  include_values: z.boolean().optional(),
});

/** What an env may change (`environment_rules.<env>`): the rules about stores and values. */
const ruleShape = {
  allowed_providers: z.array(z.string()).optional(),
  blocked_providers: z.array(z.string()).optional(),
  require_encryption: z.boolean().optional(),
  secret_complexity: secretComplexitySchema.optional(),
  forbidden_patterns: z.array(z.string()).optional(),
  required_patterns: z.array(z.string()).optional(),
  output_restrictions: outputRestrictionsSchema.optional(),
};

export const environmentRuleSchema = z.strictObject(ruleShape);

export const policySettingsSchema = policiesSchema.extend({
  ...ruleShape,
  environment_rules: z.record(z.string(), environmentRuleSchema).optional(),
  audit_logging: auditLoggingSchema.optional(),
});

export type PolicySettings = z.infer<typeof policySettingsSchema>;
export type EnvironmentRule = z.infer<typeof environmentRuleSchema>;

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** `policies:` with dsops's keys (provider/guard/policy-settings.ts). */
    policies?: PolicySettings;
  }
}
