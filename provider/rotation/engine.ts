import { randomBytes } from "node:crypto";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { clock as currentClock, type Clock } from "../core/clock";
import type { Config } from "../engine/config/load";
import type { RotationStrategyName, VariableRotation } from "./settings";
import { ConfigError, DsopsError, NotFoundError, errorMessage } from "../core/errors";
import { parseStoreUri, type SecretRef } from "../engine/refs";
import { Resolver } from "../engine/resolve";
import { Secret, scrub } from "../core/secret";
import { hasStaging, type Staging, type Store } from "../stores/types";
import { HistoryWriteError, RotationError, RotationInProgressError } from "./errors";
import { envFaultHook, type FaultHook, type FaultPoint } from "./fault";
import { checkPolicy, defaultGeneratorPolicy, generate } from "./generator";
import { FileHistory, defaultHistoryPath, type HistoryBackend, type HistoryFilter } from "./history/index";
import { lockOwner, ownerIsDead, whoAmI } from "./lock";
import { resolveStrategy, type ResolvedStrategy, type RotationPlan } from "./strategies/index";
import { VerificationError } from "./targets/errors";
import { createTarget } from "./targets/registry";
import type { Credential, Target } from "./targets/types";
import type { LockOwner, RotationRecord, StepName, StepRecord } from "./types";
import type { HealthContext, HealthResult } from "../health/index";
import { RolloutHalted, newProgress, planWaves, progressOf, rolloutInstances, waveName, type RolloutInstance, type RolloutProgress, type RolloutRecord } from "./rollout/plan";
import type { DsopsMetrics } from "../metrics/index";
import type { Notifications } from "../notify/index";
import { eventTitles, type RotationEvent, type RotationEventType } from "../notify/types";

/** Options of one rotation. */
export interface RotateOptions {
  /** Run this strategy instead of the configured one (`immediate`, `emergency`, or the same shape). */
  readonly strategy?: RotationStrategyName;
  /** Check everything and report the plan; change nothing, record nothing. */
  readonly dryRun?: boolean;
  /** Why (required by `emergency`; kept in the record). */
  readonly reason?: string;
}

/** What a rotation did. */
export interface RotationResult {
  /** The record as finished (a dry run: a record that was not saved). */
  readonly record: RotationRecord;
  /** True when this run finished a rotation an earlier run left unfinished (crash) instead of starting one. */
  readonly resumed: boolean;
  /** The earlier run whose unfinished rollback this run finished before rotating (its id and error). */
  readonly finishedRollback?: { readonly id: string; readonly error?: string };
  readonly dryRun: boolean;
  /** Dry run: the steps that would run, each with what it would do. */
  readonly plan?: string[];
}

/** Options of a manual rollback. */
export interface RollbackOptions {
  readonly reason: string;
  /** A version id to go back to (default: the previous version). */
  readonly version?: string;
}

/** One rotated secret's state, for `dsops secrets status`. */
export interface SecretStatus {
  readonly env: string;
  readonly variable: string;
  readonly secret: string;
  readonly service: string;
  readonly strategy: string;
  readonly currentVersion?: string;
  readonly previousVersion?: string;
  readonly pendingVersion?: string;
  readonly updatedAt?: string;
  readonly last?: Pick<RotationRecord, "id" | "status" | "startedAt" | "finishedAt" | "strategy" | "error" | "retireAfter">;
  readonly lockedBy?: LockOwner;
  /**
   * True when the lock's holder is a process of this host that no longer exists (killed): its
   * rotation is unfinished, and the next `dsops secrets rotate` of the variable finishes it.
   */
  readonly lockHolderDead?: boolean;
  /** Why the status could not be read in full (store or history unreachable). */
  readonly problem?: string;
}

/** What the engine is built with (all optional; defaults from the configuration). */
export interface RotationEngineOptions {
  readonly clock?: Clock;
  readonly env?: NodeJS.ProcessEnv;
  /** A Resolver to share (its stores are reused); default one of its own. */
  readonly resolver?: Resolver;
  /** Target instances by service name, instead of building them from `services:` (library users). */
  readonly targets?: Readonly<Record<string, Target>>;
  /** The history backend for every secret, instead of the configured/default one. */
  readonly history?: HistoryBackend;
  /** Called at each fault point (crash tests); default from DSOPS_FAULT. */
  readonly fault?: FaultHook;
  /** Progress lines (never values). */
  readonly onEvent?: (message: string) => void;
  /** Structured rotation events (started, completed, failed, rollback), as notifiers and metrics get them. */
  readonly onRotationEvent?: (event: RotationEvent) => void;
  /** The notification hub (default: built from `notifications:` in the config; false: none). */
  readonly notifications?: Notifications | false;
  /** The metrics the events update (default: the process's `defaultMetrics()`; false: none). */
  readonly metrics?: DsopsMetrics | false;
  /** Run `rotation.health` checks after a rotation (default true). */
  readonly healthChecks?: boolean;
  /** A delivery that failed for good (default: a warning on stderr). */
  readonly onNotificationDropped?: (channel: string, event: RotationEvent, message: string) => void;
  /** `user@host` recorded as who rotated (default from the OS). */
  readonly who?: string;
}

/** The secret, its store, its target and its history: everything one rotation touches. */
interface Subject {
  readonly env: string;
  readonly variable: string;
  /** `envs.<env>.<VAR>.rotation` (error messages). */
  readonly path: string;
  readonly policy: VariableRotation;
  readonly ref: SecretRef;
  /** `store://<store>/<key>`: the lock and history key. */
  readonly secret: string;
  readonly store: Store & Staging;
  readonly target: Target;
  readonly history: HistoryBackend;
}

/** Mutable state of a run, rebuilt from the record and the store on resume. */
interface RunState {
  readonly subject: Subject;
  readonly strategy: ResolvedStrategy;
  readonly rec: RotationRecord;
  plan: RotationPlan;
  /** The new credential, once generated (or read back from the pending version). */
  pending?: Credential;
  /** Values to scrub from every message of this run. */
  readonly secrets: Secret[];
  /** The store made the new version current in this run (known even when the history could not record it). */
  promoted?: boolean;
}

/**
 * The rotation engine: one instance serves many rotations of one configuration (the CLI
 * makes one per command; the Pulumi RotationPolicy resource and the benchmark reuse one).
 * A rotation is a step machine (see ./types.ts `rotationSteps`): each step is recorded in the
 * history before it runs and after, under the secret's lock, so a run killed at any instant is
 * resumed (or rolled back) by the next run of the same secret.
 */
export class RotationEngine {
  readonly resolver: Resolver;
  private readonly clock: Clock;
  private readonly ownResolver: boolean;
  private readonly targets = new Map<string, Target>();
  private readonly histories = new Map<string, HistoryBackend>();
  private readonly fault?: FaultHook;
  private readonly who: string;
  private notifyHub?: Notifications | false;
  private metricsSink?: DsopsMetrics | false;

  constructor(
    readonly config: Config,
    private readonly opts: RotationEngineOptions = {},
  ) {
    this.clock = opts.clock ?? currentClock();
    this.ownResolver = !opts.resolver;
    this.resolver =
      opts.resolver ??
      new Resolver(config, { clock: this.clock, ...(opts.env ? { env: opts.env } : {}), ...(opts.onEvent ? { onWarning: (m: string) => opts.onEvent?.(`warning: ${m}`) } : {}) });
    this.fault = opts.fault ?? envFaultHook(opts.env ?? process.env);
    this.who = opts.who ?? whoAmI();
  }

  /** Variables with a rotation block, by env. */
  rotated(env?: string): Array<{ env: string; variable: string }> {
    const out: Array<{ env: string; variable: string }> = [];
    for (const [e, vars] of Object.entries(this.config.envs)) {
      if (env && e !== env) continue;
      for (const [name, v] of Object.entries(vars)) if (v.spec.rotation) out.push({ env: e, variable: name });
    }
    return out;
  }

  /** Rotate one variable's secret (or finish the rotation a crashed run left). */
  async rotate(env: string, variable: string, options: RotateOptions = {}): Promise<RotationResult> {
    const subject = this.subject(env, variable);
    const strategy = resolveStrategy(subject.policy, options.strategy);
    const reason = options.reason ?? (strategy.emergency ? subject.policy.reason : undefined);
    if (strategy.emergency && !reason) throw new DsopsError(`${subject.path}: an emergency rotation needs a reason (--reason "…")`);
    for (const cap of strategy.shape.requires)
      if (!subject.target.capabilities.has(cap))
        throw new DsopsError(`${subject.path}: strategy ${strategy.shape.name} needs a target that can ${cap}; service "${subject.target.name}" (${subject.target.type}) cannot`);
    if (options.dryRun) return this.dryRun(subject, strategy, reason);

    const id = newRotationId(this.clock);
    const lock = await subject.history.lock(subject.secret, lockOwner(this.clock, id));
    try {
      return await this.rotateLocked(subject, strategy, id, reason);
    } catch (e) {
      await this.failedEvent(subject, e, id, strategy.name, reason);
      throw e;
    } finally {
      await lock.release();
      await this.afterRun();
    }
  }

