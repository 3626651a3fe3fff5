import { randomInt, randomUUID } from "node:crypto";
import { DsopsError } from "../core/errors";
import { Secret } from "../core/secret";
import { generatorSchema, type GeneratorPolicy } from "./settings";
import type { ValueRules } from "./targets/types";

export type { ValueRules };

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS = "0123456789";
const HEX = "0123456789abcdef";
const B64 = LOWER + UPPER + DIGITS + "+/";

/** The default policy (32 characters, every class). */
export const defaultGeneratorPolicy: GeneratorPolicy = generatorSchema.parse({});

interface Plan {
  /** Each class: its alphabet (after exclusions) and the minimum count. */
  classes: Array<{ name: string; chars: string; min: number }>;
  alphabet: string;
  length: number;
}

function planFor(policy: GeneratorPolicy, rules: ValueRules): Plan | "uuid" {
  const excluded = new Set([...policy.exclude, ...(rules.forbidden ?? "")]);
  const keep = (s: string) => [...new Set([...s])].filter((c) => !excluded.has(c)).join("");
  if (policy.format === "uuid") {
    if ([..."0123456789abcdef-"].some((c) => excluded.has(c))) throw new DsopsError("generator: format uuid needs 0-9, a-f and '-', but some are excluded");
    checkLength(36, rules);
    return "uuid";
  }
  checkLength(policy.length, rules);
  let classes: Plan["classes"];
  switch (policy.format) {
    case "hex":
      classes = [{ name: "hex", chars: keep(HEX), min: 0 }];
      break;
    case "base64":
      classes = [{ name: "base64", chars: keep(B64), min: 0 }];
      break;
    case "alphanumeric":
    case "password": {
      classes = [
        { name: "lower", chars: keep(LOWER), min: policy.lower },
        { name: "upper", chars: keep(UPPER), min: policy.upper },
        { name: "digits", chars: keep(DIGITS), min: policy.digits },
      ];
      if (policy.format === "password") classes.push({ name: "symbols", chars: keep(policy.symbol_set), min: policy.symbols });
      // A class with min 0 is left out of the alphabet only when asked for explicitly (min 0 and
      // password format keeps it); alphanumeric never has symbols.
      break;
    }
  }
  for (const c of classes) if (c.min > 0 && c.chars.length === 0) throw new DsopsError(`generator: needs ${c.min} ${c.name} character(s), but every one is excluded`);
  const alphabet = classes.filter((c) => c.min > 0 || policy.format === "hex" || policy.format === "base64").map((c) => c.chars).join("");
  if (alphabet.length < 2) throw new DsopsError("generator: fewer than 2 characters left to draw from after exclusions");
  const mins = classes.reduce((n, c) => n + c.min, 0);
  if (mins > policy.length) throw new DsopsError(`generator: minimum counts (${mins}) exceed length ${policy.length}`);
  return { classes, alphabet, length: policy.length };
}

function checkLength(n: number, rules: ValueRules): void {
  if (rules.maxLength !== undefined && n > rules.maxLength) throw new DsopsError(`generator: length ${n} exceeds what the target accepts (${rules.maxLength})`);
  if (rules.minLength !== undefined && n < rules.minLength) throw new DsopsError(`generator: length ${n} is shorter than the target requires (${rules.minLength})`);
}

/** Check a policy against a target's rules without drawing a value (config checks, dry runs). */
export function checkPolicy(policy: GeneratorPolicy = defaultGeneratorPolicy, rules: ValueRules = {}): void {
  planFor(policy, rules);
}

/**
 * Draw a value: each character with `crypto.randomInt` (uniform, no modulo bias) from the
 * alphabet of the format; values missing a required class are drawn again (rejection keeps
 * the distribution uniform over the valid values).
 */
export function generate(policy: GeneratorPolicy = defaultGeneratorPolicy, rules: ValueRules = {}, accept?: ValueCheck): Secret {
  if (!accept) return draw(policy, rules);
  let last: readonly string[] = [];
  for (let attempt = 0; attempt < POLICY_ATTEMPTS; attempt++) {
    const s = draw(policy, rules);
    last = accept(s.reveal());
    if (last.length === 0) return s;
  }
  throw new DsopsError(`generator: none of ${POLICY_ATTEMPTS} values drawn met the policies (the last one ${last.join("; ")})`, {
    hint: "loosen policies.forbidden_patterns / required_patterns, or change rotation.generator so its values can match",
  });
}

/** What a drawn value must also meet (dsops's policies: patterns, complexity): its problems, each naming its rule (never the value); empty when it is fine. */
export type ValueCheck = (value: string) => readonly string[];

/** Draws before `generate` gives up on a value the policies accept. */
export const POLICY_ATTEMPTS = 10000;

/**
 * Whether the policies can ever accept a value of `policy`: `samples` values are drawn, and the
 * problems that every one of them had are returned (a required pattern the format's characters
 * cannot build, a forbidden one every value matches); empty when one was accepted.
 */
export function unmetByEvery(policy: GeneratorPolicy, accept: ValueCheck, samples = 2000): string[] {
  let common: string[] | undefined;
  for (let i = 0; i < samples; i++) {
    const problems = accept(draw(policy, {}).reveal());
    if (problems.length === 0) return [];
    common = common ? common.filter((p) => problems.includes(p)) : [...problems];
  }
  return common && common.length ? common : ["no value drawn met all of them together"];
}

function draw(policy: GeneratorPolicy, rules: ValueRules): Secret {
  const plan = planFor(policy, rules);
  if (plan === "uuid") return new Secret(randomUUID());
  for (let attempt = 0; attempt < 1000; attempt++) {
    let out = "";
    for (let i = 0; i < plan.length; i++) out += plan.alphabet[randomInt(plan.alphabet.length)];
    if (plan.classes.every((c) => c.min === 0 || countIn(out, c.chars) >= c.min)) return new Secret(out);
  }
  throw new DsopsError("generator: could not meet the class minimums; lower them or raise the length");
}

function countIn(s: string, chars: string): number {
  let n = 0;
  for (const ch of s) if (chars.includes(ch)) n++;
  return n;
}
