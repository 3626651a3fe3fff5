// Over 400 lines on purpose: parsing YAML with positions, alias limits, `${VAR}` expansion and the
// translation of schema issues into path + line:column share one document's node map.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Document, LineCounter, Node as YamlNode } from "yaml";
import * as z from "zod";
import { ConfigError, DsopsError } from "../../core/errors";
import { parseFrom, type SecretRef } from "../refs";
import { suggest } from "../../core/suggest";
import { compileTransforms, type TransformStep } from "../transforms";
import { plannedStoreTypes, storeKeyAliases, storeSettingsSchemas, storeTypeAliases, storeTypes, type StoreSettings, type StoreType } from "../../stores/settings";
import { pluginCommonKeys, pluginCommonSettings, pluginStoreType } from "../../stores/plugins";
import { coreConfigSchema, type RawConfig, type VariableSpec } from "./schema";
import { fastParseYaml } from "./fast-yaml";

/** The yaml library, loaded at first use: a file the fast path reads without error never needs it. */
function yamlLib(): typeof import("yaml") {
  return require("yaml") as typeof import("yaml");
}

/** A variable of an env, checked and compiled. */
export interface Variable {
  readonly name: string;
  readonly spec: VariableSpec;
  /** The reference, when the variable has `from`. */
  readonly ref?: SecretRef;
  readonly transforms: TransformStep[];
  readonly optional: boolean;
  /**
   * dsops's service reference (`from: {service: "svc://<type>/<instance>"}`): it names a rotation
   * target, never a value, so there is nothing to resolve (the resolver says so for this variable).
   */
  readonly serviceRef?: string;
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
  /**
   * Problems of a store that only its use reveals, by store name (loaded with `deferUnsetEnv`:
   * an unset `${VAR}` in its settings): the resolver refuses to create the store with them.
   */
  readonly storeProblems?: Readonly<Record<string, readonly string[]>>;
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
  /**
   * An unset `${VAR}` in a store's settings is reported when the store is called, not when the
   * file loads (`dsops plan`: it answers without credentials). Default false.
   */
  deferUnsetEnv?: boolean;
  /**
   * The env a command works on: problems under other envs (`envs.<other>.…`) are warnings, not
   * errors, so one broken env does not refuse another (`dsops plan --env E`).
   */
  focusEnv?: string;
  /**
   * Read plain YAML without the yaml library's document when it can (fastParseYaml): default
   * true. False reads every file through the document (tests compare the two paths).
   */
  yamlFastPath?: boolean;
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
  /** The schema for one file's content, when it may be smaller than `schema` (the composition builds only the sections the file has); it must accept and refuse what `schema` does. */
  readonly schemaFor?: (input: unknown) => z.ZodType;
  readonly checks: readonly ConfigCheck[];
  /**
   * Run on the file's raw content before anything is checked, with the folder relative paths
   * resolve against: the composition loads the plugins `plugins:` names here, so their store and
   * target types are known when the entries are checked. Throws to refuse the file.
   */
  readonly prepare?: (input: unknown, dir: string) => void;
}

/** The engine's sections only, no feature's (a test or tool that needs no feature). */
export const coreConfigRules: ConfigRules = { schema: coreConfigSchema, checks: [] };

/** At most this many uses of one YAML anchor (nested aliases count as many): the yaml library's own limit, against alias bombs. */
export const MAX_YAML_ALIASES = 100;

/** Where each path of the document is, so errors can say line and column. */
class Locator {
  constructor(
    private doc?: Document,
    private lines?: LineCounter,
    private readonly label = "config",
    /** The file's text, read by the fast path: parsed into a document only when a message needs a position. */
    private text?: string,
  ) {}

  /** `file:line:col` of the value at `path` (or of the key when `key` is true). */
  at(path: Path, key = false): string {
    if (this.text !== undefined) {
      const YAML = yamlLib();
      this.lines = new YAML.LineCounter();
      this.doc = YAML.parseDocument(this.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: false });
      this.text = undefined;
    }
    if (!this.doc || !this.lines) return "";
    const { isMap, isPair, isScalar } = yamlLib();
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
  return INVISIBLE_ONE.test(name) || CONTROL.test(name) ? quoteName(name) : name;
}

