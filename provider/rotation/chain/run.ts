import { DsopsError, errorMessage } from "../../core/errors";
import { durationMs } from "../../core/duration";
import { newRotationId, type RotationEngine } from "../engine/index";
import { RotationError } from "../errors";
import type { HistoryBackend } from "../history/types";
import { lockOwner } from "../lock";
import type { VariableRotation } from "../settings";
import type { RotationEvent } from "../events";
import type { RotationRecord } from "../types";
import type { ChainSettings } from "./settings";

/**
 * Multi-environment rotation (`chains:`, ./settings.ts): a persistent state machine kept as one
 * `chain` record in the history of the first stage's variable, under its own lock
 * (`chain://<name>`). Each stage is an ordinary rotation by the engine (its own record, lock,
 * resume and health gate); between stages the rotated stage soaks: its health checks are
 * watched (RotationEngine.soak) until `soak` has passed on the engine's clock. A failure stops
 * the chain: later stages are skipped and the stages already rotated are rolled back, newest
 * first (a manual rollback to the version each rotation replaced). Every change of a stage is
 * saved before the next action, so a run killed at any instant is finished by the next run:
 * it resumes the chain (a stage's unfinished rotation is resumed by the engine) or finishes its
 * rollback.
 *
 * A run advances the chain as far as it can. Without `wait`, a soaking stage gets one round of
 * health checks per run and the run returns `soaking` until the soak has passed (the scheduler
 * or the next `dsops rotation chain` call goes on); with `wait`, the run watches the checks
 * every `soak_interval` until the soak ends and carries on.
 */

/** Where one stage is. */
export type ChainStageStatus = "pending" | "rotating" | "soaking" | "passed" | "skipped" | "rolling-back" | "rolled-back" | "failed" | "rollback-failed";

/** One stage of a chain record (never a value). */
export interface ChainStage {
  readonly env: string;
  /** `store://<store>/<key>` of the stage's variable. */
  readonly secret: string;
  status: ChainStageStatus;
  /** When this stage's rotation was started (its rotation record starts at or after it). */
  startedAt?: string;
  /** The stage's rotation record (in that env's history). */
  rotationId?: string;
  rotatedAt?: string;
  /** The soak ends then (ISO-8601). */
  soakUntil?: string;
  /** Consecutive failed soak rounds so far. */
  soakFailures?: number;
  /** The manual rollback record that put the stage's old version back. */
  rollbackId?: string;
  error?: string;
}

/** The `chain` field of a chain record. */
export interface ChainProgress {
  readonly name: string;
  readonly soak: string;
  readonly stages: ChainStage[];
  /** A stage failed: the rotated stages are being rolled back. */
  rollingBack?: boolean;
  /** The stage that failed (its env). */
  failedStage?: string;
  /** Stopped on purpose (`dsops rotation chain NAME --abort`): who, when, why. The rotated stages are rolled back; the record ends `aborted`. */
  aborted?: { by: string; at: string; reason?: string };
}

/** A history record of kind `chain`: `secret` is `chain://<name>`, `env` the stages joined by commas. */
export interface ChainRecord extends RotationRecord {
  readonly kind: "chain";
  readonly chain: ChainProgress;
}

export interface ChainRunOptions {
  /** Watch a soaking stage until its soak has passed and carry on (default: one round of checks, then return `soaking`). */
  readonly wait?: boolean;
  readonly reason?: string;
}

export interface ChainResult {
  readonly record: ChainRecord;
  /** `succeeded`: every stage passed; `soaking`: a stage is soaking (run again after `next`). */
  readonly state: "succeeded" | "soaking";
  /** When the soaking stage's soak ends (ISO-8601). */
  readonly next?: string;
  /** This run went on with a chain an earlier run left open. */
  readonly resumed: boolean;
}

export const chainSecret = (name: string) => `chain://${name}`;

export function isChainRecord(r: RotationRecord): r is ChainRecord {
  return r.kind === "chain" && typeof (r as Partial<ChainRecord>).chain === "object";
}

/** The chain `name` of the configuration, or an error listing the chains there are. */
export function chainSettings(engine: RotationEngine, name: string): ChainSettings {
  const chains = engine.config.raw.chains ?? {};
  const spec = chains[name];
  if (!spec) throw new DsopsError(`unknown chain "${name}"`, { hint: `chains: ${Object.keys(chains).join(", ") || "(none in dsops.yaml)"}` });
  return spec;
}

