// Over 400 lines on purpose: parsing YAML with positions, alias limits, `${VAR}` expansion and the
// translation of schema issues into path + line:column share one document's node map.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import YAML, { LineCounter, isAlias, isMap, isPair, isScalar, type Document, type Node as YamlNode } from "yaml";
import { z } from "zod";
import { ConfigError, DsopsError } from "../../core/errors";
import { parseFrom, type SecretRef } from "../refs";
import { suggest } from "../../core/suggest";
import { compileTransforms, type TransformStep } from "../transforms";
import { plannedStoreTypes, storeSettingsSchemas, storeTypes, type StoreSettings, type StoreType } from "../../stores/settings";
import { coreConfigSchema, type RawConfig, type VariableSpec } from "./schema";

/** A variable of an env, checked and compiled. */
export interface Variable {
  readonly name: string;
  readonly spec: VariableSpec;
  /** The reference, when the variable has `from`. */
  readonly ref?: SecretRef;
  readonly transforms: TransformStep[];
  readonly optional: boolean;
}

/** A loaded, checked configuration. */
export interface Config {
  /** The file it came from, when it came from a file. */
  readonly file?: string;
  /** Folder relative paths are resolved against. */
  readonly dir: string;
  readonly raw: RawConfig;
  /** Every store by name: `secretStores` first, then legacy `providers`, settings expanded and checked. */
  readonly stores: Readonly<Record<string, StoreSettings>>;
  readonly envs: Readonly<Record<string, Readonly<Record<string, Variable>>>>;
  /**
   * What loads but deserves a look, each formatted like a problem (path, message, position):
   * variable names a shell cannot use, `services:` of types this version cannot rotate yet, a
   * strategy its target cannot run. `dsops plan` prints them.
   */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  /** Environment used for `${VAR}` expansion (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Folder for relative paths (default the file's folder, or the working directory). */
  dir?: string;
  /** Name shown in errors (default the file path, or "config"). */
  label?: string;
  /**
   * Options of the features' checks, read by the rotation check (provider/rotation/config-check.ts):
   * check `rotation:` blocks against `services:` (default true). Off only for a configuration
   * built to read rotation history, whose rotation block names no real service.
   */
  checkRotations?: boolean;
  /**
   * Refuse, rather than warn about, a rotation that cannot run: its service's type is not
   * rotated yet, or its strategy needs what the target cannot do (a RotationPolicy, which
   * exists only to rotate). Default false.
   */
  strictRotations?: boolean;
}

export type Path = Array<string | number>;

/** Where a check's findings go; the loader adds the line and column of `path`. */
export interface Findings {
  error(path: Path, message: string, key?: boolean): void;
  warn(path: Path, message: string, key?: boolean): void;
  /**
   * Check `value` against `schema`; each issue is an error under `prefix` (with `only`, just the
   * issues whose path, relative to `value`, it accepts; an unknown key's path ends with the key).
   * The parsed value, or undefined.
   */
  parse<S extends z.ZodType>(schema: S, value: unknown, prefix: Path, only?: (issuePath: Path) => boolean): z.infer<S> | undefined;
}

/** What a check of a feature's sections is given. */
export interface ConfigCheckContext {
  /** A variable's checked reference (undefined when it has none or it failed its own checks). */
  refOf(env: string, variable: string): SecretRef | undefined;
  readonly findings: Findings;
  readonly options: LoadOptions;
}

/**
 * A feature's check of the parsed file, run after the engine's own (stores, transforms,
 * variables), in the order given; it may return the configuration with its sections normalised.
 */
export type ConfigCheck = (raw: RawConfig, ctx: ConfigCheckContext) => RawConfig;

/** What a loader checks a file with: the composed schema and the features' checks. */
export interface ConfigRules {
  /** The whole file's schema (`composeConfigSchema` of the features' sections). */
  readonly schema: z.ZodType;
  readonly checks: readonly ConfigCheck[];
}

/** The engine's sections only, no feature's (a test or tool that needs no feature). */
export const coreConfigRules: ConfigRules = { schema: coreConfigSchema, checks: [] };

/** At most this many uses of one YAML anchor (nested aliases count as many): the yaml library's own limit, against alias bombs. */
export const MAX_YAML_ALIASES = 100;

