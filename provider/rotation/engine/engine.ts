import { clock as currentClock, type Clock } from "../../core/clock";
import { DsopsError, errorMessage } from "../../core/errors";
import type { Config } from "../../engine/config/load";
import type { VariableRotation } from "../settings";
import { Resolver } from "../../engine/resolve";
import { RotatedElsewhereError, RotationError } from "../errors";
import { lastRotationAt } from "../due";
import { RotationEventBus } from "../events";
import { envChaosFaults, envFaultHook, type ChaosFault, type FaultHook } from "../fault";
import type { HistoryBackend, HistoryFilter } from "../history/types";
import { lockOwner, ownerIsDead, whoAmI } from "../lock";
import { connectPorts } from "../ports";
import { resolveStrategy, type ResolvedStrategy } from "../strategies/index";
import type { RotationRecord } from "../types";
import { scrub, type Secret } from "../../core/secret";
import type { ValueRules } from "../targets/types";
import type { CurrentCheck, RollbackOptions, RollbackPlan, RotateOptions, RotationEngineOptions, RotationResult, SecretStatus } from "./api";
import { withChaos } from "./chaos";
import { newRotationId, rollingBack, type EngineContext } from "./context";
import { dryRun } from "./dry-run";
import { healthPortOf } from "./health-gate";
import { resume, start } from "./machine";
import { readStage } from "./step";
import { planRollbackOne, rollbackOne, runManualRollback } from "./manual-rollback";
import { failedEvent } from "./publish";
import { soakWatch, type SoakOptions, type SoakOutcome } from "./soak";
import { Wiring, type Subject } from "./wiring";

/**
 * The rotation engine: one instance serves many rotations of one configuration (the CLI
 * makes one per command; the Pulumi RotationPolicy resource and the benchmark reuse one).
 * A rotation is a step machine (./machine.ts, ../types.ts `rotationSteps`): each step is
 * recorded in the history before it runs and after, under the secret's lock, so a run killed at
 * any instant is resumed (or rolled back) by the next run of the same secret.
 *
 * Events go out on `events` (../events.ts); notifications, metrics and health checks come in
 * through the ports of the options (../ports.ts). Built bare, the engine has none of them: the
 * faces build it with provider/compose/rotation.ts, which plugs in the configured ones.
 */
export class RotationEngine {
  readonly resolver: Resolver;
  /** The engine's event bus: rotation events, health check results, the end of each run. */
  readonly events = new RotationEventBus();
  /** The engine's clock (chains time their soaks and take their locks with it). */
  readonly clock: Clock;
  private readonly ownResolver: boolean;
  private readonly wiring: Wiring;
  private readonly ctx: EngineContext;
  private readonly chaos: readonly ChaosFault[] | undefined;

