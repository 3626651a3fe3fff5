import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FILL_FILE } from "../../provider/rotation/fault";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { dsops } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Disk drills on real PostgreSQL 15 roles rotated by the built `dsops` CLI: single-user (the
 * strategy that changes the password in place), alternating-users, and a manual rollback
 * (`dsops rotation rollback`). The file store and its rotation history live on
 * a small tmpfs mounted by the test (root only). At each step of the rotation the disk is
 * filled (DSOPS_FAULT=<point>:fill) or remounted read-only (<point>:readonly): the run must end
 * with exit 1 and a message (no stack trace), the password the store calls current must log in
 * right then, and a run after the disk is freed must finish the rotation.
 */
describe("rotation: a full or read-only disk during a rotation (tmpfs, real PostgreSQL)", function () {
  this.timeout(300000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let disk: string;
  let mounted = false;
  const values = new Set<string>();
  const outputs: string[] = [];
  const env = { DSOPS_FILE_KEY: "disk-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const steps = ["generate", "stage", "apply", "verify", "promote", "retire"];
  const points = steps.flatMap((s) => [`before:${s}`, `after:${s}`]);
  /** Points before the new version is current: a store write is still to come, so a full disk always fails the run. */
  const beforePromote = points.slice(0, points.indexOf("after:promote"));

  const store = () => new FileStore("local", { type: "file", path: join(disk, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = dsops(args, { cwd: dir, env: { ...env, ...extra } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  type Drill = { variable: string; key: string; args: string[] };
  const single: Drill = { variable: "DB_PASSWORD", key: "app/db-password", args: ["secrets", "rotate", "--env", "prod", "--var", "DB_PASSWORD"] };
  const alternating: Drill = { variable: "DB_LOGIN", key: "app/db-login", args: ["secrets", "rotate", "--env", "prod", "--var", "DB_LOGIN"] };
  const rollback: Drill = { variable: "DB_PASSWORD", key: "app/db-password", args: ["rotation", "rollback", "--service", "app-db", "--env", "prod", "--var", "DB_PASSWORD", "--reason", "drill"] };
  const run = (d: Drill, extra: NodeJS.ProcessEnv = {}) => cli(d.args, extra);
  const rotate = (extra: NodeJS.ProcessEnv = {}) => run(single, extra);

  const canLogin = (user: string, password: string) => pg.canLogin(user, password);

  /** The stored current credential of a drill's variable (single-user: the password of `app`). */
  async function current(d: Drill = single): Promise<{ username: string; password: string }> {
    const v = (await store().get({ key: d.key })).value.reveal();
    if (d.key === single.key) {
      values.add(v);
      return { username: "app", password: v };
    }
    const c = JSON.parse(v) as { username: string; password: string };
    values.add(c.password);
    return c;
  }
  const currentLogsIn = async (d: Drill = single) => {
    const c = await current(d);
    return canLogin(c.username, c.password);
  };

  function records(): RotationRecord[] {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(disk, "dsops-rotation-history.jsonl"), "utf8").split("\n")) {
      try {
        const r = JSON.parse(line) as RotationRecord;
        recs.set(r.id, r);
      } catch {
        /* a line torn by the full disk: readers skip it too */
      }
    }
    return [...recs.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  }

  function mount(args: string[]): void {
    const r = spawnSync("mount", args, { encoding: "utf8" });
    assert.equal(r.status, 0, `mount ${args.join(" ")}: ${r.stderr}`);
  }

  /** Exit 1 with a message and a hint, never a stack trace or an internal error. */
  function handled(r: ReturnType<typeof cli>, point: string, cause: RegExp): void {
    assert.equal(r.status, 1, `${point}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, /^error: /m, point);
    assert.match(r.stderr, cause, `${point}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `${point}: ${r.stderr}`);
  }

  /** After a drill, with the disk still full or read-only: the stored current credential logs in. */
  async function storedCurrentWorks(point: string, d: Drill = single): Promise<void> {
    assert.equal(await currentLogsIn(d), true, `${point}: the credential stored as current logs in while the disk is still full`);
  }

  /** Free the disk, run again: the rotation (or rollback) finishes; nothing pending; the current credential logs in; no lock left. */
  async function rerunSucceeds(point: string, d: Drill = single): Promise<void> {
    const again = run(d);
    assert.equal(again.status, 0, `${point}: the run after freeing the disk: ${again.stderr}`);
    assert.match(again.stdout, d === rollback ? /rolled back to version \d+ .*succeeded/ : /succeeded; version \d+ current/, point);
    assert.doesNotMatch(again.stderr, /^error:/m, `${point}: the run after freeing the disk reports no error`);
    assert.equal(await currentLogsIn(d), true, `${point}: current works after the re-run`);
    assert.equal((await store().stagesOf(d.key)).pending, undefined, `${point}: nothing pending`);
    assert.equal(records().filter((r) => r.variable === d.variable)[0].status, "succeeded", point);
    assert.deepEqual(readdirSync(join(disk, "dsops-rotation-history.jsonl.locks")).filter((f) => f.endsWith(".lock")), [], `${point}: no lock left`);
  }

  before(async function () {
    if (process.getuid?.() !== 0) {
      // Mounting a tmpfs needs root (the test machine runs as root).
      this.skip();
    }
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-disk-"));
    disk = join(dir, "disk");
    mkdirSync(disk);
    mount(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", disk]);
    mounted = true;
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file, path: ./disk/secrets.store }
services:
  app-db:
    type: postgresql
    host: 127.0.0.1
    port: ${pg.port}
    database: postgres
    admin: "store://local/pg/admin"
envs:
  prod:
    DB_PASSWORD:
      from: "store://local/app/db-password"
      rotation: { service: app-db, strategy: single-user, user: app }
    DB_LOGIN:
      from: "store://local/app/db-login"
      rotation: { service: app-db, strategy: alternating-users, users: [alt_a, alt_b] }
`,
    );
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const pw = `Init-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    await admin.query(`CREATE ROLE app LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
    await store().put("app/db-password", new Secret(pw));
    const alt = `Init-${Math.random().toString(36).slice(2)}`;
    values.add(alt);
    await admin.query(`CREATE ROLE alt_a LOGIN PASSWORD ${escapeLiteral(scramVerifier(alt))}`);
    await admin.query("CREATE ROLE alt_b LOGIN");
    await store().put("app/db-login", new Secret(JSON.stringify({ username: "alt_a", password: alt })));
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    if (mounted) spawnSync("umount", [disk]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Fill the disk at each point of `drillPoints`; see the `it`s below. */
  async function fillDrill(d: Drill, drillPoints: string[]): Promise<void> {
    const outcomes: string[] = [];
    for (const point of drillPoints) {
      assert.equal(rotate().status, 0, `${point}: a clean rotation first`); // the history's last page is then in any state
      if (d !== single) assert.equal(run(d === rollback ? single : d).status, 0, `${point}: a clean run of ${d.variable} first`);
      const r = run(d, { DSOPS_FAULT: `${point}:fill`, DSOPS_FAULT_DISK: disk });
      assert.ok(existsSync(join(disk, FILL_FILE)), `${point}: the disk was filled`);
      if (beforePromote.includes(point)) handled(r, point, /ENOSPC:? \(?no space left on device/);
      else if (r.status !== 0) handled(r, point, /ENOSPC:? \(?no space left on device/);
      // After promote only history lines remain to be written: they may still fit in the last
      // page of the history file (exit 0, recorded), else the run fails as above.
      else assert.match(r.stdout, /succeeded/, point);
      outcomes.push(`${point}:${r.status}`);
      await storedCurrentWorks(point, d);
      rmSync(join(disk, FILL_FILE));
      await rerunSucceeds(point, d);
    }
    for (const p of drillPoints.filter((x) => beforePromote.includes(x))) assert.ok(outcomes.includes(`${p}:1`), `${p}: ${outcomes.join(" ")}`);
  }

  it("single-user: the disk fills up at each of 12 points: exit 1 and a message; the stored current password logs in; a run after freeing space finishes", async () => {
    await fillDrill(single, points);
  });

  it("alternating-users: the disk fills up at each of 12 points: exit 1 and a message; the stored current login works; a run after freeing space finishes", async () => {
    await fillDrill(alternating, points);
  });

  it("manual rollback: the disk fills up at each of its steps: exit 1 and a message; the stored current password logs in; the rollback run again finishes", async () => {
    await fillDrill(rollback, points.filter((p) => /:(apply|verify|promote)$/.test(p)));
  });

  it("the disk turns read-only at each point from apply on: exit 1 and a message; the stored current password logs in; a run after it is writable again finishes", async () => {
    for (const point of points.slice(points.indexOf("before:apply"))) {
      assert.equal(rotate().status, 0, `${point}: a clean rotation first`);
      const r = rotate({ DSOPS_FAULT: `${point}:readonly`, DSOPS_FAULT_DISK: disk });
      try {
        handled(r, point, /EROFS: read-only file system/);
        assert.match(r.stderr, /hint: .*run `dsops secrets rotate --env prod --var DB_PASSWORD` again/, point);
        await storedCurrentWorks(point);
      } finally {
        mount(["-o", "remount,rw", disk]);
      }
      await rerunSucceeds(point);
    }
  });

  it("no value in the output of any run", () => {
    assert.ok(values.size > 10, `collected ${values.size} values`);
    const text = outputs.join("\n");
    for (const v of values) assert.ok(!text.includes(v), "a value appears in the output of a run");
  });
});