/** Where each path of the document is, so errors can say line and column. */
class Locator {
  constructor(
    private readonly doc?: Document,
    private readonly lines?: LineCounter,
    private readonly label = "config",
  ) {}

  /** `file:line:col` of the value at `path` (or of the key when `key` is true). */
  at(path: Path, key = false): string {
    if (!this.doc || !this.lines) return "";
    let node: unknown = this.doc.contents;
    let keyNode: unknown;
    let last: unknown = node;
    for (const step of path) {
      if (!isMap(node) && !(node && typeof node === "object" && "items" in node)) break;
      const items = (node as { items: unknown[] }).items;
      let found: unknown;
      if (isMap(node)) {
        const pair = items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(step));
        if (pair && isPair(pair)) {
          keyNode = pair.key;
          found = pair.value;
        }
      } else if (typeof step === "number") {
        found = items[step];
        keyNode = found;
      }
      if (found === undefined) break;
      node = found;
      last = found;
    }
    const target = (key ? keyNode : last) ?? last;
    const range = (target as { range?: [number, number, number] } | undefined)?.range;
    if (!range) return "";
    const { line, col } = this.lines.linePos(range[0]);
    return ` at ${this.label}:${line}:${col}`;
  }
}

export function formatPath(path: Path): string {
  if (path.length === 0) return "(top level)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : !PLAIN_NAME.test(p) ? `[${quoteName(p)}]` : i === 0 ? p : `.${p}`)).join("");
}

/** Names shown bare in a path; others are quoted (`envs.dev["A=B"]`, `envs.dev[""]`). */
const PLAIN_NAME = /^[A-Za-z0-9_.:@/-]+$/;

/** Characters that are invisible or reorder text (zero-width, bidi controls, BOM …). */
// eslint-disable-next-line no-misleading-character-class -- the class lists joiners and variation selectors one by one, on purpose: they are what it finds
const INVISIBLE = /[\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]/gu;

