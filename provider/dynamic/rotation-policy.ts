import { configFromObject, type Config } from "../compose/config";
import { clock } from "../core/clock";
import { ConfigError, DsopsError, NotFoundError, errorMessage } from "../core/errors";
import { parseStoreUri, formatStoreUri, type SecretRef } from "../engine/refs";
import { suggest } from "../core/suggest";
import { Window, type WindowSpec } from "../schedule/window";
import { hasStaging, type Store } from "../stores/types";
import { auditedAccess, cached, hasUnknown, named, noteRead, providerConfig, schedulerConnection, schedulerSetting, takeRead, zodFailures } from "./context";
import { rotationPolicyInputsSchema, type RotationPolicyInputs } from "./inputs";
import { approvalSchema } from "../rotation/settings";
import { currentVersionAge, decideDue, dueAfter, type DuePaths, type DueSchedule } from "../rotation/due";
import type { RotationEngine } from "../rotation/engine";
import type { HistoryBackend } from "../rotation/history/types";
import { createHash } from "node:crypto";
import { afterCycleOf, listPolicies, policyHistory, registerPolicy, unregisterPolicy, type PolicyDefinition } from "../compose/registered-policies";

/**
 * The RotationPolicy resource in the provider process. The decision to rotate is taken at plan
 * time, from the store (the current version's age), the schedule, the windows and the one
 * clock (DSOPS_CLOCK), the way Terraform's time_rotating_v2 does, and never by deleting state:
 * `check` writes the reason into the computed input `pendingRotation`, so `pulumi preview`
 * shows the policy as an update that says why; `update` then rotates through the engine.
 */

const ENV = "pulumi";
const VARIABLE = "SECRET";
const TARGET = "policy-target";

const engines = new Map<Config, RotationEngine>();

interface PolicySubject {
  config: Config;
  ref: SecretRef;
  engine: RotationEngine;
}

/** The configuration a policy builds (dsops.yaml's shape, before it is checked) and its secret. */
function policyRaw(inputs: RotationPolicyInputs): { raw: Record<string, unknown> & { services: Record<string, unknown> }; ref: SecretRef; service: string; base: Config } {
  const base = providerConfig();
  const ref = parseStoreUri(inputs.secret);
  if (!base.stores[ref.store]) {
    const names = Object.keys(base.stores);
    const hint = suggest(ref.store, names);
    throw new DsopsError(`secret: unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : ` (stores: ${names.join(", ") || "none"})`}`);
  }
  let service: string;
  const services = { ...base.raw.services };
  let user = inputs.user;
  let users = inputs.users;
  if (typeof inputs.target === "string") {
    service = inputs.target;
    if (!services[service]) {
      const names = Object.keys(services);
      const hint = suggest(service, names);
      throw new DsopsError(`target: unknown service "${service}"${hint ? ` (did you mean "${hint}"?)` : ` (services: ${names.join(", ") || "none"})`}`);
    }
  } else {
    const { user: u, users: us, ...entry } = inputs.target as Record<string, unknown>;
    user ??= u as string | undefined;
    users ??= us as [string, string] | undefined;
    service = TARGET;
    services[service] = entry as { type: string };
  }
  const rotation = {
    service,
    strategy: inputs.strategy,
    ...(user !== undefined ? { user } : {}),
    ...(users !== undefined ? { users } : {}),
    ...(inputs.generator ? { generator: inputs.generator } : {}),
    ...(inputs.verify ? { verification: inputs.verify } : {}),
    ...(inputs.notify ? { notifications: inputs.notify } : {}),
    ...(inputs.health ? { health: inputs.health } : {}),
    ...(inputs.monitor ? { monitor: inputs.monitor } : {}),
    ...(inputs.rollout ? { rollout: inputs.rollout } : {}),
    ...(inputs.schedule.cron ? { schedule: inputs.schedule.cron } : {}),
    ...(inputs.approval ? { approval: inputs.approval } : {}),
  };
  const raw = { ...base.raw, services, envs: { [ENV]: { [VARIABLE]: { from: formatStoreUri(ref), rotation } } } };
  return { raw, ref, service, base };
}

function subject(inputs: RotationPolicyInputs): PolicySubject {
  const { raw, ref, base } = policyRaw(inputs);
  const config = cached(`policy:${base.file ?? ""}:${JSON.stringify(raw)}`, () => configFromObject(raw, { dir: base.dir, label: "RotationPolicy", strictRotations: true }));
  let engine = engines.get(config);
  if (!engine) {
    const { composeRotation } = require("../compose/rotation") as typeof import("../compose/rotation");
    // With a scheduler, rotation records and locks live in its database: workers and `up` see each other's rotations.
    const history = schedulerHistory();
    engine = composeRotation(config, history ? { history } : {});
    engines.set(config, engine);
  }
  return { config, ref, engine };
}

