import type { Command } from "commander";
import { loadConfig, printJson, table, warn } from "../util";

/** `dsops plan`: where each variable of an env comes from; no store is called, no value shown. */
export function register(program: Command): void {
  program
    .command("plan")
    .description("show what an env would resolve, from where; no store is called and no value shown")
    .requiredOption("-e, --env <env>", "env name")
    .option("--json", "machine-readable output")
    .action(async (o: { env: string; json?: boolean }, cmd: Command) => {
      const { Resolver } = require("../../engine/resolve") as typeof import("../../engine/resolve");
      // plan answers without credentials: an unset ${VAR} of a store waits for the store's use,
      // and other envs' problems are warnings (the whole file is still checked).
      const config = loadConfig(cmd, { focusEnv: o.env });
      const r = new Resolver(config);
      const plan = r.plan(o.env);
      // What loads but deserves a look (names a shell cannot use, services not rotated yet …), for every env.
      for (const w of config.warnings) warn(w);
      if (o.json) {
        printJson({ env: o.env, variables: plan, warnings: config.warnings });
        return;
      }
      const { showName } = require("../../engine/config/load") as typeof import("../../engine/config/load");
      const rows = [["VARIABLE", "SOURCE", "STORE", "KEY", "TRANSFORMS"]];
      for (const p of plan)
        rows.push([
          showName(p.name) + (p.optional ? " (optional)" : ""),
          p.source,
          p.store ? `${p.store} (${p.storeType})` : "-",
          p.source === "service" ? (p.service as string) : p.key ? `${p.key}${p.field ? `#${p.field}` : ""}${p.version ? `@${p.version}` : ""}` : "-",
          p.transforms.join(" | ") || "-",
        ]);
      let out = table(rows);
      const services = plan.filter((p) => p.source === "service");
      if (services.length) out += `\nSOURCE service: ${services.map((p) => showName(p.name)).join(", ")} ${services[0].note} (a secret needs a store reference in from:)\n`;
      process.stdout.write(out);
    });
}
