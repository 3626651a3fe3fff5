import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync, writeSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { isoNow } from "../core/clock";
import { durationMs, formatDuration } from "../core/duration";
import { DsopsError } from "../core/errors";
import { suggest } from "../core/suggest";
import type { Config, ConfigCheck, Findings, Path } from "../engine/config/load";
import type { RawConfig } from "../engine/config/schema";
import type { GeneratorPolicy } from "../rotation/settings";
import type { EnvironmentRule, PolicySettings } from "./policy-settings";

/**
 * dsops's `policies:` enforced. The check at load (`policyConfigCheck`, run by the composed
 * loader) refuses stores that break `allowed_providers` / `blocked_providers` /
 * `require_encryption`, rules that cannot be met, and `audit_logging.include_values: true`. The
 * faces call `checkValue` before writing a value, `checkOutput` before writing a file, and
 * `audit` after each access. `environment_rules.<env>` overrides the top-level rules (key by
 * key; `secret_complexity` and `output_restrictions` field by field) for that env.
 */

/** The rules that apply to one env (or to none: the top-level ones). */
export type Rules = EnvironmentRule;

/** The top-level rules with `environment_rules[env]` laid over them. */
export function rulesFor(p: PolicySettings | undefined, env?: string): Rules {
  if (!p) return {};
  const o = env !== undefined ? p.environment_rules?.[env] : undefined;
  const base: Rules = {
    allowed_providers: p.allowed_providers,
    blocked_providers: p.blocked_providers,
    require_encryption: p.require_encryption,
    secret_complexity: p.secret_complexity,
    forbidden_patterns: p.forbidden_patterns,
    required_patterns: p.required_patterns,
    output_restrictions: {
      ...(p.output?.allowed_paths ? { allowed_paths: p.output.allowed_paths } : {}),
      ...(p.output?.denied_paths ? { blocked_paths: p.output.denied_paths } : {}),
      ...(p.output?.require_gitignore !== undefined ? { require_gitignore: p.output.require_gitignore } : {}),
      ...p.output_restrictions,
    },
  };
  if (!o) return base;
  const defined = <T extends object>(x: T | undefined) => Object.fromEntries(Object.entries(x ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    ...base,
    ...defined(o),
    secret_complexity: { ...base.secret_complexity, ...defined(o.secret_complexity) },
    output_restrictions: { ...base.output_restrictions, ...defined(o.output_restrictions) },
  };
}

/**
 * Whether a store keeps values encrypted at rest and in transit, and why not. The table the
 * README documents: literal (values in dsops.yaml) and env (the process environment) never;
 * file (AES-256-GCM under its key) yes; aws.secretsmanager, aws.ssm (SecureString, KMS) and
 * gcp.secretmanager and gcp yes unless their endpoint is plain http / `insecure: true`; vault yes unless
 * its address is http://; the Azure stores yes (https only). A type this table does not know is refused.
 */
export function storeEncryption(store: { type: string; [k: string]: unknown }): { ok: true } | { ok: false; why: string } {
  const plainHttp = (u: unknown) => typeof u === "string" && /^http:\/\//i.test(u.trim());
  switch (store.type) {
    case "literal":
      return { ok: false, why: "a literal store keeps its values in clear in dsops.yaml" };
    case "env":
      return { ok: false, why: "an env store reads values from the process environment, in clear" };
    case "file":
    case "pass": // gpg-encrypted files
    case "keychain": // the OS keychain keeps items encrypted
      return { ok: true };
    case "keepassxc":
      return { ok: true }; // a KDBX database is encrypted at rest
    case "lastpass":
      return { ok: true }; // lpass talks HTTPS to LastPass and decrypts locally
    case "aws.secretsmanager":
    case "aws.ssm":
    case "aws.sts":
    case "aws":
      return plainHttp(store.endpoint) ? { ok: false, why: `its endpoint ${String(store.endpoint)} is plain http (not encrypted in transit)` } : { ok: true };
    case "aws.sso":
      return plainHttp(store.endpoint) ? { ok: false, why: `its endpoint ${String(store.endpoint)} is plain http (not encrypted in transit)` } : { ok: true };
    case "vault":
      return plainHttp(store.address) ? { ok: false, why: `its address ${String(store.address)} is plain http (not encrypted in transit)` } : { ok: true };
    case "bitwarden":
      return { ok: true }; // the vault is encrypted client-side by bw, which talks https only
    case "akeyless":
      return plainHttp(store.gateway_url) ? { ok: false, why: `its gateway_url ${String(store.gateway_url)} is plain http (not encrypted in transit)` } : { ok: true };
    case "infisical":
      return plainHttp(store.site_url) ? { ok: false, why: `its site_url ${String(store.site_url)} is plain http (not encrypted in transit)` } : { ok: true };
    case "doppler":
      return plainHttp(store.api_url) ? { ok: false, why: `its api_url ${String(store.api_url)} is plain http (not encrypted in transit)` } : { ok: true };
    case "onepassword":
      return plainHttp(store.connect_host) ? { ok: false, why: `its connect_host ${String(store.connect_host)} is plain http (not encrypted in transit)` } : { ok: true };
    case "gcp.secretmanager":
    case "gcp":
      return store.insecure === true ? { ok: false, why: "insecure: true sends values in plain-text gRPC" } : { ok: true };
    case "azure.keyvault":
    case "azure":
    case "azure.identity":
      return { ok: true }; // vault_url must be https:// (checked by the store); Entra tokens come over HTTPS
    default:
      return { ok: false, why: `dsops does not know whether a ${store.type} store encrypts its values` };
  }
}

/** Why a store breaks the rules (allowed/blocked providers match the store's type or its name), or undefined. */
function storeProblem(rules: Rules, name: string, store: { type: string; [k: string]: unknown }, where: string): string | undefined {
  const hit = (list?: string[]) => list?.some((x) => x === store.type || x === name);
  if (hit(rules.blocked_providers)) return `store "${name}" (${store.type}) is blocked by ${where}blocked_providers`;
  if (rules.allowed_providers && !hit(rules.allowed_providers))
    return `store "${name}" (${store.type}) is not in ${where}allowed_providers (${rules.allowed_providers.join(", ")})`;
  if (rules.require_encryption) {
    const e = storeEncryption(store);
    if (!e.ok) return `store "${name}" (${store.type}) breaks ${where}require_encryption: ${e.why}`;
  }
  return undefined;
}

const CLASSES = [
  ["require_upper", /[A-Z]/, "upper-case letter"],
  ["require_lower", /[a-z]/, "lower-case letter"],
  ["require_numbers", /[0-9]/, "digit"],
  ["require_special", /[^A-Za-z0-9]/, "character other than a letter or a digit"],
] as const;

/** What is wrong with a value under `rules`, each problem named by its rule (never the value). */
export function valueProblems(rules: Rules, value: string): string[] {
  const out: string[] = [];
  const c = rules.secret_complexity ?? {};
  const len = [...value].length;
  if (c.min_length !== undefined && len < c.min_length) out.push(`shorter than secret_complexity.min_length ${c.min_length} (${len} characters)`);
  if (c.max_length !== undefined && len > c.max_length) out.push(`longer than secret_complexity.max_length ${c.max_length} (${len} characters)`);
  for (const [key, re, what] of CLASSES) if (c[key] && !re.test(value)) out.push(`has no ${what} (secret_complexity.${key})`);
  (rules.forbidden_patterns ?? []).forEach((p, i) => {
    if (new RegExp(p, "u").test(value)) out.push(`matches forbidden_patterns[${i}] /${p}/`);
  });
  (rules.required_patterns ?? []).forEach((p, i) => {
    if (!new RegExp(p, "u").test(value)) out.push(`does not match required_patterns[${i}] /${p}/`);
  });
  return out;
}

/**
 * Refuse a value `secrets set` would write to `store`/`key`: the top-level rules, and the rules
 * of every env with a variable that reads that key.
 */
export function checkValue(config: Config, store: string, key: string, value: string): void {
  const p = config.raw.policies;
  if (!p) return;
  const envs = Object.entries(config.envs)
    .filter(([, vars]) => Object.values(vars).some((v) => v.ref?.store === store && v.ref.key === key))
    .map(([env]) => env);
  const scopes: Array<[string, Rules]> = [["policies", rulesFor(p)], ...envs.filter((e) => p.environment_rules?.[e]).map((e): [string, Rules] => [`policies.environment_rules.${e}`, rulesFor(p, e)])];
  for (const [scope, rules] of scopes) {
    const problems = valueProblems(rules, value);
    if (problems.length)
      throw new DsopsError(`the value for store "${store}", key ${key} breaks ${scope}: ${problems.join("; ")}; nothing was written`, {
        hint: "choose a value that meets the policy (see policies.secret_complexity, forbidden_patterns, required_patterns)",
      });
  }
}

/** Refuse a `render --out` the output restrictions of `env` forbid. */
export function checkOutput(config: Config, env: string, out: string, ttlMs: number | undefined): void {
  const p = config.raw.policies;
  if (!p) return;
  const r = rulesFor(p, env).output_restrictions ?? {};
  const abs = resolve(out);
  const rel = relative(config.dir, abs);
  const inside = rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
  // Loaded only here: `get` and `render` without path rules load no matcher (start-up time).
  const matches = (patterns: string[]) => inside && (require("ignore") as typeof import("ignore"))().add(patterns).ignores(rel);
  if (r.blocked_paths?.length && matches(r.blocked_paths))
    throw new DsopsError(`--out ${out}: the path is blocked by policies.output_restrictions.blocked_paths (${r.blocked_paths.join(", ")}); nothing was written`, {
      hint: "write the file elsewhere, or change the policy",
    });
  if (r.allowed_paths && !matches(r.allowed_paths))
    throw new DsopsError(`--out ${out}: the path is not in policies.output_restrictions.allowed_paths (${r.allowed_paths.join(", ")}); nothing was written`, {
      hint: `allowed paths are relative to ${config.dir}`,
    });
  if (r.max_ttl !== undefined) {
    const max = durationMs(r.max_ttl);
    if (ttlMs === undefined)
      throw new DsopsError(`--out ${out}: policies.output_restrictions.max_ttl (${formatDuration(max)}) requires --ttl; nothing was written`, { hint: `pass --ttl ${formatDuration(max)} or less` });
    if (ttlMs > max)
      throw new DsopsError(`--ttl ${formatDuration(ttlMs)} is longer than policies.output_restrictions.max_ttl (${formatDuration(max)}); nothing was written`, {
        hint: `pass --ttl ${formatDuration(max)} or less`,
      });
  }
  if (r.require_gitignore) {
    const { git } = require("./git") as typeof import("./git");
    const g = git(dirname(abs), ["check-ignore", "-q", "--", abs], { allowFail: true });
    if (g.status === 1)
      throw new DsopsError(`--out ${out}: the path is not ignored by git and policies.output_restrictions.require_gitignore is on; nothing was written`, {
        hint: `add it to .gitignore (dsops guard gitignore --fix adds the usual outputs)`,
      });
    if (g.status !== 0)
      throw new DsopsError(`--out ${out}: policies.output_restrictions.require_gitignore is on but git cannot tell whether the path is ignored (not in a git repository?); nothing was written`, {
        hint: "render into a git work tree whose .gitignore covers the file",
      });
  }
}

/** One line of the audit log: who did what with which variables and keys, never a value. */
export interface AuditEntry {
  /**
   * The CLI command; or, through the library API, `library <method>` (`library resolveEnv`,
   * `library resolveRef`, `library fetch`); or, through the Pulumi dynamic resources,
   * `pulumi <Resource> <operation>` (`pulumi SecretReference read`, `pulumi RotationPolicy rotate`).
   */
  command: "get" | "render" | "exec" | "secrets set" | "secrets rotate" | "rotation run --due" | "worker" | `library ${string}` | `pulumi ${string}`;
  /** The face that accessed, when not the CLI (CLI lines have none). */
  face?: "library" | "pulumi";
  /** The Pulumi resource's name of the secret or env (`store://…`, `env:prod`, a RotationPolicy's secret). */
  resource?: string;
  env?: string;
  /** Variables handed out, with where they came from. */
  variables?: Array<{ name: string; store?: string; key?: string; versionId?: string }>;
  store?: string;
  key?: string;
  out?: string;
  /** `secrets rotate --dry-run`: nothing was changed. */
  dryRun?: boolean;
  outcome: "ok" | "refused" | "failed";
  error?: string;
}

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 } as const;

