import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import type { HistoryBackend } from "../rotation/history/types";
import type { GovernanceContext, GovernanceEngine } from "../rotation/governance";
import type { NotifyPort } from "../rotation/ports";

/**
 * What the approval and break-glass functions use of a rotation engine: it, the project clock,
 * every configured channel (a composed engine's hub), and the default history of each file
 * store (where RotationPolicy resources of a stack using this dsops.yaml keep their records).
 * Every face builds it here: the CLI, the sealed-read gate, the Pulumi compliance report.
 */
export function governanceContext(engine: GovernanceEngine & { readonly notifications?: NotifyPort }): GovernanceContext {
  const { clock } = require("../core/clock") as typeof import("../core/clock");
  const hub = engine.notifications;
  return { engine, clock: clock(), ...(hub ? { notify: hub } : {}), extraHistories: fileStoreHistories(engine) };
}

/** The default history next to each file store of the engine's configuration (deduplicated by path). */
export function fileStoreHistories(engine: Pick<GovernanceEngine, "config">): HistoryBackend[] {
  const { clock } = require("../core/clock") as typeof import("../core/clock");
  const { FileHistory, defaultHistoryPath } = require("../rotation/history/file") as typeof import("../rotation/history/file");
  const extra: HistoryBackend[] = [];
  const seen = new Set<string>();
  for (const s of Object.values(engine.config.stores)) {
    if (s.type !== "file") continue;
    const path = defaultHistoryPath(dirname(isAbsolute(s.path) ? s.path : resolvePath(engine.config.dir, s.path)));
    if (seen.has(path)) continue;
    seen.add(path);
    extra.push(new FileHistory(path, clock()));
  }
  return extra;
}
