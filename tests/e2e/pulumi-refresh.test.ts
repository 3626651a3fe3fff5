import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * What `pulumi refresh` and `pulumi preview --diff` print for a secret changed in the store:
 * the real Pulumi CLI (file backend) and the embedded file store. The policy's target is never
 * contacted (nothing rotates here).
 */
const PROGRAM = `"use strict";
const dsops = require("@dsops/pulumi");
const ref = new dsops.SecretReference("ref", { ref: "store://local/app/token" });
const env = new dsops.Environment("env", { configFile: "dsops.yaml", env: "app" });
const policy = new dsops.RotationPolicy("policy", {
  secret: "store://local/app/login",
  target: { type: "postgresql", host: "127.0.0.1", port: 9, database: "app", admin: "store://local/pg/admin", user: "app" },
  strategy: "single-user", schedule: { every: "3650d" },
});
exports.versionId = ref.versionId;
exports.status = policy.status;
`;

/** The lines of the CLI output that belong to one resource's block of a `--diff` display. */
function block(text: string, type: string, name: string): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l, i) => l.includes(`dsops:${type}: (`) && lines.slice(i, i + 4).some((x) => x.includes(`::${name}]`)));
  if (start < 0) return "";
  const end = lines.findIndex((l, i) => i > start && /^\s*[~+-]?\s*pulumi(-nodejs)?:[\w/:]+: \(/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

describe("Pulumi end to end: refresh and preview --diff show what changed in the store", function () {
  this.timeout(600000);
  const projects: PulumiProject[] = [];
  const values: string[] = [];
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;

  /** A stack of PROGRAM, up to date: the token and the policy's login at version 1. */
  async function stack(name: string) {
    const project = new PulumiProject(`dsops-refresh-${name}`, PROGRAM, { DSOPS_FILE_KEY: FILE_KEY });
    projects.push(project);
    project.write("dsops.yaml", `secretStores:\n  local: { type: file, path: ./secrets.store }\nenvs:\n  app:\n    TOKEN: { from: "store://local/app/token" }\n    MODE: { literal: e2e }\n`);
    const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.now()), env: { DSOPS_FILE_KEY: FILE_KEY } });
    const put = async (key: string, tag: string) => {
      const v = `${tag}-${randomBytes(9).toString("base64url")}`;
      values.push(v);
      return (await store().put(key, new Secret(v))).versionId;
    };
    const stateOf = (resource: string): Record<string, unknown> => {
      const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; outputs: Record<string, unknown> }> } };
      const r = state.deployment.resources.find((x) => x.urn.endsWith(`::${resource}`));
      assert.ok(r, `no resource ${resource} in state`);
      return r.outputs;
    };
    await put("app/token", "token1");
    await put("app/login", "login1");
    // The policy's check asks the store that its admin credential exists (it is never used here).
    await put("pg/admin", "admin1");
    project.ok(["stack", "init", name]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    assert.deepEqual(project.previewSummary(), { same: 4 });
    return { project, put, stateOf };
  }

  before(() => pulumiBinDir());
  after(() => {
    for (const p of projects) p.cleanup();
  });

  it("preview --diff says which variable of an Environment moved, and from which version to which", async () => {
    const { project, put } = await stack("diff");
    assert.equal(await put("app/token", "token2"), "2");
    const r = project.ok(["preview", "--diff"]);
    const env = block(r.stdout, "Environment", "env");
    assert.match(env, /~ pulumi-nodejs:dynamic\/dsops:Environment: \(update\)/, r.stdout);
    assert.match(env, /~ currentVersions\s*: \{\s*~ TOKEN\s*: "1" => "2"\s*\}/, env);
    project.assertNoLeak(values);
  });

  it("refresh shows a changed SecretReference and Environment, and a RotationPolicy that became drifted, as updated", async () => {
    const { project, put, stateOf } = await stack("refresh");
    await put("app/token", "token2");
    await put("app/login", "login2"); // changed outside the policy
    const r = project.ok(["refresh", "--yes", "--skip-preview"]);
    for (const name of ["ref", "env", "policy"]) assert.match(r.stdout, new RegExp(`dsops:\\w+ ${name} updated`), r.stdout);
    assert.match(r.stdout, /~ 3 updated\s+1 unchanged/, r.stdout);
    assert.equal(stateOf("policy").status, "drifted");
    assert.equal(stateOf("ref").versionId, "2");
    assert.deepEqual(project.previewSummary(), { same: 4 }, "the refreshed state is current: nothing to update");
    const again = project.ok(["refresh", "--yes", "--skip-preview"]);
    assert.doesNotMatch(again.stdout, /updated/, "a refresh that finds nothing new reports nothing");
    project.assertNoLeak(values);
  });

  it("refresh --diff shows the versions that moved", async () => {
    const { project, put } = await stack("refresh-diff");
    await put("app/token", "token2");
    await put("app/login", "login2");
    const d = project.ok(["refresh", "--yes", "--skip-preview", "--diff"]);
    assert.match(block(d.stdout, "SecretReference", "ref"), /~ versionId\s*: "1" => "2"/, d.stdout);
    assert.match(block(d.stdout, "Environment", "env"), /~ versionId\s*: "1" => "2"/, d.stdout);
    const policy = block(d.stdout, "RotationPolicy", "policy");
    assert.match(policy, /~ status\s*: "current" => "drifted"/, d.stdout);
    assert.match(policy, /~ currentVersionId\s*: "1" => "2"/, d.stdout);
    assert.match(d.stdout, /~ 3 updated/, d.stdout);
    project.assertNoLeak(values);
  });
});
