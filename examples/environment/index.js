"use strict";
const dsops = require("@dsops/pulumi");

// Every variable of the env, resolved with one batched pass over the stores.
const app = new dsops.Environment("app", { configFile: "dsops.yaml", env: "production" });

// `variables` is a secret map; `plan` says where each variable comes from (no values).
exports.variables = app.variables;
exports.plan = app.plan;

// The same without state, for programs that only need the values now.
exports.viaFunction = dsops.getEnvironment({ configFile: "dsops.yaml", env: "production" }).then((r) => r.variables);
