import { TransformError } from "../core/errors";
import { extractJsonField, extractPath, parsePath, stringifyExtracted } from "./jsonpath";
import { Secret } from "../core/secret";
import { suggest } from "../core/suggest";

/** One step of a transform chain. */
export interface TransformStep {
  readonly name: TransformName;
  /** The text after the first ":" (`.a.b` for json_extract, `,` for join). */
  readonly arg?: string;
}

const builtins = {
  trim: { arg: "none" },
  multiline_to_single: { arg: "none" },
  json_extract: { arg: "required" },
  yaml_extract: { arg: "required" },
  base64_encode: { arg: "none" },
  base64_decode: { arg: "none" },
  replace: { arg: "required" },
  join: { arg: "optional" },
} as const;

export type TransformName = keyof typeof builtins;
export const transformNames = Object.keys(builtins) as TransformName[];

function isTransformName(s: string): s is TransformName {
  return Object.prototype.hasOwnProperty.call(builtins, s);
}

/** True when `text` (after blanks) begins with a transform's or a named chain's name, ending there or at `:`, a blank, `|` or `,`. */
function startsStepAt(text: string, named: ReadonlySet<string>): boolean {
  const m = /^\s*([A-Za-z0-9_.-]+)(?=$|[:\s|,])/.exec(text);
  return m !== null && (isTransformName(m[1]) || named.has(m[1]));
}

/**
 * Split a chain string into step strings. `|` always separates; `,` separates only where the
 * next piece begins with a transform name, so `join:,` and `replace:a,b:c` keep their commas.
 * `join:`'s first character is its separator whatever it is (`join:|`, `join:,`, `join:;`),
 * and its separator runs to the next `|` or `,` that begins a step; a separator that holds
 * `|` or `,` and then a transform's name (`join:|trim`) is refused as ambiguous.
 */
export function splitChain(chain: string, named: ReadonlySet<string> = new Set()): string[] {
  const steps: string[] = [];
  let rest = chain;
  for (;;) {
    const join = /^\s*join:/.exec(rest);
    if (join) {
      const start = join[0].length;
      let end = rest.length;
      for (let i = start + 1; i < rest.length; i++) {
        if ((rest[i] === "|" || rest[i] === ",") && startsStepAt(rest.slice(i + 1), named)) {
          end = i;
          break;
        }
      }
      const sep = rest.slice(start, end);
      const at = [...sep].findIndex((c, j) => (c === "|" || c === ",") && startsStepAt(sep.slice(j + 1), named));
      if (at >= 0) {
        const shown = sep.trim();
        throw new TransformError(`transform "join:${shown}" is ambiguous: is "${shown}" join's separator, or does "${sep[at]}" start the next step "${sep.slice(at + 1).trim()}"?`, {
          hint: `write join:${sep.slice(0, Math.max(at, 1))} | ${sep.slice(at + 1).trim()} for a separator and a next step, or give the steps as a list`,
        });
      }
      steps.push(rest.slice(0, end));
      if (end >= rest.length) break;
      rest = rest.slice(end + 1);
      continue;
    }
    // Up to the next "|", or "," that begins a step.
    let end = rest.length;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === "|" || (rest[i] === "," && startsStepAt(rest.slice(i + 1), named))) {
        end = i;
        break;
      }
    }
    steps.push(rest.slice(0, end));
    if (end >= rest.length) break;
    rest = rest.slice(end + 1);
  }
  return steps.map((s) => s.trim()).filter((s, i, all) => s !== "" || all.length === 1);
}

/** Parse one step string (`json_extract:.a[0]`). */
export function parseStep(step: string): TransformStep {
  const trimmed = step.trim();
  const colon = trimmed.indexOf(":");
  const name = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim();
  const arg = colon < 0 ? undefined : trimmed.slice(colon + 1);
  if (!isTransformName(name)) {
    const hint = suggest(name, transformNames);
    throw new TransformError(`unknown transform "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}`, {
      hint: `known transforms: ${transformNames.join(", ")}`,
    });
  }
  const spec = builtins[name];
  if (spec.arg === "none" && arg !== undefined && arg !== "") throw new TransformError(`transform "${name}" takes no argument`);
  if (spec.arg === "required" && (arg === undefined || arg === "")) throw new TransformError(`transform "${name}" needs an argument (${name}:<arg>)`);
  if (name === "json_extract" || name === "yaml_extract") parsePath(arg as string);
  if (name === "replace" && splitReplace(arg as string) === undefined)
    throw new TransformError(`transform "replace" needs replace:<from>:<to>`);
  return arg === undefined ? { name } : { name, arg };
}

