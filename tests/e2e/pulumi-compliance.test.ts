import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { FileHistory, defaultHistoryPath } from "../../provider/rotation/history/index";
import type { RotationRecord } from "../../provider/rotation/types";
import { dsops } from "../support/cli";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * The compliance report as a stack output: a Pulumi program (real Pulumi CLI, file backend)
 * exports getComplianceReport of the stack's own dsops.yaml (dsops:configFile); the output is
 * plain (not a secret) and is exactly the JSON `dsops report compliance --format json` writes.
 */
describe("Pulumi end to end: getComplianceReport as a stack output", function () {
  this.timeout(300000);
  let project: PulumiProject | undefined;
  const NOW = "2026-11-20T12:00:00Z";

  before(() => pulumiBinDir());
  after(() => project?.cleanup());

  it("exports the same JSON as the CLI, not a secret, with no value in state or output", async () => {
    const value = `e2e-${randomBytes(9).toString("base64url")}`;
    const env = { DSOPS_FILE_KEY: `key-${randomBytes(6).toString("hex")}`, DSOPS_CLOCK: NOW };
    project = new PulumiProject(
      "dsops-compliance",
      `"use strict";
const dsops = require("@dsops/pulumi");
const report = dsops.getComplianceReport({ framework: "soc2" });
exports.json = report.then((r) => r.json);
exports.failing = report.then((r) => r.report.summary.failing);
`,
      env,
    );
    const dir = project.dir;
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { db: { type: "postgresql", host: "127.0.0.1", port: 5432, database: "app", admin: "store://local/pg/admin" } },
        envs: { prod: { DB: { from: "store://local/app/db", metadata: { owner: "team-db" }, rotation: { service: "db", user: "app", ttl: "30d" } } } },
      }),
    );
    const set = dsops(["secrets", "set", "--store", "local", "--key", "app/db"], { cwd: dir, input: value, env: { ...env, DSOPS_CLOCK: "2026-11-01T00:00:00Z" } });
    assert.equal(set.status, 0, set.stderr);
    // A rotation record as the engine writes it, in the history next to the file store.
    await new FileHistory(defaultHistoryPath(dir), systemClock).save({
      id: "rot-e2e-1", kind: "rotate", secret: "store://local/app/db", env: "prod", variable: "DB", service: "db", targetType: "postgresql", strategy: "single-user",
      who: "ci@runner", startedAt: "2026-11-10T00:00:00.000Z", finishedAt: "2026-11-10T00:00:05.000Z", status: "succeeded", steps: [],
    } satisfies RotationRecord);

    const cli = dsops(["report", "compliance", "--framework", "soc2", "--format", "json", "--out", "report.json"], { cwd: dir, env });
    assert.equal(cli.status, 0, cli.stderr);
    project.ok(["stack", "init", "compliance"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["up", "--yes", "--skip-preview"]);
    const out = project.outputs(); // without --show-secrets: a secret would read "[secret]"
    assert.equal(out.json, readFileSync(join(dir, "report.json"), "utf8"));
    assert.equal(out.failing, 0);
    assert.equal((JSON.parse(out.json as string) as { credentials: Array<{ owner: string; lastRotation: { id: string } }> }).credentials[0].lastRotation.id, "rot-e2e-1");
    project.assertNoLeak([value]);
  });
});
