import { DsopsError } from "../../core/errors";
import type { Strategy } from "./types";

/** One user; its password changes in place. The stored value is the password of `user`. */
export function singleUserFor(user: string): Strategy {
  return {
    name: "single-user",
    requires: ["rotate"],
    plan({ policy, current, path }) {
      if (!policy.user) throw new DsopsError(`${path}.user: single-user rotation needs the user whose password is rotated`);
      return { principal: policy.user, ...(current ? { old: { principal: policy.user, secret: current } } : {}), apply: "set", retire: "none" };
    },
    encode: (cred) => cred.secret,
    decode: (value) => ({ principal: user, secret: value }),
  };
}
