import type { Command } from "commander";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { VariableRotation } from "../../rotation/settings";
import type { RotationDecision } from "../../rotation/due";
import { DsopsError } from "../../core/errors";
import { printJson, table } from "../util";
import { governanceContext } from "./governance-context";
import { rotateAudited } from "./rotate";
import type { RegisteredPolicies } from "./worker-policies";

/**
 * `dsops rotation run --due`: one pass over every rotation of dsops.yaml (of `--env`): the due
 * decision of provider/rotation/due.ts for each, and what is due now rotated through the composed
 * engine (locks, history, notifications, health, rollout), one after the other. Safe to start
 * from cron every few minutes: the due decision is asked again under each secret's rotation lock,
 * so two overlapping passes never rotate a credential twice (the second one reports it as
 * running elsewhere). Exit 1 when any rotation failed; the others still run.
 */

type WithEngine = (cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>) => Promise<void>;

/** One rotation's line of the pass. */
interface PassRow {
  env: string;
  variable: string;
  service: string;
  /** due | waiting | not-due | blocked */
  state: RotationDecision["state"];
  /** The decision as printed: `due now`, `due but waiting for …`, `not due until …`, `blocked (…)`. */
  decision: string;
  /** rotated | failed | skipped | would run | - */
  result: string;
  lastRotatedAt?: string;
  dueAt?: string;
  opensAt?: string;
  reason?: string;
  versionId?: string;
  recordId?: string;
  error?: string;
}

const iso = (t: number) => new Date(t).toISOString();

export function registerRun(rotation: Command, withEngine: WithEngine): void {
  rotation
    .command("run")
    .description("one pass over every rotation of dsops.yaml: rotate what is due now (inside its windows), report the rest; for cron, systemd timers, Kubernetes CronJobs")
    .option("--due", "rotate the rotations that are due (required: the only mode of a pass)")
    .option("-e, --env <env>", "only this env")
    .option("--dry-run", "list what would run; rotate nothing")
    .option("--json", "machine-readable output")
    .option("--database-url <url>", "also the RotationPolicy definitions registered in this PostgreSQL (dsops:scheduler): a postgresql:// URL or a store:// reference holding one")
    .action(async (o: { due?: boolean; env?: string; dryRun?: boolean; json?: boolean; databaseUrl?: string }, cmd: Command) => {
      if (!o.due) cmd.error("error: say what to run: dsops rotation run --due", { exitCode: 2, code: "dsops.missingDue" });
      await withEngine(cmd, async (engine) => {
        if (o.env && !Object.hasOwn(engine.config.envs, o.env))
          throw new DsopsError(`--env ${o.env}: no such env in dsops.yaml (envs: ${Object.keys(engine.config.envs).join(", ")})`);
        const policies = o.databaseUrl && !o.env ? await registeredPolicies(engine, o.databaseUrl) : undefined;
        const { rows, bugs } = await pass(engine, o, policies).finally(async () => {
          await policies?.close();
          // Approval and break-glass notifications go straight to the hub: wait (capped) for them.
          await engine.notifications?.settle();
        });
        if (o.json) printJson(rows);
        else if (!rows.length) process.stdout.write(`no rotation in dsops.yaml${o.env ? ` for env ${o.env}` : ""}\n`);
        else {
          const t = [["VARIABLE", "ENV", "SERVICE", "DECISION", "RESULT"]];
          for (const r of rows) t.push([r.variable, r.env, r.service, r.decision, r.result + (r.error ? `: ${r.error}` : r.versionId ? ` (version ${r.versionId})` : r.reason && (r.result === "skipped" || r.result === "pending approval" || r.result === "denied") ? ` (${r.reason})` : "")]);
          process.stdout.write(table(t));
        }
        if (bugs.length) throw bugs[0];
        const failed = rows.filter((r) => r.result === "failed");
        if (failed.length)
          throw new DsopsError(`${failed.length} of ${rows.filter((r) => r.state === "due").length} due rotations failed: ${failed.map((r) => `${r.env}/${r.variable}`).join(", ")}`, {
            hint: "see each one's error above; dsops rotation history --env ENV --var VAR shows its record",
          });
      });
    });
}

