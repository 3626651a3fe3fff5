import * as z from "zod";

/**
 * The core of the dsops.yaml schema: what the engine itself reads (stores, variables and their
 * references, transforms, templates, policies, the resolver). These zod schemas are the
 * TypeScript types (`z.infer`). Store entries are checked in a second pass against
 * `storeSettingsSchemas[type]`, so a wrong type gets its own message ("unknown store type … did
 * you mean …").
 *
 * The engine imports no feature. Features own their sections (`notifications:`, `metrics:`, a
 * variable's `rotation:`) and `provider/compose/config-schema.ts` builds the whole file's schema
 * with `composeConfigSchema`. Each feature adds its section's type to `ConfigSections` or
 * `VariableSections` below (declaration merging, next to its zod schema), so `Config.raw` is
 * typed with every section without the engine naming one.
 */

/**
 * A `from:` in any form: `store://…`, dsops's shorthand `<store>:<key>`, `{store, key, version}`,
 * `{store: "store://…"}`, legacy `{provider, key, version}`, and dsops's service reference
 * `{service: "svc://<type>/<instance>"}` (or the string `svc://…`), which names a rotation
 * target, never a value.
 */
export const fromSchema = z.union([
  z.string(),
  z.strictObject({ store: z.string(), key: z.string().optional(), version: z.string().optional() }),
  z.strictObject({ provider: z.string(), key: z.string(), version: z.string().optional() }),
  z.strictObject({ service: z.string() }),
]);

const transformSpec = z.union([z.string(), z.array(z.string())]);

/** The keys of a variable the engine reads; features add theirs after these. */
export const variableShape = {
  literal: z.string().optional(),
  from: fromSchema.optional(),
  transform: transformSpec.optional(),
  optional: z.boolean().optional(),
  description: z.string().optional(),
  /** The rotation target (a `services:` name or `svc://<type>/<instance>`) this secret belongs to; kept and shown by `plan`. */
  service: z.string().optional(),
  /** Free-form notes (owner, ticket, …): kept, shown by `plan --json`, never read by the engine. */
  metadata: z.record(z.string(), z.unknown()).optional(),
};

/** A store entry before its type-specific check. */
export const storeEntrySchema = z.looseObject({ type: z.string() });

/** A rotation target (`services:`); type-specific fields are checked by the composed loader's checks. */
export const serviceSchema = z.looseObject({ type: z.string() });

export const templateSchema = z.strictObject({
  description: z.string().optional(),
  env: z.string().optional(),
  format: z.enum(["dotenv", "json", "yaml", "template"]).optional(),
  template: z.string().optional(),
  template_path: z.string().optional(),
  out: z.string().optional(),
});

/** dsops's list form of `templates:`: `[{name, format, env, out, template_path}]`, read as the map keyed by `name`. */
export const templateListSchema = z.array(z.strictObject({ name: z.string().min(1), ...templateSchema.shape })).transform((list, ctx) => {
  const out: Record<string, z.infer<typeof templateSchema>> = Object.create(null);
  list.forEach(({ name, ...t }, i) => {
    if (Object.hasOwn(out, name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `a second template named "${name}" (names are unique)`, input: name });
    else out[name] = t;
  });
  return out;
});

export type TemplateSpec = z.infer<typeof templateSchema>;

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

export const resolverSchema = z.strictObject({
  /** Store calls in flight at once for one run (default 16). */
  concurrency: z.number().int().min(1).max(1000).default(16),
});

/** What features add to dsops.yaml: top-level sections, and keys of a variable. */
export interface ConfigExtension {
  /** Top-level sections (`notifications:`, `metrics:`), placed after `policies:` and before `resolver:`. */
  readonly sections: Readonly<Record<string, z.ZodType>>;
  /** Keys of a variable (`rotation:`), placed after the engine's own keys. */
  readonly variable: Readonly<Record<string, z.ZodType>>;
}

/** The dsops.yaml schema: the engine's sections with the features' laid in. */
export function composeConfigSchema(ext: ConfigExtension) {
  const variable = z.strictObject({ ...variableShape, ...ext.variable });
  return z.strictObject({
    version: z.union([z.literal(0), z.literal(1)]).default(1),
    secretStores: z.record(z.string(), storeEntrySchema).default({}),
    providers: z.record(z.string(), storeEntrySchema).default({}),
    services: z.record(z.string(), serviceSchema).default({}),
    transforms: z.record(z.string(), transformSpec).default({}),
    envs: z.record(z.string(), z.record(z.string(), variable)).default({}),
    templates: z.union([z.record(z.string(), templateSchema), templateListSchema]).default({}),
    policies: policiesSchema.optional(),
    ...ext.sections,
    resolver: resolverSchema.optional(),
  });
}

/** The engine's sections alone (no feature's). */
export const coreConfigSchema = composeConfigSchema({ sections: {}, variable: {} });

/** Top-level sections features add (each feature declares its own, e.g. `notifications?: NotificationsSettings`). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface ConfigSections {}

/** Keys of a variable features add (e.g. `rotation?: VariableRotation`). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface VariableSections {}

type CoreRaw = z.infer<typeof coreConfigSchema>;
/** A variable with the engine's keys alone. */
export const coreVariableSchema = z.strictObject(variableShape);

/** A variable as parsed: the engine's keys and the features'. */
export type VariableSpec = z.infer<typeof coreVariableSchema> & VariableSections;

/** dsops.yaml as parsed by the composed schema. */
export type RawConfig = Omit<CoreRaw, "envs"> & { envs: Record<string, Record<string, VariableSpec>> } & ConfigSections;

export type FromSpecInput = z.infer<typeof fromSchema>;
