import * as pulumi from "@pulumi/pulumi";
import { environmentProvider, maintenanceWindowProvider, rotationPolicyProvider, secretReferenceProvider } from "../provider/dynamic/providers";
import { MODULE } from "./tokens";
import { DsopsError } from "../provider/core/errors";
import type { PlanRow } from "../provider/dynamic/types";

export { schemaToken, dynamicToken, resourceTypes } from "./tokens";

/** An inline store configuration: the fields of an entry of `secretStores:` in dsops.yaml. */
export interface StoreConfig {
  type: string;
  [setting: string]: unknown;
}

const CREDENTIAL = /token|secret|password|passphrase|private|credential|access_key|client_key|api_key/i;

/** True when an object holds a credential-like setting (so it must travel as a Pulumi secret). */
export function holdsCredentials(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(holdsCredentials);
  if (v && typeof v === "object") return Object.entries(v).some(([k, x]) => (CREDENTIAL.test(k) && typeof x === "string") || holdsCredentials(x));
  return false;
}

/** Wrap an input in `pulumi.secret` when it holds credentials, so they never land in state in plaintext. */
function protect<T>(input: pulumi.Input<T> | undefined): pulumi.Input<T> | undefined {
  if (input === undefined) return undefined;
  return pulumi.output(input).apply((v) => (holdsCredentials(v) ? pulumi.secret(v) : v)) as pulumi.Output<T>;
}

export interface SecretReferenceArgs {
  /** A `store://<store>/<key>[#field][?version=v]` reference. */
  ref?: pulumi.Input<string>;
  /** A store name from the provider's configuration (`dsops:configFile` / `dsops:stores`), or an inline store configuration. */
  store?: pulumi.Input<string | StoreConfig>;
  /** Key in the store, with `store`; may end in `#field`. */
  key?: pulumi.Input<string>;
  /** A version id or stage; a pinned reference reports no drift. */
  version?: pulumi.Input<string>;
  /** A transform chain (`json_extract:.password | trim`) or a list of steps. */
  transform?: pulumi.Input<string | string[]>;
}

/**
 * A secret in a store. `value` is always a Pulumi secret. When the secret's current version
 * changes in the store, `pulumi preview` shows this resource as an update; deleting it never
 * deletes anything in the store.
 */
export class SecretReference extends pulumi.dynamic.Resource {
  /** The value (a Pulumi secret). */
  declare readonly value: pulumi.Output<string>;
  /** The store's id of the version read. */
  declare readonly versionId: pulumi.Output<string>;
  /** When that version was created, when the store says. */
  declare readonly updatedAt: pulumi.Output<string | undefined>;
  /** The type of the store (`file`, `aws.secretsmanager`, …). */
  declare readonly storeType: pulumi.Output<string>;

