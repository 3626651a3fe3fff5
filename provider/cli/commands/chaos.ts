import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { Option, type Command } from "commander";
import { DsopsError } from "../../core/errors";
import type { ChaosFault } from "../../rotation/fault";
import type { CurrentCheck } from "../../rotation/engine/api";
import type { RotationRecord } from "../../rotation/types";
import type { RolloutProgress } from "../../rotation/rollout/plan";
import type { Config } from "../../engine/config/load";
import { configPath, loadConfig, parseDuration } from "../util";
import { selfCommand } from "../../core/self";

/**
 * `dsops chaos run`: inject faults into real rotations of a test or staging env (listed in
 * `chaos.envs`, never one named like production) and report what the engine did. Each fault is
 * one experiment: the secret's state is checked (the credential stored as current must work at
 * the target), the rotation runs as a child `dsops secrets rotate` with the fault (DSOPS_CHAOS,
 * or DSOPS_FAULT for a SIGKILL at a step), a second run recovers what a killed run left, and the
 * state is checked again. The report says what was injected, at which step, what the engine did,
 * the final state of store and target, and the verdict; never a value. Exit 0 when every
 * rollback path behaved, 1 when one did not.
 */

type Format = "json" | "md";

interface Flags {
  env: string;
  secret?: string;
  var?: string;
  inject: string[];
  report?: string;
  format?: Format;
  timeout: string;
}

/** One child run of `dsops secrets rotate`. */
interface RunView {
  readonly exitCode: number | null;
  /** The signal that ended it (SIGKILL for kill-at). */
  readonly signal: string | null;
  /** Its last `error:` line, when it printed one. */
  readonly message?: string;
}

/** The secret's state as the report shows it. */
interface StateView {
  readonly currentVersion: string | null;
  readonly pendingVersion: string | null;
  readonly locked: boolean;
  /** True: the target accepted the credential stored as current; null: the target cannot verify. */
  readonly loginWorks: boolean | null;
  readonly check: string;
}

interface Experiment {
  readonly variable: string;
  readonly secret: string;
  readonly service: string;
  readonly strategy: string;
  readonly inject: string;
  step: string;
  description: string;
  readonly before: StateView;
  run?: RunView;
  rotation?: { id: string; status: string; steps: string[]; error?: string; resumedBy?: number; warnings?: string[] };
  /** A gradual rollout: its waves and what became of each instance (names only). */
  rollout?: {
    waves: number;
    reached: number;
    applied: string[];
    verified: string[];
    restored: string[];
    failed: string[];
    untouched: string[];
  };
  /** A rollout's `on_failure` (rollback_all, stop, continue). */
  onFailure?: string;
  /** `on_failure: stop`: where the injected run halted the rollout, as the record said before the next run resumed it. */
  halt?: { wave: number; kept: string[]; putBack: string[]; untouched: string[]; promoted: boolean };
  /** Which path of the engine the experiment exercised (a `stop` or `continue` rollout does not roll back: it halts, or goes on). */
  proves?: string;
  engine?: string;
  recovery?: RunView & { readonly what: string };
  after?: StateView;
  verdict: "proven" | "not proven";
  problems: string[];
}

interface Report {
  readonly kind: "dsops-chaos-report";
  readonly version: 1;
  readonly env: string;
  /** The variables chaos-tested, in order. */
  readonly variables: string[];
  readonly startedAt: string;
  finishedAt?: string;
  readonly experiments: Experiment[];
  verdict?: "rollback path proven" | "rollback path not proven";
}

const collect = (v: string, prev: string[]) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

