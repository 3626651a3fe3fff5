import * as z from "zod";
import { durationSchema } from "../core/duration";
import { monitorSchema } from "./monitor";
import { rolloutSchema } from "./rollout/settings";
import { suggest } from "../core/suggest";
import { pluginStrategyNames } from "./strategies/names";

/**
 * A variable's `rotation:` block (zod only), the rotation feature's part of dsops.yaml.
 * provider/compose/config-schema.ts lays the ops' keys (`notifications`, `health`) into it and
 * the block into the engine's variable; the ops add their keys' types to `RotationSections`.
 */

/** Rotation strategies (see provider/rotation/strategies). */
export const rotationStrategies = ["single-user", "alternating-users", "two-secret", "immediate", "emergency"] as const;
export type RotationStrategyName = (typeof rotationStrategies)[number];

/**
 * dsops's strategy names that mean one of ours: `random` (a generated random value set on the
 * one user) is single-user; `overlap` (old and new credential both valid for a window) is
 * two-secret, whose `grace_period` is that window; `two-key` (dsops's other name of two-secret)
 * is two-secret. Records and status show our name.
 */
export const strategyAliases: Readonly<Record<string, RotationStrategyName>> = { random: "single-user", overlap: "two-secret", "two-key": "two-secret" };

/** Is `name` a built-in strategy or one a loaded plugin added? */
export function isKnownStrategy(name: string): boolean {
  return (rotationStrategies as readonly string[]).includes(name) || pluginStrategyNames().includes(name);
}

/** Why `name` is not a strategy: the built-in and plugin strategies, and the closest one. */
export function unknownStrategyMessage(name: string): string {
  const plugins = pluginStrategyNames();
  const hint = suggest(name, [...rotationStrategies, ...Object.keys(strategyAliases), ...plugins]);
  return (
    `Invalid option: unknown strategy "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}: built-in strategies are ${rotationStrategies.join(", ")}` +
    (plugins.length ? `; plugin strategies: ${plugins.join(", ")}` : "; no plugin strategies are loaded (plugins: in dsops.yaml adds them)")
  );
}

/**
 * A strategy name: a built-in one (or a dsops alias of one), or one a plugin loaded before the
 * file is checked added (`plugins:`, `registerPlugin`).
 */
export const strategyNameSchema = z.preprocess(
  (v) => (typeof v === "string" && Object.hasOwn(strategyAliases, v) ? strategyAliases[v] : v),
  z.string().superRefine((s, ctx) => {
    if (!isKnownStrategy(s)) ctx.addIssue({ code: "custom", message: unknownStrategyMessage(s) });
  }),
);

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

/** How an approver proves who they are (provider/rotation/approval-identity.ts). */
export const approvalIdentities = ["os", "git", "token"] as const;

/**
 * `rotation.approval`: a due rotation waits in `pending approval` until `required` approvers
 * (other than the requester) granted it; a request nobody decides expires after `expires`.
 */
export const approvalSchema = z.strictObject({
  /** How many distinct approvers must grant it. */
  required: z.number().int().min(1).max(10).default(1),
  /** Who may approve (OS user names, git emails or token subjects; absent: anyone but the requester). */
  approvers: z.array(z.string().min(1)).min(1).optional(),
  /** How long a request (and a grant not used yet) stays valid. */
  expires: durationSchema.default("24h"),
  /** Where the approver's identity comes from: the OS user (default), `git config user.email`, or a signed token. */
  identity: z.enum(approvalIdentities).default("os"),
  /** identity token: the HMAC key, as `store://…` or `env:NAME` (never the key itself). */
  token_key: z
    .string()
    .regex(/^(store:\/\/|env:)/, "a store:// reference or env:NAME, never the key itself")
    .optional(),
});
export type ApprovalPolicy = z.infer<typeof approvalSchema>;

/** The rotation's own keys before those of the ops (in the order dsops.yaml documents them). */
export const rotationShapeHead = {
  /** The target (`services:` entry) whose credential this secret is. */
  service: z.string(),
  /** A built-in strategy (`rotationStrategies`) or a loaded plugin's. */
  strategy: strategyNameSchema.default("single-user"),
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
  /** dsops's `ttl`: a rotation is due this long after the last one (`30d`); with `schedule`, the earlier of the two. */
  ttl: durationSchema.optional(),
  /** Maintenance windows `dsops rotation run --due` rotates in (none: any time), each with its blackouts. */
  windows: z
    .array(
      z.strictObject({
        schedule: z.union([z.string(), z.array(z.string())]),
        duration: z.string(),
        timezone: z.string().optional(),
        blackouts: z.array(z.strictObject({ start: z.string(), end: z.string(), reason: z.string() })).optional(),
        enabled: z.boolean().optional(),
      }),
    )
    .optional(),
  /** emergency: a reason is required on the command line; a default can sit here. */
  reason: z.string().optional(),
  history: rotationHistorySchema.optional(),
  /** Rotations due by schedule wait for approval (`dsops rotation approve`). */
  approval: approvalSchema.optional(),
};

/** The rotation's own keys after those of the ops. */
export const rotationShapeTail = {
  /** How long and how often health checks run after a rotation, and how many consecutive failures roll back. */
  monitor: monitorSchema.optional(),
  /** Gradual rollout to many instances of the service: waves (canary, percentages), groups, failure policy. */
  rollout: rolloutSchema.optional(),
  /** dsops policy fields, accepted so existing files load; not acted on yet. */
  cutover: z.looseObject({}).optional(),
  constraints: z.looseObject({}).optional(),
};

/** The rotation block with the rotation's keys alone (no op's). */
export const rotationOnlySchema = z.strictObject({ ...rotationShapeHead, ...rotationShapeTail });

/** Keys of a rotation block the ops add (`notifications`, `health`), each declared next to its schema. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface RotationSections {}

/** The rotation block of a variable (`envs.<env>.<VAR>.rotation`) as parsed. */
export type VariableRotation = z.infer<typeof rotationOnlySchema> & RotationSections;

declare module "../engine/config/schema" {
  interface VariableSections {
    /** How the variable's secret is rotated. */
    rotation?: VariableRotation;
  }
}
