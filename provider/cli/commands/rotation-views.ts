import { InvalidArgumentError, Option, type Command } from "commander";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { SecretStatus } from "../../rotation/engine/api";
import type { RotationRecord, RotationStatus } from "../../rotation/types";
import { DsopsError } from "../../core/errors";
import { printJson, table } from "../util";

/**
 * The read-only rotation views: `status` and `history`, registered under `secrets` (our
 * spelling) and under `rotation` (dsops's), with the same flags in both places: `--since`,
 * `--until` (a duration back from now, such as 7d, or an ISO-8601 date or instant), `--status`
 * and `--format json|yaml|table` (`--json` = `--format json`).
 */

type WithEngine = (cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>) => Promise<void>;

/** Statuses a record can have (the Record keeps the list exhaustive). */
const RECORD_STATUSES = Object.keys({ running: 1, grace: 1, succeeded: 1, "rolled-back": 1, failed: 1, aborted: 1 } satisfies Record<RotationStatus, 1>);
/** A variable's last rotation is never `aborted` (only a chain record is): `status --status` lists the others. */
const VARIABLE_STATUSES = RECORD_STATUSES.filter((s) => s !== "aborted");
const FORMATS = ["json", "yaml", "table"] as const;
type Format = (typeof FORMATS)[number];

interface ViewOptions {
  env?: string;
  since?: number;
  until?: number;
  status?: string[];
  format?: Format;
  json?: boolean;
}

/** `7d` back from the clock's now, or an ISO-8601 date (`2026-11-01`) or instant. */
function parseWhen(flag: string): (text: string) => number {
  return (text) => {
    const { tryParseDuration } = require("../../core/duration") as typeof import("../../core/duration");
    const { clock } = require("../../core/clock") as typeof import("../../core/clock");
    const ms = tryParseDuration(text);
    if (ms !== undefined) return clock().now() - ms;
    if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
      const t = Date.parse(text);
      if (!Number.isNaN(t)) return t;
    }
    throw new InvalidArgumentError(`${flag} "${text}": expected a duration back from now (7d, 12h, 30m) or an ISO-8601 date or instant (2026-11-01, 2026-11-01T12:00:00Z)`);
  };
}

function parseStatuses(allowed: readonly string[]): (text: string, prev?: string[]) => string[] {
  return (text, prev = []) => {
    const out = [...prev];
    for (const s of text.split(",").map((x) => x.trim()).filter(Boolean)) {
      if (!allowed.includes(s)) throw new InvalidArgumentError(`--status "${s}": expected one of ${allowed.join(", ")} (repeat the flag or separate with commas)`);
      out.push(s);
    }
    return out;
  };
}

function addViewOptions(c: Command, statuses: readonly string[]): Command {
  return c
    .option("-e, --env <env>", "only this env")
    .option("--since <when>", "only rotations started at or after: a duration back from now (7d) or an ISO date/instant", parseWhen("--since"))
    .option("--until <when>", "only rotations started at or before: a duration back from now (1d) or an ISO date/instant", parseWhen("--until"))
    .option("--status <status>", `only these statuses (${statuses.join(", ")}); repeatable or comma-separated`, parseStatuses(statuses))
    .addOption(new Option("--format <format>", "output format").choices(FORMATS))
    .option("--json", "same as --format json");
}

function formatOf(o: ViewOptions): Format {
  if (o.json && o.format && o.format !== "json") throw new DsopsError(`--json and --format ${o.format} disagree`, { hint: "give one of them" });
  return o.json ? "json" : (o.format ?? "table");
}

function inRange(at: string | undefined, o: ViewOptions): boolean {
  if (o.since === undefined && o.until === undefined) return true;
  if (!at) return false;
  const t = Date.parse(at);
  return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
}

function printData(format: Format, data: unknown): boolean {
  if (format === "json") {
    printJson(data);
    return true;
  }
  if (format === "yaml") {
    const { stringify } = require("yaml") as typeof import("yaml");
    process.stdout.write(stringify(data));
    return true;
  }
  return false;
}