export function register(program: Command): void {
  const chaos = program.command("chaos").description("inject faults into real rotations of a test or staging env, to prove the rollback paths");
  chaos
    .command("run")
    .description("rotate a secret with a fault injected (store write failure, target timeout, verification failure, SIGKILL at a step) and report what the engine did")
    .requiredOption("-e, --env <env>", "env name (must be listed in chaos.envs of dsops.yaml; never an env named like production)")
    .option("--secret <name>", "the variable whose secret is rotated (its rotation: block says how); without --inject: its faults in chaos.experiments")
    .option("--var <name>", "same as --secret")
    .option(
      "--inject <fault>",
      "the fault: store-write-failure, target-timeout, verification-failure or kill-at:<step> (generate, stage, apply, verify, promote, retire, restore, discard); in a rollout also target-timeout@wave:<n>, verification-failure@wave:<n>, kill-at:wave:<n>; repeat or comma-separate for several experiments (default: chaos.experiments of dsops.yaml)",
      collect,
      [],
    )
    .option("--report <file>", "write the report to this file (default: standard output)")
    .addOption(new Option("--format <format>", "report format (default: json for a .json --report, else md)").choices(["json", "md"]))
    .option("--timeout <duration>", "target-timeout: how long the lost answer is waited for", "2s")
    .action(async (o: Flags, cmd: Command) => {
      const { parseChaosFault, ChaosFaultError } = require("../../rotation/fault") as typeof import("../../rotation/fault");
      const variable = o.secret ?? o.var;
      if (o.inject.length && !variable) cmd.error("error: --inject needs the variable to rotate: --secret NAME", { exitCode: 2, code: "dsops.missingVar" });
      const timeoutMs = parseDuration(o.timeout, "--timeout");
      const parse = (text: string): ChaosFault => {
        try {
          return parseChaosFault(text, timeoutMs);
        } catch (e) {
          if (!(e instanceof ChaosFaultError)) throw e;
          return cmd.error(`error: --inject: ${e.message}`, { exitCode: 2, code: "dsops.badInject" });
        }
      };
      const given = o.inject.map(parse);
      const format: Format = o.format ?? (o.report?.toLowerCase().endsWith(".json") ? "json" : "md");
      const config = loadConfig(cmd);
      // Without --inject: the experiments declared in chaos.experiments (of --secret, or of every variable of the env).
      const { declaredExperiments } = require("../../rotation/chaos-settings") as typeof import("../../rotation/chaos-settings");
      const plan = given.length
        ? [{ variable: variable as string, faults: given }]
        : declaredExperiments(config.raw, o.env)
            .filter((x) => !variable || x.variable === variable)
            .map((x) => ({ variable: x.variable, faults: x.faults.map(parse) }));
      if (!plan.length)
        throw new DsopsError(`chaos: nothing to inject: no --inject given and chaos.experiments declares no fault for ${variable ? `variable "${variable}"` : "a variable"} of env "${o.env}"`, {
          hint: "name the faults with --inject (store-write-failure, target-timeout, verification-failure, kill-at:<step>), or declare them in chaos.experiments of dsops.yaml",
        });
      // A report that cannot be written is found out before anything is injected.
      if (o.report) writeReport(o.report, "");
      const report = await runChaos(config, resolvePath(configPath(cmd)), o.env, plan);
      const text = format === "json" ? JSON.stringify(report, null, 2) + "\n" : markdown(report);
      if (o.report) {
        writeReport(o.report, text);
        for (const x of report.experiments) process.stdout.write(`${x.variable} ${x.inject}: ${x.verdict}${x.problems.length ? ` (${x.problems.join("; ")})` : ""}\n`);
        process.stdout.write(`${report.verdict}; report written to ${o.report}\n`);
      } else process.stdout.write(text);
      if (report.verdict !== "rollback path proven")
        throw new DsopsError(`chaos: rollback path not proven for ${report.experiments.filter((x) => x.verdict !== "proven").map((x) => `${x.variable} ${x.inject}`).join(", ")} (env ${o.env})`, {
          hint: "read the report's problems: they say which step or check did not behave",
        });
    });
}

function writeReport(file: string, text: string): void {
  try {
    writeFileSync(file, text, { mode: 0o644 });
  } catch (e) {
    const { errorMessage } = require("../../core/errors") as typeof import("../../core/errors");
    throw new DsopsError(`--report ${file}: cannot write the report: ${errorMessage(e)}`, { hint: "name a file in a folder that exists and is writable" });
  }
}

