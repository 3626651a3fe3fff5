import type { Command } from "commander";
import { storeTypeInfo } from "../capabilities";
import { printJson, table } from "../util";

/** `dsops providers`: every store type and what it can do (no store is created, no SDK loaded). */
export function register(program: Command): void {
  program
    .command("providers")
    .description("list every store type with its capabilities, and the types not supported yet")
    .option("--json", "machine-readable output")
    .action((o: { json?: boolean }) => {
      const { plannedStoreTypes, storeTypes } = require("../../stores/settings") as typeof import("../../stores/settings");
      const stores = storeTypes.map((type) => ({ type, supported: true, ...storeTypeInfo[type] }));
      const planned = plannedStoreTypes.map((type) => ({ type, supported: false }));
      const targets = rotationTargetTypes();
      if (o.json) {
        printJson({ stores, planned, targets: targets.supported.map((type) => ({ type, supported: true })), plannedTargets: targets.planned.map((type) => ({ type, supported: false })) });
        return;
      }
      const yn = (b: boolean) => (b ? "yes" : "no");
      const rows = [["TYPE", "WRITE", "VERSIONS", "BATCH", "BINARY", "STAGING", "DOCTOR", "DESCRIPTION"]];
      for (const s of stores)
        rows.push([
          s.type,
          yn(s.capabilities.write),
          yn(s.capabilities.versions) + (s.note ? "*" : ""),
          s.capabilities.batch ? String(s.capabilities.batch) : "-",
          yn(s.capabilities.binary),
          yn(s.capabilities.staging),
          s.check ? "check" : "-",
          s.description,
        ]);
      let out = table(rows);
      for (const s of stores) if (s.note) out += `* ${s.type}: ${s.note}\n`;
      out += "STAGING: the store keeps rotation stages (pending/current/previous), which rotation needs.\n";
      out += `\nStore types not supported yet: ${planned.map((p) => p.type).join(", ")}\n`;
      out += targets.supported.length
        ? `\nRotation targets (services:): ${targets.supported.join(", ")}\nRotation targets not supported yet: ${targets.planned.join(", ") || "-"}\n`
        : `\nRotation targets: none yet (they come with the rotation engine)\n`;
      process.stdout.write(out);
    });
}

/**
 * Rotation target types, read from the rotation engine's target list when it is installed
 * (`provider/rotation/targets/types`, a module without dependencies); none otherwise.
 */
function rotationTargetTypes(): { supported: string[]; planned: string[] } {
  let path: string;
  try {
    path = require.resolve("../../rotation/targets/types");
  } catch {
    return { supported: [], planned: [] };
  }
  const m = require(path) as { targetTypes?: readonly string[]; plannedTargetTypes?: readonly string[] };
  return { supported: [...(m.targetTypes ?? [])], planned: [...(m.plannedTargetTypes ?? [])] };
}
