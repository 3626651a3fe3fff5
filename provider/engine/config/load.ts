import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import YAML, { LineCounter, isMap, isPair, isScalar, type Document } from "yaml";
import { z } from "zod";
import { ConfigError, DsopsError } from "../errors";
import { parseFrom, type SecretRef } from "../refs";
import { suggest } from "../suggest";
import { compileTransforms, type TransformStep } from "../transforms";
import { plannedStoreTypes, storeSettingsSchemas, storeTypes, type StoreSettings, type StoreType } from "../../stores/settings";
import { configSchema, type RawConfig, type VariableSpec } from "./schema";

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
}

export interface LoadOptions {
  /** Environment used for `${VAR}` expansion (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Folder for relative paths (default the file's folder, or the working directory). */
  dir?: string;
  /** Name shown in errors (default the file path, or "config"). */
  label?: string;
}

type Path = Array<string | number>;

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
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
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
    if (issue.code === "invalid_type" && (issue as { input?: unknown }).input === undefined) {
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

/** Build a checked Config from a plain object (already parsed YAML, or an inline Pulumi config). */
function build(input: unknown, opts: LoadOptions & { loc: Locator; file?: string }): Config {
  const env = opts.env ?? process.env;
  const loc = opts.loc;
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const problems = issueMessages(configSchema, parsed.error.issues, [], loc);
    throw new ConfigError(problems.join("\n"), problems);
  }
  const raw = parsed.data;
  const problems: string[] = [];

  const stores: Record<string, StoreSettings> = {};
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

  const envs: Record<string, Record<string, Variable>> = {};
  for (const [envName, vars] of Object.entries(raw.envs)) {
    envs[envName] = {};
    for (const [varName, spec] of Object.entries(vars)) {
      const path: Path = ["envs", envName, varName];
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
        if (!allStoreNames.includes(ref.store)) {
          const where = typeof spec.from === "string" || (typeof spec.from === "object" && "store" in spec.from && spec.from.store.startsWith("store://")) ? [...path, "from"] : [...path, "from", "store" in (spec.from as object) ? "store" : "provider"];
          if (raw.services[ref.store])
            problems.push(`${formatPath([...path, "from"])}: "${ref.store}" is a service (a rotation target), not a secret store${loc.at(where)}`);
          else {
            const hint = suggest(ref.store, allStoreNames);
            problems.push(
              `${formatPath([...path, "from"])}: unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : allStoreNames.length ? ` (stores: ${allStoreNames.join(", ")})` : " (no secretStores are defined)"}${loc.at(where)}`,
            );
          }
          continue;
        }
      }
      let transforms: TransformStep[] = [];
      try {
        transforms = compileTransforms(spec.transform, raw.transforms);
      } catch (e) {
        problems.push(`${formatPath([...path, "transform"])}: ${(e as Error).message}${loc.at([...path, "transform"])}`);
        continue;
      }
      envs[envName][varName] = { name: varName, spec, ...(ref ? { ref } : {}), transforms, optional: spec.optional === true };
    }
  }

  if (problems.length) throw new ConfigError(problems.join("\n"), problems);
  return { ...(opts.file ? { file: opts.file } : {}), dir: opts.dir ?? (opts.file ? dirname(opts.file) : process.cwd()), raw, stores, envs };
}

/** Parse dsops.yaml text. */
export function parseConfig(text: string, opts: LoadOptions & { file?: string } = {}): Config {
  const label = opts.label ?? opts.file ?? "config";
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      return `${e.message.split("\n")[0]}${pos ? ` at ${label}:${pos.line}:${pos.col}` : ""}`;
    });
    throw new ConfigError(problems.join("\n"), problems, { hint: "dsops.yaml must be valid YAML" });
  }
  return build(doc.toJS(), { ...opts, loc: new Locator(doc, lines, label) });
}

/** Load a dsops.yaml file. */
export function loadConfigFile(file: string, opts: LoadOptions = {}): Config {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DsopsError(`cannot read configuration ${file}: ${code === "ENOENT" ? "no such file" : code ?? "error"}`, {
      hint: code === "ENOENT" ? "run `dsops init` to create one, or pass --config PATH" : undefined,
    });
  }
  return parseConfig(text, { ...opts, file: abs, label: opts.label ?? file });
}

/** Build a Config from an object (inline configuration in a Pulumi program or stack config). */
export function configFromObject(obj: unknown, opts: LoadOptions = {}): Config {
  return build(obj, { ...opts, loc: new Locator(undefined, undefined, opts.label ?? "config") });
}