function describe(f: ChaosFault): string {
  switch (f.kind) {
    case "store-write-failure":
      return "the store refuses the write of the new pending version (stage step)";
    case "target-timeout":
      if (f.wave !== undefined) return `rollout wave ${f.wave}: its first instance gets the new credential but the answer is lost: the call fails after ${f.ms} ms`;
      return `the target makes the change of the apply step but its answer is lost: the call fails after ${f.ms} ms`;
    case "verification-failure":
      if (f.wave !== undefined) return `rollout wave ${f.wave}: each instance of it is logged in to with a credential it does not accept (a real failed login)`;
      return "the verify step logs in with a credential the target does not accept (a real failed login)";
    case "kill-at-wave":
      return `the rotating process is killed (SIGKILL) at the boundary after rollout wave ${f.wave} (its progress saved, the next wave not begun); a second run recovers`;
    case "kill-at":
      return `the rotating process is killed (SIGKILL) just after the ${f.step} step's action ran, before its end is recorded${f.step === "restore" || f.step === "discard" ? " (a verification failure is injected with it, to reach the rollback)" : ""}; a second run recovers`;
  }
}

async function runChaos(config: Config, configFile: string, env: string, plan: ReadonlyArray<{ variable: string; faults: readonly ChaosFault[] }>): Promise<Report> {
  const { chaosRefusal } = require("../../rotation/chaos-settings") as typeof import("../../rotation/chaos-settings");
  const refusal = chaosRefusal(config.raw, env);
  if (refusal) throw new DsopsError(`chaos: ${refusal}; nothing was injected`, { hint: "list test and staging envs in chaos.envs of dsops.yaml (an env named like production is refused anyway)" });
  if (!config.envs[env]) throw new DsopsError(`unknown env "${env}"`, { hint: `envs: ${Object.keys(config.envs).join(", ") || "(none)"}` });
  const { chaosFaultName } = require("../../rotation/fault") as typeof import("../../rotation/fault");
  for (const { variable, faults } of plan) {
    const rotation = config.envs[env][variable]?.spec.rotation as { rollout?: unknown } | undefined;
    if (!rotation) throw new DsopsError(`envs.${env}.${variable}: no rotation block to chaos-test`, { hint: "name a rotated variable with --secret" });
    const waved = faults.find((f) => f.kind === "kill-at-wave" || ((f.kind === "target-timeout" || f.kind === "verification-failure") && f.wave !== undefined));
    if (waved && !rotation.rollout)
      throw new DsopsError(`chaos: ${chaosFaultName(waved)}: envs.${env}.${variable}.rotation has no rollout: (no waves to strike); nothing was injected`, {
        hint: "inject the fault without @wave (or kill-at:<step>), or chaos-test a variable rotated with rotation.rollout",
      });
  }
  const report: Report = { kind: "dsops-chaos-report", version: 1, env, variables: plan.map((x) => x.variable), startedAt: new Date().toISOString(), experiments: [] };
  for (const { variable, faults } of plan) await runVariable(config, configFile, env, variable, faults, report);
  report.finishedAt = new Date().toISOString();
  report.verdict = report.experiments.every((x) => x.verdict === "proven") ? "rollback path proven" : "rollback path not proven";
  return report;
}