  constructor(
    readonly config: Config,
    opts: RotationEngineOptions = {},
  ) {
    this.clock = opts.clock ?? currentClock();
    this.ownResolver = !opts.resolver;
    this.resolver =
      opts.resolver ??
      new Resolver(config, { clock: this.clock, ...(opts.env ? { env: opts.env } : {}), ...(opts.onEvent ? { onWarning: (m: string) => opts.onEvent?.(`warning: ${m}`) } : {}) });
    const fault: FaultHook | undefined = opts.fault ?? envFaultHook(opts.env ?? process.env);
    this.chaos = opts.chaos ?? envChaosFaults(opts.env ?? process.env);
    const clock = this.clock;
    this.wiring = new Wiring(config, this.resolver, clock, opts);
    this.ctx = {
      config,
      resolver: this.resolver,
      clock,
      ...(opts.env ? { env: opts.env } : {}),
      who: opts.who ?? whoAmI(),
      wiring: this.wiring,
      bus: this.events,
      ...(opts.health ? { health: opts.health } : {}),
      healthChecks: opts.healthChecks !== false,
      ...(opts.valuePolicy ? { valuePolicy: opts.valuePolicy } : {}),
      log: (m) => opts.onEvent?.(m),
      hit: (point) => fault?.(point),
      nowIso: () => new Date(clock.now()).toISOString(),
      ops: { runManualRollback: (subject, rec) => runManualRollback(this.ctx, subject, rec) },
    };
    // Metrics count an event first, then the listener hears it, then the channels get it.
    if (opts.metrics) connectPorts(this.events, { metrics: opts.metrics });
    if (opts.onRotationEvent) {
      const listener = opts.onRotationEvent;
      this.events.on("rotation", ({ event }) => listener(event));
    }
    if (opts.notify) connectPorts(this.events, { notify: opts.notify });
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
    let subject = this.wiring.subject(env, variable);
    const strategy = resolveStrategy(subject.policy, options.strategy);
    const reason = options.reason ?? (strategy.emergency ? subject.policy.reason : undefined);
    if (strategy.emergency && !reason) throw new DsopsError(`${subject.path}: an emergency rotation needs a reason (--reason "…")`);
    for (const cap of strategy.shape.requires)
      if (!subject.target.capabilities.has(cap))
        throw new DsopsError(`${subject.path}: strategy ${strategy.shape.name} needs a target that can ${cap}; service "${subject.target.name}" (${subject.target.type}) cannot`);
    if (options.newValue) {
      checkNewValue(subject.path, subject.target.name, subject.target.valueRules, options.newValue);
      // The same policies a generated value meets (the problems name the rules, never the value).
      const problems = this.ctx.valuePolicy?.problems(subject.env, options.newValue.reveal()) ?? [];
      if (problems.length)
        throw new DsopsError(`${subject.path}: the new value breaks the policies of env "${subject.env}": ${problems.join("; ")}; nothing was written`, {
          hint: "give a value that meets policies.secret_complexity, forbidden_patterns and required_patterns (or rotate without --new-value: generated values meet them)",
        });
    }
    if (options.dryRun) return dryRun(this.ctx, subject, strategy, reason);
    if (this.chaos) subject = withChaos(this.config, subject, this.chaos, this.clock);
    // Health checks that cannot run are refused before anything changes.
    if (subject.policy.health?.length && this.ctx.healthChecks) healthPortOf(this.ctx, subject.path);

    const id = newRotationId(this.clock);
    const lock = await subject.history.lock(subject.secret, lockOwner(this.clock, id));
    try {
      if (options.ifDue) {
        const last = lastRotationAt(await subject.history.list({ secret: subject.secret, limit: 20 }), subject.secret);
        if (!options.ifDue(last)) throw new RotatedElsewhereError(subject.secret);
      }
      return await this.rotateLocked(subject, strategy, id, reason, options.newValue, options.force);
    } catch (e) {
      if (!(e instanceof RotatedElsewhereError)) await failedEvent(this.ctx, subject, e, id, strategy.name, reason);
      throw e;
    } finally {
      await lock.release();
      await this.events.runEnded();
    }
  }

  private async rotateLocked(subject: Subject, strategy: ResolvedStrategy, id: string, reason: string | undefined, newValue?: Secret, force = false): Promise<RotationResult> {
    {
      const open = (await subject.history.list({ secret: subject.secret, status: ["running", "grace"], limit: 5 }))[0];
      if (newValue && open && !(force && open.status === "grace"))
        throw new DsopsError(`${subject.secret}: rotation ${open.id} is ${open.status === "grace" ? "in its grace period" : "unfinished"}: a new value is not used to finish it`, {
          hint: `finish it first: dsops secrets rotate --env ${subject.env} --var ${subject.variable} (without --new-value)`,
        });
      let finishedRollback: RotationResult["finishedRollback"];
      if (open?.status === "running" && rollingBack(open)) {
        // An earlier run failed and did not finish its rollback (killed, or its disk was full):
        // finish that rollback, then rotate as asked.
        this.ctx.log(`${subject.secret}: finishing the rollback of rotation ${open.id} left unfinished by ${open.who}`);
        const earlier: RotationRecord = open; // resume() rolls this very record back
        try {
          await resume(this.ctx, subject, earlier);
        } catch (e) {
          if (!(e instanceof RotationError) || earlier.status !== "rolled-back") throw e;
          this.ctx.log(errorMessage(e));
        }
        finishedRollback = { id: earlier.id, ...(earlier.error ? { error: earlier.error } : {}) };
      } else if (open?.status === "running") {
        this.ctx.log(`${subject.secret}: resuming rotation ${open.id} left unfinished by ${open.who}`);
        const rec = await resume(this.ctx, subject, open);
        return { record: rec, resumed: true, dryRun: false };
      }
      if (open?.status === "grace") {
        const due = open.retireAfter !== undefined && this.clock.now() >= Date.parse(open.retireAfter);
        if (!due && !strategy.emergency && !force)
          throw new RotationError(`${subject.secret}: rotation ${open.id} is in its grace period until ${open.retireAfter}; the old credential is revoked then`, open.id, {
            hint: "run again after that time, or rotate with --force (or --strategy emergency --reason …) to revoke it now",
          });
        if (!due && force) this.ctx.log(`${subject.secret}: --force: ending the grace period of rotation ${open.id} now (due ${open.retireAfter}); the old credential is revoked`);
        const rec = await resume(this.ctx, subject, open, true);
        if (!strategy.emergency && !(force && !due)) return { record: rec, resumed: true, dryRun: false };
      }
      const rec = await start(this.ctx, subject, strategy, id, reason, newValue);
      return { record: rec, resumed: false, dryRun: false, ...(finishedRollback ? { finishedRollback } : {}) };
    }
  }