  constructor(name: string, args: SecretReferenceArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { ...args, ...(args.store === undefined ? {} : { store: protect(args.store) }), value: undefined, versionId: undefined, updatedAt: undefined, storeType: undefined };
    const limit = quietPromiseStacks();
    try {
      super(secretReferenceProvider, name, props, withSecretOutputs(opts, ["value"]), MODULE, "SecretReference");
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

export interface EnvironmentArgs {
  /** A dsops.yaml path, relative to the program's folder. */
  configFile?: pulumi.Input<string>;
  /** An inline dsops.yaml as an object. */
  config?: pulumi.Input<Record<string, unknown>>;
  /** The env to resolve. */
  env: pulumi.Input<string>;
}

/** One row of an Environment's plan: where a variable comes from, never its value. */
export type EnvironmentPlanRow = PlanRow;

/**
 * A whole env of a dsops.yaml, resolved: `variables` is a secret map, `plan` says where each
 * comes from. When a variable's current version in the store moves, `pulumi preview` shows an
 * update, and `--diff` shows it in the computed input `currentVersions` (`~ TOKEN: "1" => "2"`).
 */
export class Environment extends pulumi.dynamic.Resource {
  /** Every variable by name (a Pulumi secret). */
  declare readonly variables: pulumi.Output<Record<string, string>>;
  /** Names, stores, keys and version ids; no values. */
  declare readonly plan: pulumi.Output<EnvironmentPlanRow[]>;

  constructor(name: string, args: EnvironmentArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { ...args, config: protect(args.config), variables: undefined, plan: undefined };
    super(environmentProvider, name, props, withSecretOutputs(opts, ["variables"]), MODULE, "Environment");
  }
}

/** A period when nothing may rotate, even inside a window. */
export interface Blackout {
  /** ISO-8601 instant or date (a date is midnight in the window's zone). */
  start: string;
  /** ISO-8601 instant or date (a date means the end of that day). */
  end: string;
  reason: string;
}

export interface MaintenanceWindowArgs {
  /** A 5-field cron expression (minute hour day-of-month month day-of-week), or several. */
  schedule: pulumi.Input<string | string[]>;
  /** How long the window stays open: `4h`, `1h30m`. */
  duration: pulumi.Input<string>;
  /** IANA time zone the cron expressions are read in (default UTC). */
  timezone?: pulumi.Input<string>;
  /** Change freezes and holidays: nothing rotates then, even inside the window. */
  blackouts?: pulumi.Input<Blackout[]>;
  /** A disabled window never opens (default true). */
  enabled?: pulumi.Input<boolean>;
}

/**
 * When rotations may run. A window opens at each cron match in its zone and stays open for
 * `duration`; a wall time that does not exist on a daylight-saving day (02:30 when clocks jump
 * from 02:00 to 03:00) opens at the next valid instant (03:00), and one that happens twice
 * opens at its first occurrence. Outputs are as of the last `up` or `refresh`.
 */
export class MaintenanceWindow extends pulumi.dynamic.Resource {
  declare readonly schedule: pulumi.Output<string | string[]>;
  declare readonly duration: pulumi.Output<string>;
  declare readonly timezone: pulumi.Output<string | undefined>;
  declare readonly blackouts: pulumi.Output<Blackout[] | undefined>;
  declare readonly enabled: pulumi.Output<boolean | undefined>;
  /** Whether the window was open at the last up or refresh. */
  declare readonly isOpen: pulumi.Output<boolean>;
  /** Start of the window open then, or of the next one (ISO-8601). */
  declare readonly nextOpenAt: pulumi.Output<string | undefined>;
  /** When that window closes (ISO-8601). */
  declare readonly nextCloseAt: pulumi.Output<string | undefined>;
  /** The reason of the blackout that kept the window closed, if any. */
  declare readonly blockedBy: pulumi.Output<string | undefined>;

  constructor(name: string, args: MaintenanceWindowArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { ...args, isOpen: undefined, nextOpenAt: undefined, nextCloseAt: undefined, blockedBy: undefined };
    super(maintenanceWindowProvider, name, props, opts, MODULE, "MaintenanceWindow");
  }
}

/** A rotation target: the fields of a `services:` entry of dsops.yaml, plus `user` or `users`. */
export interface TargetConfig {
  type: string;
  /** single-user: the user whose password is rotated. */
  user?: string;
  /** alternating-users: the two users. */
  users?: [string, string];
  /** A `store://` reference whose value is JSON {"username","password"} (SQL targets). */
  admin?: string;
  [setting: string]: unknown;
}

/** An inline maintenance window: the same fields as MaintenanceWindow's inputs. */
export interface WindowConfig {
  schedule: string | string[];
  duration: string;
  timezone?: string;
  blackouts?: Blackout[];
  enabled?: boolean;
}

/** A built-in strategy, or (any other string) a rotation strategy of a loaded plugin (`dsops:plugins`), e.g. `acme.suffix-user`. */
export type RotationStrategy = "single-user" | "alternating-users" | "two-secret" | "immediate" | "emergency" | (string & {});

export interface RotationPolicyArgs {
  /** The rotated secret: a SecretReference (by `ref` or named store, no `#field`) or a `store://` reference. */
  secret: SecretReference | pulumi.Input<string>;
  /** A service of the provider's dsops.yaml by name, or a target configuration. */
  target: pulumi.Input<string | TargetConfig>;
  strategy: pulumi.Input<RotationStrategy>;
  /** single-user: the user (when `target` is a service name). */
  user?: pulumi.Input<string>;
  /** alternating-users: the two users (when `target` is a service name). */
  users?: pulumi.Input<[string, string]>;
  /** `{ every: "30d" }` or `{ cron: "0 3 1 * *", timezone?: "Europe/Berlin" }`. */
  schedule: pulumi.Input<{ every?: string; cron?: string; timezone?: string }>;
  /** When rotation may run: MaintenanceWindow resources or inline windows. None: any time. */
  windows?: Array<MaintenanceWindow | pulumi.Input<WindowConfig>>;
  /** Value generator: `{ length, format, exclude, … }` as `rotation.generator` in dsops.yaml. */
  generator?: pulumi.Input<Record<string, unknown>>;
  /** Verification beyond the target's login check: `{ query, retries, timeout_ms }`. */
  verify?: pulumi.Input<Record<string, unknown>>;
  /** Which rotation events go out, to which channels of the provider's `notifications:`: `{ enabled, events, channels }` as `rotation.notifications`. */
  notify?: pulumi.Input<{ enabled?: boolean; events?: string[]; channels?: string[] }>;
  /**
   * Health checks once the new credential is current: `[{ type, … }]` as `rotation.health`, type
   * `sql`, `http`, `script`, `kubernetes_pod_ready`, the HTTP API checks `http_endpoint`,
   * `response_time`, `error_rate`, `rate_limit`, or the SQL checks `connection`, `query_latency`,
   * `connection_pool`, `replication_lag`, `replication_connection`, `active_transactions`;
   * failures roll back.
   */
  health?: pulumi.Input<Array<pulumi.Input<Record<string, unknown>>>>;
  /** How long and how often the health checks run: `{ period, interval, failures }` as `rotation.monitor`. */
  monitor?: pulumi.Input<{ period?: string | number; interval?: string | number; failures?: number }>;
  /**
   * Gradual rollout to many instances of the target: `{ instances | discovery, strategy: canary | percentage | all,
   * waves, monitor, groups, on_failure: rollback_all | continue | stop }` as `rotation.rollout`; discovery
   * `{ type: kubernetes | cloud | endpoint, … }` (without a type, `{ endpoint }`).
   */
  rollout?: pulumi.Input<Record<string, unknown>>;
  /** A manual rollback: setting or changing it makes the next `up` put back the previous (or `version`) credential. */
  rollback?: pulumi.Input<{ reason: string; version?: string }>;
  /** Rotate when the policy is created (default false). */
  rotateOnCreate?: pulumi.Input<boolean>;
  /** Any values; a change forces a rotation on the next `up` (like keepers). */
  triggers?: pulumi.Input<Record<string, pulumi.Input<unknown>>>;
  /**
   * Multi-environment order: rotate only after `policy` (a RotationPolicy, or its secret's
   * `store://` reference) rotated successfully in the earlier stage `stage`, and `soak` has
   * passed since. Due before that, the policy waits: `pulumi preview` says so, `up` does not rotate.
   */
  after?: { policy: RotationPolicy | pulumi.Input<string>; stage: pulumi.Input<string>; soak?: pulumi.Input<string> };
  /**
   * A due rotation waits for approval: preview/up request it (every notification channel is
   * told), `dsops rotation approve ID --reason …` grants it, the next `up` rotates. As
   * `rotation.approval` in dsops.yaml.
   */
  approval?: pulumi.Input<{ required?: number; approvers?: string[]; expires?: string; identity?: "os" | "git" | "token"; token_key?: string }>;
}

/**
 * How, when and where a credential is rotated. `pulumi preview` shows the policy as an update
 * when a rotation is due and a window is open (the reason is in `pendingRotation`); `pulumi up`
 * rotates it through the engine (verified, rolled back on failure) and records the versions.
 * Due while every window is closed: no change, and a warning naming the next opening. With
 * `approval`: no change until `dsops rotation approve` granted the request, and a warning naming it.
 * Deleting a policy never deletes the secret or the users.
 */
/** Each RotationPolicy's name and inputs, as getComplianceReport's `policies` takes them. */
const policyReports = new WeakMap<object, pulumi.Output<{ name: string; inputs: Record<string, unknown> }>>();

export class RotationPolicy extends pulumi.dynamic.Resource {
  /** The current value of the rotated secret (a Pulumi secret): read it here after a rotation. */
  declare readonly value: pulumi.Output<string>;
  declare readonly currentVersionId: pulumi.Output<string | undefined>;
  declare readonly previousVersionId: pulumi.Output<string | undefined>;
  declare readonly lastRotatedAt: pulumi.Output<string | undefined>;
  declare readonly nextDueAt: pulumi.Output<string | undefined>;
  /** rotated, rolled-back, current, due, waiting-for-window, waiting-for-predecessor, waiting-for-approval, drifted. */
  declare readonly status: pulumi.Output<string>;
  /** What the last operation did; never a value. */
  declare readonly lastResult: pulumi.Output<string>;
  /** Why this update rotates (computed at preview; empty when it does not). */
  declare readonly pendingRotation: pulumi.Output<string>;

  constructor(name: string, args: RotationPolicyArgs, opts?: pulumi.CustomResourceOptions) {
    const secret = args.secret instanceof SecretReference ? args.secret.id : args.secret;
    const windows = args.windows?.map((w) =>
      w instanceof MaintenanceWindow
        ? pulumi.all([w.schedule, w.duration, w.timezone, w.blackouts, w.enabled]).apply(([schedule, duration, timezone, blackouts, enabled]) => ({
            schedule,
            duration,
            ...(timezone !== undefined ? { timezone } : {}),
            ...(blackouts !== undefined ? { blackouts } : {}),
            ...(enabled !== undefined ? { enabled } : {}),
          }))
        : w,
    );
    const pred = args.after?.policy;
    const after = args.after ? { ...args.after, policy: pred instanceof RotationPolicy ? (pred as unknown as { secret: pulumi.Output<string> }).secret : pred } : undefined;
    const props = {
      ...args,
      secret,
      target: protect(args.target),
      after,
      windows,
      // The policy's id in the scheduler's registry (dsops:scheduler): stable across updates, one per stack.
      policyId: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
      pendingRotation: undefined,
      value: undefined,
      currentVersionId: undefined,
      previousVersionId: undefined,
      lastRotatedAt: undefined,
      nextDueAt: undefined,
      status: undefined,
      lastResult: undefined,
    };
    super(rotationPolicyProvider, name, props, withSecretOutputs(opts, ["value"]), MODULE, "RotationPolicy");
    // What getComplianceReportOutput({ policies: [this] }) reports: the policy's name and inputs, once the policy's operation is done (its status is known).
    const { pendingRotation: _p, value: _v, currentVersionId: _c, previousVersionId: _pv, lastRotatedAt: _l, nextDueAt: _n, status: _s, lastResult: _r, policyId: _i, ...reported } = props;
    policyReports.set(this, pulumi.all([pulumi.output(reported), this.status]).apply(([inputs]) => ({ name, inputs: JSON.parse(JSON.stringify(inputs)) as Record<string, unknown> })));
    // Due while every window is closed: the update does not happen; say so, naming the next opening.
    if (pulumi.runtime.isDryRun()) {
      pulumi
        .all([secret, args.target, args.strategy, args.user, args.users, args.schedule, pulumi.all(windows ?? []), pulumi.all([pulumi.output(after), args.approval])])
        .apply(async ([s, target, strategy, user, users, schedule, ws, [af, approval]]) => {
          try {
            const h = handlers();
            const inputs = { secret: s, target, strategy, user, users, schedule, windows: ws, ...(af ? { after: af } : {}), ...(approval ? { approval } : {}) } as Parameters<typeof h.evaluatePolicy>[0];
            const message = h.waitingMessage(await h.evaluatePolicy(JSON.parse(JSON.stringify(inputs))));
            if (message) pulumi.log.warn(message, this);
          } catch {
            // The provider's check reports configuration errors with the field that caused them.
          }
        });
    }
  }
}

/**
 * While a resource registers, @pulumi/pulumi records `new Error().stack` on each of the four
 * promises of every property (only printed with PULUMI_DEBUG_PROMISE_LEAKS), and formats each
 * through its source-map support: in a `pulumi preview` of many SecretReferences that was the
 * largest per-resource cost of the program process (7 properties, 28 stacks each). The resource's
 * own source position is unaffected (Pulumi takes it with an unlimited stack of its own). Returns
 * the limit to restore; with PULUMI_DEBUG_PROMISE_LEAKS set, stacks stay whole.
 */
function quietPromiseStacks(): number {
  const limit = Error.stackTraceLimit;
  if (!process.env.PULUMI_DEBUG_PROMISE_LEAKS) Error.stackTraceLimit = 0;
  return limit;
}

function withSecretOutputs(opts: pulumi.CustomResourceOptions | undefined, outputs: string[]): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...new Set([...(opts?.additionalSecretOutputs ?? []), ...outputs])] };
}

