import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as pulumi from "@pulumi/pulumi/provider";
import { configure, environment, maintenanceWindow, providerConfig, rotationPolicy, secretReference } from "../dynamic/handlers";
import { hasUnknown, schedulerSetting } from "../dynamic/context";
import type { PlanRow } from "../dynamic/types";
import { errorMessage } from "../core/errors";
import { markSecret, unwrap, type Props } from "./wire";

/**
 * The `dsops` resource provider plugin (`pulumi-resource-dsops`): the resources and functions of
 * schema.json for Pulumi programs in any language. It runs the same handlers as the Node.js
 * dynamic resources (provider/dynamic/handlers.ts): one implementation, two hosts. This module
 * only translates between the engine's wire values (secrets marked, detailed diffs) and them.
 */

/** The package root: dist/provider/plugin/ once built. */
const ROOT = join(__dirname, "..", "..", "..");

/** How one changed property shows in `pulumi preview --diff`. */
export interface PropertyChange {
  kind: "add" | "delete" | "update";
  /** True when the change is between the old and new inputs; false when an output moved (drift). */
  inputDiff: boolean;
}

export interface DiffResult extends pulumi.DiffResult {
  /** Each changed property, by name. */
  readonly detailedDiff?: Record<string, PropertyChange>;
  /** Why it changed, in words, when no input did (shown as a message of the resource). */
  readonly reason?: string;
}

/** The Provider interface of @pulumi/pulumi/provider, with what its server does not pass on yet. */
export interface DsopsProvider extends Omit<pulumi.Provider, "diff"> {
  /** The stack's provider configuration (`dsops:configFile`, `dsops:stores`, `dsops:scheduler`), from Configure. */
  configure(values: Record<string, unknown>): void;
  /** CheckConfig: failures naming the configuration key. */
  checkConfig(news: Record<string, unknown>): pulumi.CheckFailure[];
  diff(id: string, urn: string, olds: Props, news: Props): Promise<DiffResult>;
}

interface Handlers {
  check(olds: Props, news: Props): Promise<{ inputs: unknown; failures?: pulumi.CheckFailure[] }>;
  diff(id: string, olds: Props, news: Props): Promise<{ changes: boolean }>;
  create(inputs: Props): Promise<{ id: string; outs: object }>;
  read(id: string, props: Props): Promise<{ id: string; props: object }>;
  update(id: string, olds: Props, news: Props): Promise<{ outs: object }>;
  delete(id: string, props: Props): Promise<void>;
}

interface ResourceType {
  handlers: Handlers;
  /** The input properties (schema.json `inputProperties`). */
  inputs: readonly string[];
  /** Outputs that are always secret (schema.json `secret: true`). */
  secretOutputs: readonly string[];
  /** The output that names a change found outside the program (drift), when inputs are unchanged. */
  driftOutput?: string;
  /**
   * For an existing resource: the drift output's current value, added to the checked inputs so
   * that `pulumi preview --diff` shows it moving (`~ versionId: "1" => "2"`).
   */
  observe?(news: Props): Promise<unknown>;
  /** Why the drift output of resource `id` moved from `was` to `now`. */
  driftReason?(id: string, was: unknown, now: unknown): string;
  /** Inputs the handlers keep that the program does not give (RotationPolicy's `policyId`), from the URN. */
  implied?(urn: string): Props;
  /**
   * When no input changed but the handlers found a change: the property that names it and why,
   * from the state's outputs and the checked inputs (an Environment's variable with a new version,
   * a RotationPolicy that is due).
   */
  explain?(id: string, olds: Props, news: Props): { property: string; reason?: string; inputDiff: boolean } | undefined;
}