async function runVariable(config: Config, configFile: string, env: string, variable: string, faults: readonly ChaosFault[], report: Report): Promise<void> {
  const { chaosFaultName, chaosStep } = require("../../rotation/fault") as typeof import("../../rotation/fault");
  const strategy = config.envs[env][variable].spec.rotation?.strategy ?? "-";
  const rollout = !!(config.envs[env][variable].spec.rotation as { rollout?: unknown } | undefined)?.rollout;
  for (const given of faults) {
    // In a rollout, a login or apply fault strikes a wave (the first, unless @wave:<n> says which).
    const f: ChaosFault = rollout && (given.kind === "verification-failure" || given.kind === "target-timeout") && given.wave === undefined ? { ...given, wave: 1 } : given;
    const checked = await check(config, env, variable);
    const before = view(checked);
    const x: Experiment = {
      variable,
      secret: checked.secret,
      service: checked.service,
      strategy,
      inject: chaosFaultName(f),
      step: chaosStep(f),
      description: describe(f),
      before,
      verdict: "not proven",
      problems: [],
    };
    report.experiments.push(x);
    if (before.locked || before.pendingVersion) {
      x.problems.push(`not run: ${before.locked ? "another run holds the secret's rotation lock" : `an unfinished rotation left pending version ${before.pendingVersion}`}; finish it first (dsops secrets rotate)`);
      continue;
    }
    if (before.loginWorks === false) {
      x.problems.push(`not run: the credential stored as current does not work before the fault (${before.check})`);
      continue;
    }
    const known = new Set((await records(config, env, variable)).map((r) => r.id));
    const faultEnv: NodeJS.ProcessEnv =
      f.kind === "kill-at"
        ? { DSOPS_FAULT: `after:${f.step}`, ...(f.step === "restore" || f.step === "discard" ? { DSOPS_CHAOS: "verification-failure" } : {}) }
        : f.kind === "kill-at-wave"
          ? { DSOPS_FAULT: `after:wave:${f.wave}` }
          : { DSOPS_CHAOS: chaosFaultName(f, true) };
    x.run = await rotateChild(configFile, env, variable, faultEnv, `dsops chaos: ${x.inject}`);
    let rec = (await records(config, env, variable)).filter((r) => !known.has(r.id)).pop();
    // on_failure: stop: the rollout as the injected run halted it (the next run resumes it below).
    const halted = rec ? progressOf(rec) : undefined;
    const halt = halted?.halted
      ? {
          wave: halted.halted.wave,
          kept: halted.waves.slice(0, halted.halted.wave - 1).flatMap((w) => w.instances).filter((n) => halted.verified.includes(n)),
          putBack: halted.failed.filter((y) => y.wave === halted.halted?.wave).map((y) => y.instance),
          untouched: halted.instances.map((i) => i.name).filter((n) => !halted.applied.includes(n) && !halted.failed.some((y) => y.instance === n)),
          promoted: !!rec?.steps.some((s) => s.name === "promote"),
        }
      : undefined;
    if (rec?.status === "running") {
      const r = await rotateChild(configFile, env, variable, {}, `dsops chaos: recovery after ${x.inject}`);
      const recs = await records(config, env, variable);
      const again = recs.find((y) => y.id === rec?.id);
      const later = recs.filter((y) => !known.has(y.id) && y.id !== rec?.id);
      rec = again ?? rec;
      const what =
        rec.status === "succeeded" || rec.status === "grace"
          ? `resumed rotation ${rec.id} and finished it (${rec.status})`
          : rec.status === "rolled-back"
            ? `finished the rollback of rotation ${rec.id}${later[0] ? `, then rotated as asked: rotation ${later[0].id} ${later[0].status}` : ""}`
            : `left rotation ${rec.id} ${rec.status}`;
      x.recovery = { ...r, what };
    }
    if (rec) {
      x.rotation = {
        id: rec.id,
        status: rec.status,
        steps: rec.steps.map((s) => `${s.name}:${s.outcome ?? "unfinished"}`),
        ...(rec.error ? { error: rec.error } : {}),
        ...(rec.resumedBy?.length ? { resumedBy: rec.resumedBy.length } : {}),
        ...(rec.warnings?.length ? { warnings: rec.warnings } : {}),
      };
      const p = (rec as RotationRecord & { rollout?: import("../../rotation/rollout/plan").RolloutProgress }).rollout;
      if (p) {
        const touched = new Set([...p.applied, ...p.failed.map((y) => y.instance)]);
        x.rollout = {
          waves: p.waves.length,
          reached: Math.min(p.waves.length, p.wave + (rec.status === "succeeded" || rec.status === "grace" ? 0 : 1)),
          applied: [...p.applied],
          verified: [...p.verified],
          restored: [...p.restored],
          failed: p.failed.map((y) => y.instance),
          untouched: p.instances.map((i) => i.name).filter((n) => !touched.has(n)),
        };
        x.onFailure = p.onFailure;
        if (halt) x.halt = halt;
      }
      x.engine = engineAction(rec, x);
    } else x.engine = "nothing was recorded: no rotation started";
    x.after = view(await check(config, env, variable));
    judge(f, x, rec);
  }
}