/** A name in double quotes, with control, invisible and direction-changing characters escaped (`\u202e`), so a message shows what is there. */
export function quoteName(name: string): string {
  return JSON.stringify(name).replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A name as printed in a table: quoted and escaped when it holds control, invisible or direction-changing characters. */
export function showName(name: string): string {
  // eslint-disable-next-line no-misleading-character-class, no-control-regex -- INVISIBLE again, and control characters: what it finds
  return new RegExp(INVISIBLE.source, "u").test(name) || /[\u0000-\u001f\u007f-\u009f]/.test(name) ? quoteName(name) : name;
}

/** What a shell accepts as a variable name. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A variable name's problem: an error when no environment can hold it (empty, `=`, NUL), a
 * warning when a shell cannot use it (`1BAD`, a space, invisible or direction-changing
 * characters), else undefined.
 */
export function checkVariableName(name: string): { error?: string; warning?: string } | undefined {
  if (name === "") return { error: "an empty variable name: no environment can hold it" };
  if (name.includes("=")) return { error: 'a variable name cannot contain "=": no environment can hold it (an entry NAME=value ends its name at the first "=")' };
  if (name.includes("\0")) return { error: "a variable name cannot contain NUL: no environment can hold it" };
  if (SHELL_NAME.test(name)) return undefined;
  const hidden = [...new Set(name.match(INVISIBLE) ?? [])].map((c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
  if (hidden.length)
    return { warning: `the name holds invisible or direction-changing characters (${hidden.join(", ")}): it shows as "${name.replace(INVISIBLE, "")}" but is another name; a shell cannot use it either` };
  return { warning: "not a name a shell can use (letters, digits and _, not starting with a digit): exec and render pass it on, but $NAME cannot read it" };
}

/** Keys a schema accepts at `path`, for "did you mean" on unknown keys. */
function knownKeys(schema: z.ZodType, path: Path): string[] {
  let s: z.ZodType | undefined = schema;
  const unwrap = (t: z.ZodType): z.ZodType => {
    let cur = t;
    for (;;) {
      const def = (cur as unknown as { _zod: { def: { type: string; innerType?: z.ZodType; options?: z.ZodType[] } } })._zod.def;
      if ((def.type === "optional" || def.type === "default" || def.type === "nullable") && def.innerType) cur = def.innerType;
      else return cur;
    }
  };
  const objectOf = (t: z.ZodType): z.ZodType | undefined => {
    const u = unwrap(t);
    const def = (u as unknown as { _zod: { def: { type: string; options?: z.ZodType[] } } })._zod.def;
    if (def.type === "union" && def.options) return def.options.map(unwrap).find((o) => (o as unknown as { _zod: { def: { type: string } } })._zod.def.type === "object");
    return u;
  };
  for (const step of path) {
    if (!s) return [];
    const u = objectOf(s);
    if (!u) return [];
    const def = (u as unknown as { _zod: { def: { type: string; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; element?: z.ZodType } } })._zod.def;
    if (def.type === "object" && def.shape) s = def.shape[String(step)];
    else if (def.type === "record") s = def.valueType;
    else if (def.type === "array") s = def.element;
    else return [];
  }
  if (!s) return [];
  const u = objectOf(s);
  const def = (u as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } } | undefined)?._zod.def;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function issueMessages(schema: z.ZodType, issues: z.core.$ZodIssue[], prefix: Path, loc: Locator): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as Path)];
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, issue.path as Path);
      for (const k of issue.keys) {
        const hint = suggest(k, known);
        out.push(
          `${formatPath([...path, k])}: unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (expected one of: ${known.join(", ")})` : ""}${loc.at([...path, k], true)}`,
        );
      }
      continue;
    }
    if (issue.code === "invalid_union") {
      out.push(`${formatPath(path)}: ${unionMessage(path)}${loc.at(path)}`);
      continue;
    }
    // zod leaves `input` out of issues: a missing value is the one "received undefined".
    if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
      out.push(`${formatPath(path)}: required (${issue.expected}) but missing${loc.at(path)}`);
      continue;
    }
    out.push(`${formatPath(path)}: ${issue.message}${loc.at(path)}`);
  }
  return out;
}

function unionMessage(path: Path): string {
  const last = path[path.length - 1];
  if (last === "from") return `expected "store://<store>/<key>", {store, key, version} or {provider, key, version}`;
  if (last === "transform") return "expected a transform chain string or a list of transform strings";
  if (last === "version") return "expected 0 or 1";
  return "value has the wrong shape";
}

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expand `${VAR}` and `${VAR:-default}` in every string under `value`; `$${` is a literal `${`. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv, path: Path, problems: Array<{ path: Path; message: string }>): unknown {
  if (typeof value === "string") {
    return value.replace(ENV_REF, (match, name: string | undefined, def: string | undefined) => {
      if (match === "$${") return "${";
      const v = env[name as string];
      if (v !== undefined && v !== "") return v;
      if (def !== undefined) return def;
      problems.push({ path, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` });
      return "";
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...path, i], problems));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, [...path, k], problems)]));
  return value;
}

/** Check a store entry against its type's settings schema. */
export function parseStoreSettings(
  raw: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  loc: Locator = new Locator(),
): { settings?: StoreSettings; problems: string[] } {
  const problems: string[] = [];
  const type = (raw as { type?: unknown })?.type;
  if (typeof type !== "string") return { problems: [`${formatPath([...path, "type"])}: missing store type${loc.at(path)}`] };
  if (!(storeTypes as string[]).includes(type)) {
    if ((plannedStoreTypes as readonly string[]).includes(type))
      return { problems: [`${formatPath([...path, "type"])}: store type "${type}" is not supported yet (supported: ${storeTypes.join(", ")})${loc.at([...path, "type"])}`] };
    const hint = suggest(type, [...storeTypes, ...plannedStoreTypes]);
    return {
      problems: [
        `${formatPath([...path, "type"])}: unknown store type "${type}"${hint ? ` (did you mean "${hint}"?)` : ` (supported: ${storeTypes.join(", ")})`}${loc.at([...path, "type"])}`,
      ],
    };
  }
  const envProblems: Array<{ path: Path; message: string }> = [];
  const expanded = expandEnv(raw, env, path, envProblems);
  for (const p of envProblems) problems.push(`${formatPath(p.path)}: ${p.message}${loc.at(p.path)}`);
  const schema = storeSettingsSchemas[type as StoreType];
  const parsed = schema.safeParse(expanded);
  if (!parsed.success) problems.push(...issueMessages(schema, parsed.error.issues, path, loc));
  return { settings: parsed.success ? (parsed.data as StoreSettings) : undefined, problems };
}

