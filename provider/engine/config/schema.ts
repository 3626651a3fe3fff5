import { z } from "zod";

/**
 * The dsops.yaml schema. These zod schemas are the TypeScript types (`z.infer`). Store
 * entries are checked in a second pass against `storeSettingsSchemas[type]`, so a wrong type
 * gets its own message ("unknown store type … did you mean …").
 */

/** A `from:` in any form: `store://…`, `{store, key, version}`, `{store: "store://…"}`, legacy `{provider, key, version}`. */
export const fromSchema = z.union([
  z.string(),
  z.strictObject({ store: z.string(), key: z.string().optional(), version: z.string().optional() }),
  z.strictObject({ provider: z.string(), key: z.string(), version: z.string().optional() }),
]);

const transformSpec = z.union([z.string(), z.array(z.string())]);

/** The rotation block of a variable; its fields are checked by the rotation engine. */
export const variableRotationSchema = z.looseObject({ service: z.string().optional(), strategy: z.string().optional() });

export const variableSchema = z.strictObject({
  literal: z.string().optional(),
  from: fromSchema.optional(),
  transform: transformSpec.optional(),
  optional: z.boolean().optional(),
  description: z.string().optional(),
  rotation: variableRotationSchema.optional(),
});

/** A store entry before its type-specific check. */
export const storeEntrySchema = z.looseObject({ type: z.string() });

/** A rotation target (`services:`); type-specific fields are checked by its target. */
export const serviceSchema = z.looseObject({ type: z.string() });

export const templateSchema = z.strictObject({
  description: z.string().optional(),
  env: z.string().optional(),
  format: z.enum(["dotenv", "json", "yaml", "template"]).optional(),
  template: z.string().optional(),
  template_path: z.string().optional(),
  out: z.string().optional(),
});

export const policiesSchema = z.strictObject({
  allowed_store_types: z.array(z.string()).optional(),
  blocked_store_types: z.array(z.string()).optional(),
  max_secrets: z.number().int().positive().optional(),
  output: z
    .strictObject({
      allowed_paths: z.array(z.string()).optional(),
      denied_paths: z.array(z.string()).optional(),
      require_gitignore: z.boolean().optional(),
    })
    .optional(),
});

/** Notification channels; the notifier of each checks its own fields. */
export const notificationsSchema = z.strictObject({
  slack: z.looseObject({}).optional(),
  email: z.looseObject({}).optional(),
  pagerduty: z.looseObject({}).optional(),
  webhooks: z.array(z.looseObject({})).optional(),
});

export const metricsSchema = z.strictObject({
  prometheus: z
    .strictObject({
      enabled: z.boolean().default(false),
      port: z.number().int().min(1).max(65535).default(9090),
      path: z.string().default("/metrics"),
      textfile: z.string().optional(),
    })
    .optional(),
});

export const resolverSchema = z.strictObject({
  /** Store calls in flight at once for one run (default 16). */
  concurrency: z.number().int().min(1).max(1000).default(16),
});

export const configSchema = z.strictObject({
  version: z.union([z.literal(0), z.literal(1)]).default(1),
  secretStores: z.record(z.string(), storeEntrySchema).default({}),
  providers: z.record(z.string(), storeEntrySchema).default({}),
  services: z.record(z.string(), serviceSchema).default({}),
  transforms: z.record(z.string(), transformSpec).default({}),
  envs: z.record(z.string(), z.record(z.string(), variableSchema)).default({}),
  templates: z.record(z.string(), templateSchema).default({}),
  policies: policiesSchema.optional(),
  notifications: notificationsSchema.optional(),
  metrics: metricsSchema.optional(),
  resolver: resolverSchema.optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type VariableSpec = z.infer<typeof variableSchema>;
export type FromSpecInput = z.infer<typeof fromSchema>;
