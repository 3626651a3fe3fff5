import { DsopsError } from "../../core/errors";
import { Secret } from "../../core/secret";
import type { Credential } from "../targets/types";

/** A credential stored as JSON {"username", "password"} (alternating-users, two-secret). */
export function encodeJsonCredential(cred: Credential): Secret {
  return new Secret(JSON.stringify({ username: cred.principal, password: cred.secret.reveal() }));
}

export function decodeJsonCredential(value: Secret, path: string): Credential {
  let o: { username?: unknown; password?: unknown };
  try {
    o = JSON.parse(value.reveal()) as typeof o;
  } catch {
    throw new DsopsError(`${path}: the stored value is not JSON {"username", "password"}`);
  }
  if (!o || typeof o.username !== "string" || typeof o.password !== "string")
    throw new DsopsError(`${path}: the stored value needs string fields "username" and "password"`);
  return { principal: o.username, secret: new Secret(o.password) };
}