/** The history a chain's record and lock live in: the first stage's variable's. */
export function chainHistory(engine: RotationEngine, spec: ChainSettings): HistoryBackend {
  return engine.historyFor(spec.stages[0], spec.variable);
}

/** The chain's open record, if a run left it unfinished (or it is soaking). */
export async function openChain(engine: RotationEngine, name: string): Promise<ChainRecord | undefined> {
  const spec = chainSettings(engine, name);
  const open = (await chainHistory(engine, spec).list({ secret: chainSecret(name), status: ["running"], limit: 1 }))[0];
  return open && isChainRecord(open) ? open : undefined;
}

/** The chain's records, newest first. */
export async function chainRecords(engine: RotationEngine, name: string, limit = 20): Promise<ChainRecord[]> {
  const spec = chainSettings(engine, name);
  return (await chainHistory(engine, spec).list({ secret: chainSecret(name), limit })).filter(isChainRecord);
}

/** Run (start, or go on with) the chain `name`. Throws RotationError when the chain failed and was rolled back. */
export async function runChain(engine: RotationEngine, name: string, options: ChainRunOptions = {}): Promise<ChainResult> {
  const spec = chainSettings(engine, name);
  const history = chainHistory(engine, spec);
  const secret = chainSecret(name);
  const id = newRotationId(engine.clock);
  const lock = await history.lock(secret, lockOwner(engine.clock, id));
  try {
    const open = (await history.list({ secret, status: ["running"], limit: 1 }))[0];
    let rec: ChainRecord;
    const resumed = !!open && isChainRecord(open);
    if (open && isChainRecord(open)) {
      rec = open;
      engine.log(`chain ${name}: going on with ${rec.id} (started by ${rec.who} at ${rec.startedAt})`);
      const by = `${engine.who} pid ${process.pid}`;
      if (rec.resumedBy?.at(-1) !== by) rec.resumedBy = [...(rec.resumedBy ?? []), by];
    } else {
      rec = {
        id,
        kind: "chain",
        secret,
        env: spec.stages.join(","),
        variable: spec.variable,
        service: "chain",
        targetType: "chain",
        strategy: "chain",
        who: engine.who,
        ...(options.reason ? { reason: options.reason } : {}),
        startedAt: new Date(engine.clock.now()).toISOString(),
        status: "running",
        steps: [],
        chain: { name, soak: String(spec.soak), stages: spec.stages.map((env) => ({ env, secret: stageSecret(engine, env, spec.variable), status: "pending" })) },
      };
      engine.log(`chain ${name}: ${rec.id} started: ${spec.stages.join(" → ")}`);
    }
    await history.save(rec);
    return { ...(await advance(engine, spec, history, rec, options)), resumed };
  } finally {
    await lock.release();
  }
}

function stageSecret(engine: RotationEngine, env: string, variable: string): string {
  const ref = engine.config.envs[env]?.[variable]?.ref;
  if (!ref) throw new DsopsError(`envs.${env}.${variable}: a chain stage needs a secret in a store (from: store://…)`);
  return `store://${ref.store}/${ref.key}`;
}

