import { z } from "zod";
import { durationSchema } from "../../core/duration";
import { healthCheckSchema, monitorSchema } from "../../health/settings";
import { notificationsSchema as notifySettingsSchema, variableNotificationsSchema } from "../../notify/settings";
import { rolloutSchema } from "../../rotation/rollout/settings";

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

/** Rotation strategies (see provider/rotation/strategies). */
export const rotationStrategies = ["single-user", "alternating-users", "two-secret", "immediate", "emergency"] as const;
export type RotationStrategyName = (typeof rotationStrategies)[number];

/** Formats of generated values. */
export const generatorFormats = ["password", "alphanumeric", "hex", "base64", "uuid"] as const;

/** How new values are generated (provider/rotation/generator.ts). */
export const generatorSchema = z.strictObject({
  /** Characters of the value (ignored by `uuid`). */
  length: z.number().int().min(8).max(4096).default(32),
  format: z.enum(generatorFormats).default("password"),
  /** Minimum count of each class (`password` and `alphanumeric` formats); 0 leaves a class out. */
  lower: z.number().int().min(0).default(1),
  upper: z.number().int().min(0).default(1),
  digits: z.number().int().min(0).default(1),
  symbols: z.number().int().min(0).default(1),
  /** The symbol alphabet of the `password` format. */
  symbol_set: z.string().min(1).default("!#%&()*+,-./:;<=>?@[]^_{|}~"),
  /** Characters never used. */
  exclude: z.string().default(""),
});
export type GeneratorPolicy = z.infer<typeof generatorSchema>;

/** A duration (the one grammar of provider/core/duration). */
export { durationSchema };

/** Where rotation records and locks are kept. Default: a JSON-lines file next to the file store. */
export const rotationHistorySchema = z.union([
  z.strictObject({ type: z.literal("file"), path: z.string().optional() }),
  z.strictObject({
    type: z.literal("postgres"),
    /** A `postgresql` service whose host, port, database and admin credential reach the history database. */
    service: z.string(),
    table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default("dsops_rotation_history"),
  }),
]);

/** The rotation block of a variable (`envs.<env>.<VAR>.rotation`). */
export const variableRotationSchema = z.strictObject({
  /** The target (`services:` entry) whose credential this secret is. */
  service: z.string(),
  strategy: z.enum(rotationStrategies).default("single-user"),
  /** single-user / immediate / emergency: the user (role, account) whose secret is rotated. */
  user: z.string().optional(),
  /** alternating-users: the two users; the stored value names the current one. */
  users: z.tuple([z.string(), z.string()]).optional(),
  generator: generatorSchema.optional(),
  verification: z
    .strictObject({
      /** A query run as the rotated user after `SELECT 1` (SQL targets). */
      query: z.string().optional(),
      /** Further attempts after a failed verification before rolling back. */
      retries: z.number().int().min(0).max(20).default(0),
      timeout_ms: z.number().int().positive().default(10000),
    })
    .optional(),
  /** two-secret: how long the old credential stays valid after the new one is current. */
  grace_period: durationSchema.optional(),
  /** When rotations are due (cron); recorded, acted on by the scheduler. */
  schedule: z.string().optional(),
  /** emergency: a reason is required on the command line; a default can sit here. */
  reason: z.string().optional(),
  history: rotationHistorySchema.optional(),
  /** Which rotation events this variable sends, and to which channels (see `notifications:`). */
  notifications: variableNotificationsSchema.optional(),
  /** Health checks run once the new credential is current; failures roll the rotation back. */
  health: z.array(healthCheckSchema).optional(),
  /** How long and how often health checks run after a rotation, and how many consecutive failures roll back. */
  monitor: monitorSchema.optional(),
  /** Gradual rollout to many instances of the service: waves (canary, percentages), groups, failure policy. */
  rollout: rolloutSchema.optional(),
  /** dsops policy fields, accepted so existing files load; not acted on yet. */
  cutover: z.looseObject({}).optional(),
  constraints: z.looseObject({}).optional(),
});
export type VariableRotation = z.infer<typeof variableRotationSchema>;

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

/** Notification channels (provider/notify/settings.ts). */
export const notificationsSchema = notifySettingsSchema;

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
