"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");

// The Vault store is configured inline; the token comes from encrypted stack config
// (`pulumi config set --secret vaultToken …`) and stays a secret in state.
const cfg = new pulumi.Config();
const vault = { type: "vault", address: cfg.require("vaultAddress"), token: cfg.requireSecret("vaultToken") };

// KV v2 is detected from the mount: secret/myapp/db reads secret/data/myapp/db.
const dbPassword = new dsops.SecretReference("db-password", { store: vault, key: "secret/myapp/db#password" });

// A pinned older version.
const firstVersion = new dsops.SecretReference("db-password-v1", { store: vault, key: "secret/myapp/db#password", version: "1" });

exports.dbPassword = dbPassword.value;
exports.currentVersion = dbPassword.versionId;
exports.firstVersion = firstVersion.versionId;
