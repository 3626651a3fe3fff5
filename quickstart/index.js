// The quickstart program: the same code a user writes in their own Pulumi program.
"use strict";
const dsops = require("@dsops/pulumi");

// One secret by reference; `value` is a Pulumi secret, shown as [secret] in previews and outputs.
const dbPassword = new dsops.SecretReference("db-password", { ref: "store://local/app/db#password" });

// The same store by name and key, with a transform.
const apiToken = new dsops.SecretReference("api-token", { store: "local", key: "app/api-token", transform: "trim" });

// A whole env of dsops.yaml: `variables` is a secret map, `plan` says where each comes from.
const app = new dsops.Environment("app-dev", { configFile: "dsops.yaml", env: "dev" });

exports.dbPassword = dbPassword.value;
exports.dbPasswordVersion = dbPassword.versionId;
exports.apiTokenVersion = apiToken.versionId;
exports.storeType = apiToken.storeType;
exports.variables = app.variables;
exports.plan = app.plan;
