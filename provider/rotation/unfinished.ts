import type { VariableRotation } from "./settings";
import { errorMessage } from "../core/errors";
import type { RotationEngine } from "./engine";
import { FileHistory } from "./history/file";
import { ownerIsDead } from "./lock";
import type { LockOwner, RotationRecord } from "./types";

/**
 * What readers (`dsops get`, `render`, `exec`) are told about the secrets they read: a rotation
 * of one that is unfinished (in progress, or left by a process that died) and how to finish it.
 *
 * Cheap on purpose, since readers run often: only variables with a `rotation:` block are
 * looked at; for the file history (the default) that is one look for the secret's lock file
 * (a rotation holds it from start to end, a killed one leaves it behind), and the history is
 * read only when the lock file exists; a postgres history is asked for an open record.
 */
export async function unfinishedRotations(engine: RotationEngine, env: string, variables: readonly string[], finishCommand: (variable: string) => string): Promise<string[]> {
  const out: string[] = [];
  const vars = engine.config.envs[env] ?? {};
  for (const variable of variables) {
    const v = vars[variable];
    const policy = v?.spec.rotation as VariableRotation | undefined;
    if (!policy || !v.ref) continue;
    const secret = `store://${v.ref.store}/${v.ref.key}`;
    try {
      const history = engine.historyFor(env, variable);
      let holder: LockOwner | undefined;
      let open: RotationRecord | undefined;
      if (history instanceof FileHistory) {
        holder = await history.holder(secret);
        if (!holder) continue;
        open = holder.rotationId ? await history.get(holder.rotationId) : undefined;
      } else {
        open = (await history.list({ secret, status: ["running"], limit: 1 }))[0];
        if (!open) continue;
        holder = await history.holder(secret);
      }
      out.push(describe(variable, secret, policy, holder, open, finishCommand(variable)));
    } catch (e) {
      out.push(`${variable} (${secret}): could not check whether a rotation of it is unfinished: ${errorMessage(e)}`);
    }
  }
  return out;
}

function describe(variable: string, secret: string, policy: VariableRotation, holder: LockOwner | undefined, open: RotationRecord | undefined, finish: string): string {
  const id = holder?.rotationId ?? open?.id;
  const what = id ? `rotation ${id}` : "a rotation";
  const inPlace = policy.strategy === "single-user";
  const applied = open ? open.steps.some((s) => s.name === "apply") && !open.steps.some((s) => s.name === "promote" && s.outcome === "ok") : true;
  const risk = inPlace && applied ? `service "${policy.service}" may already reject the value stored as current (the one given here: single-user changes the password in place)` : "";
  if (holder && ownerIsDead(holder))
    return `${variable} (${secret}): ${what} did not finish (its process, pid ${holder.pid} on ${holder.host}, is gone)${risk ? `; until it is finished, ${risk}` : "; the value stored as current still works"}. Finish it: ${finish}`;
  if (holder)
    return `${variable} (${secret}): ${what} is in progress (${holder.who}, pid ${holder.pid} on ${holder.host}, since ${holder.since})${risk ? `; until it promotes the new value, ${risk}` : ""}. If that process is gone, finish it: ${finish}`;
  return `${variable} (${secret}): ${what} (started by ${open?.who ?? "?"} at ${open?.startedAt ?? "?"}) did not finish${risk ? `; until it is finished, ${risk}` : ""}. Finish it: ${finish}`;
}