  private async rotateLocked(subject: Subject, strategy: ResolvedStrategy, id: string, reason: string | undefined): Promise<RotationResult> {
    {
      const open = (await subject.history.list({ secret: subject.secret, status: ["running", "grace"], limit: 5 }))[0];
      let finishedRollback: RotationResult["finishedRollback"];
      if (open?.status === "running" && rollingBack(open)) {
        // An earlier run failed and did not finish its rollback (killed, or its disk was full):
        // finish that rollback, then rotate as asked.
        this.event(`${subject.secret}: finishing the rollback of rotation ${open.id} left unfinished by ${open.who}`);
        const earlier: RotationRecord = open; // resume() rolls this very record back
        try {
          await this.resume(subject, earlier);
        } catch (e) {
          if (!(e instanceof RotationError) || earlier.status !== "rolled-back") throw e;
          this.event(errorMessage(e));
        }
        finishedRollback = { id: earlier.id, ...(earlier.error ? { error: earlier.error } : {}) };
      } else if (open?.status === "running") {
        this.event(`${subject.secret}: resuming rotation ${open.id} left unfinished by ${open.who}`);
        const rec = await this.resume(subject, open);
        return { record: rec, resumed: true, dryRun: false };
      }
      if (open?.status === "grace") {
        const due = open.retireAfter !== undefined && this.clock.now() >= Date.parse(open.retireAfter);
        if (!due && !strategy.emergency)
          throw new RotationError(`${subject.secret}: rotation ${open.id} is in its grace period until ${open.retireAfter}; the old credential is revoked then`, open.id, {
            hint: "run again after that time, or rotate with --strategy emergency --reason … to revoke it now",
          });
        const rec = await this.resume(subject, open, true);
        if (!strategy.emergency) return { record: rec, resumed: true, dryRun: false };
      }
      const rec = await this.start(subject, strategy, id, reason);
      return { record: rec, resumed: false, dryRun: false, ...(finishedRollback ? { finishedRollback } : {}) };
    }
  }

  /** Put back the previous (or a named) version of each variable of `env` rotated by `service`. */
  async rollback(env: string, service: string, options: RollbackOptions, variable?: string): Promise<RotationRecord[]> {
    if (!options.reason?.trim()) throw new DsopsError("a rollback needs a reason (--reason \"…\")");
    const vars = this.rotated(env).filter((v) => (!variable || v.variable === variable) && this.config.envs[env][v.variable].spec.rotation?.service === service);
    if (!vars.length) throw new DsopsError(`env "${env}" has no variable rotated by service "${service}"${variable ? ` named ${variable}` : ""}`);
    if (options.version && vars.length > 1)
      throw new DsopsError(`--version names one version, but service "${service}" rotates ${vars.length} variables of env "${env}": pick one with --var`);
    const out: RotationRecord[] = [];
    try {
      for (const v of vars) out.push(await this.rollbackOne(this.subject(env, v.variable), options));
    } finally {
      await this.afterRun();
    }
    return out;
  }

  /** Rotation state of every rotated variable (of `env`). */
  async status(env?: string): Promise<SecretStatus[]> {
    const out: SecretStatus[] = [];
    for (const v of this.rotated(env)) {
      const spec = this.config.envs[v.env][v.variable].spec.rotation as VariableRotation;
      const base = { env: v.env, variable: v.variable, service: spec.service, strategy: spec.strategy };
      try {
        const s = this.subject(v.env, v.variable);
        const stages = await s.store.stagesOf(s.ref.key);
        const info = stages.current ? await s.store.describe({ key: s.ref.key }).catch(() => undefined) : undefined;
        const last = (await s.history.list({ secret: s.secret, limit: 1 }))[0];
        const lockedBy = await s.history.holder(s.secret);
        out.push({
          ...base,
          secret: s.secret,
          ...(stages.current ? { currentVersion: stages.current } : {}),
          ...(stages.previous ? { previousVersion: stages.previous } : {}),
          ...(stages.pending ? { pendingVersion: stages.pending } : {}),
          ...(info?.updatedAt ? { updatedAt: info.updatedAt } : {}),
          ...(last
            ? { last: { id: last.id, status: last.status, startedAt: last.startedAt, strategy: last.strategy, ...(last.finishedAt ? { finishedAt: last.finishedAt } : {}), ...(last.error ? { error: last.error } : {}), ...(last.retireAfter ? { retireAfter: last.retireAfter } : {}) } }
            : {}),
          ...(lockedBy ? { lockedBy, ...(ownerIsDead(lockedBy) ? { lockHolderDead: true } : {}) } : {}),
        });
      } catch (e) {
        const ref = this.config.envs[v.env][v.variable].ref;
        out.push({ ...base, secret: ref ? `store://${ref.store}/${ref.key}` : "-", problem: errorMessage(e) });
      }
    }
    return out;
  }

