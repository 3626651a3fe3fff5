import type { Command } from "commander";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { ChainRecord, ChainResult } from "../../rotation/chain/run";
import { InvalidArgumentError } from "commander";
import { DsopsError } from "../../core/errors";
import { printJson, table } from "../util";

/**
 * `dsops rotation chain NAME`: run (start, or go on with) a multi-environment rotation of
 * `chains:` (provider/rotation/chain): stage by stage, each soaking before the next. Without
 * `--wait` a soaking stage gets one round of health checks and the command returns (exit 0,
 * `soaking until …`): run it again (cron, `rotation run --due`, the worker do) to go on. A chain
 * that failed was rolled back: exit 1 with the stage that failed and each stage's outcome.
 * `--status` shows the last record and changes nothing. `--abort` stops an open chain on purpose
 * and rolls back its rotated stages (exit 0; exit 1 when the chain is not open, or a stage could
 * not be rolled back).
 */

type WithEngine = (cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>) => Promise<void>;

export function registerChain(rotation: Command, withEngine: WithEngine): void {
  rotation
    .command("chain")
    .description("rotate a variable env by env (chains: in dsops.yaml): each stage soaks with its health checks before the next; a failure rolls back the stages already rotated")
    .argument("<name>", "the chain (a key of chains:)")
    .option("--wait", "watch a soaking stage's health checks until its soak has passed and go on (default: check once and return; run again to go on)")
    .option("--status", "show the chain's last record; change nothing")
    .option("--abort", "stop the open chain on purpose: skip its later stages and roll back the stages already rotated (newest first); the record ends aborted")
    .option("--reason <text>", "why (kept in the records; with --abort, in the rollback records and the notification too)")
    .option("--json", "print the chain record as JSON")
    .action(async (name: string, o: { wait?: boolean; status?: boolean; abort?: boolean; reason?: string; json?: boolean }, cmd: Command) => {
      const chain = require("../../rotation/chain/run") as typeof import("../../rotation/chain/run");
      if (o.abort && (o.status || o.wait)) throw new InvalidArgumentError(`--abort cannot be combined with ${o.status ? "--status" : "--wait"}`);
      await withEngine(cmd, async (engine) => {
        if (o.abort) {
          let rec: ChainRecord;
          try {
            rec = await chain.abortChain(engine, name, o.reason ? { reason: o.reason } : {});
          } catch (e) {
            if (o.json && e instanceof DsopsError) {
              const [last] = await chain.chainRecords(engine, name, 1).catch(() => []);
              if (last) printJson(last);
            }
            throw e;
          }
          if (o.json) return void printJson(rec);
          process.stdout.write(describe(rec));
          process.stdout.write(`chain ${name}: aborted; every stage it rotated has its old credential back\n`);
          return;
        }
        if (o.status) {
          const [last] = await chain.chainRecords(engine, name, 1);
          if (o.json) return void printJson(last ?? null);
          if (!last) return void process.stdout.write(`chain ${name}: never run\n`);
          return void process.stdout.write(describe(last));
        }
        let res: ChainResult;
        try {
          res = await chain.runChain(engine, name, { ...(o.wait ? { wait: true } : {}), ...(o.reason ? { reason: o.reason } : {}) });
        } catch (e) {
          if (o.json && e instanceof DsopsError) {
            const [last] = await chain.chainRecords(engine, name, 1).catch(() => []);
            if (last) printJson(last);
          }
          throw e;
        }
        if (o.json) return void printJson({ ...res.record, state: res.state, resumed: res.resumed, ...(res.next ? { next: res.next } : {}) });
        process.stdout.write(describe(res.record));
        process.stdout.write(res.state === "soaking" ? `chain ${name}: soaking until ${res.next}; run again to go on\n` : `chain ${name}: succeeded\n`);
      });
    });
}

/** A chain record as a table of its stages (never a value: records hold none). */
export function describe(rec: ChainRecord): string {
  const rows = [["STAGE", "STATUS", "ROTATION", "SOAK UNTIL", "ROLLBACK", "ERROR"]];
  for (const s of rec.chain.stages) rows.push([s.env, s.status, s.rotationId ?? "-", s.soakUntil ?? "-", s.rollbackId ?? "-", s.error ?? ""]);
  const ab = rec.chain.aborted;
  const aborted = ab ? `; aborted by ${ab.by} at ${ab.at}${ab.reason ? `: ${ab.reason}` : ""}` : "";
  return `chain ${rec.chain.name}: ${rec.id} ${rec.status} (started ${rec.startedAt} by ${rec.who}${rec.resumedBy?.length ? `; resumed by ${rec.resumedBy.join(", ")}` : ""}${aborted})\n${table(rows)}`;
}
