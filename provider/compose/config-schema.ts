import * as z from "zod";
import { composeConfigSchema, type RawConfig } from "../engine/config/schema";
import type { ConfigCheck, ConfigRules } from "../engine/config/load";

/**
 * The dsops.yaml schema, composed: the one module that knows every feature's part of the file.
 * The engine gives its sections (stores, variables, transforms, templates, policies, resolver),
 * each feature its own (zod only, from its settings.ts: no client library loads), and the
 * features' checks run after the engine's. Key order is the documented one, so "expected one
 * of" lists read the same everywhere.
 *
 * A feature's schema is built (its module loaded) only when a file has its section, or a
 * variable its key (issue 20: a tiny file builds none of them). A file without it gets a
 * stand-in at the same key, which no value ever reaches: the key stays known, so unknown keys
 * are named with every known key, in the same order.
 */

/** Each feature's top-level section: the key, and how to build its schema (its module loads then). */
const featureSections = {
  /** `policies:` with dsops's keys (provider/guard/policy-settings.ts); it keeps the engine's place in the file. */
  policies: () => (require("../guard/policy-settings") as typeof import("../guard/policy-settings")).policySettingsSchema.optional(),
  /** Notification channels (provider/notify/settings.ts). */
  notifications: () => (require("../notify/settings") as typeof import("../notify/settings")).notificationsSchema.optional(),
  /** Prometheus metrics (provider/metrics/settings.ts). */
  metrics: () => (require("../metrics/settings") as typeof import("../metrics/settings")).metricsSchema.optional(),
  /** dsops's top-level `rotation:` block: defaults for every rotated variable (./dsops-rotation.ts). */
  rotation: () => (require("./dsops-rotation") as typeof import("./dsops-rotation")).dsopsRotationDefaultsSchema.optional(),
  /** Plugin packages (or paths) adding store and target types, resolved from the file's folder (./plugins.ts). */
  plugins: () => z.array(z.string().min(1)).optional(),
  /** Where `dsops chaos` may inject faults into rotations (provider/rotation/chaos-settings.ts). */
  chaos: () => (require("../rotation/chaos-settings") as typeof import("../rotation/chaos-settings")).chaosSchema.optional(),
  /** Multi-environment rotations: stages, soak (provider/rotation/chain/settings.ts). */
  chains: () => (require("../rotation/chain/settings") as typeof import("../rotation/chain/settings")).chainsSchema.optional(),
  /** Waivers of the compliance report (provider/report/settings.ts). */
  compliance: () => (require("../report/settings") as typeof import("../report/settings")).complianceSchema.optional(),
};

/** The keys features add to a variable. */
const featureVariableKeys = {
  rotation: () => variableRotationSchema().optional(),
  /** Who may read the value: `breakglass` seals it behind an open break-glass grant (provider/rotation/access-settings.ts). */
  access: () => (require("../rotation/access-settings") as typeof import("../rotation/access-settings")).variableAccessSchema.optional(),
};

/** A variable's `rotation:` block: the rotation's keys with the ops' (`notifications`, `health`) laid in. */
function variableRotationSchema() {
  const { rotationShapeHead, rotationShapeTail, strategyNameSchema } = require("../rotation/settings") as typeof import("../rotation/settings");
  const { variableNotificationsSchema } = require("../notify/settings") as typeof import("../notify/settings");
  const { healthCheckSchema } = require("../health/settings") as typeof import("../health/settings");
  return z.strictObject({
    ...rotationShapeHead,
    /**
     * dsops's forms leave `service` (the variable's `service:` names it) and `strategy` (the
     * service's `rotation.strategy` gives it) out of a variable's block: both are optional here, and
     * the dsops check (./dsops-rotation.ts, run first) fills them in or reports the block, so the
     * checks after it see them set (the types say so).
     */
    service: rotationShapeHead.service.optional() as unknown as typeof rotationShapeHead.service,
    strategy: strategyNameSchema.optional() as unknown as typeof rotationShapeHead.strategy,
    /** Which rotation events this variable sends, and to which channels (see `notifications:`). */
    notifications: variableNotificationsSchema.optional(),
    /** Health checks run once the new credential is current; failures roll the rotation back. */
    health: z.array(healthCheckSchema).optional(),
    ...rotationShapeTail,
  });
}

type Parts<T extends Record<string, () => z.ZodType>> = { [K in keyof T]: ReturnType<T[K]> };
type Wanted<T> = (key: keyof T & string) => boolean;

const built = new Map<string, z.ZodType>();
/** What stands at a feature's key in a file that does not have it: never reached by a value (the key is absent). */
let standIn: z.ZodType | undefined;

