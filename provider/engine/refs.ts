import { RefError } from "./errors";

/**
 * A parsed secret reference: which store, which key, which field and version.
 * Forms: `store://<store>/<path>[#<field>][?version=<v>&<opt>=<x>]`, `{store, key, version}`,
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
  /** Other `?opt=x` options. */
  readonly options?: Readonly<Record<string, string>>;
}

const SCHEME = "store://";

export function isStoreUri(s: string): boolean {
  return s.startsWith(SCHEME);
}

/** Split `key#field` (the first `#`). Store-native keys such as `op://…` keep their own syntax. */
export function splitField(key: string): { key: string; field?: string } {
  const hash = key.indexOf("#");
  if (hash < 0) return { key };
  const field = key.slice(hash + 1);
  return { key: key.slice(0, hash), field: field === "" ? undefined : field };
}

function decode(part: string, uri: string): string {
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
  const { key, field } = splitField(rest.slice(slash + 1));
  if (key === "") throw new RefError(`reference "${uri}": empty path`);
  const options: Record<string, string> = {};
  let version: string | undefined;
  if (query) {
    for (const [k, v] of new URLSearchParams(query)) {
      // URLSearchParams never throws: malformed escapes stay as they are.
      if (k === "version") version = v;
      else options[k] = v;
    }
  }
  return {
    store,
    key: decode(key, uri),
    ...(field !== undefined ? { field: decode(field, uri) } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(Object.keys(options).length ? { options } : {}),
  };
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

/** Normalise any `from:` form into a SecretRef. */
export function parseFrom(from: FromSpec): SecretRef {
  if (typeof from === "string") return parseStoreUri(from);
  const storeName = "store" in from ? from.store : from.provider;
  if (isStoreUri(storeName)) {
    const ref = parseStoreUri(storeName);
    return from.version !== undefined ? { ...ref, version: from.version } : ref;
  }
  if (!from.key) throw new RefError(`reference to store "${storeName}": missing key`);
  const { key, field } = splitField(from.key);
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
