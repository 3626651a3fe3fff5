import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";

/**
 * Property values as they travel between the Pulumi engine and a provider that accepts secrets
 * (its Configure answers `acceptSecrets`): a secret is an object
 * `{ [specialSigKey]: specialSecretSig, value }`. The handlers work on plain values; the plugin
 * unwraps what it is given and marks secret what it hands back.
 */

export type Props = Record<string, unknown>;

export function isSecret(v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && (v as Props)[specialSigKey] === specialSecretSig;
}

/** A value marked secret on the wire. */
export function secret(value: unknown): Props {
  return { [specialSigKey]: specialSecretSig, value };
}

/** A value with every secret marker removed (deeply). */
export function reveal(v: unknown): unknown {
  if (isSecret(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

/** Whether the value holds a secret anywhere inside. */
export function holdsSecret(v: unknown): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(holdsSecret);
  if (v && typeof v === "object") return Object.values(v).some(holdsSecret);
  return false;
}

/** Properties without secret markers, and the names of the top-level ones that held a secret. */
export function unwrap(props: Props | undefined): { plain: Props; secretKeys: Set<string> } {
  const plain: Props = {};
  const secretKeys = new Set<string>();
  for (const [k, v] of Object.entries(props ?? {})) {
    if (holdsSecret(v)) secretKeys.add(k);
    plain[k] = reveal(v);
  }
  return { plain, secretKeys };
}

/** Outputs with the named top-level properties marked secret. */
export function markSecret(outs: Props, keys: Iterable<string>): Props {
  const marked: Props = { ...outs };
  for (const k of new Set(keys)) if (marked[k] !== undefined && !isSecret(marked[k])) marked[k] = secret(marked[k]);
  return marked;
}
