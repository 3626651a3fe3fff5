import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * policies.audit_logging through the Pulumi faces: the real Pulumi CLI (file backend), the
 * embedded file store, and a script rotation target (a shell script in the project).
 */
const PROGRAM = `"use strict";
const dsops = require("@dsops/pulumi");
const ref = new dsops.SecretReference("ref", { ref: "store://local/app/token" });
const env = new dsops.Environment("env", { configFile: "dsops.yaml", env: "app" });
const policy = new dsops.RotationPolicy("policy", { secret: "store://local/app/job", target: "job", user: "app", strategy: "single-user", schedule: { every: "3650d" }, rotateOnCreate: true });
exports.versionId = ref.versionId;
exports.status = policy.status;
`;

describe("Pulumi end to end: every secret access of the dynamic resources is in the audit log (never a value)", function () {
  this.timeout(600000);
  let project: PulumiProject;
  const values: string[] = [];
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  const store = () => new FileStore("local", { type: "file", path: join(project.dir, "secrets.store") }, { configDir: project.dir, clock: new ManualClock(Date.now()), env: { DSOPS_FILE_KEY: FILE_KEY } });
  const put = async (key: string, tag: string) => {
    const v = `${tag}-${randomBytes(9).toString("base64url")}`;
    values.push(v);
    return (await store().put(key, new Secret(v))).versionId;
  };
  const lines = () =>
    readFileSync(join(project.dir, "audit.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(() => pulumiBinDir());
  after(() => project?.cleanup());

  it("up: SecretReference create, Environment create, RotationPolicy rotate and read; a second up after a change: diff and update", async () => {
    project = new PulumiProject("dsops-audit", PROGRAM, { DSOPS_FILE_KEY: FILE_KEY });
    writeFileSync(join(project.dir, "rotate.sh"), '#!/bin/sh\ncat > /dev/null\necho \'{"success": true}\'\n', { mode: 0o755 });
    project.write(
      "dsops.yaml",
      `secretStores:\n  local: { type: file, path: ./secrets.store }\nservices:\n  job: { type: script, command: ./rotate.sh }\nenvs:\n  app:\n    TOKEN: { from: "store://local/app/token" }\n    MODE: { literal: e2e }\npolicies:\n  audit_logging: { enabled: true, log_path: ./audit.log, log_level: debug }\n`,
    );
    await put("app/token", "token1");
    await put("app/job", "job1");
    project.ok(["stack", "init", "audit"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const first = lines();
    const ok = (cmd: string) => first.filter((l) => l.command === cmd && l.outcome === "ok");
    assert.ok(first.every((l) => l.face === "pulumi"), JSON.stringify(first.map((l) => l.face)));
    const created = ok("pulumi SecretReference create");
    assert.equal(created.length, 1, JSON.stringify(first.map((l) => l.command)));
    assert.deepEqual([created[0]?.resource, created[0]?.store, created[0]?.key], ["store://local/app/token", "local", "app/token"]);
    assert.deepEqual(created[0]?.variables, [{ name: "store://local/app/token", store: "local", key: "app/token", versionId: "1" }]);
    const env = ok("pulumi Environment create");
    assert.equal(env.length, 1);
    assert.equal(env[0]?.env, "app");
    assert.deepEqual(env[0]?.variables, [{ name: "MODE" }, { name: "TOKEN", store: "local", key: "app/token", versionId: "1" }]);
    const rotated = ok("pulumi RotationPolicy rotate");
    assert.equal(rotated.length, 1, JSON.stringify(first.map((l) => [l.command, l.outcome, l.error])));
    assert.deepEqual([rotated[0]?.resource, rotated[0]?.key], ["store://local/app/job", "app/job"]);
    assert.ok(ok("pulumi RotationPolicy read").length >= 1, "the policy's value was read for its output");
    for (const l of first) {
      assert.equal(typeof l.user, "string");
      assert.equal(typeof l.pid, "number");
    }

    // A change in the store: the next up diffs (drift) and updates the reference.
    assert.equal(await put("app/token", "token2"), "2");
    project.ok(["up", "--yes", "--skip-preview"]);
    const second = lines().slice(first.length);
    assert.ok(second.some((l) => l.command === "pulumi SecretReference diff" && l.outcome === "ok"), JSON.stringify(second.map((l) => l.command)));
    const updated = second.filter((l) => l.command === "pulumi SecretReference update");
    assert.equal(updated.length, 1, JSON.stringify(second.map((l) => l.command)));
    assert.deepEqual(updated[0]?.variables, [{ name: "store://local/app/token", store: "local", key: "app/token", versionId: "2" }]);

    // Never a value: neither the stored ones nor the rotated one.
    const rotatedValue = (await store().get({ key: "app/job", version: "current" })).value.reveal();
    values.push(rotatedValue);
    const text = readFileSync(join(project.dir, "audit.log"), "utf8");
    for (const v of values) assert.ok(!text.includes(v), "a value in the audit log");
    project.assertNoLeak(values);
  });
});