/** One rotation of dsops.yaml with its due decision now (the one decision of provider/rotation/due.ts). */
export interface DueEvaluation {
  env: string;
  variable: string;
  service: string;
  /** The decision; undefined with `error` when it could not be made (a user error: history unreadable, bad settings). */
  decision?: RotationDecision;
  error?: DsopsError;
}

/**
 * The due decision of every rotation of dsops.yaml (of `env`): shared by `rotation run --due` and
 * `dsops worker --scheduler`. A catalogue service type this version cannot rotate is `blocked`.
 */
export async function evaluateDue(engine: ComposedRotationEngine, env?: string): Promise<DueEvaluation[]> {
  const { decideRotation } = require("../../rotation/due") as typeof import("../../rotation/due");
  const { plannedTargetTypes } = require("../../rotation/targets/types") as typeof import("../../rotation/targets/types");
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const { chainOfStage, openChain } = require("../../rotation/chain/run") as typeof import("../../rotation/chain/run");
  const catalogue = plannedTargetTypes as readonly string[];
  const out: DueEvaluation[] = [];
  const recordsOf = await historyByVariable(engine, env);
  for (const v of engine.rotated(env)) {
    const variable = engine.config.envs[v.env][v.variable];
    const policy = variable.spec.rotation as VariableRotation;
    const at = `envs.${v.env}.${v.variable}.rotation`;
    const secret = variable.ref ? `store://${variable.ref.store}/${variable.ref.key}` : "-";
    const base = { env: v.env, variable: v.variable, service: policy.service };
    const type = engine.config.raw.services[policy.service]?.type;
    try {
      const records = recordsOf ? (recordsOf.get(`${v.env}/${v.variable}`) ?? []) : await engine.history({ env: v.env, variable: v.variable });
      let d = decideRotation(policy, { at, secret, records, now: clock().now() });
      // A stage of a chain (chains:) is rotated by its chain: the first stage's decision starts it, an open chain goes on now.
      const stage = chainOfStage(engine.config, v.env, v.variable);
      if (stage && stage.index > 0) d = { state: "blocked", ...(d.lastRotatedAt !== undefined ? { lastRotatedAt: d.lastRotatedAt } : {}), reason: `stage ${stage.index + 1} of chain ${stage.name}: rotated by the chain after ${stage.spec.stages[stage.index - 1]}` };
      else if (stage && (await openChain(engine, stage.name))) d = { state: "due", dueAt: clock().now(), ...(d.lastRotatedAt !== undefined ? { lastRotatedAt: d.lastRotatedAt } : {}) };
      if (type !== undefined && catalogue.includes(type))
        d = { state: "blocked", ...(d.lastRotatedAt !== undefined ? { lastRotatedAt: d.lastRotatedAt } : {}), reason: `service type "${type}" is in dsops's service catalogue, but this version cannot rotate it yet` };
      out.push({ ...base, decision: d });
    } catch (e) {
      if (!(e instanceof DsopsError)) throw e;
      out.push({ ...base, error: e });
    }
  }
  return out;
}

/**
 * The history read once and grouped by `<env>/<variable>` (newest first, as `engine.history`
 * gives them): asking it per variable walks every rotated variable each time, which is
 * quadratic in their number (10,000 rotations: seconds of CPU per pass). Undefined when the
 * history cannot be read as a whole: then each variable is asked alone, so the unreadable ones
 * are reported one by one.
 */
