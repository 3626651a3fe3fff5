import { InvalidArgumentError, Option, type Command } from "commander";
import type { ComposedRotationEngine, ComposedRotationOptions } from "../../compose/rotation";
import type { RotateOptions, RotationResult } from "../../rotation/engine/api";
import type { RotationStrategyName } from "../../rotation/settings";
import { DsopsError } from "../../core/errors";
import type { Secret } from "../../core/secret";
import { parseDuration, readStdin, table } from "../util";

/**
 * `dsops secrets rotate`: one or several variables (`--var`/`--key`, repeatable), each rotated
 * in turn; a failure of one is reported and the others still run; the exit code is non-zero when
 * any failed. `--on-conflict` says what to do when another run holds a secret's rotation lock.
 */

/** The strategy names (`rotationStrategies` of the config schema, kept here so --help loads no zod; the Record makes it exhaustive). */
const STRATEGIES = Object.keys({ "single-user": 1, "alternating-users": 1, "two-secret": 1, immediate: 1, emergency: 1 } satisfies Record<RotationStrategyName, 1>);
/** dsops's names for some of them (`strategyAliases` of the settings, kept here for the same reason). */
const STRATEGY_ALIASES: Readonly<Record<string, RotationStrategyName>> = { random: "single-user", overlap: "two-secret", "two-key": "two-secret" };

/** A built-in strategy or alias, or a plugin strategy's `<prefix>.<name>` (checked against the loaded plugins when the rotation runs). */
function parseStrategy(value: string): RotationStrategyName | (string & {}) {
  if ([...STRATEGIES, ...Object.keys(STRATEGY_ALIASES)].includes(value) || /^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9._-]*$/.test(value)) return value;
  throw new InvalidArgumentError(`Allowed choices are ${[...STRATEGIES, ...Object.keys(STRATEGY_ALIASES)].join(", ")}, or a plugin's strategy (<prefix>.<name>).`);
}

type WithEngine = (cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>, opts?: Pick<ComposedRotationOptions, "notifyOverride">) => Promise<void>;
const CONFLICT = ["fail", "wait", "skip"] as const;
type Conflict = (typeof CONFLICT)[number];
/** How often a waiting run asks for the lock again. */
const WAIT_POLL_MS = 1000;

interface RotateFlags {
  env: string;
  var: string[];
  key: string[];
  strategy?: RotationStrategyName | (string & {});
  dryRun?: boolean;
  reason?: string;
  json?: boolean;
  onConflict: Conflict;
  waitTimeout: string;
  newValue?: string;
  force?: boolean;
  /** true: --notify; false: --no-notify; undefined: as configured. */
  notify?: boolean;
}

/** One variable's outcome. */
type Outcome = { variable: string; result: RotationResult } | { variable: string; skipped: string } | { variable: string; error: unknown };

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerRotate(secrets: Command, withEngine: WithEngine): void {
  secrets
    .command("rotate")
    .description("rotate variables' secrets at their targets (generate, stage, apply, verify, promote, retire)")
    .requiredOption("-e, --env <env>", "env name")
    .option("--var <name>", "variable name (its rotation: block says how); repeat for several", collect, [])
    .option("--key <name>", "same as --var (dsops's spelling); repeatable (rotated after the --var ones)", collect, [])
    .addOption(
      new Option("--strategy <strategy>", "override the configured strategy (random = single-user, overlap and two-key = two-secret; a plugin's <prefix>.<name>)").argParser(parseStrategy),
    )
    .option("--dry-run", "check and show the steps; change nothing")
    .option("--reason <text>", "why (required by --strategy emergency)")
    .option("--json", "print the rotation record as JSON (several variables: an array of outcomes)")
    .addOption(new Option("--on-conflict <what>", "another run holds the rotation lock: fail, wait for it (see --wait-timeout), or skip the variable (exit 0)").choices(CONFLICT).default("fail"))
    .option("--wait-timeout <duration>", "with --on-conflict wait: give up after waiting this long", "10m")
    .option("--notify", "send this run's events to every configured channel, even where the variable's rotation.notifications would not")
    .option("--no-notify", "send no notification for this run")
    .option("--force", "inside the grace period of the last rotation: revoke the old credential now and rotate (instead of refusing)")
    .option("--new-value <source>", "use this value instead of a generated one: only `-` (read from standard input); never a value on the command line")
    .action(async (o: RotateFlags, cmd: Command) => {
      const vars = [...new Set([...o.var, ...o.key])];
      if (!vars.length) cmd.error("error: name the variable to rotate: --var NAME (or --key NAME), repeatable", { exitCode: 2, code: "dsops.missingVar" });
      const waitMs = parseDuration(o.waitTimeout, "--wait-timeout");
      if (o.newValue !== undefined && o.newValue !== "-")
        cmd.error("error: --new-value takes the value from standard input, not from the command line (where ps and the shell history see it): write --new-value - and pipe the value in", { exitCode: 2, code: "dsops.newValueOnArgv" });
      if (o.newValue !== undefined && vars.length > 1) cmd.error("error: --new-value gives one value: rotate one variable with it", { exitCode: 2, code: "dsops.newValueSeveral" });
      const newValue = o.newValue === "-" ? await stdinValue() : undefined;
      const notifyOverride = o.notify === true ? "always" : o.notify === false ? "never" : undefined;
      await withEngine(
        cmd,
        async (engine) => {
          if (notifyOverride === "always" && !engine.notifications)
            throw new DsopsError("--notify: dsops.yaml has no notifications: channel to send to", { hint: "add a notifications: block (slack, email, pagerduty, webhooks), or drop --notify" });
          const outcomes: Outcome[] = [];
          for (const v of vars) outcomes.push(await rotateOne(engine, o, v, waitMs, newValue));
          report(o, outcomes);
        },
        notifyOverride ? { notifyOverride } : {},
      );
    });
}