/** INVISIBLE, not global: `test` keeps no position between names. */
// eslint-disable-next-line no-misleading-character-class -- INVISIBLE again: what it finds
const INVISIBLE_ONE = new RegExp(INVISIBLE.source, "u");
// eslint-disable-next-line no-control-regex -- control characters: what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

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
/**
 * The keys the schema knows at `path`. In a union of objects (a discriminated union such as
 * the health checks' `type`), the member the written value selects: the one whose literal
 * fields (its discriminator) match `input` at that place; the first object member otherwise.
 */
function knownKeys(schema: z.ZodType, path: Path, input?: unknown): string[] {
  type Def = { type: string; innerType?: z.ZodType; options?: z.ZodType[]; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; element?: z.ZodType; values?: unknown[] };
  const defOf = (t: z.ZodType): Def => (t as unknown as { _zod: { def: Def } })._zod.def;
  let s: z.ZodType | undefined = schema;
  let v: unknown = input;
  const unwrap = (t: z.ZodType): z.ZodType => {
    let cur = t;
    for (;;) {
      const def = defOf(cur);
      if ((def.type === "optional" || def.type === "default" || def.type === "nullable") && def.innerType) cur = def.innerType;
      else return cur;
    }
  };
  /** The object member's literal fields all match the value (at least one literal field). */
  const selects = (o: z.ZodType, value: unknown): boolean => {
    if (!value || typeof value !== "object") return false;
    const literals = Object.entries(defOf(o).shape ?? {}).filter(([, f]) => defOf(unwrap(f)).type === "literal");
    return literals.length > 0 && literals.every(([k, f]) => (defOf(unwrap(f)).values ?? []).includes((value as Record<string, unknown>)[k]));
  };
  const objectOf = (t: z.ZodType, value: unknown): z.ZodType | undefined => {
    const u = unwrap(t);
    const def = defOf(u);
    if (def.type === "union" && def.options) {
      const objects = def.options.map(unwrap).filter((o) => defOf(o).type === "object");
      return objects.find((o) => selects(o, value)) ?? objects[0];
    }
    return u;
  };
  for (const step of path) {
    if (!s) return [];
    const u = objectOf(s, v);
    if (!u) return [];
    const def = defOf(u);
    if (def.type === "object" && def.shape) s = def.shape[String(step)];
    else if (def.type === "record") s = def.valueType;
    else if (def.type === "array") s = def.element;
    else return [];
    v = v && typeof v === "object" ? (v as Record<string | number, unknown>)[step] : undefined;
  }
  if (!s) return [];
  const u = objectOf(s, v);
  const def = u ? defOf(u) : undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/** `input`: the value the issues are about, which selects a union's member when keys are suggested. */
function issueMessages(schema: z.ZodType, issues: z.core.$ZodIssue[], prefix: Path, loc: Locator, written: (p: Path) => Path = (p) => p, input?: unknown): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as Path)];
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, issue.path as Path, input);
      for (const k of issue.keys) {
        const hint = suggest(k, known);
        const at = written([...path, k]);
        out.push(
          `${formatPath(at)}: unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (expected one of: ${known.join(", ")})` : ""}${loc.at(at, true)}`,
        );
      }
      continue;
    }
    if (issue.code === "invalid_union") {
      // Missing altogether (every form says "received undefined"): say so, naming the first form's type.
      const missing = (issue.errors ?? []).map((errs) => errs.find((e) => e.path.length === 0 && e.code === "invalid_type" && /received undefined$/.test(e.message)));
      if (missing.length > 0 && missing.every((e) => e !== undefined)) {
        out.push(`${formatPath(path)}: required (${(missing[0] as { expected?: string }).expected}) but missing${loc.at(path)}`);
        continue;
      }
      // When one form alone fits the value's shape (its issues are all inside the value), say what is wrong inside it.
      const fits = (issue.errors ?? []).filter((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0));
      if (fits.length === 1 && path[path.length - 1] === "templates") {
        out.push(...issueMessages(schema, fits[0].map((e) => ({ ...e, path: [...(issue.path as Path), ...(e.path as Path)] }) as z.core.$ZodIssue), prefix, loc, written, input));
        continue;
      }
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
  if (last === "from") return `expected "store://<store>/<key>", "<store>:<key>", {store, key, version}, {provider, key, version} or {service: "svc://<type>/<instance>"}`;
  if (last === "templates") return "expected a map of templates by name, or a list of {name, format, env, out, template_path}";
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

/**
 * A store entry as dsops's files write it, brought to ours: a type alias (`hashicorp.vault`),
 * settings nested under `config:` (dsops's newer examples), another spelling of a setting
 * (Vault's `addr`). `moved` maps each key of the result to where it was written, relative to
 * the entry, so messages point at what the user wrote; the problems are the conflicts.
 */
export function normaliseStoreEntry(raw: Record<string, unknown>): { entry: Record<string, unknown>; moved: Map<string, Path>; problems: Array<{ path: Path; message: string; key?: boolean }> } {
  const moved = new Map<string, Path>();
  const problems: Array<{ path: Path; message: string; key?: boolean }> = [];
  const entry: Record<string, unknown> = Object.create(null);
  // A Doppler store's `config:` is a setting of its own (the Doppler config, `config: prd`).
  const configIsSetting = raw.type === "doppler" && typeof raw.config === "string";
  for (const [k, v] of Object.entries(raw)) if (k !== "config" || configIsSetting) entry[k] = v;
  if (typeof entry.type === "string" && Object.hasOwn(storeTypeAliases, entry.type)) entry.type = storeTypeAliases[entry.type];
  if (Object.hasOwn(raw, "config") && !configIsSetting) {
    const nested = raw.config;
    if (!nested || typeof nested !== "object" || Array.isArray(nested)) problems.push({ path: ["config"], message: "expected a map of the store's settings (config: {values: …})" });
    else
      for (const [k, v] of Object.entries(nested)) {
        if (k === "type") {
          problems.push({ path: ["config", k], message: "the store type goes beside config:, not inside it", key: true });
          continue;
        }
        if (Object.hasOwn(entry, k)) {
          problems.push({ path: ["config", k], message: `"${k}" is given both beside config: and inside it; keep one`, key: true });
          continue;
        }
        entry[k] = v;
        moved.set(k, ["config", k]);
      }
  }
  const aliases = storeKeyAliases[entry.type as StoreType] ?? {};
  for (const [theirs, ours] of Object.entries(aliases)) {
    if (!Object.hasOwn(entry, theirs)) continue;
    const at = moved.get(theirs) ?? [theirs];
    if (Object.hasOwn(entry, ours)) {
      problems.push({ path: at, message: `"${theirs}" is another spelling of "${ours}", which is given too; keep one`, key: true });
      delete entry[theirs];
      continue;
    }
    // Renamed in place: messages keep the order the settings are written in.
    const renamed = Object.fromEntries(Object.entries(entry).map(([k, v]) => [k === theirs ? ours : k, v]));
    for (const k of Object.keys(entry)) delete entry[k];
    Object.assign(entry, renamed);
    moved.delete(theirs);
    moved.set(ours, at);
  }
  return { entry, moved, problems };
}

/** Options of `parseStoreSettings`. */
export interface StoreSettingsOptions {
  /**
   * An unset `${VAR}` is not a problem of the file but of the store's use: it comes back in
   * `deferred` (each formatted like a problem), and the settings are checked without it (plan).
   */
  deferUnsetEnv?: boolean;
}

/** Check a store entry against its type's settings schema. */
export function parseStoreSettings(
  raw: unknown,
  path: Path,
  env: NodeJS.ProcessEnv,
  loc: Locator = new Locator(),
  opts: StoreSettingsOptions = {},
): { settings?: StoreSettings; problems: string[]; deferred: string[] } {
  const problems: string[] = [];
  const deferred: string[] = [];
  const given = (raw as { type?: unknown })?.type;
  if (typeof given !== "string") return { problems: [`${formatPath([...path, "type"])}: missing store type${loc.at(path)}`], deferred };
  const norm = normaliseStoreEntry(raw as Record<string, unknown>);
  for (const p of norm.problems) problems.push(`${formatPath([...path, ...p.path])}: ${p.message}${loc.at([...path, ...p.path], p.key)}`);
  const type = norm.entry.type as string;
  const shown = type === given ? `"${type}"` : `"${given}" (= ${type})`;
  // A type no built-in has may be a plugin's (loaded before the file is checked: `plugins:`).
  const plugin = (storeTypes as string[]).includes(type) ? undefined : pluginStoreType(type);
  if (!(storeTypes as string[]).includes(type) && !plugin) {
    if ((plannedStoreTypes as readonly string[]).includes(type))
      return { problems: [`${formatPath([...path, "type"])}: store type ${shown} is not supported yet (supported: ${storeTypes.join(", ")})${loc.at([...path, "type"])}`], deferred };
    const hint = suggest(type, [...storeTypes, ...plannedStoreTypes, ...Object.keys(storeTypeAliases)]);
    return {
      problems: [
        `${formatPath([...path, "type"])}: unknown store type "${type}"${hint ? ` (did you mean "${hint}"?)` : ` (supported: ${storeTypes.join(", ")})`}${loc.at([...path, "type"])}`,
      ],
      deferred,
    };
  }
  // A path inside the normalised entry, back to where the user wrote it.
  const written = (p: Path): Path => {
    const rel = p.slice(path.length);
    const at = rel.length ? norm.moved.get(String(rel[0])) : undefined;
    return at ? [...path, ...at, ...rel.slice(1)] : p;
  };
  const envProblems: Array<{ path: Path; message: string }> = [];
  const expanded = expandEnv(norm.entry, env, path, envProblems);
  const unsetAt = new Set<string>();
  for (const p of envProblems) {
    const w = written(p.path);
    if (opts.deferUnsetEnv) {
      unsetAt.add(formatPath(p.path));
      deferred.push(`${formatPath(w)}: ${p.message}${loc.at(w)}`);
    } else problems.push(`${formatPath(w)}: ${p.message}${loc.at(w)}`);
  }
  const schema: z.ZodType = plugin ? plugin.settings : storeSettingsSchemas[type as StoreType];
  // A plugin's schema checks the entry's settings without `type` (the plugin does not repeat its own name).
  const input = plugin ? withoutType(expanded, pluginCommonKeys) : expanded;
  const parsed = schema.safeParse(input);
  // timeout_ms and retries of a plugin's store: read by the resolver, checked here.
  const common = plugin ? pluginCommonSettings.safeParse(onlyKeys(expanded, pluginCommonKeys)) : undefined;
  if (common && !common.success) problems.push(...issueMessages(pluginCommonSettings, common.error.issues, path, loc, written, expanded));
  if (!parsed.success) {
    const issues = parsed.error.issues
      .filter((i) => !unsetAt.has(formatPath([...path, ...(i.path as Path)])))
      .map((i) => {
        const at = i.path.length ? norm.moved.get(String(i.path[0])) : undefined;
        if (i.code === "unrecognized_keys") return i; // keys of the entry itself; mapped below
        return at ? ({ ...i, path: [...at, ...i.path.slice(1)] } as z.core.$ZodIssue) : i;
      });
    problems.push(...issueMessages(schema, issues, path, loc, written, input));
    if (!issues.length && deferred.length) {
      // Only the unset variables spoil the settings: plan goes on with what the file says.
      return { settings: { ...(norm.entry as object), type } as StoreSettings, problems, deferred };
    }
  }
  if (parsed.success && plugin) return { settings: common?.success ? ({ ...(parsed.data as object), ...common.data, type } as unknown as StoreSettings) : undefined, problems, deferred };
  return { settings: parsed.success ? (parsed.data as StoreSettings) : undefined, problems, deferred };
}

/** The entry without `type` and the given keys. */
function withoutType(entry: unknown, drop: readonly string[] = []): unknown {
  if (!entry || typeof entry !== "object") return entry;
  const { type: _type, ...rest } = entry as Record<string, unknown>;
  for (const k of drop) delete rest[k];
  return rest;
}

/** The entry's values of these keys only. */
function onlyKeys(entry: unknown, keys: readonly string[]): Record<string, unknown> {
  const e = (entry && typeof entry === "object" ? entry : {}) as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => Object.hasOwn(e, k)).map((k) => [k, e[k]]));
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

/**
 * The record without a prototype: `constructor`, `toString` … are names like any other, never
 * inherited members. In place, not copied: it is the schema's output, a fresh object of ours.
 */
function ownRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.setPrototypeOf(r, null) as Record<string, T>;
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

/**
 * dsops's service reference `svc://<type>/<instance>[?kind=<kind>]`: its parts, or what is wrong
 * with it.
 */
export function parseServiceUri(uri: string): { type: string; instance: string; kind?: string } | string {
  const m = /^svc:\/\/([^/?#]+)\/([^/?#]+)(?:\?kind=([^&#]+))?$/.exec(uri);
  if (!m) return `service reference "${uri}": expected svc://<type>/<instance> or svc://<type>/<instance>?kind=<kind> (e.g. svc://postgresql/prod-db?kind=password)`;
  return { type: m[1], instance: m[2], ...(m[3] ? { kind: m[3] } : {}) };
}

/** Why a variable's `service:` (a `services:` name or `svc://…`) names no service of the file, or undefined. */
function checkServiceName(service: string, names: readonly string[]): string | undefined {
  let name = service;
  if (service.startsWith("svc://")) {
    const p = parseServiceUri(service);
    if (typeof p === "string") return p;
    name = p.instance;
  }
  if (names.includes(name)) return undefined;
  const hint = suggest(name, names);
  return `service "${name}" is not in services:${hint ? ` (did you mean "${hint}"?)` : ""}; kept as a note, nothing rotates it`;
}

/** Build a checked Config from a plain object (already parsed YAML, or an inline Pulumi config). */
function build(rules: ConfigRules, input: unknown, opts: LoadOptions & { loc: Locator; file?: string; protoFree?: boolean }): Config {
  const env = opts.env ?? process.env;
  const loc = opts.loc;
  rules.prepare?.(input, opts.dir ?? (opts.file ? dirname(opts.file) : process.cwd()));
  // Checked first: the schema would drop such keys without a word.
  const problems = (opts.protoFree ? [] : protoKeyPaths(input)).map((p) => `${formatPath(p)}: "__proto__" cannot be a name here (JavaScript reserves it, so it would be lost); rename it${loc.at(p, true)}`);
  const warnings: string[] = [];
  const focus = opts.focusEnv;
  /** A path under another env than the one the command works on. */
  const elsewhere = (path: Path) => focus !== undefined && path[0] === "envs" && path.length > 1 && String(path[1]) !== focus;
  const schema = rules.schemaFor ? rules.schemaFor(input ?? {}) : rules.schema;
  let parsed = schema.safeParse(input ?? {});
  if (!parsed.success && focus !== undefined && input && typeof input === "object") {
    // Other envs' shape problems become warnings; the file is read again without those envs.
    const other = parsed.error.issues.filter((i) => elsewhere(i.path as Path));
    if (other.length) {
      warnings.push(...issueMessages(schema, other, [], loc, undefined, input));
      const envs = { ...((input as { envs?: Record<string, unknown> }).envs ?? {}) };
      for (const i of other) delete envs[String(i.path[1])];
      parsed = schema.safeParse({ ...(input as object), envs });
    }
  }
  if (!parsed.success) {
    problems.push(...issueMessages(schema, parsed.error.issues, [], loc, undefined, input));
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
  /** An error, or a warning when it belongs to another env than the one in focus. */
  const problem = (path: Path, message: string) => (elsewhere(path) ? warnings : problems).push(message);
  const storeProblems: Record<string, string[]> = Object.create(null);

  const stores: Record<string, StoreSettings> = Object.create(null);
  for (const section of ["secretStores", "providers"] as const) {
    for (const [name, entry] of Object.entries(raw[section])) {
      if (stores[name]) continue; // secretStores win over legacy providers of the same name
      const r = parseStoreSettings(entry, [section, name], env, loc, { deferUnsetEnv: opts.deferUnsetEnv });
      problems.push(...r.problems);
      if (r.settings) stores[name] = r.settings;
      if (r.deferred.length) {
        storeProblems[name] = r.deferred;
        for (const d of r.deferred) warnings.push(d.replace(/( at [^ ]+:\d+:\d+)?$/, (at) => `; a command that calls store "${name}" stops here${at}`));
      }
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
  const serviceNames = Object.keys(raw.services);
  for (const [envName, vars] of Object.entries(raw.envs)) {
    envs[envName] = Object.create(null);
    for (const [varName, spec] of Object.entries(vars)) {
      const path: Path = ["envs", envName, varName];
      const badName = checkVariableName(varName);
      if (badName?.error) {
        problem(path, `${formatPath(path)}: ${badName.error}${loc.at(path, true)}`);
        continue;
      }
      if (badName?.warning) warnings.push(`${formatPath(path)}: ${badName.warning}${loc.at(path, true)}`);
      if (spec.literal === undefined && spec.from === undefined) {
        problem(path, `${formatPath(path)}: needs "literal" or "from"${loc.at(path)}`);
        continue;
      }
      if (spec.service !== undefined) {
        const why = checkServiceName(spec.service, serviceNames);
        if (why) warnings.push(`${formatPath([...path, "service"])}: ${why}${loc.at([...path, "service"])}`);
      }
      let ref: SecretRef | undefined;
      let serviceRef: string | undefined;
      const from = spec.from;
      const svc = typeof from === "string" ? (from.startsWith("svc://") ? from : undefined) : from && "service" in from ? from.service : undefined;
      if (spec.literal === undefined && svc !== undefined) {
        const where = typeof from === "string" ? [...path, "from"] : [...path, "from", "service"];
        const bad = parseServiceUri(svc);
        if (typeof bad === "string") {
          problem(path, `${formatPath([...path, "from"])}: ${bad}${loc.at(where)}`);
          continue;
        }
        const why = checkServiceName(svc, serviceNames);
        if (why) warnings.push(`${formatPath([...path, "from"])}: ${why}${loc.at(where)}`);
        serviceRef = svc;
      } else if (spec.literal === undefined && from !== undefined) {
        try {
          ref = parseFrom(from as Exclude<typeof from, { service: string }>);
        } catch (e) {
          problem(path, `${formatPath([...path, "from"])}: ${(e as Error).message}${loc.at([...path, "from"])}`);
          continue;
        }
        // Where a message about the store points (made only for a message).
        const where = (): Path => (typeof from === "string" || ("store" in from && from.store.startsWith("store://")) ? [...path, "from"] : [...path, "from", "store" in from ? "store" : "provider"]);
        if (!allStoreNames.includes(ref.store)) {
          if (Object.hasOwn(raw.services, ref.store))
            problem(path, `${formatPath([...path, "from"])}: "${ref.store}" is a service (a rotation target), not a secret store${loc.at(where())}`);
          else {
            const hint = suggest(ref.store, allStoreNames);
            problem(
              path,
              `${formatPath([...path, "from"])}: unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : allStoreNames.length ? ` (stores: ${allStoreNames.join(", ")})` : " (no secretStores are defined)"}${loc.at(where())}`,
            );
          }
          continue;
        }
        const type = stores[ref.store]?.type;
        if (ref.options && type && type !== "aws.secretsmanager" && type !== "aws") {
          problem(
            path,
            `${formatPath([...path, "from"])}: ${Object.keys(ref.options).map((k) => `?${k}=`).join(", ")} is read only by aws.secretsmanager stores; store "${ref.store}" is ${type} (use ?version=)${loc.at(where())}`,
          );
          continue;
        }
      }
      let transforms: TransformStep[];
      try {
        transforms = compileTransforms(spec.transform, raw.transforms);
      } catch (e) {
        problem(path, `${formatPath([...path, "transform"])}: ${(e as Error).message}${loc.at([...path, "transform"])}`);
        continue;
      }
      envs[envName][varName] = { name: varName, spec, ...(ref ? { ref } : {}), ...(serviceRef ? { serviceRef } : {}), transforms, optional: spec.optional === true };
    }
  }

  if (rules.checks.length) {
    const findings: Findings = {
      error: (path, message, key) => problem(path, `${formatPath(path)}: ${message}${loc.at(path, key)}`),
      warn: (path, message, key) => warnings.push(`${formatPath(path)}: ${message}${loc.at(path, key)}`),
      parse: (schema, value, prefix, only) => {
        const r = schema.safeParse(value);
        if (r.success) return r.data;
        problems.push(...issueMessages(schema, issuesOnly(r.error.issues, only), prefix, loc, undefined, value));
        return undefined;
      },
    };
    const ctx: ConfigCheckContext = { refOf: (e, v) => envs[e]?.[v]?.ref, findings, options: opts };
    for (const check of rules.checks) raw = check(raw, ctx);
  }

  if (problems.length) throw new ConfigError(problems.join("\n"), problems);
  return {
    ...(opts.file ? { file: opts.file } : {}),
    dir: opts.dir ?? (opts.file ? dirname(opts.file) : process.cwd()),
    raw,
    stores,
    envs,
    warnings,
    ...(Object.keys(storeProblems).length ? { storeProblems } : {}),
  };
}

/**
 * YAML aliases that cannot be resolved, before anything is built from them, with their position:
 * an alias with no anchor before it (`*nope`), one inside the node it names, too many of them.
 */
function aliasProblems(doc: Document, where: (node: YamlNode) => string): string[] {
  const YAML = yamlLib();
  const { isAlias } = YAML;
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
  const YAML = yamlLib();
  const { isAlias, isPair } = YAML;
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

/**
 * Each repeated key of a mapping (the error and position the yaml library gives with
 * `uniqueKeys: true`: keys equal when both are scalars of the same value), one set per map.
 */
function duplicateKeys(doc: Document): Array<{ offset: number; message: string }> {
  const YAML = yamlLib();
  const { isScalar } = YAML;
  const found: Array<{ offset: number; message: string }> = [];
  YAML.visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) found.push({ offset: pair.key.range?.[0] ?? 0, message: "Map keys must be unique" });
        else seen.add(pair.key.value);
      }
    },
  });
  return found;
}

function parseWith(rules: ConfigRules, text: string, opts: LoadOptions & { file?: string } = {}): Config {
  const label = opts.label ?? opts.file ?? "config";
  // Most files are plain YAML: read without building a document (a node per scalar, most of the
  // time a large file costs); a message that needs a position parses the document then.
  const fast = opts.yamlFastPath === false ? undefined : fastParseYaml(text);
  // (It never reads a `__proto__` key: those are the library's to read and ours to refuse.)
  if (fast) return build(rules, fast.value, { ...opts, loc: new Locator(undefined, undefined, label, text), protoFree: true });
  const YAML = yamlLib();
  const lines = new YAML.LineCounter();
  // Duplicate keys are found by `duplicateKeys` (the library's own check compares each key with
  // every earlier one of its map: quadratic, most of `plan`'s time at 10,000 variables).
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const errors = [...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message })), ...duplicateKeys(doc)];
  if (errors.length) {
    const problems = errors
      .sort((a, b) => a.offset - b.offset)
      .map((e) => {
        const pos = lines.linePos(e.offset);
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
