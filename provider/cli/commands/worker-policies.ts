import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { Config } from "../../compose/config";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { RegisteredPolicy } from "../../compose/registered-policies";
import type { HistoryBackend } from "../../rotation/history/types";
import type { RotationDecision } from "../../rotation/due";
import { DsopsError } from "../../core/errors";

/**
 * The RotationPolicy definitions registered in the worker's database (dsops:scheduler of a
 * Pulumi stack), for `dsops worker`: the scheduler makes each policy's due decision (the one the
 * policy makes at plan time) and queues the due ones under `policy:<id>@<due instant>`; a worker
 * rotates a policy job through rotation-run's rotateIfDue on the policy's composed configuration, its
 * records and locks in the same database (Pulumi's preview and refresh read them there). A
 * policy whose definition this worker cannot use (an unknown store type, an unset ${VAR}) is
 * reported as blocked; the others go on.
 */

export interface PolicyEvaluation {
  id: string;
  decision?: RotationDecision;
  error?: DsopsError;
}

export class RegisteredPolicies {
  private readonly history: HistoryBackend;
  private readonly engines = new Map<string, { updatedAt: string; engine: ComposedRotationEngine }>();

  constructor(
    private readonly url: string,
    private readonly onEvent: (m: string) => void,
  ) {
    const { policyHistory } = require("../../compose/registered-policies") as typeof import("../../compose/registered-policies");
    this.history = policyHistory(async () => url);
  }

  private registry(): typeof import("../../compose/registered-policies") {
    return require("../../compose/registered-policies") as typeof import("../../compose/registered-policies");
  }

  /** The policy's engine, built again when its registration changed. */
  private engineOf(p: RegisteredPolicy): ComposedRotationEngine {
    const known = this.engines.get(p.id);
    if (known && known.updatedAt === p.updatedAt) return known.engine;
    if (known) void known.engine.close().catch(() => undefined);
    const engine = this.registry().policyEngine(p, this.history, { onEvent: this.onEvent });
    this.engines.set(p.id, { updatedAt: p.updatedAt, engine });
    return engine;
  }

  /** Every registered policy's due decision; one that cannot be decided carries its error. */
  async evaluate(): Promise<PolicyEvaluation[]> {
    const out: PolicyEvaluation[] = [];
    const all = await this.registry().listPolicies(this.url);
    // Registrations that wait for each other (`after` in a cycle, e.g. rows written by hand or
    // before cycles were refused): blocked, the cycle named, instead of waiting for ever.
    const rows = all.map((p) => ({ id: p.id, secret: p.definition.secret, pred: p.definition.after?.policy ?? null }));
    for (const p of all) {
      const cycle = this.registry().afterCycleOf(rows, p.id, "after");
      if (cycle) {
        out.push({ id: p.id, decision: { state: "blocked", reason: cycle.message } });
        continue;
      }
      try {
        out.push({ id: p.id, decision: await this.registry().policyDecision(this.engineOf(p), p.definition) });
      } catch (e) {
        if (!(e instanceof DsopsError)) throw e;
        out.push({ id: p.id, error: e });
      }
    }
    return out;
  }

  /** The engine of a registered policy, on its current definition (rotate it with `rotateRegistered` of rotation-run). */
  async engineFor(id: string): Promise<ComposedRotationEngine> {
    const p = (await this.registry().listPolicies(this.url)).find((x) => x.id === id);
    if (!p) throw new DsopsError(`policy ${id}: no longer registered (its RotationPolicy was deleted)`, { hint: "nothing to rotate" });
    return this.engineOf(p);
  }

  async close(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.engine.close().catch(() => undefined)));
    this.engines.clear();
    await this.history.close().catch(() => undefined);
  }
}

/**
 * The worker's dsops.yaml. Without one (and no `--config`/DSOPS_CONFIG naming it), the worker
 * serves the registered policies only: an empty configuration, said on stderr. A store:// database
 * URL or `--env` needs the file.
 */
export function workerConfig(cmd: Command, databaseUrl: string, env?: string): Config {
  const { configPath, loadConfig } = require("../util") as typeof import("../util");
  const path = configPath(cmd);
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const named = root.getOptionValueSource("config") === "cli" || process.env.DSOPS_CONFIG !== undefined;
  if (named || existsSync(path)) return loadConfig(cmd);
  if (databaseUrl.startsWith("store://"))
    throw new DsopsError(`--database-url ${databaseUrl}: a store:// reference is read through dsops.yaml, and there is none at ${resolve(path)}`, {
      hint: "give a postgresql:// URL (DSOPS_WORKER_DATABASE_URL keeps it out of the command line), or --config <dsops.yaml>",
    });
  if (env) throw new DsopsError(`--env ${env}: there is no dsops.yaml at ${resolve(path)}`, { hint: "give --config <dsops.yaml>, or leave out --env to serve the registered RotationPolicy definitions" });
  process.stderr.write(`worker: no dsops.yaml at ${resolve(path)}: serving the RotationPolicy definitions registered in the database (dsops_worker.policies) only\n`);
  const { configFromObject } = require("../../compose/config") as typeof import("../../compose/config");
  return configFromObject({}, { dir: process.cwd(), label: "no dsops.yaml" });
}
