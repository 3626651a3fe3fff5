import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { DsopsMetrics, serveMetrics } from "../../provider/metrics/index";
import { composeRotation } from "../../provider/compose/rotation";
import { RotationError } from "../../provider/rotation/engine";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsAsync } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

function dsops(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = dsopsAsync(args, opts);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
}

/** The value of one sample line `name{labels} value` in exposition text (undefined when absent). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

describe("metrics: the engine's events in a Prometheus registry, `dsops metrics serve|textfile` (real rotations on PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let dir: string;
  let config: Config;
  const env = { DSOPS_FILE_KEY: "metrics-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "metrics" };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const metrics = new DsopsMetrics();

  before(async () => {
    pg = await startPostgres();
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE TABLE guarded (x int)");
    dir = mkdtempSync(join(tmpdir(), "dsops-metrics-"));
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    for (const u of ["app", "bad"]) {
      const pw = `Init-${u}-${Math.random().toString(36).slice(2)}`;
      await admin.query(`CREATE ROLE ${escapeIdentifier(u)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      await store().put(`app/${u}`, new Secret(pw));
    }
    await admin.end();
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
metrics:
  prometheus: { enabled: true, textfile: ./textfile/dsops.prom }
envs:
  prod:
    APP: { from: "store://local/app/app", rotation: { service: app-db, user: app } }
    BAD: { from: "store://local/app/bad", rotation: { service: app-db, user: bad, verification: { query: "SELECT * FROM guarded" } } }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
  });
  after(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("in process: rotations update the registry; served over HTTP and scraped with fetch", async () => {
    const e = composeRotation(config, { env: { ...process.env, ...env }, metrics });
    try {
      await e.rotate("prod", "APP");
      await e.rotate("prod", "APP");
      await assert.rejects(e.rotate("prod", "BAD"), RotationError);
    } finally {
      await e.close();
    }
    const srv = await serveMetrics(metrics, { port: 0, path: "/metrics" });
    try {
      const res = await fetch(srv.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.equal(sample(text, "dsops_rotation_started_total", { service: "app-db", env: "prod", strategy: "single-user" }), 3);
      assert.equal(sample(text, "dsops_rotation_completed_total", { service: "app-db", env: "prod", status: "succeeded" }), 2);
      assert.equal(sample(text, "dsops_rotation_completed_total", { service: "app-db", env: "prod", status: "rolled-back" }), 1);
      assert.equal(sample(text, "dsops_rollback_total", { service: "app-db", env: "prod", trigger: "automatic" }), 1);
      assert.equal(sample(text, "dsops_rotation_duration_seconds_count", { service: "app-db", env: "prod", status: "succeeded" }), 2);
      assert.ok((sample(text, "dsops_rotation_duration_seconds_sum", { service: "app-db", env: "prod", status: "succeeded" }) ?? 0) > 0);
      for (const name of ["dsops_health_check_duration_seconds", "dsops_health_check_status", "dsops_notifications_dropped_total"]) assert.match(text, new RegExp(`^# TYPE ${name} `, "m"));
      assert.equal((await fetch(srv.url.replace("/metrics", "/other"))).status, 404);
    } finally {
      await srv.close();
    }
    // The engine wrote the configured textfile (from the history) after each run.
    const tf = readFileSync(join(dir, "textfile", "dsops.prom"), "utf8");
    assert.equal(sample(tf, "dsops_rotation_started_total", { service: "app-db", env: "prod", strategy: "single-user" }), 3);
  });

  it("`dsops metrics serve`: counts from the rotation history, including CLI runs and a manual rollback", async () => {
    assert.equal((await dsops(["secrets", "rotate", "-e", "prod", "--var", "APP"], { cwd: dir, env })).status, 0);
    const rb = await dsops(["rotation", "rollback", "--service", "app-db", "-e", "prod", "--var", "APP", "--reason", "metrics test"], { cwd: dir, env });
    assert.equal(rb.status, 0, rb.stderr);
    const child = dsopsAsync(["metrics", "serve", "--port", "0", "--path", "/m"], { cwd: dir, env });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = "";
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString("utf8");
          const m = /serving metrics at (\S+)/.exec(err);
          if (m) resolve(m[1]);
        });
        child.on("exit", (c) => reject(new Error(`exited ${c}: ${err}`)));
      });
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/m$/);
      const text = await (await fetch(url)).text();
      assert.equal(sample(text, "dsops_rotation_started_total", { service: "app-db", env: "prod", strategy: "single-user" }), 4);
      assert.equal(sample(text, "dsops_rotation_completed_total", { service: "app-db", env: "prod", status: "succeeded" }), 3);
      assert.equal(sample(text, "dsops_rollback_total", { service: "app-db", env: "prod", trigger: "manual" }), 1);
      assert.equal(sample(text, "dsops_rollback_total", { service: "app-db", env: "prod", trigger: "automatic" }), 1);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("close", r));
    }
  });

  it("`dsops metrics textfile PATH` writes node_exporter's format atomically", async () => {
    const p = join(dir, "out", "dsops.prom");
    const r = await dsops(["metrics", "textfile", p], { cwd: dir, env });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(p));
    const text = readFileSync(p, "utf8");
    assert.match(text, /^# HELP dsops_rotation_started_total /m);
    assert.equal(sample(text, "dsops_rotation_completed_total", { service: "app-db", env: "prod", status: "rolled-back" }), 1);
    assert.equal(sample(text, "dsops_rotation_started_total", { service: "app-db", env: "prod", strategy: "single-user" }), 4);
  });
});