  /**
   * Watch the `rotation.health` checks of a variable rotated by rotation `rotationId` (still
   * current) for a soak period (multi-environment chains); changes nothing.
   */
  async soak(env: string, variable: string, rotationId: string, options: SoakOptions): Promise<SoakOutcome> {
    const subject = this.wiring.subject(env, variable);
    try {
      return await soakWatch(this.ctx, subject, rotationId, options);
    } finally {
      await this.events.runEnded();
    }
  }

  /** The fault hook at a fault point (crash tests of chains). */
  hit(point: Parameters<EngineContext["hit"]>[0]): void {
    this.ctx.hit(point);
  }

  /** `user@host` recorded as who rotated. */
  get who(): string {
    return this.ctx.who;
  }

  /** Progress line (never a value). */
  log(message: string): void {
    this.ctx.log(message);
  }

  /** Put back the previous (or a named) version of each variable of `env` rotated by `service`. */
  async rollback(env: string, service: string, options: RollbackOptions, variable?: string): Promise<RotationRecord[]> {
    const vars = this.rollbackVariables(env, service, options, variable);
    const out: RotationRecord[] = [];
    try {
      for (const v of vars) out.push(await rollbackOne(this.ctx, this.wiring.subject(env, v.variable), options));
    } finally {
      await this.events.runEnded();
    }
    return out;
  }

  /** What `rollback` would do, changing nothing (`dsops rotation rollback --dry-run`). */
  async planRollback(env: string, service: string, options: RollbackOptions, variable?: string): Promise<RollbackPlan[]> {
    const out: RollbackPlan[] = [];
    for (const v of this.rollbackVariables(env, service, options, variable)) out.push(await planRollbackOne(this.ctx, this.wiring.subject(env, v.variable), options));
    return out;
  }

  private rollbackVariables(env: string, service: string, options: RollbackOptions, variable?: string) {
    if (!options.reason?.trim()) throw new DsopsError("a rollback needs a reason (--reason \"…\")");
    const vars = this.rotated(env).filter((v) => (!variable || v.variable === variable) && this.config.envs[env][v.variable].spec.rotation?.service === service);
    if (!vars.length) throw new DsopsError(`env "${env}" has no variable rotated by service "${service}"${variable ? ` named ${variable}` : ""}`);
    if (options.version && vars.length > 1)
      throw new DsopsError(`--version names one version, but service "${service}" rotates ${vars.length} variables of env "${env}": pick one with --var`);
    return vars;
  }

