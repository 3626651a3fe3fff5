import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { BreakGlassRecord } from "../../provider/rotation/governance";
import { dsopsRun, type CliResult } from "../support/cli";
import { ManualClock, Resolver, loadConfigFile, setClock } from "../../provider/library/index";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Sealed values (`access: breakglass`) through the built `dsops` against a real PostgreSQL 15
 * (its roles are the rotated credentials): get, render and exec refuse a sealed value without an
 * open, unexpired break-glass grant on that very variable (no grant, a grant on another
 * variable or env, a closed one, an expired one, a history that cannot be read), exit 1 naming
 * the variable, the rule and the command to open one; a render with one sealed variable writes
 * nothing. Under a grant the reads work and each is recorded on it (who, when, command), the
 * compliance report lists them, and closing the grant still rotates the credential. The clock
 * is moved with DSOPS_CLOCK; every output and the history are searched for the values.
 */
const T0 = "2026-11-20T12:00:00.000Z";
const at = (hours: number) => new Date(Date.parse(T0) + hours * 3_600_000).toISOString();

describe("break-glass gates sealed reads (access: breakglass; real PostgreSQL 15)", function () {
  this.timeout(120_000);
  let pg: RunningPostgres | undefined;
  let dir: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const initial: Record<string, string> = {};

  async function cli(args: string[], o: { at?: string; user?: string; input?: string } = {}): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, ...(o.input !== undefined ? { input: o.input } : {}), env: { DSOPS_CLOCK: o.at ?? T0, DSOPS_USER: o.user ?? "eve" } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  /** A refusal: exit 1 (a user error, never 70), naming the variable, the rule and the way to open a grant. */
  function refused(r: CliResult, env: string, variable: string, why: RegExp): void {
    assert.equal(r.status, 1, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`${env}/${variable} is sealed (envs.${env}.${variable}.access: breakglass)`), r.stderr);
    assert.match(r.stderr, why);
    assert.equal(r.stdout, "");
  }
  async function logsIn(role: string, password: string): Promise<boolean> {
    const c = new Client({ host: pg?.host, port: pg?.port, user: role, password, database: "postgres" });
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const rot = (user: string) => ({ service: "app-db", strategy: "single-user", user, ttl: "30d" });
  const grants = async (hours: number) => JSON.parse(ok(await cli(["breakglass", "list", "--json"], { at: at(hours) })).stdout) as BreakGlassRecord[];

  before(async () => {
    pg = await startPostgres();
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-sealed-"));
    try {
      writeFileSync(
        join(dir, "dsops.yaml"),
        JSON.stringify({
          version: 1,
          secretStores: { local: { type: "file", path: "./secrets.store" } },
          services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
          envs: {
            prod: {
              SEALED: { from: "store://local/app/s", access: "breakglass", rotation: rot("role_s") },
              OTHER: { from: "store://local/app/o", access: "breakglass", rotation: rot("role_o") },
              OPEN: { from: "store://local/app/open" },
            },
            staging: { SEALED: { from: "store://local/app/t", access: "breakglass", rotation: rot("role_t") } },
          },
        }),
      );
      ok(await cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
      values.add(pg.adminPassword);
      for (const k of ["s", "o", "t", "open"]) {
        const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
        values.add(pw);
        initial[k] = pw;
        if (k !== "open") await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
        ok(await cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: pw }));
      }
    } finally {
      await admin.end();
    }
  });

  after(async () => {
    try {
      // The outputs that must hold a value (get under a grant) were taken out of `outputs`.
      for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), `an output holds a secret value: ${r.stderr}`);
      const history = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
      for (const v of values) assert.ok(!history.includes(v), "the history holds a secret value");
    } finally {
      await pg?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a bad access value, and access: breakglass without a rotation block, are refused naming the field", async () => {
    const bad = join(dir, "bad");
    mkdirSync(bad);
    writeFileSync(join(bad, "dsops.yaml"), "version: 1\nsecretStores: {local: {type: file, path: ./s}}\nenvs:\n  prod:\n    A: {from: store://local/a, access: sealed}\n");
    const r1 = await dsopsRun(["plan", "--env", "prod"], { cwd: bad });
    assert.equal(r1.status, 1, r1.stderr);
    assert.match(r1.stderr, /envs\.prod\.A\.access/);
    assert.match(r1.stderr, /breakglass/);
    writeFileSync(join(bad, "dsops.yaml"), "version: 1\nsecretStores: {local: {type: file, path: ./s}}\nenvs:\n  prod:\n    A: {from: store://local/a, access: breakglass}\n");
    const r2 = await dsopsRun(["plan", "--env", "prod"], { cwd: bad });
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, /envs\.prod\.A\.access: breakglass needs a rotation: block/);
  });

  it("without a grant: get, render and exec refuse (exit 1, the hint), render writes no file; plan and an open variable still work", async () => {
    const get = await cli(["get", "--env", "prod", "--var", "SEALED"]);
    refused(get, "prod", "SEALED", /no break-glass grant was opened for it/);
    assert.ok(get.stderr.includes("dsops breakglass open --secret prod/SEALED --reason"), get.stderr);
    assert.match(get.stderr, /--ttl/);
    const out = join(dir, "prod.env");
    refused(await cli(["render", "--env", "prod", "--out", out]), "prod", "SEALED", /no break-glass grant/);
    assert.ok(!existsSync(out), "render wrote a file although a sealed variable had no grant");
    assert.deepEqual(
      (await import("node:fs")).readdirSync(dir).filter((f) => f.startsWith("prod.env")),
      [],
    );
    const exec = await cli(["exec", "--env", "prod", "--", "sh", "-c", "echo RAN > ran.txt"]);
    assert.equal(exec.status, 1, exec.stderr);
    assert.ok(!existsSync(join(dir, "ran.txt")), "exec ran the command");
    const plan = ok(await cli(["plan", "--env", "prod", "--json"]));
    assert.match(plan.stdout, /SEALED/);
    const open = ok(await cli(["get", "--env", "prod", "--var", "OPEN"]));
    assert.equal(open.stdout, `${initial.open}\n`);
    outputs.pop();
  });

  it("a grant on another variable or another env does not cover it", async () => {
    ok(await cli(["breakglass", "open", "--secret", "staging/SEALED", "--reason", "INC-8 staging", "--ttl", "1h"], { user: "dana" }));
    ok(await cli(["breakglass", "open", "--secret", "prod/OTHER", "--reason", "INC-8 other", "--ttl", "1h"], { user: "dana" }));
    refused(await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(0.1) }), "prod", "SEALED", /no break-glass grant was opened for it/);
    const out = join(dir, "prod.env");
    refused(await cli(["render", "--env", "prod", "--out", out], { at: at(0.1) }), "prod", "SEALED", /no break-glass grant/);
    assert.ok(!existsSync(out));
  });

  it("under an open grant: get and render read it, each read is recorded on the grant and in the compliance report; close rotates; then a closed and an expired grant refuse", async () => {
    const rec = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "prod/SEALED", "--reason", "INC-9 forensics", "--ttl", "1h", "--json"], { at: at(0.2), user: "dana" })).stdout) as BreakGlassRecord;
    const got = ok(await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(0.25) }));
    outputs.pop();
    assert.equal(got.stdout, `${initial.s}\n`);
    const out = join(dir, "prod.env");
    ok(await cli(["render", "--env", "prod", "--out", out], { at: at(0.3) }));
    const text = readFileSync(out, "utf8");
    assert.ok(text.includes(initial.s) && text.includes(initial.o) && text.includes(initial.open));
    rmSync(out);
    const mine = (await grants(0.35)).find((g) => g.id === rec.id) as BreakGlassRecord;
    assert.deepEqual(mine.reads, [
      { by: "eve", at: at(0.25), command: "dsops get" },
      { by: "eve", at: at(0.3), command: "dsops render" },
    ]);
    const listed = ok(await cli(["breakglass", "list", "--env", "prod"], { at: at(0.35) })).stdout;
    assert.match(listed.split("\n")[0], /READS$/);
    assert.match(listed.split("\n").find((l) => l.startsWith(rec.id)) ?? "", / 2$/);
    const other = (await grants(0.35)).find((g) => g.variable === "OTHER") as BreakGlassRecord;
    assert.deepEqual(other.reads, [{ by: "eve", at: at(0.3), command: "dsops render" }]);
    // The compliance report lists the grant with its reads.
    ok(await cli(["report", "compliance", "--env", "prod", "--format", "json", "--out", join(dir, "report.json")], { at: at(0.4) }));
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { governance: Array<{ id: string; kind: string; who?: string; at: string; reason?: string }> };
    const reads = report.governance.filter((e) => e.id === rec.id && e.kind === "breakglass-read");
    assert.deepEqual(
      reads.map((e) => [e.who, e.at, e.reason]),
      [
        ["eve", at(0.25), "read with dsops get"],
        ["eve", at(0.3), "read with dsops render"],
      ],
    );
    assert.ok(report.governance.some((e) => e.id === rec.id && e.kind === "breakglass-opened"));
    // Closing rotates the credential: what was read stops working.
    ok(await cli(["breakglass", "close", rec.id], { at: at(0.5), user: "dana" }));
    assert.ok(!(await logsIn("role_s", initial.s)), "the password read under the grant still logs in");
    refused(await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(0.6) }), "prod", "SEALED", new RegExp(`break-glass ${rec.id} was closed at ${at(0.5).replace(/\./g, "\\.")}`));
    // A grant whose time ran out (not closed yet by a pass) refuses too.
    const late = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "prod/SEALED", "--reason", "INC-10", "--ttl", "30m", "--json"], { at: at(1), user: "dana" })).stdout) as BreakGlassRecord;
    const ok2 = ok(await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(1.25) }));
    outputs.pop();
    values.add(ok2.stdout.trim());
    refused(await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(1.6) }), "prod", "SEALED", new RegExp(`break-glass ${late.id} expired at ${at(1.5).replace(/\./g, "\\.")}`));
    refused(await cli(["render", "--env", "prod", "--out", out], { at: at(1.6) }), "prod", "SEALED", /expired at/);
    assert.ok(!existsSync(out));
  });

  it("a history that cannot be read refuses the sealed read (exit 1, not 70); an open variable is still read", async () => {
    const path = join(dir, "dsops-rotation-history.jsonl");
    renameSync(path, `${path}.bak`);
    mkdirSync(path);
    try {
      const r = await cli(["get", "--env", "prod", "--var", "SEALED"], { at: at(1.2) });
      refused(r, "prod", "SEALED", /break-glass grants cannot be checked/);
      ok(await cli(["get", "--env", "prod", "--var", "OPEN"], { at: at(1.2) }));
      outputs.pop();
    } finally {
      rmSync(path, { recursive: true });
      renameSync(`${path}.bak`, path);
    }
  });

  it("the library's Resolver: refused without a grant (naming the rule), read under one and the read recorded", async () => {
    const r = new Resolver(loadConfigFile(join(dir, "dsops.yaml")));
    const prev = setClock(new ManualClock(Date.parse(at(2))));
    try {
      await assert.rejects(r.resolveEnv("prod", ["SEALED"]), (e: Error) => {
        assert.match(e.message, /prod\/SEALED is sealed \(envs\.prod\.SEALED\.access: breakglass\): break-glass \S+ expired at/);
        return true;
      });
      await assert.rejects(r.resolveRef({ store: "local", key: "app/s" }), /prod\/SEALED is sealed/);
      const g = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "prod/SEALED", "--reason", "INC-13 library", "--ttl", "1h", "--json"], { at: at(2), user: "dana" })).stdout) as BreakGlassRecord;
      const got = await r.resolveEnv("prod", ["SEALED"]);
      values.add(got.variables.SEALED.value.reveal());
      const mine = (await grants(2.1)).find((x) => x.id === g.id) as BreakGlassRecord;
      assert.deepEqual(
        mine.reads?.map((x) => [x.at, x.command]),
        [[at(2), "library resolveEnv"]],
      );
    } finally {
      setClock(prev);
    }
  });
  it("reads at the same time are all recorded, and a read recorded after the close does not open the grant again", async () => {
    const g = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "prod/OTHER", "--reason", "INC-14 many readers", "--ttl", "1h", "--json"], { at: at(3), user: "dana" })).stdout) as BreakGlassRecord;
    const reads = await Promise.all([0, 1, 2, 3].map(() => cli(["get", "--env", "prod", "--var", "OTHER"], { at: at(3.1) })));
    for (const r of reads) {
      values.add(ok(r).stdout.trim());
      outputs.splice(outputs.indexOf(r), 1); // the reads' own stdout is the value
    }
    assert.equal((await grants(3.2)).find((x) => x.id === g.id)?.reads?.length, 4);
    // A reader that found the grant open records its read only after an admin closed it.
    const { RotationEngine } = await import("../../provider/rotation/engine");
    const { governanceContext } = await import("../../provider/compose/governance-context");
    const { activeBreakGlass, recordBreakGlassRead } = await import("../../provider/rotation/governance");
    const prev = setClock(new ManualClock(Date.parse(at(3.3))));
    const engine = new RotationEngine(loadConfigFile(join(dir, "dsops.yaml")));
    try {
      const ctx = governanceContext(engine);
      const { grant } = await activeBreakGlass(ctx, "prod", "OTHER");
      assert.equal(grant?.id, g.id);
      ok(await cli(["breakglass", "close", g.id], { at: at(3.3), user: "dana" }));
      await recordBreakGlassRead(ctx, grant as BreakGlassRecord, { by: "eve", command: "late reader" });
    } finally {
      await engine.close();
      setClock(prev);
    }
    const after = (await grants(3.4)).find((x) => x.id === g.id) as BreakGlassRecord;
    assert.equal(after.status, "closed");
    assert.equal(after.reads?.length, 5);
    assert.equal(after.reads?.[4]?.command, "late reader");
    refused(await cli(["get", "--env", "prod", "--var", "OTHER"], { at: at(3.4) }), "prod", "OTHER", new RegExp(`break-glass ${g.id} was closed`));
  });
});