function handlers(): typeof import("../provider/dynamic/handlers") {
  const h = require("../provider/dynamic/handlers") as typeof import("../provider/dynamic/handlers");
  const cfg = new pulumi.Config("dsops");
  h.configure((k) => cfg.get(k.replace(/^dsops:/, "")));
  return h;
}

export interface GetSecretArgs {
  /** A `store://<store>/<key>[#field][?version=v]` reference. */
  ref?: string;
  /** A store name from the provider's configuration, or an inline store configuration. */
  store?: string | StoreConfig;
  /** Key in the store, with `store`; may end in `#field`. */
  key?: string;
  /** A version id or stage. */
  version?: string;
  /** A transform chain (`json_extract:.password | trim`) or a list of steps. */
  transform?: string | string[];
}

export interface GetSecretResult {
  /** The value, as a Pulumi secret. */
  value: pulumi.Output<string>;
  versionId: string;
  updatedAt?: string;
  storeType: string;
}

/** getSecretOutput's arguments: getSecret's, each of which may be an Output. */
export interface GetSecretOutputArgs {
  ref?: pulumi.Input<string>;
  store?: pulumi.Input<string | StoreConfig>;
  key?: pulumi.Input<string>;
  version?: pulumi.Input<string>;
  transform?: pulumi.Input<string | string[]>;
}