const progressOf = (r: RotationRecord): RolloutProgress | undefined => (r as RotationRecord & { rollout?: RolloutProgress }).rollout;

/** What the engine did, in words. */
function engineAction(rec: RotationRecord, x: Experiment): string {
  const r = x.rollout;
  if (r) {
    const list = (a: string[]) => a.join(", ") || "none";
    if (x.halt) {
      const h = x.halt;
      const then =
        x.recovery && (rec.status === "succeeded" || rec.status === "grace")
          ? `the next run resumed the rollout at wave ${h.wave} and finished it: every instance holds the new credential (${list(r.verified)}), now current`
          : `after the next run the rotation is ${rec.status}`;
      return `halted (on_failure: stop): wave ${h.wave} of ${r.waves} failed; ${h.kept.length ? `${list(h.kept)} (waves 1..${h.wave - 1}) kept the new credential, still pending` : "no earlier wave had the new credential"}; ${list(h.putBack)} got the old credential back; never touched: ${list(h.untouched)}; the store's current version was not changed by the halted run; ${then}`;
    }
    if (x.onFailure === "continue" && r.failed.length && (rec.status === "succeeded" || rec.status === "grace"))
      return `continued (on_failure: continue): ${list(r.failed)} failed and got the old credential back, which it keeps; the rollout went on: ${list(r.verified)} hold the new credential, now current; ${list(r.failed)} no longer match${r.failed.length === 1 ? "es" : ""} the stored current credential`;
    if (x.recovery && (rec.status === "succeeded" || rec.status === "grace"))
      return `resumed: the next run went on with the rollout (${r.waves} waves) and finished it: every instance holds the new credential (${list(r.verified)})`;
    if (rec.status === "rolled-back")
      return `${x.recovery ? "recovered: the next run finished the rollback" : "rolled back"}: wave ${r.reached} of ${r.waves} failed; the old credential was put back on ${list(r.restored)} (waves 1..${r.reached}); never touched: ${list(r.untouched)}`;
  }
  if (x.recovery) {
    if (rec.status === "rolled-back") return "recovered: the next run finished the rollback the killed run had begun";
    if (rec.status === "succeeded" || rec.status === "grace") return "resumed: the next run finished the rotation the killed run left";
    return `not recovered: the rotation is ${rec.status} after the next run`;
  }
  if (rec.status === "rolled-back") return `rolled back: the ${rec.steps.find((s) => s.outcome === "failed")?.name ?? "?"} step failed; restore and discard ran (the credential stored as current is unchanged)`;
  if (rec.status === "succeeded" || rec.status === "grace") return "rotated: the fault did not change the rotation's course";
  return `left the rotation ${rec.status}`;
}

