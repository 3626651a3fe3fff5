// @ts-check
// An example dsops plugin (interface version 1): the module exports { apiVersion, name, stores, targets, strategies }.
const { z } = require("@dsops/pulumi/plugin");

/** @type {import("@dsops/pulumi/plugin").DsopsPlugin} */
module.exports = {
  apiVersion: 1,
  name: "@acme/dsops-plugin-example",
  version: "1.0.0",
  stores: {
    "acme.jsonfile": {
      description: "secrets in a JSON file next to dsops.yaml, with versions and rotation stages (an example: values are not encrypted)",
      settings: z.strictObject({
        /** The JSON file (relative to dsops.yaml's folder); created on the first write, mode 0600. */
        path: z.string().min(1),
      }),
      capabilities: { write: true, versions: true, batch: 0, binary: false, staging: true },
      // The store's code loads only when a store of this type is used.
      create: (name, settings, ctx) => new (require("./jsonfile-store").JsonFileStore)(name, settings, ctx),
    },
  },
  targets: {
    "acme.redis-acl": {
      description: "passwords of Redis 6+ ACL users (sent as their SHA-256, never in plaintext)",
      settings: z.strictObject({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(1).max(65535).default(6379),
        /** A reference store://<store>/<key> to the admin credential, JSON {"username", "password"}. */
        admin: z.string().startsWith("store://", "expected a reference store://<store>/<key> to JSON {\"username\", \"password\"}"),
        connect_timeout_ms: z.number().int().positive().default(5000),
      }),
      capabilities: ["rotate", "revoke", "verify"],
      create: (name, settings, ctx) => new (require("./redis-acl-target").RedisAclTarget)(name, settings, ctx),
    },
  },
  strategies: {
    "acme.json-login": require("./json-login-strategy").jsonLogin,
  },
};