/** The audit log's path, when audit logging is on. */
export function auditPath(config: Config): string | undefined {
  const a = config.raw.policies?.audit_logging;
  if (!a?.enabled) return undefined;
  return resolve(config.dir, a.log_path ?? "dsops-audit.log");
}

/**
 * Append one JSON line to the audit log (mode 0600, created if missing, tightened if wider).
 * `info` and `debug` log every access (debug adds version ids); `warn` and `error` only
 * refused and failed ones.
 */
export function audit(config: Config, entry: AuditEntry): void {
  const path = auditPath(config);
  if (!path) return;
  const level = config.raw.policies?.audit_logging?.log_level ?? "info";
  if (entry.outcome === "ok" && LEVELS[level] > LEVELS.info) return;
  const debug = level === "debug";
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? String(process.getuid?.() ?? "unknown");
  }
  const line = {
    time: isoNow(),
    user,
    pid: process.pid,
    command: entry.command,
    ...(entry.face !== undefined ? { face: entry.face } : {}),
    ...(entry.resource !== undefined ? { resource: entry.resource } : {}),
    ...(entry.env !== undefined ? { env: entry.env } : {}),
    ...(entry.variables ? { variables: entry.variables.map(({ versionId, ...v }) => (debug && versionId ? { ...v, versionId } : v)) } : {}),
    ...(entry.store !== undefined ? { store: entry.store } : {}),
    ...(entry.key !== undefined ? { key: entry.key } : {}),
    ...(entry.out !== undefined ? { out: entry.out } : {}),
    ...(entry.dryRun ? { dryRun: true } : {}),
    outcome: entry.outcome,
    ...(entry.error !== undefined ? { error: entry.error } : {}),
  };
  appendLog(path, JSON.stringify(line) + "\n");
}

