// dsops chaos on gradual rollouts whose on_failure is `stop` or `continue`, two real PostgreSQL 15 servers (one per rollout instance).
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * A rollout with `on_failure: stop` or `continue` does not roll back on a wave's failure: `stop`
 * halts (earlier waves keep the new credential, pending; the failed instance gets the old one
 * back; later waves untouched; the next run resumes there), `continue` puts the failed instance
 * back and goes on. `dsops chaos run` says so in its report (`onFailure`, `halt`, `engine`, `proves`)
 * and judges the path the mode promises. Each server is checked afterwards: which password the
 * role logs in with there, and how many times its password was set (the servers' logs).
 */
interface Experiment {
  inject: string;
  run: { exitCode: number | null; signal: string | null; message?: string };
  rotation: { id: string; status: string; steps: string[] };
  rollout?: {
    waves: number;
    applied: string[];
    verified: string[];
    restored: string[];
    failed: string[];
    untouched: string[];
  };
  onFailure?: string;
  halt?: { wave: number; kept: string[]; putBack: string[]; untouched: string[]; promoted: boolean };
  recovery?: { exitCode: number | null; what: string };
  engine: string;
  proves?: string;
  after: { currentVersion: string | null; loginWorks: boolean | null };
  before: { currentVersion: string | null };
  verdict: string;
  problems: string[];
}

describe("dsops chaos run on rollouts with on_failure stop and continue: halted or continued, per server, on two real PostgreSQL 15 servers", function () {
  this.timeout(120000);
  const servers: RunningPostgres[] = [];
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-modes-"));
  const env = { DSOPS_FILE_KEY: "chaos-modes-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const ROLES = { STOP: "mode_stop", CONT: "mode_cont" } as const;
  type Var = keyof typeof ROLES;
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[]): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  async function current(v: Var): Promise<string> {
    const value = (await store().get({ key: `app/${v.toLowerCase()}`, version: "current" })).value.reveal();
    values.add(value);
    return value;
  }
  /** On each server (pg-1, pg-2): does the role log in with this password? */
  const logins = (v: Var, pw: string) => Promise.all(servers.map((s) => s.canLogin(ROLES[v], pw)));
  /** On each server: how many times the role's password was set so far. */
  const sets = (v: Var) => servers.map((s) => (s.log().match(new RegExp(`ALTER ROLE "${ROLES[v]}" WITH PASSWORD`, "g")) ?? []).length);
  async function chaos(v: Var, inject: string, extra: string[] = []): Promise<{ r: CliResult; x: Experiment }> {
    const file = join(dir, `report-${v}-${inject.replace(/[^a-z0-9]/g, "_")}.json`);
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", v, "--inject", inject, "--report", file, ...extra]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    return { r, x: (JSON.parse(text) as { experiments: Experiment[] }).experiments[0] };
  }

  before(async () => {
    servers.push(await startPostgres());
    servers.push(await startPostgres());
    for (const [i, s] of servers.entries()) {
      values.add(s.adminPassword);
      await store().put(`pg/admin${i + 1}`, new Secret(JSON.stringify({ username: s.adminUser, password: s.adminPassword })));
    }
    const rotation = (v: Var, onFailure: string) => ({
      service: "db",
      strategy: "single-user",
      user: ROLES[v],
      rollout: {
        instances: [
          { name: "pg-1", port: servers[0].port },
          { name: "pg-2", port: servers[1].port, admin: "store://local/pg/admin2" },
        ],
        strategy: "percentage",
        waves: [50, 100],
        on_failure: onFailure,
      },
    });
    for (const v of Object.keys(ROLES) as Var[]) {
      const init = `Init-${v}-${Math.random().toString(36).slice(2)}`;
      values.add(init);
      for (const s of servers) {
        const c = new Client({ host: s.host, port: s.port, user: s.adminUser, password: s.adminPassword, database: "postgres" });
        await c.connect();
        await c.query(`CREATE ROLE ${escapeIdentifier(ROLES[v])} LOGIN PASSWORD ${escapeLiteral(scramVerifier(init))}`).finally(() => c.end());
      }
      await store().put(`app/${v.toLowerCase()}`, new Secret(init));
    }
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { db: { type: "postgresql", host: "127.0.0.1", port: servers[0].port, database: "postgres", admin: "store://local/pg/admin1" } },
        envs: {
          staging: {
            STOP: { from: "store://local/app/stop", rotation: rotation("STOP", "stop") },
            CONT: { from: "store://local/app/cont", rotation: rotation("CONT", "continue") },
          },
        },
        chaos: { envs: ["staging"] },
      }),
    );
  });
  after(async () => {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stop, verification-failure@wave:2: halted at wave 2 (pg-1 kept the new password, pg-2 put back), the next run resumed at wave 2: proven (exit 0), the new password logs in on both servers", async () => {
    const old = await current("STOP");
    const set0 = sets("STOP");
    const { r, x } = await chaos("STOP", "verification-failure@wave:2");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(x.run.exitCode, 1, "the injected run halted");
    assert.match(x.run.message ?? "", /rollout halted at wave 2\/2/);
    assert.equal(x.onFailure, "stop");
    assert.deepEqual(x.halt, { wave: 2, kept: ["pg-1"], putBack: ["pg-2"], untouched: [], promoted: false });
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.rotation.status, "succeeded");
    assert.equal(
      x.engine,
      "halted (on_failure: stop): wave 2 of 2 failed; pg-1 (waves 1..1) kept the new credential, still pending; pg-2 got the old credential back; never touched: none; the store's current version was not changed by the halted run; the next run resumed the rollout at wave 2 and finished it: every instance holds the new credential (pg-1, pg-2), now current",
    );
    assert.equal(x.proves, "halt and resume (on_failure: stop), not the rollback path");
    const now = await current("STOP");
    assert.notEqual(now, old);
    assert.deepEqual(await logins("STOP", now), [true, true], "the new password logs in on both servers");
    assert.deepEqual(await logins("STOP", old), [false, false], "the old on neither");
    // pg-1: set once and kept across the halt; pg-2: set, put back, set again by the resumed run.
    assert.deepEqual(sets("STOP").map((n, i) => n - set0[i]), [1, 3]);
  });

  it("stop, verification-failure@wave:1: halted at wave 1 (pg-1 put back, pg-2 never touched before the resume): proven; the new password logs in on both servers", async () => {
    const old = await current("STOP");
    const set0 = sets("STOP");
    const { r, x } = await chaos("STOP", "verification-failure@wave:1");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.deepEqual(x.halt, { wave: 1, kept: [], putBack: ["pg-1"], untouched: ["pg-2"], promoted: false });
    assert.match(x.engine, /^halted \(on_failure: stop\): wave 1 of 2 failed; no earlier wave had the new credential; pg-1 got the old credential back; never touched: pg-2; /);
    const now = await current("STOP");
    assert.deepEqual(await logins("STOP", now), [true, true]);
    assert.deepEqual(await logins("STOP", old), [false, false]);
    assert.deepEqual(sets("STOP").map((n, i) => n - set0[i]), [3, 1], "pg-2 was set only by the resumed run");
  });

  it("stop, target-timeout@wave:2: pg-2's new password set, its answer lost; halted with pg-2 put back, then resumed: proven; the new password logs in on both servers", async () => {
    const old = await current("STOP");
    const set0 = sets("STOP");
    const { r, x } = await chaos("STOP", "target-timeout@wave:2", ["--timeout", "100ms"]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(x.run.exitCode, 1);
    assert.match(x.run.message ?? "", /rollout halted at wave 2\/2 .*no answer within 100 ms: injected by dsops chaos/);
    assert.deepEqual(x.halt, { wave: 2, kept: ["pg-1"], putBack: ["pg-2"], untouched: [], promoted: false });
    const now = await current("STOP");
    assert.deepEqual(await logins("STOP", now), [true, true]);
    assert.deepEqual(await logins("STOP", old), [false, false]);
    assert.deepEqual(sets("STOP").map((n, i) => n - set0[i]), [1, 3], "pg-2: set (answer lost), put back, set again by the resumed run");
  });

  it("continue, verification-failure@wave:2: pg-2 put back and left on the old password, the rotation went on and finished: proven (exit 0); new on pg-1, old on pg-2", async () => {
    const old = await current("CONT");
    const { r, x } = await chaos("CONT", "verification-failure@wave:2");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(x.run.exitCode, 0);
    assert.equal(x.recovery, undefined, "nothing left to recover");
    assert.equal(x.rotation.status, "succeeded");
    assert.equal(x.onFailure, "continue");
    assert.deepEqual(x.rollout?.failed, ["pg-2"]);
    assert.deepEqual(x.rollout?.verified, ["pg-1"]);
    assert.equal(
      x.engine,
      "continued (on_failure: continue): pg-2 failed and got the old credential back, which it keeps; the rollout went on: pg-1 hold the new credential, now current; pg-2 no longer matches the stored current credential",
    );
    assert.equal(x.proves, "going on past the failed instances (on_failure: continue), not the rollback path");
    const now = await current("CONT");
    assert.notEqual(now, old);
    assert.deepEqual(await logins("CONT", now), [true, false], "the new password logs in on pg-1 only");
    assert.deepEqual(await logins("CONT", old), [false, true], "pg-2 keeps the old one");
  });

  it("continue, verification-failure@wave:1: pg-1 (the service's own entry) is left on the old password: the store and the target disagree there, not proven (exit 1); old on pg-1, new on pg-2", async () => {
    const old = await current("CONT");
    // pg-2 is brought back in line first (the experiment before left it on the old password).
    const c = new Client({ host: servers[1].host, port: servers[1].port, user: servers[1].adminUser, password: servers[1].adminPassword, database: "postgres" });
    await c.connect();
    await c.query(`ALTER ROLE ${escapeIdentifier(ROLES.CONT)} PASSWORD ${escapeLiteral(scramVerifier(old))}`).finally(() => c.end());
    const { r, x } = await chaos("CONT", "verification-failure@wave:1");
    assert.equal(r.status, 1, r.stderr + r.stdout);
    assert.equal(x.verdict, "not proven");
    assert.deepEqual(x.rollout?.failed, ["pg-1"]);
    assert.deepEqual(x.rollout?.verified, ["pg-2"]);
    assert.match(x.engine, /^continued \(on_failure: continue\): pg-1 failed and got the old credential back/);
    assert.deepEqual(x.problems.length, 1, x.problems.join("; "));
    assert.match(x.problems[0], /^the store and the target disagree: /);
    const now = await current("CONT");
    assert.deepEqual(await logins("CONT", now), [false, true]);
    assert.deepEqual(await logins("CONT", old), [true, false]);
  });

  it("no value in any report, output or the history", () => {
    const text = outputs.join("\n") + readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) assert.ok(!text.includes(v), "a value is in an output or the history");
  });
});