/** What getSecretOutput resolves to. */
export interface GetSecretOutputResult {
  value: string;
  versionId: string;
  updatedAt?: string;
  storeType: string;
}

export interface GetEnvironmentArgs {
  /** A dsops.yaml path, relative to the program's folder. */
  configFile?: string;
  /** An inline dsops.yaml as an object. */
  config?: Record<string, unknown>;
  /** The env to resolve. */
  env: string;
}

export interface GetEnvironmentResult {
  /** Every variable by name, as a Pulumi secret. */
  variables: pulumi.Output<Record<string, string>>;
  plan: EnvironmentPlanRow[];
}

/** getEnvironmentOutput's arguments: getEnvironment's, each of which may be an Output. */
export interface GetEnvironmentOutputArgs {
  configFile?: pulumi.Input<string>;
  config?: pulumi.Input<Record<string, unknown>>;
  env: pulumi.Input<string>;
}

/** What getEnvironmentOutput resolves to. */
export interface GetEnvironmentOutputResult {
  variables: Record<string, string>;
  plan: EnvironmentPlanRow[];
}

/** Check a function's arguments with its resource's `check`, then read as its `create` does. */
async function readSecret(fn: string, args: GetSecretArgs): Promise<GetSecretOutputResult> {
  const h = handlers();
  const checked = await h.secretReference.check({}, args as Record<string, unknown>);
  if (checked.failures?.length) throw new DsopsError(`${fn}: ${checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  const { outs } = await h.secretReference.create(args as Record<string, unknown>);
  return { value: outs.value, versionId: outs.versionId, ...(outs.updatedAt ? { updatedAt: outs.updatedAt } : {}), storeType: outs.storeType };
}

async function readEnvironment(fn: string, args: GetEnvironmentArgs): Promise<GetEnvironmentOutputResult> {
  const h = handlers();
  const failures = h.environment.validate(args as unknown as Record<string, unknown>);
  if (failures.length) throw new DsopsError(`${fn}: ${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  const { outs } = await h.environment.create(args as unknown as Record<string, unknown>);
  return { variables: outs.variables, plan: outs.plan };
}

/** A user error inside an Output ends the program with its message, not a stack trace. */
async function asRunError<T>(fn: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof DsopsError) throw new pulumi.RunError(e.message.startsWith(`${fn}: `) ? e.message : `${fn}: ${e.message}`);
    throw e;
  }
}

