import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { dsops, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";

/**
 * `dsops worker` operations through the built binary on a real PostgreSQL 15 (the pg-boss queue
 * and the rotated roles) and real HTTP receivers (webhook notifications): the dead-letter
 * notification, the worker's Prometheus endpoint, `dsops rotation queue`, windows and blackouts.
 * DSOPS_CLOCK fixes "now"; waits are polls of a condition with a deadline, never sleeps.
 */

const NOW = "2026-11-20T12:00:00Z";

describe("dsops worker operations (real PostgreSQL 15, real webhook receiver)", function () {
  this.timeout(180_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let hook: HttpReceiver;
  let url: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ DSOPS_CLOCK: NOW, ...extra });

  function cli(args: string[], input?: string, clock = NOW): CliResult {
    const r = dsops(args, { cwd: dir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: clock, DSOPS_WORKER_DATABASE_URL: url } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  const pgRotation = (role: string, extra: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user: role, ttl: "30d", ...extra });

  before(async () => {
    pg = await startPostgres();
    hook = await startHttpReceiver();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    url = pg.connectionString(pg.adminUser, pg.adminPassword);
    values.add(pg.adminPassword);
    dir = mkdtempSync(join(tmpdir(), "dsops-worker-ops-"));
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
        notifications: { webhooks: [{ name: "audit", url: `${hook.url}/audit` }, { name: "other", url: `${hook.url}/other` }] },
        envs: {
          // No such role: every attempt fails. Only the audit webhook hears of it.
          dead: { GHOST: { from: "store://local/app/GHOST", rotation: pgRotation("ghost_role", { notifications: { channels: ["webhook:audit"] } }) } },
        },
      }),
    );
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/GHOST"], "Ghost-password-1"));
    values.add("Ghost-password-1");
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    for (const q of hook?.requests ?? []) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    await hook?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a job that exhausts its retries lands in dsops-rotation-dead and one dead-lettered notification goes out through the rotation's channels (attempts, last error, no value)", async () => {
    hook.reset();
    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "dead", "--retry-limit", "1"]));
    const r = ok(await dsopsRun(["worker", "--once"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) }));
    outputs.push(r);
    assert.match(r.stderr, /worker: dead\/GHOST: dead-lettered after 2 attempt\(s\) \(job [0-9a-f-]+\): .*ghost_role.*; notified 1 channel\(s\)/, r.stderr);
    const dl = await admin.query<{ state: string; data: { env: string; variable: string } }>("SELECT state, data FROM dsops_worker.job WHERE name = 'dsops-rotation-dead'");
    assert.deepEqual(dl.rows.map((x) => [x.state, `${x.data.env}/${x.data.variable}`]), [["completed", "dead/GHOST"]]);
    const source = await admin.query<{ id: string }>("SELECT id::text FROM dsops_worker.job WHERE name = 'dsops-rotation' AND singleton_key LIKE 'dead/%'");
    const dead = hook.requests.filter((q) => q.headers["x-dsops-event"] === "dead-lettered");
    assert.equal(dead.length, 1, JSON.stringify(hook.requests.map((q) => [q.path, q.headers["x-dsops-event"]])));
    assert.equal(dead[0].path, "/audit", "sent through the rotation's channels only");
    const e = JSON.parse(dead[0].body) as Record<string, unknown>;
    assert.equal(e.type, "dead-lettered");
    assert.equal(e.title, "Rotation dead-lettered");
    assert.equal(e.env, "dead");
    assert.equal(e.variable, "GHOST");
    assert.equal(e.service, "app-db");
    assert.equal(e.secret, "store://local/app/GHOST");
    assert.equal(e.attempts, 2);
    assert.equal(e.jobId, source.rows[0].id);
    assert.match(String(e.error), /ghost_role/);
    assert.equal(hook.requests.filter((q) => q.path === "/other").length, 0);
    // Another --once run: the dead job is not notified again.
    const again = ok(await dsopsRun(["worker", "--once"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) }));
    outputs.push(again);
    assert.doesNotMatch(again.stderr, /dead-lettered/);
    assert.equal(hook.requests.filter((q) => q.headers["x-dsops-event"] === "dead-lettered").length, 1);
  });
});