/** The verdict of one experiment: the fault struck where named, the engine ended the rotation cleanly, and the store and target agree. */
function judge(f: ChaosFault, x: Experiment, rec: RotationRecord | undefined): void {
  const p = x.problems;
  const run = x.run as RunView;
  const after = x.after as StateView;
  for (const [what, r] of [["the injected run", run], ["the recovery run", x.recovery]] as const)
    if (r?.exitCode === 70 || r?.message?.startsWith("internal error")) p.push(`${what} ended in an internal error (exit 70)`);
  const mode = x.onFailure;
  const waveFault = (f.kind === "verification-failure" || f.kind === "target-timeout") && f.wave !== undefined;
  if (waveFault && (mode === "stop" || mode === "continue")) {
    judgeNoRollback(f.wave as number, mode, x, rec);
    return finalChecks(x, rec);
  }
  if (f.kind === "kill-at" || f.kind === "kill-at-wave") {
    const where = f.kind === "kill-at" ? f.step : `the end of wave ${f.wave}`;
    if (run.signal !== "SIGKILL") p.push(`the fault was not reached: the run ${run.exitCode === 0 ? "finished" : `exited ${run.exitCode}`} without being killed at ${where} (does this rotation run that ${f.kind === "kill-at" ? "step" : "wave: is it a rollout with that many waves?"})`);
    else if (!x.recovery) p.push("the killed run left no unfinished rotation to recover");
    else if (x.recovery.exitCode !== 0) p.push(`the recovery run exited ${x.recovery.exitCode}${x.recovery.message ? `: ${x.recovery.message}` : ""}`);
  } else {
    if (run.exitCode === 0) p.push("the rotation succeeded: the fault did not make it fail");
    else if (run.exitCode !== 1) p.push(`the injected run exited ${run.exitCode ?? run.signal} (expected 1: rotation rolled back)`);
    if (rec && rec.status !== "rolled-back") p.push(`the rotation is ${rec.status}, not rolled back`);
    const failed = rec?.steps.find((s) => s.outcome === "failed")?.name;
    if (f.kind === "store-write-failure" && failed === "apply" && rec && !rec.steps.some((s) => s.name === "stage")) {
      // A create-type target: the value is written as the pending version before create, in the apply step.
      x.step = "apply";
      x.description += " (a create-type target: that write comes first in the apply step, before create)";
    }
    if (rec && failed !== x.step) p.push(`the failure struck at ${failed ?? "no step"}, not at ${x.step}`);
    if (after.currentVersion !== x.before.currentVersion) p.push(`the store's current version changed (${x.before.currentVersion} → ${after.currentVersion}) though the rotation rolled back`);
  }
  x.proves = f.kind === "kill-at" || f.kind === "kill-at-wave" ? "recovery after a kill (the next run resumes the rotation or finishes its rollback)" : "the rollback path";
  finalChecks(x, rec);
}

/** Checks every experiment ends with: a closed rotation, no pending version or lock, store and target agreeing. */
function finalChecks(x: Experiment, rec: RotationRecord | undefined): void {
  const p = x.problems;
  const after = x.after as StateView;
  if (!rec) p.push("no rotation record was written");
  else if (!["rolled-back", "succeeded", "grace"].includes(rec.status)) p.push(`rotation ${rec.id} is left ${rec.status}`);
  if (after.pendingVersion) p.push(`pending version ${after.pendingVersion} was left in the store`);
  if (after.locked) p.push("the secret's rotation lock is still held");
  if (after.loginWorks === false) p.push(`the store and the target disagree: ${after.check}`);
  if (rec?.status === "succeeded" && rec.newVersionId && after.currentVersion !== rec.newVersionId)
    p.push(`the store's current version is ${after.currentVersion}, not the rotation's ${rec.newVersionId}`);
  x.verdict = p.length ? "not proven" : "proven";
}

/**
 * A wave fault in a rollout whose `on_failure` is `stop` or `continue`: the engine does not roll
 * back, so the rollback path is not what is proven. `stop` is proven when the injected run
 * halted at the faulted wave (exit 1), the earlier waves kept the new credential, the failed
 * instance got the old one back, the later waves were never touched, nothing was promoted, and
 * the next run resumed at that wave and finished the rotation. `continue` is proven when the
 * run succeeded, every instance that failed is of the faulted wave and got the old credential
 * back, and every other instance took the new one.
 */
