import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { warnUnfinishedRotations, withResolver, writeOut } from "../util";

/** `dsops get`: one variable's value on stdout (the only command that prints a secret). */
export function register(program: Command): void {
  program
    .command("get")
    .description("print one variable's value (the only command that prints a secret)")
    .requiredOption("-e, --env <env>", "env name")
    .requiredOption("--var <name>", "variable name")
    .option("--json", "print {name, value, store, key, versionId}")
    .action(async (o: { env: string; var: string; json?: boolean }, cmd: Command) => {
      await withResolver(cmd, async (r) => {
        const { audited } = require("../../guard/policy") as typeof import("../../guard/policy");
        const v = await audited(r.config, { command: "get", env: o.env, variables: [{ name: o.var }] }, async (note) => {
          const { sealedOfEnv, withSealedReads } = require("../../compose/sealed-reads") as typeof import("../../compose/sealed-reads");
          // A sealed value (access: breakglass) is read only under an open break-glass grant, and the read is recorded on it.
          const res = await withSealedReads(r.config, sealedOfEnv(r.config, o.env, [o.var]), "dsops get", () => r.resolveEnv(o.env, [o.var]));
          const got = res.variables[o.var];
          if (!got) throw new DsopsError(`${o.var} is optional and could not be resolved`);
          note({ variables: [{ name: got.name, store: got.store, key: got.key, versionId: got.versionId }] });
          return got;
        });
        await warnUnfinishedRotations(cmd, r, o.env, [o.var]);
        if (o.json) {
          const { value, ...meta } = v;
          writeOut(JSON.stringify({ ...meta, value: value.reveal() }) + "\n");
        } else writeOut(v.value.reveal() + "\n");
      });
    });
}