/** Add `status` and `history` to `group` (`secrets` or `rotation`). */
export function registerViews(group: Command, withEngine: WithEngine): void {
  addViewOptions(
    group.command("status").description("rotation state of each rotated variable: versions, last rotation, lock holder"),
    [...VARIABLE_STATUSES, "never"],
  ).action(async (o: ViewOptions, cmd: Command) => {
    const format = formatOf(o);
    await withEngine(cmd, async (engine) => {
      const st = (await engine.status(o.env)).filter((s) => statusMatches(s, o));
      if (printData(format, st)) return;
      if (!st.length) {
        process.stdout.write(o.since !== undefined || o.until !== undefined || o.status ? "no rotated variable matches\n" : "no variable has a rotation block\n");
        return;
      }
      const rows = [["ENV", "VARIABLE", "SERVICE", "STRATEGY", "CURRENT", "PREVIOUS", "PENDING", "LAST ROTATION", "LOCK"]];
      for (const s of st)
        rows.push([
          s.env,
          s.variable,
          s.service,
          s.strategy,
          s.currentVersion ?? "-",
          s.previousVersion ?? "-",
          s.pendingVersion ?? "-",
          s.problem ? `error: ${s.problem}` : s.last ? `${s.last.status} ${s.last.finishedAt ?? s.last.startedAt}${s.last.retireAfter && s.last.status === "grace" ? ` (retire after ${s.last.retireAfter})` : ""}` : "never",
          s.lockedBy
            ? `${s.lockedBy.who} pid ${s.lockedBy.pid}${s.lockHolderDead ? ` (dead: rotation ${s.lockedBy.rotationId ?? "-"} unfinished; run dsops secrets rotate --env ${s.env} --var ${s.variable})` : ""}`
            : "-",
        ]);
      process.stdout.write(table(rows));
    });
  });

  addViewOptions(group.command("history").description("rotation records, newest first (who, when, strategy, steps, versions; never values)"), RECORD_STATUSES)
    .option("--var <name>", "only this variable")
    .option("--service <service>", "only this service")
    .option("-n, --limit <n>", "at most this many", "50")
    .action(async (o: ViewOptions & { var?: string; service?: string; limit: string }, cmd: Command) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new DsopsError(`--limit ${o.limit}: expected a positive whole number`);
      const format = formatOf(o);
      await withEngine(cmd, async (engine) => {
        const all = await engine.history({ ...(o.env ? { env: o.env } : {}), ...(o.var ? { variable: o.var } : {}), ...(o.service ? { service: o.service } : {}) });
        const recs = all.filter((r) => inRange(r.startedAt, o) && (!o.status || o.status.includes(r.status))).slice(0, limit);
        if (printData(format, recs)) return;
        if (!recs.length) {
          process.stdout.write(all.length ? "no rotation record matches\n" : "no rotations recorded\n");
          return;
        }
        const rows = [["ID", "STARTED", "ENV/VARIABLE", "SERVICE", "STRATEGY", "WHO", "STATUS", "VERSIONS", "STEPS"]];
        for (const r of recs)
          rows.push([r.id, r.startedAt, `${r.env}/${r.variable}`, r.service, r.strategy, r.who, r.status + (r.error ? ` (${r.error})` : ""), `${r.oldVersionId ?? "-"}→${r.newVersionId ?? "-"}`, stepsLine(r)]);
        process.stdout.write(table(rows));
      });
    });
}

/** A status row matches when its last rotation's status and start time match (a variable never rotated is `never`, and has no time). */
function statusMatches(s: SecretStatus, o: ViewOptions): boolean {
  if (o.status && !o.status.includes(s.last?.status ?? "never")) return false;
  return inRange(s.last?.startedAt, o);
}

function stepsLine(r: RotationRecord): string {
  // A multi-environment chain (provider/rotation/chain): its stages instead of steps.
  const chain = (r as { chain?: { stages?: Array<{ env: string; status: string }> } }).chain;
  if (r.kind === "chain" && chain?.stages) return chain.stages.map((s) => `${s.env}:${s.status}`).join(",");
  return r.steps.map((s) => `${s.name}:${s.outcome ?? "started"}`).join(",");
}
