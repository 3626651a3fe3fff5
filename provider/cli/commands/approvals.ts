import type { Command } from "commander";
import type { ComposedRotationEngine } from "../../compose/rotation";
import { DsopsError } from "../../core/errors";
import { printJson, table } from "../util";

/**
 * `dsops rotation approve|deny ID --reason …`, `dsops rotation approvals`, `dsops rotation
 * approval-token`: the approval requests of policies with `rotation.approval`
 * (provider/rotation/governance.ts). The approver's identity comes from the policy's
 * `approval.identity` (OS user, git email, signed token); the requester may not decide.
 */

type WithEngine = (cmd: Command, fn: (e: ComposedRotationEngine) => Promise<void>) => Promise<void>;

export function registerApprovals(rotation: Command, withEngine: WithEngine): void {
  for (const [name, decision] of [
    ["approve", "granted"],
    ["deny", "denied"],
  ] as const)
    rotation
      .command(`${name} <id>`)
      .description(name === "approve" ? "grant a pending approval request (the requester may not)" : "deny a pending approval request: the rotation does not run")
      .requiredOption("--reason <text>", "why (kept in the record and the notifications)")
      .option("--token <token>", "identity token: the signed approval token (or DSOPS_APPROVAL_TOKEN)")
      .option("--database-url <url>", "also the requests of RotationPolicy resources registered with a scheduler (dsops:scheduler): its PostgreSQL, a postgresql:// URL or a store:// reference holding one")
      .option("--json", "print the request as JSON")
      .action(async (id: string, o: { reason: string; token?: string; json?: boolean; databaseUrl?: string }, cmd: Command) => {
        await withEngine(cmd, async (engine) => {
          const g = require("../../rotation/governance") as typeof import("../../rotation/governance");
          const { approverIdentity } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
          const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
          const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
          const sched = o.databaseUrl ? schedulerHistory(engine, o.databaseUrl) : undefined;
          const base = governanceContext(engine);
          const ctx = { ...base, extraHistories: [...(base.extraHistories ?? []), ...(sched ? [sched] : [])] };
          try {
            const req = await g.findApproval(ctx, id);
            const who = await approverIdentity({ identity: req.identity, ...(req.tokenKey ? { token_key: req.tokenKey } : {}), required: req.required, expires: "24h" }, req.policyPath, {
              cwd: engine.config.dir,
              nowMs: ctx.clock.now(),
              ...(o.token ? { token: o.token } : {}),
              resolveKey: async (ref) => (await engine.resolver.resolveRef(parseStoreUri(ref))).value.reveal(),
            });
            const a = await g.decideApproval(ctx, id, who, decision, o.reason);
            if (o.json) printJson(a);
            else
              process.stdout.write(
                `${a.id} (${a.env}/${a.variable}): ${decision} by ${who.id}; status ${a.status}` +
                  (a.status === "pending" ? ` (${a.decisions.filter((d) => d.decision === "granted").length} of ${a.required} granted)` : a.status === "granted" ? "; the next dsops rotation run --due rotates it" : "") +
                  "\n",
              );
          } finally {
            await engine.notifications?.settle();
            await sched?.close();
          }
        });
      });

  rotation
    .command("approvals")
    .description("approval requests of policies with rotation.approval (pending, granted, denied, expired, used), newest first")
    .option("-e, --env <env>", "only this env")
    .option("--var <name>", "only this variable")
    .option("--status <status>", "only requests with this status")
    .option("--database-url <url>", "also the requests of RotationPolicy resources registered with a scheduler (dsops:scheduler): a postgresql:// URL or a store:// reference holding one")
    .option("--json", "machine-readable output")
    .action(async (o: { env?: string; var?: string; status?: string; json?: boolean; databaseUrl?: string }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const g = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
        const sched = o.databaseUrl ? schedulerHistory(engine, o.databaseUrl) : undefined;
        const base = governanceContext(engine);
        const ctx = { ...base, extraHistories: [...(base.extraHistories ?? []), ...(sched ? [sched] : [])] };
        try {
          await g.expireApprovals(ctx, o.env, o.var);
          const list = (await g.listGovernance(engine, { kind: "approval", ...(o.env ? { env: o.env } : {}), ...(o.var ? { variable: o.var } : {}) }, ctx.extraHistories)) as import("../../rotation/governance").ApprovalRecord[];
          const rows = o.status ? list.filter((a) => a.status === o.status) : list;
          if (o.json) return printJson(rows);
          if (!rows.length) return void process.stdout.write("no approval requests\n");
          const t = [["ID", "ENV", "VARIABLE", "STATUS", "REQUESTED BY", "EXPIRES", "DECISIONS"]];
          for (const a of rows) t.push([a.id, a.env, a.variable, a.status, a.requestedBy, a.expiresAt, a.decisions.map((d) => `${d.decision} by ${d.by}: ${d.reason}`).join("; ") || "-"]);
          process.stdout.write(table(t));
        } finally {
          await engine.notifications?.settle();
          await sched?.close();
        }
      });
    });

  rotation
    .command("approval-token")
    .description("mint a signed approval token (rotation.approval.identity token) for an approver, with the key token_key names")
    .requiredOption("-e, --env <env>", "env of the policy whose token_key signs it")
    .requiredOption("--var <name>", "variable of the policy")
    .requiredOption("--as <who>", "the approver the token names")
    .option("--ttl <duration>", "how long the token is valid", "1h")
    .action(async (o: { env: string; var: string; as: string; ttl: string }, cmd: Command) => {
      await withEngine(cmd, async (engine) => {
        const g = require("../../rotation/governance") as typeof import("../../rotation/governance");
        const { mintApprovalToken, tokenKey } = require("../../rotation/approval-identity") as typeof import("../../rotation/approval-identity");
        const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
        const { parseDuration } = require("../../core/duration") as typeof import("../../core/duration");
        const { clock } = require("../../core/clock") as typeof import("../../core/clock");
        const s = g.governedSubject(engine, o.env, o.var);
        if (!s.policy.approval) throw new DsopsError(`${s.path}.approval is not set: this rotation needs no approval`);
        if (s.policy.approval.identity !== "token") throw new DsopsError(`${s.path}.approval.identity is ${s.policy.approval.identity}, not token: approvers need no token`);
        const key = await tokenKey(s.policy.approval, `${s.path}.approval`, async (ref) => (await engine.resolver.resolveRef(parseStoreUri(ref))).value.reveal());
        process.stdout.write(mintApprovalToken(key, o.as, clock().now() + parseDuration(o.ttl, "--ttl")) + "\n");
      });
    });
}

/** The rotation history of RotationPolicy resources registered with a scheduler, in its database (`--database-url`: a URL or a store:// reference; never printed). */
function schedulerHistory(engine: ComposedRotationEngine, raw: string): import("../../rotation/history/types").HistoryBackend {
  const { policyHistory } = require("../../compose/registered-policies") as typeof import("../../compose/registered-policies");
  const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
  return policyHistory(async () => (raw.startsWith("store://") ? (await engine.resolver.resolveRef(parseStoreUri(raw))).value.reveal().trim() : raw));
}
