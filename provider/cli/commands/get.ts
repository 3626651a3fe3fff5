import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { warnUnfinishedRotations, withResolver } from "../util";

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
        const res = await r.resolveEnv(o.env, [o.var]);
        const v = res.variables[o.var];
        if (!v) throw new DsopsError(`${o.var} is optional and could not be resolved`);
        await warnUnfinishedRotations(cmd, r, o.env, [o.var]);
        if (o.json) {
          const { value, ...meta } = v;
          process.stdout.write(JSON.stringify({ ...meta, value: value.reveal() }) + "\n");
        } else process.stdout.write(v.value.reveal() + "\n");
      });
    });
}