function judgeNoRollback(wave: number, mode: "stop" | "continue", x: Experiment, rec: RotationRecord | undefined): void {
  const p = x.problems;
  const run = x.run as RunView;
  const r = x.rollout;
  const waveOf = (n: string) => {
    const prog = rec ? progressOf(rec) : undefined;
    return prog ? prog.waves.findIndex((w) => w.instances.includes(n)) + 1 : 0;
  };
  if (run.exitCode === 70 || run.message?.startsWith("internal error")) p.push("the injected run ended in an internal error (exit 70)");
  if (x.recovery && (x.recovery.exitCode === 70 || x.recovery.message?.startsWith("internal error"))) p.push("the recovery run ended in an internal error (exit 70)");
  if (!r) return void p.push("the rotation record has no rollout progress");
  if (wave > r.waves) p.push(`the rollout has ${r.waves} wave(s): wave ${wave} was never reached`);
  if (mode === "stop") {
    x.proves = "halt and resume (on_failure: stop), not the rollback path";
    const h = x.halt;
    if (run.exitCode !== 1) p.push(`the injected run ${run.exitCode === 0 ? "succeeded" : `exited ${run.exitCode ?? run.signal}`} (expected 1: rollout halted at wave ${wave})`);
    if (!h) return void p.push("the rollout did not halt (on_failure: stop): no halted wave in the record after the injected run");
    if (h.wave !== wave) p.push(`the rollout halted at wave ${h.wave}, not at wave ${wave}`);
    if (!h.putBack.length) p.push(`no instance of wave ${wave} was put back on the old credential`);
    const early = h.kept.filter((n) => waveOf(n) >= wave);
    if (early.length) p.push(`${early.join(", ")} kept the new credential though not of waves 1..${wave - 1}`);
    const touchedLater = rec ? (progressOf(rec)?.waves.slice(wave).flatMap((w) => w.instances) ?? []).filter((n) => !h.untouched.includes(n)) : [];
    if (touchedLater.length) p.push(`${touchedLater.join(", ")} of a later wave was touched before the halt`);
    if (h.promoted) p.push("the halted run promoted the new version");
    if (!x.recovery) p.push("the halted rotation was not left open for the next run to resume");
    else if (x.recovery.exitCode !== 0) p.push(`the next run exited ${x.recovery.exitCode}${x.recovery.message ? `: ${x.recovery.message}` : ""} (expected 0: the rollout resumed and finished)`);
    if (rec && rec.status !== "succeeded" && rec.status !== "grace") p.push(`the rotation is ${rec.status} after the next run, not finished`);
  } else {
    x.proves = "going on past the failed instances (on_failure: continue), not the rollback path";
    if (run.exitCode !== 0) p.push(`the injected run exited ${run.exitCode ?? run.signal} (expected 0: the rollout went on past the failed instance)`);
    if (rec && rec.status !== "succeeded" && rec.status !== "grace") p.push(`the rotation is ${rec.status}, not finished`);
    if (!r.failed.length) p.push(`no instance failed: the fault did not strike wave ${wave}`);
    const elsewhere = r.failed.filter((n) => waveOf(n) !== wave);
    if (elsewhere.length) p.push(`${elsewhere.join(", ")} failed outside wave ${wave}`);
    const missed = rec ? (progressOf(rec)?.instances.map((i) => i.name) ?? []).filter((n) => !r.failed.includes(n) && !r.verified.includes(n)) : [];
    if (missed.length) p.push(`${missed.join(", ")} neither took the new credential nor failed`);
    if (x.after?.currentVersion === x.before.currentVersion) p.push("the store's current version did not change: the rotation was not finished");
  }
}

function view(c: CurrentCheck): StateView {
  return { currentVersion: c.currentVersion ?? null, pendingVersion: c.pendingVersion ?? null, locked: !!c.lockedBy, loginWorks: c.works ?? null, check: c.check };
}

/** Versions, lock and a verification of the stored current credential, with an engine of its own (closed after: no connection outlives the check). */
async function check(config: Config, env: string, variable: string): Promise<CurrentCheck> {
  const { RotationEngine } = require("../../rotation/engine") as typeof import("../../rotation/engine");
  const engine = new RotationEngine(config, { chaos: [] });
  try {
    return await engine.checkCurrent(env, variable);
  } finally {
    await engine.close();
  }
}

/** The variable's rotation records, oldest first. */
async function records(config: Config, env: string, variable: string): Promise<RotationRecord[]> {
  const { RotationEngine } = require("../../rotation/engine") as typeof import("../../rotation/engine");
  const engine = new RotationEngine(config, { chaos: [] });
  try {
    return (await engine.history({ env, variable })).filter((r) => r.variable === variable).reverse();
  } finally {
    await engine.close();
  }
}

/**
 * `dsops secrets rotate` in a child process with the fault's environment; its stderr is passed
 * on, prefixed. The record's reason says `dsops chaos: <fault>` (reports tell chaos from incidents).
 */
