// Multi-environment rotation (chains:) on a real PostgreSQL 15: one server, one database, role, service, file store and history per stage (dev, staging, prod).
import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock, systemClock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { composeRotation, type ComposedRotationEngine } from "../../provider/compose/rotation";
import { Secret } from "../../provider/core/secret";
import { RotationError, RotationInProgressError } from "../../provider/rotation/errors";
import { runChain, type ChainRecord, type ChainResult } from "../../provider/rotation/chain/run";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { dsops, dsopsRun, type CliResult } from "../support/cli";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";

const STAGES = ["dev", "staging", "prod"] as const;
type Stage = (typeof STAGES)[number];
const T0 = Date.parse("2026-06-01T00:00:00Z");
const MIN = 60_000;

describe("multi-environment rotation (chains:): stages, soak, health gate, rollback, resume after kill -9 (real PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let admin: Client;
  const env = { DSOPS_FILE_KEY: "chain-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "chain" };
  /** Every value a test used or read: searched for in outputs and histories. */
  const values = new Set<string>();
  const outputs: string[] = [];
  const dirs: string[] = [];
  let n = 0;

  /** A fresh chain: per stage a role `c<n>_<stage>` in database `db_<stage>`, a canary table it may read, its store (in its own folder, with its own history). */
  async function setup(chainExtra = "") {
    const id = ++n;
    const dir = mkdtempSync(join(tmpdir(), "dsops-chain-"));
    dirs.push(dir);
    const old: Record<Stage, string> = { dev: "", staging: "", prod: "" };
    const users: Record<Stage, string> = { dev: "", staging: "", prod: "" };
    mkdirSync(join(dir, "admin"));
    await storeAt(dir, "admin").put("pg", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    for (const s of STAGES) {
      mkdirSync(join(dir, s));
      users[s] = `c${id}_${s}`;
      old[s] = `Old-${s}-${id}-${Math.random().toString(36).slice(2)}`;
      values.add(old[s]);
      await admin.query(`CREATE ROLE ${escapeIdentifier(users[s])} LOGIN PASSWORD ${escapeLiteral(scramVerifier(old[s]))}`);
      const db = await dbClient(s);
      try {
        await db.query(`CREATE TABLE canary_${id} (x int)`);
        await db.query(`GRANT SELECT ON canary_${id} TO ${escapeIdentifier(users[s])}`);
      } finally {
        await db.end();
      }
      await storeAt(dir, s).put("app", new Secret(old[s]));
    }
    const yaml = `version: 1
secretStores:
  admin: { type: file, path: ./admin/secrets.store }
${STAGES.map((s) => `  ${s}-store: { type: file, path: ./${s}/secrets.store }`).join("\n")}
services:
${STAGES.map((s) => `  pg-${s}: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: db_${s}, admin: "store://admin/pg" }`).join("\n")}
chains:
  db:
    variable: DB_PASSWORD
    stages: [dev, staging, prod]
    soak: 10m
    soak_interval: 1m
${chainExtra}
envs:
${STAGES.map(
  (s) => `  ${s}:
    DB_PASSWORD:
      from: "store://${s}-store/app"
      rotation: { service: pg-${s}, user: ${users[s]}, ttl: 30d, health: [{ type: sql, name: canary, query: "SELECT count(*) FROM canary_${id}" }] }`,
).join("\n")}
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    return { id, dir, old, users, yaml };
  }

  const storeAt = (dir: string, s: Stage | "admin") => new FileStore(`${s}-store`, { type: "file", path: join(dir, s, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  async function current(dir: string, s: Stage): Promise<string> {
    const v = (await storeAt(dir, s).get({ key: "app", version: "current" })).value.reveal();
    values.add(v);
    return v;
  }
  async function dbClient(s: Stage): Promise<Client> {
    const c = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: `db_${s}` });
    await c.connect();
    return c;
  }
  /** The records of a history file (last version of each id). */
  function records(dir: string, s: Stage): RotationRecord[] {
    const f = join(dir, s, "dsops-rotation-history.jsonl");
    if (!existsSync(f)) return [];
    const m = new Map<string, RotationRecord>();
    for (const l of readFileSync(f, "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RotationRecord).id, JSON.parse(l) as RotationRecord);
    return [...m.values()];
  }
  const rotations = (dir: string, s: Stage) => records(dir, s).filter((r) => r.kind === "rotate");
  const chainRecord = (dir: string) => records(dir, "dev").find((r) => r.kind === "chain") as ChainRecord;

  function engineFor(dir: string, yaml: string, clock: ManualClock): ComposedRotationEngine {
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    return composeRotation(config, { env: { ...process.env, ...env }, clock, onEvent: (m) => outputs.push(m) });
  }

  /** Run a chain on a ManualClock, moving it by `stepMs` whenever something sleeps on it, until it ends. */
  async function drive(p: Promise<ChainResult>, clock: ManualClock, stepMs: number): Promise<{ result?: ChainResult; error?: unknown }> {
    let done = false;
    let result: ChainResult | undefined;
    let error: unknown;
    p.then((r) => (result = r), (e: unknown) => (error = e)).finally(() => (done = true));
    while (!done) {
      if (clock.sleepers > 0) clock.advance(stepMs);
      await new Promise((r) => setImmediate(r));
    }
    return { ...(result ? { result } : {}), ...(error ? { error } : {}) };
  }

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    for (const s of STAGES) await admin.query(`CREATE DATABASE db_${s}`);
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  afterEach(function () {
    // Secrets never in progress lines, errors, command output.
    const text = outputs.join("\n");
    for (const v of values) assert.ok(!text.includes(v), `a value is in the output of "${this.currentTest?.title}"`);
  });

  it("three stages in order, each after the soak of the one before: prod is not rotated before staging's soak has passed", async () => {
    const { dir, yaml, old, users } = await setup();
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    try {
      const r1 = await runChain(engine, "db");
      assert.equal(r1.state, "soaking");
      assert.equal(r1.next, new Date(T0 + 10 * MIN).toISOString());
      assert.notEqual(await current(dir, "dev"), old.dev, "dev rotated");
      assert.equal(await current(dir, "staging"), old.staging, "staging not yet");

      clock.advance(9 * MIN);
      const r2 = await runChain(engine, "db");
      assert.equal(r2.state, "soaking");
      assert.equal(r2.resumed, true);
      assert.equal(await current(dir, "staging"), old.staging, "staging waits for dev's soak");

      clock.advance(1 * MIN);
      const r3 = await runChain(engine, "db");
      assert.equal(r3.state, "soaking");
      assert.notEqual(await current(dir, "staging"), old.staging, "staging rotated once dev's soak passed");
      assert.equal(await current(dir, "prod"), old.prod);

      clock.advance(5 * MIN);
      assert.equal((await runChain(engine, "db")).state, "soaking");
      assert.equal(await current(dir, "prod"), old.prod, "prod is not rotated before staging's soak has passed");

      clock.advance(5 * MIN);
      const r5 = await runChain(engine, "db");
      assert.equal(r5.state, "succeeded");
      assert.equal(r5.record.status, "succeeded");
      assert.deepEqual(
        r5.record.chain.stages.map((s) => [s.env, s.status]),
        STAGES.map((s) => [s, "passed"]),
      );
    } finally {
      await engine.close();
    }
    for (const s of STAGES) {
      const now = await current(dir, s);
      assert.notEqual(now, old[s]);
      assert.equal(await pg.canLogin(users[s], now), true, `${s}: the new password logs in`);
      assert.equal(await pg.canLogin(users[s], old[s]), false, `${s}: the old one no longer does`);
      assert.equal(rotations(dir, s).length, 1, `${s} rotated once`);
    }
    const [dev, staging, prod] = STAGES.map((s) => rotations(dir, s)[0]);
    assert.ok(Date.parse(staging.startedAt) >= Date.parse(dev.finishedAt as string) + 10 * MIN);
    assert.ok(Date.parse(prod.startedAt) >= Date.parse(staging.finishedAt as string) + 10 * MIN);
    // The chain record, in the first stage's history, with the stages' rotations.
    const rec = chainRecord(dir);
    assert.equal(rec.status, "succeeded");
    assert.deepEqual(
      rec.chain.stages.map((s) => s.rotationId),
      [dev.id, staging.id, prod.id],
    );
  });

  it("--wait (library: wait): watches each soak on the clock (rounds every soak_interval) and goes on, in one run", async () => {
    const { dir, yaml } = await setup();
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    let out;
    try {
      out = await drive(runChain(engine, "db", { wait: true }), clock, MIN);
    } finally {
      await engine.close();
    }
    assert.equal(out.result?.state, "succeeded", String(out.error));
    const [dev, staging, prod] = STAGES.map((s) => rotations(dir, s)[0]);
    assert.ok(Date.parse(staging.startedAt) >= Date.parse(dev.finishedAt as string) + 10 * MIN, "staging after dev's soak");
    assert.ok(Date.parse(prod.startedAt) >= Date.parse(staging.finishedAt as string) + 10 * MIN, "prod after staging's soak");
    assert.ok(outputs.some((l) => /soak after rotation .*: health round 11: healthy/.test(l)), "a round a minute through the 10-minute soak");
  });

  it("--wait: `failures: 2` consecutive failed soak rounds (a minute apart) stop the chain and roll dev back; staging untouched", async () => {
    const { id, dir, yaml, old, users } = await setup("    failures: 2");
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    let error: unknown;
    try {
      let done = false;
      const p = runChain(engine, "db", { wait: true }).catch((e: unknown) => (error = e)).finally(() => (done = true));
      let advances = 0;
      while (!done) {
        if (clock.sleepers > 0) {
          if (++advances === 3) {
            // dev breaks three minutes into its soak.
            const db = await dbClient("dev");
            await db.query(`REVOKE SELECT ON canary_${id} FROM ${escapeIdentifier(users.dev)}`).finally(() => db.end());
          }
          clock.advance(MIN);
        }
        await new Promise((r) => setImmediate(r));
      }
      await p;
    } finally {
      await engine.close();
    }
    assert.ok(error instanceof RotationError, String(error));
    assert.match((error as Error).message, /stage dev failed: health checks failed while soaking: 2 consecutive failed health check round\(s\)/);
    assert.equal(await current(dir, "dev"), old.dev);
    assert.equal(await pg.canLogin(users.dev, old.dev), true);
    assert.equal(await current(dir, "staging"), old.staging);
    assert.equal(rotations(dir, "staging").length, 0);
    assert.deepEqual(
      chainRecord(dir).chain.stages.map((s) => s.status),
      ["rolled-back", "skipped", "skipped"],
    );
  });

  it("a failing health gate while staging soaks: prod untouched; dev and staging rolled back (old passwords log in, the stores hold the old values)", async () => {
    const { id, dir, yaml, old, users } = await setup();
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    let err: unknown;
    let newStaging: string | undefined;
    let newDev: string | undefined;
    try {
      await runChain(engine, "db");
      clock.advance(10 * MIN);
      await runChain(engine, "db");
      newDev = await current(dir, "dev");
      newStaging = await current(dir, "staging");
      assert.notEqual(newStaging, old.staging);
      // staging breaks: the rotated role can no longer read its canary.
      const db = await dbClient("staging");
      await db.query(`REVOKE SELECT ON canary_${id} FROM ${escapeIdentifier(users.staging)}`).finally(() => db.end());
      clock.advance(2 * MIN);
      await runChain(engine, "db").catch((e: unknown) => (err = e));
    } finally {
      await engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    assert.match((err as Error).message, /chain db: .* rolled back: stage staging failed: health checks failed while soaking: .*permission denied for table canary_/);
    assert.match((err as Error).message, /dev: rolled-back, staging: rolled-back, prod: skipped/);
    for (const s of ["dev", "staging"] as const) {
      assert.equal(await current(dir, s), old[s], `${s}: the store holds the old value again`);
      assert.equal(await pg.canLogin(users[s], old[s]), true, `${s}: the old password logs in`);
    }
    assert.equal(await pg.canLogin(users.dev, newDev as string), false, "dev's rotated password no longer logs in");
    assert.equal(await pg.canLogin(users.staging, newStaging as string), false);
    assert.equal(await current(dir, "prod"), old.prod, "prod untouched");
    assert.equal(await pg.canLogin(users.prod, old.prod), true);
    assert.equal(rotations(dir, "prod").length, 0);
    const rec = chainRecord(dir);
    assert.equal(rec.status, "rolled-back");
    assert.equal(rec.chain.failedStage, "staging");
    assert.deepEqual(
      rec.chain.stages.map((s) => s.status),
      ["rolled-back", "rolled-back", "skipped"],
    );
    for (const s of ["dev", "staging"] as const) {
      const rb = records(dir, s).find((r) => r.kind === "rollback");
      assert.equal(rb?.status, "succeeded", `${s}: a rollback record`);
      assert.equal(rec.chain.stages.find((x) => x.env === s)?.rollbackId, rb?.id);
      assert.match(rb?.reason ?? "", new RegExp(`^chain db \\(${rec.id}\\): stage staging failed`));
    }
    // Nothing in the histories is a value.
    for (const s of STAGES) {
      const f = join(dir, s, "dsops-rotation-history.jsonl");
      const text = existsSync(f) ? readFileSync(f, "utf8") : "";
      for (const v of values) assert.ok(!text.includes(v), `a value is in ${s}'s history`);
    }
  });

  it("staging's lock held by another run: the chain stays open at staging (dev not rolled back); the next run goes on", async () => {
    const { dir, yaml, old } = await setup();
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    try {
      await runChain(engine, "db");
      const devNew = await current(dir, "dev");
      clock.advance(10 * MIN);
      const held = await engine.historyFor("staging", "DB_PASSWORD").lock("store://staging-store/app", { pid: process.pid, host: hostname(), who: "other@host", since: new Date(T0).toISOString() });
      let err: unknown;
      try {
        await runChain(engine, "db").catch((e: unknown) => (err = e));
      } finally {
        await held.release();
      }
      assert.ok(err instanceof RotationInProgressError, String(err));
      assert.equal(await current(dir, "dev"), devNew, "dev keeps its new credential");
      assert.equal(await current(dir, "staging"), old.staging);
      const open = chainRecord(dir);
      assert.equal(open.status, "running");
      assert.deepEqual(
        open.chain.stages.map((s) => s.status),
        ["passed", "rotating", "pending"],
      );
      const again = await runChain(engine, "db");
      assert.equal(again.state, "soaking");
      assert.equal(again.resumed, true);
      assert.notEqual(await current(dir, "staging"), old.staging);
    } finally {
      await engine.close();
    }
  });

  it("staging's own rotation fails its health gate: the engine rolls staging back, the chain rolls dev back, prod untouched", async () => {
    const { id, dir, yaml, old, users } = await setup();
    const clock = new ManualClock(T0);
    const engine = engineFor(dir, yaml, clock);
    let err: unknown;
    try {
      await runChain(engine, "db");
      const db = await dbClient("staging");
      await db.query(`DROP TABLE canary_${id}`).finally(() => db.end());
      clock.advance(10 * MIN);
      await drive(runChain(engine, "db"), clock, MIN).then((o) => (err = o.error));
    } finally {
      await engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    assert.match((err as Error).message, /stage staging failed: rotation failed: .*rolled back: health checks failed/);
    for (const s of STAGES) {
      assert.equal(await current(dir, s), old[s], `${s}: old value current`);
      assert.equal(await pg.canLogin(users[s], old[s]), true, `${s}: old password logs in`);
    }
    assert.equal(rotations(dir, "prod").length, 0);
    assert.deepEqual(
      chainRecord(dir).chain.stages.map((s) => s.status),
      ["rolled-back", "rolled-back", "skipped"],
    );
  });

  describe("CLI: dsops rotation chain, rotation run --due; kill -9 mid-chain", () => {
    const at = (t: number) => new Date(t).toISOString();
    function cli(dir: string, args: string[], extra: NodeJS.ProcessEnv = {}): CliResult {
      const r = dsops(args, { cwd: dir, env: { ...env, ...extra } });
      outputs.push(r.stdout, r.stderr);
      return r;
    }

    it("killed inside staging's rotation, then between stages: each next run resumes (no stage rotated twice), and the chain completes", async () => {
      const { dir, old, users } = await setup();
      const r1 = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) });
      assert.equal(r1.status, 0, r1.stderr);
      assert.match(r1.stdout, /chain db: soaking until 2026-06-01T00:10:00\.000Z; run again to go on/);
      // kill -9 in the middle of staging's rotation (its new password applied, not yet promoted).
      const k1 = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN), DSOPS_FAULT: "after:apply" });
      assert.equal(k1.status, null, k1.stderr);
      assert.match(k1.stderr, /fault injected at after:apply/);
      // kill -9 right after staging rotated (its soak recorded), before anything else.
      const k2 = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN), DSOPS_FAULT: "chain:after:staging" });
      assert.equal(k2.status, null, k2.stderr);
      assert.match(k2.stderr, /resuming rotation .* left unfinished/);
      assert.match(k2.stderr, /fault injected at chain:after:staging/);
      const newStaging = await current(dir, "staging");
      assert.notEqual(newStaging, old.staging);
      assert.equal(await pg.canLogin(users.staging, newStaging), true);

      const r3 = cli(dir, ["rotation", "chain", "db", "--json"], { DSOPS_CLOCK: at(T0 + 15 * MIN) });
      assert.equal(r3.status, 0, r3.stderr);
      const j3 = JSON.parse(r3.stdout) as ChainRecord & { state: string; resumed: boolean };
      assert.equal(j3.state, "soaking");
      assert.equal(j3.resumed, true);
      assert.equal(j3.resumedBy?.length, 3);
      assert.equal(await current(dir, "prod"), old.prod);

      const r4 = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 20 * MIN) });
      assert.equal(r4.status, 0, r4.stderr);
      assert.match(r4.stdout, /chain db: succeeded/);
      assert.match(r4.stdout, /prod\s+passed/);
      for (const s of STAGES) {
        assert.equal(rotations(dir, s).length, 1, `${s} rotated once`);
        assert.equal(rotations(dir, s)[0].status, "succeeded");
        assert.equal(await pg.canLogin(users[s], await current(dir, s)), true);
      }
      const st = cli(dir, ["rotation", "chain", "db", "--status"], { DSOPS_CLOCK: at(T0 + 21 * MIN) });
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, /chain db: rot-\S+ succeeded/);
      const h = cli(dir, ["rotation", "history"], { DSOPS_CLOCK: at(T0 + 21 * MIN) });
      assert.equal(h.status, 0, h.stderr);
      assert.match(h.stdout, /dev,staging,prod\/DB_PASSWORD\s+chain\s+chain\s+.*succeeded\s+.*dev:passed,staging:passed,prod:passed/);
    });

    it("killed before the rollback of a failed chain, then inside a stage's rollback: the next run finishes it (exit 1), old passwords back", async () => {
      const { id, dir, old, users } = await setup();
      assert.equal(cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) }).status, 0);
      const db = await dbClient("dev");
      await db.query(`REVOKE SELECT ON canary_${id} FROM ${escapeIdentifier(users.dev)}`).finally(() => db.end());
      const k = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN), DSOPS_FAULT: "chain:before:rollback" });
      assert.equal(k.status, null, k.stderr);
      assert.notEqual(await current(dir, "dev"), old.dev, "killed before anything was rolled back");
      // Killed again, inside dev's rollback (the old password set at the server, the store not yet back).
      const k2 = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN + 30_000), DSOPS_FAULT: "after:apply" });
      assert.equal(k2.status, null, k2.stderr);
      assert.match(k2.stderr, /fault injected at after:apply/);
      assert.equal(records(dir, "dev").find((x) => x.kind === "rollback")?.status, "running");
      const r = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 11 * MIN) });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /chain db: \S+ rolled back: stage dev failed: health checks failed while soaking/);
      assert.equal(await current(dir, "dev"), old.dev);
      assert.equal(await pg.canLogin(users.dev, old.dev), true);
      const rbs = records(dir, "dev").filter((x) => x.kind === "rollback");
      assert.deepEqual(rbs.map((x) => x.status), ["succeeded"], "the interrupted rollback was finished, not started again");
      assert.equal(chainRecord(dir).chain.stages[0].rollbackId, rbs[0].id);
      for (const s of ["staging", "prod"] as const) assert.equal(rotations(dir, s).length, 0, `${s} untouched`);
      // A new run starts a new chain.
      const again = cli(dir, ["rotation", "chain", "db", "--status", "--json"], { DSOPS_CLOCK: at(T0 + 12 * MIN) });
      assert.equal((JSON.parse(again.stdout) as ChainRecord).status, "rolled-back");
    });

    it("secrets rotate by hand of a stage while the chain is open (soaking, rolling back) is refused (exit 1, naming the chain and its state); once the chain ended it rotates", async () => {
      const { id, dir, old, users } = await setup();
      assert.equal(cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) }).status, 0);
      const devNew = await current(dir, "dev");
      for (const [s, n] of [["staging", 2], ["dev", 1]] as const) {
        const r = cli(dir, ["secrets", "rotate", "--env", s, "--var", "DB_PASSWORD"], { DSOPS_CLOCK: at(T0 + MIN) });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`envs\\.${s}\\.DB_PASSWORD: stage ${n} of chain db, which is open: rot-\\S+ in progress \\(dev: soaking until 2026-06-01T00:10:00\\.000Z, staging: pending, prod: pending\\); a stage of an open chain is rotated by the chain only`));
        assert.match(r.stderr, /dsops rotation chain db --status/);
      }
      assert.equal(await current(dir, "staging"), old.staging, "staging not rotated by hand");
      assert.equal(await current(dir, "dev"), devNew, "dev not rotated again");
      assert.equal(rotations(dir, "staging").length, 0);
      assert.equal(rotations(dir, "dev").length, 1);
      // A dry run changes nothing: allowed.
      assert.equal(cli(dir, ["secrets", "rotate", "--env", "staging", "--var", "DB_PASSWORD", "--dry-run"], { DSOPS_CLOCK: at(T0 + MIN) }).status, 0);
      // The chain fails and is killed before its rollback: still open, rolling back.
      const db = await dbClient("dev");
      await db.query(`REVOKE SELECT ON canary_${id} FROM ${escapeIdentifier(users.dev)}`).finally(() => db.end());
      assert.equal(cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN), DSOPS_FAULT: "chain:before:rollback" }).status, null);
      const rb = cli(dir, ["secrets", "rotate", "--env", "staging", "--var", "DB_PASSWORD"], { DSOPS_CLOCK: at(T0 + 11 * MIN) });
      assert.equal(rb.status, 1, rb.stderr);
      assert.match(rb.stderr, /stage 2 of chain db, which is open: rot-\S+ rolling back \(stage dev failed\) \(dev: soaking until \S+, staging: skipped, prod: skipped\)/);
      assert.match(rb.stderr, /finish the chain's rollback first: dsops rotation chain db/);
      assert.equal(rotations(dir, "staging").length, 0);
      // The next chain run finishes the rollback: the chain is closed; a stage rotates by hand again.
      assert.equal(cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 12 * MIN) }).status, 1);
      assert.equal(await current(dir, "dev"), old.dev);
      const ok = cli(dir, ["secrets", "rotate", "--env", "staging", "--var", "DB_PASSWORD"], { DSOPS_CLOCK: at(T0 + 13 * MIN) });
      assert.equal(ok.status, 0, ok.stderr);
      const now = await current(dir, "staging");
      assert.notEqual(now, old.staging);
      assert.equal(await pg.canLogin(users.staging, now), true);
      assert.equal(await pg.canLogin(users.staging, old.staging), false);
      assert.deepEqual(rotations(dir, "staging").map((r) => r.status), ["succeeded"]);
    });

    it("rotation run --due: the first stage's schedule starts the chain, later stages are rotated only by it, an open chain goes on in each pass", async () => {
      const { dir, old } = await setup();
      const p1 = cli(dir, ["rotation", "run", "--due", "--json"], { DSOPS_CLOCK: at(T0) });
      assert.equal(p1.status, 0, p1.stderr);
      const rows1 = JSON.parse(p1.stdout) as Array<{ env: string; result: string; reason?: string }>;
      assert.match(rows1.find((r) => r.env === "dev")?.result ?? "", /^soaking until 2026-06-01T00:10:00\.000Z$/);
      assert.equal(rows1.find((r) => r.env === "staging")?.reason, "stage 2 of chain db: rotated by the chain after dev");
      assert.equal(rows1.find((r) => r.env === "prod")?.result, "-");
      assert.equal(await current(dir, "staging"), old.staging);
      const p2 = cli(dir, ["rotation", "run", "--due", "--json"], { DSOPS_CLOCK: at(T0 + 10 * MIN) });
      assert.equal(p2.status, 0, p2.stderr);
      assert.notEqual(await current(dir, "staging"), old.staging, "the open chain went on: staging rotated");
      assert.equal(await current(dir, "prod"), old.prod);
      assert.equal(cli(dir, ["rotation", "run", "--due"], { DSOPS_CLOCK: at(T0 + 20 * MIN) }).status, 0);
      assert.notEqual(await current(dir, "prod"), old.prod);
      assert.equal(chainRecord(dir).status, "succeeded");
    });

    it("dsops worker --scheduler --once: queues the chain's first stage (not the later ones), its job starts the chain; the next pass goes on with it", async () => {
      const { dir, old } = await setup();
      const url = { DSOPS_WORKER_DATABASE_URL: pg.connectionString(pg.adminUser, pg.adminPassword) };
      const w1 = cli(dir, ["worker", "--scheduler", "--once"], { ...url, DSOPS_CLOCK: at(T0) });
      assert.equal(w1.status, 0, w1.stderr);
      assert.match(w1.stdout + w1.stderr, /queued dev\/DB_PASSWORD/);
      assert.match(w1.stdout + w1.stderr, /not queued staging\/DB_PASSWORD: blocked \(stage 2 of chain db: rotated by the chain after dev\)/);
      assert.match(w1.stdout + w1.stderr, /dev\/DB_PASSWORD: soaking until 2026-06-01T00:10:00\.000Z/);
      assert.notEqual(await current(dir, "dev"), old.dev);
      assert.equal(await current(dir, "staging"), old.staging);
      const w2 = cli(dir, ["worker", "--scheduler", "--once"], { ...url, DSOPS_CLOCK: at(T0 + 10 * MIN) });
      assert.equal(w2.status, 0, w2.stderr);
      assert.notEqual(await current(dir, "staging"), old.staging, "the open chain went on in the next pass: staging rotated");
      assert.equal(await current(dir, "prod"), old.prod);
      assert.equal(chainRecord(dir).chain.stages[1].status, "soaking");
    });

    it("dsops.yaml is checked at load: unknown stage env, an env twice (a cycle), a soak that is not a duration — each names its field", async () => {
      const { dir, yaml } = await setup();
      const cases: Array<[string, RegExp]> = [
        [yaml.replace("stages: [dev, staging, prod]", "stages: [dev, stagin, prod]"), /chains\.db\.stages\[1\]: unknown env "stagin"/],
        [yaml.replace("stages: [dev, staging, prod]", "stages: [dev, staging, dev]"), /chains\.db\.stages\[2\]: env "dev" is stage 1 and again stage 3.*cycle/],
        [yaml.replace("soak: 10m", "soak: ten minutes"), /chains\.db\.soak/],
        [yaml.replace("\nenvs:\n", "\n  db2: { variable: DB_PASSWORD, stages: [prod, staging] }\nenvs:\n"), /chains\.db2\.stages\[0\]: envs\.prod\.DB_PASSWORD is already a stage of chain "db"/],
      ];
      for (const [text, re] of cases) {
        writeFileSync(join(dir, "dsops.yaml"), text);
        const r = cli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, re);
      }
      writeFileSync(join(dir, "dsops.yaml"), yaml);
      const u = cli(dir, ["rotation", "chain", "nope"], { DSOPS_CLOCK: at(T0) });
      assert.equal(u.status, 1, u.stderr);
      assert.match(u.stderr, /unknown chain "nope"[\s\S]*chains: db/);
    });

    describe("--abort: stop an open chain on purpose (a webhook channel gets the chain's notification)", () => {
      let hook: HttpReceiver | undefined;
      /** The CLI in a child process this process does not wait for synchronously: the webhook receiver here answers meanwhile. */
      async function acli(dir: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
        const r = await dsopsRun(args, { cwd: dir, env: { ...env, ...extra } });
        outputs.push(r.stdout, r.stderr);
        return r;
      }
      before(async () => {
        hook = await startHttpReceiver();
      });
      after(async () => {
        await hook?.close();
      });
      /** setup() with a webhook channel in dsops.yaml. */
      async function setupNotified() {
        const s = await setup();
        writeFileSync(join(s.dir, "dsops.yaml"), s.yaml + `notifications:\n  wait_ms: 5000\n  webhooks: [{ name: audit, url: "${hook?.url}/hook" }]\n`);
        return s;
      }
      /** The chain's events the webhook got, one per delivery (a delivery the channel retried counts once: its x-dsops-delivery id). */
      const chainEvents = (id: string) =>
        [...new Map((hook?.requests ?? []).map((r) => [String(r.headers["x-dsops-delivery"]), r])).values()].map((r) => JSON.parse(r.body) as { type: string; secret: string; status?: string; who?: string; reason?: string; rotationId?: string; trigger?: string; error?: string }).filter((e) => e.secret === "chain://db" && e.rotationId === id);

      it("dev passed and staging soaking: --abort rolls both back (the pre-chain passwords log in, the rotated ones do not), prod skipped; aborted in the history, notified; a hand rotation's refusal names --abort; the scheduler does not start it again", async () => {
        const { dir, old, users } = await setupNotified();
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) })).status, 0);
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN) })).status, 0);
        const rotated = { dev: await current(dir, "dev"), staging: await current(dir, "staging") };
        assert.notEqual(rotated.staging, old.staging);
        const refused = await acli(dir, ["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"], { DSOPS_CLOCK: at(T0 + 11 * MIN) });
        assert.equal(refused.status, 1, refused.stderr);
        assert.match(refused.stderr, /dsops rotation chain db --abort --reason/);
        const ab = await acli(dir, ["rotation", "chain", "db", "--abort", "--reason", "release pulled"], { DSOPS_CLOCK: at(T0 + 12 * MIN) });
        assert.equal(ab.status, 0, ab.stderr);
        assert.match(ab.stdout, /chain db: rot-\S+ aborted \(started .*; aborted by chain@\S+ at 2026-06-01T00:12:00\.000Z: release pulled\)/);
        assert.match(ab.stdout, /chain db: aborted; every stage it rotated has its old credential back/);
        for (const s of ["dev", "staging"] as const) {
          assert.equal(await current(dir, s), old[s], `${s}: the store holds the pre-chain value`);
          assert.equal(await pg.canLogin(users[s], old[s]), true, `${s}: the pre-chain password logs in`);
          assert.equal(await pg.canLogin(users[s], rotated[s]), false, `${s}: the rotated password no longer logs in`);
          const rb = records(dir, s).filter((r) => r.kind === "rollback");
          assert.deepEqual(rb.map((r) => r.status), ["succeeded"], `${s}: one manual rollback`);
          assert.match(rb[0].reason ?? "", /^chain db \(rot-\S+\): aborted by chain@\S+: release pulled$/);
        }
        assert.equal(await current(dir, "prod"), old.prod);
        assert.equal(await pg.canLogin(users.prod, old.prod), true);
        assert.equal(rotations(dir, "prod").length, 0, "prod never touched");
        const rec = chainRecord(dir);
        assert.equal(rec.status, "aborted");
        assert.equal(rec.chain.aborted?.reason, "release pulled");
        assert.match(rec.chain.aborted?.by ?? "", /^chain@/);
        assert.deepEqual(rec.chain.stages.map((s) => s.status), ["rolled-back", "rolled-back", "skipped"]);
        // The rollbacks ran newest first: staging's before dev's.
        const [rbDev, rbStaging] = (["dev", "staging"] as const).map((s) => records(dir, s).find((r) => r.kind === "rollback") as RotationRecord);
        assert.ok(rbStaging.startedAt <= rbDev.startedAt, "staging rolled back first");
        const h = await acli(dir, ["rotation", "history"], { DSOPS_CLOCK: at(T0 + 13 * MIN) });
        assert.equal(h.status, 0, h.stderr);
        assert.match(h.stdout, /dev,staging,prod\/DB_PASSWORD\s+chain\s+chain\s+.*aborted/);
        // The chain's notification: one rollback event of chain://db, who and why, no value.
        const ev = chainEvents(rec.id);
        assert.equal(ev.length, 1, JSON.stringify(hook?.requests.map((r) => [r.headers["x-dsops-delivery"], r.body.slice(0, 60)])));
        assert.equal(ev[0].type, "rollback");
        assert.equal(ev[0].status, "aborted");
        assert.equal(ev[0].trigger, "manual");
        assert.equal(ev[0].reason, "release pulled");
        assert.match(ev[0].error ?? "", /dev: rolled-back, staging: rolled-back, prod: skipped/);
        for (const r of hook?.requests ?? []) for (const v of values) assert.ok(!r.body.includes(v), "a value in a notification");
        // Ended: --abort again and the scheduler.
        const again = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0 + 14 * MIN) });
        assert.equal(again.status, 1, again.stderr);
        assert.match(again.stderr, new RegExp(`chain db: ${rec.id} already ended aborted at 2026-06-01T00:12:00\\.000Z: there is nothing to abort`));
        const due = await acli(dir, ["rotation", "run", "--due", "--json"], { DSOPS_CLOCK: at(T0 + 31 * 24 * 60 * MIN) });
        assert.equal(due.status, 0, due.stderr);
        const rows = JSON.parse(due.stdout) as Array<{ env: string; result: string; reason?: string }>;
        assert.equal(rows.find((r) => r.env === "dev")?.result, "skipped");
        assert.match(rows.find((r) => r.env === "dev")?.reason ?? "", /chain db was aborted .*the scheduler does not start it again: dsops rotation chain db/);
        assert.equal(await current(dir, "dev"), old.dev, "not rotated by the scheduler");
        assert.equal(records(dir, "dev").filter((r) => r.kind === "chain").length, 1, "no new chain");
        // A chain never run, or a usage mistake.
        assert.equal((await acli(dir, ["rotation", "chain", "db", "--abort", "--status"], { DSOPS_CLOCK: at(T0) })).status, 2);
      });

      it("kill -9 before the abort's rollback, then inside staging's rollback: the chain stays rolling back (hand rotation refused), `rotation chain` finishes it (exit 1, aborted), --abort then says it ended", async () => {
        const { dir, old, users } = await setupNotified();
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) })).status, 0);
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN) })).status, 0);
        const rotated = { dev: await current(dir, "dev"), staging: await current(dir, "staging") };
        const k1 = await acli(dir, ["rotation", "chain", "db", "--abort", "--reason", "stop"], { DSOPS_CLOCK: at(T0 + 11 * MIN), DSOPS_FAULT: "chain:before:rollback" });
        assert.equal(k1.status, null, k1.stderr);
        assert.match(k1.stderr, /fault injected at chain:before:rollback/);
        assert.equal(await current(dir, "staging"), rotated.staging, "killed before anything was rolled back");
        let rec = chainRecord(dir);
        assert.equal(rec.status, "running");
        assert.equal(rec.chain.aborted?.reason, "stop");
        assert.deepEqual(rec.chain.stages.map((s) => s.status), ["passed", "soaking", "skipped"]);
        const refused = await acli(dir, ["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"], { DSOPS_CLOCK: at(T0 + 11 * MIN) });
        assert.equal(refused.status, 1, refused.stderr);
        assert.match(refused.stderr, /rolling back \(aborted by chain@\S+\)/);
        assert.match(refused.stderr, /dsops rotation chain db \(or --abort\)/);
        // Killed again inside staging's rollback (the old password set at the server, the store not yet back).
        const k2 = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0 + 12 * MIN), DSOPS_FAULT: "after:apply" });
        assert.equal(k2.status, null, k2.stderr);
        assert.match(k2.stderr, /fault injected at after:apply/);
        assert.equal(records(dir, "staging").find((x) => x.kind === "rollback")?.status, "running");
        assert.equal(chainEvents(chainRecord(dir).id).length, 0, "no notification before the abort ended");
        // The next chain run finishes the rollback; it never goes on rotating.
        const r = await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 13 * MIN) });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /chain db: \S+ aborted: aborted by chain@\S+: stop \(dev: rolled-back, staging: rolled-back, prod: skipped\)/);
        for (const s of ["dev", "staging"] as const) {
          assert.equal(await current(dir, s), old[s]);
          assert.equal(await pg.canLogin(users[s], old[s]), true, `${s}: the pre-chain password logs in`);
          assert.equal(await pg.canLogin(users[s], rotated[s]), false, `${s}: the rotated one does not`);
          assert.deepEqual(records(dir, s).filter((x) => x.kind === "rollback").map((x) => x.status), ["succeeded"], `${s}: the interrupted rollback was finished, not started again`);
        }
        assert.equal(rotations(dir, "prod").length, 0);
        rec = chainRecord(dir);
        assert.equal(rec.status, "aborted");
        assert.equal(chainEvents(rec.id).length, 1, `notified once: ${JSON.stringify(chainEvents(rec.id))}`);
        const again = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0 + 14 * MIN) });
        assert.equal(again.status, 1, again.stderr);
        assert.match(again.stderr, /already ended aborted/);
      });

      it("kill -9 between two stages' rollbacks (staging back, dev not yet): the next --abort rolls dev back and does not roll staging back again", async () => {
        const { dir, old, users } = await setupNotified();
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) })).status, 0);
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN) })).status, 0);
        const devNew = await current(dir, "dev");
        const k = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0 + 11 * MIN), DSOPS_FAULT: "chain:after:rollback:staging" });
        assert.equal(k.status, null, k.stderr);
        assert.match(k.stderr, /fault injected at chain:after:rollback:staging/);
        assert.equal(await current(dir, "staging"), old.staging);
        assert.equal(await current(dir, "dev"), devNew, "dev not yet rolled back");
        assert.deepEqual(chainRecord(dir).chain.stages.map((s) => s.status), ["passed", "rolled-back", "skipped"]);
        const ab = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0 + 12 * MIN) });
        assert.equal(ab.status, 0, ab.stderr);
        assert.match(ab.stderr, /is aborted: finishing its rollback/);
        for (const s of ["dev", "staging"] as const) {
          assert.equal(await current(dir, s), old[s]);
          assert.equal(await pg.canLogin(users[s], old[s]), true, `${s}: the pre-chain password logs in`);
          assert.equal(records(dir, s).filter((x) => x.kind === "rollback").length, 1, `${s}: rolled back once`);
        }
        assert.equal(await pg.canLogin(users.dev, devNew), false);
        assert.equal(chainRecord(dir).status, "aborted");
      });

      it("a chain killed inside staging's rotation, then --abort: the engine finishes staging's rotation, then both stages are rolled back; --abort of a chain never run exits 1", async () => {
        const { dir, old, users } = await setupNotified();
        const never = await acli(dir, ["rotation", "chain", "db", "--abort"], { DSOPS_CLOCK: at(T0) });
        assert.equal(never.status, 1, never.stderr);
        assert.match(never.stderr, /chain db has never run: there is nothing to abort/);
        assert.equal((await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0) })).status, 0);
        const devNew = await current(dir, "dev");
        const k = await acli(dir, ["rotation", "chain", "db"], { DSOPS_CLOCK: at(T0 + 10 * MIN), DSOPS_FAULT: "after:apply" });
        assert.equal(k.status, null, k.stderr);
        assert.equal(rotations(dir, "staging")[0]?.status, "running");
        const ab = await acli(dir, ["rotation", "chain", "db", "--abort", "--json"], { DSOPS_CLOCK: at(T0 + 11 * MIN) });
        assert.equal(ab.status, 0, ab.stderr);
        const rec = JSON.parse(ab.stdout) as ChainRecord;
        assert.equal(rec.status, "aborted");
        assert.deepEqual(rec.chain.stages.map((s) => s.status), ["rolled-back", "rolled-back", "skipped"]);
        assert.equal(await current(dir, "dev"), old.dev);
        assert.equal(await pg.canLogin(users.dev, old.dev), true);
        assert.equal(await pg.canLogin(users.dev, devNew), false);
        assert.equal(await current(dir, "staging"), old.staging);
        assert.equal(await pg.canLogin(users.staging, old.staging), true, "staging: the pre-chain password logs in");
        assert.deepEqual(rotations(dir, "staging").map((r) => r.status), ["succeeded"], "the killed rotation was finished once, not started again");
        assert.equal(await pg.canLogin(users.prod, old.prod), true);
        assert.equal(rotations(dir, "prod").length, 0);
      });
    });
  });
});