async function advance(engine: RotationEngine, spec: ChainSettings, history: HistoryBackend, rec: ChainRecord, options: ChainRunOptions): Promise<Omit<ChainResult, "resumed">> {
  const c = rec.chain;
  const now = () => new Date(engine.clock.now()).toISOString();
  const soakMs = durationMs(spec.soak);
  const intervalMs = durationMs(spec.soak_interval);
  if (c.rollingBack) return rollBack(engine, spec, history, rec);
  for (let i = 0; i < c.stages.length; i++) {
    const stage = c.stages[i];
    const last = i === c.stages.length - 1;
    if (stage.status === "passed") continue;
    if (stage.status === "pending" || stage.status === "rotating") {
      stage.status = "rotating";
      stage.startedAt ??= now();
      await history.save(rec);
      engine.hit(`chain:before:${stage.env}`);
      let rotation: RotationRecord;
      try {
        rotation = await rotateStage(engine, spec, rec, stage);
      } catch (e) {
        if (!(e instanceof RotationError)) {
          // Not a rotation that failed (a lock held elsewhere, a store or history out of reach, a
          // run the engine left to resume): the chain stays open at this stage; the next run tries again.
          stage.error = errorMessage(e);
          await history.save(rec).catch(() => undefined);
          throw e;
        }
        // The engine rolled its own rotation back (or recorded it failed): the chain fails.
        stage.error = errorMessage(e);
        stage.status = "rolled-back";
        return fail(engine, spec, history, rec, i, `rotation failed: ${stage.error}`);
      }
      stage.rotationId = rotation.id;
      stage.rotatedAt = rotation.finishedAt ?? now();
      delete stage.error;
      if (last) stage.status = "passed";
      else {
        stage.status = "soaking";
        stage.soakUntil = new Date(engine.clock.now() + soakMs).toISOString();
        stage.soakFailures = 0;
      }
      await history.save(rec);
      engine.log(`chain ${c.name}: stage ${stage.env}: rotated (${rotation.id})${last ? "" : `; soaking until ${stage.soakUntil}`}`);
      engine.hit(`chain:after:${stage.env}`);
    }
    if (stage.status === "soaking") {
      const until = Date.parse(stage.soakUntil as string);
      for (;;) {
        const remaining = until - engine.clock.now();
        // --wait: one watch to the end of the soak (rounds every soak_interval; a failed round is checked again after it).
        const watch = options.wait === true;
        const outcome = await engine.soak(stage.env, spec.variable, stage.rotationId as string, {
          periodMs: watch ? Math.max(0, remaining) : 0,
          intervalMs,
          failures: watch ? Math.max(1, spec.failures - (stage.soakFailures ?? 0)) : 1,
        });
        if (outcome.healthy) stage.soakFailures = 0;
        else if (!watch) stage.soakFailures = (stage.soakFailures ?? 0) + 1;
        if (!outcome.healthy && (watch || (stage.soakFailures ?? 0) >= spec.failures)) {
          stage.error = `health checks failed while soaking: ${outcome.failure ?? "unhealthy"}`;
          return fail(engine, spec, history, rec, i, stage.error);
        }
        if (outcome.healthy && engine.clock.now() >= until) break;
        if (!options.wait) {
          await history.save(rec);
          engine.log(`chain ${c.name}: stage ${stage.env}: soaking until ${stage.soakUntil}${outcome.healthy ? "" : ` (a failed round: ${outcome.failure ?? "unhealthy"})`}`);
          return { record: rec, state: "soaking", next: stage.soakUntil as string };
        }
      }
      stage.status = "passed";
      await history.save(rec);
      engine.log(`chain ${c.name}: stage ${stage.env}: soak passed`);
    }
  }
  rec.status = "succeeded";
  rec.finishedAt = now();
  await history.save(rec);
  engine.log(`chain ${c.name}: ${rec.id} succeeded: ${c.stages.map((s) => s.env).join(" → ")}`);
  return { record: rec, state: "succeeded" };
}

/**
 * Rotate one stage, or take the rotation an earlier run of this chain started for it: the
 * first rotation record of the stage's secret started since the stage was, when there is one
 * (running: the engine resumes it; finished: its outcome is the stage's).
 */
async function rotateStage(engine: RotationEngine, spec: ChainSettings, rec: ChainRecord, stage: ChainStage): Promise<RotationRecord> {
  const history = engine.historyFor(stage.env, spec.variable);
  const since = stage.startedAt as string;
  const earlier = (await history.list({ secret: stage.secret, limit: 50 })).filter((r) => r.kind === "rotate" && r.startedAt >= since).at(-1);
  if (earlier && (earlier.status === "succeeded" || earlier.status === "grace")) return earlier;
  if (earlier && (earlier.status === "rolled-back" || earlier.status === "failed")) throw new RotationError(earlier.error ?? `rotation ${earlier.id} ${earlier.status}`, earlier.id);
  const r = await engine.rotate(stage.env, spec.variable, { reason: rec.reason ?? `chain ${rec.chain.name} (${rec.id}): stage ${stage.env}` });
  return r.record;
}

