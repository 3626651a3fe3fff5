// Notifications go to local receivers speaking the real wire protocols (HTTP for Slack, PagerDuty and webhooks; SMTP for email): no Slack/PagerDuty server exists here.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import type { ApprovalRecord, BreakGlassRecord } from "../../provider/rotation/governance";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startSmtp, type SmtpReceiver } from "../support/smtp";

/**
 * Approvals and break-glass through the built `dsops` against a real PostgreSQL 15 (its roles
 * are the rotated credentials) and real receivers on every notification channel: a due
 * rotation under `rotation.approval` waits (pending approval) and asks every channel; the
 * requester may not approve; an approval by another user (OS user, git email, signed token)
 * lets the next pass rotate (the role's password really changed, the old one no longer logs
 * in); a denial stops it; a request nobody decides expires. A break-glass is recorded, told to
 * every channel at once, and its credential is rotated when it closes (expired, or by hand).
 * The clock is moved with DSOPS_CLOCK; every output and notification is searched for the values.
 */
interface Row {
  env: string;
  variable: string;
  result: string;
  reason?: string;
  decision: string;
  error?: string;
}

const T0 = "2026-11-20T12:00:00.000Z";
const at = (hours: number) => new Date(Date.parse(T0) + hours * 3_600_000).toISOString();

