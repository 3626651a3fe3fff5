"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");

// Credentials: Application Default Credentials (gcloud auth application-default login), or a
// service-account key file in `credentials_file`.
const project = new pulumi.Config().require("gcpProject");
const gcp = { type: "gcp.secretmanager", project_id: project };

// The latest version of a secret, a field of its JSON payload.
const dbPassword = new dsops.SecretReference("db-password", { store: gcp, key: "myapp-db#.password" });

// A pinned version, in dsops's `name@version` form, and a full resource name.
const pinned = new dsops.SecretReference("api-key-v2", { store: gcp, key: "api-key@2" });
const full = new dsops.SecretReference("api-key-full", { store: gcp, key: pulumi.interpolate`projects/${project}/secrets/api-key` });

exports.dbPasswordVersion = dbPassword.versionId;
exports.pinnedVersion = pinned.versionId;
exports.latestVersion = full.versionId;