/** Append `text` to the log at `path` (created mode 0600; a wider mode is tightened). */
function appendLog(path: string, text: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(path, "a", 0o600);
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
      if (text) writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new DsopsError(`cannot write the audit log ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: "policies.audit_logging.log_path must be writable; every access is refused until it is",
    });
  }
}

/** Run an access and log it: ok, or refused (a DsopsError) / failed (anything else) with the error's message. */
export async function audited<T>(config: Config, entry: Omit<AuditEntry, "outcome">, fn: (note: (more: Partial<AuditEntry>) => void) => Promise<T>): Promise<T> {
  let extra: Partial<AuditEntry> = {};
  // An unwritable log refuses the access before anything is read or written.
  const path = auditPath(config);
  if (path) appendLog(path, "");
  try {
    const result = await fn((more) => (extra = { ...extra, ...more }));
    audit(config, { ...entry, ...extra, outcome: "ok" });
    return result;
  } catch (e) {
    audit(config, { ...entry, ...extra, outcome: e instanceof DsopsError ? "refused" : "failed", error: (e as Error).message });
    throw e;
  }
}

/** The load-time check of `policies:` (the composed loader runs it after the engine's). */
export const policyConfigCheck: ConfigCheck = (raw, { refOf, findings }) => {
  const p = raw.policies;
  if (p) checkPolicySettings(raw, p, refOf, findings);
  return raw;
};

function checkPolicySettings(raw: RawConfig, p: PolicySettings, refOf: (env: string, variable: string) => { store: string } | undefined, out: Findings): void {
  const base: Path = ["policies"];
  if (p.audit_logging?.include_values === true)
    out.error(
      [...base, "audit_logging", "include_values"],
      "refused: the audit log records who read which variables, never their values (a log file holding secrets would be one more place to leak them); remove the key",
    );
  const checkRules = (rules: Rules, at: Path) => {
    for (const list of ["forbidden_patterns", "required_patterns"] as const)
      (rules[list] ?? []).forEach((pat, i) => {
        try {
          new RegExp(pat, "u");
        } catch (e) {
          out.error([...at, list, i], `not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, "")}`);
        }
      });
    const c = rules.secret_complexity;
    if (c) {
      if (c.min_length !== undefined && c.max_length !== undefined && c.min_length > c.max_length)
        out.error([...at, "secret_complexity", "min_length"], `min_length ${c.min_length} is greater than max_length ${c.max_length}: no value can meet both`);
      const classes = CLASSES.filter(([k]) => c[k]).length;
      if (c.max_length !== undefined && classes > c.max_length)
        out.error([...at, "secret_complexity", "max_length"], `max_length ${c.max_length} cannot hold the ${classes} required character classes`);
    }
  };
  checkRules(p, base);
  const envNames = Object.keys(raw.envs);
  for (const [env, rule] of Object.entries(p.environment_rules ?? {})) {
    if (!raw.envs[env]) {
      const s = suggest(env, envNames);
      out.error([...base, "environment_rules", env], `no env "${env}" in envs${s ? ` (did you mean "${s}"?)` : envNames.length ? ` (envs: ${envNames.join(", ")})` : ""}`, true);
    }
    checkRules(rule, [...base, "environment_rules", env]);
  }
  // Rotated variables: their generator must draw values that meet the complexity rules of their env.
  for (const [env, vars] of Object.entries(raw.envs))
    for (const [name, spec] of Object.entries(vars)) {
      if (!spec.rotation) continue;
      const { defaultGeneratorPolicy } = require("../rotation/generator") as typeof import("../rotation/generator");
      const scope = p.environment_rules?.[env] ? `policies.environment_rules.${env}` : "policies";
      for (const problem of generatorProblems(spec.rotation.generator ?? defaultGeneratorPolicy, rulesFor(p, env)))
        out.error(["envs", env, name, "rotation", ...(spec.rotation.generator ? ["generator"] : [])], `${problem} (${scope}.secret_complexity)`);
      // Patterns cannot be proved of a random value: values are drawn, and a pattern that none of
      // them meets (a required character the format never draws, a forbidden one it always
      // draws) is refused here. Patterns that only rarely meet together are left to rotation,
      // which draws again a bounded number of times.
      const rules = rulesFor(p, env);
      const g = spec.rotation.generator ?? defaultGeneratorPolicy;
      const what = `rotation.generator (format ${g.format}${g.format === "uuid" ? "" : `, length ${g.length}`})`;
      const at: Path = ["envs", env, name, "rotation", ...(spec.rotation.generator ? ["generator"] : [])];
      for (const list of ["forbidden_patterns", "required_patterns"] as const)
        (rules[list] ?? []).forEach((pattern, i) => {
          let unmet: string[];
          try {
            const { unmetByEvery } = require("../rotation/generator") as typeof import("../rotation/generator");
            unmet = unmetByEvery(g, (v) => valueProblems({ [list]: [pattern] }, v));
          } catch {
            return; // a pattern that is not a regular expression, or a generator that cannot draw: reported on their own
          }
          if (unmet.length)
            out.error(
              at,
              `${what} draws no value that meets ${scope}.${list}[${i}] /${pattern}/ (none of 2000 drawn did): ` +
                (list === "forbidden_patterns" ? "each one matches it" : "none matches it"),
            );
        });
    }
  // Stores: the top-level rules apply to every store; an env's rules to the stores its variables read.
  const stores: Array<[string, { type: string; [k: string]: unknown }, Path]> = [
    ...Object.entries(raw.secretStores).map(([n, s]): [string, typeof s, Path] => [n, s, ["secretStores", n]]),
    ...Object.entries(raw.providers)
      .filter(([n]) => !(n in raw.secretStores))
      .map(([n, s]): [string, typeof s, Path] => [n, s, ["providers", n]]),
  ];
  const top = rulesFor(p);
  for (const [name, store, at] of stores) {
    const why = storeProblem(top, name, store, "policies.");
    if (why) out.error([...at, "type"], why);
  }
  const byName = new Map(stores.map(([n, s]) => [n, s] as const));
  for (const env of Object.keys(p.environment_rules ?? {})) {
    if (!raw.envs[env]) continue;
    const rules = rulesFor(p, env);
    for (const name of Object.keys(raw.envs[env])) {
      const ref = refOf(env, name);
      const store = ref && byName.get(ref.store);
      if (!ref || !store) continue;
      const why = storeProblem(rules, ref.store, store, `policies.environment_rules.${env}.`);
      if (why && !storeProblem(top, ref.store, store, "")) out.error(["envs", env, name, "from"], why);
    }
  }
}

/**
 * Why a rotation's generator cannot guarantee the complexity rules: its length (36 for uuid)
 * outside min_length..max_length, or a required class the format does not always draw (only
 * `password` and `alphanumeric` guarantee classes, through their minimum counts; a uuid always
 * holds a digit and a "-"). Patterns are not checked here: they cannot be proved of a random value.
 */
export function generatorProblems(g: GeneratorPolicy, rules: Rules): string[] {
  const c = rules.secret_complexity ?? {};
  const out: string[] = [];
  const len = g.format === "uuid" ? 36 : g.length;
  const lenText = g.format === "uuid" ? "a uuid has 36 characters" : `generator length ${len}`;
  if (c.min_length !== undefined && len < c.min_length) out.push(`${lenText}, shorter than min_length ${c.min_length}`);
  if (c.max_length !== undefined && len > c.max_length) out.push(`${lenText}, longer than max_length ${c.max_length}`);
  const excluded = (chars: string) => [...chars].every((ch) => g.exclude.includes(ch));
  const guaranteed: Record<(typeof CLASSES)[number][0], boolean> = {
    require_upper: (g.format === "password" || g.format === "alphanumeric") && g.upper > 0 && !excluded("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    require_lower: (g.format === "password" || g.format === "alphanumeric") && g.lower > 0 && !excluded("abcdefghijklmnopqrstuvwxyz"),
    require_numbers: g.format === "uuid" || ((g.format === "password" || g.format === "alphanumeric") && g.digits > 0 && !excluded("0123456789")),
    require_special: g.format === "uuid" || (g.format === "password" && g.symbols > 0 && !excluded(g.symbol_set)),
  };
  for (const [key, , what] of CLASSES)
    if (c[key] && !guaranteed[key])
      out.push(
        `a generator of format ${g.format}${g.format === "password" || g.format === "alphanumeric" ? " with these class minimums" : ""} does not always draw ${/^[aeiou]/.test(what) ? "an" : "a"} ${what} (${key}); ` +
          `use format password${key === "require_special" ? "" : " or alphanumeric"} with at least 1`,
      );
  return out;
}