describe("approvals and break-glass (real PostgreSQL 15, real notification receivers)", function () {
  this.timeout(120_000);
  let pg: RunningPostgres | undefined;
  let admin: Client;
  let dir: string;
  let slack: HttpReceiver | undefined;
  let pd: HttpReceiver | undefined;
  let hook: HttpReceiver | undefined;
  let smtp: SmtpReceiver | undefined;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const APPROVAL_KEY = "approval-key-" + Math.random().toString(36).slice(2);
  values.add(APPROVAL_KEY);

  async function cli(args: string[], o: { at?: string; user?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    const r = await dsopsRun(args, {
      cwd: dir,
      ...(o.input !== undefined ? { input: o.input } : {}),
      env: { DSOPS_CLOCK: o.at ?? T0, DSOPS_USER: o.user ?? "scheduler", APPROVAL_KEY, GIT_CONFIG_GLOBAL: join(dir, "gitconfig-none"), GIT_CONFIG_NOSYSTEM: "1", ...o.env },
    });
    outputs.push(r);
    return r;
  }
  function ok(r: CliResult): CliResult {
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r;
  }
  async function current(env: string, v: string): Promise<string> {
    const value = ok(await cli(["get", "--env", env, "--var", v])).stdout.replace(/\n$/, "");
    outputs.pop(); // the one output that must hold the value
    values.add(value);
    return value;
  }
  async function logsIn(role: string, password: string): Promise<boolean> {
    const c = new Client({ host: pg?.host, port: pg?.port, user: role, password, database: "postgres" });
    try {
      await c.connect();
      await c.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  async function pass(env: string, hoursAfter = 0, user = "scheduler"): Promise<Record<string, Row>> {
    const rows = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", env, "--json"], { at: at(hoursAfter), user })).stdout) as Row[];
    return Object.fromEntries(rows.map((r) => [r.variable, r]));
  }
  async function approvals(env: string, hoursAfter = 0): Promise<ApprovalRecord[]> {
    return JSON.parse(ok(await cli(["rotation", "approvals", "--env", env, "--json"], { at: at(hoursAfter) })).stdout) as ApprovalRecord[];
  }
  const pendingOf = (list: ApprovalRecord[], v: string) => list.find((a) => a.variable === v && a.status === "pending");
  /** The event types the webhook received (its body is the event as JSON). */
  const hookTypes = () => (hook?.requests ?? []).map((r) => (JSON.parse(r.body) as { type: string; approvalId?: string; breakGlassId?: string }));
  function everything(): string[] {
    const out: string[] = [];
    for (const r of [slack, pd, hook]) for (const q of r?.requests ?? []) out.push(q.body, JSON.stringify(q.headers));
    for (const m of smtp?.mails ?? []) out.push(m.raw);
    return out;
  }

  const approval = (extra: Record<string, unknown> = {}) => ({ required: 1, approvers: ["alice", "bob"], expires: "24h", ...extra });
  const rot = (user: string, extra: Record<string, unknown> = {}) => ({ service: "app-db", strategy: "single-user", user, ttl: "30d", ...extra });
  const roles = ["a", "b", "c", "d", "e", "f", "g", "h"];

  before(async () => {
    const started = await Promise.allSettled([startPostgres(), startHttpReceiver(), startHttpReceiver(() => 202), startHttpReceiver(), startSmtp()] as const);
    if (started[0].status === "fulfilled") pg = started[0].value;
    if (started[1].status === "fulfilled") slack = started[1].value;
    if (started[2].status === "fulfilled") pd = started[2].value;
    if (started[3].status === "fulfilled") hook = started[3].value;
    if (started[4].status === "fulfilled") smtp = started[4].value;
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (!pg || !slack || !pd || !hook || !smtp) throw new Error("a server did not start");
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-approve-"));
    writeFileSync(join(dir, "gitconfig-none"), "");
    writeFileSync(join(dir, "gitconfig-sched"), "[user]\n\temail = sched@example.test\n");
    writeFileSync(join(dir, "gitconfig-alice"), "[user]\n\temail = Alice@Example.test\n");
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
        notifications: {
          wait_ms: 5000,
          slack: { webhook_url: `${slack.url}/services/T000/B000/XXXX` },
          email: { smtp: { host: "127.0.0.1", port: smtp.port }, from: "dsops@example.test", to: ["sec@example.test"] },
          pagerduty: { routing_key: "R0UTINGKEY", events_url: `${pd.url}/v2/enqueue` },
          webhooks: [{ name: "audit", url: `${hook.url}/hook` }],
        },
        envs: {
          appr: {
            APPROVED: { from: "store://local/app/a", rotation: rot("role_a", { approval: approval() }) },
            DENIED: { from: "store://local/app/b", rotation: rot("role_b", { approval: approval() }) },
          },
          exp: { EXPIRING: { from: "store://local/app/c", rotation: rot("role_c", { approval: approval({ expires: "2h" }) }) } },
          git: { GIT_APPROVED: { from: "store://local/app/d", rotation: rot("role_d", { approval: approval({ identity: "git", approvers: ["alice@example.test"] }) }) } },
          tok: { TOKEN_APPROVED: { from: "store://local/app/e", rotation: rot("role_e", { approval: approval({ identity: "token", approvers: ["carol"], token_key: "env:APPROVAL_KEY" }) }) } },
          bg: {
            // Approval required and a window that never opens in these tests: break-glass goes around both.
            BG_TTL: { from: "store://local/app/f", rotation: rot("role_f", { approval: approval(), windows: [{ schedule: "0 2 1 1 *", duration: "1h" }] }) },
            BG_ROTATE: { from: "store://local/app/g", rotation: rot("role_g", { approval: approval(), windows: [{ schedule: "0 2 1 1 *", duration: "1h" }] }) },
          },
          bgw: { BG_WORKER: { from: "store://local/app/h", rotation: rot("role_h", { approval: approval(), windows: [{ schedule: "0 2 1 1 *", duration: "1h" }] }) } },
        },
      }),
    );
    ok(await cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], { input: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }) }));
    values.add(pg.adminPassword);
    for (const k of roles) {
      const pw = `Init-${k}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(`role_${k}`)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      ok(await cli(["secrets", "set", "--store", "local", "--key", `app/${k}`], { input: pw }));
    }
  });

  after(async () => {
    try {
      for (const r of outputs) for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v), "an output holds a secret value");
      for (const text of everything()) for (const v of values) assert.ok(!text.includes(v), "a notification holds a secret value");
      const history = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
      assert.match(history, /"kind":"breakglass"/);
      for (const v of values) assert.ok(!history.includes(v), "the history holds a secret value");
    } finally {
      await admin?.end().catch(() => undefined);
      await Promise.allSettled([pg?.stop(), slack?.close(), pd?.close(), hook?.close(), smtp?.close()]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a due rotation waits in pending approval (recorded, every channel asked), the role untouched; rotation history shows no approval record", async () => {
    const before = { a: await current("appr", "APPROVED"), b: await current("appr", "DENIED") };
    const rows = await pass("appr");
    assert.equal(rows.APPROVED.result, "pending approval", JSON.stringify(rows));
    assert.match(rows.APPROVED.reason ?? "", /^pending approval apr-/);
    assert.equal(rows.DENIED.result, "pending approval");
    assert.equal(await current("appr", "APPROVED"), before.a);
    assert.ok(await logsIn("role_a", before.a), "role_a's password changed without approval");
    const list = await approvals("appr");
    const a = pendingOf(list, "APPROVED");
    assert.ok(a, JSON.stringify(list));
    assert.equal(a.requestedBy, "scheduler");
    assert.equal(a.expiresAt, at(24));
    assert.deepEqual(a.approvers, ["alice", "bob"]);
    // A second pass asks nothing again: the same request stays pending.
    const again = await pass("appr", 1);
    assert.equal(again.APPROVED.reason?.startsWith(`pending approval ${a.id}`), true, again.APPROVED.reason);
    assert.equal((await approvals("appr", 1)).length, 2);
    const requested = hookTypes().filter((e) => e.type === "approval-requested");
    assert.equal(requested.length, 2, JSON.stringify(hookTypes()));
    assert.ok(requested.some((e) => e.approvalId === a.id));
    assert.ok(slack?.requests.some((r) => r.body.includes("Rotation approval requested")), "slack was not asked");
    assert.ok(smtp?.mails.some((m) => m.raw.includes("Rotation approval requested")), "no mail asked for approval");
    const history = JSON.parse(ok(await cli(["rotation", "history", "--env", "appr", "--json"])).stdout) as RotationRecord[];
    assert.deepEqual(history, []);
  });

  it("the requester may not approve; someone not in approvers may not; refusals exit 1 naming the policy", async () => {
    const a = pendingOf(await approvals("appr"), "APPROVED") as ApprovalRecord;
    const self = await cli(["rotation", "approve", a.id, "--reason", "looks fine"], { at: at(2), user: "scheduler" });
    assert.equal(self.status, 1, self.stderr);
    assert.match(self.stderr, /scheduler requested this rotation and may not approve it/);
    assert.match(self.stderr, /envs\.appr\.APPROVED\.rotation\.approval/);
    const stranger = await cli(["rotation", "approve", a.id, "--reason", "sure"], { at: at(2), user: "mallory" });
    assert.equal(stranger.status, 1);
    assert.match(stranger.stderr, /mallory \(os identity\) is not in envs\.appr\.APPROVED\.rotation\.approval\.approvers \(alice, bob\)/);
    const noReason = await cli(["rotation", "approve", a.id], { at: at(2), user: "alice" });
    assert.equal(noReason.status, 2, noReason.stderr);
    const unknown = await cli(["rotation", "approve", "apr-nope", "--reason", "x"], { at: at(2), user: "alice" });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /approval apr-nope: no such approval request/);
    // By hand, the rotation is refused too (only break-glass goes around approval).
    const manual = await cli(["secrets", "rotate", "--env", "appr", "--var", "APPROVED"], { at: at(2) });
    assert.equal(manual.status, 1);
    assert.match(manual.stderr, /envs\.appr\.APPROVED\.rotation\.approval: this rotation needs approval/);
    assert.equal((await approvals("appr", 2)).find((x) => x.id === a.id)?.status, "pending");
  });

  it("approved by another user: the next pass rotates (the PG password changed, the old one no longer logs in) and the request is used", async () => {
    const a = pendingOf(await approvals("appr"), "APPROVED") as ApprovalRecord;
    const old = await current("appr", "APPROVED");
    const r = ok(await cli(["rotation", "approve", a.id, "--reason", "change CHG-42"], { at: at(3), user: "alice" }));
    assert.match(r.stdout, new RegExp(`${a.id} \\(appr/APPROVED\\): granted by alice; status granted`));
    const again = await cli(["rotation", "approve", a.id, "--reason", "me too"], { at: at(3), user: "bob" });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /is granted .*not pending/);
    const rows = await pass("appr", 4);
    assert.equal(rows.APPROVED.result, "rotated", JSON.stringify(rows.APPROVED));
    const now = await current("appr", "APPROVED");
    assert.notEqual(now, old);
    assert.ok(await logsIn("role_a", now), "the new password does not log in");
    assert.ok(!(await logsIn("role_a", old)), "the old password still logs in");
    const used = (await approvals("appr", 4)).find((x) => x.id === a.id) as ApprovalRecord;
    assert.equal(used.status, "used");
    assert.deepEqual(
      used.decisions.map((d) => [d.by, d.identity, d.decision, d.reason]),
      [["alice", "os", "granted", "change CHG-42"]],
    );
    const history = JSON.parse(ok(await cli(["rotation", "history", "--env", "appr", "--var", "APPROVED", "--json"])).stdout) as RotationRecord[];
    assert.equal(used.rotationId, history[0].id);
    assert.ok(hookTypes().some((e) => e.type === "approval-granted" && e.approvalId === a.id));
  });

  it("denied: no rotation (not by the pass, not by hand); the denial is told and not asked again before the request's expiry", async () => {
    const a = pendingOf(await approvals("appr"), "DENIED") as ApprovalRecord;
    const old = await current("appr", "DENIED");
    ok(await cli(["rotation", "deny", a.id, "--reason", "freeze week"], { at: at(5), user: "bob" }));
    const rows = await pass("appr", 6);
    assert.equal(rows.DENIED.result, "denied", JSON.stringify(rows.DENIED));
    assert.match(rows.DENIED.reason ?? "", /denied apr-.* by bob: freeze week/);
    assert.equal(await current("appr", "DENIED"), old);
    assert.ok(await logsIn("role_b", old));
    const manual = await cli(["secrets", "rotate", "--env", "appr", "--var", "DENIED"], { at: at(6) });
    assert.equal(manual.status, 1);
    assert.ok(await logsIn("role_b", old));
    assert.equal((await approvals("appr", 6)).filter((x) => x.variable === "DENIED").length, 1);
    assert.ok(hookTypes().some((e) => e.type === "approval-denied" && e.approvalId === a.id));
  });

  it("a request nobody decides expires after `expires` (recorded, told); it can no longer be approved; the next pass asks again", async () => {
    const first = await pass("exp");
    assert.equal(first.EXPIRING.result, "pending approval");
    const a = pendingOf(await approvals("exp"), "EXPIRING") as ApprovalRecord;
    assert.equal(a.expiresAt, at(2));
    const late = await cli(["rotation", "approve", a.id, "--reason", "late"], { at: at(3), user: "alice" });
    assert.equal(late.status, 1, late.stderr);
    assert.match(late.stderr, new RegExp(`approval ${a.id} \\(exp/EXPIRING\\) is expired since ${at(3).replace(/\./g, "\\.")}`));
    assert.ok(hookTypes().some((e) => e.type === "approval-expired" && e.approvalId === a.id), JSON.stringify(hookTypes()));
    assert.ok(smtp?.mails.some((m) => m.raw.includes("Rotation approval expired")));
    const second = await pass("exp", 4);
    assert.equal(second.EXPIRING.result, "pending approval");
    const list = await approvals("exp", 4);
    assert.deepEqual(
      list.map((x) => x.status),
      ["pending", "expired"],
    );
  });

  it("identity git: the approver is git config user.email (another than the requester's)", async () => {
    const sched = { GIT_CONFIG_GLOBAL: join(dir, "gitconfig-sched") };
    const alice = { GIT_CONFIG_GLOBAL: join(dir, "gitconfig-alice") };
    const old = await current("git", "GIT_APPROVED");
    assert.equal(JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", "git", "--json"], { env: sched })).stdout)[0].result, "pending approval");
    const a = pendingOf(await approvals("git"), "GIT_APPROVED") as ApprovalRecord;
    assert.equal(a.requestedBy, "sched@example.test");
    const self = await cli(["rotation", "approve", a.id, "--reason", "x"], { env: sched, user: "alice" });
    assert.equal(self.status, 1);
    assert.match(self.stderr, /sched@example\.test requested this rotation/);
    const noGit = await cli(["rotation", "approve", a.id, "--reason", "x"], { user: "alice" });
    assert.equal(noGit.status, 1);
    assert.match(noGit.stderr, /envs\.git\.GIT_APPROVED\.rotation\.approval\.identity is git, but git config user\.email is not set/);
    ok(await cli(["rotation", "approve", a.id, "--reason", "reviewed"], { env: alice, at: at(1) }));
    const rows = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", "git", "--json"], { env: sched, at: at(2) })).stdout) as Row[];
    assert.equal(rows[0].result, "rotated", JSON.stringify(rows));
    const now = await current("git", "GIT_APPROVED");
    assert.ok(await logsIn("role_d", now));
    assert.ok(!(await logsIn("role_d", old)));
    const used = (await approvals("git", 2)).find((x) => x.id === a.id) as ApprovalRecord;
    assert.equal(used.decisions[0].by, "Alice@Example.test");
    assert.equal(used.decisions[0].identity, "git");
  });

  it("identity token: a signed token names the approver; a forged or expired one is refused", async () => {
    const old = await current("tok", "TOKEN_APPROVED");
    assert.equal((await pass("tok")).TOKEN_APPROVED.result, "pending approval");
    const a = pendingOf(await approvals("tok"), "TOKEN_APPROVED") as ApprovalRecord;
    const token = ok(await cli(["rotation", "approval-token", "--env", "tok", "--var", "TOKEN_APPROVED", "--as", "carol", "--ttl", "1h"])).stdout.trim();
    assert.match(token, /^v1\.[A-Za-z0-9_-]+\.\d+\.[0-9a-f]{64}$/);
    const forged = token.slice(0, -1) + (token.endsWith("0") ? "1" : "0");
    const bad = await cli(["rotation", "approve", a.id, "--reason", "x", "--token", forged], { user: "alice" });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /approval token: the signature does not match the key of envs\.tok\.TOKEN_APPROVED\.rotation\.approval\.token_key/);
    const expired = await cli(["rotation", "approve", a.id, "--reason", "x", "--token", token], { at: at(2) });
    assert.equal(expired.status, 1);
    assert.match(expired.stderr, /approval token: expired at/);
    const none = await cli(["rotation", "approve", a.id, "--reason", "x"]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /identity is token: give the approval token/);
    ok(await cli(["rotation", "approve", a.id, "--reason", "on call"], { env: { DSOPS_APPROVAL_TOKEN: token }, at: at(0.5) }));
    assert.equal((await pass("tok", 0.75)).TOKEN_APPROVED.result, "rotated");
    assert.ok(!(await logsIn("role_e", old)));
    assert.ok(await logsIn("role_e", await current("tok", "TOKEN_APPROVED")));
  });

  it("break-glass: recorded and told to every channel at once; the first pass after its TTL rotates the credential (forced) and closes it", async () => {
    slack?.reset();
    pd?.reset();
    hook?.reset();
    smtp!.mails.length = 0;
    const old = await current("bg", "BG_TTL");
    const opened = ok(await cli(["breakglass", "open", "--secret", "store://local/app/f", "--reason", "INC-7 db forensics", "--ttl", "1h", "--json"], { user: "dana" }));
    const rec = JSON.parse(opened.stdout) as BreakGlassRecord;
    assert.equal(rec.status, "open");
    assert.equal(rec.openedBy, "dana");
    assert.equal(rec.expiresAt, at(1));
    assert.equal(rec.variable, "BG_TTL");
    assert.equal(hookTypes().filter((e) => e.type === "breakglass-opened" && e.breakGlassId === rec.id).length, 1);
    assert.ok(slack?.requests.some((r) => r.body.includes("Break-glass opened")), "slack not told");
    assert.ok(pd?.requests.some((r) => r.body.includes("Break-glass opened")), "pagerduty not told");
    assert.ok(smtp?.mails.some((m) => m.raw.includes("Break-glass opened") && m.raw.includes("INC-7 db forensics")), "no mail");
    const list = JSON.parse(ok(await cli(["breakglass", "list", "--open", "--json"])).stdout) as BreakGlassRecord[];
    assert.deepEqual(
      list.map((r) => r.id),
      [rec.id],
    );
    // Still open: the pass neither rotates (the policy needs approval and its window is shut) nor closes it.
    const during = await pass("bg", 0.5);
    assert.notEqual(during.BG_TTL.result, "rotated");
    assert.equal(await current("bg", "BG_TTL"), old);
    // After its TTL: closed by the pass, the credential rotated.
    const after = JSON.parse(ok(await cli(["rotation", "run", "--due", "--env", "bg", "--json"], { at: at(1.5) })).stdout) as Row[];
    const closeRow = after.find((r) => r.decision.startsWith(`break-glass ${rec.id} expired`));
    assert.ok(closeRow, JSON.stringify(after));
    assert.equal(closeRow.result, "rotated");
    const now = await current("bg", "BG_TTL");
    assert.notEqual(now, old);
    assert.ok(await logsIn("role_f", now));
    assert.ok(!(await logsIn("role_f", old)), "the password used during the break-glass still logs in");
    const closed = (JSON.parse(ok(await cli(["breakglass", "list", "--json"], { at: at(1.5) })).stdout) as BreakGlassRecord[]).find((r) => r.id === rec.id) as BreakGlassRecord;
    assert.equal(closed.status, "closed");
    assert.equal(closed.closedHow, "expired");
    const history = JSON.parse(ok(await cli(["rotation", "history", "--env", "bg", "--var", "BG_TTL", "--json"])).stdout) as RotationRecord[];
    assert.equal(closed.forcedRotationId, history[0].id);
    assert.equal(history[0].status, "succeeded");
    assert.ok(hookTypes().some((e) => e.type === "breakglass-closed" && e.breakGlassId === rec.id));
    const again = await cli(["breakglass", "close", rec.id]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already closed/);
  });

  it("break-glass --rotate: an emergency rotation now (no approval, window shut); close rotates again", async () => {
    const old = await current("bg", "BG_ROTATE");
    const rec = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "bg/BG_ROTATE", "--reason", "leaked in a log", "--ttl", "30m", "--rotate", "--json"], { at: at(3) })).stdout) as BreakGlassRecord;
    assert.ok(rec.emergencyRotationId);
    const mid = await current("bg", "BG_ROTATE");
    assert.notEqual(mid, old);
    assert.ok(!(await logsIn("role_g", old)));
    const history = JSON.parse(ok(await cli(["rotation", "history", "--env", "bg", "--var", "BG_ROTATE", "--json"])).stdout) as RotationRecord[];
    assert.equal(history[0].id, rec.emergencyRotationId);
    assert.equal(history[0].strategy, "emergency");
    const closed = ok(await cli(["breakglass", "close", rec.id, "--json"], { at: at(3.2) }));
    const c = JSON.parse(closed.stdout) as BreakGlassRecord;
    assert.equal(c.status, "closed");
    assert.equal(c.closedHow, "manual");
    const end = await current("bg", "BG_ROTATE");
    assert.notEqual(end, mid);
    assert.ok(!(await logsIn("role_g", mid)));
    assert.ok(await logsIn("role_g", end));
    const bad = await cli(["breakglass", "open", "--secret", "bg/NOPE", "--reason", "x", "--ttl", "1h"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--secret bg\/NOPE: no rotated variable NOPE in env bg/);
    const badTtl = await cli(["breakglass", "open", "--secret", "bg/BG_ROTATE", "--reason", "x", "--ttl", "soon"]);
    assert.equal(badTtl.status, 1);
    assert.match(badTtl.stderr, /--ttl/);
  });

  it("break-glass: the worker's scheduler pass after the TTL closes it and rotates the credential", async () => {
    const old = await current("bgw", "BG_WORKER");
    const rec = JSON.parse(ok(await cli(["breakglass", "open", "--secret", "bgw/BG_WORKER", "--reason", "INC-9", "--ttl", "1h", "--json"], { at: at(10) })).stdout) as BreakGlassRecord;
    const queue = { DSOPS_WORKER_DATABASE_URL: (pg as RunningPostgres).connectionString(pg?.adminUser ?? "", pg?.adminPassword ?? "") };
    const pass = ok(await cli(["worker", "--scheduler", "--concurrency", "0", "--once", "--env", "bgw"], { at: at(11.5), env: queue }));
    assert.match(pass.stdout, new RegExp(`closed break-glass ${rec.id} \\(bgw/BG_WORKER\\): rotated rot-\\S+ succeeded`));
    const now = await current("bgw", "BG_WORKER");
    assert.notEqual(now, old);
    assert.ok(await logsIn("role_h", now));
    assert.ok(!(await logsIn("role_h", old)));
    const closed = (JSON.parse(ok(await cli(["breakglass", "list", "--env", "bgw", "--json"])).stdout) as BreakGlassRecord[])[0];
    assert.equal(closed.status, "closed");
    assert.equal(closed.closedHow, "expired");
  });
});
