import type { ConfigCheck } from "../../engine/config/load";

/**
 * The loader's check of `chains:`: every stage is an env of `envs:` holding the variable with a
 * `rotation:` block, and no env comes twice (a chain that comes back to an env is a cycle).
 * The schema already refused a soak that is not a duration (naming `chains.<name>.soak`).
 */
export const chainConfigCheck: ConfigCheck = (raw, { findings }) => {
  // An env's variable is a stage of one chain only (two chains would rotate it in two orders).
  const owner = new Map<string, string>();
  for (const [name, chain] of Object.entries(raw.chains ?? {})) {
    const at = ["chains", name];
    chain.stages.forEach((env, i) => {
      const key = `${env}/${chain.variable}`;
      const other = owner.get(key);
      if (other !== undefined && other !== name) findings.error([...at, "stages", i], `envs.${env}.${chain.variable} is already a stage of chain "${other}": a variable of an env belongs to one chain`);
      else owner.set(key, name);
    });
    const seen = new Map<string, number>();
    chain.stages.forEach((env, i) => {
      const path = [...at, "stages", i];
      const first = seen.get(env);
      if (first !== undefined) {
        findings.error(path, `env "${env}" is stage ${first + 1} and again stage ${i + 1}: a chain visits each env once (a stage list that comes back to an env is a cycle)`);
        return;
      }
      seen.set(env, i);
      const vars = raw.envs[env];
      if (!vars) {
        findings.error(path, `unknown env "${env}" (envs: ${Object.keys(raw.envs).join(", ") || "none"})`);
        return;
      }
      const v = vars[chain.variable];
      if (!v) findings.error(path, `env "${env}" has no variable "${chain.variable}" (chains.${name}.variable): each stage rotates that env's ${chain.variable}`);
      else if (!v.rotation) findings.error(path, `envs.${env}.${chain.variable} has no rotation: block: a chain stage rotates it with that env's own service and store`);
    });
  }
  return raw;
};
