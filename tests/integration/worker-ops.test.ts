import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { registerPolicy } from "../../provider/compose/registered-policies";
import { dsops, dsopsAsync, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";

/**
 * `dsops worker` operations through the built binary on a real PostgreSQL 15 (the pg-boss queue
 * and the rotated roles) and real HTTP receivers (webhook notifications): the dead-letter
 * notification, the worker's Prometheus endpoint, `dsops rotation queue`, windows and blackouts.
 * DSOPS_CLOCK fixes "now"; waits are polls of a condition with a deadline, never sleeps.
 */

const NOW = "2026-11-20T12:00:00Z";
const SAT_OPEN = "2026-11-21T03:00:00Z";
const SAT_CLOSED = "2026-11-21T07:00:00Z";
const saturday = { schedule: "0 2 * * 6", duration: "4h" };

describe("dsops worker operations (real PostgreSQL 15, real webhook receiver)", function () {
  this.timeout(180_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let hook: HttpReceiver;
  let stuck: HttpReceiver;
  let url: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ DSOPS_CLOCK: NOW, ...extra });

  function cli(args: string[], input?: string, clock = NOW): CliResult {
    const r = dsops(args, { cwd: dir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: clock, DSOPS_WORKER_DATABASE_URL: url } });
    outputs.push(r);
    return r;
  }
  /** Async: the test's receivers answer while it runs (a synchronous run blocks them, and notifications time out). */
  async function acli(args: string[], clock = NOW): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env: { DSOPS_CLOCK: clock, DSOPS_WORKER_DATABASE_URL: url } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  /** A worker process in the background; `out` collects stdout and stderr. */
  function background(args: string[]) {
    const p = dsopsAsync(["worker", ...args], { cwd: dir, env: env({ DSOPS_WORKER_DATABASE_URL: url }) });
    const r = { status: null as number | null, stdout: "", stderr: "" };
    p.stdout.on("data", (d: Buffer) => (r.stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (r.stderr += d.toString()));
    const exited = new Promise<void>((res) => p.on("exit", (code) => ((r.status = code), res())));
    outputs.push(r as CliResult);
    return { p, r, exited };
  }
  const jobState = async (key: string) => (await admin.query<{ state: string }>("SELECT state FROM dsops_worker.job WHERE name = 'dsops-rotation' AND singleton_key LIKE $1", [`${key}@%`])).rows[0]?.state;
  async function scrape(metricsUrl: string): Promise<Map<string, number>> {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    const m = new Map<string, number>();
    for (const line of (await res.text()).split("\n")) if (line && !line.startsWith("#")) m.set(line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1)));
    return m;
  }
  const pgRotation = (role: string, extra: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user: role, ttl: "30d", ...extra });

  before(async () => {
    pg = await startPostgres();
    hook = await startHttpReceiver();
    stuck = await startHttpReceiver(() => "hang");
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
        services: {
          "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" },
          // A webhook target that never answers: its job stays running.
          stuck: { type: "webhook", url: `${stuck.url}/rotate`, timeout_ms: 600000 },
        },
        notifications: { webhooks: [{ name: "audit", url: `${hook.url}/audit` }, { name: "other", url: `${hook.url}/other` }] },
        envs: {
          // No such role: every attempt fails. Only the audit webhook hears of it.
          dead: { GHOST: { from: "store://local/app/GHOST", rotation: pgRotation("ghost_role", { notifications: { channels: ["webhook:audit"] } }) } },
          good: { G1: { from: "store://local/app/G1", rotation: pgRotation("role_g1") }, G2: { from: "store://local/app/G2", rotation: pgRotation("role_g2") } },
          hang: { H1: { from: "store://local/app/H1", rotation: { service: "stuck", strategy: "single-user", user: "svc", ttl: "30d" } } },
          retry: { R1: { from: "store://local/app/R1", rotation: pgRotation("ghost_retry") } },
          wait: { W1: { from: "store://local/app/W1", rotation: pgRotation("role_w1") } },
          // Saturdays 02:00-06:00 UTC; NOW is a Friday.
          win: {
            WA: { from: "store://local/app/WA", rotation: pgRotation("role_wa", { windows: [saturday] }) },
            WB: { from: "store://local/app/WB", rotation: pgRotation("role_wb", { windows: [{ ...saturday, blackouts: [{ start: "2026-11-21", end: "2026-11-22", reason: "freeze" }] }] }) },
            // dsops's form of the same window.
            WD: { from: "store://local/app/WD", rotation: pgRotation("role_wd", { constraints: { maintenanceWindows: [{ cron: "0 2 * * 6", duration: "4h", timezone: "UTC" }] } }) },
          },
          late: { WC: { from: "store://local/app/WC", rotation: pgRotation("role_wc", { windows: [saturday] }) } },
          // Its worker dies on the only attempt (--retry-limit 0): the job expires into the dead-letter queue.
          expire: { E1: { from: "store://local/app/E1", rotation: { service: "stuck", strategy: "single-user", user: "svc", ttl: "30d", notifications: { channels: ["webhook:audit"] } } } },
          runwin: { WE: { from: "store://local/app/WE", rotation: pgRotation("role_we", { constraints: { maintenanceWindows: [{ cron: "0 2 * * 6", duration: "4h" }] } }) } },
        },
      }),
    );
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/GHOST"], "Ghost-password-1"));
    values.add("Ghost-password-1");
    for (const v of ["G1", "G2", "W1", "H1", "R1", "WA", "WB", "WC", "WD", "WE", "E1"]) {
      const pw = `Init-${v}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      if (v !== "H1" && v !== "R1" && v !== "E1") await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${v.toLowerCase()}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(cli(["secrets", "set", "--store", "local", "--key", `app/${v}`], pw));
    }
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    for (const q of hook?.requests ?? []) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    await hook?.close();
    await stuck?.close();
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

  it("--metrics-listen serves queue depth by state, the oldest waiting job's age and runs by outcome during a run; dsops rotation queue lists waiting, running, retrying and dead jobs", async () => {
    // W1 rotates the good env, then takes the hang env's job and stays on it.
    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "good"]));
    const w1 = background(["--metrics-listen", "127.0.0.1:0"]);
    const metricsUrl = await until("the metrics URL", async () => /serving metrics at (http:\/\/\S+)/.exec(w1.r.stderr)?.[1]);
    assert.equal(metricsUrl.replace(/:\d+\//, ":PORT/"), "http://127.0.0.1:PORT/metrics");
    await until("the good env rotated", async () => ((await jobState("good/G1")) === "completed" && (await jobState("good/G2")) === "completed" ? true : undefined));
    const first = await scrape(metricsUrl);
    assert.equal(first.get('dsops_worker_runs_total{outcome="rotated"}'), 2);
    assert.equal(first.get('dsops_worker_runs_total{outcome="dead"}'), 0);
    assert.equal(first.get('dsops_worker_queue_jobs{state="dead"}'), 1);
    assert.equal(first.get('dsops_rotation_completed_total{service="app-db",env="good",status="succeeded"}'), 2, [...first.keys()].join("\n"));

    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "hang"]));
    await until("W1 to hold the hang job", async () => ((await jobState("hang/H1")) === "active" && stuck.requests.length > 0 ? true : undefined));
    // W2 makes one failing attempt of the retry env's job, then stops (SIGTERM) with the job retrying.
    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "retry", "--retry-limit", "5"]));
    const w2 = background([]);
    await until("the retry job to retry", async () => ((await jobState("retry/R1")) === "retry" ? true : undefined));
    w2.p.kill("SIGTERM");
    await w2.exited;
    assert.equal(w2.r.status, 0, w2.r.stderr);
    assert.equal(await jobState("retry/R1"), "retry");
    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "wait"]));

    const during = await scrape(metricsUrl);
    assert.equal(during.get('dsops_worker_queue_jobs{state="created"}'), 1);
    assert.equal(during.get('dsops_worker_queue_jobs{state="retry"}'), 1);
    assert.equal(during.get('dsops_worker_queue_jobs{state="active"}'), 1);
    assert.equal(during.get('dsops_worker_queue_jobs{state="dead"}'), 1);
    assert.equal(during.get('dsops_worker_queue_jobs{state="failed"}'), 1, "the dead job's original, failed");
    assert.ok((during.get("dsops_worker_oldest_waiting_seconds") ?? 0) > 0, "the oldest waiting job has an age");

    const table = ok(cli(["rotation", "queue"]));
    const line = (v: string) => table.stdout.split("\n").find((l) => l.startsWith(v)) ?? "";
    assert.match(table.stdout, /^VARIABLE +DUE +STATE +ATTEMPTS +STARTED\/CREATED +LAST ERROR/);
    assert.match(line("wait/W1"), /wait\/W1 +\d{4}-\d\d-\d\dT\S+ +waiting +0\/4 +created \S+ +-/);
    assert.match(line("hang/H1"), /running +1\/4 +started /);
    assert.match(line("retry/R1"), /retrying \(next \S+\) +[12]\/6 +created \S+ +store:\/\/local\/app\/R1: /);
    assert.match(line("dead/GHOST"), /dead +2\/2 +created \S+ +store:\/\/local\/app\/GHOST: /);
    assert.doesNotMatch(table.stdout, /good\//, "completed jobs are not listed");
    // --database-url as a store:// reference holding the URL.
    ok(cli(["secrets", "set", "--store", "local", "--key", "queue/url"], url));
    const rows = JSON.parse(ok(cli(["rotation", "queue", "--json", "--database-url", "store://local/queue/url"])).stdout) as Array<{ env: string; variable: string; state: string; attempts: number; lastError?: string; startedAt?: string; dueAt?: string }>;
    const by = new Map(rows.map((x) => [`${x.env}/${x.variable}`, x]));
    assert.deepEqual([...by.keys()].sort(), ["dead/GHOST", "hang/H1", "retry/R1", "wait/W1"]);
    assert.equal(by.get("wait/W1")?.state, "waiting");
    assert.equal(by.get("hang/H1")?.state, "running");
    assert.ok(by.get("hang/H1")?.startedAt);
    assert.equal(by.get("retry/R1")?.state, "retrying");
    assert.match(by.get("retry/R1")?.lastError ?? "", /ghost_retry/);
    assert.equal(by.get("dead/GHOST")?.state, "dead");
    assert.equal(by.get("dead/GHOST")?.attempts, 2);
    assert.equal(by.get("wait/W1")?.dueAt, new Date(NOW).toISOString());

    w1.p.kill("SIGKILL");
    await w1.exited;
    // The killed worker's job would wait for --job-timeout (15m), and the retrying one for its backoffs: out of the way of the next tests.
    await admin.query("DELETE FROM dsops_worker.job WHERE name = 'dsops-rotation' AND (singleton_key LIKE 'hang/%' OR singleton_key LIKE 'retry/%')");
  });

  it("dsops rotation queue: no URL is a usage error (2); an unreachable server names --database-url (1); an empty database says the queue does not exist yet", async () => {
    const none = dsops(["rotation", "queue"], { cwd: dir, env: {} });
    outputs.push(none);
    assert.equal(none.status, 2, none.stderr);
    const refused = cli(["rotation", "queue", "--database-url", "postgresql://u:Refused-pw-2@127.0.0.1:1/x"]);
    values.add("Refused-pw-2");
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /--database-url: cannot connect to the job queue's PostgreSQL/);
    await admin.query("CREATE DATABASE empty_queue");
    const empty = cli(["rotation", "queue", "--database-url", pg.connectionString(pg.adminUser, pg.adminPassword, "empty_queue")]);
    assert.equal(empty.status, 0, empty.stderr);
    assert.match(empty.stdout, /no job queue in this database yet/);
  });

  describe("windows and blackouts, with a moved clock (DSOPS_CLOCK)", () => {
    const password = async (role: string) => (await admin.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1", [role])).rows[0].p;
    const queuedFor = async (e: string) => (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM dsops_worker.job WHERE name = 'dsops-rotation' AND singleton_key LIKE $1", [`${e}/%`])).rows[0].n;

    it("the scheduler does not queue a due rotation outside its window (due but waiting for the opening) nor one a blackout blocks; inside the window it queues it and a worker rotates it", async () => {
      const friday = ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "win"]));
      assert.match(friday.stdout, /^not queued win\/WA: due but waiting for the window opening at 2026-11-21T02:00:00\.000Z$/m);
      assert.match(friday.stdout, /^not queued win\/WD: due but waiting for the window opening at 2026-11-21T02:00:00\.000Z$/m, "dsops's constraints.maintenanceWindows");
      assert.doesNotMatch(friday.stdout, /^queued /m);
      assert.equal(await queuedFor("win"), 0);

      const before = { wa: await password("role_wa"), wb: await password("role_wb"), wd: await password("role_wd") };
      const sat = ok(await acli(["worker", "--scheduler", "--once", "--env", "win"], SAT_OPEN));
      assert.match(sat.stdout, /^queued win\/WA \(due /m);
      assert.match(sat.stdout, /^queued win\/WD \(due /m);
      assert.match(sat.stdout, /^not queued win\/WB: blocked \(blackout: freeze\)$/m);
      assert.match(sat.stdout, /^win\/WA: rotated \(version /m);
      assert.match(sat.stdout, /^win\/WD: rotated \(version /m);
      assert.equal(await queuedFor("win"), 2);
      assert.notEqual(await password("role_wa"), before.wa);
      assert.notEqual(await password("role_wd"), before.wd);
      assert.equal(await password("role_wb"), before.wb, "the blackout kept WB unrotated");
    });

    it("a job queued inside the window that a worker takes after it closed is skipped, not rotated; the next opening queues it again", async () => {
      ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "late"], undefined, SAT_OPEN));
      const before = await password("role_wc");
      const closed = ok(await acli(["worker", "--once"], SAT_CLOSED));
      assert.match(closed.stdout, /^late\/WC: skipped \(outside its windows: the next opens at 2026-11-28T02:00:00\.000Z\) job /m);
      assert.equal(await password("role_wc"), before, "not rotated outside its window");
      assert.equal(await jobState("late/WC"), "completed");
      const next = ok(await acli(["worker", "--scheduler", "--once", "--env", "late"], "2026-11-28T02:30:00Z"));
      assert.match(next.stdout, /^late\/WC: rotated \(version /m);
      assert.notEqual(await password("role_wc"), before);
    });

    it("dsops rotation run --due honours constraints.maintenanceWindows (dsops's form) as rotation.windows", async () => {
      const friday = cli(["rotation", "run", "--due", "--env", "runwin", "--json"]);
      assert.equal(friday.status, 0, friday.stderr);
      const [row] = JSON.parse(friday.stdout) as Array<{ state: string; decision: string; opensAt: string; result: string }>;
      assert.equal(row.state, "waiting");
      assert.equal(row.opensAt, "2026-11-21T02:00:00.000Z");
      assert.equal(row.result, "-");
      const sat = await acli(["rotation", "run", "--due", "--env", "runwin", "--json"], SAT_OPEN);
      assert.equal(sat.status, 0, sat.stderr);
      assert.equal((JSON.parse(sat.stdout) as Array<{ result: string }>)[0].result, "rotated");
    });

    it("constraints.maintenanceWindows: a bad entry, or both forms, fail when dsops.yaml loads, naming the path", () => {
      const bad = mkdtempSync(join(tmpdir(), "dsops-mw-"));
      try {
        const write = (rotation: Record<string, unknown>) =>
          writeFileSync(
            join(bad, "dsops.yaml"),
            JSON.stringify({
              version: 1,
              secretStores: { local: { type: "file", path: "./s.store" } },
              services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: 5432, database: "postgres", admin: "store://local/pg/admin" } },
              envs: { prod: { DB: { from: "store://local/app/DB", rotation: { service: "app-db", user: "app", ttl: "30d", ...rotation } } } },
            }),
          );
        const run = () => {
          const r = dsops(["rotation", "run", "--due", "--dry-run"], { cwd: bad, env: { DSOPS_CLOCK: NOW } });
          outputs.push(r);
          return r;
        };
        write({ constraints: { maintenanceWindows: [{ duration: "4h" }] } });
        let r = run();
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /envs\.prod\.DB\.rotation\.constraints\.maintenanceWindows\.0\.cron|envs\.prod\.DB\.rotation\.constraints\.maintenanceWindows\[0\]\.cron/);
        write({ constraints: { maintenanceWindows: [{ cron: "0 2 * * 6", duration: "4h" }] }, windows: [saturday] });
        r = run();
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /both give the maintenance windows; keep one/);
        write({ constraints: { maintenanceWindows: [{ cron: "0 25 * * 6", duration: "4h" }] } });
        r = run();
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /windows/);
      } finally {
        rmSync(bad, { recursive: true, force: true });
      }
    });
  });

  it("a job whose worker died on its last attempt expires into the dead-letter queue and is notified too (last error: job timed out)", async () => {
    hook.reset();
    ok(cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "expire", "--retry-limit", "0", "--job-timeout", "1s"]));
    const w = background([]);
    await until("the worker to hold the expire job", async () => ((await jobState("expire/E1")) === "active" && stuck.requests.some((q) => q.body.includes('"user":"svc"')) ? true : undefined));
    w.p.kill("SIGKILL");
    await w.exited;
    // Its --job-timeout sets how often it looks for expired jobs (half of it).
    const r = ok(await acli(["worker", "--once", "--job-timeout", "1s"]));
    assert.match(r.stderr, /worker: expire\/E1: dead-lettered after 1 attempt\(s\) \(job [0-9a-f-]+\): job timed out; notified 1 channel\(s\)/, r.stderr);
    const dead = hook.requests.filter((q) => q.headers["x-dsops-event"] === "dead-lettered").map((q) => JSON.parse(q.body) as Record<string, unknown>);
    assert.equal(dead.length, 1);
    assert.equal(dead[0].variable, "E1");
    assert.equal(dead[0].attempts, 1);
    assert.equal(dead[0].error, "job timed out");
  });

  it("--metrics-listen: a malformed address is a usage error (2); a port in use names the flag (1)", async () => {
    const bad = cli(["worker", "--once", "--metrics-listen", "nowhere"]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--metrics-listen nowhere: expected <host>:<port>/);
    const { createServer } = await import("node:net");
    const taken = createServer();
    await new Promise<void>((res) => taken.listen(0, "127.0.0.1", () => res()));
    try {
      const port = (taken.address() as { port: number }).port;
      const busy = await acli(["worker", "--once", "--metrics-listen", `127.0.0.1:${port}`]);
      assert.equal(busy.status, 1, busy.stderr);
      assert.match(busy.stderr, new RegExp(`--metrics-listen 127\\.0\\.0\\.1:${port}: cannot listen`));
    } finally {
      taken.close();
    }
  });

  it("a registered RotationPolicy's job that exhausts its retries is dead-lettered and notified through the policy's own channels (no dsops.yaml)", async () => {
    hook.reset();
    // Its own database: the queue and the registration are the policy's alone.
    await admin.query("CREATE DATABASE policy_dead");
    const purl = pg.connectionString(pg.adminUser, pg.adminPassword, "policy_dead");
    // The secret's current version is 60 days old: the policy (every 30d) is due.
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/PGHOST"], "Policy-ghost-1", "2026-09-21T12:00:00Z"));
    values.add("Policy-ghost-1");
    await registerPolicy(purl, {
      id: "proj/dev/ghost",
      project: "proj",
      stack: "dev",
      name: "ghost",
      definition: {
        version: 1,
        secret: "store://local/app/PGHOST",
        dir,
        schedule: { every: "30d" },
        windows: [],
        config: {
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
          notifications: { webhooks: [{ name: "audit", url: `${hook.url}/audit` }] },
          // No such role: every attempt fails.
          envs: { pulumi: { SECRET: { from: "store://local/app/PGHOST", rotation: { service: "app-db", strategy: "single-user", user: "ghost_policy_role", ttl: "30d", notifications: { channels: ["webhook:audit"] } } } } },
        },
      },
    });
    const empty = mkdtempSync(join(tmpdir(), "dsops-worker-policy-"));
    try {
      const r = await dsopsRun(["worker", "--scheduler", "--once", "--retry-limit", "0"], { cwd: empty, env: env({ DSOPS_WORKER_DATABASE_URL: purl }) });
      outputs.push(r);
      ok(r);
      assert.match(r.stderr, /worker: policy:proj\/dev\/ghost: dead-lettered after 1 attempt\(s\) \(job [0-9a-f-]+\): .*ghost_policy_role.*; notified 1 channel\(s\)/, `${r.stdout}\n${r.stderr}`);
      const dead = hook.requests.filter((q) => q.headers["x-dsops-event"] === "dead-lettered");
      assert.equal(dead.length, 1, JSON.stringify(hook.requests.map((q) => [q.path, q.headers["x-dsops-event"]])));
      assert.equal(dead[0].path, "/audit");
      const e = JSON.parse(dead[0].body) as Record<string, unknown>;
      assert.equal(e.secret, "store://local/app/PGHOST");
      assert.equal(e.attempts, 1);
      assert.match(String(e.error), /ghost_policy_role/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
