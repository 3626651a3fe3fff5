import { RefError } from "../core/errors";
import { parsePath } from "./jsonpath";
import { suggest } from "../core/suggest";

/**
 * A parsed secret reference: which store, which key, which field and version.
 * Forms: `store://<store>/<path>[#<field>][?version=<v>]` (or `?version_id=`/`?version_stage=`
 * for AWS Secrets Manager), `{store, key, version}`,
 * legacy `{provider, key, version}`, and `{store: "store://…"}`.
 */
export interface SecretRef {
  /** Store name in the configuration. */
  readonly store: string;
  /** Key in the store's own terms, without the field. */
  readonly key: string;
  /** Field inside a structured secret (`password`, `.db.url`, `[0]`). */
  readonly field?: string;
  /** Version id or stage. */
  readonly version?: string;
  /** `?version_id=` / `?version_stage=` (AWS Secrets Manager). */
  readonly options?: Readonly<Record<string, string>>;
}

const SCHEME = "store://";

export function isStoreUri(s: string): boolean {
  return s.startsWith(SCHEME);
}

/** Query parameters a `store://` reference may carry (`version_id` and `version_stage` are AWS Secrets Manager's). */
export const refQueryKeys = ["version", "version_id", "version_stage"] as const;

/**
 * Check the field of a reference (`password`, `.db.hosts[0]`, `["a.b"]`, `.list[-1]`): it must
 * name at least one step, and every step must be well formed. `what` names the reference.
 */
export function checkField(field: string, what: string): void {
  let steps: unknown[];
  try {
    steps = parsePath(field);
  } catch (e) {
    throw new RefError(`${what}: bad field "#${field}": ${(e as Error).message.replace(/^path "[^"]*": /, "")}`, { hint: 'e.g. #password, #.db.host, #.hosts[0], #["key.with.dots"]' });
  }
  if (steps.length === 0)
    throw new RefError(`${what}: the field "#${field}" names no field (to read the whole secret, leave out "#")`, { hint: "e.g. #password or #.db.host" });
}

/**
 * Split `key#field` (the first `#`). Store-native keys such as `op://…` keep their own syntax.
 * An empty field (`key#`) or a malformed one (`key#..`) is an error naming the reference.
 */
export function splitField(key: string, what = `key "${key}"`): { key: string; field?: string } {
  const hash = key.indexOf("#");
  if (hash < 0) return { key };
  const field = key.slice(hash + 1);
  if (field === "") throw new RefError(`${what}: nothing after "#" (to read the whole secret, leave out "#")`, { hint: "e.g. #password or #.db.host" });
  checkField(field, what);
  return { key: key.slice(0, hash), field };
}

function decode(part: string, uri: string): string {
  if (!part.includes("%")) return part; // nothing to decode (most references)
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RefError(`reference "${uri}": bad percent-encoding in "${part}"`);
  }
}

export function parseStoreUri(uri: string): SecretRef {
  if (!isStoreUri(uri)) throw new RefError(`reference "${uri}": must start with ${SCHEME}`);
  let rest = uri.slice(SCHEME.length);
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf("/");
  if (slash <= 0) throw new RefError(`reference "${uri}": expected ${SCHEME}<store>/<path>`, { hint: "e.g. store://aws/myapp/prod#password" });
  const store = decode(rest.slice(0, slash), uri);
  const what = `reference "${uri}"`;
  const { key, field } = splitField(rest.slice(slash + 1), what);
  if (key === "") throw new RefError(`${what}: empty path`);
  let options: Record<string, string> | undefined;
  let version: string | undefined;
  if (q >= 0) {
    const params = parseQuery(query, what);
    version = params.get("version");
    for (const [k, v] of params) if (k !== "version") (options ??= {})[k] = v;
  }
  const decodedField = field === undefined ? undefined : decode(field, uri);
  if (decodedField !== undefined && decodedField !== field) checkField(decodedField, what);
  return {
    store,
    key: decode(key, uri),
    ...(decodedField !== undefined ? { field: decodedField } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(options ? { options } : {}),
  };
}

/**
 * The query of a reference: `version=…`, or `version_id=…` / `version_stage=…` (AWS Secrets
 * Manager), at most one of them, each once and with a value. Anything else is an error rather
 * than ignored: an unknown or repeated parameter, `??`, an empty one, a `#` after the query.
 */
function parseQuery(query: string, what: string): Map<string, string> {
  const allowed: readonly string[] = refQueryKeys;
  const hint = `e.g. store://<store>/<key>#<field>?version=<v>; parameters: ${refQueryKeys.join(", ")}`;
  if (query === "") throw new RefError(`${what}: "?" with no query after it`, { hint });
  if (query.startsWith("?")) throw new RefError(`${what}: "??": the query starts after a single "?"`, { hint });
  if (query.includes("#")) throw new RefError(`${what}: "#" inside the query: the field goes before it (…/<key>#<field>?version=<v>)`, { hint });
  const out = new Map<string, string>();
  for (const part of query.split("&")) {
    if (part === "") throw new RefError(`${what}: an empty query parameter ("&&", or "&" at an end)`, { hint });
    const eq = part.indexOf("=");
    // URLSearchParams decodes as browsers do ("+" is a space) and never throws.
    const [[k, v]] = [...new URLSearchParams(eq < 0 ? `${part}=` : part)];
    if (!allowed.includes(k)) {
      const near = suggest(k, refQueryKeys);
      throw new RefError(`${what}: unknown query parameter "${k}"${near ? ` (did you mean "${near}"?)` : ""}; a reference takes ${refQueryKeys.join(", ")}`, { hint });
    }
    if (out.has(k)) throw new RefError(`${what}: query parameter "${k}" is given twice`, { hint });
    if (eq < 0 || v === "") throw new RefError(`${what}: query parameter "${k}" has no value`, { hint });
    out.set(k, v);
  }
  if (out.size > 1) throw new RefError(`${what}: give one of ${refQueryKeys.join(", ")}, not ${[...out.keys()].join(" and ")}`, { hint });
  return out;
}

/** Format a reference as a `store://` URI that `parseStoreUri` reads back as the same reference. */
export function formatStoreUri(ref: SecretRef): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%2F/g, "/").replace(/%40/g, "@").replace(/%3A/g, ":");
  let s = `${SCHEME}${encodeURIComponent(ref.store)}/${enc(ref.key)}`;
  if (ref.field !== undefined) s += `#${enc(ref.field)}`;
  const params = new URLSearchParams();
  if (ref.version !== undefined) params.set("version", ref.version);
  for (const [k, v] of Object.entries(ref.options ?? {})) params.set(k, v);
  const qs = params.toString();
  return qs ? `${s}?${qs}` : s;
}