async function historyByVariable(engine: ComposedRotationEngine, env?: string): Promise<Map<string, import("../../rotation/types").RotationRecord[]> | undefined> {
  try {
    const by = new Map<string, import("../../rotation/types").RotationRecord[]>();
    for (const r of await engine.history(env ? { env } : {})) {
      const k = `${r.env}/${r.variable}`;
      const list = by.get(k);
      if (list) list.push(r);
      else by.set(k, [r]);
    }
    return by;
  } catch (e) {
    if (e instanceof DsopsError) return undefined;
    throw e;
  }
}

/** What became of one due rotation run through {@link rotateIfDue}. */
export type DueRunOutcome =
  | { result: "rotated" | "failed" | "grace" | "succeeded" | string; recordId: string; versionId?: string }
  | { result: "skipped"; reason: "running elsewhere" | "rotated elsewhere meanwhile" | string }
  | { result: "pending approval" | "denied"; reason: string; approvalId: string };

/**
 * One due rotation through the composed engine (audited as `command`), the due decision asked
 * again under the secret's rotation lock: another pass or worker may have rotated it since the
 * history was read (then `skipped`). Errors of the rotation are thrown.
 */
export async function rotateIfDue(engine: ComposedRotationEngine, command: "rotation run --due" | "worker", env: string, variable: string): Promise<DueRunOutcome> {
  const { variableDueAt } = require("../../rotation/due") as typeof import("../../rotation/due");
  const { RotationInProgressError, RotatedElsewhereError } = require("../../rotation/errors") as typeof import("../../rotation/errors");
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const spec = engine.config.envs[env]?.[variable]?.spec.rotation as VariableRotation | undefined;
  if (!spec) throw new DsopsError(`${env}/${variable}: no rotation block in dsops.yaml (any more)`, { hint: "the job was queued from an older dsops.yaml; nothing to rotate" });
  const policy = spec;
  const at = `envs.${env}.${variable}.rotation`;
  // A job queued inside a window may run after it closed (a retry, a busy pool): the windows are asked again.
  const shut = windowsShut(policy, at, clock().now());
  if (shut) return { result: "skipped", reason: shut };
  const isDue = (last: number | undefined) => {
    const dueAt = variableDueAt(policy, at, last, clock().now());
    return dueAt !== undefined && clock().now() >= dueAt;
  };
  // rotation.approval: a due rotation waits for its approval request to be granted (provider/rotation/governance.ts).
  let markUsed = async (_recordId: string): Promise<void> => undefined;
  if (policy.approval) {
    const { approvalGate, markApprovalUsed } = require("../../rotation/governance") as typeof import("../../rotation/governance");
    const { requesterIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
    const gov = governanceContext(engine);
    const gate = await approvalGate(gov, env, variable, policy.approval, requesterIdentity(policy.approval, engine.config.dir));
    if (!gate.go) return { result: gate.approval.status === "denied" ? "denied" : "pending approval", reason: gate.reason, approvalId: gate.approval.id };
    markUsed = (recordId) => markApprovalUsed(gov, gate.approval, recordId);
  }
  const chain = require("../../rotation/chain/run") as typeof import("../../rotation/chain/run");
  const stage = chain.chainOfStage(engine.config, env, variable);
  if (stage) {
    const out = await runChainIfDue(engine, stage.name, stage.index, () => {
      const { lastRotationAt } = require("../../rotation/due") as typeof import("../../rotation/due");
      const ref = engine.config.envs[env][variable].ref;
      return engine.history({ env, variable, limit: 20 }).then((recs) => isDue(lastRotationAt(recs, `store://${ref?.store}/${ref?.key}`)));
    });
    if (out.result === "rotated" && "recordId" in out) await markUsed(out.recordId);
    return out;
  }
  try {
    const res = await rotateAudited(engine, command, env, variable, { ifDue: isDue });
    if (res.record.status === "succeeded" || res.record.status === "grace") await markUsed(res.record.id);
    return {
      result: res.record.status === "succeeded" || res.record.status === "grace" ? "rotated" : res.record.status,
      recordId: res.record.id,
      ...(res.record.newVersionId ? { versionId: res.record.newVersionId } : {}),
    };
  } catch (e) {
    if (e instanceof RotationInProgressError) return { result: "skipped", reason: "running elsewhere" };
    if (e instanceof RotatedElsewhereError) return { result: "skipped", reason: "rotated elsewhere meanwhile" };
    throw e;
  }
}

/**
 * A stage of a chain, due: the chain goes on when open (a stage soaking or left unfinished), or
 * starts when its first stage is still due; a later stage is never rotated alone (`skipped`).
 * A chain that failed (rolled back) throws, as a failed rotation does.
 */
async function runChainIfDue(engine: ComposedRotationEngine, name: string, index: number, stillDue: () => Promise<boolean>): Promise<DueRunOutcome> {
  const chain = require("../../rotation/chain/run") as typeof import("../../rotation/chain/run");
  const { RotationInProgressError } = require("../../rotation/errors") as typeof import("../../rotation/errors");
  const open = await chain.openChain(engine, name);
  if (!open && index > 0) return { result: "skipped", reason: `rotated by chain ${name}` };
  if (!open) {
    // A chain stopped on purpose (--abort) is not started again by the scheduler: a person starts it (dsops rotation chain NAME).
    const [last] = await chain.chainRecords(engine, name, 1);
    if (last?.status === "aborted")
      return { result: "skipped", reason: `chain ${name} was aborted (${last.id}, ${last.error ?? "by hand"}); the scheduler does not start it again: dsops rotation chain ${name}` };
  }
  if (!open && !(await stillDue())) return { result: "skipped", reason: "rotated elsewhere meanwhile" };
  try {
    const res = await chain.runChain(engine, name);
    return { result: res.state === "soaking" ? `soaking until ${res.next}` : "rotated", recordId: res.record.id };
  } catch (e) {
    if (e instanceof RotationInProgressError) return { result: "skipped", reason: "running elsewhere" };
    throw e;
  }
}

/** A registered RotationPolicy (dsops:scheduler) rotated if still due, on its own configuration (`dsops worker`, `rotation run --due --database-url`). */
export async function rotateRegistered(policies: RegisteredPolicies, id: string, command: "rotation run --due" | "worker"): Promise<DueRunOutcome> {
  const { POLICY_ENV, POLICY_VARIABLE } = require("../../compose/registered-policies") as typeof import("../../compose/registered-policies");
  return rotateIfDue(await policies.engineFor(id), command, POLICY_ENV, POLICY_VARIABLE);
}

/** The registered policies of the database `--database-url` names (a store:// reference read through dsops.yaml; never printed). */
async function registeredPolicies(engine: ComposedRotationEngine, raw: string): Promise<RegisteredPolicies> {
  const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
  const { RegisteredPolicies: Policies } = require("./worker-policies") as typeof import("./worker-policies");
  const url = raw.startsWith("store://") ? (await engine.resolver.resolveRef(parseStoreUri(raw))).value.reveal().trim() : raw;
  return new Policies(url, (m) => process.stderr.write(`${m}\n`));
}

/** Why the rotation's windows are shut at `now` (`outside its windows: …`, `blackout: …`), or undefined when one is open (or none is declared). */
function windowsShut(policy: VariableRotation, at: string, now: number): string | undefined {
  const { windowsAt, rotationWindows } = require("../../rotation/due") as typeof import("../../rotation/due");
  const w = windowsAt(rotationWindows(policy, at), now);
  if (w.open) return undefined;
  if (w.blockedBy) return `blackout: ${w.blockedBy}`;
  return `outside its windows: ${w.nextOpenAt !== undefined ? `the next opens at ${iso(w.nextOpenAt)}` : "none opens again"}`;
}

async function pass(engine: ComposedRotationEngine, o: { env?: string; dryRun?: boolean }, policies?: RegisteredPolicies): Promise<{ rows: PassRow[]; bugs: unknown[] }> {
  const rows: PassRow[] = [];
  const bugs: unknown[] = [];
  // Registered RotationPolicy definitions: env "policy", the policy's id as the variable; one this pass cannot use is blocked.
  const registered = (policies ? await policies.evaluate() : []).map((p) => ({
    env: "policy",
    variable: p.id,
    service: "-",
    policy: p.id,
    decision: p.decision ?? ({ state: "blocked", reason: p.error?.message ?? "unknown" } as RotationDecision),
    error: undefined as DsopsError | undefined,
  }));
  if (!o.dryRun) rows.push(...(await closeExpiredBreakGlassRows(engine, o.env, bugs)));
  for (const ev of [...(await evaluateDue(engine, o.env)), ...registered]) {
    const base = { env: ev.env, variable: ev.variable, service: ev.service };
    const d = ev.decision;
    if (!d) {
      rows.push({ ...base, state: "due", decision: "unknown", result: "failed", error: ev.error?.message ?? "unknown" });
      continue;
    }
    const row: PassRow = {
      ...base,
      state: d.state,
      decision:
        d.state === "due"
          ? "due now"
          : d.state === "waiting"
            ? `due but waiting for ${d.opensAt !== undefined ? `the window opening at ${iso(d.opensAt)}` : "a window (none opens)"}`
            : d.state === "not-due"
              ? `not due until ${iso(d.dueAt)}`
              : `blocked (${d.reason})`,
      result: "-",
      ...(d.lastRotatedAt !== undefined ? { lastRotatedAt: iso(d.lastRotatedAt) } : {}),
      ...("dueAt" in d ? { dueAt: iso(d.dueAt) } : {}),
      ...(d.state === "waiting" && d.opensAt !== undefined ? { opensAt: iso(d.opensAt) } : {}),
      ...(d.state === "blocked" ? { reason: d.reason } : {}),
    };
    rows.push(row);
    if (d.state !== "due") continue;
    if (o.dryRun) {
      row.result = "would run";
      continue;
    }
    try {
      const res = "policy" in ev ? await rotateRegistered(policies as RegisteredPolicies, String(ev.policy), "rotation run --due") : await rotateIfDue(engine, "rotation run --due", ev.env, ev.variable);
      row.result = res.result;
      if ("reason" in res) row.reason = res.reason;
      else {
        row.recordId = res.recordId;
        if (res.versionId) row.versionId = res.versionId;
      }
    } catch (e) {
      // A fault that is not a user error is thrown after the pass (exit 70, with its stack).
      row.result = "failed";
      row.error = e instanceof DsopsError ? e.message : "internal error (its stack follows the table)";
      if (!(e instanceof DsopsError)) bugs.push(e);
    }
  }
  return { rows, bugs };
}

/**
 * Break-glass grants whose time ran out are closed at the start of a pass: each credential is
 * rotated (forced) and the grant recorded closed (provider/rotation/governance.ts). A failed
 * rotation leaves the grant open for the next pass and is reported as a failed row.
 */
async function closeExpiredBreakGlassRows(engine: ComposedRotationEngine, env: string | undefined, bugs: unknown[]): Promise<PassRow[]> {
  const { closeExpiredBreakGlass } = require("../../rotation/governance") as typeof import("../../rotation/governance");
  const { osIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
  const rows: PassRow[] = [];
  for (const c of await closeExpiredBreakGlass(governanceContext(engine), osIdentity(), env)) {
    const r = c.record;
    const row: PassRow = { env: r.env, variable: r.variable, service: r.service, state: "due", decision: `break-glass ${r.id} expired at ${r.expiresAt}: forced rotation`, result: c.error ? "failed" : "rotated" };
    if (r.forcedRotationId) row.recordId = r.forcedRotationId;
    if (c.error) {
      row.error = c.error instanceof DsopsError ? c.error.message : "internal error (its stack follows the table)";
      if (!(c.error instanceof DsopsError)) bugs.push(c.error);
    }
    rows.push(row);
  }
  return rows;
}