/** A stage failed: skip the later ones, record why, roll back the rotated ones. */
async function fail(engine: RotationEngine, spec: ChainSettings, history: HistoryBackend, rec: ChainRecord, i: number, why: string): Promise<never> {
  const c = rec.chain;
  for (const s of c.stages.slice(i + 1)) if (s.status === "pending") s.status = "skipped";
  c.rollingBack = true;
  c.failedStage = c.stages[i].env;
  rec.error = `stage ${c.stages[i].env} failed: ${why}`;
  await history.save(rec);
  engine.log(`chain ${c.name}: ${rec.error}; rolling back the stages already rotated`);
  engine.hit("chain:before:rollback");
  return rollBack(engine, spec, history, rec);
}

/** Roll back every rotated stage, newest first; the chain ends `rolled-back` (`aborted` when stopped on purpose; `failed` when a stage could not be), and throws saying so. */
async function rollBack(engine: RotationEngine, spec: ChainSettings, history: HistoryBackend, rec: ChainRecord): Promise<never> {
  await rollBackStages(engine, spec, history, rec);
  throw rollBackOutcome(rec);
}

/** The end of a rolled-back chain as an error (exit 1): what stopped it and each stage's outcome. */
function rollBackOutcome(rec: ChainRecord): RotationError {
  const c = rec.chain;
  const broken = c.stages.filter((s) => s.status === "rollback-failed");
  const what = c.stages.map((s) => `${s.env}: ${s.status}`).join(", ");
  const ended = rec.status === "failed" ? "failed" : rec.status === "aborted" ? "aborted" : "rolled back";
  return new RotationError(`chain ${c.name}: ${rec.id} ${ended}: ${rec.error ?? "stopped"} (${what})`, rec.id, {
    hint: broken.length
      ? `put the old credential back by hand: dsops rotation rollback --env ${broken[0].env} --service … --reason …`
      : "every stage rotated by the chain has its old credential back; see `dsops rotation chain " + c.name + " --status`",
  });
}

/** Roll back every rotated stage, newest first, saving each change; ends the record. */
async function rollBackStages(engine: RotationEngine, spec: ChainSettings, history: HistoryBackend, rec: ChainRecord): Promise<void> {
  const c = rec.chain;
  for (const stage of [...c.stages].reverse()) {
    if (stage.status === "soaking" || stage.status === "passed" || stage.status === "rolling-back" || stage.status === "rotating") {
      stage.status = "rolling-back";
      await history.save(rec);
      try {
        await rollBackStage(engine, spec, rec, stage);
        stage.status = "rolled-back";
        engine.log(`chain ${c.name}: stage ${stage.env}: rolled back`);
      } catch (e) {
        stage.status = "rollback-failed";
        stage.error = `rollback failed: ${errorMessage(e)}`;
        engine.log(`chain ${c.name}: stage ${stage.env}: ${stage.error}`);
      }
      await history.save(rec);
      engine.hit(`chain:after:rollback:${stage.env}`);
    } else if (stage.status === "pending") {
      stage.status = "skipped";
    }
  }
  const broken = c.stages.filter((s) => s.status === "rollback-failed");
  rec.status = broken.length ? "failed" : c.aborted ? "aborted" : "rolled-back";
  rec.finishedAt = new Date(engine.clock.now()).toISOString();
  await history.save(rec);
  if (c.aborted) await notifyAborted(engine, spec, rec);
}

/** The chain's notification of an abort: a `rollback` event (trigger manual) of `chain://<name>`, under the first stage's `rotation.notifications`. Never fails the abort. */
async function notifyAborted(engine: RotationEngine, spec: ChainSettings, rec: ChainRecord): Promise<void> {
  const c = rec.chain;
  const policy = engine.config.envs[spec.stages[0]]?.[spec.variable]?.spec.rotation as VariableRotation | undefined;
  const now = engine.clock.now();
  const event: RotationEvent = {
    type: "rollback",
    title: `Chain ${c.name} aborted`,
    service: "chain",
    env: rec.env,
    variable: rec.variable,
    secret: rec.secret,
    at: new Date(now).toISOString(),
    rotationId: rec.id,
    strategy: "chain",
    status: rec.status,
    who: c.aborted?.by ?? engine.who,
    ...(c.aborted?.reason ? { reason: c.aborted.reason } : {}),
    error: `${rec.error ?? "aborted"} (${c.stages.map((s) => `${s.env}: ${s.status}`).join(", ")})`,
    durationSeconds: Math.max(0, (now - Date.parse(rec.startedAt)) / 1000),
    trigger: "manual",
  };
  engine.events.emit("rotation", { event, ...(policy?.notifications ? { notifications: policy.notifications } : {}) });
  await engine.events.runEnded();
}