/** The `from:` of a variable in any of its forms. */
export type FromSpec =
  | string
  | { store: string; key?: string; version?: string }
  | { provider: string; key: string; version?: string };

/** A store name as the `<store>:<key>` shorthand writes it (letters, digits, `_`, `-`, `.`). */
const SHORTHAND = /^([A-Za-z0-9_][A-Za-z0-9_.-]*):(.*)$/s;

/**
 * dsops's shorthand `<store-or-provider>:<key>` (`ssm:/database/url`, `doppler:TEST`,
 * `onepass:op://Vault/Item/field`): the store is what comes before the first `:`, the key all
 * after it (colons included), `#field` as in other forms. A `scheme://…` string (`op://…`) is a
 * store-native key without its store, not a shorthand: undefined.
 */
export function parseShorthand(s: string): SecretRef | undefined {
  const m = SHORTHAND.exec(s);
  if (!m || m[2].startsWith("//")) return undefined;
  const [, store, rest] = m;
  const what = `reference "${s}"`;
  if (rest === "") throw new RefError(`${what}: nothing after "${store}:"`, { hint: `e.g. ${store}:<key> or store://${store}/<key>` });
  const { key, field } = splitField(rest, what);
  if (key === "") throw new RefError(`${what}: missing key before "#"`, { hint: `e.g. ${store}:<key>#<field>` });
  return { store, key, ...(field !== undefined ? { field } : {}) };
}

/** Normalise any `from:` form into a SecretRef. */
export function parseFrom(from: FromSpec): SecretRef {
  if (typeof from === "string") {
    if (isStoreUri(from)) return parseStoreUri(from);
    const short = parseShorthand(from);
    if (short) return short;
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(from);
    const hint = 'e.g. store://aws/myapp/prod#password, aws:myapp/prod#password, {store: aws, key: "myapp/prod"}';
    if (scheme)
      throw new RefError(`reference "${from}": a ${scheme[1]}:// key is read by a store; name the store: <store>:${from}, or {store: <store>, key: "${from}"}`, { hint });
    throw new RefError(`reference "${from}": expected store://<store>/<key> or <store>:<key>`, { hint });
  }
  const storeName = "store" in from ? from.store : from.provider;
  if (isStoreUri(storeName)) {
    const ref = parseStoreUri(storeName);
    return from.version !== undefined ? { ...ref, version: from.version } : ref;
  }
  if (!from.key) throw new RefError(`reference to store "${storeName}": missing key`);
  const { key, field } = splitField(from.key, `reference to store "${storeName}", key "${from.key}"`);
  if (key === "") throw new RefError(`reference to store "${storeName}": missing key before "#"`);
  return {
    store: storeName,
    key,
    ...(field !== undefined ? { field } : {}),
    ...(from.version !== undefined ? { version: from.version } : {}),
  };
}

/** A stable identity of a reference, for de-duplication within a run. */
export function refId(ref: SecretRef): string {
  return formatStoreUri(ref);
}

/** Identity of the store fetch a reference needs (field excluded: one fetch serves every field). */
export function fetchId(ref: SecretRef): string {
  return formatStoreUri({ ...ref, field: undefined });
}
