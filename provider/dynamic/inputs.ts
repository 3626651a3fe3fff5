import * as z from "zod";
import { healthCheckSchema, monitorSchema } from "../health/settings";
import { variableNotificationsSchema } from "../notify/settings";
import { rolloutSchema } from "../rotation/rollout/settings";
import { approvalSchema } from "../rotation/settings";

/**
 * Inputs of the Pulumi resources and functions, as zod schemas. The dynamic providers check
 * inputs with them, and a test proves schema.json agrees with them.
 */

/** An inline store configuration: the same fields as an entry of `secretStores:`. */
export const inlineStoreSchema = z.looseObject({ type: z.string() });

export const secretReferenceInputsSchema = z
  .strictObject({
    /** A `store://<store>/<key>[#field][?version=v]` reference. */
    ref: z.string().optional(),
    /** A store name from the provider's configuration, or an inline store configuration. */
    store: z.union([z.string(), inlineStoreSchema]).optional(),
    /** Key in the store (with `store`). */
    key: z.string().optional(),
    /** A version id or stage; pins the reference (no drift is reported for a pinned version). */
    version: z.string().optional(),
    /** A transform chain applied to the value. */
    transform: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.ref !== undefined && (v.store !== undefined || v.key !== undefined))
      ctx.addIssue({ code: "custom", message: "give either ref, or store with key, not both", path: ["ref"] });
    if (v.ref === undefined && (v.store === undefined || v.key === undefined))
      ctx.addIssue({ code: "custom", message: v.store === undefined ? "give ref, or store with key" : "store needs a key", path: [v.store === undefined ? "ref" : "key"] });
  });
export type SecretReferenceInputs = z.infer<typeof secretReferenceInputsSchema>;

export const environmentInputsSchema = z
  .strictObject({
    /** Path of a dsops.yaml, relative to the program's folder. */
    configFile: z.string().optional(),
    /** An inline dsops.yaml as an object. */
    config: z.looseObject({}).optional(),
    /** The env to resolve. */
    env: z.string(),
  })
  .superRefine((v, ctx) => {
    if ((v.configFile === undefined) === (v.config === undefined))
      ctx.addIssue({ code: "custom", message: "give exactly one of configFile or config", path: ["configFile"] });
  });
export type EnvironmentInputs = z.infer<typeof environmentInputsSchema>;

/** getComplianceReport's arguments: the configuration (a file or inline), the framework, an env. */
export const complianceReportInputsSchema = z
  .strictObject({
    /** Path of a dsops.yaml, relative to the program's folder (neither this nor `config`: the provider's `dsops:configFile`, the stack's). */
    configFile: z.string().optional(),
    /** An inline dsops.yaml as an object. */
    config: z.looseObject({}).optional(),
    /** Controls of this framework: pci-dss, soc2 or all (default). */
    framework: z.enum(["pci-dss", "soc2", "all"]).default("all"),
    /** Only this env (default: every env; `pulumi` for the stack's policies alone). */
    env: z.string().optional(),
    /**
     * The stack's RotationPolicy resources to report, each as `{name, inputs}` (the resource's
     * name and its inputs; the SDK passes a RotationPolicy as is). With `policies`, the dsops.yaml's
     * variables are reported beside them only when `configFile` or `config` is given.
     */
    policies: z.array(z.strictObject({ name: z.string().min(1), inputs: z.looseObject({ secret: z.string() }) })).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.configFile !== undefined && v.config !== undefined) ctx.addIssue({ code: "custom", message: "give configFile or config, not both", path: ["configFile"] });
  });
export type ComplianceReportInputs = z.infer<typeof complianceReportInputsSchema>;

export const blackoutSchema = z.strictObject({
  /** ISO-8601 instant or date (a date is midnight in the window's zone). */
  start: z.string(),
  /** ISO-8601 instant or date (a date means the end of that day). */
  end: z.string(),
  reason: z.string(),
});

export const maintenanceWindowInputsSchema = z.strictObject({
  /** A 5-field cron expression, or several: when the window opens. */
  schedule: z.union([z.string(), z.array(z.string())]),
  /** How long the window stays open (`4h`, `1h30m`). */
  duration: z.string(),
  /** IANA time zone of the cron expressions (default UTC). */
  timezone: z.string().optional(),
  /** Periods when nothing may rotate even inside the window. */
  blackouts: z.array(blackoutSchema).optional(),
  /** A disabled window never opens (default true). */
  enabled: z.boolean().optional(),
});
export type MaintenanceWindowInputs = z.infer<typeof maintenanceWindowInputsSchema>;

/** The built-in strategies (a plugin strategy's name is accepted too: see `strategy`). */
export const rotationStrategyNames = ["single-user", "alternating-users", "two-secret", "immediate", "emergency"] as const;