export interface ChainAbortOptions {
  /** Why (kept in the chain record, its stages' rollback records and the notification). */
  readonly reason?: string;
}

/**
 * Stop an open chain on purpose (`dsops rotation chain NAME --abort`): later stages are skipped,
 * the stages already rotated are rolled back as after a failure (newest first, each a manual
 * rollback to the version its rotation replaced, health checked by the engine), and the record
 * ends `aborted` (who, when, why). Every change is saved before the next step, under the chain's
 * lock: a run killed at any instant leaves the chain rolling back, and the next `--abort` (or
 * `dsops rotation chain NAME`, or the scheduler) finishes the rollback; it never goes on
 * rotating. A stage whose rotation a killed run left unfinished is first finished (or rolled
 * back) by the engine, then rolled back. A chain that is not open is refused (DsopsError, exit 1).
 * Returns the ended record; throws RotationError when a stage could not be rolled back.
 */
export async function abortChain(engine: RotationEngine, name: string, options: ChainAbortOptions = {}): Promise<ChainRecord> {
  const spec = chainSettings(engine, name);
  const history = chainHistory(engine, spec);
  const secret = chainSecret(name);
  const lock = await history.lock(secret, lockOwner(engine.clock, newRotationId(engine.clock)));
  try {
    const open = (await history.list({ secret, status: ["running"], limit: 1 }))[0];
    if (!open || !isChainRecord(open)) {
      const last = (await history.list({ secret, limit: 1 })).filter(isChainRecord)[0];
      throw new DsopsError(
        last
          ? `chain ${name}: ${last.id} already ended ${last.status}${last.finishedAt ? ` at ${last.finishedAt}` : ""}: there is nothing to abort`
          : `chain ${name} has never run: there is nothing to abort`,
        { hint: `see it with dsops rotation chain ${name} --status` },
      );
    }
    const rec = open;
    const c = rec.chain;
    const by = `${engine.who} pid ${process.pid}`;
    if (rec.resumedBy?.at(-1) !== by) rec.resumedBy = [...(rec.resumedBy ?? []), by];
    if (!c.rollingBack) {
      const at = new Date(engine.clock.now()).toISOString();
      c.aborted = { by: engine.who, at, ...(options.reason ? { reason: options.reason } : {}) };
      c.rollingBack = true;
      for (const s of c.stages) if (s.status === "pending") s.status = "skipped";
      rec.error = `aborted by ${engine.who}${options.reason ? `: ${options.reason}` : ""}`;
      await history.save(rec);
      engine.log(`chain ${c.name}: ${rec.error}; rolling back the stages already rotated`);
      engine.hit("chain:before:rollback");
    } else {
      engine.log(`chain ${c.name}: ${rec.id} is ${c.aborted ? "aborted" : `rolling back (stage ${c.failedStage ?? "?"} failed)`}: finishing its rollback`);
      await history.save(rec);
    }
    await rollBackStages(engine, spec, history, rec);
    if (rec.status === "failed" || !c.aborted) throw rollBackOutcome(rec);
    engine.log(`chain ${c.name}: ${rec.id} aborted (${c.stages.map((s) => `${s.env}: ${s.status}`).join(", ")})`);
    return rec;
  } finally {
    await lock.release();
  }
}

