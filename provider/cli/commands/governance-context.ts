import type { ComposedRotationEngine } from "../../compose/rotation";
import type { GovernanceContext } from "../../rotation/governance";

/** What the approval and break-glass functions use of a composed engine: it, the project clock, and every configured channel. */
export function governanceContext(engine: ComposedRotationEngine): GovernanceContext {
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const hub = engine.notifications;
  return { engine, clock: clock(), ...(hub ? { notify: hub } : {}) };
}