const histories = new Map<string, HistoryBackend>();

/** The scheduler database's rotation history, when the stack sets `dsops:scheduler`. */
function schedulerHistory(): HistoryBackend | undefined {
  const s = schedulerSetting();
  if (!s) return undefined;
  let h = histories.get(s.database);
  if (!h) {
    h = policyHistory(() => schedulerConnection(s));
    histories.set(s.database, h);
  }
  return h;
}

// ---------------------------------------------------------------- registration with the scheduler

/** The stores a configuration's settings name (`store://<name>/…`), with those their own settings name. */
function referencedStores(raw: { secretStores?: Record<string, unknown>; providers?: Record<string, unknown> }, start: unknown, first: string): Set<string> {
  const names = new Set<string>([first]);
  const scan = (v: unknown) => {
    for (const m of JSON.stringify(v ?? null).matchAll(/store:\/\/([^/"\\]+)\//g)) {
      if (!names.has(m[1])) {
        names.add(m[1]);
        scan(raw.secretStores?.[m[1]] ?? raw.providers?.[m[1]]);
      }
    }
  };
  scan(start);
  scan(raw.secretStores?.[first] ?? raw.providers?.[first]);
  return names;
}

/**
 * What is registered for a policy: the configuration it builds, cut to what its rotation uses
 * (its service, the stores named, notifications and policies), settings as written (references
 * and ${VAR} expansions stay), plus its schedule and windows. Never a value.
 */
function definitionOf(inputs: RotationPolicyInputs): PolicyDefinition {
  const { raw, ref, service, base } = policyRaw(inputs);
  const r = raw as unknown as Record<string, unknown> & { services: Record<string, unknown>; secretStores?: Record<string, unknown>; providers?: Record<string, unknown>; envs: Record<string, Record<string, { rotation: Record<string, unknown> }>> };
  const windows = (inputs.windows ?? []).map((w) => {
    const x = w as unknown as WindowSpec & { blackouts?: unknown; enabled?: boolean };
    return { schedule: x.schedule, duration: x.duration, ...(x.timezone ? { timezone: x.timezone } : {}), ...(x.blackouts ? { blackouts: x.blackouts } : {}), ...(x.enabled !== undefined ? { enabled: x.enabled } : {}) } as WindowSpec;
  });
  const spec = r.envs[ENV][VARIABLE];
  // The worker's due check under the rotation lock reads rotation.ttl / rotation.schedule and rotation.windows.
  const rotation = { ...spec.rotation, ...(inputs.schedule.every ? { ttl: inputs.schedule.every } : {}), ...(windows.length ? { windows } : {}) };
  const envs = { [ENV]: { [VARIABLE]: { ...spec, rotation } } };
  const services = { [service]: r.services[service] };
  const used = referencedStores(r, { services, envs, notifications: r.notifications }, ref.store);
  const pick = (section?: Record<string, unknown>) => Object.fromEntries(Object.entries(section ?? {}).filter(([k]) => used.has(k)));
  const config: Record<string, unknown> = {
    ...(r.version !== undefined ? { version: r.version } : {}),
    secretStores: pick(r.secretStores),
    ...(Object.keys(pick(r.providers)).length ? { providers: pick(r.providers) } : {}),
    services,
    ...(r.notifications ? { notifications: r.notifications } : {}),
    ...(r.policies ? { policies: r.policies } : {}),
    envs,
  };
  const schedule = { ...(inputs.schedule.every ? { every: inputs.schedule.every } : {}), ...(inputs.schedule.cron ? { cron: inputs.schedule.cron } : {}), ...(inputs.schedule.timezone ? { timezone: inputs.schedule.timezone } : {}) };
  return { version: 1, secret: secretOf(ref), dir: base.dir, schedule, windows, config, ...(inputs.after ? { after: { ...inputs.after, policy: secretOf(parseStoreUri(inputs.after.policy)) } } : {}) };
}

/** `<project>/<stack>/<name>` as the SDK passes it (`policyId`), else the policy's secret. */
function policyIdOf(props: Record<string, unknown>): { id: string; project: string; stack: string; name: string } {
  const given = typeof props.policyId === "string" ? props.policyId : undefined;
  const parts = given?.split("/") ?? [];
  if (given && parts.length >= 3) return { id: given, project: parts[0], stack: parts[1], name: parts.slice(2).join("/") };
  const secret = String(props.secret);
  return { id: given ?? secret, project: "", stack: "", name: secret };
}

/** What the state records of a registration: the policy's id and a digest of its definition (a change re-registers). */
function registrationOf(inputs: RotationPolicyInputs, props: Record<string, unknown>): string | undefined {
  if (!schedulerSetting()) return undefined;
  const digest = createHash("sha256").update(JSON.stringify(definitionOf(inputs))).digest("hex").slice(0, 16);
  return `${policyIdOf(props).id} ${digest}`;
}

/** Register the policy with the scheduler (`dsops:scheduler`), or nothing when the stack sets none. */
async function registerWithScheduler(inputs: RotationPolicyInputs, props: Record<string, unknown>): Promise<{ schedulerRegistration?: string }> {
  const s = schedulerSetting();
  if (!s) return {};
  const registration = registrationOf(inputs, props) as string;
  await named(`RotationPolicy ${inputs.secret}: dsops:scheduler`, async () => registerPolicy(await schedulerConnection(s), { ...policyIdOf(props), definition: definitionOf(inputs) }));
  return { schedulerRegistration: registration };
}

/** The secret as rotation records name it (`store://<store>/<key>`, as the engine writes it). */
function secretOf(ref: Pick<SecretRef, "store" | "key">): string {
  return `store://${ref.store}/${ref.key}`;
}

function stagingStore(s: PolicySubject): Store & { stagesOf(key: string): Promise<Record<string, string | undefined>> } {
  const store = s.engine.resolver.store(s.ref.store);
  if (!hasStaging(store)) throw new DsopsError(`secret: store "${s.ref.store}" (${store.type}) cannot stage rotations`);
  return store;
}

function windowsOf(inputs: RotationPolicyInputs): Window[] {
  return (inputs.windows ?? []).map((w, i) => new Window(w as unknown as WindowSpec, `windows[${i}]`));
}

/** The policy's schedule, as the due decision reads it (the paths its errors name are the policy's inputs). */
function scheduleOf(inputs: RotationPolicyInputs): { schedule: DueSchedule; paths: DuePaths } {
  return {
    schedule: { ...(inputs.schedule.every ? { every: inputs.schedule.every } : {}), ...(inputs.schedule.cron ? { cron: inputs.schedule.cron } : {}), ...(inputs.schedule.timezone ? { timezone: inputs.schedule.timezone } : {}) },
    paths: { cron: "schedule.cron", window: "schedule", every: "schedule.every" },
  };
}

/** What the policy sees now: versions, age, due date and windows. No value is read. */
export interface Evaluation {
  currentVersionId?: string;
  previousVersionId?: string;
  lastRotatedAt?: string;
  nextDueAt?: string;
  due: boolean;
  windowOpen: boolean;
  windowClosesAt?: string;
  nextOpenAt?: string;
  blockedBy?: string;
  /** `after`: why the policy waits for its predecessor (absent: it does not wait). */
  waitingFor?: string;
  /** With `approval`, due and inside a window: whether the latest request is granted, else why it waits (read only). */
  approval?: { granted: boolean; reason: string; id?: string };
}

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

export async function evaluate(inputs: RotationPolicyInputs): Promise<Evaluation> {
  const s = subject(inputs);
  const store = stagingStore(s);
  const now = clock().now();
  const stages = await store.stagesOf(s.ref.key);
  const last = await currentVersionAge(store, s.ref.key, stages.current, s.engine, { variable: VARIABLE, secret: secretOf(s.ref) });
  const decision = decideDue({ ...scheduleOf(inputs), windows: windowsOf(inputs), now, ...(last !== undefined ? { lastRotatedAt: last } : {}) });
  const nextDue = decision.nextDueAt;
  const due = decision.due;
  const { open: windowOpen, closesAt, nextOpenAt: nextOpen, blockedBy } = decision.window;
  const waitingFor = inputs.after ? await predecessorWait(inputs, inputs.after, last, now) : undefined;
  let approval: Evaluation["approval"];
  if (inputs.approval && due && windowOpen && !waitingFor) {
    const { peekApproval } = require("../rotation/governance") as typeof import("../rotation/governance");
    const p = await peekApproval(governance(s), ENV, VARIABLE);
    approval = { granted: p.granted, reason: p.reason, ...(p.approval ? { id: p.approval.id } : {}) };
  }
  return {
    ...(approval ? { approval } : {}),
    ...(stages.current ? { currentVersionId: stages.current } : {}),
    ...(stages.previous ? { previousVersionId: stages.previous } : {}),
    ...(last !== undefined ? { lastRotatedAt: iso(last) } : {}),
    ...(nextDue !== undefined ? { nextDueAt: iso(nextDue) } : {}),
    due,
    windowOpen,
    ...(closesAt !== undefined ? { windowClosesAt: iso(closesAt) } : {}),
    ...(nextOpen !== undefined ? { nextOpenAt: iso(nextOpen) } : {}),
    ...(blockedBy ? { blockedBy } : {}),
    ...(waitingFor ? { waitingFor } : {}),
  };
}

/**
 * `after`: why a policy must still wait for its predecessor (the policy of `after.policy`, in
 * stage `after.stage`), or undefined when it may rotate: the predecessor has a successful
 * rotation since this policy's own last one (`lastRotatedAt`), and its soak has passed since.
 * The predecessor's records are read from the history its secret has here (the scheduler's
 * database with `dsops:scheduler`, else the file next to its store); never a value.
 */
async function predecessorWait(inputs: RotationPolicyInputs, after: NonNullable<RotationPolicyInputs["after"]>, lastRotatedAt: number | undefined, now: number): Promise<string | undefined> {
  const { parseDuration } = require("../core/duration") as typeof import("../core/duration");
  const soakMs = after.soak === undefined ? 0 : parseDuration(after.soak, "after.soak", { allowZero: true });
  let pred: SecretRef;
  try {
    pred = parseStoreUri(after.policy);
  } catch (e) {
    throw new DsopsError(`after.policy: ${errorMessage(e)} (give the predecessor's secret, store://<store>/<key>, or its RotationPolicy)`);
  }
  const secret = secretOf(pred);
  if (secret === secretOf(parseStoreUri(inputs.secret))) throw new DsopsError(`after.policy: the policy cannot wait for itself (${secret}): a cycle`);
  if (!providerConfig().stores[pred.store]) throw new DsopsError(`after.policy: unknown store "${pred.store}" (stores: ${Object.keys(providerConfig().stores).join(", ") || "none"})`);
  const records = await historyEngine(pred).history({ variable: VARIABLE, secret, limit: 50 });
  const { predecessorWait: wait } = require("../rotation/chain/after") as typeof import("../rotation/chain/after");
  return wait({ secret, stage: after.stage, soakMs }, records, lastRotatedAt, now);
}

/**
 * The `after` of every policy this provider process checked (the program's policies, at
 * preview and up): policy id → its secret and its predecessor's. With them (and the policies
 * other stacks registered with `dsops:scheduler`), a cycle is refused at the check of the
 * policy that closes it, naming every policy of it, instead of each waiting for ever.
 */
const checkedAfter = new Map<string, { secret: string; pred: string | null }>();

async function refuseAfterCycle(inputs: RotationPolicyInputs, props: Record<string, unknown>): Promise<void> {
  let secret: string;
  let pred: string | null = null;
  try {
    secret = secretOf(parseStoreUri(inputs.secret));
    if (inputs.after) pred = secretOf(parseStoreUri(inputs.after.policy));
  } catch {
    return; // the checks after this one name the malformed reference
  }
  const id = policyIdOf({ ...props, secret: inputs.secret });
  checkedAfter.set(id.id, { secret, pred });
  // A policy naming itself is refused by the predecessor check (`cannot wait for itself`).
  if (!pred || pred === secret) return;
  const rows = [...checkedAfter.entries()].map(([k, v]) => ({ id: k, ...v }));
  const s = schedulerSetting();
  if (s) {
    // Other stacks' registrations; this stack's own are superseded by what this program declares.
    const registered = await named("dsops:scheduler", async () => listPolicies(await schedulerConnection(s)));
    for (const r of registered)
      if (!checkedAfter.has(r.id) && !(id.project && r.project === id.project && r.stack === id.stack)) rows.push({ id: r.id, secret: r.definition.secret, pred: r.definition.after?.policy ?? null });
  }
  const cycle = afterCycleOf(rows, id.id);
  if (cycle) {
    checkedAfter.set(id.id, { secret, pred: null });
    throw cycle;
  }
}

/** The reason this operation rotates, or "" when it does not. */
function pendingReason(ev: Evaluation): string {
  if (!ev.due || !ev.windowOpen || ev.waitingFor) return "";
  if (ev.approval && !ev.approval.granted) return "";
  const since = ev.nextDueAt ? `due since ${ev.nextDueAt}` : "due (no current version, or its age is unknown)";
  const base = ev.windowClosesAt ? `${since}; window open until ${ev.windowClosesAt}` : since;
  return ev.approval ? `${base}; ${ev.approval.reason}` : base;
}

/** The approval and break-glass functions on a policy's engine (its notifications: the provider's channels). */
function governance(s: PolicySubject): import("../rotation/governance").GovernanceContext {
  const hub = (s.engine as import("../compose/rotation").ComposedRotationEngine).notifications;
  return { engine: s.engine, clock: clock(), ...(hub ? { notify: hub } : {}) };
}

/**
 * `approval` set, due and inside a window, not approved yet: a request is made (once; every
 * channel told) so `dsops rotation approve ID` can grant it; the next `up` then rotates.
 */
async function requestApproval(inputs: RotationPolicyInputs, ev: Evaluation): Promise<void> {
  if (!inputs.approval || !ev.approval || ev.approval.granted) return;
  const { approvalGate } = require("../rotation/governance") as typeof import("../rotation/governance");
  const { requesterIdentity } = require("../rotation/approval-identity") as typeof import("../rotation/approval-identity");
  const s = subject(inputs);
  const ctx = governance(s);
  const policy = approvalSchema.parse(inputs.approval);
  const gate = await approvalGate(ctx, ENV, VARIABLE, policy, requesterIdentity(policy, s.config.dir), `RotationPolicy ${inputs.secret}: approval`);
  ev.approval = { granted: gate.go, reason: gate.go ? "approved" : `waiting for approval: ${gate.reason}`, id: gate.approval.id };
  await ctx.notify?.settle();
}

/** A one-line summary for a due policy whose windows are all closed, or that waits for approval (the program logs it as a warning). */
export function waitingMessage(ev: Evaluation): string | undefined {
  if (ev.due && ev.waitingFor) return `rotation ${ev.nextDueAt ? `due since ${ev.nextDueAt}` : "due"}, but it ${ev.waitingFor}`;
  if (ev.due && ev.windowOpen && ev.approval && !ev.approval.granted) return `rotation ${ev.nextDueAt ? `due since ${ev.nextDueAt}` : "due"}, ${ev.approval.reason}`;
  if (!ev.due || ev.windowOpen) return undefined;
  const since = ev.nextDueAt ? `due since ${ev.nextDueAt}` : "due";
  return `rotation ${since}, but every maintenance window is closed${ev.blockedBy ? ` (blackout: ${ev.blockedBy})` : ""}; next opening ${ev.nextOpenAt ?? "none scheduled"}`;
}

const inputKeys = ["secret", "target", "strategy", "user", "users", "schedule", "windows", "generator", "verify", "notify", "health", "monitor", "rollout", "rollback", "rotateOnCreate", "triggers", "after", "approval"] as const;

function pickInputs(o: Record<string, unknown>): RotationPolicyInputs {
  return Object.fromEntries([...inputKeys, "pendingRotation"].filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as RotationPolicyInputs;
}

function sameInputs(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const pick = (o: Record<string, unknown>) => JSON.stringify(inputKeys.map((k) => o[k] ?? null));
  return pick(a) === pick(b);
}

/** The policy's outputs now: versions, due date, and the current value (a Pulumi secret). */
async function outputsOf(inputs: RotationPolicyInputs, status: string, lastResult: string) {
  const ev = await evaluate(inputs);
  const s = subject(inputs);
  const store = stagingStore(s);
  const current = ev.currentVersionId;
  const value = current
    ? await auditedAccess(s.config, { command: "pulumi RotationPolicy read", resource: inputs.secret, store: s.ref.store, key: s.ref.key }, async (note) => {
        note({ variables: [{ name: inputs.secret, store: s.ref.store, key: s.ref.key, versionId: current }] });
        return (await store.get({ key: s.ref.key, version: current })).value.reveal();
      })
    : undefined;
  return {
    ...inputs,
    pendingRotation: "",
    ...(value !== undefined ? { value } : {}),
    ...(ev.currentVersionId ? { currentVersionId: ev.currentVersionId } : {}),
    ...(ev.previousVersionId ? { previousVersionId: ev.previousVersionId } : {}),
    ...(ev.lastRotatedAt ? { lastRotatedAt: ev.lastRotatedAt } : {}),
    ...(ev.nextDueAt ? { nextDueAt: ev.nextDueAt } : {}),
    status: status === "current" && ev.due ? (ev.waitingFor ? "waiting-for-predecessor" : !ev.windowOpen ? "waiting-for-window" : ev.approval && !ev.approval.granted ? "waiting-for-approval" : "due") : status,
    lastResult: status === "current" && ev.due && (!ev.windowOpen || ev.waitingFor || (ev.approval && !ev.approval.granted)) ? (waitingMessage(ev) as string) : lastResult,
  };
}

/**
 * Rotate through the engine. A run left open by an earlier `up` whose rotation failed and whose
 * rollback could not finish (the target refused the admin login, say) is finished by the engine
 * first, once the cause is fixed; this `up` then rotates as asked and says so.
 */
async function rotateNow(inputs: RotationPolicyInputs, why: string) {
  const s = subject(inputs);
  const res = await named(`RotationPolicy ${inputs.secret}`, () =>
    auditedAccess(s.config, { command: "pulumi RotationPolicy rotate", resource: inputs.secret, store: s.ref.store, key: s.ref.key }, async (note) => {
      const out = await s.engine.rotate(ENV, VARIABLE, {});
      const rec = out.record;
      if (rec.status !== "succeeded" && rec.status !== "grace") throw new DsopsError(`rotation ${rec.id} ${rec.status}${rec.error ? `: ${rec.error}` : ""}`);
      note({ variables: [{ name: inputs.secret, store: s.ref.store, key: s.ref.key, ...(rec.newVersionId ? { versionId: rec.newVersionId } : {}) }] });
      return out;
    }),
  );
  const r = res.record;
  if (r.status !== "succeeded" && r.status !== "grace")
    throw new DsopsError(`RotationPolicy ${inputs.secret}: rotation ${r.id} ${r.status}${r.error ? `: ${r.error}` : ""}`);
  if (inputs.approval) {
    // The granted request this rotation ran under is used up.
    const g = require("../rotation/governance") as typeof import("../rotation/governance");
    const ctx = governance(s);
    const p = await g.peekApproval(ctx, ENV, VARIABLE);
    if (p.granted && p.approval) await g.markApprovalUsed(ctx, p.approval, r.id);
  }
  const closed = res.finishedRollback;
  const summary =
    `${res.resumed ? "finished interrupted" : "rotated"} ${r.id} (${why}): version ${r.oldVersionId ?? "-"} → ${r.newVersionId ?? "-"}` +
    `${r.status === "grace" ? `, old credential revoked after ${r.retireAfter}` : ""}` +
    `${closed ? `; first finished the rollback of ${closed.id}, which failed earlier${closed.error ? ` (${closed.error})` : ""}` : ""}`;
  return outputsOf(inputs, "rotated", summary);
}

async function rollbackNow(inputs: RotationPolicyInputs) {
  const s = subject(inputs);
  const rb = inputs.rollback as { reason: string; version?: string };
  const service = typeof inputs.target === "string" ? inputs.target : TARGET;
  const recs = await named(`RotationPolicy ${inputs.secret}`, () =>
    auditedAccess(s.config, { command: "pulumi RotationPolicy rollback", resource: inputs.secret, store: s.ref.store, key: s.ref.key }, () =>
      s.engine.rollback(ENV, service, { reason: rb.reason, ...(rb.version ? { version: rb.version } : {}) }, VARIABLE),
    ),
  );
  const r = recs[0];
  return outputsOf(inputs, "rolled-back", `rolled back ${r.id} (${rb.reason}): version ${r.oldVersionId ?? "-"} → ${r.newVersionId ?? "-"}`);
}

/**
 * The target's own credentials (`admin`, `signing_secret`) that name no secret: the rotation
 * would fail at its first login, so the preview says it now. Only metadata is read (describe,
 * no value); a store that cannot answer here is left to the rotation to report.
 */
async function missingTargetSecrets(inputs: RotationPolicyInputs): Promise<Array<{ property: string; reason: string }>> {
  const s = subject(inputs);
  const service = typeof inputs.target === "string" ? inputs.target : TARGET;
  const entry = (s.config.raw.services[service] ?? {}) as Record<string, unknown>;
  const out: Array<{ property: string; reason: string }> = [];
  for (const field of ["admin", "signing_secret"]) {
    const uri = entry[field];
    if (typeof uri !== "string") continue;
    const ref = parseStoreUri(uri);
    try {
      await s.engine.resolver.store(ref.store).describe({ key: ref.key, ...(ref.version !== undefined ? { version: ref.version } : {}) });
    } catch (e) {
      if (!(e instanceof NotFoundError)) continue;
      out.push({
        property: typeof inputs.target === "string" ? "target" : `target.${field}`,
        reason: `${typeof inputs.target === "string" ? `service "${service}": ` : ""}${field} ${uri} does not exist in store "${ref.store}"; the rotation logs in with it`,
      });
    }
  }
  return out;
}

/** The policy's input behind a path of the configuration it builds (`envs.pulumi.SECRET.rotation.users` → `users`). */
const policyInputOf: Readonly<Record<string, string>> = { service: "target", verification: "verify", notifications: "notify", schedule: "schedule.cron" };

/** A problem of the configuration a policy builds, as a failure on the policy's own property. */
function policyFailure(problem: string, target: RotationPolicyInputs["target"]): { property: string; reason: string } {
  const m = /^(\S+?): (.*)$/s.exec(problem);
  if (!m) return { property: "secret", reason: problem };
  const path = m[1].replace(/\[(\d+)\]/g, ".$1");
  const rotation = `envs.${ENV}.${VARIABLE}.rotation`;
  if (path === `envs.${ENV}.${VARIABLE}.from` || path === `envs.${ENV}.${VARIABLE}`) return { property: "secret", reason: m[2] };
  if (path.startsWith(`${rotation}.`)) {
    const [head, ...rest] = path.slice(rotation.length + 1).split(".");
    return { property: [policyInputOf[head] ?? head, ...rest].join("."), reason: m[2] };
  }
  if (path === `services.${TARGET}` || path.startsWith(`services.${TARGET}.`)) return { property: `target${path.slice(`services.${TARGET}`.length)}`, reason: m[2] };
  if (typeof target === "string" && (path === `services.${target}` || path.startsWith(`services.${target}.`))) return { property: "target", reason: `${m[1]}: ${m[2]}` };
  return { property: path, reason: m[2] };
}

export const rotationPolicy = {
  async check(_olds: unknown, news: Record<string, unknown>) {
    const parsed = rotationPolicyInputsSchema.safeParse(pickInputs(news));
    if (!parsed.success) return { inputs: news, failures: zodFailures(parsed.error.issues) };
    if (hasUnknown(news)) return { inputs: news };
    try {
      windowsOf(parsed.data);
      await refuseAfterCycle(parsed.data, news);
      const { schedule, paths } = scheduleOf(parsed.data);
      dueAfter(schedule, paths)(0);
      const ev = await evaluate(parsed.data);
      const missing = await missingTargetSecrets(parsed.data);
      if (missing.length) return { inputs: news, failures: missing };
      await requestApproval(parsed.data, ev);
      return { inputs: { ...news, pendingRotation: pendingReason(ev) } };
    } catch (e) {
      if (e instanceof ConfigError) return { inputs: news, failures: e.problems.map((p) => policyFailure(p, parsed.data.target)) };
      const msg = errorMessage(e);
      const m = /^([A-Za-z_][\w.[\]]*): (.*)$/s.exec(msg);
      return { inputs: news, failures: [m ? { property: m[1], reason: m[2] } : { property: "secret", reason: msg }] };
    }
  },

  /** An update when inputs changed, or when `check` found the rotation due inside a window. */
  async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const refreshed = takeRead(id, olds);
    if (refreshed !== undefined) return { changes: refreshed };
    if (hasUnknown(news)) return { changes: true };
    return { changes: !sameInputs(olds, news) || Boolean(news.pendingRotation) || !sameRegistration(olds, news) };
  },

  async create(inputs: Record<string, unknown>) {
    const i = pickInputs(inputs);
    // Registered first: a database that cannot take it fails the create before anything rotates.
    const reg = await registerWithScheduler(i, inputs);
    // `after`: a predecessor not rotated (and soaked) yet holds rotateOnCreate back too.
    const waits = i.rotateOnCreate && i.after ? (await evaluate(i)).waitingFor : undefined;
    const outs =
      i.rotateOnCreate && !waits ? await rotateNow(i, "rotateOnCreate") : await outputsOf(i, waits ? "waiting-for-predecessor" : "current", waits ? `created; rotateOnCreate ${waits}` : "created; no rotation yet");
    return { id: `policy:${i.secret}`, outs: { ...outs, ...keep(inputs), ...reg } };
  },

  async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const i = pickInputs(news);
    const reg = await registerWithScheduler(i, news);
    if (!reg.schedulerRegistration && typeof olds.schedulerRegistration === "string") await unregisterFrom(olds);
    const done = (outs: Record<string, unknown>) => ({ outs: { ...outs, ...keep(news), ...reg } });
    if (i.rollback && JSON.stringify(olds.rollback ?? null) !== JSON.stringify(i.rollback)) return done(await rollbackNow(i));
    if (JSON.stringify(olds.triggers ?? null) !== JSON.stringify(i.triggers ?? null)) return done(await rotateNow(i, "triggers changed"));
    if (i.pendingRotation) return done(await rotateNow(i, i.pendingRotation));
    return done(await outputsOf(i, "current", "settings updated; no rotation"));
  },

  /** Refresh: a current version the policy did not make is reported as drift. */
  async read(id: string, props: Record<string, unknown>) {
    const outs = { ...(await readPolicy(props)), ...keep(props), ...(typeof props.schedulerRegistration === "string" && schedulerSetting() ? { schedulerRegistration: props.schedulerRegistration } : {}) };
    noteRead(id, props, outs);
    return { id, props: outs };
  },

  /** Deleting a policy never deletes the secret or the users; a registered policy is unregistered from the scheduler. */
  async delete(_id?: string, props?: Record<string, unknown>) {
    if (props && typeof props.schedulerRegistration === "string") await unregisterFrom(props);
  },
};

/** Inputs the policy keeps that are not settings of its rotation (the SDK's `policyId`). */
function keep(props: Record<string, unknown>): Record<string, unknown> {
  return typeof props.policyId === "string" ? { policyId: props.policyId } : {};
}

/** Whether the state's registration is the one the new inputs would write (a changed definition, or a scheduler set or unset, is an update). */
function sameRegistration(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  try {
    return (olds.schedulerRegistration ?? undefined) === registrationOf(pickInputs(news), news);
  } catch {
    // check reports the configuration's problems
    return true;
  }
}

async function unregisterFrom(props: Record<string, unknown>): Promise<void> {
  const s = schedulerSetting();
  const id = String(props.schedulerRegistration).split(" ")[0];
  if (!s) throw new DsopsError(`RotationPolicy ${String(props.secret)}: registered with a scheduler as ${id}, but the stack sets no dsops:scheduler any more`, { hint: `set dsops:scheduler again so it can be unregistered; or delete its row (DELETE FROM dsops_worker.policies WHERE id = '${id}') and run \`pulumi refresh\`` });
  await named(`RotationPolicy ${String(props.secret)}: dsops:scheduler`, async () => {
    await unregisterPolicy(await schedulerConnection(s), id);
  });
}

/** The policy's outputs at refresh; `drifted` when the current version was not made by a rotation of this secret. */
async function readPolicy(props: Record<string, unknown>) {
  const i = pickInputs(props);
  const ev = await evaluate(i);
  if (ev.currentVersionId && props.currentVersionId && ev.currentVersionId !== props.currentVersionId) {
    const s = subject(i);
    const made = (await s.engine.history({ variable: VARIABLE, secret: secretOf(s.ref), limit: 50 })).find((r) => r.status === "succeeded" && r.newVersionId === ev.currentVersionId);
    if (!made) {
      return outputsOf(i, "drifted", `the secret was changed outside the policy: version ${ev.currentVersionId} is current, the policy last saw ${String(props.currentVersionId)}`);
    }
    // Rotated by this policy outside this stack's operations (a scheduled worker): accepted, not drift.
    return outputsOf(i, "rotated", `rotated ${made.id} by the scheduler (outside pulumi up): version ${made.oldVersionId ?? "-"} → ${made.newVersionId ?? "-"}`);
  }
  return outputsOf(i, String(props.status ?? "current"), String(props.lastResult ?? ""));
}

/**
 * True when a dsops rotation of this very secret (same store, same key) made `versionId` its
 * current version (a SecretReference's drift check). Version ids alone say nothing: the file,
 * SSM, Vault and GCP stores number each secret's versions 1, 2, 3…
 */
export async function madeByRotation(ref: Pick<SecretRef, "store" | "key">, versionId: string): Promise<boolean> {
  try {
    const secret = secretOf(ref);
    return (await historyEngine(ref).history({ variable: VARIABLE, secret, limit: 50 })).some((r) => r.status === "succeeded" && r.secret === secret && r.newVersionId === versionId);
  } catch {
    return false;
  }
}

/** An engine that only reads the rotation history of the secret `ref` (the scheduler's database, or the file next to its store). */
function historyEngine(ref: Pick<SecretRef, "store" | "key">): RotationEngine {
  const secret = secretOf(ref);
  const base = providerConfig();
  const raw = { ...base.raw, envs: { [ENV]: { [VARIABLE]: { from: formatStoreUri({ store: ref.store, key: ref.key }), rotation: { service: "_" } } } } };
  // Built only to read the history: its rotation block names no service, so it is not checked against services:.
  const config = cached(`history:${base.file ?? ""}:${secret}`, () => configFromObject(raw, { dir: base.dir, label: "history", checkRotations: false }));
  return readingEngine(config);
}

/** A bare engine on `config` that only reads (status, history, governance records), without notifications or metrics; one per configuration. */
function readingEngine(config: Config): RotationEngine {
  let engine = engines.get(config);
  if (!engine) {
    const { RotationEngine: Engine } = require("../rotation/engine") as typeof import("../rotation/engine");
    const history = schedulerHistory();
    engine = new Engine(config, history ? { history } : {});
    engines.set(config, engine);
  }
  return engine;
}

/**
 * A RotationPolicy as getComplianceReport's `policies` reads it: the configuration the policy
 * builds (with its schedule's `every` as the rotation's ttl and its windows, as the scheduler
 * registers it) and a bare engine on it that only reads (status, history, governance records:
 * the scheduler's database with `dsops:scheduler`, else the file next to its store). Inputs are
 * checked as the resource checks them; a failure names `policies[i].inputs.<field>`.
 */
export function policyReportSource(name: string, raw: Record<string, unknown>, at: string): { name: string; secret: string; engine: RotationEngine } {
  const parsed = rotationPolicyInputsSchema.safeParse(pickInputs(raw));
  if (!parsed.success) {
    const f = zodFailures(parsed.error.issues)[0];
    throw new DsopsError(`${at}.${f.property}: ${f.reason}`);
  }
  const inputs = parsed.data;
  const def = definitionOf(inputs);
  const config = cached(`policy-report:${providerConfig().file ?? ""}:${JSON.stringify(def.config)}`, () => configFromObject(def.config, { dir: def.dir, label: `RotationPolicy ${name}`, checkRotations: false }));
  return { name, secret: def.secret, engine: readingEngine(config) };
}