const types: Record<string, ResourceType> = {
  "dsops:index:SecretReference": {
    handlers: secretReference as unknown as Handlers,
    inputs: ["ref", "store", "key", "version", "transform"],
    secretOutputs: ["value"],
    driftOutput: "versionId",
    observe: (news) => (news.version === undefined ? secretReference.currentVersionId(news) : Promise.resolve(undefined)),
    driftReason: (id, was, now) => `SecretReference ${id}: the secret has a new version in the store (versionId ${JSON.stringify(was)} in state, ${JSON.stringify(now)} now): it changed outside this program; \`pulumi up\` reads it (pin \`version\` to keep one)`,
  },
  "dsops:index:MaintenanceWindow": {
    handlers: maintenanceWindow as unknown as Handlers,
    inputs: ["schedule", "duration", "timezone", "blackouts", "enabled"],
    secretOutputs: [],
  },
  "dsops:index:Environment": {
    handlers: environment as unknown as Handlers,
    inputs: ["configFile", "config", "env"],
    secretOutputs: ["variables"],
    // check adds the store's current versions (`currentVersions`); the state's plan has the ones read.
    explain(id, olds, news) {
      const current = (news.currentVersions ?? {}) as Record<string, string>;
      const plan = (olds.plan ?? []) as PlanRow[];
      const moved = plan.filter((p) => p.source === "store" && !p.pinned && current[p.name] !== undefined && current[p.name] !== p.versionId);
      if (!moved.length) return { property: "plan", inputDiff: false, reason: `Environment ${id}: the env's variables changed in its configuration` };
      const what = moved.map((p) => `${p.name} (versionId ${JSON.stringify(p.versionId)} in state, ${JSON.stringify(current[p.name])} now)`).join(", ");
      return { property: "currentVersions", inputDiff: false, reason: `Environment ${id}: ${moved.length === 1 ? "a variable has" : "variables have"} a new version in the store: ${what}: changed outside this program; \`pulumi up\` reads ${moved.length === 1 ? "it" : "them"}` };
    },
  },
  "dsops:index:RotationPolicy": {
    handlers: rotationPolicy as unknown as Handlers,
    inputs: ["secret", "target", "strategy", "user", "users", "schedule", "windows", "generator", "verify", "notify", "health", "monitor", "rollout", "rollback", "rotateOnCreate", "triggers"],
    secretOutputs: ["value"],
    // The scheduler's id of the policy, as the Node.js SDK passes it: `<project>/<stack>/<name>`.
    implied(urn) {
      const [, stack, project, , name] = /^urn:pulumi:([^:]+)::([^:]+)::([^:]+(?::[^:]+)*)::(.*)$/.exec(urn) ?? [];
      return stack && project && name ? { policyId: `${project}/${stack}/${name}` } : {};
    },
    // check writes why this update rotates into `pendingRotation`.
    explain(id, olds, news) {
      if (typeof news.pendingRotation === "string" && news.pendingRotation) return { property: "pendingRotation", inputDiff: true, reason: `RotationPolicy ${String(news.secret)}: rotates: ${news.pendingRotation}` };
      if ((olds.schedulerRegistration ?? undefined) !== undefined || schedulerSetting()) return { property: "schedulerRegistration", inputDiff: false, reason: `RotationPolicy ${String(news.secret)}: its registration with dsops:scheduler changes` };
      return undefined;
    },
  },
};

/** `urn:pulumi:<stack>::<project>::<parent$>type::<name>` → type. */
export function typeOf(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() as string;
}

function typeFor(urn: string): ResourceType {
  const token = typeOf(urn);
  const t = types[token];
  if (t) return t;
  throw userError(`unknown resource type ${token} (the dsops plugin serves ${Object.keys(types).join(", ")})`);
}

