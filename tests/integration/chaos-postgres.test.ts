import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * `dsops chaos run` against a real PostgreSQL 15 (started by the test on a free loopback port),
 * through the built CLI: each fault kind is injected into a real rotation of a role, and the
 * test checks the report (what was injected, at which step, what the engine did, the verdict)
 * AND the real state afterwards: the role logs in with the password the store holds as current,
 * no pending version or lock is left. kill-at is a real SIGKILL of the rotating child process.
 * Refusals: an env not listed in chaos.envs, an env named like production, an unknown fault.
 * No value appears in any report or output.
 */

interface ChaosExperiment {
  variable: string;
  secret: string;
  service: string;
  inject: string;
  step: string;
  engine: string;
  before: { currentVersion: string | null; loginWorks: boolean | null };
  run: { exitCode: number | null; signal: string | null; message?: string };
  rotation: { id: string; status: string; steps: string[]; error?: string };
  recovery?: { exitCode: number | null; what: string };
  after: { currentVersion: string | null; pendingVersion: string | null; locked: boolean; loginWorks: boolean | null; check: string };
  verdict: string;
  problems: string[];
}
interface ChaosReport {
  kind: string;
  env: string;
  variables: string[];
  verdict: string;
  experiments: ChaosExperiment[];
}

describe("dsops chaos run: faults injected into real rotations of PostgreSQL roles (built CLI, real PostgreSQL 15)", function () {
  this.timeout(120000);
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-"));
  const env = { DSOPS_FILE_KEY: "chaos-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env: { ...env, ...extra } });
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  /** The stored value of a version (noted for the final leak search). */
  async function stored(key: string, version = "current"): Promise<string> {
    const v = (await store().get({ key, version })).value.reveal();
    values.add(v);
    return v;
  }

  /** The role logs in with the password the store holds as current, nothing is pending, and (as the report says) the store and target agree. */
  async function agrees(key: string, role: string): Promise<void> {
    const pw = await stored(key);
    assert.equal(await pg?.canLogin(role, pw), true, `${role} logs in with the stored current password`);
    assert.equal((await store().stagesOf(key)).pending, undefined, "no pending version left");
  }

  async function chaos(variable: string, inject: string, extra: string[] = []): Promise<{ r: CliResult; report: ChaosReport; x: ChaosExperiment }> {
    const file = join(dir, `report-${variable}-${inject.replace(/[^a-z]/g, "_")}.json`);
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", variable, "--inject", inject, "--report", file, ...extra]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    const report = JSON.parse(text) as ChaosReport;
    return { r, report, x: report.experiments[0] };
  }

  const history = (): RotationRecord[] => {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (line.trim()) recs.set((JSON.parse(line) as RotationRecord).id, JSON.parse(line) as RotationRecord);
    return [...recs.values()];
  };

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const roles = ["c_store", "c_timeout", "c_verify", "c_kill", "c_alt_a", "c_alt_b", "c_prod"];
    for (const r of roles) {
      const pw = `Init-${r}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(r)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      if (r === "c_alt_a") await store().put("app/alt", new Secret(JSON.stringify({ username: r, password: pw })));
      else if (r !== "c_alt_b") await store().put(`app/${r}`, new Secret(pw));
    }
    const single = (role: string) => ({ from: `store://local/app/${role}`, rotation: { service: "db", strategy: "single-user", user: role } });
    const config = {
      version: 1,
      secretStores: { local: { type: "file", path: "./secrets.store" } },
      services: { db: { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
      envs: {
        staging: {
          STORE: single("c_store"),
          TIMEOUT: single("c_timeout"),
          VERIFY: single("c_verify"),
          KILL: single("c_kill"),
          ALT: { from: "store://local/app/alt", rotation: { service: "db", strategy: "alternating-users", users: ["c_alt_a", "c_alt_b"] } },
        },
        qa: { OTHER: single("c_prod") },
        prod: { DB: single("c_prod") },
      },
      chaos: { envs: ["staging"], experiments: { KILL: ["kill-at:verify"], ALT: ["verification-failure", "target-timeout:200"] } },
    };
    writeFileSync(join(dir, "dsops.yaml"), JSON.stringify(config, null, 2));
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("store-write-failure: the stage write fails, the rotation rolls back, the role keeps the stored password; exit 0, verdict proven", async () => {
    const old = await stored("app/c_store");
    const { r, report, x } = await chaos("STORE", "store-write-failure");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(report.kind, "dsops-chaos-report");
    assert.equal(report.verdict, "rollback path proven");
    assert.deepEqual(report.variables, ["STORE"]);
    assert.equal(x.variable, "STORE");
    assert.equal(x.secret, "store://local/app/c_store");
    assert.equal(x.service, "db");
    assert.equal(x.inject, "store-write-failure");
    assert.equal(x.step, "stage");
    assert.equal(x.run.exitCode, 1);
    assert.match(x.run.message ?? "", /rolled back: store "local": writing the new pending version of app\/c_store failed: injected by dsops chaos/);
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["generate:ok", "stage:failed", "restore:skipped", "discard:ok"]);
    assert.equal(history().find((h) => h.id === x.rotation.id)?.reason, "dsops chaos: store-write-failure", "the record says it was a chaos run");
    assert.match(x.engine, /^rolled back: the stage step failed/);
    assert.equal(x.after.currentVersion, x.before.currentVersion);
    assert.equal(x.after.loginWorks, true);
    assert.equal(x.after.pendingVersion, null);
    assert.equal(x.after.locked, false);
    assert.equal(x.verdict, "proven");
    assert.deepEqual(x.problems, []);
    assert.match(r.stdout, /^STORE store-write-failure: proven\nrollback path proven; report written to/);
    // The real state: the store still holds the old password, and the role logs in with it.
    assert.equal(await stored("app/c_store"), old);
    await agrees("app/c_store", "c_store");
  });

  it("target-timeout: ALTER ROLE reaches PostgreSQL but its answer is lost; the engine puts the stored password back; verdict proven", async () => {
    const old = await stored("app/c_timeout");
    const { r, report, x } = await chaos("TIMEOUT", "target-timeout", ["--timeout", "300ms"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(report.verdict, "rollback path proven");
    assert.equal(x.step, "apply");
    assert.match(x.run.message ?? "", /service "db": no answer within 300 ms: injected by dsops chaos \(target-timeout/);
    assert.deepEqual(x.rotation.steps, ["generate:ok", "stage:ok", "apply:failed", "restore:ok", "discard:ok"]);
    assert.equal(x.rotation.status, "rolled-back");
    assert.equal(x.after.loginWorks, true);
    assert.equal(x.verdict, "proven");
    // The new password was set at the server (the log shows two ALTER ROLEs: apply and restore), and the old one is back.
    assert.equal((pg?.log().match(/ALTER ROLE "c_timeout" WITH PASSWORD/g) ?? []).length, 2);
    assert.equal(await stored("app/c_timeout"), old);
    await agrees("app/c_timeout", "c_timeout");
  });

  it("verification-failure: the new password's login is refused by PostgreSQL; the rotation rolls back; markdown report", async () => {
    const old = await stored("app/c_verify");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "VERIFY", "--inject", "verification-failure"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^# Chaos report: env staging\n\n- variables: VERIFY\n/);
    assert.match(r.stdout, /\*\*verdict: rollback path proven\*\*/);
    assert.match(r.stdout, /\| VERIFY \| verification-failure \| verify \| rolled back: the verify step failed; restore and discard ran .*\| current version \d+, login works \| proven \|/);
    assert.match(r.stdout, /steps generate:ok, stage:ok, apply:ok, verify:failed, restore:ok, discard:ok; error: service "db": login as "c_verify" failed: password authentication failed for user "c_verify"/);
    assert.match(r.stdout, /target: the credential stored as current \(version \d+, c_verify\) was accepted by service "db"/);
    assert.equal(await stored("app/c_verify"), old);
    await agrees("app/c_verify", "c_verify");
  });

  for (const step of ["stage", "apply", "promote"]) {
    it(`kill-at:${step}: the rotating process is SIGKILLed after ${step}; the next run resumes and finishes; role and store agree`, async () => {
      const before = (await store().stagesOf("app/c_kill")).current;
      const { r, report, x } = await chaos("KILL", `kill-at:${step}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(report.verdict, "rollback path proven");
      assert.equal(x.step, step);
      assert.equal(x.run.signal, "SIGKILL");
      assert.equal(x.run.exitCode, null);
      assert.equal(x.recovery?.exitCode, 0);
      assert.match(x.recovery?.what ?? "", /^resumed rotation rot-\S+ and finished it \(succeeded\)/);
      assert.match(x.engine, /^resumed: the next run finished the rotation/);
      assert.equal(x.rotation.status, "succeeded");
      assert.deepEqual(x.rotation.steps, ["generate:ok", "stage:ok", "apply:ok", "verify:ok", "promote:ok", "retire:skipped"]);
      const rec = history().find((h) => h.id === x.rotation.id) as RotationRecord;
      assert.equal(rec.resumedBy?.length, 1, "the record was resumed once");
      assert.notEqual(x.after.currentVersion, before);
      assert.equal(x.after.currentVersion, rec.newVersionId);
      assert.equal(x.after.loginWorks, true);
      assert.equal(x.after.locked, false);
      await agrees("app/c_kill", "c_kill");
    });
  }

  it("kill-at:restore (alternating users): killed during the rollback of a failed verification; the next run finishes the rollback, then rotates", async () => {
    const { r, report, x } = await chaos("ALT", "kill-at:restore");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(report.verdict, "rollback path proven");
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.rotation.status, "rolled-back");
    assert.match(x.engine, /^recovered: the next run finished the rollback/);
    assert.match(x.recovery?.what ?? "", /^finished the rollback of rotation rot-\S+, then rotated as asked: rotation rot-\S+ succeeded/);
    const cur = JSON.parse(await stored("app/alt")) as { username: string; password: string };
    values.add(cur.password);
    assert.equal(await pg?.canLogin(cur.username, cur.password), true);
    assert.equal((await store().stagesOf("app/alt")).pending, undefined);
  });

  it("several faults in one run (comma-separated and repeated --inject): one experiment each, in order; JSON on standard output", async () => {
    const r = await cli(["chaos", "run", "--env", "staging", "--var", "TIMEOUT", "--inject", "verification-failure,kill-at:verify", "--inject", "kill-at:generate", "--format", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ChaosReport;
    assert.equal(report.verdict, "rollback path proven");
    assert.deepEqual(
      report.experiments.map((x) => `${x.inject}@${x.step}: ${x.rotation.status}, ${x.verdict}`),
      ["verification-failure@verify: rolled-back, proven", "kill-at:verify@verify: succeeded, proven", "kill-at:generate@generate: succeeded, proven"],
    );
    assert.match(r.stderr, /\[chaos\] dsops: fault injected at after:verify \(kill\)/, "the child's progress is passed on, prefixed");
    await agrees("app/c_timeout", "c_timeout");
  });

  it("kill-at:retire is proven by a resume; a secret whose stored credential does not work before the fault is not proven (exit 1, the problem named)", async () => {
    const { r, x } = await chaos("VERIFY", "kill-at:retire");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.verdict, "proven");
    await agrees("app/c_verify", "c_verify");
    // An administrator disabled the role: the check before the fault fails, nothing is injected, and the verdict says not proven.
    await admin?.query("ALTER ROLE c_verify NOLOGIN");
    try {
      const current = (await store().stagesOf("app/c_verify")).current;
      const bad = await chaos("VERIFY", "store-write-failure");
      assert.equal(bad.r.status, 1, bad.r.stderr);
      assert.equal(bad.report.verdict, "rollback path not proven");
      assert.equal(bad.x.verdict, "not proven");
      assert.match(bad.x.problems[0], /^not run: the credential stored as current does not work before the fault \(service "db" refused the credential stored as current .*not permitted to log in/);
      assert.match(bad.r.stdout, /^VERIFY store-write-failure: not proven \(not run: /);
      assert.match(bad.r.stderr, /error: chaos: rollback path not proven for VERIFY store-write-failure \(env staging\)/);
      assert.equal((await store().stagesOf("app/c_verify")).current, current, "nothing was rotated");
    } finally {
      await admin?.query("ALTER ROLE c_verify LOGIN");
    }
  });

  it("refused: an env not listed in chaos.envs, an env named like production (even when listed), an unknown fault (exit 2, naming the valid ones)", async () => {
    const before = (await store().stagesOf("app/c_prod")).current;
    const qa = await cli(["chaos", "run", "--env", "qa", "--secret", "OTHER", "--inject", "verification-failure"]);
    assert.equal(qa.status, 1);
    assert.match(qa.stderr, /error: chaos: env "qa" is not a chaos env: chaos.envs lists "staging"; nothing was injected/);
    const prod = await cli(["chaos", "run", "--env", "prod", "--secret", "DB", "--inject", "kill-at:apply"]);
    assert.equal(prod.status, 1);
    assert.match(prod.stderr, /error: chaos: env "prod" looks like production .*chaos is never run there/);
    // DSOPS_CHAOS set by hand on an ordinary rotation of a production env is refused too.
    const direct = await cli(["secrets", "rotate", "--env", "prod", "--var", "DB"], { DSOPS_CHAOS: "verification-failure" });
    assert.equal(direct.status, 1);
    assert.match(direct.stderr, /error: chaos: env "prod" looks like production/);
    assert.equal((await store().stagesOf("app/c_prod")).current, before, "nothing was rotated");
    // Listing a production env in chaos.envs is a configuration error naming the field.
    const cfg = readFileSync(join(dir, "dsops.yaml"), "utf8");
    writeFileSync(join(dir, "bad.yaml"), cfg.replace('"envs": [\n      "staging"\n    ]', '"envs": [\n      "staging",\n      "prod"\n    ]'));
    const listed = await cli(["-c", "bad.yaml", "chaos", "run", "--env", "prod", "--secret", "DB", "--inject", "kill-at:apply"]);
    assert.equal(listed.status, 1);
    assert.match(listed.stderr, /chaos\.envs\[1\]: "prod" looks like production .*chaos is refused there/);
    const bad = await cli(["chaos", "run", "--env", "staging", "--secret", "STORE", "--inject", "disk-full"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--inject: unknown fault "disk-full"; valid faults: store-write-failure, target-timeout, verification-failure, kill-at:generate, kill-at:stage, kill-at:apply, kill-at:verify, kill-at:promote, kill-at:retire, kill-at:restore, kill-at:discard/);
    const envBad = await cli(["secrets", "rotate", "--env", "staging", "--var", "STORE"], { DSOPS_CHAOS: "slow-disk" });
    assert.equal(envBad.status, 1, envBad.stderr);
    assert.match(envBad.stderr, /error: DSOPS_CHAOS: unknown fault "slow-disk"; valid faults: store-write-failure/);
    const noDir = await cli(["chaos", "run", "--env", "staging", "--secret", "STORE", "--inject", "kill-at:apply", "--report", join(dir, "missing", "r.json")]);
    assert.equal(noDir.status, 1, noDir.stderr);
    assert.match(noDir.stderr, /error: --report .*missing\/r\.json: cannot write the report: ENOENT/);
    assert.doesNotMatch(noDir.stderr, /\[chaos\]/, "nothing was injected");
    const step = await cli(["chaos", "run", "--env", "staging", "--secret", "STORE", "--inject", "kill-at:deploy"]);
    assert.equal(step.status, 2);
    assert.match(step.stderr, /unknown step "deploy" in "kill-at:deploy": kill-at takes one of generate, stage, apply/);
    assert.equal((await store().stagesOf("app/c_prod")).current, before);
  });

  it("the chaos: block's experiments run when no --inject is given: every declared variable of the env, or the one --secret names", async () => {
    const r = await cli(["chaos", "run", "--env", "staging", "--format", "json"]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ChaosReport;
    assert.deepEqual(report.variables, ["KILL", "ALT"]);
    assert.deepEqual(
      report.experiments.map((x) => `${x.variable} ${x.inject}@${x.step}: ${x.rotation.status}, ${x.verdict}`),
      ["KILL kill-at:verify@verify: succeeded, proven", "ALT verification-failure@verify: rolled-back, proven", "ALT target-timeout@apply: rolled-back, proven"],
    );
    assert.equal(report.verdict, "rollback path proven");
    await agrees("app/c_kill", "c_kill");
    const alt = JSON.parse(await stored("app/alt")) as { username: string; password: string };
    values.add(alt.password);
    assert.equal(await pg?.canLogin(alt.username, alt.password), true);
    const one = await cli(["chaos", "run", "--env", "staging", "--secret", "KILL", "--format", "json"]);
    assert.equal(one.status, 0, one.stderr);
    assert.deepEqual((JSON.parse(one.stdout) as ChaosReport).experiments.map((x) => x.inject), ["kill-at:verify"]);
    const none = await cli(["chaos", "run", "--env", "staging", "--secret", "STORE"]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /error: chaos: nothing to inject: no --inject given and chaos.experiments declares no fault for variable "STORE" of env "staging"/);
  });

  it("no value in any report, output or the history", async () => {
    // Every version ever written, the discarded pending ones of the rolled-back rotations included.
    for (const key of ["app/c_store", "app/c_timeout", "app/c_verify", "app/c_kill", "app/alt"])
      for (let id = 1; ; id++) {
        const v = await stored(key, String(id)).catch(() => undefined);
        if (v === undefined) break;
      }
    for (const v of [...values]) {
      try {
        const o = JSON.parse(v) as { password?: string };
        if (o.password) values.add(o.password);
      } catch {
        /* a plain password */
      }
    }
    const hay = [...outputs, readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8")].join("\n");
    assert.ok(values.size >= 25, `${values.size} values`);
    for (const v of values) assert.equal(hay.includes(v), false, "a secret value appears in an output, report or the history");
  });
});