/** Paths of every `__proto__` key under `value` (zod and plain objects would drop them silently). Iterative: deep nesting cannot overflow the stack. */
function protoKeyPaths(value: unknown): Path[] {
  const out: Path[] = [];
  const todo: Array<[unknown, Path]> = [[value, []]];
  while (todo.length) {
    const [v, path] = todo.pop() as [unknown, Path];
    if (Array.isArray(v)) v.forEach((x, i) => todo.push([x, [...path, i]]));
    else if (v && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        if (k === "__proto__") out.push([...path, k]);
        else todo.push([x, [...path, k]]);
      }
  }
  return out.sort((a, b) => formatPath(a).localeCompare(formatPath(b)));
}

/** A copy of a record without a prototype: `constructor`, `toString` … are names like any other, never inherited members. */
function ownRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, r);
}

/** zod issues, keeping only those `only` accepts (for an unknown key, the path ends with the key). */
function issuesOnly(issues: z.core.$ZodIssue[], only?: (path: Path) => boolean): z.core.$ZodIssue[] {
  if (!only) return issues;
  return issues.flatMap((i): z.core.$ZodIssue[] => {
    if (i.code === "unrecognized_keys") {
      const keys = i.keys.filter((k) => only([...(i.path as Path), k]));
      return keys.length ? [{ ...i, keys } as z.core.$ZodIssue] : [];
    }
    return only(i.path as Path) ? [i] : [];
  });
}