/** Put back the version the stage's rotation replaced (nothing to do when the engine already did, or an earlier run got there). */
async function rollBackStage(engine: RotationEngine, spec: ChainSettings, rec: ChainRecord, stage: ChainStage): Promise<void> {
  const history = engine.historyFor(stage.env, spec.variable);
  const rotation = stage.rotationId ? await history.get(stage.rotationId) : undefined;
  if (!rotation) {
    // Killed inside the stage's rotation: the engine finishes or rolls back what it left first.
    const earlier = stage.startedAt
      ? (await history.list({ secret: stage.secret, limit: 50 })).filter((r) => r.kind === "rotate" && r.startedAt >= (stage.startedAt as string)).at(-1)
      : undefined;
    if (!earlier) return;
    if (earlier.status === "running" && rec.chain.aborted) {
      // Aborted while a killed run left the stage's rotation unfinished: the engine finishes (or rolls back) it first.
      await engine.rotate(stage.env, spec.variable, { reason: `chain ${rec.chain.name} (${rec.id}): finishing stage ${stage.env} to roll it back` }).catch((e: unknown) => {
        if (!(e instanceof RotationError)) throw e;
      });
      return rollBackStage(engine, spec, rec, stage);
    }
    if (earlier.status === "running") throw new DsopsError(`rotation ${earlier.id} of ${stage.secret} is unfinished: finish it first (dsops secrets rotate --env ${stage.env} --var ${spec.variable}), then run the chain again`);
    if (earlier.status === "rolled-back" || earlier.status === "failed") return;
    stage.rotationId = earlier.id;
    return rollBackStage(engine, spec, rec, stage);
  }
  if (rotation.status === "rolled-back" || rotation.status === "failed") return;
  if (!rotation.oldVersionId) throw new DsopsError(`rotation ${rotation.id} of ${stage.secret} replaced no earlier version: there is nothing to go back to`);
  // An earlier run's rollback killed half-way is finished by the engine's rollback below; without one, a stage already back is left alone.
  const unfinished = (await history.list({ secret: stage.secret, status: ["running"], limit: 1 }))[0];
  const status = (await engine.status(stage.env)).find((s) => s.variable === spec.variable);
  if (!unfinished && status?.currentVersion === rotation.oldVersionId) return;
  const policy = engine.config.envs[stage.env][spec.variable].spec.rotation as VariableRotation;
  const [rb] = await engine.rollback(stage.env, policy.service, { reason: `chain ${rec.chain.name} (${rec.id}): ${rec.error ?? "stopped"}`, version: rotation.oldVersionId }, spec.variable);
  if (rb) stage.rollbackId = rb.id;
}

/** The chain whose stage `env`'s variable is (`index` 0: the first stage, which starts the chain), if any. */
export function chainOfStage(config: RotationEngine["config"], env: string, variable: string): { name: string; index: number; spec: ChainSettings } | undefined {
  for (const [name, spec] of Object.entries(config.raw.chains ?? {})) {
    const index = spec.stages.indexOf(env);
    if (index >= 0 && spec.variable === variable) return { name, index, spec };
  }
  return undefined;
}

/**
 * `dsops secrets rotate` by hand of a chain's stage while that chain is open (a stage rotated,
 * soaking, rotating, or being rolled back): refused, naming the chain, its record and the state
 * of each stage, since a rotation outside the chain would change a stage under it (a soak would
 * watch the wrong credential, a rollback would put back a version the hand rotation replaced).
 * When the chain is not open, a stage may be rotated by hand (undefined).
 */
export async function openChainRefusal(engine: RotationEngine, env: string, variable: string): Promise<DsopsError | undefined> {
  const of = chainOfStage(engine.config, env, variable);
  if (!of) return undefined;
  const open = await openChain(engine, of.name);
  if (!open) return undefined;
  const c = open.chain;
  const states = c.stages.map((s) => `${s.env}: ${s.status}${s.status === "soaking" && s.soakUntil ? ` until ${s.soakUntil}` : ""}`).join(", ");
  const state = c.rollingBack ? (c.aborted ? `rolling back (aborted by ${c.aborted.by})` : `rolling back (stage ${c.failedStage ?? "?"} failed)`) : "in progress";
  return new DsopsError(
    `envs.${env}.${variable}: stage ${of.index + 1} of chain ${of.name}, which is open: ${open.id} ${state} (${states}); a stage of an open chain is rotated by the chain only`,
    {
      hint: c.rollingBack
        ? `finish the chain's rollback first: dsops rotation chain ${of.name} (or --abort); then rotate by hand`
        : `let the chain go on (dsops rotation chain ${of.name}, --wait to watch its soaks to the end), or stop it and roll its rotated stages back (dsops rotation chain ${of.name} --abort --reason …); rotate by hand once it has ended; see it with dsops rotation chain ${of.name} --status`,
    },
  );
}