  /** Rotation records, newest first, from the history of every rotated variable (deduplicated). */
  async history(filter: HistoryFilter & { env?: string } = {}): Promise<RotationRecord[]> {
    const backends = new Set<HistoryBackend>();
    for (const v of this.rotated(filter.env)) {
      if (filter.variable && v.variable !== filter.variable) continue;
      backends.add(this.historyFor(v.env, v.variable));
    }
    const seen = new Map<string, RotationRecord>();
    for (const b of backends) for (const r of await b.list({ ...filter, limit: undefined })) seen.set(r.id, r);
    const all = [...seen.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
    return filter.limit ? all.slice(0, filter.limit) : all;
  }

  async close(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => (this.opts.targets?.[t.name] === t ? undefined : t.close?.().catch(() => undefined))));
    this.targets.clear();
    await Promise.all([...this.histories.values()].map((h) => (h === this.opts.history ? undefined : h.close().catch(() => undefined))));
    this.histories.clear();
    if (this.ownResolver) await this.resolver.close();
  }

  // ——— the step machine ———

  private async start(subject: Subject, strategy: ResolvedStrategy, id: string, reason?: string): Promise<RotationRecord> {
    const current = await this.readStage(subject, "current");
    const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(current ? { current: current.value } : {}), path: subject.path });
    if (plan.apply === "set") checkPolicy(subject.policy.generator ?? defaultGeneratorPolicy, subject.target.valueRules);
    const rollout = await this.planRollout(subject, plan);
    await this.prepareTargets(subject, rollout);
    const rec: RolloutRecord = {
      id,
      kind: "rotate",
      secret: subject.secret,
      env: subject.env,
      variable: subject.variable,
      service: subject.target.name,
      targetType: subject.target.type,
      strategy: strategy.name,
      ...(strategy.name !== strategy.shape.name ? { base: strategy.shape.name } : {}),
      who: this.who,
      ...(reason ? { reason } : {}),
      startedAt: this.nowIso(),
      status: "running",
      steps: [],
      ...(current ? { oldVersionId: current.versionId } : {}),
      ...(plan.old ? { oldPrincipal: plan.old.principal } : {}),
      newPrincipal: plan.principal,
      ...(rollout ? { rollout } : {}),
    };
    const st: RunState = { subject, strategy, rec, plan, secrets: plan.old ? [plan.old.secret] : [] };
    this.event(`${subject.secret}: rotation ${id} (${strategy.name}) of ${plan.principal} started${rollout ? ` on ${rollout.instances.length} instance(s) in ${rollout.waves.length} wave(s)` : ""}`);
    this.emit("started", subject, rec);
    return this.run(st);
  }

  /** Continue a record left `running` (or finish the retire step of one in `grace`). */
  private async resume(subject: Subject, rec: RotationRecord, retireNow = false): Promise<RotationRecord> {
    rec.resumedBy = [...(rec.resumedBy ?? []), `${this.who} pid ${process.pid}`];
    if (rec.kind === "rollback") {
      // As for a rotation: the version is set again at the target unless it was made current.
      if (!rec.steps.some((x) => x.outcome === "failed" || x.name === "restore" || (x.name === "promote" && x.outcome === "ok")))
        for (const x of rec.steps)
          if (x.name === "apply" || x.name === "verify") {
            delete x.outcome;
            delete x.message;
            delete x.finishedAt;
          }
      return this.runManualRollback(subject, rec);
    }
    const strategy = resolveStrategy(subject.policy, rec.strategy as RotationStrategyName);
    // The plan is rebuilt from the value that was current when the rotation started.
    const oldValue = rec.oldVersionId ? (await subject.store.get({ key: subject.ref.key, version: rec.oldVersionId })).value : undefined;
    const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(oldValue ? { current: oldValue } : {}), path: subject.path });
    const st: RunState = { subject, strategy, rec, plan, secrets: plan.old ? [plan.old.secret] : [] };
    if (retireNow) {
      rec.status = "running";
      if (plan.retire === "grace") st.plan = { ...plan, retire: "now" };
      const s = rec.steps.find((x) => x.name === "retire");
      if (s) delete s.outcome;
    } else if (plan.apply === "set" && !progressOf(rec) && !rollingBack(rec) && !rec.steps.some((x) => x.name === "promote" && x.outcome === "ok")) {
      // Not promoted yet: the earlier run may have put the old password back without being able
      // to record it (a full disk). Setting the pending value again is harmless, and verified again.
      for (const x of rec.steps)
        if (x.name === "apply" || x.name === "verify") {
          delete x.outcome;
          delete x.message;
          delete x.finishedAt;
        }
    }
    return this.run(st);
  }

  /** The step machine, and what is done when it ends in an error none of its steps handled. */
  private async run(st: RunState): Promise<RotationRecord> {
    try {
      return await this.runSteps(st);
    } catch (e) {
      throw await this.salvage(st, e);
    }
  }

  /**
   * A run ended in an error its steps did not handle (the history or the store could not be
   * written, promote failed, a bug). A single-user target changed in place may then hold the
   * new password while the store's current version is still the old one: it gets the old
   * password back, so the credential stored as current works. This is not recorded (the history
   * may be what failed): the record stays `running`, and the next run resumes it and sets the
   * pending value again. Returns the error to throw, saying what was left how.
   */
  private async salvage(st: RunState, e: unknown): Promise<unknown> {
    const { rec, subject, plan } = st;
    const inPlace = plan.apply === "set" && !!plan.old && plan.old.principal === plan.principal;
    const note = progressOf(rec) ? undefined : await this.putCurrentBack(st, inPlace, () => this.restoreOn(st, subject.target));
    return this.unfinishedError(st, e, note, `rotation ${rec.id}`, `dsops secrets rotate --env ${subject.env} --var ${subject.variable}`);
  }

  /**
   * After a run ended in an unhandled error: when the target may hold the new credential of a
   * principal changed in place (`inPlace`) while the store's current version is still the old
   * one, `restore` gives it back the credential stored as current. Says what was left how.
   */
  private async putCurrentBack(st: RunState, inPlace: boolean, restore: () => Promise<unknown>): Promise<string> {
    const { rec, subject } = st;
    const ok = (n: StepName) => rec.steps.some((x) => x.name === n && x.outcome === "ok");
    const service = `service "${subject.target.name}"`;
    if (!rec.steps.some((x) => x.name === "apply")) return `nothing was changed at ${service}`;
    if (st.promoted || ok("promote")) return `version ${rec.newVersionId} (verified) is current`;
    if (ok("restore")) return `the credential stored as current was put back at ${service}`;
    if (!inPlace) return `the credential stored as current was not changed at ${service}`;
    let current: string | undefined | null;
    try {
      current = (await subject.store.stagesOf(subject.ref.key)).current;
    } catch {
      current = null;
    }
    if (current === null) return `the store could not be read to tell whether version ${rec.newVersionId} became current; "${st.plan.principal}" may hold that version's password`;
    if (current === rec.newVersionId) return `version ${rec.newVersionId} (verified) is current`;
    let note: string;
    try {
      await restore();
      note = `the password of "${st.plan.principal}" stored as current (version ${current}) was put back at ${service}, so it is the one the target accepts`;
    } catch (e2) {
      note = `putting the password stored as current back at ${service} failed too (${scrub(errorMessage(e2), st.secrets)}): "${st.plan.principal}" may hold version ${rec.newVersionId}'s password until the next run finishes`;
    }
    this.event(`${subject.secret}: ${rec.kind === "rollback" ? "rollback" : "rotation"} ${rec.id}: ${note}`);
    return note;
  }

  /** The error a run that did not finish throws: what happened, what was left how, and the command that finishes it. */
  private unfinishedError(st: RunState, e: unknown, note: string | undefined, what: string, again: string): unknown {
    const { rec, subject } = st;
    // Bugs (and the crash tests' simulated crashes) surface as they are; so does a run that recorded its end.
    if (!(e instanceof DsopsError) || e instanceof RotationInProgressError || (e instanceof RotationError && rec.status !== "running")) return e;
    const msg = e instanceof RotationError ? e.message : `${subject.secret}: ${what} did not finish: ${scrub(errorMessage(e), st.secrets)}`;
    const disk = e instanceof HistoryWriteError || /ENOSPC|EDQUOT|EROFS/.test(errorMessage(e)) ? "free space on that disk (or make it writable), then " : "";
    return new RotationError(`${msg}${note ? `; ${note}` : ""}`, rec.id, { hint: `${disk}run \`${again}\` again: it finishes ${what}`, cause: e });
  }

  private async runSteps(st: RunState): Promise<RotationRecord> {
    const { rec, subject, plan } = st;
    const { store, target } = subject;
    const key = subject.ref.key;
    const stepsDone = (n: StepName) => rec.steps.find((s) => s.name === n)?.outcome === "ok";

    // A failure already recorded (or a rollback already begun) by a crashed run: finish the rollback.
    const failed = rec.steps.find((s) => s.outcome === "failed" && (s.name === "apply" || s.name === "verify" || s.name === "stage"));
    if (failed || rec.steps.some((s) => s.name === "restore" || s.name === "discard")) {
      return this.autoRollback(st, rec.error ?? failed?.message ?? "an earlier run failed");
    }

    // The value lives only in memory until staged: a run resumed before `stage` finished draws a new one.
    if (!stepsDone("stage")) {
      rec.steps = rec.steps.filter((s) => s.name !== "generate" && s.name !== "stage" && s.name !== "apply");
      delete rec.newVersionId;
    } else {
      st.pending = await this.readPending(st);
    }

    try {
      if (plan.apply === "set") {
        await this.step(st, "generate", async () => {
          const policy = subject.policy.generator ?? defaultGeneratorPolicy;
          st.pending = { principal: plan.principal, secret: generate(policy, target.valueRules) };
          st.secrets.push(st.pending.secret);
        });
        await this.step(st, "stage", async () => {
          await store.discardPending(key);
          const info = await store.putPending(key, st.strategy.shape.encode(this.pendingOf(st)), { description: `rotation ${rec.id}` });
          rec.newVersionId = info.versionId;
        });
        await this.step(st, "apply", async () => {
          const p = progressOf(rec);
          if (p) return this.rolloutApply(st, p);
          await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, this.pendingOf(st));
          return undefined;
        });
      } else {
        await this.step(st, "apply", async () => {
          // A crashed earlier attempt may have minted a credential that was never staged: revoke it.
          if (target.list && target.revoke) {
            const known = new Set([plan.old?.principal].filter((x): x is string => !!x));
            for (const id of await target.list(plan.principal)) if (!known.has(id)) await target.revoke({ principal: id, secret: new Secret("") });
          }
          const policy = subject.policy.generator ?? defaultGeneratorPolicy;
          st.pending = await (target.create as NonNullable<Target["create"]>).call(target, plan.principal, generate(policy, target.valueRules), plan.old);
          st.secrets.push(st.pending.secret);
        });
        await this.step(st, "stage", async () => {
          await store.discardPending(key);
          const info = await store.putPending(key, st.strategy.shape.encode(this.pendingOf(st)), { description: `rotation ${rec.id}` });
          rec.newVersionId = info.versionId;
        });
      }
      rec.newPrincipal = this.pendingOf(st).principal;
      await this.step(st, "verify", async () => {
        if (progressOf(rec)) return "verified on each instance during the rollout";
        if (!target.verify) return "the target cannot verify";
        await this.verifyWithRetries(st, this.pendingOf(st));
        return undefined;
      });
    } catch (e) {
      if (e instanceof StepFailure) return this.autoRollback(st, e.message);
      throw e;
    }

    await this.step(st, "promote", async () => {
      await store.promote(key, rec.newVersionId as string);
      st.promoted = true;
    });
    await this.healthGate(st);
    return this.retire(st);
  }

  private async retire(st: RunState): Promise<RotationRecord> {
    const { rec, plan, subject } = st;
    const old = plan.old;
    const retireOld = async () => {
      if (!old) return "no old credential";
      if (old.principal === rec.newPrincipal && plan.apply === "set") return "replaced in place";
      if (!subject.target.revoke) return "the target cannot revoke";
      const p = progressOf(rec);
      if (p) {
        // Instances left on the old credential (on_failure: continue) keep it.
        for (const name of p.verified) {
          const t = this.instanceTarget(subject, p, name);
          await (t.revoke as NonNullable<Target["revoke"]>).call(t, old);
        }
        return undefined;
      }
      await subject.target.revoke(old);
      return undefined;
    };
    if (plan.retire === "grace" && old) {
      const retireAfter = new Date(this.clock.now() + (plan.graceMs ?? 0)).toISOString();
      if (this.clock.now() < Date.parse(rec.retireAfter ?? retireAfter)) {
        rec.retireAfter = rec.retireAfter ?? retireAfter;
        rec.status = "grace";
        await subject.history.save(rec);
        this.event(`${subject.secret}: rotation ${rec.id}: new credential current; the old one is revoked after ${rec.retireAfter}`);
        this.emit("completed", subject, rec);
        return rec;
      }
    }
    await this.step(st, "retire", async () => (plan.retire === "none" ? "the strategy keeps the old credential" : retireOld()));
    rec.status = "succeeded";
    rec.finishedAt = this.nowIso();
    await subject.history.save(rec);
    this.event(`${subject.secret}: rotation ${rec.id} succeeded (version ${rec.newVersionId})`);
    this.emit("completed", subject, rec);
    return rec;
  }

  /** Put the target back to the credential stored as current, drop the pending version, record why. */
  private async autoRollback(st: RunState, why: string): Promise<never> {
    const { rec, subject } = st;
    await this.rollBackRun(st, why, "automatic");
    throw new RotationError(`${subject.secret}: rotation ${rec.id} rolled back: ${rec.error}`, rec.id, {
      hint: `the credential stored as current is unchanged${rec.oldVersionId ? ` (version ${rec.oldVersionId})` : ""}; see \`dsops secrets history\``,
    });
  }

  /** The rollback of a run: restore (every instance that got the new credential, in a rollout), discard, record `rolled-back`, send the event. */
  private async rollBackRun(st: RunState, why: string, trigger: "automatic" | "manual"): Promise<RotationRecord> {
    const { rec, subject } = st;
    rec.error = scrub(why, st.secrets);
    this.event(`${subject.secret}: rotation ${rec.id} failed (${rec.error}); rolling back`);
    const p = progressOf(rec);
    await this.step(st, "restore", async () => {
      if (p) return this.rolloutRestore(st, p);
      if (!rec.steps.some((s) => s.name === "apply")) return "nothing was applied";
      return this.restoreOn(st, subject.target);
    });
    await this.step(st, "discard", async () => {
      await subject.store.discardPending(subject.ref.key, rec.newVersionId);
    });
    rec.status = "rolled-back";
    rec.finishedAt = this.nowIso();
    await subject.history.save(rec);
    this.emit("rollback", subject, rec, { trigger });
    return rec;
  }

  /** Put one target back to the credential stored as current (a skip reason, or undefined). */
  private async restoreOn(st: RunState, target: Target): Promise<string | undefined> {
    const { rec, subject, plan } = st;
    if (plan.apply === "create") {
      const pending = st.pending ?? (rec.newVersionId ? await this.readPending(st).catch(() => undefined) : undefined);
      if (!pending) return "no new credential to revoke";
      if (target.revoke) await target.revoke(pending);
      return undefined;
    }
    if (plan.old && plan.old.principal === plan.principal) {
      await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, plan.old);
      return undefined;
    }
    // alternating-users: the changed user was the inactive one; give it back its previous stored credential if it had one.
    const prev = await this.readStage(subject, "previous");
    const prevCred = prev ? st.strategy.shape.decode(prev.value, subject.path) : undefined;
    if (prevCred && prevCred.principal === plan.principal) {
      st.secrets.push(prevCred.secret);
      await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, prevCred);
      return undefined;
    }
    if (target.revoke) {
      await target.revoke({ principal: plan.principal, secret: new Secret("") });
      return `"${plan.principal}" had no stored credential; its login was disabled`;
    }
    return `"${plan.principal}" had no stored credential to restore`;
  }

  // ——— gradual rollout (./rollout) ———

  /** `rotation.rollout`: the instances (listed or discovered) and the waves, checked before anything changes. */
  private async planRollout(subject: Subject, plan: RotationPlan, strategy?: "all"): Promise<RolloutProgress | undefined> {
    const r = subject.policy.rollout;
    if (!r) return undefined;
    const path = `${subject.path}.rollout`;
    if (plan.apply !== "set")
      throw new DsopsError(`${path}: strategy ${subject.policy.strategy} mints a credential per target; a rollout applies one credential to many instances (use single-user or alternating-users)`);
    if (!this.config.raw.services[subject.policy.service]) throw new ConfigError(`${path}: service "${subject.policy.service}" is not in services: (a rollout builds its instances from that entry)`);
    const instances = await rolloutInstances(r, path, async (ref) => (await this.resolver.resolveRef(parseStoreUri(ref))).value);
    const settings = strategy ? { ...r, strategy } : r;
    const progress = newProgress(settings, instances, strategy ? [{ label: "all", instances: instances.map((i) => i.name) }] : planWaves(settings, instances, path));
    // Build each instance's target now: a wrong setting is an error before any change.
    for (const i of instances) {
      const t = this.instanceTarget(subject, progress, i.name);
      if (!t.setSecret) throw new DsopsError(`${path}: instance "${i.name}" (${t.type}) cannot set a secret`);
    }
    return progress;
  }

  /** `Target.prepare` of the target (or of each rollout instance): refuse before anything changes. */
  private async prepareTargets(subject: Subject, rollout: RolloutProgress | undefined): Promise<void> {
    const targets = rollout ? rollout.instances.map((i) => this.instanceTarget(subject, rollout, i.name)) : [subject.target];
    for (const t of targets) await t.prepare?.();
  }

  /** The target of one instance: the service's entry with the instance's settings laid over it. */
  private instanceTarget(subject: Subject, p: RolloutProgress, name: string): Target {
    const inst: RolloutInstance | undefined = p.instances.find((i) => i.name === name);
    if (!inst) throw new DsopsError(`${subject.path}.rollout: no instance "${name}" (internal)`);
    const service = subject.policy.service;
    const raw = this.config.raw.services[service];
    if (!raw) throw new ConfigError(`${subject.path}.rollout: service "${service}" is not in services:`);
    const key = `${service}\u0000${inst.name}\u0000${JSON.stringify(inst.settings)}`;
    let t = this.targets.get(key);
    if (!t) {
      t = createTarget(`${service}[${inst.name}]`, { ...raw, ...inst.settings, type: raw.type }, {
        resolveRef: async (ref) => (await this.resolver.resolveRef(parseStoreUri(ref))).value,
        clock: this.clock,
        configDir: this.config.dir,
      });
      this.targets.set(key, t);
    }
    return t;
  }

  /**
   * The apply step of a rollout: wave by wave, each instance gets the new credential and logs in
   * with it; between waves the health checks run (`rollout.monitor`). Progress is saved before
   * each instance's apply and after each wave, so a resumed run starts at the first unfinished
   * wave (instances of it already verified are not touched again). A failure follows
   * `on_failure`: `rollback_all` fails the step (the engine rolls every applied instance back),
   * `continue` puts the failed instances back and goes on, `stop` puts them back and halts.
   */
  private async rolloutApply(st: RunState, p: RolloutProgress): Promise<string | undefined> {
    const { rec, subject } = st;
    const pending = this.pendingOf(st);
    const failedNames = () => new Set(p.failed.map((f) => f.instance));
    if (p.halted) {
      this.event(`${subject.secret}: rotation ${rec.id}: resuming the rollout halted at ${waveName(p, p.halted.wave - 1)}`);
      // The instances that failed there are tried again.
      p.failed = p.failed.filter((f) => f.wave !== p.halted?.wave);
      delete p.halted;
      await subject.history.save(rec);
    }
    for (let w = p.wave; w < p.waves.length; w++) {
      const wave = p.waves[w];
      this.hit(`before:wave:${w + 1}`);
      this.event(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: ${wave.instances.join(", ")}`);
      let failures: Array<{ instance: string; error: string }> = [];
      for (const name of wave.instances) {
        if (p.verified.includes(name) || failedNames().has(name)) continue;
        const target = this.instanceTarget(subject, p, name);
        if (!p.applied.includes(name)) p.applied.push(name);
        await subject.history.save(rec); // progress before the apply
        this.hit(`before:instance:${name}`);
        try {
          await (target.setSecret as NonNullable<Target["setSecret"]>).call(target, pending);
          if (target.verify) await this.verifyWithRetries(st, pending, target);
        } catch (e) {
          failures.push({ instance: name, error: scrub(errorMessage(e), st.secrets) });
          this.event(`${subject.secret}: rotation ${rec.id}: instance ${name} failed`);
          if (p.onFailure !== "continue") break;
          continue;
        }
        p.verified.push(name);
        await subject.history.save(rec);
        this.hit(`after:instance:${name}`);
        this.event(`${subject.secret}: rotation ${rec.id}: instance ${name}: new credential applied and verified`);
      }
      if (!failures.length && w < p.waves.length - 1) {
        const healthy = wave.instances.filter((n) => p.verified.includes(n));
        const why = healthy.length ? await this.waveHealth(st, p, w, healthy) : undefined;
        if (why) failures = healthy.map((instance) => ({ instance, error: `health checks after ${waveName(p, w)} failed: ${why}` }));
      }
      if (failures.length) {
        const summary = failures.map((f) => `${f.instance}: ${f.error}`).join("; ");
        if (p.onFailure === "rollback_all") throw new Error(`rollout ${waveName(p, w)} failed: ${summary}`);
        // continue / stop: the failed instances go back to the old credential.
        for (const f of failures) {
          try {
            await this.restoreOn(st, this.instanceTarget(subject, p, f.instance));
          } catch (e) {
            f.error += `; putting the old credential back failed too: ${scrub(errorMessage(e), st.secrets)}`;
          }
          p.verified = p.verified.filter((n) => n !== f.instance);
          p.failed.push({ instance: f.instance, wave: w + 1, error: f.error });
        }
        if (p.onFailure === "stop") {
          p.halted = { wave: w + 1, error: summary, at: this.nowIso() };
          rec.error = `rollout halted at ${waveName(p, w)}: ${summary}`;
          await subject.history.save(rec);
          throw new RolloutHalted(rec.error);
        }
        this.event(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: ${failures.length} instance(s) left on the old credential; continuing`);
      }
      p.wave = w + 1;
      await subject.history.save(rec);
      this.hit(`after:wave:${w + 1}`);
    }
    if (!p.verified.length) throw new Error(`rollout: no instance took the new credential: ${p.failed.map((f) => `${f.instance}: ${f.error}`).join("; ")}`);
    if (p.failed.length) rec.error = `rollout: ${p.failed.length} instance(s) left on the old credential: ${p.failed.map((f) => `${f.instance} (${f.error})`).join("; ")}`;
    return undefined;
  }

  /** Health checks of one wave (`rotation.health`, monitored per `rollout.monitor`): a failure message, or undefined when healthy. */
  private async waveHealth(st: RunState, p: RolloutProgress, w: number, instances: string[]): Promise<string | undefined> {
    const { subject, rec } = st;
    const checks = subject.policy.health;
    if (!checks?.length || this.opts.healthChecks === false) return undefined;
    const { monitorHealth } = require("../health/index") as typeof import("../health/index");
    const metrics = this.metrics;
    const outcome = await monitorHealth(checks, subject.policy.rollout?.monitor ?? subject.policy.monitor, this.healthContext(st, instances), {
      clock: this.clock,
      onResult: (r: HealthResult) => metrics?.healthCheck({ service: subject.target.name, env: subject.env, check: r.check, type: r.type }, r.healthy, r.seconds),
      onRound: (round, failed) => this.event(`${subject.secret}: rotation ${rec.id}: ${waveName(p, w)}: health round ${round}: ${failed ? `unhealthy (${scrub(failed, st.secrets)})` : "healthy"}`),
    });
    return outcome.healthy ? undefined : scrub(outcome.failure ?? "unhealthy", st.secrets);
  }

  /** What the health checks know; in a rollout the sql check logs in at each of `instances` (default: every instance holding the new credential). */
  private healthContext(st: RunState, instances?: string[]): HealthContext {
    const { subject, rec } = st;
    const cred = st.pending;
    const p = progressOf(rec);
    let sql: HealthContext["sql"];
    if (cred && p) {
      const names = instances ?? p.verified;
      sql = async (query: string, timeoutMs: number) => {
        const errors: string[] = [];
        for (const n of names) {
          const t = this.instanceTarget(subject, p, n);
          if (!t.verify) continue;
          await t.verify(cred, { query, timeoutMs }).catch((e: unknown) => errors.push(`${n}: ${errorMessage(e)}`));
        }
        if (errors.length) throw new Error(errors.join("; "));
      };
    } else if (cred && subject.target.verify) {
      const target = subject.target;
      const verify = target.verify as NonNullable<Target["verify"]>;
      sql = (query: string, timeoutMs: number) => verify.call(target, cred, { query, timeoutMs });
    }
    return {
      service: subject.target.name,
      env: subject.env,
      variable: subject.variable,
      secret: subject.secret,
      rotationId: rec.id,
      strategy: rec.strategy,
      ...(rec.oldVersionId ? { oldVersionId: rec.oldVersionId } : {}),
      ...(rec.newVersionId ? { newVersionId: rec.newVersionId } : {}),
      ...(rec.oldPrincipal ? { oldPrincipal: rec.oldPrincipal } : {}),
      ...(rec.newPrincipal ? { newPrincipal: rec.newPrincipal } : {}),
      configDir: this.config.dir,
      ...(sql ? { sql } : {}),
    };
  }

  /** Rollback of a rollout: every instance that may hold the new credential gets the old one back (progress saved per instance). */
  private async rolloutRestore(st: RunState, p: RolloutProgress): Promise<string | undefined> {
    const { rec, subject } = st;
    const todo = p.applied.filter((n) => !p.restored.includes(n));
    if (!p.applied.length) return "nothing was applied";
    const errors: string[] = [];
    for (const n of todo) {
      try {
        await this.restoreOn(st, this.instanceTarget(subject, p, n));
        p.restored.push(n);
        await subject.history.save(rec);
        this.event(`${subject.secret}: rotation ${rec.id}: instance ${n}: old credential put back`);
      } catch (e) {
        errors.push(`${n}: ${scrub(errorMessage(e), st.secrets)}`);
      }
    }
    if (errors.length) throw new Error(`putting the old credential back failed on ${errors.length} instance(s): ${errors.join("; ")}`);
    return undefined;
  }

  /** `dsops rotation rollback` of a rollout halted by `on_failure: stop`: put the old credential back on every instance, drop the pending version. */
  private async abortHalted(subject: Subject, open: RotationRecord, reason: string): Promise<RotationRecord> {
    open.resumedBy = [...(open.resumedBy ?? []), `${this.who} pid ${process.pid}`];
    const strategy = resolveStrategy(subject.policy, open.strategy as RotationStrategyName);
    const oldValue = open.oldVersionId ? (await subject.store.get({ key: subject.ref.key, version: open.oldVersionId })).value : undefined;
    const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(oldValue ? { current: oldValue } : {}), path: subject.path });
    const st: RunState = { subject, strategy, rec: open, plan, secrets: plan.old ? [plan.old.secret] : [] };
    if (open.newVersionId) await this.readPending(st).then((c) => (st.pending = c)).catch(() => undefined);
    return this.rollBackRun(st, `${open.error ?? "rollout halted"}; rolled back by hand: ${reason}`, "manual");
  }

  private async rollbackOne(subject: Subject, options: RollbackOptions): Promise<RotationRecord> {
    const strategy = resolveStrategy(subject.policy);
    const lock = await subject.history.lock(subject.secret, lockOwner(this.clock));
    try {
      const open = (await subject.history.list({ secret: subject.secret, status: ["running"], limit: 1 }))[0];
      if (open && progressOf(open)?.halted) return await this.abortHalted(subject, open, options.reason);
      if (open) {
        // Finish (or roll back) what a crashed run left first; then roll back as asked.
        const finished = await this.resume(subject, open).catch((e) => {
          if (!(e instanceof RotationError)) throw e;
          return undefined;
        });
        // The unfinished run was this same rollback (killed, or its disk was full): finishing it is what was asked.
        if (finished?.kind === "rollback" && finished.status === "succeeded" && (!options.version || options.version === finished.newVersionId)) {
          this.emit("rollback", subject, finished, { trigger: "manual" });
          return finished;
        }
      }
      const stages = await subject.store.stagesOf(subject.ref.key);
      const to = options.version ?? stages.previous;
      if (!to) throw new DsopsError(`${subject.secret}: no previous version to roll back to`);
      if (to === stages.current) throw new DsopsError(`${subject.secret}: version ${to} is already current`);
      const rec: RotationRecord = {
        id: newRotationId(this.clock),
        kind: "rollback",
        secret: subject.secret,
        env: subject.env,
        variable: subject.variable,
        service: subject.target.name,
        targetType: subject.target.type,
        strategy: "rollback",
        base: strategy.shape.name,
        who: this.who,
        reason: options.reason,
        startedAt: this.nowIso(),
        status: "running",
        steps: [],
        ...(stages.current ? { oldVersionId: stages.current } : {}),
        newVersionId: to,
      };
      // A rollout: the version goes back on every instance.
      const rollout = await this.planRollout(subject, { principal: "", apply: "set", retire: "none" }, "all");
      if (rollout) (rec as RolloutRecord).rollout = rollout;
      const done = await this.runManualRollback(subject, rec);
      this.emit("rollback", subject, done, { trigger: "manual" });
      return done;
    } catch (e) {
      await this.failedEvent(subject, e, undefined, "rollback", options.reason);
      throw e;
    } finally {
      await lock.release();
    }
  }

  /** Manual rollback machine: apply the chosen version at the target, verify it, promote it. A failure puts the target back to current. */
  private async runManualRollback(subject: Subject, rec: RotationRecord): Promise<RotationRecord> {
    let st: RunState | undefined;
    let cur: Credential | undefined;
    try {
      return await this.runManualRollbackSteps(subject, rec, (s, c) => ((st = s), (cur = c)));
    } catch (e) {
      if (!st) throw e;
      const run: RunState = st;
      // The credential stored as current when the rollback began: put back where the rollback changed that very principal.
      const current: Credential | undefined = cur;
      const targets = () => {
        const p = progressOf(rec);
        return p ? p.waves.flatMap((w) => w.instances).map((n) => this.instanceTarget(subject, p, n)) : [subject.target];
      };
      const inPlace = !!current && current.principal === run.plan.principal && !!subject.target.setSecret;
      const note = await this.putCurrentBack(run, inPlace, async () => {
        for (const t of targets()) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, current as Credential);
      });
      throw this.unfinishedError(run, e, note, `rollback ${rec.id}`, `dsops rotation rollback --service ${subject.target.name} --env ${subject.env} --var ${subject.variable} --reason …`);
    }
  }

  private async runManualRollbackSteps(subject: Subject, rec: RotationRecord, started: (st: RunState, cur: Credential | undefined) => void): Promise<RotationRecord> {
    const strategy = resolveStrategy(subject.policy);
    const target = subject.target;
    const key = subject.ref.key;
    const back = strategy.shape.decode((await subject.store.get({ key, version: rec.newVersionId as string })).value, subject.path);
    const cur = rec.oldVersionId ? strategy.shape.decode((await subject.store.get({ key, version: rec.oldVersionId })).value, subject.path) : undefined;
    rec.newPrincipal = back.principal;
    if (cur) rec.oldPrincipal = cur.principal;
    const st: RunState = { subject, strategy, rec, plan: { principal: back.principal, apply: "set", retire: "none" }, pending: back, secrets: [back.secret, ...(cur ? [cur.secret] : [])] };
    started(st, cur);
    if (rec.steps.some((s) => s.outcome === "failed") || rec.steps.some((s) => s.name === "restore")) return this.failManualRollback(st, cur);
    const p = progressOf(rec);
    const targets = p ? p.waves.flatMap((w) => w.instances).map((n) => this.instanceTarget(subject, p, n)) : [target];
    try {
      await this.step(st, "apply", async () => {
        if (!target.setSecret) return "the target cannot set a secret; the version must still be valid there";
        for (const t of targets) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, back);
        return undefined;
      });
      await this.step(st, "verify", async () => {
        if (!target.verify) return "the target cannot verify";
        for (const t of targets) await this.verifyWithRetries(st, back, t);
        return undefined;
      });
    } catch (e) {
      if (e instanceof StepFailure) {
        rec.error = e.message;
        return this.failManualRollback(st, cur);
      }
      throw e;
    }
    await this.step(st, "promote", async () => {
      await subject.store.promote(key, rec.newVersionId as string);
      st.promoted = true;
    });
    rec.status = "succeeded";
    rec.finishedAt = this.nowIso();
    await subject.history.save(rec);
    this.event(`${subject.secret}: rolled back to version ${rec.newVersionId} (${rec.id})`);
    return rec;
  }

  private async failManualRollback(st: RunState, cur: Credential | undefined): Promise<never> {
    const { rec, subject } = st;
    await this.step(st, "restore", async () => {
      if (!cur || !subject.target.setSecret || cur.principal !== st.plan.principal) return "the current credential was not changed";
      const p = progressOf(rec);
      for (const t of p ? p.waves.flatMap((w) => w.instances).map((n) => this.instanceTarget(subject, p, n)) : [subject.target]) await (t.setSecret as NonNullable<Target["setSecret"]>).call(t, cur);
      return undefined;
    });
    rec.status = "failed";
    rec.finishedAt = this.nowIso();
    await subject.history.save(rec);
    throw new RotationError(`${subject.secret}: rollback ${rec.id} failed: ${rec.error ?? "an earlier run failed"}; the current version is unchanged`, rec.id);
  }

  /**
   * Run one step: record it started, call the fault hook, act, call the fault hook, record the
   * outcome. A step already `ok` (or `skipped`) in the record is not run again. The action
   * returns a reason to mark the step skipped. A failing `apply`, `stage` or `verify` becomes a
   * StepFailure (the caller rolls back); other failures leave the record `running` for the next run.
   */
  private async step(st: RunState, name: StepName, act: () => Promise<string | undefined | void>): Promise<void> {
    const { rec, subject } = st;
    let s: StepRecord | undefined = rec.steps.find((x) => x.name === name);
    if (s && (s.outcome === "ok" || s.outcome === "skipped")) return;
    if (!s) {
      s = { name, startedAt: this.nowIso() };
      rec.steps.push(s);
    } else {
      s.startedAt = this.nowIso();
      delete s.outcome;
      delete s.message;
      delete s.finishedAt;
    }
    await subject.history.save(rec);
    this.hit(`before:${name}`);
    let skipped: string | undefined | void;
    try {
      skipped = await act();
    } catch (e) {
      const msg = scrub(errorMessage(e), st.secrets);
      if (e instanceof RolloutHalted) {
        // `on_failure: stop`: the step stays open; the next run resumes the rollout at the halted wave.
        s.message = msg;
        await subject.history.save(rec);
        throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${msg}`, rec.id, {
          hint: "the instances of earlier waves keep the new credential (not yet current); fix the failed instance and run again to resume at that wave, or run `dsops rotation rollback` to put the old credential back everywhere",
        });
      }
      s.outcome = "failed";
      s.message = msg;
      s.finishedAt = this.nowIso();
      if (name === "generate" || name === "apply" || name === "stage" || name === "verify") {
        rec.error = msg;
        await subject.history.save(rec);
        throw new StepFailure(msg);
      }
      rec.error = msg;
      await subject.history.save(rec);
      throw new RotationError(`${subject.secret}: rotation ${rec.id}: step ${name} failed: ${msg}`, rec.id, {
        hint: "the next run of the same secret resumes it",
      });
    }
    this.hit(`after:${name}`);
    s.outcome = skipped ? "skipped" : "ok";
    if (skipped) s.message = skipped;
    s.finishedAt = this.nowIso();
    await subject.history.save(rec);
  }

  private async verifyWithRetries(st: RunState, cred: Credential, target: Target = st.subject.target): Promise<void> {
    const v = st.subject.policy.verification;
    const retries = v?.retries ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await (target.verify as NonNullable<Target["verify"]>).call(target, cred, {
          ...(v?.query ? { query: v.query } : {}),
          ...(v?.timeout_ms ? { timeoutMs: v.timeout_ms } : {}),
        });
        return;
      } catch (e) {
        if (!(e instanceof VerificationError) || attempt >= retries) throw e;
        await this.clock.sleep(Math.min(1000 * 2 ** attempt, 10000));
      }
    }
  }

  private async dryRun(subject: Subject, strategy: ResolvedStrategy, reason?: string): Promise<RotationResult> {
    const current = await this.readStage(subject, "current");
    // A first rotation creates the secret; a typo in the key would too, so say so before the checks.
    const missing = current
      ? undefined
      : `${subject.secret} has no current version in store "${subject.ref.store}" (it does not exist yet, or its first rotation never finished): a rotation creates it; check the key if you expected an existing secret`;
    if (missing) this.event(`warning: ${missing}`);
    const plan = strategy.plan({ policy: subject.policy, target: subject.target, ...(current ? { current: current.value } : {}), path: subject.path });
    if (plan.apply === "set") checkPolicy(subject.policy.generator ?? defaultGeneratorPolicy, subject.target.valueRules);
    const rollout = await this.planRollout(subject, plan);
    if (rollout) for (const i of rollout.instances) await this.instanceTarget(subject, rollout, i.name).check?.();
    else await subject.target.check?.();
    await this.prepareTargets(subject, rollout);
    const holder = await subject.history.holder(subject.secret);
    const steps = [
      ...(plan.apply === "set"
        ? [`generate: a new value (${subject.policy.generator?.format ?? "password"}, ${subject.policy.generator?.length ?? 32} characters)`, `stage: store it as the pending version of ${subject.secret}`, `apply: set the password of "${plan.principal}" at ${subject.target.name}`]
        : [`apply: create a new credential for "${plan.principal}" at ${subject.target.name}`, `stage: store it as the pending version of ${subject.secret}`]),
      subject.target.verify ? `verify: log in as "${plan.principal}" with the new credential` : "verify: skipped (the target cannot verify)",
      `promote: make it current (version ${current?.versionId ?? "none"} becomes previous)`,
      plan.retire === "none"
        ? `retire: nothing (${plan.old?.principal === plan.principal ? "replaced in place" : plan.old ? `"${plan.old.principal}" keeps working until the next rotation` : "no old credential"})`
        : plan.retire === "now"
          ? `retire: revoke "${plan.old?.principal}" at once`
          : `retire: revoke "${plan.old?.principal}" after ${Math.round((plan.graceMs ?? 0) / 1000)} s`,
    ];
    if (rollout) {
      const at = steps.findIndex((x) => x.startsWith("apply:"));
      steps.splice(
        at,
        1,
        ...rollout.waves.map((w, i) => `apply: ${waveName(rollout, i)}: set the password of "${plan.principal}" on ${w.instances.join(", ")} and log in with it${i < rollout.waves.length - 1 && subject.policy.health?.length ? "; then the health checks" : ""}`),
      );
      const v = steps.findIndex((x) => x.startsWith("verify:"));
      steps[v] = "verify: done on each instance during the rollout";
      steps.push(`on failure: ${rollout.onFailure}`);
    }
    if (holder) steps.unshift(`(a rotation is in progress by ${holder.who}, pid ${holder.pid}: a real run would be refused now)`);
    if (missing) steps.unshift(`(${missing})`);
    const rec: RotationRecord = {
      id: "dry-run",
      kind: "rotate",
      secret: subject.secret,
      env: subject.env,
      variable: subject.variable,
      service: subject.target.name,
      targetType: subject.target.type,
      strategy: strategy.name,
      who: this.who,
      ...(reason ? { reason } : {}),
      startedAt: this.nowIso(),
      status: "succeeded",
      steps: [],
      ...(current ? { oldVersionId: current.versionId } : {}),
      ...(plan.old ? { oldPrincipal: plan.old.principal } : {}),
      newPrincipal: plan.principal,
    };
    return { record: rec, resumed: false, dryRun: true, plan: steps };
  }

  // ——— events, notifications, metrics, health ———

  /** The notification hub (undefined when no channel is configured). */
  get notifications(): Notifications | undefined {
    if (this.notifyHub === undefined) {
      if (this.opts.notifications !== undefined) this.notifyHub = this.opts.notifications;
      else if (!this.config.raw.notifications) this.notifyHub = false;
      else {
        const { Notifications: Hub } = require("../notify/index") as typeof import("../notify/index");
        this.notifyHub = new Hub(this.config.raw.notifications, {
          clock: this.clock,
          configDir: this.config.dir,
          resolveRef: async (ref) => (await this.resolver.resolveRef(parseStoreUri(ref))).value.reveal(),
          onDropped: (d) => {
            const m = this.metrics;
            m?.dropped(d.channel, d.event.type);
            if (this.opts.onNotificationDropped) this.opts.onNotificationDropped(d.channel, d.event, d.message);
            else process.stderr.write(`warning: notification to ${d.channel} (${d.event.type}, ${d.event.service}/${d.event.env}) dropped: ${d.message}\n`);
          },
        });
      }
    }
    return this.notifyHub || undefined;
  }

  /** The metrics the events update (undefined: none). */
  get metrics(): DsopsMetrics | undefined {
    if (this.metricsSink === undefined) {
      if (this.opts.metrics !== undefined) this.metricsSink = this.opts.metrics;
      else this.metricsSink = (require("../metrics/index") as typeof import("../metrics/index")).defaultMetrics();
    }
    return this.metricsSink || undefined;
  }

  /** Build the event of a record and hand it to metrics, the `onRotationEvent` hook and the notifiers (in the background). Never throws. */
  private emit(type: Exclude<RotationEventType, "due-soon">, subject: Subject, rec: RotationRecord | undefined, extra: Partial<RotationEvent> = {}): void {
    try {
      const now = this.clock.now();
      const e: RotationEvent = {
        type,
        title: eventTitles[type],
        service: subject.target.name,
        env: subject.env,
        variable: subject.variable,
        secret: subject.secret,
        at: new Date(now).toISOString(),
        ...(rec
          ? {
              rotationId: rec.id,
              strategy: rec.strategy,
              status: rec.status,
              ...(rec.oldVersionId ? { oldVersionId: rec.oldVersionId } : {}),
              ...(rec.newVersionId ? { newVersionId: rec.newVersionId } : {}),
              ...(rec.oldPrincipal ? { oldPrincipal: rec.oldPrincipal } : {}),
              ...(rec.newPrincipal ? { newPrincipal: rec.newPrincipal } : {}),
              who: rec.who,
              ...(rec.reason ? { reason: rec.reason } : {}),
              ...(rec.error && type !== "started" ? { error: rec.error } : {}),
              ...(type !== "started" ? { durationSeconds: Math.max(0, (now - Date.parse(rec.startedAt)) / 1000) } : {}),
            }
          : { who: this.who }),
        ...extra,
      };
      try {
        this.metrics?.observe(e);
      } catch {
        /* metrics never fail a rotation */
      }
      try {
        this.opts.onRotationEvent?.(e);
      } catch {
        /* nor does a listener */
      }
      this.notifications?.emit(e, subject.policy.notifications);
    } catch (err) {
      process.stderr.write(`warning: rotation event ${type} not sent: ${errorMessage(err)}\n`);
    }
  }

  /** A rotation (or manual rollback) ended in an error: send `failed`, unless a `rollback` event already told. */
  private async failedEvent(subject: Subject, e: unknown, id: string | undefined, strategy: string, reason: string | undefined): Promise<void> {
    if (e instanceof RotationInProgressError) return;
    let rec: RotationRecord | undefined;
    if (e instanceof RotationError && e.recordId) rec = await subject.history.get(e.recordId).catch(() => undefined);
    if (rec?.status === "rolled-back" || (rec?.kind === "rollback" && rec.status === "succeeded")) return;
    if (rec) this.emit("failed", subject, rec, rec.error ? {} : { error: errorMessage(e) });
    else this.emit("failed", subject, undefined, { ...(id ? { rotationId: id } : {}), strategy, ...(reason ? { reason } : {}), error: errorMessage(e) });
  }

  /** End of a command's run: wait (capped) for deliveries in flight, write the metrics textfile when configured. */
  private async afterRun(): Promise<void> {
    try {
      await this.notifications?.settle();
    } catch (e) {
      process.stderr.write(`warning: notifications: ${errorMessage(e)}\n`);
    }
    // The textfile tells the whole history (each CLI run is a process of its own).
    const file = this.config.raw.metrics?.prometheus?.textfile;
    if (file && this.opts.metrics !== false) {
      try {
        const { metricsFromHistory } = require("../metrics/history") as typeof import("../metrics/history");
        await metricsFromHistory(await this.history()).writeTextfile(isAbsolute(file) ? file : resolvePath(this.config.dir, file));
      } catch (e) {
        process.stderr.write(`warning: metrics textfile ${file}: ${errorMessage(e)}\n`);
      }
    }
  }

  /**
   * `rotation.health`: with the new credential current, check at once and then for the
   * monitoring period; `monitor.failures` consecutive failed rounds roll the rotation back.
   */
  private async healthGate(st: RunState): Promise<void> {
    const { subject, rec } = st;
    const checks = subject.policy.health;
    if (!checks?.length || this.opts.healthChecks === false) return;
    const { monitorHealth } = require("../health/index") as typeof import("../health/index");
    const target = subject.target;
    const metrics = this.metrics;
    this.event(`${subject.secret}: rotation ${rec.id}: ${checks.length} health check(s)`);
    const outcome = await monitorHealth(
      checks,
      subject.policy.monitor,
      this.healthContext(st),
      {
        clock: this.clock,
        onResult: (r: HealthResult) => metrics?.healthCheck({ service: target.name, env: subject.env, check: r.check, type: r.type }, r.healthy, r.seconds),
        onRound: (round, failed) => this.event(`${subject.secret}: rotation ${rec.id}: health round ${round}: ${failed ? `unhealthy (${scrub(failed, st.secrets)})` : "healthy"}`),
      },
    );
    if (outcome.healthy) return;
    await this.healthRollback(st, scrub(outcome.failure ?? "unhealthy", st.secrets));
  }

  /** Health checks failed after promote: make the old version current again (a rollback record), revoke a created credential, record and tell. */
  private async healthRollback(st: RunState, why: string): Promise<never> {
    const { rec, subject } = st;
    rec.error = `health checks failed: ${why}`;
    if (!rec.oldVersionId) {
      rec.status = "failed";
      rec.finishedAt = this.nowIso();
      await subject.history.save(rec);
      throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${rec.error}; there is no previous version to roll back to`, rec.id);
    }
    this.event(`${subject.secret}: rotation ${rec.id}: ${rec.error}; rolling back to version ${rec.oldVersionId}`);
    rec.status = "rolled-back";
    rec.finishedAt = this.nowIso();
    await subject.history.save(rec);
    const rb: RotationRecord = {
      id: newRotationId(this.clock),
      kind: "rollback",
      secret: subject.secret,
      env: subject.env,
      variable: subject.variable,
      service: subject.target.name,
      targetType: subject.target.type,
      strategy: "rollback",
      base: st.strategy.shape.name,
      who: this.who,
      reason: `automatic: health checks failed after rotation ${rec.id}`,
      startedAt: this.nowIso(),
      status: "running",
      steps: [],
      ...(rec.newVersionId ? { oldVersionId: rec.newVersionId } : {}),
      newVersionId: rec.oldVersionId,
    };
    const p = progressOf(rec);
    if (p) (rb as RolloutRecord).rollout = { ...p, waves: [{ label: "all", instances: [...p.verified] }], wave: 0, applied: [], verified: [], failed: [], restored: [] };
    try {
      await this.runManualRollback(subject, rb);
    } catch (e) {
      rec.status = "failed";
      rec.error = `${rec.error}; the rollback ${rb.id} failed: ${scrub(errorMessage(e), st.secrets)}`;
      await subject.history.save(rec);
      throw new RotationError(`${subject.secret}: rotation ${rec.id}: ${rec.error}`, rec.id);
    }
    // A credential minted next to the old one (two-secret) is revoked: the old one is current again.
    const minted = st.pending;
    if (st.plan.apply === "create" && minted && minted.principal !== st.plan.old?.principal && subject.target.revoke)
      await subject.target.revoke(minted).catch((e: unknown) => this.event(`${subject.secret}: could not revoke ${minted.principal}: ${scrub(errorMessage(e), st.secrets)}`));
    this.emit("rollback", subject, rec, { trigger: "health", status: "rolled-back" });
    throw new RotationError(`${subject.secret}: rotation ${rec.id} rolled back: ${rec.error}`, rec.id, {
      hint: `rollback ${rb.id} made version ${rec.oldVersionId} current again; see \`dsops secrets history\``,
    });
  }

  // ——— wiring ———

  private subject(env: string, variable: string): Subject {
    const vars = this.config.envs[env];
    if (!vars) throw new DsopsError(`unknown env "${env}"`, { hint: `envs: ${Object.keys(this.config.envs).join(", ") || "(none)"}` });
    const v = vars[variable];
    if (!v) throw new DsopsError(`env "${env}" has no variable "${variable}"`);
    const path = `envs.${env}.${variable}.rotation`;
    const policy = v.spec.rotation as VariableRotation | undefined;
    if (!policy) throw new DsopsError(`envs.${env}.${variable} has no rotation block`, { hint: "add rotation: {service: <name>, strategy: …}" });
    if (!v.ref || v.spec.literal !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: rotation needs a secret in a store (from: store://…)`);
    if (v.ref.field !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: rotation rotates a whole secret; remove "#${v.ref.field}"`);
    if (v.ref.version !== undefined) throw new ConfigError(`envs.${env}.${variable}.from: a rotated secret cannot pin a version ("${v.ref.version}")`);
    // Transient store failures are retried (each staging call is idempotent); the engine's clock
    // is moved ahead in drills while a rotation waits, so each client's own timeout bounds a call.
    const store = this.resolver.guardedStore(v.ref.store, { timeout: false });
    if (!hasStaging(store))
      throw new DsopsError(`${path}: store "${v.ref.store}" (${store.type}) cannot stage rotations (pending/current/previous) yet`, { hint: "keep rotated secrets in a file store for now" });
    return {
      env,
      variable,
      path,
      policy,
      ref: v.ref,
      secret: `store://${v.ref.store}/${v.ref.key}`,
      store,
      target: this.targetFor(policy.service, `${path}.service`),
      history: this.historyFor(env, variable),
    };
  }

  private targetFor(service: string, path: string): Target {
    const injected = this.opts.targets?.[service];
    if (injected) return injected;
    let t = this.targets.get(service);
    if (!t) {
      const raw = this.config.raw.services[service];
      if (!raw) {
        const names = Object.keys(this.config.raw.services);
        throw new ConfigError(`${path}: unknown service "${service}"${names.length ? ` (services: ${names.join(", ")})` : " (no services are defined)"}`);
      }
      t = createTarget(service, raw, {
        resolveRef: async (ref) => {
          try {
            return (await this.resolver.resolveRef(parseStoreUri(ref))).value;
          } catch (e) {
            // The admin credential (or signing secret) named in services: is missing: say whose.
            if (e instanceof NotFoundError) throw new NotFoundError(`service "${service}": ${ref} does not exist: ${e.message}`, { hint: `check services.${service} in dsops.yaml, or store the credential there` });
            throw e;
          }
        },
        clock: this.clock,
        configDir: this.config.dir,
      });
      this.targets.set(service, t);
    }
    return t;
  }

  /** The history of a variable: the engine's injected one, the variable's `rotation.history`, or a file next to its file store. */
  historyFor(env: string, variable: string): HistoryBackend {
    if (this.opts.history) return this.opts.history;
    const v = this.config.envs[env]?.[variable];
    const h = (v?.spec.rotation as VariableRotation | undefined)?.history;
    if (h?.type === "postgres") {
      const cacheKey = `postgres:${h.service}:${h.table}`;
      let b = this.histories.get(cacheKey);
      if (!b) {
        b = this.postgresHistory(h.service, h.table);
        this.histories.set(cacheKey, b);
      }
      return b;
    }
    const path = h?.path ? (isAbsolute(h.path) ? h.path : resolvePath(this.config.dir, h.path)) : defaultHistoryPath(this.defaultHistoryDir(v?.ref?.store));
    let b = this.histories.get(`file:${path}`);
    if (!b) {
      b = new FileHistory(path, this.clock);
      this.histories.set(`file:${path}`, b);
    }
    return b;
  }

  /** The folder of the variable's file store, else of the first file store, else the config's folder. */
  private defaultHistoryDir(storeName?: string): string {
    const fileDir = (name: string) => {
      const s = this.config.stores[name];
      if (s?.type !== "file") return undefined;
      return dirname(isAbsolute(s.path) ? s.path : resolvePath(this.config.dir, s.path));
    };
    if (storeName) {
      const d = fileDir(storeName);
      if (d) return d;
    }
    for (const name of Object.keys(this.config.stores)) {
      const d = fileDir(name);
      if (d) return d;
    }
    return join(this.config.dir, ".dsops");
  }

  private postgresHistory(service: string, table: string): HistoryBackend {
    const raw = this.config.raw.services[service];
    if (!raw) throw new ConfigError(`rotation.history.service: unknown service "${service}"`);
    const { PostgresTarget } = require("./targets/postgresql") as typeof import("./targets/postgresql");
    const { PostgresHistory } = require("./history/postgres") as typeof import("./history/postgres");
    const t = new PostgresTarget(service, raw, { resolveRef: async () => new Secret(""), clock: this.clock, configDir: this.config.dir });
    const s = t.settings;
    // The admin credential is resolved lazily: the backend connects on first use.
    return new LazyHistory(async () => {
      const v = await this.resolver.resolveRef(parseStoreUri(s.admin));
      let cred: { username?: unknown; password?: unknown };
      try {
        cred = JSON.parse(v.value.reveal()) as typeof cred;
      } catch {
        cred = {};
      }
      if (typeof cred.username !== "string" || typeof cred.password !== "string")
        throw new DsopsError(`rotation history: the admin credential of service "${service}" is not JSON {"username", "password"}`);
      return new PostgresHistory(
        { host: s.host, port: s.port, database: s.database, user: cred.username, password: cred.password, connectionTimeoutMillis: s.connect_timeout_ms, application_name: "dsops-rotation-history" },
        table,
        [cred.password],
      );
    });
  }

  private async readStage(subject: Subject, stage: "current" | "previous"): Promise<{ value: Secret; versionId: string } | undefined> {
    try {
      const v = await subject.store.get({ key: subject.ref.key, version: stage });
      return { value: v.value, versionId: v.versionId };
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  private async readPending(st: RunState): Promise<Credential> {
    const v = await st.subject.store.get({ key: st.subject.ref.key, version: st.rec.newVersionId as string });
    const cred = st.strategy.shape.decode(v.value, st.subject.path);
    st.secrets.push(cred.secret);
    return cred;
  }

  private pendingOf(st: RunState): Credential {
    if (!st.pending) throw new DsopsError(`rotation ${st.rec.id}: no pending credential (internal)`);
    return st.pending;
  }

  private hit(point: FaultPoint): void {
    this.fault?.(point);
  }

  private event(message: string): void {
    this.opts.onEvent?.(message);
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

/** A step that decides the rotation's fate failed: roll back. */
class StepFailure extends Error {}

/** A record whose run failed at apply, stage or verify (or began its rollback): the next run finishes the rollback. */
function rollingBack(rec: RotationRecord): boolean {
  return rec.steps.some((s) => (s.outcome === "failed" && (s.name === "apply" || s.name === "verify" || s.name === "stage")) || s.name === "restore" || s.name === "discard");
}

/** A history backend created on first use (its connection needs a resolved credential). */
class LazyHistory implements HistoryBackend {
  readonly kind = "postgres";
  private inner?: Promise<HistoryBackend>;
  constructor(private readonly make: () => Promise<HistoryBackend>) {}
  private backend(): Promise<HistoryBackend> {
    if (!this.inner) {
      this.inner = this.make();
      this.inner.catch(() => (this.inner = undefined));
    }
    return this.inner;
  }
  async save(r: RotationRecord): Promise<void> {
    return (await this.backend()).save(r);
  }
  async get(id: string): Promise<RotationRecord | undefined> {
    return (await this.backend()).get(id);
  }
  async list(f?: HistoryFilter): Promise<RotationRecord[]> {
    return (await this.backend()).list(f);
  }
  async lock(secret: string, owner: LockOwner) {
    return (await this.backend()).lock(secret, owner);
  }
  async holder(secret: string): Promise<LockOwner | undefined> {
    return (await this.backend()).holder(secret);
  }
  async close(): Promise<void> {
    const i = this.inner;
    this.inner = undefined;
    if (i) await (await i).close();
  }
}

export function newRotationId(clock: Clock): string {
  return `rot-${clock.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * Library API: rotate one variable's secret with a fresh engine (the Pulumi RotationPolicy
 * resource and scripts call this). Throws RotationInProgressError when another run holds the
 * secret's lock, RotationError when the rotation rolled back or failed.
 */
export async function rotate(config: Config, env: string, variable: string, options: RotateOptions & RotationEngineOptions = {}): Promise<RotationResult> {
  const engine = new RotationEngine(config, options);
  try {
    return await engine.rotate(env, variable, options);
  } finally {
    await engine.close();
  }
}

export { RotationError, RotationInProgressError };
