import * as z from "zod";
import type { ConfigCheck } from "../engine/config/load";
import type { RawConfig } from "../engine/config/schema";
import { parseChaosFault } from "./fault";

/**
 * dsops.yaml's `chaos:` block: the envs where `dsops chaos run` may inject faults into real
 * rotations (test and staging envs). Nothing else may be chaos-tested: an env not listed is
 * refused, and an env whose name looks like production (`prod`, `production`, `prd`, `live`
 * as a word of the name) is refused even when listed.
 */
export const chaosSchema = z.strictObject({
  /** The envs chaos may run in (at least one). */
  envs: z.array(z.string().min(1)).min(1),
  /** The faults `dsops chaos run --env E` injects when no --inject is given: variable name → faults (`kill-at:apply`, …). */
  experiments: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).optional(),
});
export type ChaosSettings = z.infer<typeof chaosSchema>;

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** Where `dsops chaos` may inject faults (`chaos:`). */
    chaos?: ChaosSettings;
  }
}

/** The words that make an env's name read as production. */
const PRODUCTION_WORDS = new Set(["prod", "production", "prd", "live"]);

/** True when an env's name reads as production: `prod`, `production`, `prd` or `live` as a word of it (`eu-prod`, `Production`, `prod2`, `liveDb`; not `preprod`). */
export function looksLikeProduction(env: string): boolean {
  return env
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z]+/)
    .some((w) => PRODUCTION_WORDS.has(w));
}

/**
 * Why chaos may not run in `env` (undefined: it may): not listed in `chaos.envs`, or named like
 * production. The message names the field.
 */
export function chaosRefusal(raw: Pick<RawConfig, "chaos">, env: string): string | undefined {
  if (looksLikeProduction(env))
    return `env "${env}" looks like production (its name has prod, production, prd or live in it): chaos is never run there, whatever chaos.envs says`;
  const envs = raw.chaos?.envs;
  if (!envs) return `env "${env}" is not a chaos env: dsops.yaml has no chaos: block (add chaos: {envs: [${env}]} to mark a test or staging env)`;
  if (!envs.includes(env)) return `env "${env}" is not a chaos env: chaos.envs lists ${envs.map((e) => `"${e}"`).join(", ")}`;
  return undefined;
}

/**
 * The load check of `chaos:`: each `envs` entry an env of `envs:`, none named like production;
 * each `experiments` key a variable rotated in one of those envs, each fault a known one.
 */
export const chaosConfigCheck: ConfigCheck = (raw, { findings }) => {
  const envs = raw.chaos?.envs ?? [];
  envs.forEach((env, i) => {
    if (looksLikeProduction(env))
      findings.error(["chaos", "envs", i], `"${env}" looks like production (prod, production, prd or live in its name): chaos is refused there; list only test and staging envs`);
    else if (!Object.hasOwn(raw.envs, env)) findings.error(["chaos", "envs", i], `no env "${env}" in envs: (envs: ${Object.keys(raw.envs).join(", ") || "none"})`);
  });
  for (const [variable, faults] of Object.entries(raw.chaos?.experiments ?? {})) {
    if (!envs.some((e) => raw.envs[e]?.[variable]?.rotation))
      findings.error(["chaos", "experiments", variable], `no variable "${variable}" with a rotation: block in the chaos envs (${envs.join(", ")})`, true);
    faults.forEach((f, i) => {
      try {
        parseChaosFault(f);
      } catch (e) {
        findings.error(["chaos", "experiments", variable, i], (e as Error).message);
      }
    });
  }
  return raw;
};

/** The declared experiments of `env`: each variable of `chaos.experiments` rotated there, with its faults. */
export function declaredExperiments(raw: RawConfig, env: string): Array<{ variable: string; faults: readonly string[] }> {
  return Object.entries(raw.chaos?.experiments ?? {})
    .filter(([v]) => raw.envs[env]?.[v]?.rotation)
    .map(([variable, faults]) => ({ variable, faults }));
}