export const rotationPolicyInputsSchema = z
  .strictObject({
    /** The rotated secret: a `store://` reference (a SecretReference passes its own). */
    secret: z.string(),
    /** A service of the provider's dsops.yaml by name, or a `services:` entry (type, connection, admin reference, user/users). */
    target: z.union([z.string(), z.looseObject({ type: z.string() })]),
    /** A built-in strategy (`rotationStrategyNames`) or a loaded plugin's (`dsops:plugins`, `plugins:`): the rotation's schema checks the name once plugins are loaded. */
    strategy: z.string().min(1),
    /** single-user: the user whose password is rotated (also accepted inside `target`). */
    user: z.string().optional(),
    /** alternating-users: the two users (also accepted inside `target`). */
    users: z.tuple([z.string(), z.string()]).optional(),
    /** When a rotation is due: `{ every: "30d" }` or `{ cron: "0 3 1 * *", timezone? }`. */
    schedule: z.strictObject({ every: z.string().optional(), cron: z.string().optional(), timezone: z.string().optional() }),
    /** When rotation may run; none means any time. MaintenanceWindow resources pass their settings. */
    windows: z.array(z.looseObject({ schedule: z.union([z.string(), z.array(z.string())]), duration: z.string() })).optional(),
    /** Value generator: length, classes, exclusions, format (as `rotation.generator` in dsops.yaml). */
    generator: z.looseObject({}).optional(),
    /** Verification beyond the target's own login check: `{ query, retries, timeout_ms }`. */
    verify: z.looseObject({}).optional(),
    /** Which rotation events this policy sends, to which channels of the provider's `notifications:` (as `rotation.notifications`). */
    notify: variableNotificationsSchema.optional(),
    /** Health checks once the new credential is current (type `sql`, `http`, `script`, `kubernetes_pod_ready`, the HTTP API checks `http_endpoint`, `response_time`, `error_rate`, `rate_limit`, and the SQL checks `connection`, `query_latency`, `connection_pool`, `replication_lag`, `replication_connection`, `active_transactions`); failures roll back (as `rotation.health`). */
    health: z.array(healthCheckSchema).optional(),
    /** How long and how often the health checks run, and how many consecutive failures roll back (as `rotation.monitor`). */
    monitor: monitorSchema.optional(),
    /** Gradual rollout to many instances of the target: instances or discovery, waves, groups, on_failure (as `rotation.rollout`). */
    rollout: rolloutSchema.optional(),
    /** A manual rollback: setting or changing it makes the next `up` put back the previous (or `version`) credential. */
    rollback: z.strictObject({ reason: z.string(), version: z.string().optional() }).optional(),
    /** Rotate when the policy is created (default false: the first rotation is when it is due). */
    rotateOnCreate: z.boolean().optional(),
    /** Any values: a change forces a rotation on the next `up`, windows or not. */
    triggers: z.record(z.string(), z.unknown()).optional(),
    /**
     * Multi-environment order: rotate only after another policy's successful rotation in an
     * earlier stage, once it has soaked: `{ policy: <its secret, store://…, or the RotationPolicy>,
     * stage: "staging", soak: "1h" }`. Due before that, the policy waits (`waiting-for-predecessor`).
     */
    after: z
      .strictObject({
        /** The predecessor's rotated secret (`store://<store>/<key>`); the SDK passes a RotationPolicy's own. */
        policy: z.string().min(1),
        /** The predecessor's stage (env), named in messages. */
        stage: z.string().min(1),
        /** How long the predecessor's new credential must have been current first (`1h`; default 0). */
        soak: z.string().optional(),
      })
      .optional(),
    /** Rotations wait for approval (`dsops rotation approve ID`), as `rotation.approval` in dsops.yaml. */
    approval: approvalSchema.optional(),
    /** Computed by the provider: why this update rotates (empty when it does not). */
    pendingRotation: z.string().optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.schedule.every === undefined) === (v.schedule.cron === undefined))
      ctx.addIssue({ code: "custom", message: 'give exactly one of schedule.every ("30d") or schedule.cron', path: ["schedule"] });
  });
export type RotationPolicyInputs = z.infer<typeof rotationPolicyInputsSchema>;

/** Outputs each resource adds to its inputs; `secret` ones are Pulumi secrets. */
export const resourceOutputs = {
  SecretReference: {
    value: { type: "string", secret: true, description: "The secret's value (always a Pulumi secret)." },
    versionId: { type: "string", secret: false, description: "The store's id of the version read." },
    updatedAt: { type: "string", secret: false, description: "When that version was created, when the store says." },
    storeType: { type: "string", secret: false, description: "The type of the store." },
  },
  MaintenanceWindow: {
    isOpen: { type: "boolean", secret: false, description: "Whether the window was open at the last up or refresh." },
    nextOpenAt: { type: "string", secret: false, description: "Start of the window open at that time, or of the next one (ISO-8601)." },
    nextCloseAt: { type: "string", secret: false, description: "When that window closes (ISO-8601)." },
    blockedBy: { type: "string", secret: false, description: "The reason of the blackout that kept the window closed, if any." },
  },
  RotationPolicy: {
    value: { type: "string", secret: true, description: "The current value of the rotated secret (a Pulumi secret)." },
    currentVersionId: { type: "string", secret: false, description: "The store's current version of the secret." },
    previousVersionId: { type: "string", secret: false, description: "The version current before the last rotation." },
    lastRotatedAt: { type: "string", secret: false, description: "When the current version was made (ISO-8601)." },
    nextDueAt: { type: "string", secret: false, description: "When the next rotation is due (ISO-8601)." },
    status: { type: "string", secret: false, description: "rotated, current, due, waiting-for-window, waiting-for-predecessor, waiting-for-approval, drifted." },
    lastResult: { type: "string", secret: false, description: "What the last operation did (rotation id, versions, or the reason it waits); never a value." },
  },
  Environment: {
    variables: { type: "object", secret: true, description: "Every variable of the env, by name (a Pulumi secret)." },
    plan: { type: "array", secret: false, description: "Where each variable comes from: name, source, store, key, version id. No values." },
  },
} as const;
