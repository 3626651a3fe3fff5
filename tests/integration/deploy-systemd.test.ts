import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_BIN, dsops, dsopsRun } from "../support/cli";
import { Client } from "pg";
import { havePostgres, startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * deploy/systemd: the units are checked by the real `systemd-analyze verify` (with /usr/bin/dsops
 * pointed at this repository's bin/dsops; any complaint fails), their settings are read back
 * (oneshot pass every 5 minutes, EnvironmentFile for credentials, SIGTERM with a stop timeout
 * above the job timeout, hardening), and every ExecStart line is run as the dsops it names: its
 * flags must be in `dsops … --help`, the rotation pass runs against a dsops.yaml, and the worker
 * line (plus --once) runs against a real PostgreSQL 15 with the URL from the environment.
 */

const ROOT = join(__dirname, "..", "..", "..");
const UNITS = join(ROOT, "deploy", "systemd");

type Unit = Map<string, Map<string, string[]>>;

/** A unit file's sections and their keys (a key may repeat: every value is kept). */
function parseUnit(file: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = new Map();
      unit.set(head[1], section);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(section && eq > 0, `${file}: not a key=value line in a section: ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

function one(unit: Unit, section: string, key: string): string {
  const v = unit.get(section)?.get(key);
  assert.ok(v && v.length === 1, `[${section}] ${key}: expected one value, got ${JSON.stringify(v)}`);
  return v[0];
}

/** systemd time spans as these units write them: 17min, 1h, 10s, 30s. */
function seconds(span: string): number {
  const m = /^(\d+)\s*(s|sec|min|m|h)?$/.exec(span);
  assert.ok(m, `not a time span: ${span}`);
  const unit = m[2] ?? "s";
  return Number(m[1]) * (unit === "h" ? 3600 : unit === "min" || unit === "m" ? 60 : 1);
}

/** dsops's arguments of an ExecStart line (the units quote nothing). */
function execArgs(unit: Unit): string[] {
  const [bin, ...args] = one(unit, "Service", "ExecStart").split(/\s+/);
  assert.equal(bin, "/usr/bin/dsops");
  return args;
}

describe("deploy/systemd: dsops-rotation.service/.timer and dsops-worker.service", function () {
  this.timeout(120_000);
  const rotation = parseUnit(join(UNITS, "dsops-rotation.service"));
  const timer = parseUnit(join(UNITS, "dsops-rotation.timer"));
  const worker = parseUnit(join(UNITS, "dsops-worker.service"));
  let work: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), "dsops-systemd-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** The units in a folder of their own, /usr/bin/dsops replaced by this repository's bin/dsops. */
  function unitCopy(name: string, edit: (file: string, text: string) => string = (_f, t) => t): string {
    const dir = join(work, name);
    spawnSync("mkdir", ["-p", dir]);
    for (const f of readdirSync(UNITS).filter((f) => /\.(service|timer)$/.test(f)))
      writeFileSync(join(dir, f), edit(f, readFileSync(join(UNITS, f), "utf8").replaceAll("/usr/bin/dsops", DSOPS_BIN)));
    return dir;
  }
  function verify(dir: string) {
    const files = readdirSync(dir).map((f) => join(dir, f));
    const r = spawnSync("systemd-analyze", ["verify", ...files], { encoding: "utf8" });
    return { status: r.status, out: (r.stdout ?? "") + (r.stderr ?? "") };
  }
  const haveAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;

  it("systemd-analyze verify accepts the three units without a word; a broken copy is refused with its line", function () {
    if (!haveAnalyze) {
      console.log("      skipped: systemd-analyze is not installed here (the unit files are still parsed and run by the tests below)");
      this.skip();
    }
    const good = verify(unitCopy("good"));
    assert.equal(good.status, 0, good.out);
    assert.equal(good.out.trim(), "", `systemd-analyze verify complained:\n${good.out}`);
    // systemd-analyze exits 0 on a bad setting (it ignores it), so the output is what fails: show it does.
    const bad = verify(unitCopy("bad", (f, t) => (f === "dsops-worker.service" ? t.replace("KillSignal=SIGTERM", "KillSignal=SIGTERMINATE") : t)));
    assert.match(bad.out, /dsops-worker\.service:\d+: Failed to parse .*SIGTERMINATE/);
    const timerOnly = verify(unitCopy("bad-timer", (f, t) => (f === "dsops-rotation.timer" ? t.replace("OnCalendar=*:0/5", "OnCalendar=every five minutes") : t)));
    assert.match(timerOnly.out, /dsops-rotation\.timer:\d+: Failed to parse calendar specification/);
  });

  it("the timer starts the oneshot pass every 5 minutes, and catches up after downtime", function () {
    assert.equal(one(rotation, "Service", "Type"), "oneshot");
    assert.deepEqual(execArgs(rotation).slice(-3), ["rotation", "run", "--due"]);
    assert.equal(one(timer, "Timer", "OnCalendar"), "*:0/5");
    assert.equal(one(timer, "Timer", "Persistent"), "true");
    assert.equal(one(timer, "Install", "WantedBy"), "timers.target");
    if (haveAnalyze) {
      const cal = spawnSync("systemd-analyze", ["calendar", "--iterations", "3", "--base-time", "2026-11-20 12:01:00 UTC", "*:0/5"], { encoding: "utf8", env: { ...process.env, TZ: "UTC" } });
      assert.equal(cal.status, 0, cal.stderr);
      assert.match(cal.stdout, /Normalized form: \*-\*-\* \*:00\/5:00/);
      // Every 5 minutes: the next three elapses after 12:01 are 12:05, 12:10, 12:15.
      assert.deepEqual([...cal.stdout.matchAll(/(\d\d:\d\d):00 UTC/g)].map((m) => m[1]).slice(0, 3), ["12:05", "12:10", "12:15"]);
    }
  });

  it("credentials only from the EnvironmentFile: no URL, token or --database-url on an ExecStart line", () => {
    for (const u of [rotation, worker]) {
      assert.equal(one(u, "Service", "EnvironmentFile"), "/etc/dsops/dsops.env");
      const line = one(u, "Service", "ExecStart");
      assert.doesNotMatch(line, /--database-url|postgres(ql)?:\/\/|TOKEN|PASSWORD/i);
    }
    const example = readFileSync(join(UNITS, "dsops.env.example"), "utf8");
    assert.match(example, /^DSOPS_WORKER_DATABASE_URL=postgresql:\/\//m);
  });

  it("the worker: Restart=on-failure, SIGTERM, and a stop timeout above its --job-timeout (the running job finishes)", () => {
    assert.equal(one(worker, "Service", "Restart"), "on-failure");
    assert.equal(one(worker, "Service", "KillSignal"), "SIGTERM");
    const args = execArgs(worker);
    const jobTimeout = args[args.indexOf("--job-timeout") + 1];
    assert.equal(jobTimeout, "15m");
    const stop = seconds(one(worker, "Service", "TimeoutStopSec"));
    assert.ok(stop > 15 * 60, `TimeoutStopSec ${stop}s must be above the 900 s job timeout`);
  });

  it("hardening: a dynamic user, read-only system, no capabilities, no new privileges", () => {
    for (const u of [rotation, worker]) {
      for (const [key, value] of [
        ["DynamicUser", "yes"],
        ["ProtectSystem", "strict"],
        ["ProtectHome", "yes"],
        ["PrivateTmp", "yes"],
        ["NoNewPrivileges", "yes"],
        ["CapabilityBoundingSet", ""],
        ["StateDirectory", "dsops"],
        ["UMask", "0077"],
      ])
        assert.equal(one(u, "Service", key), value, key);
      // Node.js's JIT needs writable executable memory.
      assert.ok(!u.get("Service")?.has("MemoryDenyWriteExecute"));
    }
  });

  it("every ExecStart line is a valid dsops invocation: each flag is in `dsops … --help`", () => {
    const global = dsops(["--help"], { cwd: work });
    assert.equal(global.status, 0, global.stderr);
    for (const [name, u] of [["dsops-rotation.service", rotation], ["dsops-worker.service", worker]] as const) {
      const args = execArgs(u);
      const help = dsops([...args, "--help"], { cwd: work });
      assert.equal(help.status, 0, `${name}: dsops ${args.join(" ")} --help: ${help.stderr}`);
      for (const flag of args.filter((a) => a.startsWith("--")))
        assert.ok(new RegExp(`(^|[ ,])${flag}(?![\\w-])`, "m").test(help.stdout + global.stdout), `${name}: ${flag} is not a flag of dsops ${args.filter((a) => !a.startsWith("-")).join(" ")}`);
    }
  });

  it("dsops-rotation.service's ExecStart runs: one pass over a dsops.yaml", () => {
    const config = join(work, "dsops.yaml");
    writeFileSync(config, "version: 1\nsecretStores: {}\nservices: {}\nenvs: {}\n");
    const args = execArgs(rotation).map((a) => (a === "/etc/dsops/dsops.yaml" ? config : a));
    const r = dsops(args, { cwd: work, env: { DSOPS_NON_INTERACTIVE: "1", NO_COLOR: "1" } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no rotation in dsops\.yaml/);
  });

  describe("dsops-worker.service's ExecStart against a real PostgreSQL 15", () => {
    let pg: RunningPostgres | undefined;
    before(async function () {
      if (!havePostgres()) {
        console.log("      skipped: PostgreSQL 15 is not installed (scripts/peers/install-db.sh)");
        this.skip();
      }
      pg = await startPostgres();
    });
    after(async () => pg?.stop());

    it("runs (with --once) with the queue URL from the environment, creates the queue and exits 0; the URL is never printed", async () => {
      const p = pg as RunningPostgres;
      const url = p.connectionString(p.adminUser, p.adminPassword);
      const config = join(work, "worker.yaml");
      writeFileSync(config, "version: 1\nsecretStores: {}\nservices: {}\nenvs: {}\n");
      const args = [...execArgs(worker).map((a) => (a === "/etc/dsops/dsops.yaml" ? config : a)), "--once"];
      const r = await dsopsRun(args, { cwd: work, env: { DSOPS_WORKER_DATABASE_URL: url, DSOPS_NON_INTERACTIVE: "1", NO_COLOR: "1" } });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!(r.stdout + r.stderr).includes(p.adminPassword), "the database password was printed");
      const admin = new Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" });
      await admin.connect();
      const q = await admin.query<{ name: string }>("SELECT name FROM dsops_worker.queue ORDER BY name").finally(() => admin.end());
      assert.deepEqual(q.rows.map((r) => r.name), ["dsops-rotation", "dsops-rotation-dead"]);
    });
  });
});
