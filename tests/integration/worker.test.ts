import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { dsops, dsopsAsync, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";

/**
 * `dsops worker` through the built binary, several worker PROCESSES on a real PostgreSQL 15 that
 * holds both the pg-boss job queue (schema dsops_worker) and the rotated credentials (its roles).
 * A scheduler pass run twice queues each due rotation once (singleton key); three `--once`
 * workers rotate every credential exactly once; a worker killed with SIGKILL in the middle of a
 * job leaves it to another worker after --job-timeout, and no credential is lost (each role logs
 * in with the stored value). DSOPS_CLOCK fixes "now"; waits are polls of a condition with a deadline.
 */

const NOW = "2026-11-20T12:00:00Z";

describe("dsops worker (pg-boss on real PostgreSQL 15, several worker processes)", function () {
  this.timeout(180_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let hook: HttpReceiver;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ DSOPS_CLOCK: NOW, ...extra });
  const queueRef = "store://local/queue/url";

  function cli(args: string[], input?: string): CliResult {
    const r = dsops(args, { cwd: dir, ...(input !== undefined ? { input } : {}), env: env() });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  function current(e: string, v: string): string {
    const value = ok(cli(["get", "--env", e, "--var", v])).stdout.replace(/\n$/, "");
    outputs.pop(); // the one output that must hold the value
    values.add(value);
    return value;
  }
  function succeeded(e: string): Map<string, number> {
    const recs = JSON.parse(ok(cli(["rotation", "history", "--env", e, "--json"])).stdout) as RotationRecord[];
    const n = new Map<string, number>();
    for (const r of recs) if (r.kind === "rotate" && r.status === "succeeded") n.set(r.variable, (n.get(r.variable) ?? 0) + 1);
    return n;
  }
  async function jobs(state?: string): Promise<number> {
    const r = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM dsops_worker.job WHERE name = 'dsops-rotation'${state ? " AND state = $1" : ""}`, state ? [state] : []);
    return r.rows[0].n;
  }
  async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const vars = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, "0")}`);
  const many = vars("V", 20);
  const killed = vars("K", 6);
  const termed = vars("T", 4);

  before(async () => {
    pg = await startPostgres();
    hook = await startHttpReceiver();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-worker-"));
    const rotated = (names: string[]) => Object.fromEntries(names.map((v) => [v, { from: `store://local/app/${v}`, rotation: { service: "app-db", strategy: "single-user", user: `role_${v.toLowerCase()}`, ttl: "30d" } }]));
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
        // The engine's notification hub: workers send the rotations' events (only worker processes run async to it).
        notifications: { webhooks: [{ name: "audit", url: `${hook.url}/events` }] },
        envs: {
          prod: rotated(many),
          kill: rotated(killed),
          term: rotated(termed),
          // No such role: every attempt fails.
          dead: { GHOST: { from: "store://local/app/GHOST", rotation: { service: "app-db", strategy: "single-user", user: "ghost_role", ttl: "30d" } } },
        },
      }),
    );
    values.add(pg.adminPassword);
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    ok(cli(["secrets", "set", "--store", "local", "--key", "queue/url"], pg.connectionString(pg.adminUser, pg.adminPassword)));
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/GHOST"], "Ghost-password-1"));
    values.add("Ghost-password-1");
    for (const v of [...many, ...killed, ...termed]) {
      const pw = `Init-${v}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${v.toLowerCase()}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(cli(["secrets", "set", "--store", "local", "--key", `app/${v}`], pw));
    }
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    await hook?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a scheduler pass run twice queues each due rotation once (singleton key <env>/<variable>@<due instant>)", async () => {
    const first = ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--concurrency", "0", "--once", "--env", "prod"]));
    const second = ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--concurrency", "0", "--once", "--env", "prod"]));
    assert.equal(first.stdout.split("\n").filter((l) => l.startsWith("queued prod/")).length, 20, first.stdout);
    assert.equal(second.stdout.split("\n").filter((l) => l.startsWith("already queued prod/")).length, 20, second.stdout);
    assert.match(first.stdout, /queued prod\/V01 \(due /);
    assert.equal(await jobs(), 20);
    const keys = await admin.query<{ k: string }>("SELECT singleton_key AS k FROM dsops_worker.job WHERE name = 'dsops-rotation' ORDER BY 1");
    assert.equal(new Set(keys.rows.map((r) => r.k)).size, 20);
    assert.match(keys.rows[0].k, /^prod\/V01@\d{4}-\d\d-\d\dT/);
  });

  it("three worker processes (one with --concurrency 2) rotate every credential exactly once; each role logs in with the stored value", async () => {
    const runs = await Promise.all([["--concurrency", "2"], [], []].map((extra) => dsopsRun(["worker", "--once", ...extra], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: pg.connectionString(pg.adminUser, pg.adminPassword) }) })));
    outputs.push(...runs);
    for (const r of runs) ok(r);
    const done = runs.map((r) => r.stdout.split("\n").filter((l) => /^prod\/V\d\d: rotated/.test(l)).length);
    assert.equal(done.reduce((a, b) => a + b, 0), 20, runs.map((r) => r.stdout + r.stderr).join("\n---\n"));
    assert.equal(await jobs("completed"), 20);
    const n = succeeded("prod");
    for (const v of many) {
      assert.equal(n.get(v), 1, `${v} rotated ${n.get(v) ?? 0} times`);
      assert.ok(await pg.canLogin(`role_${v.toLowerCase()}`, current("prod", v)), `${v}: the role does not log in with the stored value`);
    }
    // A later pass: nothing is due any more, nothing is queued.
    const again = ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--once", "--env", "prod"]));
    assert.doesNotMatch(again.stdout, /queued/);
    assert.equal(await jobs(), 20);
  });

  it("a worker killed with SIGKILL in the middle of a job: another worker finishes everything after --job-timeout, no credential lost", async () => {
    ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--concurrency", "0", "--once", "--env", "kill", "--job-timeout", "10s"]));
    const url = pg.connectionString(pg.adminUser, pg.adminPassword);
    const a = dsopsAsync(["worker", "--job-timeout", "10s"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) });
    let aOut = "";
    a.stdout.on("data", (d: Buffer) => (aOut += d.toString()));
    a.stderr.on("data", (d: Buffer) => (aOut += d.toString()));
    const exited = new Promise<void>((r) => a.on("exit", () => r()));
    // Killed as soon as it holds a job of the kill env.
    const active = await until("worker A to take a job", async () => {
      const r = await admin.query<{ id: string }>("SELECT id FROM dsops_worker.job WHERE name = 'dsops-rotation' AND state = 'active' AND singleton_key LIKE 'kill/%'");
      return r.rows[0]?.id;
    });
    a.kill("SIGKILL");
    await exited;
    outputs.push({ status: null, stdout: aOut, stderr: "" } as unknown as CliResult);
    const left = await admin.query<{ state: string }>("SELECT state FROM dsops_worker.job WHERE id = $1", [active]);
    assert.equal(left.rows[0].state, "active", "the killed worker's job is left active");

    const bp = dsopsAsync(["worker", "--once", "--job-timeout", "10s"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) });
    const b = { status: null as number | null, stdout: "", stderr: "" };
    bp.stdout.on("data", (d: Buffer) => (b.stdout += d.toString()));
    bp.stderr.on("data", (d: Buffer) => (b.stderr += d.toString()));
    const bExit = new Promise<void>((r) => bp.on("exit", (code) => ((b.status = code), r())));
    outputs.push(b as CliResult);
    await until("worker B to finish", async () => (b.status !== null ? true : undefined), 90_000).catch((e: Error) => {
      bp.kill("SIGKILL");
      throw new Error(`${e.message}\n${b.stdout}\n${b.stderr}`);
    });
    await bExit;
    ok(b as CliResult);
    const after = await admin.query<{ state: string; retry_count: number }>("SELECT state, retry_count FROM dsops_worker.job WHERE id = $1", [active]);
    assert.equal(after.rows[0].state, "completed");
    assert.ok(after.rows[0].retry_count >= 1, "the abandoned job was retried");
    const n = succeeded("kill");
    for (const v of killed) {
      assert.equal(n.get(v), 1, `${v} rotated ${n.get(v) ?? 0} times`);
      assert.ok(await pg.canLogin(`role_${v.toLowerCase()}`, current("kill", v)), `${v}: the role does not log in with the stored value`);
    }
  });

  it("SIGTERM: the worker takes no new job, finishes the running one and exits 0", async () => {
    ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--concurrency", "0", "--once", "--env", "term"]));
    const url = pg.connectionString(pg.adminUser, pg.adminPassword);
    const w = dsopsAsync(["worker"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) });
    const r = { status: null as number | null, stdout: "", stderr: "" };
    w.stdout.on("data", (d: Buffer) => (r.stdout += d.toString()));
    w.stderr.on("data", (d: Buffer) => (r.stderr += d.toString()));
    const exited = new Promise<void>((res) => w.on("exit", (code) => ((r.status = code), res())));
    outputs.push(r as CliResult);
    const termJobs = (state: string) => admin.query<{ n: number }>("SELECT count(*)::int AS n FROM dsops_worker.job WHERE singleton_key LIKE 'term/%' AND state = $1", [state]).then((x) => x.rows[0].n);
    await until("the worker to take a job", async () => ((await termJobs("active")) > 0 ? true : undefined));
    w.kill("SIGTERM");
    await exited;
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /stopping: no new job is taken; the running ones finish/);
    assert.equal(await termJobs("active"), 0, "no job left running");
    const completed = await termJobs("completed");
    assert.ok(completed >= 1, "the running job finished");
    assert.ok((await termJobs("created")) >= 1, "the worker stopped taking jobs");
    const n = succeeded("term");
    let rotatedCount = 0;
    for (const v of termed) {
      rotatedCount += n.get(v) ?? 0;
      assert.ok(await pg.canLogin(`role_${v.toLowerCase()}`, current("term", v)), `${v}: the role does not log in with the stored value`);
    }
    assert.equal(rotatedCount, completed);
  });

  it("a failing rotation is retried with backoff, then its job lands in the dead-letter queue; each attempt sends the rotation's failed notification", async () => {
    hook.reset();
    ok(cli(["worker", "--database-url", queueRef, "--scheduler", "--concurrency", "0", "--once", "--env", "dead", "--retry-limit", "1"]));
    const r = ok(await dsopsRun(["worker", "--once"], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: pg.connectionString(pg.adminUser, pg.adminPassword) }) }));
    outputs.push(r);
    assert.equal(r.stderr.split("\n").filter((l) => /^worker: dead\/GHOST: failed \(job .*dead-lettered to dsops-rotation-dead\): /.test(l)).length, 2, r.stderr);
    const job = await admin.query<{ state: string; retry_count: number }>("SELECT state, retry_count FROM dsops_worker.job WHERE name = 'dsops-rotation' AND singleton_key LIKE 'dead/%'");
    assert.deepEqual(job.rows.map((x) => [x.state, x.retry_count]), [["failed", 1]]);
    const dl = await admin.query<{ data: { env: string; variable: string } }>("SELECT data FROM dsops_worker.job WHERE name = 'dsops-rotation-dead'");
    assert.deepEqual(dl.rows.map((x) => `${x.data.env}/${x.data.variable}`), ["dead/GHOST"]);
    const events = hook.requests.map((q) => JSON.parse(q.body) as { type: string; env: string; variable: string });
    assert.equal(events.filter((e) => e.type === "failed" && e.env === "dead" && e.variable === "GHOST").length, 2, JSON.stringify(events));
    for (const q of hook.requests) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a value");
  });

  it("bad settings: no database URL is a usage error (2); an unreachable PostgreSQL names --database-url (1)", () => {
    const none = cli(["worker", "--once"]);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /--database-url/);
    const refused = cli(["worker", "--once", "--database-url", "postgresql://u:Refused-pw-1@127.0.0.1:1/x"]);
    values.add("Refused-pw-1");
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /--database-url: cannot use the job queue's PostgreSQL/);
  });
});