/** Build a checked Config from a plain object (already parsed YAML, or an inline Pulumi config). */
function build(rules: ConfigRules, input: unknown, opts: LoadOptions & { loc: Locator; file?: string }): Config {
  const env = opts.env ?? process.env;
  const loc = opts.loc;
  // Checked first: the schema would drop such keys without a word.
  const problems = protoKeyPaths(input).map((p) => `${formatPath(p)}: "__proto__" cannot be a name here (JavaScript reserves it, so it would be lost); rename it${loc.at(p, true)}`);
  const parsed = rules.schema.safeParse(input ?? {});
  if (!parsed.success) {
    problems.push(...issueMessages(rules.schema, parsed.error.issues, [], loc));
    throw new ConfigError(problems.join("\n"), problems);
  }
  const data = parsed.data as RawConfig;
  let raw: RawConfig = {
    ...data,
    secretStores: ownRecord(data.secretStores),
    providers: ownRecord(data.providers),
    services: ownRecord(data.services),
    transforms: ownRecord(data.transforms),
    envs: ownRecord(Object.fromEntries(Object.entries(data.envs).map(([k, v]) => [k, ownRecord(v)]))),
    templates: ownRecord(data.templates),
  };
  const warnings: string[] = [];

  const stores: Record<string, StoreSettings> = Object.create(null);
  for (const section of ["secretStores", "providers"] as const) {
    for (const [name, entry] of Object.entries(raw[section])) {
      if (stores[name]) continue; // secretStores win over legacy providers of the same name
      const r = parseStoreSettings(entry, [section, name], env, loc);
      problems.push(...r.problems);
      if (r.settings) stores[name] = r.settings;
    }
  }
  const allStoreNames = [...new Set([...Object.keys(raw.secretStores), ...Object.keys(raw.providers)])];

  for (const [name, chain] of Object.entries(raw.transforms)) {
    try {
      compileTransforms(chain, raw.transforms, [name]);
    } catch (e) {
      problems.push(`${formatPath(["transforms", name])}: ${(e as Error).message}${loc.at(["transforms", name])}`);
    }
  }

  const envs: Record<string, Record<string, Variable>> = Object.create(null);
  for (const [envName, vars] of Object.entries(raw.envs)) {
    envs[envName] = Object.create(null);
    for (const [varName, spec] of Object.entries(vars)) {
      const path: Path = ["envs", envName, varName];
      const badName = checkVariableName(varName);
      if (badName?.error) {
        problems.push(`${formatPath(path)}: ${badName.error}${loc.at(path, true)}`);
        continue;
      }
      if (badName?.warning) warnings.push(`${formatPath(path)}: ${badName.warning}${loc.at(path, true)}`);
      if (spec.literal === undefined && spec.from === undefined) {
        problems.push(`${formatPath(path)}: needs "literal" or "from"${loc.at(path)}`);
        continue;
      }
      let ref: SecretRef | undefined;
      if (spec.literal === undefined && spec.from !== undefined) {
        try {
          ref = parseFrom(spec.from);
        } catch (e) {
          problems.push(`${formatPath([...path, "from"])}: ${(e as Error).message}${loc.at([...path, "from"])}`);
          continue;
        }
        const where = typeof spec.from === "string" || (typeof spec.from === "object" && "store" in spec.from && spec.from.store.startsWith("store://")) ? [...path, "from"] : [...path, "from", "store" in (spec.from as object) ? "store" : "provider"];
        if (!allStoreNames.includes(ref.store)) {
          if (Object.hasOwn(raw.services, ref.store))
            problems.push(`${formatPath([...path, "from"])}: "${ref.store}" is a service (a rotation target), not a secret store${loc.at(where)}`);
          else {
            const hint = suggest(ref.store, allStoreNames);
            problems.push(
              `${formatPath([...path, "from"])}: unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : allStoreNames.length ? ` (stores: ${allStoreNames.join(", ")})` : " (no secretStores are defined)"}${loc.at(where)}`,
            );
          }
          continue;
        }
        const type = stores[ref.store]?.type;
        if (ref.options && type && type !== "aws.secretsmanager") {
          problems.push(
            `${formatPath([...path, "from"])}: ${Object.keys(ref.options).map((k) => `?${k}=`).join(", ")} is read only by aws.secretsmanager stores; store "${ref.store}" is ${type} (use ?version=)${loc.at(where)}`,
          );
          continue;
        }
      }
      let transforms: TransformStep[];
      try {
        transforms = compileTransforms(spec.transform, raw.transforms);
      } catch (e) {
        problems.push(`${formatPath([...path, "transform"])}: ${(e as Error).message}${loc.at([...path, "transform"])}`);
        continue;
      }
      envs[envName][varName] = { name: varName, spec, ...(ref ? { ref } : {}), transforms, optional: spec.optional === true };
    }
  }

  if (rules.checks.length) {
    const findings: Findings = {
      error: (path, message, key) => problems.push(`${formatPath(path)}: ${message}${loc.at(path, key)}`),
      warn: (path, message, key) => warnings.push(`${formatPath(path)}: ${message}${loc.at(path, key)}`),
      parse: (schema, value, prefix, only) => {
        const r = schema.safeParse(value);
        if (r.success) return r.data;
        problems.push(...issueMessages(schema, issuesOnly(r.error.issues, only), prefix, loc));
        return undefined;
      },
    };
    const ctx: ConfigCheckContext = { refOf: (e, v) => envs[e]?.[v]?.ref, findings, options: opts };
    for (const check of rules.checks) raw = check(raw, ctx);
  }

  if (problems.length) throw new ConfigError(problems.join("\n"), problems);
  return { ...(opts.file ? { file: opts.file } : {}), dir: opts.dir ?? (opts.file ? dirname(opts.file) : process.cwd()), raw, stores, envs, warnings };
}

/**
 * YAML aliases that cannot be resolved, before anything is built from them, with their position:
 * an alias with no anchor before it (`*nope`), one inside the node it names, too many of them.
 */
function aliasProblems(doc: Document, where: (node: YamlNode) => string): string[] {
  const problems: string[] = [];
  const anchors = new Set<string>();
  let aliases = 0;
  YAML.visit(doc, {
    Node(_key, node, path) {
      if (isAlias(node)) {
        aliases++;
        if (!anchors.has(node.source)) problems.push(`unknown alias *${node.source}: no anchor &${node.source} before it${where(node)}`);
        else if (path.some((p) => (p as { anchor?: string }).anchor === node.source))
          problems.push(`alias *${node.source} is inside the node &${node.source} it names (a cycle)${where(node)}`);
      } else if (node.anchor) anchors.add(node.anchor);
    },
  });
  if (aliases > 10 * MAX_YAML_ALIASES) problems.push(`too many YAML aliases (${aliases}; at most ${10 * MAX_YAML_ALIASES})`);
  return problems;
}

/**
 * The alias at which the yaml library's alias limit (`maxAliasCount`) is crossed: each use of an
 * anchor counts as many as the aliases nested in what it names, in document order, as the library
 * counts them when it builds values. Undefined when no alias crosses it.
 */
