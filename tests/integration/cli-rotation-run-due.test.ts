import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { dsops, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver } from "../support/http-receiver";

/**
 * `dsops rotation run --due` through the built binary against a real PostgreSQL 15 (its roles are
 * the rotated credentials): one pass rotates what is due now and reports the rest (not due,
 * waiting for a window, blackout, catalogue type); --dry-run changes nothing; a failing rotation
 * exits 1 and the others still run; two passes started together rotate each credential once.
 * The clock is moved with DSOPS_CLOCK. Every output is searched for the values used.
 */
interface Row {
  env: string;
  variable: string;
  service: string;
  state: string;
  decision: string;
  result: string;
  reason?: string;
  versionId?: string;
  error?: string;
}

const NOW = "2026-11-20T12:00:00Z"; // a Friday

describe("dsops rotation run --due (real PostgreSQL 15)", function () {
  this.timeout(120_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];

  function cli(args: string[], opts: { at?: string; input?: string } = {}): CliResult {
    const r = dsops(args, { cwd: dir, ...(opts.input !== undefined ? { input: opts.input } : {}), env: { DSOPS_CLOCK: opts.at ?? NOW } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  function current(env: string, v: string): string {
    const value = ok(cli(["get", "--env", env, "--var", v])).stdout.replace(/\n$/, "");
    outputs.pop(); // the one output that must hold the value
    values.add(value);
    return value;
  }
  async function hashOf(role: string): Promise<string> {
    const r = await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
    return r.rows[0].rolpassword;
  }
  async function logsIn(role: string, password: string): Promise<void> {
    const c = new Client({ host: pg.host, port: pg.port, user: role, password, database: "postgres" });
    await c.connect();
    await c.query("SELECT 1");
    await c.end();
  }
  function history(env: string): RotationRecord[] {
    return JSON.parse(ok(cli(["rotation", "history", "--env", env, "--json"])).stdout) as RotationRecord[];
  }
  const rotations = (recs: RotationRecord[], variable: string) => recs.filter((r) => r.variable === variable && r.kind === "rotate" && r.status === "succeeded");
  const byVar = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.variable, r]));

  const ttl = (user: string, extra: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user, ttl: "30d", ...extra });
  const roles = ["a", "b", "c", "d", "e", "h", "r1", "r2", "r3", "r4"];

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-rundue-"));
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: {
          "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" },
          gh: { type: "github" },
        },
        envs: {
          prod: {
            DUE_A: { from: "store://local/app/a", rotation: ttl("role_a") },
            DUE_B: { from: "store://local/app/b", rotation: ttl("role_b") },
            NOT_C: { from: "store://local/app/c", rotation: ttl("role_c") },
            // Saturdays 02:00-06:00 UTC: closed on Friday noon.
            WAIT_D: { from: "store://local/app/d", rotation: ttl("role_d", { windows: [{ schedule: "0 2 * * 6", duration: "4h" }] }) },
            // An always-open window shut by a freeze around now.
            FROZEN_E: {
              from: "store://local/app/e",
              rotation: ttl("role_e", { windows: [{ schedule: "0 0 * * *", duration: "24h", blackouts: [{ start: "2026-11-19", end: "2026-11-22", reason: "year-end freeze" }] }] }),
            },
            GH_F: { from: "store://local/app/f", rotation: { service: "gh", user: "bot", ttl: "30d" } },
          },
          failing: {
            GHOST_G: { from: "store://local/app/g", rotation: ttl("ghost_role") },
            FINE_H: { from: "store://local/app/h", rotation: ttl("role_h") },
          },
          race: Object.fromEntries([1, 2, 3, 4].map((i) => [`R${i}`, { from: `store://local/app/r${i}`, rotation: ttl(`role_r${i}`) }])),
        },
      }),
    );
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
    values.add(pg.adminPassword);
    for (const k of ["f", "g"]) {
      ok(cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: `Other-${k}-password-1` }));
      values.add(`Other-${k}-password-1`);
    }
    for (const k of roles) {
      const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: pw }));
    }
    // DUE_B rotated on 1 October (due again on 31 October), NOT_C on 15 November (due 15 December).
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "DUE_B"], { at: "2026-10-01T08:00:00Z" }));
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "NOT_C"], { at: "2026-11-15T08:00:00Z" }));
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("--dry-run lists what would run and changes nothing (roles, history)", async () => {
    const hashes = async () => {
      const out: string[] = [];
      for (const k of ["a", "b", "c", "d", "e"]) out.push(await hashOf(`role_${k}`));
      return out;
    };
    const before = await hashes();
    const rows = byVar(JSON.parse(ok(cli(["rotation", "run", "--due", "--env", "prod", "--dry-run", "--json"])).stdout) as Row[]);
    assert.equal(rows.DUE_A.result, "would run");
    assert.equal(rows.DUE_B.result, "would run");
    for (const v of ["NOT_C", "WAIT_D", "FROZEN_E", "GH_F"]) assert.equal(rows[v].result, "-", v);
    assert.deepEqual(await hashes(), before);
    assert.equal(rotations(history("prod"), "DUE_A").length, 0);
  });

  it("one pass rotates what is due now and reports the rest: not due, waiting for a window, blackout, catalogue type", async () => {
    const before: Record<string, string> = {};
    for (const k of ["a", "b", "c", "d", "e"]) before[k] = await hashOf(`role_${k}`);
    const r = ok(cli(["rotation", "run", "--due", "--env", "prod"]));
    const lines = r.stdout.split("\n");
    assert.match(lines[0], /^VARIABLE\s+ENV\s+SERVICE\s+DECISION\s+RESULT/);
    const line = (v: string) => lines.find((l) => l.startsWith(`${v} `)) ?? "";
    assert.match(line("DUE_A"), /prod\s+app-db\s+due now\s+rotated \(version /);
    assert.match(line("DUE_B"), /due now\s+rotated/);
    assert.match(line("NOT_C"), /not due until 2026-12-15T08:00:00\.000Z\s+-/);
    assert.match(line("WAIT_D"), /due but waiting for the window opening at 2026-11-21T02:00:00\.000Z\s+-/);
    assert.match(line("FROZEN_E"), /blocked \(blackout: year-end freeze\)/);
    assert.match(line("GH_F"), /gh\s+blocked \(service type "github" is in dsops's service catalogue, but this version cannot rotate it yet\)/);
    // The roles: due ones changed and log in with the stored value; the others untouched.
    for (const k of ["a", "b"]) {
      assert.notEqual(await hashOf(`role_${k}`), before[k], k);
      await logsIn(`role_${k}`, current("prod", `DUE_${k.toUpperCase()}`));
    }
    for (const k of ["c", "d", "e"]) assert.equal(await hashOf(`role_${k}`), before[k], k);
    const recs = history("prod");
    assert.equal(rotations(recs, "DUE_A").length, 1);
    assert.equal(rotations(recs, "DUE_B").length, 2);
    assert.equal(rotations(recs, "NOT_C").length, 1);
    for (const v of ["WAIT_D", "FROZEN_E", "GH_F"]) assert.equal(rotations(recs, v).length, 0, v);

    // The next pass, from the history: nothing is due any more.
    const again = byVar(JSON.parse(ok(cli(["rotation", "run", "--due", "--env", "prod", "--json"], { at: "2026-11-20T12:10:00Z" })).stdout) as Row[]);
    assert.equal(again.DUE_A.state, "not-due");
    assert.equal(again.DUE_A.decision, "not due until 2026-12-20T12:00:00.000Z");
    assert.equal(again.DUE_B.state, "not-due");
    assert.equal(again.WAIT_D.state, "waiting");
    assert.equal(again.FROZEN_E.state, "blocked");
    assert.equal(again.GH_F.state, "blocked");
    assert.equal(rotations(history("prod"), "DUE_A").length, 1);

    // Saturday 03:00: WAIT_D's window is open, so it rotates; FROZEN_E is still frozen.
    const sat = byVar(JSON.parse(ok(cli(["rotation", "run", "--due", "--env", "prod", "--json"], { at: "2026-11-21T03:00:00Z" })).stdout) as Row[]);
    assert.equal(sat.WAIT_D.decision, "due now");
    assert.equal(sat.WAIT_D.result, "rotated");
    assert.equal(sat.FROZEN_E.decision, "blocked (blackout: year-end freeze)");
    assert.notEqual(await hashOf("role_d"), before.d);
    await logsIn("role_d", current("prod", "WAIT_D"));
    assert.equal(await hashOf("role_e"), before.e);
  });

  it("a failing rotation exits 1, names it, and the others of the pass are still done", async () => {
    const beforeH = await hashOf("role_h");
    const r = cli(["rotation", "run", "--due", "--env", "failing", "--json"]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const rows = byVar(JSON.parse(r.stdout) as Row[]);
    assert.equal(rows.GHOST_G.result, "failed");
    assert.ok(rows.GHOST_G.error && rows.GHOST_G.error.length > 0);
    assert.equal(rows.FINE_H.result, "rotated");
    assert.match(r.stderr, /1 of 2 due rotations failed: failing\/GHOST_G/);
    assert.notEqual(await hashOf("role_h"), beforeH);
    await logsIn("role_h", current("failing", "FINE_H"));
    const t = cli(["rotation", "run", "--due", "--env", "failing"], { at: "2026-11-20T12:05:00Z" });
    assert.equal(t.status, 1);
    assert.match(t.stdout, /GHOST_G\s+failing\s+app-db\s+due now\s+failed: /);
    assert.match(t.stdout, /FINE_H\s+failing\s+app-db\s+not due until/);
  });

  it("two passes started together rotate each credential exactly once; the other pass skips it (running elsewhere), not failed", async () => {
    const before: Record<string, string> = {};
    for (let i = 1; i <= 4; i++) before[i] = await hashOf(`role_r${i}`);
    const run = () => dsopsRun(["rotation", "run", "--due", "--env", "race", "--json"], { cwd: dir, env: { DSOPS_CLOCK: NOW } });
    const [p, q] = await Promise.all([run(), run()]);
    outputs.push(p, q);
    ok(p);
    ok(q);
    const rp = byVar(JSON.parse(p.stdout) as Row[]);
    const rq = byVar(JSON.parse(q.stdout) as Row[]);
    if (process.env.DSOPS_TEST_DEBUG) console.log(JSON.stringify([rp, rq], null, 1));
    const recs = history("race");
    for (let i = 1; i <= 4; i++) {
      const v = `R${i}`;
      assert.equal(rotations(recs, v).length, 1, `${v} rotated once`);
      const results = [rp[v].result, rq[v].result];
      assert.equal(results.filter((x) => x === "rotated").length, 1, `${v}: ${results.join(", ")}`);
      const other = rp[v].result === "rotated" ? rq[v] : rp[v];
      // The other pass either met the lock or looked after the rotation was recorded.
      assert.ok(other.result === "skipped" || (other.result === "-" && other.state === "not-due"), `${v}: ${JSON.stringify(other)}`);
      if (other.result === "skipped") assert.match(other.reason ?? "", /running elsewhere|rotated elsewhere/);
      assert.notEqual(await hashOf(`role_r${i}`), before[i]);
      await logsIn(`role_r${i}`, current("race", v));
    }
  });

  it("under the lock the engine asks the due decision again: a pass that looked before another rotated the secret changes nothing", async () => {
    const { loadConfigFile } = await import("../../provider/compose/config");
    const { composeRotation } = await import("../../provider/compose/rotation");
    const { RotatedElsewhereError } = await import("../../provider/rotation/errors");
    const hash = await hashOf("role_r1");
    const count = rotations(history("race"), "R1").length;
    const engine = composeRotation(loadConfigFile(join(dir, "dsops.yaml")), { metrics: false, notifications: false });
    let seen: number | undefined;
    try {
      await assert.rejects(
        engine.rotate("race", "R1", {
          ifDue: (last) => {
            seen = last;
            return false;
          },
        }),
        (e: unknown) => e instanceof RotatedElsewhereError && /rotated by another run since this pass looked/.test(e.message),
      );
    } finally {
      await engine.close();
    }
    assert.ok(seen !== undefined && seen <= Date.parse(NOW) + 60_000, `the last rotation's finish: ${seen}`);
    assert.equal(await hashOf("role_r1"), hash);
    const recs = history("race");
    assert.equal(rotations(recs, "R1").length, count);
    assert.equal(recs.filter((r) => r.variable === "R1" && r.status !== "succeeded").length, 0, "no failed record");
  });

  it("a bad rotation.windows fails when dsops.yaml loads, naming its path (exit 1)", () => {
    const bad = mkdtempSync(join(tmpdir(), "dsops-rundue-bad-"));
    try {
      writeFileSync(
        join(bad, "dsops.yaml"),
        JSON.stringify({
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
          envs: { prod: { X: { from: "store://local/app/x", rotation: ttl("role_x", { windows: [{ schedule: "61 2 * * 6", duration: "4h" }] }) } } },
        }),
      );
      const r = dsops(["rotation", "run", "--due"], { cwd: bad, env: { DSOPS_CLOCK: NOW } });
      outputs.push(r);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /envs\.prod\.X\.rotation\.windows\[0\]\.schedule/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it("the pass runs the composed engine: a due rotation sends its events to the configured webhook, the next pass (not due any more) sends none", async () => {
    const hook = await startHttpReceiver();
    const ndir = mkdtempSync(join(tmpdir(), "dsops-rundue-notify-"));
    // Not spawnSync: the receiver in this process must answer while the command runs.
    const ncli = async (args: string[], input?: string) => {
      const r = await dsopsRun(args, { cwd: ndir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: NOW } });
      outputs.push(r);
      return r;
    };
    try {
      writeFileSync(
        join(ndir, "dsops.yaml"),
        JSON.stringify({
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
          notifications: { webhooks: [{ name: "audit", url: `${hook.url}/events` }] },
          envs: { prod: { N1: { from: "store://local/app/n1", rotation: ttl("role_n1") } } },
        }),
      );
      ok(await ncli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
      const pw = `Init-n1-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE role_n1 LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(await ncli(["secrets", "set", "--store", "local", "--key", "app/n1"], pw));
      hook.reset();
      const r = ok(await ncli(["rotation", "run", "--due"]));
      assert.match(r.stdout, /N1\s+prod\s+app-db\s+due now\s+rotated/);
      const types = () => hook.requests.map((q) => (JSON.parse(q.body) as { type: string }).type);
      assert.deepEqual(types(), ["started", "completed"]);
      for (const q of hook.requests) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a value");
      hook.reset();
      ok(await ncli(["rotation", "run", "--due"]));
      assert.deepEqual(types(), []);
    } finally {
      await hook.close();
      rmSync(ndir, { recursive: true, force: true });
    }
  });

  it("run without --due is a usage error (exit 2); an unknown --env is exit 1", () => {
    const r = cli(["rotation", "run"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /rotation run --due/);
    const e = cli(["rotation", "run", "--due", "--env", "nope"]);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /--env nope: no such env/);
  });
});