  /** Rotation state of every rotated variable (of `env`). */
  async status(env?: string): Promise<SecretStatus[]> {
    const out: SecretStatus[] = [];
    for (const v of this.rotated(env)) {
      const spec = this.config.envs[v.env][v.variable].spec.rotation as VariableRotation;
      const base = { env: v.env, variable: v.variable, service: spec.service, strategy: spec.strategy };
      try {
        const s = this.wiring.subject(v.env, v.variable);
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

  /**
   * The secret's versions and lock, and a verification of the credential stored as current at
   * the target (the rotation's own verification: a login, plus its query). Changes nothing.
   */
  async checkCurrent(env: string, variable: string): Promise<CurrentCheck> {
    const s = this.wiring.subject(env, variable);
    const stages = await s.store.stagesOf(s.ref.key);
    const lockedBy = await s.history.holder(s.secret);
    const base = {
      secret: s.secret,
      service: s.target.name,
      ...(stages.current ? { currentVersion: stages.current } : {}),
      ...(stages.previous ? { previousVersion: stages.previous } : {}),
      ...(stages.pending ? { pendingVersion: stages.pending } : {}),
      ...(lockedBy ? { lockedBy } : {}),
    };
    if (!s.target.verify) return { ...base, check: `service "${s.target.name}" (${s.target.type}) cannot verify a credential` };
    const cur = await readStage(s, "current");
    if (!cur) return { ...base, works: false, check: `${s.secret} has no current version` };
    const cred = resolveStrategy(s.policy).shape.decode(cur.value, s.path);
    const v = s.policy.verification;
    try {
      await s.target.verify(cred, { ...(v?.query ? { query: v.query } : {}), ...(v?.timeout_ms ? { timeoutMs: v.timeout_ms } : {}) });
      return { ...base, works: true, check: `the credential stored as current (version ${cur.versionId}, ${cred.principal}) was accepted by service "${s.target.name}"${v?.query ? " (login and verification query)" : ""}` };
    } catch (e) {
      return { ...base, works: false, check: `service "${s.target.name}" refused the credential stored as current (version ${cur.versionId}, ${cred.principal}): ${scrub(errorMessage(e), [cred.secret, cur.value])}` };
    }
  }

  /** Rotation records, newest first, from the history of every rotated variable (deduplicated). */
  async history(filter: HistoryFilter & { env?: string } = {}): Promise<RotationRecord[]> {
    const backends = new Set<HistoryBackend>();
    for (const v of this.rotated(filter.env)) {
      if (filter.variable && v.variable !== filter.variable) continue;
      backends.add(this.wiring.historyFor(v.env, v.variable));
    }
    const seen = new Map<string, RotationRecord>();
    for (const b of backends) for (const r of await b.list({ ...filter, limit: undefined })) seen.set(r.id, r);
    const all = [...seen.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1));
    return filter.limit ? all.slice(0, filter.limit) : all;
  }

  /** The history of a variable: the engine's injected one, the variable's `rotation.history`, or a file next to its file store. */
  historyFor(env: string, variable: string): HistoryBackend {
    return this.wiring.historyFor(env, variable);
  }

  async close(): Promise<void> {
    await this.wiring.close();
    if (this.ownResolver) await this.resolver.close();
  }
}

/**
 * Rotate one variable's secret with a fresh engine built with the ports in `options` (none by
 * default; provider/compose/rotation.ts's `rotate` plugs in the configured notifications,
 * metrics and health checks). Throws RotationInProgressError when another run holds the
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

export { newRotationId };

/** A supplied new value meets the target's value rules (the message names the rule, never the value). */
function checkNewValue(path: string, service: string, rules: ValueRules, value: Secret): void {
  const v = value.reveal();
  const bad = (why: string) => new DsopsError(`${path}: the new value ${why} (service "${service}")`);
  if (!v) throw bad("is empty");
  if (rules.minLength !== undefined && v.length < rules.minLength) throw bad(`is shorter than ${rules.minLength} characters`);
  if (rules.maxLength !== undefined && v.length > rules.maxLength) throw bad(`is longer than ${rules.maxLength} characters`);
  const forbidden = rules.forbidden ? [...new Set([...v].filter((c) => rules.forbidden?.includes(c)))] : [];
  if (forbidden.length) throw bad(`holds ${forbidden.length} character(s) the target refuses (one of ${JSON.stringify(rules.forbidden)})`);
}
