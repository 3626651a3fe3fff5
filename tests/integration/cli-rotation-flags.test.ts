import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { parse as parseYaml } from "yaml";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { dsops, dsopsAsync, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startRedis, type RunningRedis } from "../support/redis";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { redisPasswordHash } from "../../provider/rotation/targets/redis";

/**
 * The rotation flags dsops users type, driven through the built `dsops` binary against a real
 * PostgreSQL 15 (started on a free loopback port): `rotation status|history` with `--since
 * --until --status --format`. Every output is searched for the values the test used.
 */
describe("dsops rotation flags (real PostgreSQL 15)", function () {
  this.timeout(120_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];

  function cli(args: string[], opts: { at?: string; input?: string } = {}): CliResult {
    const r = dsops(args, { cwd: dir, ...(opts.input !== undefined ? { input: opts.input } : {}), env: { DSOPS_CLOCK: opts.at ?? "2026-11-20T12:00:00Z" } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  async function current(env: string, v: string): Promise<string> {
    const value = ok(cli(["get", "--env", env, "--var", v])).stdout.replace(/\n$/, "");
    outputs.pop(); // the one output that must hold the value
    values.add(value);
    return value;
  }
  async function hashOf(role: string): Promise<string> {
    const r = await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
    return r.rows[0].rolpassword;
  }

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-rotflags-"));
    const rotation = (user: string) => ({ service: "app-db", strategy: "single-user", user });
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
        envs: {
          prod: {
            DB_A: { from: "store://local/app/a", rotation: rotation("role_a") },
            DB_B: { from: "store://local/app/b", rotation: rotation("role_b") },
            DB_C: { from: "store://local/app/c", rotation: rotation("role_c") },
          },
          stage: {
            DB_D: { from: "store://local/app/d", rotation: rotation("role_d") },
            DB_E: { from: "store://local/app/e", rotation: rotation("role_e") },
          },
          multi: {
            M1: { from: "store://local/app/m1", rotation: rotation("role_m1") },
            M2: { from: "store://local/app/m2", rotation: rotation("ghost") },
            M3: { from: "store://local/app/m3", rotation: rotation("role_m3") },
          },
          lock: {
            L1: { from: "store://local/app/l1", rotation: rotation("role_l1") },
          },
          nv: {
            N1: { from: "store://local/app/n1", rotation: rotation("role_n1") },
          },
          alias: {
            R1: { from: "store://local/app/r1", rotation: { service: "app-db", strategy: "random", user: "role_r1" } },
            R2: { from: "store://local/app/r2", rotation: rotation("role_r2") },
          },
        },
      }),
    );
    ok(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
    values.add(pg.adminPassword);
    ok(cli(["secrets", "set", "--store", "local", "--key", "app/m2"], { input: "Ghost-password-1" }));
    values.add("Ghost-password-1");
    for (const k of ["a", "b", "c", "d", "e", "m1", "m3", "l1", "n1", "r1", "r2"]) {
      const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: pw }));
    }
    // DB_A rotated on the 1st and the 10th, DB_B on the 15th; DB_C never.
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "DB_A"], { at: "2026-11-01T08:00:00Z" }));
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "DB_A"], { at: "2026-11-10T08:00:00Z" }));
    ok(cli(["secrets", "rotate", "--env", "prod", "--var", "DB_B"], { at: "2026-11-15T08:00:00Z" }));
    for (const v of ["DB_A", "DB_B", "DB_C"]) await current("prod", v);
    for (const v of ["DB_D", "DB_E"]) {
      ok(cli(["secrets", "rotate", "--env", "stage", "--var", v], { at: "2026-10-01T08:00:00Z" }));
      await current("stage", v);
    }
  });

  after(async () => {
    for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("rotation status and rotation history (dsops's spelling)", () => {
    it("rotation history --since 7d keeps rotations of the last 7 days of the clock; --until bounds the other side", () => {
      const recent = JSON.parse(ok(cli(["rotation", "history", "--env", "prod", "--since", "7d", "--format", "json"])).stdout) as RotationRecord[];
      assert.deepEqual(recent.map((r) => r.startedAt), ["2026-11-15T08:00:00.000Z"]);
      const mid = JSON.parse(ok(cli(["rotation", "history", "--env", "prod", "--since", "2026-11-05", "--until", "2026-11-12T00:00:00Z", "--json"])).stdout) as RotationRecord[];
      assert.deepEqual(mid.map((r) => `${r.variable} ${r.startedAt}`), ["DB_A 2026-11-10T08:00:00.000Z"]);
      const old = JSON.parse(ok(cli(["rotation", "history", "--env", "prod", "--until", "15d", "--format", "json"])).stdout) as RotationRecord[];
      assert.deepEqual(old.map((r) => r.startedAt), ["2026-11-01T08:00:00.000Z"]);
    });

    it("rotation history --status filters by record status; --format yaml and table", () => {
      const y = parseYaml(ok(cli(["rotation", "history", "--env", "prod", "--status", "succeeded", "--format", "yaml"])).stdout) as RotationRecord[];
      assert.equal(y.length, 3);
      assert.ok(y.every((r) => r.status === "succeeded"));
      const none = ok(cli(["rotation", "history", "--env", "prod", "--status", "failed,rolled-back"]));
      assert.equal(none.stdout, "no rotation record matches\n");
      const t = ok(cli(["rotation", "history", "--env", "prod", "--var", "DB_B", "--format", "table"])).stdout.split("\n");
      assert.match(t[0], /^ID\s+STARTED\s+ENV\/VARIABLE/);
      assert.match(t[1], /2026-11-15T08:00:00.000Z\s+prod\/DB_B\s+app-db\s+single-user/);
    });

    it("rotation status is secrets status, with --status (never for a variable not rotated) and --since over the last rotation", () => {
      assert.equal(ok(cli(["rotation", "status", "--env", "prod", "--format", "json"])).stdout, ok(cli(["secrets", "status", "--env", "prod", "--json"])).stdout);
      const never = JSON.parse(ok(cli(["rotation", "status", "--env", "prod", "--status", "never", "--json"])).stdout) as Array<{ variable: string }>;
      assert.deepEqual(never.map((s) => s.variable), ["DB_C"]);
      const recent = JSON.parse(ok(cli(["rotation", "status", "--env", "prod", "--since", "7d", "--json"])).stdout) as Array<{ variable: string }>;
      assert.deepEqual(recent.map((s) => s.variable), ["DB_B"]);
      const y = parseYaml(ok(cli(["rotation", "status", "--env", "prod", "--status", "succeeded", "--format", "yaml"])).stdout) as Array<{ variable: string; last: { status: string } }>;
      assert.deepEqual(y.map((s) => `${s.variable} ${s.last.status}`), ["DB_A succeeded", "DB_B succeeded"]);
    });

    it("a bad --since, --status or --format is a usage error (exit 2) naming the flag; --json with --format yaml is exit 1", () => {
      const since = cli(["rotation", "history", "--env", "prod", "--since", "last tuesday"]);
      assert.equal(since.status, 2);
      assert.match(since.stderr, /--since "last tuesday": expected a duration back from now \(7d/);
      const st = cli(["rotation", "status", "--env", "prod", "--status", "done"]);
      assert.equal(st.status, 2);
      assert.match(st.stderr, /--status "done": expected one of running, grace, succeeded, rolled-back, failed, never/);
      const f = cli(["rotation", "history", "--env", "prod", "--format", "xml"]);
      assert.equal(f.status, 2);
      assert.match(f.stderr, /--format.*xml.*json, yaml, table/);
      const both = cli(["rotation", "history", "--env", "prod", "--json", "--format", "yaml"]);
      assert.equal(both.status, 1);
      assert.match(both.stderr, /--json and --format yaml disagree/);
    });
  });

  describe("rotation rollback --dry-run and --force", () => {
    it("--dry-run shows the version it would go back to and the steps; the role's password hash, the stored value and the history are unchanged", async () => {
      const hash = await hashOf("role_d");
      const before = await current("stage", "DB_D");
      const records = ok(cli(["rotation", "history", "--env", "stage", "--json"])).stdout;
      const r = ok(cli(["rotation", "rollback", "--service", "app-db", "--env", "stage", "--var", "DB_D", "--reason", "drill", "--dry-run"]));
      assert.match(r.stdout, /^dry run: store:\/\/local\/app\/d \(stage\/DB_D\) would go back from version \S+ to \S+ \(role_d\):\n  - apply: set version \S+'s credential \(role_d\) at app-db \(postgresql\)\n  - verify: log in to app-db with it\n  - promote: make version \S+ current in the store/);
      assert.equal(await hashOf("role_d"), hash);
      assert.equal(await current("stage", "DB_D"), before);
      assert.equal(ok(cli(["rotation", "history", "--env", "stage", "--json"])).stdout, records);
      const plans = JSON.parse(ok(cli(["rotation", "rollback", "--service", "app-db", "--env", "stage", "--var", "DB_D", "--reason", "drill", "--dry-run", "--json"])).stdout) as Array<{ toPrincipal: string; notes: string[] }>;
      assert.equal(plans.length, 1);
      assert.equal(plans[0].toPrincipal, "role_d");
      assert.deepEqual(plans[0].notes, []);
    });

    it("--dry-run refuses what the real rollback refuses (exit 1): a variable with no previous version", () => {
      const r = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "DB_C", "--reason", "drill", "--dry-run"]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /store:\/\/local\/app\/c: no previous version to roll back to/);
      assert.equal(r.stdout, "");
    });

    it("--force is accepted and the rollback runs as without it (nothing is asked): the old password logs in again", async () => {
      const rotated = await current("stage", "DB_E");
      const hash = await hashOf("role_e");
      const r = ok(cli(["rotation", "rollback", "--service", "app-db", "--env", "stage", "--var", "DB_E", "--reason", "drill", "--force"]));
      assert.match(r.stdout, /store:\/\/local\/app\/e \(stage\/DB_E\): rolled back to version \S+ \(role_e\); rollback \S+ succeeded\n/);
      const back = await current("stage", "DB_E");
      assert.notEqual(back, rotated);
      assert.notEqual(await hashOf("role_e"), hash);
      assert.ok(await pg.canLogin("role_e", back));
      assert.ok(!(await pg.canLogin("role_e", rotated)));
    });
  });

  describe("secrets rotate: several --key/--var, --on-conflict", () => {
    it("rotates each named variable; a failure of one does not hide the others; a summary table; exit 1", async () => {
      const before = { m1: await hashOf("role_m1"), m3: await hashOf("role_m3") };
      const r = cli(["secrets", "rotate", "--env", "multi", "--var", "M1", "--key", "M2", "--key", "M3"]);
      assert.equal(r.status, 1, r.stderr);
      assert.notEqual(await hashOf("role_m1"), before.m1);
      assert.notEqual(await hashOf("role_m3"), before.m3);
      assert.ok(await pg.canLogin("role_m1", await current("multi", "M1")));
      assert.ok(await pg.canLogin("role_m3", await current("multi", "M3")));
      assert.match(r.stdout, /^store:\/\/local\/app\/m1 \(multi\/M1\): rotation \S+: succeeded/m);
      assert.match(r.stdout, /^store:\/\/local\/app\/m3 \(multi\/M3\): rotation \S+: succeeded/m);
      assert.match(r.stdout, /^VARIABLE\s+RESULT\s+VERSION\s+DETAIL\nM1\s+succeeded\s+\S+\s*\nM2\s+failed\s+-\s+\S.*ghost.*\nM3\s+succeeded\s+\S+\s*\n$/m);
      assert.match(r.stderr, /^error: M2: .*ghost/m);
      assert.match(r.stderr, /^error: 1 of 3 rotations failed: M2$/m);
      assert.equal(await current("multi", "M2"), "Ghost-password-1");
    });

    it("no variable named is a usage error (exit 2)", () => {
      const r = cli(["secrets", "rotate", "--env", "multi"]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /name the variable to rotate: --var NAME \(or --key NAME\)/);
    });

    it("--on-conflict fail (default) exits 1, skip exits 0 with a message, wait gives up after --wait-timeout (exit 1) or rotates once the holder is gone", async () => {
      const holder = dsopsAsync(["secrets", "rotate", "--env", "lock", "--var", "L1"], { cwd: dir, env: { DSOPS_FAULT: "after:apply:stop" } });
      let out = "";
      await new Promise<void>((resolve, reject) => {
        holder.stderr.on("data", (d: Buffer) => {
          out += d;
          if (out.includes("fault injected at after:apply")) resolve();
        });
        holder.stdout.on("data", (d: Buffer) => (out += d));
        holder.on("exit", (code) => reject(new Error(`the holder ended (${code}) before apply: ${out}`)));
      });
      const exited = new Promise<void>((r) => holder.on("exit", () => r()));
      try {
        const fail = cli(["secrets", "rotate", "--env", "lock", "--var", "L1"]);
        assert.equal(fail.status, 1);
        assert.match(fail.stderr, new RegExp(`rotation of store://local/app/l1 in progress by \\S+ \\(pid ${holder.pid} on `));
        const skip = cli(["secrets", "rotate", "--env", "lock", "--var", "L1", "--on-conflict", "skip"]);
        assert.equal(skip.status, 0, skip.stderr);
        assert.match(skip.stderr, /^skipped: L1: rotation of store:\/\/local\/app\/l1 in progress by /m);
        assert.equal(skip.stdout, "");
        const gaveUp = cli(["secrets", "rotate", "--env", "lock", "--var", "L1", "--on-conflict", "wait", "--wait-timeout", "1s"]);
        assert.equal(gaveUp.status, 1);
        assert.match(gaveUp.stderr, /still held after waiting 1s \(--wait-timeout 1s\)/);
        const bad = cli(["secrets", "rotate", "--env", "lock", "--var", "L1", "--on-conflict", "later"]);
        assert.equal(bad.status, 2);
        assert.match(bad.stderr, /--on-conflict.*later.*fail, wait, skip/);
      } finally {
        holder.kill("SIGKILL"); // its lock is left behind, held by a dead process
      }
      await exited;
      outputs.push({ status: null, stdout: out, stderr: "" });
      const waited = cli(["secrets", "rotate", "--env", "lock", "--var", "L1", "--on-conflict", "wait", "--wait-timeout", "1m"]);
      assert.equal(waited.status, 0, waited.stderr);
      assert.match(waited.stdout, /\(lock\/L1\): finished rotation \S+ left unfinished by /);
      assert.ok(await pg.canLogin("role_l1", await current("lock", "L1")));
    });
  });

  describe("secrets rotate --new-value", () => {
    const chosen = `Chosen-${Math.random().toString(36).slice(2)}-Value`;
    before(() => values.add(chosen));

    it("--new-value - reads the value from standard input: the role logs in with it, the store holds it, no output or statement log shows it", async () => {
      const r = ok(cli(["secrets", "rotate", "--env", "nv", "--var", "N1", "--new-value", "-"], { input: `${chosen}\n` }));
      assert.match(r.stdout, /\(nv\/N1\): rotation \S+: succeeded; version \S+ current/);
      assert.ok(await pg.canLogin("role_n1", chosen));
      const stored = ok(cli(["get", "--env", "nv", "--var", "N1"])).stdout;
      outputs.pop();
      assert.equal(stored, `${chosen}\n`);
      assert.ok(!pg.log().includes(chosen), "the statement log shows the new value");
    });

    it("a value on the command line is refused (exit 2) without echoing it, and nothing changes; an empty stdin is exit 1", async () => {
      const hash = await hashOf("role_n1");
      const argv = `Argv-${Math.random().toString(36).slice(2)}`;
      values.add(argv);
      const r = cli(["secrets", "rotate", "--env", "nv", "--var", "N1", "--new-value", argv]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--new-value takes the value from standard input, not from the command line .*write --new-value - and pipe the value in/);
      const empty = cli(["secrets", "rotate", "--env", "nv", "--var", "N1", "--new-value", "-"], { input: "" });
      assert.equal(empty.status, 1);
      assert.match(empty.stderr, /--new-value -: empty value on standard input|no value on standard input/);
      const several = cli(["secrets", "rotate", "--env", "multi", "--var", "M1", "--var", "M3", "--new-value", "-"], { input: "x" });
      assert.equal(several.status, 2);
      assert.match(several.stderr, /--new-value gives one value: rotate one variable with it/);
      assert.equal(await hashOf("role_n1"), hash);
    });
  });

  // PostgreSQL cannot hold two passwords per role, so two-secret (and its grace period) runs on
  // a real Redis 7, whose ACL users can.
  describe("secrets rotate --force inside a grace period (two-secret on real Redis)", () => {
    let redis: RunningRedis;
    let rdir: string;
    const rcli = (args: string[], input?: string) => {
      const r = dsops(args, { cwd: rdir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: "2026-11-20T12:00:00Z" } });
      outputs.push(r);
      return r;
    };
    const cred = async (v = "TOKEN"): Promise<{ username: string; password: string }> => {
      const r = rcli(["get", "--env", "prod", "--var", v]);
      outputs.pop();
      assert.equal(r.status, 0, r.stderr);
      const c = JSON.parse(r.stdout) as { username: string; password: string };
      values.add(c.password);
      return c;
    };
    before(async () => {
      redis = await startRedis();
      values.add(redis.adminPassword);
      rdir = mkdtempSync(join(tmpdir(), "dsops-rotflags-redis-"));
      writeFileSync(
        join(rdir, "dsops.yaml"),
        JSON.stringify({
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { cache: { type: "redis", host: "127.0.0.1", port: redis.port, admin: "store://local/redis/admin" } },
          envs: {
            prod: {
              TOKEN: { from: "store://local/app/token", rotation: { service: "cache", strategy: "two-secret", user: "svc", grace_period: "1d" } },
              OVERLAP: { from: "store://local/app/overlap", rotation: { service: "cache", strategy: "overlap", user: "ovl", grace_period: "2h" } },
            },
          },
        }),
      );
      assert.equal(rcli(["secrets", "set", "--store", "local", "--key", "redis/admin"], JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })).status, 0);
      const first = `First-${Math.random().toString(36).slice(2)}`;
      values.add(first);
      await redis.command(["ACL", "SETUSER", "svc", "on", `#${redisPasswordHash(first)}`, "+ping"]);
      await redis.command(["ACL", "SETUSER", "ovl", "on", `#${redisPasswordHash(first)}`, "+ping"]);
      assert.equal(rcli(["secrets", "set", "--store", "local", "--key", "app/token"], JSON.stringify({ username: "svc", password: first })).status, 0);
      assert.equal(rcli(["secrets", "set", "--store", "local", "--key", "app/overlap"], JSON.stringify({ username: "ovl", password: first })).status, 0);
    });
    after(async () => {
      await redis?.stop();
      if (rdir) rmSync(rdir, { recursive: true, force: true });
    });

    it("without --force a rotation inside the grace period is refused (exit 1, the hint names --force); with it the oldest credential is revoked and a new one minted", async () => {
      const c0 = await cred();
      assert.equal(rcli(["secrets", "rotate", "--env", "prod", "--var", "TOKEN"]).status, 0);
      const c1 = await cred();
      assert.ok(await redis.canLogin("svc", c0.password), "c0 is valid in the grace period");
      const refused = rcli(["secrets", "rotate", "--env", "prod", "--var", "TOKEN"]);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /is in its grace period until 2026-11-21T12:00:00.000Z/);
      assert.match(refused.stderr, /hint: .*--force/);
      const forced = rcli(["secrets", "rotate", "--env", "prod", "--var", "TOKEN", "--force"]);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(forced.stderr, /--force: ending the grace period of rotation \S+ now/);
      assert.match(forced.stdout, /new version \S+ current; the old credential is revoked after 2026-11-21T12:00:00.000Z/);
      const c2 = await cred();
      assert.ok(!(await redis.canLogin("svc", c0.password)), "c0 was revoked by --force");
      assert.ok(await redis.canLogin("svc", c1.password), "c1 is in the new grace period");
      assert.ok(await redis.canLogin("svc", c2.password));
    });

    it("strategy overlap in dsops.yaml is two-secret with grace_period as the window: both credentials valid until retireAfter", async () => {
      const c0 = await cred("OVERLAP");
      const r = rcli(["secrets", "rotate", "--env", "prod", "--var", "OVERLAP", "--json"]);
      assert.equal(r.status, 0, r.stderr);
      const rec = JSON.parse(r.stdout) as RotationRecord;
      assert.equal(rec.strategy, "two-secret");
      assert.equal(rec.status, "grace");
      assert.equal(rec.retireAfter, "2026-11-20T14:00:00.000Z");
      const c1 = await cred("OVERLAP");
      assert.ok(await redis.canLogin("ovl", c1.password));
      assert.ok(await redis.canLogin("ovl", c0.password), "the old credential is valid inside the window");
    });
  });

  describe("strategies random and overlap (dsops's names)", () => {
    it("strategy random in dsops.yaml rotates as single-user: plan accepts it, the role logs in with the new value, the record says single-user", async () => {
      ok(cli(["plan", "--env", "alias"]));
      const before = await current("alias", "R1");
      const rec = JSON.parse(ok(cli(["secrets", "rotate", "--env", "alias", "--var", "R1", "--json"])).stdout) as RotationRecord;
      assert.equal(rec.strategy, "single-user");
      const after = await current("alias", "R1");
      assert.notEqual(after, before);
      assert.ok(await pg.canLogin("role_r1", after));
      assert.ok(!(await pg.canLogin("role_r1", before)));
    });

    it("--strategy random on the command line is single-user; an unknown strategy is a usage error (exit 2) listing random and overlap", async () => {
      const rec = JSON.parse(ok(cli(["secrets", "rotate", "--env", "alias", "--var", "R2", "--strategy", "random", "--json"])).stdout) as RotationRecord;
      assert.equal(rec.strategy, "single-user");
      assert.ok(await pg.canLogin("role_r2", await current("alias", "R2")));
      const bad = cli(["secrets", "rotate", "--env", "alias", "--var", "R2", "--strategy", "rando"]);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--strategy.*rando.*random, overlap/);
    });
  });

  describe("secrets rotate --notify / --no-notify", () => {
    let hook: HttpReceiver;
    let ndir: string;
    // Not spawnSync: the receiver in this process must answer while the command runs.
    const ncli = async (args: string[], input?: string) => {
      const r = await dsopsRun(args, { cwd: ndir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: "2026-11-20T12:00:00Z" } });
      outputs.push(r);
      return r;
    };
    const types = () => hook.requests.map((r) => (JSON.parse(r.body) as { type: string; variable: string }).type);
    before(async () => {
      hook = await startHttpReceiver();
      ndir = mkdtempSync(join(tmpdir(), "dsops-rotflags-notify-"));
      const rotation = (user: string, more: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user, ...more });
      writeFileSync(
        join(ndir, "dsops.yaml"),
        JSON.stringify({
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
          notifications: { webhooks: [{ name: "audit", url: `${hook.url}/events` }] },
          envs: { prod: { Q1: { from: "store://local/app/q1", rotation: rotation("role_q1", { notifications: { enabled: false } }) }, Q2: { from: "store://local/app/q2", rotation: rotation("role_q2") } } },
        }),
      );
      assert.equal((await ncli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }))).status, 0);
      for (const k of ["q1", "q2"]) {
        const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
        values.add(pw);
        await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
        assert.equal((await ncli(["secrets", "set", "--store", "local", "--key", `app/${k}`], pw)).status, 0);
      }
    });
    after(async () => {
      await hook?.close();
      if (ndir) rmSync(ndir, { recursive: true, force: true });
    });

    it("a variable whose notifications are off sends nothing; with --notify its events go to the configured channels", async () => {
      hook.reset();
      assert.equal((await ncli(["secrets", "rotate", "--env", "prod", "--var", "Q1"])).status, 0);
      assert.deepEqual(types(), []);
      const r = await ncli(["secrets", "rotate", "--env", "prod", "--var", "Q1", "--notify"]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(types(), ["started", "completed"]);
      for (const q of hook.requests) for (const v of values) assert.ok(!q.body.includes(v), "a notification holds a value");
    });

    it("--no-notify sends nothing for a variable that notifies; --notify without a notifications: block is exit 1", async () => {
      hook.reset();
      assert.equal((await ncli(["secrets", "rotate", "--env", "prod", "--var", "Q2", "--no-notify"])).status, 0);
      assert.deepEqual(types(), []);
      assert.equal((await ncli(["secrets", "rotate", "--env", "prod", "--var", "Q2"])).status, 0);
      assert.deepEqual(types(), ["started", "completed"]);
      const none = cli(["secrets", "rotate", "--env", "prod", "--var", "DB_A", "--notify"]);
      assert.equal(none.status, 1);
      assert.match(none.stderr, /--notify: dsops.yaml has no notifications: channel to send to/);
    });
  });
});