/** An error whose "stack" is its message: the provider server prints both, and a user error is no trace. */
function userError(message: string): Error {
  const err = new Error(message);
  err.stack = message;
  return err;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const pick = (o: Props, keys: readonly string[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));

/** The plain text of a configuration value (`stores` may come as an object or as JSON text). */
function configText(v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The detailed diff of two property bags over the given keys. */
function changedInputs(olds: Props, news: Props, keys: readonly string[]): Record<string, PropertyChange> {
  const out: Record<string, PropertyChange> = {};
  for (const k of keys) {
    if (same(olds[k], news[k])) continue;
    out[k] = { kind: olds[k] === undefined ? "add" : news[k] === undefined ? "delete" : "update", inputDiff: true };
  }
  return out;
}

export function makeProvider(): DsopsProvider {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  /** Resources read in this process: the diff that follows a read (a refresh) is no drift to explain. */
  const read = new Set<string>();
  return {
    version: pkg.version,

    getSchema: async () => readFileSync(join(ROOT, "schema.json"), "utf8"),

    configure(values) {
      const plain = unwrap(values).plain;
      configure((k) => configText(plain[k.replace(/^dsops:/, "")]));
    },

    checkConfig(news) {
      const plain = unwrap(news).plain;
      const stores = configText(plain.stores);
      const configFile = configText(plain.configFile);
      const scheduler = configText(plain.scheduler);
      try {
        configure((k) => ({ "dsops:configFile": configFile, "dsops:stores": stores, "dsops:scheduler": scheduler })[k]);
        providerConfig();
      } catch (e) {
        return [{ property: stores !== undefined && (configFile === undefined || /dsops:stores/.test(errorMessage(e))) ? "stores" : "configFile", reason: errorMessage(e) }];
      }
      try {
        schedulerSetting();
        return [];
      } catch (e) {
        // No property: the engine prints a failing property's value, and a refused URL holds a password (the reason names the setting).
        return [{ property: "", reason: errorMessage(e) }];
      }
    },

    async check(urn, olds, news) {
      const t = types[typeOf(urn)];
      if (!t) return { inputs: news, failures: [{ property: "", reason: errorOf(() => typeFor(urn)) }] };
      const before = unwrap(olds).plain;
      const implied = t.implied?.(urn) ?? {};
      const { plain, secretKeys } = unwrap(news);
      const after = { ...plain, ...implied };
      const res = await t.handlers.check(before, after);
      if (res.failures?.length) return { inputs: news, failures: res.failures };
      // What the handlers add to the inputs (`pendingRotation`, `currentVersions`): the program's own values keep their secret marks.
      const added = Object.entries(res.inputs as Props).filter(([k, v]) => !(k in news) || !same(plain[k], v));
      if (added.length) return { inputs: { ...news, ...markSecret(Object.fromEntries(added), [...secretKeys].filter((k) => added.some(([a]) => a === k))) } };
      // An update with unchanged inputs: what the store has now (a store error shows at diff).
      if (t.observe && t.driftOutput && Object.keys(before).length > 0 && !hasUnknown(after) && same(pick(before, t.inputs), pick(after, t.inputs))) {
        const now = await t.observe(after).catch(() => undefined);
        if (now !== undefined) return { inputs: { ...news, [t.driftOutput]: now } };
      }
      return { inputs: news };
    },

    async diff(id, urn, olds, news) {
      const t = typeFor(urn);
      const refreshed = read.delete(`${urn}\0${id}`);
      const before = unwrap(olds).plain;
      const after = unwrap(news).plain;
      const { changes } = await t.handlers.diff(id, before, after);
      if (!changes) return { changes: false };
      const detailedDiff = changedInputs(before, after, t.inputs);
      if (Object.keys(detailedDiff).length === 0 && t.explain) {
        const why = t.explain(id, before, after);
        if (!why) return { changes: true };
        detailedDiff[why.property] = { kind: before[why.property] === undefined ? "add" : "update", inputDiff: why.inputDiff };
        return { changes: true, detailedDiff, ...(why.reason && !refreshed ? { reason: why.reason } : {}) };
      }
      // A RotationPolicy whose inputs changed may also be due: its reason shows beside them.
      if (typeof after.pendingRotation === "string" && after.pendingRotation) detailedDiff.pendingRotation = { kind: "update", inputDiff: true };
      if (Object.keys(detailedDiff).length > 0 || !t.driftOutput) return { changes: true, detailedDiff };
      // No input changed: the drift output moved (check put its current value into `news`).
      detailedDiff[t.driftOutput] = { kind: "update", inputDiff: false };
      const was = before[t.driftOutput];
      const now = after[t.driftOutput];
      const explained = !refreshed && t.driftReason && now !== undefined && !same(was, now);
      return { changes: true, detailedDiff, ...(explained ? { reason: t.driftReason?.(id, was, now) } : {}) };
    },

    async create(urn, inputs) {
      const t = typeFor(urn);
      const { plain, secretKeys } = unwrap(inputs);
      const r = await t.handlers.create(plain);
      return { id: r.id, outs: markSecret(r.outs as Props, [...t.secretOutputs, ...secretKeys]) };
    },

    async read(id, urn, props) {
      const t = typeFor(urn);
      const { plain, secretKeys } = unwrap(props);
      read.add(`${urn}\0${id}`);
      const r = await t.handlers.read(id, plain);
      return { id: r.id, props: markSecret(r.props as Props, [...t.secretOutputs, ...secretKeys]) };
    },

    async update(id, urn, olds, news) {
      const t = typeFor(urn);
      const { plain, secretKeys } = unwrap(news);
      const r = await t.handlers.update(id, unwrap(olds).plain, plain);
      return { outs: markSecret(r.outs as Props, [...t.secretOutputs, ...secretKeys]) };
    },

    /** Deleting a resource never deletes anything in a store. */
    async delete(id, urn, props) {
      await typeFor(urn).handlers.delete(id, unwrap(props).plain);
    },

    async invoke(token, args) {
      if (token === "dsops:index:getEnvironment") {
        const plain = unwrap(args).plain;
        const failures = environment.validate(plain);
        if (failures.length) return { failures };
        const { outs } = await environment.create(plain);
        return { outputs: markSecret({ variables: outs.variables, plan: outs.plan }, ["variables"]) };
      }
      if (token === "dsops:index:getComplianceReport") {
        const plain = unwrap(args).plain;
        const { validateComplianceArgs, readComplianceReport } = require("../dynamic/compliance") as typeof import("../dynamic/compliance");
        const failures = validateComplianceArgs(plain);
        if (failures.length) return { failures };
        const { report, json } = await readComplianceReport(plain);
        return { outputs: { report: JSON.parse(JSON.stringify(report)) as Props, json } };
      }
      if (token !== "dsops:index:getSecret") throw userError(`unknown function ${token} (the dsops plugin serves dsops:index:getSecret, dsops:index:getEnvironment, dsops:index:getComplianceReport)`);
      const plain = unwrap(args).plain;
      const checked = await secretReference.check({}, plain);
      if (checked.failures?.length) return { failures: checked.failures };
      const { outs } = await secretReference.create(plain);
      const { value, versionId, updatedAt, storeType } = outs;
      return { outputs: markSecret({ value, versionId, ...(updatedAt ? { updatedAt } : {}), storeType }, ["value"]) };
    },
  };
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
    return "";
  } catch (e) {
    return errorMessage(e);
  }
}
