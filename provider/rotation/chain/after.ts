import type { RotationRecord } from "../types";

/** A policy's predecessor in an earlier stage (RotationPolicy `after`), as the due decisions read it. */
export interface Predecessor {
  /** Its rotated secret, `store://<store>/<key>`. */
  readonly secret: string;
  /** Its stage (env), named in messages. */
  readonly stage: string;
  /** How long its new credential must have been current first. */
  readonly soakMs: number;
}

/**
 * Why a policy must still wait for its predecessor, or undefined when it may rotate: the
 * predecessor has a successful rotation (in `records`, its history, newest first) finished
 * after this policy's own last rotation (`lastRotatedAt`), and `soakMs` has passed since.
 * Shared by the RotationPolicy resource (plan time) and the worker's registered policies.
 */
export function predecessorWait(pred: Predecessor, records: readonly RotationRecord[], lastRotatedAt: number | undefined, now: number): string | undefined {
  const done = records.find((r) => r.kind === "rotate" && r.secret === pred.secret && (r.status === "succeeded" || r.status === "grace") && r.finishedAt);
  const who = `${pred.secret} (stage ${pred.stage})`;
  const iso = (t: number) => new Date(t).toISOString();
  if (!done) return `waits for its predecessor ${who}: no successful rotation of it yet`;
  const at = Date.parse(done.finishedAt as string);
  if (lastRotatedAt !== undefined && at <= lastRotatedAt) return `waits for its predecessor ${who}: its last successful rotation (${done.id}, ${done.finishedAt}) is not newer than this policy's (${iso(lastRotatedAt)})`;
  if (now < at + pred.soakMs) return `waits for its predecessor ${who}: rotated ${done.id} at ${done.finishedAt}, soaking until ${iso(at + pred.soakMs)}`;
  return undefined;
}

/**
 * RotationPolicy `after` edges (a policy's secret → the secrets of its predecessors) that lead
 * from `start` back to it: the cycle as the list of secrets, `start` first and last, or undefined.
 * Policies of a cycle would each wait for the other for ever.
 */
export function afterCycle(start: string, predecessorsOf: (secret: string) => Iterable<string>): string[] | undefined {
  const path = [start];
  const seen = new Set<string>([start]);
  const walk = (s: string): boolean => {
    for (const p of predecessorsOf(s)) {
      if (p === start) {
        path.push(p);
        return true;
      }
      if (seen.has(p)) continue;
      seen.add(p);
      path.push(p);
      if (walk(p)) return true;
      path.pop();
    }
    return false;
  };
  return walk(start) ? path : undefined;
}

/** A cycle of `after` as people read it: `a → b → a` (→: waits for), with where each edge was found. */
export function describeAfterCycle(cycle: readonly string[], where: (secret: string) => string | undefined = () => undefined): string {
  return cycle.map((s, i) => (i < cycle.length - 1 && where(s) ? `${s} (${where(s)})` : s)).join(" → ");
}
