import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { ApprovalRecord } from "../../provider/rotation/governance";
import { dsopsAsync, dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Concurrent decisions on one approval request, through the built `dsops` (one process per
 * approver) on both history backends. Each decision process is stopped (DSOPS_FAULT
 * `approval:before:decide:stop`, SIGSTOP) once it has read the request as pending, and all are
 * continued together (SIGCONT) once every one stopped there, so they really race. Backends: the file (`dsops-rotation-history.jsonl`)
 * and a real PostgreSQL 15 table. Every decision recorded is kept (none lost to another's
 * snapshot); an approval racing a denial always ends denied; a decision racing the request's
 * expiry never brings it back. The clock is DSOPS_CLOCK; outputs and the history are searched
 * for the values.
 */
/** The scheduler state of a process (`R`, `S`, `T` stopped …) from /proc. */
function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
}

const T0 = "2026-11-20T12:00:00.000Z";
const at = (hours: number) => new Date(Date.parse(T0) + hours * 3_600_000).toISOString();

describe("approval decisions at the same moment (file and PostgreSQL history): all kept, final status never turned back", function () {
  this.timeout(120_000);
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-approve-race-"));
  const values = new Set<string>();
  const outputs: CliResult[] = [];

  async function cli(args: string[], o: { at?: string; user?: string; input?: string } = {}): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, ...(o.input !== undefined ? { input: o.input } : {}), env: { DSOPS_CLOCK: o.at ?? T0, DSOPS_USER: o.user ?? "scheduler" } });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  async function approvals(env: string, hoursAfter = 0): Promise<ApprovalRecord[]> {
    return JSON.parse(ok(await cli(["rotation", "approvals", "--env", env, "--json"], { at: at(hoursAfter) })).stdout) as ApprovalRecord[];
  }
  /** A pass of the scheduler opens the variable's request; its id. */
  async function request(env: string, variable: string, hoursAfter = 0): Promise<string> {
    const rows = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", env, "--json"], { at: at(hoursAfter) })).stdout) as Array<{ variable: string; result: string }>;
    assert.equal(rows.find((r) => r.variable === variable)?.result, "pending approval");
    const a = (await approvals(env, hoursAfter)).find((x) => x.variable === variable && x.status === "pending");
    assert.ok(a, `no pending request for ${env}/${variable}`);
    return a.id;
  }
  const decide = (verb: "approve" | "deny", id: string, user: string, hoursAfter: number) => cli(["rotation", verb, id, "--reason", `${verb} by ${user}`], { at: at(hoursAfter), user });
  const alive = new Set<ReturnType<typeof dsopsAsync>>();
  /**
   * Decisions that all read the request before any records its own: each process stops right
   * after its read (SIGSTOP at `approval:before:decide`); once all stopped, `meanwhile` runs, then all go on at once.
   */
  async function together(decisions: Array<["approve" | "deny", string, string, number]>, meanwhile: () => Promise<unknown> = async () => undefined): Promise<CliResult[]> {
    const runs = decisions.map(([verb, id, user, h]) => {
      const child = dsopsAsync(["rotation", verb, id, "--reason", `${verb} by ${user}`], { cwd: dir, env: { DSOPS_CLOCK: at(h), DSOPS_USER: user, DSOPS_FAULT: "approval:before:decide:stop" } });
      alive.add(child);
      const out = { stdout: "", stderr: "" };
      child.stdout.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
      const stopped = new Promise<void>((res, rej) => {
        child.stderr.setEncoding("utf8").on("data", (d: string) => {
          out.stderr += d;
          if (out.stderr.includes("fault injected at approval:before:decide")) res();
        });
        child.on("close", (code) => rej(new Error(`${user}'s ${verb} ended (exit ${code}) before it stopped: ${out.stderr}`)));
      });
      const done = new Promise<CliResult>((res) => child.on("close", (status) => (alive.delete(child), res({ status, ...out }))));
      return { child, stopped, done };
    });
    await Promise.all(runs.map((r) => r.stopped));
    // The line is written just before the process stops itself: continue it only once it is stopped (state T).
    for (const r of runs) while (!["T", "gone"].includes(stateOf(r.child.pid as number))) await new Promise((res) => setImmediate(res));
    await meanwhile();
    for (const r of runs) r.child.kill("SIGCONT");
    const results = await Promise.all(runs.map((r) => r.done));
    outputs.push(...results);
    return results;
  }

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    values.add(pg.adminPassword);
    const approval = { required: 2, approvers: ["alice", "bob", "carol"], expires: "24h" };
    const v = (k: string, history?: unknown) => ({
      from: `store://local/app/${k}`,
      rotation: { service: "app-db", strategy: "single-user", user: `race_${k}`, ttl: "30d", approval, ...(history ? { history } : {}) },
    });
    const pgHistory = { type: "postgres", service: "app-db" };
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
        envs: {
          fh: { ALL: v("fa"), VERSUS: v("fv"), LATE: v("fl") },
          ph: { ALL: v("pa", pgHistory), VERSUS: v("pv", pgHistory), LATE: v("pl", pgHistory) },
        },
      }),
    );
    ok(await cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
    for (const k of ["fa", "fv", "fl", "pa", "pv", "pl"]) {
      const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(`race_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(await cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: pw }));
    }
  });

  after(async () => {
    for (const c of alive) c.kill("SIGKILL");
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [env, label] of [
    ["fh", "file history"],
    ["ph", "PostgreSQL history"],
  ] as const) {
    it(`${label}: three approvers approve a required: 2 request at once: two decisions kept, status granted, the third refused (not pending)`, async () => {
      const id = await request(env, "ALL");
      const users = ["alice", "bob", "carol"];
      const rs = await together(users.map((u) => ["approve", id, u, 1]));
      const won = users.filter((_, i) => rs[i].status === 0);
      const lost = rs.filter((r) => r.status !== 0);
      assert.equal(won.length, 2, rs.map((r) => `${r.status}: ${r.stdout}${r.stderr}`).join("\n"));
      assert.equal(lost.length, 1);
      assert.equal(lost[0].status, 1, lost[0].stderr);
      assert.match(lost[0].stderr, new RegExp(`approval ${id} \\(${env}/ALL\\) is granted since .*, not pending`));
      const a = (await approvals(env, 1)).find((x) => x.id === id) as ApprovalRecord;
      assert.equal(a.status, "granted");
      assert.deepEqual(a.decisions.map((d) => d.by).sort(), won.sort(), "every recorded decision is kept");
      assert.ok(a.decisions.every((d) => d.decision === "granted" && d.reason === `approve by ${d.by}`));
      // The next pass rotates under it and marks it used.
      const rows = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", env, "--json"], { at: at(2) })).stdout) as Array<{ variable: string; result: string }>;
      assert.equal(rows.find((r) => r.variable === "ALL")?.result, "rotated");
      const used = (await approvals(env, 2)).find((x) => x.id === id) as ApprovalRecord;
      assert.equal(used.status, "used");
      assert.equal(used.decisions.length, 2);
    });

    it(`${label}: an approval and a denial at once on a required: 2 request: always denied (the approval recorded before it, or refused)`, async () => {
      const id = await request(env, "VERSUS");
      const [yes, no] = await together([
        ["approve", id, "alice", 1],
        ["deny", id, "bob", 1],
      ]);
      assert.equal(no.status, 0, no.stderr);
      assert.ok(yes.status === 0 || (yes.status === 1 && /is denied since .*, not pending/.test(yes.stderr)), `${yes.status}: ${yes.stderr}`);
      const a = (await approvals(env, 1)).find((x) => x.id === id) as ApprovalRecord;
      assert.equal(a.status, "denied");
      assert.deepEqual(
        a.decisions.map((d) => `${d.by}:${d.decision}`).sort(),
        yes.status === 0 ? ["alice:granted", "bob:denied"] : ["bob:denied"],
      );
      // Nobody turns it back: a later approval is refused, the pass does not rotate.
      const later = await decide("approve", id, "carol", 2);
      assert.equal(later.status, 1);
      assert.match(later.stderr, /is denied since/);
      const rows = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", env, "--json"], { at: at(2) })).stdout) as Array<{ variable: string; result: string }>;
      assert.equal(rows.find((r) => r.variable === "VERSUS")?.result, "denied");
      assert.equal(((await approvals(env, 2)).find((x) => x.id === id) as ApprovalRecord).status, "denied");
    });

    it(`${label}: decisions read before the request expired, recorded after a pass expired it: it stays expired, no decision added`, async () => {
      const id = await request(env, "LATE");
      ok(await decide("approve", id, "alice", 1));
      // bob and carol read it pending (their clock: 23 h, before \`expires\`); meanwhile a pass at 30 h expires it (and asks again).
      let pass: CliResult | undefined;
      const [bob, carol] = await together(
        [
          ["approve", id, "bob", 23],
          ["deny", id, "carol", 23],
        ],
        async () => (pass = await cli(["rotation", "run", "--due", "--env", env, "--json"], { at: at(30) })),
      );
      assert.equal(pass?.status, 0, pass?.stderr);
      for (const r of [bob, carol]) {
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /is expired since .*, not pending/);
      }
      const a = (await approvals(env, 30)).find((x) => x.id === id) as ApprovalRecord;
      assert.equal(a.status, "expired");
      assert.deepEqual(a.decisions.map((d) => d.by), ["alice"]);
    });
  }

  it("no value in any output or the history", async () => {
    const rows = (await (admin as Client).query<{ record: unknown }>("SELECT record FROM dsops_rotation_history")).rows.map((r) => JSON.stringify(r.record)).join("\n");
    assert.match(rows, /"kind":\s*"approval"/);
    const text = outputs.map((r) => r.stdout + r.stderr).join("\n") + readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8") + rows;
    for (const v of values) assert.ok(!text.includes(v), "a value is in an output or the history");
  });
});
