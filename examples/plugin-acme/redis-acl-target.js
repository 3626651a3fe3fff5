// @ts-check
const { createHash } = require("node:crypto");
const { createClient } = require("redis");
const { TargetError, VerificationError, scrubError } = require("@dsops/pulumi/plugin");

/** @param {string} password */
const sha256 = (password) => createHash("sha256").update(password, "utf8").digest("hex");

/**
 * Passwords of Redis ACL users. `rotate` replaces a user's passwords (`ACL SETUSER u resetpass
 * #<sha256>`) without touching its on/off flag (a user switched off stays off, so its
 * verification fails and the rotation rolls back); `revoke` removes one password (`!<sha256>`);
 * `verify` logs in as the user and PINGs (and runs the verification command, when given). The
 * plaintext never reaches the server.
 * @implements {import("@dsops/pulumi/plugin").PluginTarget}
 */
class RedisAclTarget {
  type = "acme.redis-acl";
  capabilities = new Set(/** @type {const} */ (["rotate", "revoke", "verify"]));
  valueRules = { minLength: 8, maxLength: 512, forbidden: "\0" };

  /**
   * @param {string} name
   * @param {{ host: string, port: number, admin: string, connect_timeout_ms: number }} settings
   * @param {import("@dsops/pulumi/plugin").TargetContext} ctx
   */
  constructor(name, settings, ctx) {
    this.name = name;
    this.settings = settings;
    this.ctx = ctx;
  }

  /** A connection as `username`, closed by `fn`'s end. @template T @param {string} username @param {string} password @param {(c: any) => Promise<T>} fn @param {number=} timeoutMs */
  async as(username, password, fn, timeoutMs) {
    const c = createClient({ socket: { host: this.settings.host, port: this.settings.port, connectTimeout: timeoutMs ?? this.settings.connect_timeout_ms, reconnectStrategy: false }, username, password });
    c.on("error", () => undefined);
    try {
      await c.connect();
      return await fn(c);
    } finally {
      if (c.isOpen) c.destroy();
    }
  }

  /** Run `args` as the admin; errors name the command and never carry a secret. @param {string[]} args @param {string} what @param {string[]} secrets */
  async admin(args, what, secrets) {
    const adminValue = (await this.ctx.resolveRef(this.settings.admin)).reveal();
    let login;
    try {
      login = JSON.parse(adminValue);
    } catch {
      throw new TargetError(`service "${this.name}": the admin credential ${this.settings.admin} is not JSON {"username", "password"}`);
    }
    try {
      return await this.as(login.username, login.password, (c) => c.sendCommand(args));
    } catch (e) {
      const network = /ECONNREFUSED|ETIMEDOUT|ECONNRESET|timeout/i.test(String(e && /** @type {Error} */ (e).message));
      throw new TargetError(`service "${this.name}": ${what} failed: ${scrubError(e, [...secrets, login.password])}`, network);
    }
  }

  /** @param {import("@dsops/pulumi/plugin").Credential} cred */
  async setSecret(cred) {
    const hash = sha256(cred.secret.reveal());
    const user = await this.admin(["ACL", "GETUSER", cred.principal], `ACL GETUSER "${cred.principal}"`, [hash]);
    if (user === null) throw new TargetError(`service "${this.name}": Redis has no ACL user "${cred.principal}" (create it first)`);
    await this.admin(["ACL", "SETUSER", cred.principal, "resetpass", `#${hash}`], `ACL SETUSER "${cred.principal}"`, [cred.secret.reveal(), hash]);
  }

  /** @param {import("@dsops/pulumi/plugin").Credential} cred */
  async revoke(cred) {
    const hash = sha256(cred.secret.reveal());
    try {
      await this.admin(["ACL", "SETUSER", cred.principal, `!${hash}`], `ACL SETUSER "${cred.principal}"`, [cred.secret.reveal(), hash]);
    } catch (e) {
      // Already revoked (the password is gone): nothing to do.
      if (!/does not exist|no such/i.test(/** @type {Error} */ (e).message)) throw e;
    }
  }

  /** @param {import("@dsops/pulumi/plugin").Credential} cred @param {import("@dsops/pulumi/plugin").VerifyOptions=} options */
  async verify(cred, options) {
    const secret = cred.secret.reveal();
    try {
      await this.as(
        cred.principal,
        secret,
        async (c) => {
          if ((await c.ping()) !== "PONG") throw new Error("PING did not answer PONG");
          if (options?.query) await c.sendCommand(options.query.split(/\s+/).filter(Boolean));
        },
        options?.timeoutMs,
      );
    } catch (e) {
      throw new VerificationError(`service "${this.name}": user "${cred.principal}" cannot log in and run its check: ${scrubError(e, [secret])}`);
    }
  }

  async check() {
    await this.admin(["PING"], "PING", []);
  }
}

module.exports = { RedisAclTarget };
