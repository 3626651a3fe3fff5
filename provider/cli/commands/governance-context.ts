import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import type { ComposedRotationEngine } from "../../compose/rotation";
import type { HistoryBackend } from "../../rotation/history/types";
import type { GovernanceContext } from "../../rotation/governance";

/**
 * What the approval and break-glass functions use of a composed engine: it, the project clock,
 * every configured channel, and the default history of each file store (where RotationPolicy
 * resources of a stack using this dsops.yaml keep their approval requests).
 */
export function governanceContext(engine: ComposedRotationEngine): GovernanceContext {
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const { FileHistory, defaultHistoryPath } = require("../../rotation/history/file") as typeof import("../../rotation/history/file");
  const hub = engine.notifications;
  const extra: HistoryBackend[] = [];
  const seen = new Set<string>();
  for (const s of Object.values(engine.config.stores)) {
    if (s.type !== "file") continue;
    const path = defaultHistoryPath(dirname(isAbsolute(s.path) ? s.path : resolvePath(engine.config.dir, s.path)));
    if (seen.has(path)) continue;
    seen.add(path);
    extra.push(new FileHistory(path, clock()));
  }
  return { engine, clock: clock(), ...(hub ? { notify: hub } : {}), extraHistories: extra };
}