/** Read a secret now, without a resource in state. */
export async function getSecret(args: GetSecretArgs): Promise<GetSecretResult> {
  const r = await readSecret("getSecret", args);
  return { ...r, value: pulumi.secret(r.value) };
}

/**
 * Read a secret without a resource in state, the Output form (Pulumi's `get…Output`
 * convention): arguments may be Outputs, and the read happens once they are known. The
 * result holds the value, so the whole Output is a secret.
 */
export function getSecretOutput(args: GetSecretOutputArgs): pulumi.Output<GetSecretOutputResult> {
  return pulumi.secret(pulumi.output(args).apply((a) => asRunError("getSecretOutput", () => readSecret("getSecretOutput", a as GetSecretArgs))));
}

/** Resolve an env of a dsops.yaml now, without a resource in state. */
export async function getEnvironment(args: GetEnvironmentArgs): Promise<GetEnvironmentResult> {
  const r = await readEnvironment("getEnvironment", args);
  return { variables: pulumi.secret(r.variables), plan: r.plan };
}

/**
 * Resolve an env of a dsops.yaml without a resource in state, the Output form: arguments may
 * be Outputs; the whole result is a secret (it holds every variable's value).
 */
export function getEnvironmentOutput(args: GetEnvironmentOutputArgs): pulumi.Output<GetEnvironmentOutputResult> {
  return pulumi.secret(pulumi.output(args).apply((a) => asRunError("getEnvironmentOutput", () => readEnvironment("getEnvironmentOutput", a as GetEnvironmentArgs))));
}