/** `from:to` where `\:` escapes a colon inside `from`. */
function splitReplace(arg: string): [string, string] | undefined {
  for (let i = 0; i < arg.length; i++) {
    if (arg[i] === "\\" && arg[i + 1] === ":") {
      i++;
      continue;
    }
    if (arg[i] === ":") return [arg.slice(0, i).replace(/\\:/g, ":"), arg.slice(i + 1)];
  }
  return undefined;
}

/** Format a step back into the string `parseStep` reads as the same step. */
export function formatStep(step: TransformStep): string {
  return step.arg === undefined ? step.name : `${step.name}:${step.arg}`;
}

/**
 * Expand a `transform:` value (a chain string, a list of step strings, or the name of a chain
 * in `transforms:`) into steps. Named chains may use other named chains; cycles are errors.
 */
export function compileTransforms(
  spec: string | readonly string[] | undefined,
  named: Readonly<Record<string, string | readonly string[]>> = {},
  seen: readonly string[] = [],
): TransformStep[] {
  if (spec === undefined) return [];
  const names = new Set(Object.keys(named));
  const pieces = typeof spec === "string" ? splitChain(spec, names) : spec.flatMap((s) => splitChain(s, names));
  const out: TransformStep[] = [];
  for (const piece of pieces) {
    const name = piece.trim();
    if (names.has(name)) {
      if (seen.includes(name)) throw new TransformError(`transform chain "${name}" refers to itself (${[...seen, name].join(" → ")})`);
      out.push(...compileTransforms(named[name], named, [...seen, name]));
    } else {
      out.push(parseStep(piece));
    }
  }
  return out;
}

function applyStep(step: TransformStep, input: string): string {
  switch (step.name) {
    case "trim":
      return input.trim();
    case "multiline_to_single":
      return input.replace(/\r\n|\r|\n/g, " ");
    case "json_extract":
      return extractJsonField(input, step.arg as string);
    case "yaml_extract": {
      let doc: unknown;
      try {
        doc = (require("yaml") as typeof import("yaml")).parse(input, { logLevel: "silent" }); // loaded at first use
      } catch {
        throw new TransformError(`yaml_extract: the value is not a YAML document`);
      }
      return stringifyExtracted(extractPath(doc, step.arg as string));
    }
    case "base64_encode":
      return Buffer.from(input, "utf8").toString("base64");
    case "base64_decode": {
      const clean = input.replace(/\s+/g, "");
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new TransformError(`base64_decode: the value is not base64`);
      return Buffer.from(clean, clean.includes("-") || clean.includes("_") ? "base64url" : "base64").toString("utf8");
    }
    case "replace": {
      const [from, to] = splitReplace(step.arg as string) as [string, string];
      return from === "" ? input : input.split(from).join(to);
    }
    case "join": {
      const sep = step.arg ?? ",";
      let items: unknown;
      try {
        items = JSON.parse(input);
      } catch {
        items = undefined;
      }
      if (Array.isArray(items)) return items.map(stringifyExtracted).join(sep);
      // Lines; else the items of a comma-separated string ("a, b, c"), as dsops users expect.
      if (/[\r\n]/.test(input)) return input.split(/\r?\n/).filter((l) => l !== "").join(sep);
      return input.split(",").map((i) => i.trim()).filter((i) => i !== "").join(sep);
    }
  }
}

/** Run the steps over a secret; errors name the step, never the value. */
export function applyTransforms(steps: readonly TransformStep[], value: Secret): Secret {
  if (steps.length === 0) return value; // a Secret cannot change: no copy
  let cur = value.reveal();
  for (const step of steps) {
    try {
      cur = applyStep(step, cur);
    } catch (e) {
      if (e instanceof TransformError) throw new TransformError(`transform "${formatStep(step)}": ${e.message.replace(/^[a-z_]+: /, "")}`);
      throw new TransformError(`transform "${formatStep(step)}" failed`);
    }
  }
  return new Secret(cur);
}

