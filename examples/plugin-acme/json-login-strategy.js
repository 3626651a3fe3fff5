// @ts-check
const { ConfigError, Secret } = require("@dsops/pulumi/plugin");

/**
 * The rotation strategy `acme.json-login`: one user (`rotation.user`) whose password changes in
 * place, as built-in single-user does, but the stored value is JSON
 * {"user", "password", "rotatedAt"}, so an application reads who to log in as and when the
 * password last changed from the one secret. `immediate` and `emergency` work over it.
 * @type {import("@dsops/pulumi/plugin").PluginStrategyDefinition}
 */
const jsonLogin = {
  description: 'one user whose password changes in place; the stored value is JSON {"user", "password", "rotatedAt"}',
  requires: ["rotate"],
  plan({ policy, current, path }) {
    if (!policy.user) throw new ConfigError(`${path}.user: strategy acme.json-login needs the user whose password is rotated (user: <name>)`);
    const old = current ? decode(current, path) : undefined;
    return { principal: policy.user, ...(old ? { old } : {}), apply: "set", retire: "none" };
  },
  encode(cred) {
    return new Secret(JSON.stringify({ user: cred.principal, password: cred.secret.reveal(), rotatedAt: new Date().toISOString() }));
  },
  decode,
};

/** The credential a stored value stands for; errors name the variable, never the value. @param {Secret} value @param {string} path */
function decode(value, path) {
  /** @type {{ user?: unknown, password?: unknown }} */
  let o;
  try {
    o = JSON.parse(value.reveal());
  } catch {
    throw new ConfigError(`${path}: the stored value is not JSON {"user", "password", "rotatedAt"} (strategy acme.json-login)`);
  }
  if (!o || typeof o.user !== "string" || typeof o.password !== "string")
    throw new ConfigError(`${path}: the stored value needs string fields "user" and "password" (strategy acme.json-login)`);
  return { principal: o.user, secret: new Secret(o.password) };
}

module.exports = { jsonLogin };
