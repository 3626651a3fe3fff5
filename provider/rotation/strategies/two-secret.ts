import { DsopsError } from "../../core/errors";
import { durationMs as coreDurationMs, type Duration } from "../../core/duration";
import { decodeJsonCredential, encodeJsonCredential } from "./json-credential";
import type { Strategy } from "./types";

/** Default grace period of two-secret: one day. */
export const DEFAULT_GRACE_MS = 24 * 3600 * 1000;

/** Milliseconds of an optional schema duration, `fallback` when it is not set. */
export function durationMs(d: Duration | undefined, fallback: number): number {
  return d === undefined ? fallback : coreDurationMs(d);
}

/**
 * For API keys and tokens a target lets exist twice at once (the target `create`s them): a new
 * credential is minted next to the old one, verified and made current; both stay valid for the
 * grace period, then the old one is revoked. The stored value is JSON {"username": <key id>,
 * "password": <secret>}; `rotation.user` names the owner the keys are minted for.
 */
export const twoSecret: Strategy = {
  name: "two-secret",
  requires: ["create", "revoke"],
  plan({ policy, current, path }) {
    if (!policy.user) throw new DsopsError(`${path}.user: two-secret rotation needs the owner (user, account) the keys belong to`);
    const old = current ? decodeJsonCredential(current, path) : undefined;
    return { principal: policy.user, ...(old ? { old } : {}), apply: "create", retire: "grace", graceMs: durationMs(policy.grace_period, DEFAULT_GRACE_MS) };
  },
  encode: encodeJsonCredential,
  decode: decodeJsonCredential,
};