function rotateChild(configFile: string, env: string, variable: string, faultEnv: NodeJS.ProcessEnv, reason: string): Promise<RunView> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.DSOPS_FAULT;
  delete childEnv.DSOPS_CHAOS;
  Object.assign(childEnv, faultEnv);
  return new Promise((resolveRun, reject) => {
    const self = selfCommand();
    const child = spawn(self.file, [...self.args, "-c", configFile, "--non-interactive", "secrets", "rotate", "--env", env, "--var", variable, "--reason", reason], {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stdout.resume();
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      process.stderr.write(d.replace(/^(?=.)/gm, "  [chaos] "));
    });
    child.on("error", reject);
    child.on("close", (exitCode, signal) => {
      const message = stderr
        .split("\n")
        .filter((l) => l.startsWith("error:") || l.startsWith("internal error"))
        .pop();
      resolveRun({ exitCode, signal, ...(message ? { message } : {}) });
    });
  });
}

function markdown(r: Report): string {
  const yes = (b: boolean | null) => (b === null ? "not checked (the target cannot verify)" : b ? "yes" : "**no**");
  const out = [
    `# Chaos report: env ${r.env}`,
    "",
    `- variables: ${r.variables.join(", ")}`,
    `- from ${r.startedAt} to ${r.finishedAt ?? "-"}`,
    `- **verdict: ${r.verdict}**`,
    "",
    "| variable | injected | at step | engine | final state | verdict |",
    "|---|---|---|---|---|---|",
    ...r.experiments.map(
      (x) =>
        `| ${x.variable} | ${x.inject} | ${x.step} | ${x.engine ?? "not run"} | ${x.after ? `current version ${x.after.currentVersion ?? "-"}, login ${x.after.loginWorks === false ? "refused" : x.after.loginWorks ? "works" : "not checked"}` : "-"} | ${x.verdict} |`,
    ),
    "",
  ];
  for (const x of r.experiments) {
    out.push(`## ${x.variable}: ${x.inject} (step ${x.step}): ${x.verdict}`, "", `Injected: ${x.description}.`, "");
    out.push(`- secret: \`${x.secret}\`, service \`${x.service}\`, strategy ${x.strategy}`);
    out.push(`- before: current version ${x.before.currentVersion ?? "-"}; stored current credential accepted: ${yes(x.before.loginWorks)}`);
    if (x.run) out.push(`- injected run: ${x.run.signal ? `killed by ${x.run.signal}` : `exit ${x.run.exitCode}`}${x.run.message ? ` — ${x.run.message}` : ""}`);
    if (x.rotation) out.push(`- rotation ${x.rotation.id}: ${x.rotation.status}; steps ${x.rotation.steps.join(", ")}${x.rotation.error ? `; error: ${x.rotation.error}` : ""}`);
    if (x.rollout)
      out.push(
        `- rollout: ${x.rollout.waves} waves, reached wave ${x.rollout.reached}; applied ${x.rollout.applied.join(", ") || "none"}; verified ${x.rollout.verified.join(", ") || "none"}; restored ${x.rollout.restored.join(", ") || "none"}; untouched ${x.rollout.untouched.join(", ") || "none"}`,
      );
    if (x.halt) out.push(`- halted (on_failure: stop) at wave ${x.halt.wave}: kept the new credential ${x.halt.kept.join(", ") || "none"}; put back ${x.halt.putBack.join(", ") || "none"}; untouched ${x.halt.untouched.join(", ") || "none"}`);
    if (x.recovery) out.push(`- recovery run: exit ${x.recovery.exitCode}; ${x.recovery.what}`);
    if (x.proves) out.push(`- proves: ${x.proves}`);
    if (x.engine) out.push(`- engine: ${x.engine}`);
    if (x.after)
      out.push(
        `- after: store current version ${x.after.currentVersion ?? "-"}, pending ${x.after.pendingVersion ?? "none"}, lock ${x.after.locked ? "held" : "free"}; target: ${x.after.check}`,
      );
    for (const p of x.problems) out.push(`- problem: ${p}`);
    out.push("");
  }
  return out.join("\n");
}
