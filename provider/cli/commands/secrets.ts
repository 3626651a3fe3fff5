import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { commandGroup, readStdin, withResolver } from "../util";

/** `dsops secrets set` (the rotation module adds `secrets rotate|status|history` to the same group). */
export function register(program: Command): void {
  const secrets = commandGroup(program, "secrets", "write and inspect secrets in writable stores");
  secrets
    .command("set")
    .description("write a new version of a secret; the value is read from standard input")
    .requiredOption("-s, --store <store>", "store name")
    .requiredOption("-k, --key <key>", "key in the store")
    .option("--description <text>", "description kept with the version")
    .action(async (o: { store: string; key: string; description?: string }, cmd: Command) => {
      const { Secret } = require("../../core/secret") as typeof import("../../core/secret");
      const policy = require("../../guard/policy") as typeof import("../../guard/policy");
      await withResolver(cmd, async (r) => policy.audited(r.config, { command: "secrets set", store: o.store, key: o.key }, async () => {
        // Through the store's call policy: throttling and transient failures are retried, and
        // each attempt is bounded by timeout_ms.
        const store = r.guardedStore(o.store);
        if (!store.capabilities.write || !store.put) throw new DsopsError(`store "${o.store}" (${store.type}) is read-only`);
        let value = await readStdin();
        if (value.endsWith("\n")) value = value.slice(0, -1);
        if (value.endsWith("\r")) value = value.slice(0, -1);
        if (value === "") throw new DsopsError("empty value on standard input");
        policy.checkValue(r.config, o.store, o.key, value);
        const info = await store.put(o.key, new Secret(value), o.description ? { description: o.description } : undefined);
        process.stderr.write(`store ${o.store}: ${o.key} → version ${info.versionId}\n`);
      }));
    });
}
