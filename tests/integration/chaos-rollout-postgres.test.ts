// dsops chaos on gradual rollouts, two real PostgreSQL 15 servers (one per rollout instance).
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
 * `dsops chaos run` injected into gradual rollouts (rotation.rollout) across two real
 * PostgreSQL 15 servers (one instance each, waves 50/100: pg-1 then pg-2), through the built
 * CLI: a failed login in wave k, a lost answer in wave k, a SIGKILL at a wave boundary. The
 * test checks the report (what was injected, which waves were rolled back or resumed) and each
 * server afterwards: which password the role logs in with there.
 */
interface Experiment {
  inject: string;
  step: string;
  description: string;
  run: { exitCode: number | null; signal: string | null; message?: string };
  rotation: { id: string; status: string; steps: string[] };
  rollout?: { waves: number; reached: number; applied: string[]; verified: string[]; restored: string[]; failed: string[]; untouched: string[] };
  recovery?: { exitCode: number | null };
  engine: string;
  after: { currentVersion: string | null; pendingVersion: string | null; locked: boolean; loginWorks: boolean | null };
  before: { currentVersion: string | null };
  verdict: string;
  problems: string[];
}

describe("dsops chaos run on gradual rollouts: faults per wave, on two real PostgreSQL 15 servers", function () {
  this.timeout(120000);
  const servers: RunningPostgres[] = [];
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-rollout-"));
  const env = { DSOPS_FILE_KEY: "chaos-rollout-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const ROLE = "roll_app";
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[]): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  async function current(): Promise<string> {
    const v = (await store().get({ key: "app/roll", version: "current" })).value.reveal();
    values.add(v);
    return v;
  }
  /** Which of the given passwords the role logs in with on each server. */
  async function logins(pw: string): Promise<boolean[]> {
    return Promise.all(servers.map((s) => s.canLogin(ROLE, pw)));
  }
  async function chaos(inject: string, extra: string[] = []): Promise<{ r: CliResult; x: Experiment }> {
    const file = join(dir, `report-${inject.replace(/[^a-z0-9]/g, "_")}.json`);
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "ROLL", "--inject", inject, "--report", file, ...extra]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    return { r, x: (JSON.parse(text) as { experiments: Experiment[] }).experiments[0] };
  }

  before(async () => {
    servers.push(await startPostgres());
    servers.push(await startPostgres());
    const init = `Init-roll-${Math.random().toString(36).slice(2)}`;
    values.add(init);
    for (const [i, s] of servers.entries()) {
      values.add(s.adminPassword);
      await store().put(`pg/admin${i + 1}`, new Secret(JSON.stringify({ username: s.adminUser, password: s.adminPassword })));
      const c = new Client({ host: s.host, port: s.port, user: s.adminUser, password: s.adminPassword, database: "postgres" });
      await c.connect();
      await c.query(`CREATE ROLE ${escapeIdentifier(ROLE)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(init))}`).finally(() => c.end());
    }
    await store().put("app/roll", new Secret(init));
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { db: { type: "postgresql", host: "127.0.0.1", port: servers[0].port, database: "postgres", admin: "store://local/pg/admin1" } },
        envs: {
          staging: {
            ROLL: {
              from: "store://local/app/roll",
              rotation: {
                service: "db",
                strategy: "single-user",
                user: ROLE,
                rollout: {
                  instances: [
                    { name: "pg-1", port: servers[0].port },
                    { name: "pg-2", port: servers[1].port, admin: "store://local/pg/admin2" },
                  ],
                  strategy: "percentage",
                  waves: [50, 100],
                  on_failure: "rollback_all",
                },
              },
            },
            PLAIN: { from: "store://local/app/plain", rotation: { service: "db", strategy: "single-user", user: ROLE } },
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

  it("verification-failure@wave:2: pg-1 took the new password in wave 1, pg-2's login fails in wave 2; both waves are rolled back: the old password logs in on both servers", async () => {
    const old = await current();
    const { r, x } = await chaos("verification-failure@wave:2");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.inject, "verification-failure@wave:2");
    assert.equal(x.step, "apply");
    assert.match(x.description, /rollout wave 2: each instance of it is logged in to with a credential it does not accept/);
    assert.equal(x.run.exitCode, 1);
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["generate:ok", "stage:ok", "apply:failed", "restore:ok", "discard:ok"]);
    assert.deepEqual(x.rollout, { waves: 2, reached: 2, applied: ["pg-1", "pg-2"], verified: ["pg-1"], restored: ["pg-1", "pg-2"], failed: [], untouched: [] });
    assert.equal(x.engine, "rolled back: wave 2 of 2 failed; the old credential was put back on pg-1, pg-2 (waves 1..2); never touched: none");
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(x.after.currentVersion, x.before.currentVersion);
    assert.equal(await current(), old);
    assert.deepEqual(await logins(old), [true, true], "the old password logs in on both servers");
    // Each server got the new password once and the old one back (apply, restore): two ALTER ROLEs each.
    for (const s of servers) assert.equal((s.log().match(new RegExp(`ALTER ROLE "${ROLE}" WITH PASSWORD`, "g")) ?? []).length, 2);
  });

  it("target-timeout@wave:1: pg-1 changed, its answer lost; wave 1 rolled back, pg-2 never touched; the old password logs in on both", async () => {
    const old = await current();
    const before2 = (servers[1].log().match(/ALTER ROLE/g) ?? []).length;
    const { r, x } = await chaos("target-timeout@wave:1", ["--timeout", "100ms"]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.inject, "target-timeout@wave:1");
    assert.match(x.run.message ?? "", /no answer within 100 ms: injected by dsops chaos \(target-timeout/);
    assert.equal(x.rollout?.reached, 1);
    assert.deepEqual(x.rollout?.restored, ["pg-1"]);
    assert.deepEqual(x.rollout?.untouched, ["pg-2"]);
    assert.match(x.engine, /^rolled back: wave 1 of 2 failed; the old credential was put back on pg-1 \(waves 1\.\.1\); never touched: pg-2$/);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(await current(), old);
    assert.deepEqual(await logins(old), [true, true]);
    assert.equal((servers[1].log().match(/ALTER ROLE/g) ?? []).length, before2, "pg-2 was not touched");
  });

  it("kill-at:wave:1: SIGKILL at the boundary after wave 1 (pg-1 new, pg-2 old); the next run resumes at wave 2: the stored current logs in on both, the old on neither", async () => {
    const old = await current();
    const { r, x } = await chaos("kill-at:wave:1");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.inject, "kill-at:wave:1");
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.rotation.status, "succeeded");
    assert.deepEqual(x.rollout?.verified, ["pg-1", "pg-2"]);
    assert.match(x.engine, /^resumed: the next run went on with the rollout \(2 waves\) and finished it/);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    const now = await current();
    assert.notEqual(now, old);
    assert.deepEqual(await logins(now), [true, true]);
    assert.deepEqual(await logins(old), [false, false]);
    // pg-1 was set once (not again by the resumed run): one ALTER ROLE for this rotation after the two of the tests before.
    assert.equal((servers[0].log().match(new RegExp(`ALTER ROLE "${ROLE}" WITH PASSWORD`, "g")) ?? []).length, 2 + 2 + 1);
  });

  it("kill-at:restore in a rollout: killed during the rollback of wave 1's failed login; the next run finishes the rollback, then rotates: both servers accept the stored current", async () => {
    const old = await current();
    const { r, x } = await chaos("kill-at:restore");
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.rotation.status, "rolled-back");
    assert.match(x.engine, /^recovered: the next run finished the rollback: wave 1 of 2 failed; the old credential was put back on pg-1 \(waves 1\.\.1\); never touched: pg-2$/);
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    const now = await current();
    assert.notEqual(now, old, "the recovery run rotated as asked after finishing the rollback");
    assert.deepEqual(await logins(now), [true, true]);
    assert.deepEqual(await logins(old), [false, false]);
  });

  it("a fault in a wave the rollout does not have is not proven (exit 1, the problem named); malformed wave faults exit 2", async () => {
    const old = await current();
    const { r, x } = await chaos("verification-failure@wave:3");
    assert.equal(r.status, 1, r.stderr + r.stdout);
    assert.equal(x.verdict, "not proven");
    assert.ok(x.problems.includes("the rotation succeeded: the fault did not make it fail"), x.problems.join("; "));
    assert.notEqual(await current(), old);
    assert.deepEqual(await logins(await current()), [true, true]);
    for (const bad of ["verification-failure@wave:0", "store-write-failure@wave:1", "kill-at:wave:x", "verify-failure@wave:1"]) {
      const b = await cli(["chaos", "run", "--env", "staging", "--secret", "ROLL", "--inject", bad]);
      assert.equal(b.status, 2, `${bad}: ${b.stderr}`);
      assert.match(b.stderr, /valid faults: .*verification-failure@wave:<n>.*kill-at:wave:<n>/);
    }
  });

  it("a wave fault on a variable without rollout: is refused before anything is injected (exit 1, naming the variable)", async () => {
    const old = await current();
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "PLAIN", "--inject", "verification-failure@wave:1"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /chaos: verification-failure@wave:1: envs\.staging\.PLAIN\.rotation has no rollout: \(no waves to strike\); nothing was injected/);
    const k = await cli(["chaos", "run", "--env", "staging", "--secret", "PLAIN", "--inject", "kill-at:wave:1"]);
    assert.equal(k.status, 1, k.stderr);
    assert.equal(await current(), old);
  });

  it("no value in any report, output or the history", () => {
    const text = outputs.join("\n") + readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) assert.ok(!text.includes(v), "a value is in an output or the history");
  });
});