/** The value piped in, without the one line ending a shell's echo adds. */
async function stdinValue(): Promise<Secret> {
  const { Secret } = require("../../core/secret") as typeof import("../../core/secret");
  let value = await readStdin();
  if (value.endsWith("\n")) value = value.slice(0, -1);
  if (value.endsWith("\r")) value = value.slice(0, -1);
  if (value === "") throw new DsopsError("--new-value -: empty value on standard input", { hint: "pipe the value in: printf %s \"$VALUE\" | dsops secrets rotate … --new-value -" });
  return new Secret(value);
}

async function rotateOne(engine: ComposedRotationEngine, o: RotateFlags, variable: string, waitMs: number, newValue?: Secret): Promise<Outcome> {
  const { RotationInProgressError } = require("../../rotation/errors") as typeof import("../../rotation/errors");
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  let waited = 0;
  for (;;) {
    try {
      const strategy = o.strategy ? (STRATEGY_ALIASES[o.strategy] ?? o.strategy) : undefined;
      if (!o.dryRun) {
        // A stage of a chain that is open (rotated, soaking, rolling back) is rotated by the chain only.
        const { openChainRefusal } = require("../../rotation/chain/run") as typeof import("../../rotation/chain/run");
        const refused = engine.config.raw.chains ? await openChainRefusal(engine, o.env, variable) : undefined;
        if (refused) return { variable, error: refused };
      }
      const approval = o.dryRun ? undefined : await grantedApproval(engine, o.env, variable);
      const result = await rotateAudited(engine, "secrets rotate", o.env, variable, {
        ...(strategy ? { strategy } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
        ...(newValue ? { newValue } : {}),
        ...(o.force ? { force: true } : {}),
      });
      if (approval && (result.record.status === "succeeded" || result.record.status === "grace")) {
        const { markApprovalUsed } = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
        await markApprovalUsed(governanceContext(engine), approval, result.record.id);
      }
      return { variable, result };
    } catch (e) {
      if (!(e instanceof RotationInProgressError) || o.onConflict === "fail") return { variable, error: e };
      if (o.onConflict === "skip") return { variable, skipped: e.message };
      if (waited >= waitMs) {
        const { formatDuration } = require("../../core/duration") as typeof import("../../core/duration");
        return { variable, error: new DsopsError(`${e.message}; still held after waiting ${formatDuration(waited)} (--wait-timeout ${o.waitTimeout})`, { hint: "wait longer with --wait-timeout, or see who holds it: dsops secrets status" }) };
      }
      if (waited === 0) process.stderr.write(`${variable}: ${e.message}; waiting for it (at most ${o.waitTimeout})\n`);
      // Counted in slept time, not in clock readings: a fixed DSOPS_CLOCK still ends the wait.
      const step = Math.min(WAIT_POLL_MS, Math.max(1, waitMs - waited));
      await clock().sleep(step);
      waited += step;
    }
  }
}

/**
 * `rotation.approval`: a rotation by hand runs only under a granted approval request (which it
 * uses up); otherwise it is refused: the way around approval is a break-glass, which is recorded
 * and notified (`dsops breakglass open --rotate`).
 */
async function grantedApproval(engine: ComposedRotationEngine, env: string, variable: string): Promise<import("../../rotation/governance").ApprovalRecord | undefined> {
  const policy = engine.config.envs[env]?.[variable]?.spec.rotation as import("../../rotation/settings").VariableRotation | undefined;
  if (!policy?.approval) return undefined;
  const g = require("../../rotation/governance") as typeof import("../../rotation/governance");
  const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
  const ctx = governanceContext(engine);
  await g.expireApprovals(ctx, env, variable);
  const latest = (await g.listGovernance(engine, { kind: "approval", env, variable }))[0] as import("../../rotation/governance").ApprovalRecord | undefined;
  if (latest?.status === "granted") return latest;
  throw new DsopsError(
    `envs.${env}.${variable}.rotation.approval: this rotation needs approval${latest?.status === "pending" ? ` (request ${latest.id} is pending)` : ""}; it is not rotated by hand without it`,
    { hint: `dsops rotation run --due requests it and dsops rotation approve ID --reason … grants it; in an emergency: dsops breakglass open --secret ${env}/${variable} --reason … --ttl 1h --rotate` },
  );
}

/** One rotation through the composed engine, recorded in the audit log (policies.audit_logging) as `command`, never a value. */
export async function rotateAudited(engine: ComposedRotationEngine, command: "secrets rotate" | "rotation run --due" | "worker", env: string, variable: string, options: RotateOptions): Promise<RotationResult> {
  const { audited } = require("../../guard/policy") as typeof import("../../guard/policy");
  const ref = engine.config.envs[env]?.[variable]?.ref;
  const entry = { name: variable, ...(ref ? { store: ref.store, key: ref.key } : {}) };
  return audited(engine.config, { command, env, variables: [entry], ...(options.dryRun ? { dryRun: true } : {}) }, (note) =>
    engine.rotate(env, variable, options).then((res) => {
      note({ variables: [{ ...entry, ...(res.record.newVersionId ? { versionId: res.record.newVersionId } : {}) }] });
      return res;
    }),
  );
}

function report(o: RotateFlags, outcomes: Outcome[]): void {
  const single = outcomes.length === 1;
  if (o.json) {
    const json = outcomes.map((x) =>
      "result" in x
        ? { ...x.result.record, resumed: x.result.resumed, dryRun: x.result.dryRun, ...(x.result.plan ? { plan: x.result.plan } : {}) }
        : "skipped" in x
          ? { variable: x.variable, skipped: true, reason: x.skipped }
          : { variable: x.variable, error: x.error instanceof Error ? x.error.message : String(x.error) },
    );
    if (!single || "result" in outcomes[0]) process.stdout.write(JSON.stringify(single ? json[0] : json, null, 2) + "\n");
  } else {
    for (const x of outcomes) {
      if ("result" in x) process.stdout.write(resultLine(o.env, x.variable, x.result));
      else if ("skipped" in x) process.stderr.write(`skipped: ${x.variable}: ${x.skipped}\n`);
      else if (!single) printFailure(x.variable, x.error);
    }
    if (!single) {
      const rows = [["VARIABLE", "RESULT", "VERSION", "DETAIL"]];
      for (const x of outcomes)
        rows.push(
          "result" in x
            ? [x.variable, x.result.dryRun ? "dry run" : x.result.record.status, x.result.record.newVersionId ?? "-", x.result.resumed ? "finished an unfinished rotation" : ""]
            : "skipped" in x
              ? [x.variable, "skipped", "-", "another run holds the lock"]
              : [x.variable, "failed", "-", x.error instanceof Error ? x.error.message : String(x.error)],
        );
      process.stdout.write(table(rows));
    }
  }
  const failed = outcomes.filter((x): x is Extract<Outcome, { error: unknown }> => "error" in x);
  if (!failed.length) return;
  // A fault that is not a user error keeps its stack (exit 70); one failure keeps its own message.
  const bug = failed.find((x) => !(x.error instanceof DsopsError));
  if (bug) throw bug.error;
  if (single) throw failed[0].error;
  throw new DsopsError(`${failed.length} of ${outcomes.length} rotations failed: ${failed.map((x) => x.variable).join(", ")}`);
}

function printFailure(variable: string, e: unknown): void {
  if (!(e instanceof DsopsError)) return; // thrown after the summary, with its stack
  process.stderr.write(`error: ${variable}: ${e.message}\n`);
  if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
}

function resultLine(env: string, variable: string, r: RotationResult): string {
  const rec = r.record;
  if (r.dryRun) return `dry run: ${rec.secret} (${env}/${variable}) with ${rec.strategy} at ${rec.service}:\n${(r.plan ?? []).map((s) => `  - ${s}`).join("\n")}\n`;
  const what = r.resumed ? `finished rotation ${rec.id} left unfinished by ${rec.who}` : `rotation ${rec.id}`;
  const tail =
    rec.status === "grace"
      ? `new version ${rec.newVersionId} current; the old credential is revoked after ${rec.retireAfter}`
      : `${rec.status}; version ${rec.newVersionId ?? "-"} current${rec.newPrincipal ? ` (${rec.newPrincipal})` : ""}`;
  return `${rec.secret} (${env}/${variable}): ${what}: ${tail}\n`;
}