/**
 * Add a plugin's store and target types (README "Plugins") in this program's process: a package
 * name or path (resolved from the program's folder, as Node resolves packages) or the plugin
 * module itself. `getSecret`, `getEnvironment` and their Output forms then read its stores.
 * Resources run in Pulumi's provider process, which cannot receive a module object (dynamic
 * providers are serialized code): name the package there, under `plugins:` in the dsops.yaml the
 * resources read, or in the stack config `dsops:plugins`. A broken plugin throws PluginError
 * naming it and the cause. Returns the plugin's name and types.
 */
export function registerPlugin(plugin: string | PluginModule): RegisteredPlugin {
  const p = require("../provider/compose/plugins") as typeof import("../provider/compose/plugins");
  return typeof plugin === "string" ? p.loadPlugin(plugin, process.cwd(), "registerPlugin") : p.registerPlugin(plugin);
}

/** A plugin module (its full interface: `DsopsPlugin` of `@dsops/pulumi/plugin`). */
export interface PluginModule {
  readonly apiVersion: number;
  readonly name: string;
  readonly [key: string]: unknown;
}

/** A plugin registered in this process and the types it adds. */
export interface RegisteredPlugin {
  readonly name: string;
  /** The package or path it was loaded from, or `registerPlugin` for a module object. */
  readonly source: string;
  readonly stores: readonly string[];
  readonly targets: readonly string[];
}

