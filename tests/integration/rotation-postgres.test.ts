import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { Secret } from "../../provider/core/secret";
import { RotationInProgressError } from "../../provider/rotation/index";
import { PostgresTarget, scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { DSOPS_BIN, dsops, dsopsAsync } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { targetContract, type RotationBench } from "../support/target-contract";

/**
 * Rotation of real PostgreSQL 15 roles (started by the test on a free loopback port): the target
 * contract (single-user, alternating-users, a failing verification rolled back, emergency,
 * crashes at every step, no value in records, output or the server's statement log), then
 * through the engine and the built `dsops` CLI what only this target does or what the CLI shows
 * of it: NOLOGIN roles, a client connecting during rotations, locks, unfinished rotations seen
 * by readers, manual rollback, status and history, the postgres history backend.
 */
let pg: RunningPostgres;
let admin: Client;

async function setRole(bench: RotationBench, user: string, password: string): Promise<void> {
  bench.values.add(password);
  await admin.query(`ALTER ROLE ${escapeIdentifier(user)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
}

targetContract(
  {
    label: "postgresql (real PostgreSQL 15)",
    type: "postgresql",
    service: "app-db",
    badSettings: [
      [{ admin: "nope" }, /services\.x\.admin: expected a reference/],
      [{ admin: "store://a/b", ssl: "maybe" }, /services\.x\.ssl/],
    ],
    minimalSettings: { admin: "store://a/b" },
    targetClass: PostgresTarget,
    capabilities: ["rotate", "revoke", "verify"],
    async setup(bench) {
      pg = await startPostgres();
      admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
      await admin.connect();
      await admin.query("CREATE TABLE guarded (x int)"); // no grants: a verification query on it fails
      await bench.store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
      bench.adminKeys.add("pg/admin");
      for (const r of ["app", "app_a", "app_b", "multi", "live_a", "live_b", "disabled", "reader"]) await admin.query(`CREATE ROLE ${r} LOGIN`);
      const init = (u: string) => `Init-${u}-${Math.random().toString(36).slice(2)}`;
      for (const [key, user] of [
        ["app/db-password", "app"],
        ["app/multi", "multi"],
        ["app/disabled", "disabled"],
        ["app/reader", "reader"],
      ]) {
        const pw = init(user);
        await setRole(bench, user, pw);
        await bench.seed(key, pw);
      }
      for (const [key, a] of [
        ["app/db-login", "app_a"],
        ["app/live", "live_a"],
      ]) {
        const pw = init(a);
        await setRole(bench, a, pw);
        await bench.seed(key, JSON.stringify({ username: a, password: pw }));
      }
      const v = (key: string, rotation: Record<string, unknown>) => ({ from: `store://local/${key}`, rotation: { service: "app-db", ...rotation } });
      return {
        service: { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" },
        moreVariables: {
          DB_PASSWORD: v("app/db-password", { strategy: "single-user", user: "app" }),
          DB_LOGIN: v("app/db-login", { strategy: "alternating-users", users: ["app_a", "app_b"], generator: { length: 40, format: "alphanumeric" } }),
          LIVE: v("app/live", { strategy: "alternating-users", users: ["live_a", "live_b"] }),
          MULTI: v("app/multi", { strategy: "single-user", user: "multi", history: { type: "postgres", service: "app-db" } }),
          KEYS: v("app/keys", { strategy: "two-secret", user: "app" }),
          DISABLED: v("app/disabled", { strategy: "single-user", user: "disabled" }),
          READER: v("app/reader", { strategy: "single-user", user: "reader" }),
        },
        async principal(user, password) {
          await admin.query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN`);
          await setRole(bench, user, password);
          return { username: user, password };
        },
        canLogin: (user, password) => pg.canLogin(user, password),
        failingVerification: { query: "SELECT * FROM guarded", reason: /permission denied for table guarded/ },
        haystacks: async () => [
          ["PostgreSQL statement log", pg.log()],
          ["postgres history table", JSON.stringify((await admin.query("SELECT record FROM dsops_rotation_history")).rows)],
        ],
        async stop() {
          await admin?.end().catch(() => undefined);
          await pg?.stop();
        },
      };
    },
  },
  (bench) => {
    const dir = () => bench.dir;
    const store = () => bench.store();
    const stored = (key: string, version?: string) => bench.stored(key, version);
    const seed = (key: string, value: string) => bench.seed(key, value);
    const history = (): RotationRecord[] => bench.history();
    const engine = () => bench.engine();
    const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => bench.cliSync(args, extraEnv);
    const canLogin = (user: string, password: string) => pg.canLogin(user, password);
    const values = bench.values;
    const env = bench.env;
    const outputs = bench.outputs;

    /** The stored current credential of a variable logs in. */
    async function currentWorks(key: string, user?: string): Promise<boolean> {
      const v = await stored(key);
      if (user) return canLogin(user, v);
      const o = JSON.parse(v) as { username: string; password: string };
      return canLogin(o.username, o.password);
    }

    it("sets the password only, as a SCRAM verifier: the statement log shows ALTER ROLE … WITH PASSWORD 'SCRAM-SHA-256$…'", () => {
      // The statement sets the password only (it used to say WITH LOGIN PASSWORD, which re-enabled NOLOGIN roles).
      assert.match(pg.log(), /ALTER ROLE "single" WITH PASSWORD 'SCRAM-SHA-256\$4096:/, "the log does show the statements");
    });

    it("alternating-users: a client that keeps connecting with the stored current credential never fails during rotations", async () => {
      let stop = false;
      let attempts = 0;
      const failures: string[] = [];
      const client = (async () => {
        while (!stop) {
          const cur = JSON.parse((await store().get({ key: "app/live" })).value.reveal()) as { username: string; password: string };
          values.add(cur.password);
          attempts++;
          if (!(await canLogin(cur.username, cur.password))) failures.push(`attempt ${attempts} as ${cur.username}`);
        }
      })();
      const e = engine();
      try {
        for (let i = 0; i < 6; i++) {
          await e.rotate("prod", "LIVE");
          // Let the client finish a login begun after this rotation before the next one: a login
          // slow enough to span two rotations would use a user changed twice meanwhile, which
          // alternating users do not promise (the current and previous credentials work).
          const seen = attempts;
          while (attempts < seen + 2 && !stop) await new Promise((r) => setImmediate(r));
        }
      } finally {
        stop = true;
        await client;
        await e.close();
      }
      assert.ok(attempts >= 6, `the client connected ${attempts} times`);
      assert.deepEqual(failures, []);
    });

    it("a role an administrator disabled (NOLOGIN) stays disabled: verification fails, the rotation rolls back, the verifier is the same, exit 1", async () => {
      await admin.query("ALTER ROLE disabled NOLOGIN");
      const authid = async () =>
        (await admin.query<{ rolcanlogin: boolean; rolpassword: string }>("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = 'disabled'")).rows[0];
      const before = await authid();
      assert.equal(before.rolcanlogin, false);
      const old = await stored("app/disabled");
      const r = cli(["secrets", "rotate", "--env", "prod", "--var", "DISABLED"]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /rotation rot-\S+ rolled back: .*login as "disabled" failed: role "disabled" is not permitted to log in/);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
      const after = await authid();
      assert.equal(after.rolcanlogin, false, "the role is still NOLOGIN");
      assert.equal(after.rolpassword, before.rolpassword, "the role's password verifier is the one it had");
      assert.equal(await stored("app/disabled"), old);
      assert.equal((await store().stagesOf("app/disabled")).pending, undefined);
      const rec = history().filter((x) => x.variable === "DISABLED")[0];
      assert.equal(rec.status, "rolled-back");
      assert.deepEqual(
        rec.steps.map((x) => `${x.name}:${x.outcome}`),
        ["generate:ok", "stage:ok", "apply:ok", "verify:failed", "restore:ok", "discard:ok"],
      );
      // Enabled again by its administrator, the role rotates (the old password worked all along).
      await admin.query("ALTER ROLE disabled LOGIN");
      assert.equal(await canLogin("disabled", old), true);
      const again = cli(["secrets", "rotate", "--env", "prod", "--var", "DISABLED"]);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(await currentWorks("app/disabled", "disabled"), true);
    });

    it("immediate on a single user rotates in place; two-secret is refused for a target that cannot create", async () => {
      const e = engine();
      try {
        const r = await e.rotate("prod", "DB_PASSWORD", { strategy: "immediate" });
        assert.equal(r.record.strategy, "immediate");
        assert.equal(await currentWorks("app/db-password", "app"), true);
        await assert.rejects(e.rotate("prod", "KEYS"), /two-secret needs a target that can create; service "app-db" \(postgresql\) cannot/);
        await assert.rejects(e.rotate("prod", "DB_PASSWORD", { strategy: "alternating-users" }), /single-user shape/);
      } finally {
        await e.close();
      }
    });

    it("dry run checks and reports the plan without changing anything", async () => {
      const before = await store().stagesOf("app/db-password");
      const n = history().length;
      const r = cli(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD", "--dry-run"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /dry run: store:\/\/local\/app\/db-password .*\n  - generate: .*\n  - stage: .*\n  - apply: set the password of "app"/);
      assert.deepEqual(await store().stagesOf("app/db-password"), before);
      assert.equal(history().length, n);
    });

    it("two rotations of one secret at once (two processes): one rotates, the other is refused and told by whom", async () => {
      const first = spawn(process.execPath, [DSOPS_BIN, "secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"], {
        cwd: dir(),
        env: { ...process.env, ...env, DSOPS_FAULT: "after:apply:stop" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out1 = "";
      first.stdout.on("data", (d: Buffer) => (out1 += d));
      first.stderr.on("data", (d: Buffer) => (out1 += d));
      // Wait until the first run stopped itself while holding the lock (its stderr says so).
      const deadline = Date.now() + 30000;
      while (!out1.includes("fault injected at after:apply")) {
        if (Date.now() > deadline || first.exitCode !== null) throw new Error(`first run did not reach apply: ${out1}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const done = new Promise<number | null>((r) => first.on("exit", (c) => r(c)));
      let second: ReturnType<typeof cli>;
      try {
        second = cli(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"]);
      } finally {
        first.kill("SIGCONT");
      }
      assert.equal(second.status, 1);
      assert.match(second.stderr, new RegExp(`rotation of store://local/app/db-password in progress by tester@\\S+ \\(pid ${first.pid} on `));
      assert.equal(await done, 0, out1);
      outputs.push(out1);
      assert.equal(await currentWorks("app/db-password", "app"), true);
      // In one process too: the second engine is refused while the first holds the lock.
      const [a, b] = [engine(), engine()];
      try {
        const results = await Promise.allSettled([a.rotate("prod", "DB_PASSWORD"), b.rotate("prod", "DB_PASSWORD")]);
        assert.equal(results.filter((x) => x.status === "fulfilled").length, 1);
        const refused = results.find((x) => x.status === "rejected") as PromiseRejectedResult;
        assert.ok(refused.reason instanceof RotationInProgressError);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("single-user killed between apply and promote: get and render warn (rotation id, the command that finishes it), status says the holder is dead; the command finishes it", async () => {
      const old = await stored("app/reader");
      const finish = "dsops secrets rotate --env prod --var READER";
      // `get` prints the value on purpose: only its stderr joins the outputs searched for values.
      const get = () => {
        const r = dsops(["get", "--env", "prod", "--var", "READER"], { cwd: dir(), env });
        outputs.push(r.stderr);
        return r;
      };
      // 1. Stopped (alive, holding the lock) right after apply: readers are told a rotation is in progress.
      const stopped = dsopsAsync(["secrets", "rotate", "--env", "prod", "--var", "READER"], { cwd: dir(), env: { ...env, DSOPS_FAULT: "after:apply:stop" } });
      let out = "";
      await new Promise<void>((resolve, reject) => {
        const seen = (d: Buffer) => {
          out += d;
          if (out.includes("fault injected at after:apply")) resolve();
        };
        stopped.stderr.on("data", seen);
        stopped.stdout.on("data", (d: Buffer) => (out += d));
        stopped.on("exit", (code) => reject(new Error(`the rotation ended (${code}) before apply: ${out}`)));
      });
      const exited = new Promise<NodeJS.Signals | null>((r) => stopped.on("exit", (_c, sig) => r(sig)));
      let live: ReturnType<typeof cli>;
      try {
        live = get();
      } finally {
        stopped.kill("SIGKILL"); // 2. …and now it dies there, its lock left behind
      }
      assert.equal(await exited, "SIGKILL");
      outputs.push(out);
      assert.equal(live.status, 0, live.stderr);
      assert.match(live.stderr, new RegExp(`^warning: READER \\(store://local/app/reader\\): rotation rot-\\S+ is in progress \\(tester@\\S+, pid ${stopped.pid} on `, "m"));
      assert.match(live.stderr, /may already reject the value stored as current/);

      const rec = history().filter((r) => r.variable === "READER" && r.status === "running")[0];
      assert.ok(rec, "the killed run's record is open");
      const g = get();
      assert.equal(g.status, 0, g.stderr);
      assert.equal(g.stdout, `${old}\n`, "get hands out the value stored as current");
      assert.equal(await canLogin("reader", old), false, "…which the database already rejects (the window of single-user)");
      assert.ok(
        g.stderr.includes(
          `warning: READER (store://local/app/reader): rotation ${rec.id} did not finish (its process, pid ${stopped.pid} on `,
        ),
        g.stderr,
      );
      assert.match(g.stderr, new RegExp(`is gone\\); until it is finished, service "app-db" may already reject the value stored as current .*\\. Finish it: ${finish}\\n`));
      if (!(await store().stagesOf("app/keys")).current) await seed("app/keys", JSON.stringify({ username: "app", password: `Keys-${Math.random()}` })); // render reads the whole env
      const out1 = join(dir(), "reader.env");
      const rd = cli(["render", "--env", "prod", "--out", out1]);
      assert.equal(rd.status, 0, rd.stderr);
      assert.ok(rd.stderr.includes(`rotation ${rec.id} did not finish`), rd.stderr);
      assert.ok(rd.stderr.includes(`Finish it: ${finish}`), rd.stderr);
      assert.equal((rd.stderr.match(/^warning: /gm) ?? []).length, 1, "one warning: only READER's rotation is unfinished");
      rmSync(out1);
      const ex = cli(["exec", "--env", "prod", "--", process.execPath, "-e", "process.exit(0)"]);
      assert.equal(ex.status, 0, ex.stderr);
      assert.ok(ex.stderr.includes(`rotation ${rec.id} did not finish`) && ex.stderr.includes(`Finish it: ${finish}`), ex.stderr);
      const st = cli(["secrets", "status", "--json", "--env", "prod"]);
      assert.equal(st.status, 0, st.stderr);
      const row = (JSON.parse(st.stdout) as Array<{ variable: string; lockedBy?: { pid: number; rotationId?: string }; lockHolderDead?: boolean; last?: { status: string } }>).find((x) => x.variable === "READER");
      assert.equal(row?.lockedBy?.pid, stopped.pid);
      assert.equal(row?.lockedBy?.rotationId, rec.id);
      assert.equal(row?.lockHolderDead, true);
      assert.equal(row?.last?.status, "running");
      const table = cli(["secrets", "status", "--env", "prod"]);
      assert.match(table.stdout, new RegExp(`READER .* pid ${stopped.pid} \\(dead: rotation ${rec.id} unfinished; run ${finish}\\)`));

      // 3. The command the warning names finishes it; readers are no longer warned.
      const done = cli(finish.split(" ").slice(1));
      assert.equal(done.status, 0, done.stderr);
      assert.match(done.stdout, new RegExp(`finished rotation ${rec.id} left unfinished by tester@\\S+: succeeded`));
      const after = get();
      assert.equal(after.status, 0, after.stderr);
      assert.equal(after.stderr, "");
      assert.equal(await canLogin("reader", after.stdout.trimEnd()), true);
      values.add(after.stdout.trimEnd());
      const st2 = JSON.parse(cli(["secrets", "status", "--json", "--env", "prod"]).stdout) as Array<{ variable: string; lockedBy?: unknown }>;
      assert.equal(st2.find((x) => x.variable === "READER")?.lockedBy, undefined);
    });

    it("manual rollback (CLI) to the previous version and to a named version", async () => {
      const r1 = cli(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"]);
      assert.equal(r1.status, 0, r1.stderr);
      const st = await store().stagesOf("app/db-password");
      const prev = await stored("app/db-password", "previous");
      const cur = await stored("app/db-password");
      const rb = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "DB_PASSWORD", "--reason", "app cannot log in"]);
      assert.equal(rb.status, 0, rb.stderr);
      assert.match(rb.stdout, new RegExp(`rolled back to version ${st.previous}`));
      assert.equal(await stored("app/db-password"), prev);
      assert.equal(await canLogin("app", prev), true);
      assert.equal(await canLogin("app", cur), false);
      const rb2 = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "DB_PASSWORD", "--reason", "back again", "--to-version", st.current as string]);
      assert.equal(rb2.status, 0, rb2.stderr);
      assert.equal(await canLogin("app", cur), true);
      assert.equal((await store().stagesOf("app/db-password")).current, st.current);
      const noReason = cli(["rotation", "rollback", "--service", "app-db", "--env", "prod"]);
      assert.equal(noReason.status, 2);
    });

    it("status and history (CLI, --json) show versions, records and steps", async () => {
      assert.equal(cli(["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"]).status, 0);
      assert.equal(cli(["secrets", "rotate", "--env", "prod", "--var", "BAD"]).status, 1);
      const s = cli(["secrets", "status", "--json"]);
      assert.equal(s.status, 0, s.stderr);
      const st = JSON.parse(s.stdout) as Array<{ variable: string; currentVersion?: string; last?: { status: string } }>;
      const dbp = st.find((x) => x.variable === "DB_PASSWORD");
      assert.ok(dbp?.currentVersion);
      assert.equal(dbp?.last?.status, "succeeded");
      const h = cli(["secrets", "history", "--json", "--var", "BAD", "--limit", "1"]);
      assert.equal(h.status, 0, h.stderr);
      const recs = JSON.parse(h.stdout) as RotationRecord[];
      assert.equal(recs.length, 1);
      assert.ok(recs.every((r) => r.variable === "BAD" && r.status === "rolled-back" && r.who.startsWith("tester@")));
      const table = cli(["secrets", "history"]);
      assert.match(table.stdout, /^ID +STARTED +ENV\/VARIABLE/);
      const plain = cli(["secrets", "status"]);
      assert.match(plain.stdout, /DB_LOGIN +app-db +alternating-users/);
    });

    it("postgres history backend: records in a table, lock shared through an advisory lock", async () => {
      const e = engine();
      try {
        const r = await e.rotate("prod", "MULTI");
        assert.equal(await currentWorks("app/multi", "multi"), true);
        const rows = await admin.query<{ id: string; status: string; record: RotationRecord }>("SELECT id, status, record FROM dsops_rotation_history WHERE variable = 'MULTI'");
        assert.equal(rows.rows.length, 1);
        assert.equal(rows.rows[0].id, r.record.id);
        assert.equal(rows.rows[0].status, "succeeded");
        assert.equal(rows.rows[0].record.steps.length, 6);
        // Hold the lock from another session: the engine is refused, told by whom.
        const h = e.historyFor("prod", "MULTI");
        const held = await h.lock("store://local/app/multi", { pid: 4242, host: "elsewhere", who: "ops@elsewhere", since: new Date().toISOString() });
        try {
          assert.deepEqual((await h.holder("store://local/app/multi"))?.who, "ops@elsewhere");
          const other = engine();
          try {
            await assert.rejects(other.rotate("prod", "MULTI"), /in progress by ops@elsewhere \(pid 4242 on elsewhere/);
          } finally {
            await other.close();
          }
        } finally {
          await held.release();
        }
        assert.equal(await h.holder("store://local/app/multi"), undefined);
      } finally {
        await e.close();
      }
    });

  },
);
