import type { Command } from "commander";
import type { ComposedRotationEngine } from "../../compose/rotation";
import { DsopsError } from "../../core/errors";
import { commandGroup, loadConfig, printJson, table } from "../util";

/**
 * `dsops breakglass open|close|list`: a time-boxed emergency grant on one rotated secret,
 * recorded in its rotation history and sent to every configured channel at once
 * (provider/rotation/governance.ts). `--rotate` rotates it now (emergency: no approval, no
 * window); closing it (by hand, or the first `rotation run --due` after its TTL) rotates it again.
 */

async function withEngine(cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>): Promise<void> {
  const { composeRotation } = require("../../compose/rotation") as typeof import("../../compose/rotation");
  const engine = composeRotation(loadConfig(cmd), { onEvent: (m) => process.stderr.write(`${m}\n`) });
  try {
    await fn(engine);
  } finally {
    await engine.notifications?.settle();
    await engine.close();
  }
}

/** The rotated variable `--secret` names: `ENV/VAR`, or a store:// reference (with --env when several envs rotate it). */
function variableOf(engine: ComposedRotationEngine, secret: string, env?: string): { env: string; variable: string } {
  const slash = secret.indexOf("/");
  if (!secret.startsWith("store://") && slash > 0) {
    const e = secret.slice(0, slash);
    const v = secret.slice(slash + 1);
    if (!engine.config.envs[e]?.[v]?.spec.rotation) throw new DsopsError(`--secret ${secret}: no rotated variable ${v} in env ${e} of dsops.yaml`, { hint: "dsops rotation status lists them" });
    return { env: e, variable: v };
  }
  const hits = engine.rotated(env).filter((x) => {
    const ref = engine.config.envs[x.env][x.variable].ref;
    return ref && `store://${ref.store}/${ref.key}` === secret;
  });
  if (!hits.length) throw new DsopsError(`--secret ${secret}: no rotated variable${env ? ` of env ${env}` : ""} reads this secret`, { hint: "give ENV/VAR, or the store:// reference of a variable with a rotation: block" });
  if (hits.length > 1 && new Set(hits.map((h) => h.env)).size > 1)
    throw new DsopsError(`--secret ${secret}: several envs rotate it (${hits.map((h) => `${h.env}/${h.variable}`).join(", ")}); say which with --env`);
  return hits[0];
}

export function register(program: Command): void {
  const bg = commandGroup(program, "breakglass", "emergency, time-boxed access to a secret: recorded, notified on every channel, rotated when it closes");

  bg.command("open")
    .description("open a break-glass on a rotated secret (recorded, every channel notified); --rotate rotates it now (emergency)")
    .requiredOption("--secret <ref>", "the secret: ENV/VAR, or its store:// reference")
    .requiredOption("--reason <text>", "why (kept in the record and the notifications)")
    .requiredOption("--ttl <duration>", "how long it stays open (e.g. 1h); the first rotation run --due after that rotates the credential")
    .option("-e, --env <env>", "the env, when several envs rotate the same store:// secret")
    .option("--rotate", "rotate the credential now (emergency strategy: no approval asked, no window waited for)")
    .option("--json", "print the record as JSON")
    .action(async (o: { secret: string; reason: string; ttl: string; env?: string; rotate?: boolean; json?: boolean }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const { openBreakGlass } = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const { osIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
        const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
        const { parseDuration } = require("../../core/duration") as typeof import("../../core/duration");
        parseDuration(o.ttl, "--ttl");
        const v = variableOf(engine, o.secret, o.env);
        const { record, rotation } = await openBreakGlass(governanceContext(engine), { ...v, reason: o.reason, ttl: o.ttl, by: osIdentity(), rotate: o.rotate === true });
        if (o.json) return printJson(record);
        process.stdout.write(
          `break-glass ${record.id} open on ${record.secret} (${record.env}/${record.variable}) until ${record.expiresAt}` +
            (rotation ? `; emergency rotation ${rotation.record.id} ${rotation.record.status}${rotation.record.newVersionId ? ` (version ${rotation.record.newVersionId})` : ""}` : "") +
            `\nthe credential is rotated when it closes: dsops breakglass close ${record.id}, or the first dsops rotation run --due after ${record.expiresAt}\n`,
        );
      });
    });

  bg.command("close <id>")
    .description("close an open break-glass: its credential is rotated now (forced), then the grant is recorded closed")
    .option("--json", "print the record as JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const g = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const { osIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
        const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
        const ctx = governanceContext(engine);
        const rec = await g.closeBreakGlass(ctx, await g.findBreakGlass(ctx, id), "manual", osIdentity());
        if (o.json) return printJson(rec);
        process.stdout.write(`break-glass ${rec.id} closed; ${rec.secret} (${rec.env}/${rec.variable}) rotated: rotation ${rec.forcedRotationId} ${rec.forcedRotationStatus}\n`);
      });
    });

  bg.command("list")
    .description("break-glass grants, newest first (open and closed)")
    .option("-e, --env <env>", "only this env")
    .option("--open", "only the open ones")
    .option("--json", "machine-readable output")
    .action(async (o: { env?: string; open?: boolean; json?: boolean }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const { listGovernance } = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const all = (await listGovernance(engine, { kind: "breakglass", ...(o.env ? { env: o.env } : {}) })) as import("../../rotation/governance").BreakGlassRecord[];
        const rows = o.open ? all.filter((r) => r.status === "open") : all;
        if (o.json) return printJson(rows);
        if (!rows.length) return void process.stdout.write("no break-glass\n");
        const t = [["ID", "ENV", "VARIABLE", "STATUS", "OPENED BY", "OPENED", "EXPIRES", "REASON", "ROTATION", "READS"]];
        for (const r of rows)
          t.push([r.id, r.env, r.variable, r.status + (r.closeError ? ` (close failed: ${r.closeError})` : ""), r.openedBy, r.startedAt, r.expiresAt, r.reason, r.forcedRotationId ?? r.emergencyRotationId ?? "-", String(r.reads?.length ?? 0)]);
        process.stdout.write(table(t));
      });
    });
}
