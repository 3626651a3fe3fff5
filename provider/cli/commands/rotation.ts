import type { Command } from "commander";
import type { ComposedRotationEngine, ComposedRotationOptions } from "../../compose/rotation";
import { commandGroup, loadConfig } from "../util";
import { registerRotate } from "./rotate";
import { registerViews } from "./rotation-views";
import { registerRun } from "./rotation-run";
import { registerChain } from "./rotation-chain";
import { registerApprovals } from "./approvals";
import { registerQueue } from "./worker-queue";

/**
 * `dsops secrets rotate|status|history`, `dsops rotation status|history|rollback`. Thin: every command
 * calls the RotationEngine and prints what it returns (never a value).
 */
export function register(program: Command): void {
  const secrets = commandGroup(program, "secrets", "write and inspect secrets in writable stores");

  registerRotate(secrets, withEngine);
  registerViews(secrets, withEngine);

  const rotation = commandGroup(program, "rotation", "rotation operations");
  // dsops spells the views `rotation status|history`: the same commands, the same flags.
  registerViews(rotation, withEngine);
  registerRun(rotation, withEngine);
  registerChain(rotation, withEngine);
  registerApprovals(rotation, withEngine);
  registerQueue(rotation);
  rotation
    .command("rollback")
    .description("put back the previous (or a named) version of a service's secrets: applied at the target, verified, made current")
    .requiredOption("--service <service>", "service (rotation target) name")
    .requiredOption("-e, --env <env>", "env name")
    .requiredOption("--reason <text>", "why (kept in the record)")
    .option("--version <id>", "version id to go back to (default: the previous version)")
    // The root program's -V/--version takes `--version` wherever it appears unless the program
    // uses positional options; `--to-version` always reaches this command.
    .option("--to-version <id>", "same as --version")
    .option("--var <name>", "only this variable")
    .option("--dry-run", "show what would be rolled back and how; change nothing (no lock, no record, the target untouched)")
    .option("--force", "accepted for dsops users: this command never asks for confirmation (the --reason is the deliberate act), so --force changes nothing")
    .option("--json", "print the records (or, with --dry-run, the plans) as JSON")
    .action(async (o: { service: string; env: string; reason: string; version?: string; toVersion?: string; var?: string; dryRun?: boolean; force?: boolean; json?: boolean }, cmd: Command) => {
      const version = o.toVersion ?? o.version;
      await withEngine(cmd, async (engine) => {
        if (o.dryRun) {
          const plans = await engine.planRollback(o.env, o.service, { reason: o.reason, ...(version ? { version } : {}) }, o.var);
          if (o.json) return void process.stdout.write(JSON.stringify(plans, null, 2) + "\n");
          for (const p of plans)
            process.stdout.write(
              `dry run: ${p.secret} (${p.env}/${p.variable}) would go back from version ${p.fromVersion ?? "-"} to ${p.toVersion}${p.toPrincipal ? ` (${p.toPrincipal})` : ""}:\n` +
                [...p.steps.map((s) => `  - ${s}`), ...p.notes.map((n) => `  note: ${n}`)].join("\n") +
                "\n",
            );
          return;
        }
        const recs = await engine.rollback(o.env, o.service, { reason: o.reason, ...(version ? { version } : {}) }, o.var);
        if (o.json) return void process.stdout.write(JSON.stringify(recs, null, 2) + "\n");
        for (const r of recs) process.stdout.write(`${r.secret} (${r.env}/${r.variable}): rolled back to version ${r.newVersionId}${r.newPrincipal ? ` (${r.newPrincipal})` : ""}; rollback ${r.id} ${r.status}\n`);
      });
    });
}

async function withEngine(cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>, opts: Pick<ComposedRotationOptions, "notifyOverride"> = {}): Promise<void> {
  const { composeRotation } = require("../../compose/rotation") as typeof import("../../compose/rotation");
  const engine = composeRotation(loadConfig(cmd), { ...opts, onEvent: (m) => process.stderr.write(`${m}\n`) });
  try {
    await fn(engine);
  } finally {
    await engine.close();
  }
}