// ---------------------------------------------------------------- compliance report

export interface GetComplianceReportArgs {
  /** A dsops.yaml path, relative to the program's folder (neither this nor `config`: the provider's `dsops:configFile`). */
  configFile?: string;
  /** An inline dsops.yaml as an object. */
  config?: Record<string, unknown>;
  /** Controls of this framework (default all). */
  framework?: "pci-dss" | "soc2" | "all";
  /** Only this env (default every env; `pulumi` for the stack's policies alone). */
  env?: string;
  /** The stack's policies as `{name, inputs}` (getComplianceReportOutput also takes RotationPolicy resources). */
  policies?: ComplianceReportPolicy[];
}

/** A RotationPolicy as getComplianceReport reads it: the resource's name and its inputs. */
export interface ComplianceReportPolicy {
  name: string;
  inputs: Record<string, unknown>;
}

/** getComplianceReportOutput's arguments: getComplianceReport's, each of which may be an Output. */
export interface GetComplianceReportOutputArgs {
  configFile?: pulumi.Input<string>;
  config?: pulumi.Input<Record<string, unknown>>;
  framework?: pulumi.Input<"pci-dss" | "soc2" | "all">;
  env?: pulumi.Input<string>;
  /**
   * The stack's RotationPolicy resources: each is reported as the credential `pulumi/<name>`,
   * with its rotation history, approval requests and break-glass records. With `policies`, the
   * dsops.yaml's variables are in the report only when `configFile` or `config` is given.
   */
  policies?: Array<RotationPolicy | pulumi.Input<ComplianceReportPolicy>>;
}

export interface GetComplianceReportResult {
  /** The report: summary, controls, credentials with their verdicts, rotations, waivers (never a value). */
  report: ComplianceReportData;
  /** The same report as JSON text, exactly as `dsops report compliance --format json` writes it. */
  json: string;
}

/** The report's shape (provider/report/types.ts). */
export type ComplianceReportData = import("../provider/report/types").ComplianceReport;

async function readCompliance(fn: string, args: GetComplianceReportArgs): Promise<GetComplianceReportResult> {
  handlers(); // the provider configuration (dsops:config …), as the other functions read it
  const c = require("../provider/dynamic/compliance") as typeof import("../provider/dynamic/compliance");
  const failures = c.validateComplianceArgs(args as Record<string, unknown>);
  if (failures.length) throw new DsopsError(`${fn}: ${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  return c.readComplianceReport(args as Record<string, unknown>);
}

/**
 * The compliance report (PCI-DSS v4.0, SOC 2) of a dsops.yaml's rotated credentials, read now:
 * the same JSON as `dsops report compliance --format json`. A function rather than a resource:
 * a report has nothing to create or delete and is read afresh at every preview and update
 * (export it as a stack output). No value is read to build it, so nothing in it is secret.
 */
export async function getComplianceReport(args: GetComplianceReportArgs): Promise<GetComplianceReportResult> {
  return readCompliance("getComplianceReport", args);
}

/** getComplianceReport's Output form: arguments may be Outputs. */
export function getComplianceReportOutput(args: GetComplianceReportOutputArgs): pulumi.Output<GetComplianceReportResult> {
  const policies = args.policies?.map((p) => (p instanceof RotationPolicy ? (policyReports.get(p) as pulumi.Output<ComplianceReportPolicy>) : p));
  const all = pulumi.output({ ...args, ...(policies ? { policies } : {}) });
  // A report holds no value: a policy's protected inputs (a target's inline credentials) do not make it a secret.
  const result = all.apply((a) => asRunError("getComplianceReportOutput", () => readCompliance("getComplianceReportOutput", a as GetComplianceReportArgs)));
  return (policies ? pulumi.unsecret(result) : result) as pulumi.Output<GetComplianceReportResult>;
}