/** The parts `wanted` says a file has, built once each; a stand-in for the others. */
function parts<T extends Record<string, () => z.ZodType>>(scope: string, all: T, wanted: Wanted<T>): Parts<T> {
  const out: Record<string, z.ZodType> = {};
  for (const key of Object.keys(all)) {
    if (!wanted(key)) {
      out[key] = standIn ??= z.never().optional();
      continue;
    }
    const id = `${scope}.${key}`;
    let s = built.get(id);
    if (!s) built.set(id, (s = all[key]()));
    out[key] = s;
  }
  return out as Parts<T>;
}

/** The file's schema with the sections and variable keys `has…` say are present (the others stand in). */
function composed(hasSection: Wanted<typeof featureSections>, hasVariableKey: Wanted<typeof featureVariableKeys>) {
  // RawConfig is the type the features declared: the compiler checks the composition agrees.
  return composeConfigSchema({
    sections: parts("section", featureSections, hasSection),
    variable: parts("variable", featureVariableKeys, hasVariableKey),
  }) satisfies z.ZodType<RawConfig>;
}

const schemas = new Map<string, z.ZodType>();
const SECTIONS = Object.keys(featureSections);
const VARIABLE_KEYS = Object.keys(featureVariableKeys);

/** The schema for `input`: the feature parts it has are real, one schema per combination. */
function schemaFor(input: unknown): z.ZodType {
  const file = input && typeof input === "object" ? (input as Record<string, unknown>) : {};
  // A value given (own or inherited: zod reads both) gets the real schema; only `undefined` meets the stand-in.
  const sections = SECTIONS.filter((k) => file[k] !== undefined);
  const keys = new Set<string>();
  const envs = file.envs;
  if (envs && typeof envs === "object")
    for (const vars of Object.values(envs as Record<string, unknown>))
      if (vars && typeof vars === "object")
        for (const spec of Object.values(vars as Record<string, unknown>))
          if (spec && typeof spec === "object") for (const k of VARIABLE_KEYS) if ((spec as Record<string, unknown>)[k] !== undefined) keys.add(k);
  const id = `${sections.join(",")}|${[...keys].join(",")}`;
  let s = schemas.get(id);
  if (!s) schemas.set(id, (s = composed((k) => sections.includes(k), (k) => keys.has(k))));
  return s;
}

/** The whole file's schema with every feature's part built (a tool that wants it all). */
export function fullConfigSchema() {
  return composed(
    () => true,
    () => true,
  );
}

/**
 * The features' checks: dsops's rotation shapes read as ours first, then the rotation check of
 * `services:` and `rotation:` blocks, the policies', chaos's, chains', access's. Each does
 * nothing to a file with no services, no feature section and no feature key on a variable, so
 * such a file loads none of them.
 */
function featureChecks(): readonly ConfigCheck[] {
  const { dsopsRotationCheck } = require("./dsops-rotation") as typeof import("./dsops-rotation");
  const { rotationConfigCheck } = require("../rotation/config-check") as typeof import("../rotation/config-check");
  const { policyConfigCheck } = require("../guard/policy") as typeof import("../guard/policy");
  const { chaosConfigCheck } = require("../rotation/chaos-settings") as typeof import("../rotation/chaos-settings");
  const { chainConfigCheck } = require("../rotation/chain/check") as typeof import("../rotation/chain/check");
  const { accessConfigCheck } = require("../rotation/access-settings") as typeof import("../rotation/access-settings");
  return [dsopsRotationCheck, rotationConfigCheck, policyConfigCheck, chaosConfigCheck, chainConfigCheck, accessConfigCheck];
}

/** The file uses a feature: a service, a feature's section, or a feature's key on a variable. */
function usesFeatures(raw: RawConfig): boolean {
  if (Object.keys(raw.services).length) return true;
  if (SECTIONS.some((k) => (raw as unknown as Record<string, unknown>)[k] !== undefined)) return true;
  for (const vars of Object.values(raw.envs))
    for (const name of Object.keys(vars)) {
      const spec = vars[name] as Record<string, unknown>;
      for (const k of VARIABLE_KEYS) if (spec[k] !== undefined) return true;
    }
  return false;
}

const checks: ConfigCheck = (raw, ctx) => (usesFeatures(raw) ? featureChecks().reduce((r, check) => check(r, ctx), raw) : raw);

/** What the composed loader checks with: the schema for the file, then the features' checks. */
export const configRules: ConfigRules = {
  get schema() {
    return fullConfigSchema();
  },
  schemaFor,
  checks: [checks],
  prepare: (input, dir) => {
    if (input && typeof input === "object" && Object.hasOwn(input, "plugins")) (require("./plugins") as typeof import("./plugins")).preparePlugins(input, dir);
  },
};
