"use strict";
const dsops = require("@dsops/pulumi");

// A JSON secret's field, by reference (AWSCURRENT unless ?version= says otherwise).
const dbPassword = new dsops.SecretReference("db-password", { ref: "store://aws/myapp/prod/db#password" });

// The previous version, pinned by stage: no drift is reported for a pinned reference.
const previous = new dsops.SecretReference("db-previous", { store: "aws", key: "myapp/prod/db#password", version: "AWSPREVIOUS" });

// An SSM SecureString under parameter_prefix (/myapp/prod/api-key), decrypted.
const apiKey = new dsops.SecretReference("api-key", { store: "ssm", key: "api-key" });

exports.dbPasswordVersion = dbPassword.versionId;
exports.previousVersion = previous.versionId;
exports.apiKey = apiKey.value; // a Pulumi secret: shown as [secret]
