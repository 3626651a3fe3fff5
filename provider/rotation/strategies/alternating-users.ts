import { DsopsError } from "../../core/errors";
import { decodeJsonCredential, encodeJsonCredential } from "./json-credential";
import type { Strategy } from "./types";

/**
 * Two users; the stored value names the current one. A rotation changes the other (inactive)
 * user's password, verifies it, and makes it current: the credential stored as current works at
 * every instant, and clients holding the previous one keep working until the next rotation.
 */
export const alternatingUsers: Strategy = {
  name: "alternating-users",
  requires: ["rotate"],
  plan({ policy, current, path }) {
    const users = policy.users;
    if (!users) throw new DsopsError(`${path}.users: alternating-users rotation needs two users, e.g. users: [app_a, app_b]`);
    if (users[0] === users[1]) throw new DsopsError(`${path}.users: the two users must differ`);
    const old = current ? decodeJsonCredential(current, path) : undefined;
    if (old && !users.includes(old.principal))
      throw new DsopsError(`${path}.users: the stored value names user "${old.principal}", which is not one of ${users.join(", ")}`);
    const principal = old?.principal === users[0] ? users[1] : users[0];
    return { principal, ...(old ? { old } : {}), apply: "set", retire: "none" };
  },
  encode: encodeJsonCredential,
  decode: decodeJsonCredential,
};
