import type { Config } from "../engine/config/load";
import { DsopsError, errorMessage } from "../core/errors";
import type { BreakGlassRecord } from "../rotation/governance";

/**
 * Sealed values (`access: breakglass` on a variable): a face reads one only while an open,
 * unexpired break-glass grant covers its variable, and records each read on the grant (who,
 * when, which command; never a value). Anything else refuses the read before a store is asked:
 * no grant, a closed or expired one, a grant on another variable or env, and a history that
 * cannot be read (a grant that cannot be checked does not allow).
 */

/** A sealed variable a read touches. */
export interface SealedVariable {
  readonly env: string;
  readonly variable: string;
}

/** The sealed variables of `env` among `names` (default: every variable of the env). */
export function sealedOfEnv(config: Config, env: string, names?: readonly string[]): SealedVariable[] {
  const vars = config.envs[env] ?? {};
  return (names ?? Object.keys(vars)).filter((n) => vars[n]?.spec.access === "breakglass").map((variable) => ({ env, variable }));
}

/** The sealed variables, of any env, that read the secret `store`/`key` (a SecretReference to it). */
export function sealedOfRef(config: Config, store: string, key: string): SealedVariable[] {
  const out: SealedVariable[] = [];
  for (const [env, vars] of Object.entries(config.envs))
    for (const [variable, v] of Object.entries(vars)) if (v.spec.access === "breakglass" && v.ref?.store === store && v.ref.key === key) out.push({ env, variable });
  return out;
}

const hintOf = (s: SealedVariable) => `dsops breakglass open --secret ${s.env}/${s.variable} --reason "…" --ttl 1h`;

/**
 * Run `read` when every sealed variable of `sealed` (with `anyOf`: one of them, the same secret
 * read through any of its variables) is covered by an open grant, then record the read on each
 * grant used; refuse (DsopsError, exit 1) naming the variable, the rule and the command to open
 * a grant otherwise. The read's result is returned only once it is recorded.
 */
export async function withSealedReads<T>(
  config: Config,
  sealed: readonly SealedVariable[],
  command: string,
  read: () => Promise<T>,
  /** `hintInMessage`: the face shows messages only (Pulumi), so the way to open a grant is in the message. */
  opts: { anyOf?: boolean; hintInMessage?: boolean } = {},
): Promise<T> {
  if (!sealed.length) return read();
  const { RotationEngine } = require("../rotation/engine") as typeof import("../rotation/engine");
  const { governanceContext } = require("./governance-context") as typeof import("./governance-context");
  const gov = require("../rotation/governance") as typeof import("../rotation/governance");
  const { osIdentity } = require("../rotation/approval-identity") as typeof import("../rotation/approval-identity");
  // Reads the histories only: a bare engine, no notification, no metric.
  const engine = new RotationEngine(config);
  try {
    const ctx = governanceContext(engine);
    const grants: BreakGlassRecord[] = [];
    const refusals: DsopsError[] = [];
    for (const s of sealed) {
      const rule = `envs.${s.env}.${s.variable}.access: breakglass`;
      let found: { grant?: BreakGlassRecord; why: string };
      try {
        found = await gov.activeBreakGlass(ctx, s.env, s.variable);
      } catch (e) {
        throw new DsopsError(`${s.env}/${s.variable} is sealed (${rule}) and its break-glass grants cannot be checked: ${errorMessage(e)}; the read is refused`, {
          hint: "fix the rotation history backend, then try again",
          cause: e,
        });
      }
      if (found.grant) grants.push(found.grant);
      else refusals.push(new DsopsError(`${s.env}/${s.variable} is sealed (${rule}): ${found.why}; the read is refused${opts.hintInMessage ? ` (open a grant: ${hintOf(s)})` : ""}`, { hint: hintOf(s) }));
    }
    if (opts.anyOf ? !grants.length : refusals.length) throw refusals[0];
    const result = await read();
    const by = osIdentity();
    for (const g of grants) await gov.recordBreakGlassRead(ctx, g, { by, command });
    // A grant closed while the value was read (its close rotates the credential, perhaps before
    // the read) covers nothing: the value read is dropped and the read refused.
    for (const g of grants) {
      const now = await gov.activeBreakGlass(ctx, g.env, g.variable);
      if (!now.grant) {
        throw new DsopsError(`${g.env}/${g.variable} is sealed (envs.${g.env}.${g.variable}.access: breakglass): ${now.why} while it was read; the read is refused`, {
          hint: hintOf(g),
        });
      }
    }
    return result;
  } finally {
    await engine.close();
  }
}