function aliasOverLimit(doc: Document, max: number): YamlNode | undefined {
  const uses = new Map<unknown, { count: number; weight: number }>();
  const latest = new Map<string, unknown>();
  const target = new Map<unknown, unknown>();
  const weight = (node: unknown): number => {
    if (isAlias(node)) {
      const u = uses.get(target.get(node));
      return u ? u.count * u.weight : 0;
    }
    if (isPair(node)) return Math.max(weight(node.key), weight(node.value));
    if (node && typeof node === "object" && "items" in node) return Math.max(0, ...(node as { items: unknown[] }).items.map(weight));
    return 1;
  };
  let found: YamlNode | undefined;
  YAML.visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        const src = latest.get(node.source);
        const u = uses.get(src);
        if (!u) return;
        target.set(node, src);
        u.count++;
        if (u.weight === 0) u.weight = weight(src);
        if (u.count * u.weight > max) {
          found = node;
          return YAML.visit.BREAK;
        }
      } else if (node.anchor) {
        latest.set(node.anchor, node);
        uses.set(node, { count: 1, weight: 0 }); // the anchored node itself is one use
      }
      return undefined;
    },
  });
  return found;
}

function parseWith(rules: ConfigRules, text: string, opts: LoadOptions & { file?: string } = {}): Config {
  const label = opts.label ?? opts.file ?? "config";
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      const message = /Maximum call stack/.test(e.message) ? "the YAML is nested too deeply" : e.message.split("\n")[0];
      return `${message}${pos ? ` at ${label}:${pos.line}:${pos.col}` : ""}`;
    });
    throw new ConfigError(problems.join("\n"), problems, { hint: "dsops.yaml must be valid YAML" });
  }
  const where = (node: YamlNode) => {
    const r = node.range;
    if (!r) return "";
    const { line, col } = lines.linePos(r[0]);
    return ` at ${label}:${line}:${col}`;
  };
  const bad = aliasProblems(doc, where);
  if (bad.length) throw new ConfigError(bad.join("\n"), bad, { hint: "an alias (*name) repeats the node its anchor (&name) marks earlier in the file" });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    const over = aliasOverLimit(doc, MAX_YAML_ALIASES);
    const problem = over
      ? `too many uses of YAML aliases: *${(over as { source?: string }).source} crosses the limit of ${MAX_YAML_ALIASES} expanded uses of one anchor (nested aliases multiply)${where(over)}`
      : `cannot read the YAML: ${(e as Error).message}`;
    throw new ConfigError(problem, [problem], { hint: "write the values out, or use fewer aliases: expanding them would build a huge document" });
  }
  return build(rules, value, { ...opts, loc: new Locator(doc, lines, label) });
}

function loadWith(rules: ConfigRules, file: string, opts: LoadOptions = {}): Config {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DsopsError(`cannot read configuration ${file}: ${code === "ENOENT" ? "no such file" : code ?? "error"}`, {
      hint: code === "ENOENT" ? "run `dsops init` to create one, or pass --config PATH" : undefined,
      cause: e,
    });
  }
  return parseWith(rules, text, { ...opts, file: abs, label: opts.label ?? file });
}

/** The three ways to load dsops.yaml, each checking with the same rules. */
export interface ConfigLoader {
    parseConfig(text: string, opts?: LoadOptions & { file?: string }): Config;
  /** Load a dsops.yaml file. */
  loadConfigFile(file: string, opts?: LoadOptions): Config;
  /** Build a Config from an object (inline configuration in a Pulumi program or stack config). */
  configFromObject(obj: unknown, opts?: LoadOptions): Config;
}

/**
 * A loader checking with `rules`. The engine has no loader of its own that knows the features:
 * provider/compose/config.ts makes the one every face uses, from the composed schema.
 */
export function createConfigLoader(rules: ConfigRules): ConfigLoader {
  return {
    parseConfig: (text, opts) => parseWith(rules, text, opts),
    loadConfigFile: (file, opts) => loadWith(rules, file, opts),
    configFromObject: (obj, opts = {}) => build(rules, obj, { ...opts, loc: new Locator(undefined, undefined, opts.label ?? "config") }),
  };
}
