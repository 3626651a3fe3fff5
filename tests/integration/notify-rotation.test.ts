// Slack, PagerDuty and webhook receivers are local HTTP servers that record what arrives, and the mail server is a local SMTP server (smtp-server package); the rotations are real, on a real PostgreSQL 15.
import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { ManualClock, systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { DsopsMetrics } from "../../provider/metrics/index";
import type { RotationEvent } from "../../provider/notify/types";
import { composeRotation, type ComposedRotationEngine } from "../../provider/compose/rotation";
import { RotationError } from "../../provider/rotation/engine";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsAsync } from "../support/cli";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startSmtp, type ReceivedMail, type SmtpReceiver } from "../support/smtp";
import { startAll } from "../support/server";

/** Run the built CLI without blocking this process (the receivers live in it). */
function dsops(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = dsopsAsync(args, opts);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
}

/** A mail's headers and its decoded text and HTML parts. */
function parseMail(raw: string): { subject: string; contentType: string; parts: Array<{ type: string; body: string }> } {
  const [head] = raw.split(/\r?\n\r?\n/);
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(unfolded)?.[1] ?? "";
  const decodeWord = (s: string) => s.replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_, enc: string, t: string) => (enc.toUpperCase() === "B" ? Buffer.from(t, "base64").toString("utf8") : t.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))));
  const contentType = header("Content-Type");
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  const parts: Array<{ type: string; body: string }> = [];
  if (boundary) {
    for (const chunk of raw.split(`--${boundary}`).slice(1, -1)) {
      const i = chunk.search(/\r?\n\r?\n/);
      const ph = chunk.slice(0, i);
      let body = chunk.slice(i).replace(/^\r?\n\r?\n/, "");
      const enc = /content-transfer-encoding:\s*(\S+)/i.exec(ph)?.[1]?.toLowerCase();
      if (enc === "base64") body = Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
      else if (enc === "quoted-printable") body = Buffer.from(body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8");
      parts.push({ type: /content-type:\s*([^;\s]+)/i.exec(ph)?.[1] ?? "", body });
    }
  }
  return { subject: decodeWord(header("Subject")), contentType, parts };
}

describe("notifications: real receivers, events from real rotations on PostgreSQL", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let config: Config;
  let slack: HttpReceiver;
  let pd: HttpReceiver;
  let hook: HttpReceiver;
  let smtp: SmtpReceiver;
  const FILE_KEY = "notify-file-key-" + Math.random().toString(36).slice(2);
  const env = { DSOPS_FILE_KEY: FILE_KEY, DSOPS_USER: "notifier" };
  const HMAC_KEY = "hmac-" + Math.random().toString(36).slice(2);
  const PD_KEY = "R0UT1NGKEY" + Math.random().toString(36).slice(2, 8);
  const SMTP_PW = "smtp-" + Math.random().toString(36).slice(2);
  /** Every rotated or seeded password: none may appear in any payload. */
  const values = new Set<string>();
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  const yaml = (extra = "") => `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
notifications:
  wait_ms: 5000
  slack: { webhook_url: "${slack.url}/services/T000/B000/XXXXSECRETPATH", channel: "#ops", mentions: [here, U123ABC] }
  email:
    smtp: { host: 127.0.0.1, port: ${smtp.port}, username: dsops, password: "store://local/smtp/password" }
    from: dsops@example.test
    to: [ops@example.test, sec@example.test]
  pagerduty: { routing_key: "store://local/pd/key", events_url: "${pd.url}/v2/enqueue", severity: critical }
  webhooks:
    - name: audit
      url: ${hook.url}/hook
      headers: { X-Team: platform }
      secret: "store://local/hook/hmac"
      template: '{"kind":{{ .type | quote }},"svc":{{ .service | quote }},"env":{{ .env | quote }},"rotation":{{ .rotationId | quote }}}'
      retries: 3
      backoff_ms: 20
${extra}envs:
  prod:
    DB_PASSWORD:
      from: "store://local/app/db-password"
      rotation: { service: app-db, user: app, schedule: "0 3 * * *" }
    BAD:
      from: "store://local/app/bad"
      rotation: { service: app-db, user: bad, verification: { query: "SELECT * FROM guarded" } }
    QUIET:
      from: "store://local/app/quiet"
      rotation: { service: app-db, user: quiet, notifications: { channels: ["webhook:audit"], events: [completed] } }
`;

  async function stored(key: string, version = "current"): Promise<string> {
    const v = (await store().get({ key, version })).value.reveal();
    values.add(v);
    return v;
  }

  /** Every body and mail so far, as text (mails decoded). */
  function everything(): string[] {
    const out: string[] = [];
    for (const r of [slack, pd, hook]) for (const q of r.requests) out.push(q.body, JSON.stringify(q.headers));
    for (const m of smtp.mails) out.push(m.raw, ...parseMail(m.raw).parts.map((p) => p.body));
    return out;
  }

  /** What every receiver got in earlier tests. */
  const archive: string[] = [];
  function reset(): void {
    archive.push(...everything());
    slack.reset();
    pd.reset();
    hook.reset();
    smtp.mails.length = 0;
    hook.setBehaviour(() => 200);
  }

  before(async () => {
    pg = await startPostgres();
    [slack, pd, hook, smtp] = await startAll([startHttpReceiver(), startHttpReceiver(() => 202), startHttpReceiver(), startSmtp({ user: "dsops", password: SMTP_PW })] as const, (s) => s.close());
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query("CREATE TABLE guarded (x int)");
    dir = mkdtempSync(join(tmpdir(), "dsops-notify-"));
    writeFileSync(join(dir, "dsops.yaml"), yaml());
    config = parseConfig(yaml(), { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    await store().put("smtp/password", new Secret(SMTP_PW));
    await store().put("pd/key", new Secret(PD_KEY));
    await store().put("hook/hmac", new Secret(HMAC_KEY));
    values.add(pg.adminPassword);
    for (const [user, key] of [["app", "app/db-password"], ["bad", "app/bad"], ["quiet", "app/quiet"]]) {
      const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      await store().put(key, new Secret(pw));
    }
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    await Promise.all([slack?.close(), pd?.close(), hook?.close(), smtp?.close()]);
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(reset);

  it("a successful rotation: Slack Block Kit, email (multipart, subject), PagerDuty resolve, signed webhook retried after 503s", async () => {
    // The webhook refuses the `started` delivery twice: the third attempt lands.
    hook.setBehaviour((_n, req) => (req.body.includes('"started"') && hook.requests.filter((r) => r.body.includes('"started"')).length <= 2 ? 503 : 200));
    const events: RotationEvent[] = [];
    const metrics = new DsopsMetrics();
    const e = composeRotation(config, { env: { ...process.env, ...env }, metrics, onRotationEvent: (x) => events.push(x) });
    let rec;
    try {
      rec = (await e.rotate("prod", "DB_PASSWORD")).record;
    } finally {
      await e.close();
    }
    assert.equal(rec.status, "succeeded");
    await stored("app/db-password");
    await stored("app/db-password", "previous");
    assert.deepEqual(events.map((x) => x.type), ["started", "completed"]);
    // Delivered before rotate() returned (the run waits, capped, for deliveries in flight).
    assert.equal(slack.requests.length, 2);
    const [started, completed] = slack.requests.map((r) => JSON.parse(r.body) as { text: string; channel: string; blocks: Array<{ type: string; fields?: Array<{ text: string }>; text?: { text: string } }> });
    assert.equal(slack.requests[0].path, "/services/T000/B000/XXXXSECRETPATH");
    assert.equal(slack.requests[0].headers["content-type"], "application/json");
    assert.equal(started.text, "[dsops] Rotation started: app-db (prod)");
    assert.equal(completed.text, "[dsops] Rotation completed: app-db (prod)");
    assert.equal(completed.channel, "#ops");
    assert.equal(completed.blocks[0].type, "header");
    const fields = completed.blocks.flatMap((b) => b.fields ?? []).map((f) => f.text);
    assert.ok(fields.includes("*Service:*\napp-db"), fields.join("|"));
    assert.ok(fields.includes("*Environment:*\nprod"));
    assert.ok(fields.includes("*Status:*\nsucceeded"));
    assert.ok(fields.includes(`*Versions:*\n${rec.oldVersionId} → ${rec.newVersionId}`), fields.join("|"));
    assert.ok(fields.includes("*Principal:*\napp"));
    assert.ok(!completed.text.includes("<!here>"), "no mention on success");

    // PagerDuty: nothing for `started`, a resolve for `completed`.
    assert.equal(pd.requests.length, 1);
    assert.equal(pd.requests[0].path, "/v2/enqueue");
    assert.deepEqual(JSON.parse(pd.requests[0].body), { routing_key: PD_KEY, event_action: "resolve", dedup_key: "dsops-app-db-prod" });

    // Email: one message per event, both recipients, multipart text + HTML, the subject format.
    assert.equal(smtp.mails.length, 2);
    const m = smtp.mails.map((x: ReceivedMail) => ({ ...x, ...parseMail(x.raw) }));
    assert.deepEqual(m.map((x) => x.subject).sort(), ["[dsops] Rotation completed: app-db (prod)", "[dsops] Rotation started: app-db (prod)"]);
    assert.deepEqual(m[0].to, ["ops@example.test", "sec@example.test"]);
    assert.equal(m[0].from, "dsops@example.test");
    assert.equal(m[0].user, "dsops", "logged in with the SMTP password from the store");
    const done = m.find((x) => x.subject.includes("completed")) as (typeof m)[number];
    assert.match(done.contentType, /multipart\/alternative/);
    assert.deepEqual(done.parts.map((p) => p.type), ["text/plain", "text/html"]);
    assert.match(done.parts[0].body, new RegExp(`Versions: ${rec.oldVersionId} → ${rec.newVersionId}`));
    assert.match(done.parts[1].body, /<th align="left">Service<\/th><td>app-db<\/td>/);

    // Webhook: 3 attempts for `started` (503, 503, 200), 1 for `completed`; every one signed, templated, with its headers.
    const bodies = hook.requests.map((r) => JSON.parse(r.body) as { kind: string; svc: string; env: string; rotation: string });
    assert.deepEqual(bodies.map((b) => b.kind).sort(), ["completed", "started", "started", "started"]);
    for (const r of hook.requests) {
      assert.equal(r.headers["x-dsops-signature"], `sha256=${createHmac("sha256", HMAC_KEY).update(r.body).digest("hex")}`);
      assert.equal(r.headers["x-team"], "platform");
      assert.equal(r.method, "POST");
      assert.equal((JSON.parse(r.body) as { rotation: string }).rotation, rec.id);
    }
    const startedAttempts = hook.requests.filter((r) => r.body.includes('"started"'));
    assert.equal(new Set(startedAttempts.map((r) => r.headers["x-dsops-delivery"])).size, 1, "retries are the same delivery");
    assert.ok(startedAttempts[2].at - startedAttempts[0].at >= 55, "backoff 20 ms then 40 ms between attempts");
    assert.equal((await metrics.registry.getSingleMetricAsString("dsops_notifications_dropped_total")).includes("} "), false, "nothing dropped");
  });

  it("a failed verification rolls back: mentions on Slack, a PagerDuty trigger, the error (scrubbed) everywhere", async () => {
    const events: RotationEvent[] = [];
    const e = composeRotation(config, { env: { ...process.env, ...env }, metrics: new DsopsMetrics(), onRotationEvent: (x) => events.push(x) });
    try {
      await assert.rejects(e.rotate("prod", "BAD"), RotationError);
    } finally {
      await e.close();
    }
    await stored("app/bad");
    assert.deepEqual(events.map((x) => x.type), ["started", "rollback"]);
    assert.equal(events[1].trigger, "automatic");
    assert.equal(events[1].status, "rolled-back");
    const rb = JSON.parse(slack.requests[1].body) as { text: string; blocks: Array<{ text?: { text: string } }> };
    assert.equal(rb.text, "<!here> <@U123ABC> [dsops] Rotation rolled back: app-db (prod)");
    assert.ok(rb.blocks.some((b) => b.text?.text.startsWith("*Error:*") && b.text.text.includes("guarded")), JSON.stringify(rb.blocks));
    assert.ok(!(JSON.parse(slack.requests[0].body) as { text: string }).text.includes("<!here>"), "no mention when it starts");

    assert.equal(pd.requests.length, 1);
    const t = JSON.parse(pd.requests[0].body) as { routing_key: string; event_action: string; dedup_key: string; client: string; payload: { summary: string; severity: string; source: string; component: string; group: string; class: string; timestamp: string; custom_details: Record<string, string> } };
    assert.equal(t.event_action, "trigger");
    assert.equal(t.routing_key, PD_KEY);
    assert.equal(t.dedup_key, "dsops-app-db-prod");
    assert.equal(t.payload.severity, "critical");
    assert.equal(t.payload.component, "app-db");
    assert.equal(t.payload.group, "prod");
    assert.equal(t.payload.class, "rotation-rollback");
    assert.match(t.payload.summary, /^\[dsops\] Rotation rolled back: app-db \(prod\): /);
    assert.equal(t.payload.custom_details.variable, "BAD");
    assert.equal(t.payload.custom_details.principal, "bad");
    assert.match(t.payload.custom_details.error, /guarded/);
    assert.ok(!Number.isNaN(Date.parse(t.payload.timestamp)));

    assert.deepEqual(smtp.mails.map((x) => parseMail(x.raw).subject).sort(), ["[dsops] Rotation rolled back: app-db (prod)", "[dsops] Rotation started: app-db (prod)"]);
    assert.deepEqual(hook.requests.map((r) => (JSON.parse(r.body) as { kind: string }).kind), ["started", "rollback"]);
  });

  it("per-variable rotation.notifications picks events and channels", async () => {
    const e = composeRotation(config, { env: { ...process.env, ...env }, metrics: new DsopsMetrics() });
    try {
      await e.rotate("prod", "QUIET");
    } finally {
      await e.close();
    }
    await stored("app/quiet");
    await stored("app/quiet", "previous");
    assert.equal(slack.requests.length + pd.requests.length + smtp.mails.length, 0);
    assert.deepEqual(hook.requests.map((r) => (JSON.parse(r.body) as { kind: string }).kind), ["completed"]);
  });

  it("a receiver that hangs or fails never delays the rotation beyond wait_ms, nor fails it; drops are reported and counted", async () => {
    const hang = await startHttpReceiver(() => "hang");
    const broken = await startHttpReceiver(() => 500);
    try {
      const text = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
notifications:
  wait_ms: 400
  slack: { webhook_url: "${hang.url}/services/T/B/HANGSECRET", timeout_ms: 60000 }
  webhooks:
    - { name: flaky, url: "${broken.url}/x", retries: 1, backoff_ms: 10 }
envs:
  prod:
    DB_PASSWORD: { from: "store://local/app/db-password", rotation: { service: app-db, user: app } }
`;
      const cfg = parseConfig(text, { file: join(dir, "other.yaml"), env: { ...process.env, ...env } });
      const metrics = new DsopsMetrics();
      const drops: string[] = [];
      const e = composeRotation(cfg, { env: { ...process.env, ...env }, metrics, onNotificationDropped: (ch, ev, msg) => drops.push(`${ch} ${ev.type}: ${msg}`) });
      const t0 = performance.now();
      let status;
      try {
        status = (await e.rotate("prod", "DB_PASSWORD")).record.status;
      } finally {
        await e.close();
      }
      const took = performance.now() - t0;
      await stored("app/db-password");
      assert.equal(status, "succeeded");
      assert.ok(took < 3000, `the rotation took ${Math.round(took)} ms with a hanging receiver`);
      assert.equal(hang.requests.length, 2, "both events reached the hanging receiver");
      assert.equal(broken.requests.length, 4, "2 events x (1 + 1 retry)");
      archive.push(...[...hang.requests, ...broken.requests].map((r) => r.body));
      assert.deepEqual(drops.map((d) => /^(\S+ \S+): /.exec(d)?.[1]).sort(), ["slack completed", "slack started", "webhook:flaky completed", "webhook:flaky started"]);
      assert.ok(drops.some((d) => /webhook:flaky started: http:\/\/127\.0\.0\.1:\d+\/x\/… answered HTTP 500 \(after 2 attempts\)/.test(d)), drops.join("\n"));
      assert.ok(drops.every((d) => !d.includes("HANGSECRET")), "a webhook URL's path is never shown");
      const text2 = await metrics.registry.getSingleMetricAsString("dsops_notifications_dropped_total");
      assert.match(text2, /dsops_notifications_dropped_total\{channel="slack",event="started"\} 1/);
      assert.match(text2, /dsops_notifications_dropped_total\{channel="webhook:flaky",event="completed"\} 1/);
    } finally {
      await hang.close();
      await broken.close();
    }
  });

  it("email digests (batch_mode hourly): queued in a 0600 file that survives a restart, sent once the hour is over (engine and `dsops notify flush`)", async () => {
    const qdir = mkdtempSync(join(tmpdir(), "dsops-digest-"));
    const text = yaml().replace("    to: [ops@example.test, sec@example.test]\n", `    to: [ops@example.test, sec@example.test]\n    batch_mode: hourly\n    queue_path: ${qdir}/queue.json\n`);
    writeFileSync(join(dir, "digest.yaml"), text);
    const cfg = parseConfig(text, { file: join(dir, "digest.yaml"), env: { ...process.env, ...env } });
    const clock = new ManualClock(Date.parse("2026-06-01T10:10:00Z"));
    const only = (e: ComposedRotationEngine) => e.notifications?.notifiers.filter((n) => n.type === "email").length;
    try {
      let e = composeRotation(cfg, { env: { ...process.env, ...env }, clock, metrics: new DsopsMetrics() });
      assert.equal(only(e), 1);
      try {
        await e.rotate("prod", "DB_PASSWORD");
        clock.advance(40 * 60000); // 10:50
        await e.rotate("prod", "DB_PASSWORD");
      } finally {
        await e.close();
      }
      await stored("app/db-password");
      await stored("app/db-password", "previous");
      assert.equal(smtp.mails.length, 0, "nothing sent within the hour");
      const q = join(qdir, "queue.json");
      assert.equal(statSync(q).mode & 0o777, 0o600);
      assert.equal((JSON.parse(readFileSync(q, "utf8")) as { events: unknown[] }).events.length, 4);
      // A new engine (a restart) at 11:00:01 finds the queue and sends one digest.
      clock.advance(10 * 60000 + 1000);
      e = composeRotation(cfg, { env: { ...process.env, ...env }, clock, metrics: new DsopsMetrics() });
      try {
        assert.equal(await e.notifications?.flush(), 4);
      } finally {
        await e.close();
      }
      assert.equal(smtp.mails.length, 1);
      const d = parseMail(smtp.mails[0].raw);
      assert.equal(d.subject, "[dsops] Rotation digest (hourly): app-db (prod), 4 events");
      assert.equal(d.parts.length, 2);
      assert.equal((d.parts[0].body.match(/Rotation (started|completed): app-db \(prod\) DB_PASSWORD/g) ?? []).length, 4);
      assert.equal((JSON.parse(readFileSync(q, "utf8")) as { events: unknown[] }).events.length, 0);

      // The CLI: one more rotation queues 2 events; `dsops notify flush` sends them once the hour is over.
      const rot = await dsops(["-c", "digest.yaml", "secrets", "rotate", "-e", "prod", "--var", "DB_PASSWORD"], { cwd: dir, env: { ...env, DSOPS_CLOCK: "2026-06-01T11:05:00Z" } });
      assert.equal(rot.status, 0, rot.stderr);
      await stored("app/db-password");
      assert.equal(smtp.mails.length, 1);
      const early = await dsops(["-c", "digest.yaml", "notify", "flush"], { cwd: dir, env: { ...env, DSOPS_CLOCK: "2026-06-01T11:30:00Z" } });
      assert.equal(early.status, 0, early.stderr);
      assert.equal(early.stdout, "no digest due\n");
      const late = await dsops(["-c", "digest.yaml", "notify", "flush"], { cwd: dir, env: { ...env, DSOPS_CLOCK: "2026-06-01T12:00:01Z" } });
      assert.equal(late.status, 0, late.stderr);
      assert.equal(late.stdout, "sent a digest of 2 event(s)\n");
      assert.equal(smtp.mails.length, 2);
    } finally {
      rmSync(qdir, { recursive: true, force: true });
    }
  });

  it("`dsops secrets due --within … --notify`: due-soon from the schedule and the last rotation in the history", async () => {
    const hist = await dsops(["secrets", "history", "-e", "prod", "--var", "DB_PASSWORD", "--json"], { cwd: dir, env });
    const last = (JSON.parse(hist.stdout) as Array<{ status: string; finishedAt: string }>).find((r) => r.status === "succeeded") as { finishedAt: string };
    const lastAt = Date.parse(last.finishedAt);
    // The schedule is 03:00 UTC daily: the first 03:00 after the last rotation (+1 min).
    const d = new Date(lastAt + 60000);
    let due = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 3, 0, 0);
    if (due < lastAt + 60000) due += 86400000;
    const at = new Date(due - 2 * 3600000).toISOString();
    const none = await dsops(["secrets", "due", "--within", "1h", "--json"], { cwd: dir, env: { ...env, DSOPS_CLOCK: at } });
    assert.equal(none.status, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), []);
    const some = await dsops(["secrets", "due", "--within", "3h", "--json", "--notify"], { cwd: dir, env: { ...env, DSOPS_CLOCK: at } });
    assert.equal(some.status, 0, some.stderr);
    const list = JSON.parse(some.stdout) as Array<{ variable: string; dueAt: string; overdue: boolean; lastRotatedAt: string }>;
    // BAD and QUIET have no schedule.
    assert.deepEqual(list.map((x) => [x.variable, x.dueAt, x.overdue]), [["DB_PASSWORD", new Date(due).toISOString(), false]]);
    const s = JSON.parse(slack.requests[0].body) as { text: string; blocks: Array<{ fields?: Array<{ text: string }> }> };
    assert.equal(s.text, "[dsops] Rotation due soon: app-db (prod)");
    assert.ok(s.blocks.flatMap((b) => b.fields ?? []).some((f) => f.text === `*Due:*\n${new Date(due).toISOString()}`));
    assert.deepEqual(hook.requests.map((r) => (JSON.parse(r.body) as { kind: string }).kind), ["due-soon"]);
    assert.equal(pd.requests.length, 0, "PagerDuty is told of failures only");
    assert.deepEqual(smtp.mails.map((m) => parseMail(m.raw).subject), ["[dsops] Rotation due soon: app-db (prod)"]);
    const table = await dsops(["secrets", "due", "--within", "3h"], { cwd: dir, env: { ...env, DSOPS_CLOCK: at } });
    assert.match(table.stdout, /prod\s+DB_PASSWORD\s+app-db\s+0 3 \* \* \*/);
  });

  it("no secret value appears in any payload, header or mail", async () => {
    assert.ok(values.size >= 8, `${values.size} values collected`);
    const all = [...archive, ...everything()].join("\n");
    assert.ok(all.length > 10000, `${all.length} characters received in all`);
    for (const v of values) assert.ok(!all.includes(v), "a secret value reached a receiver");
    assert.ok(existsSync(join(dir, "dsops-rotation-history.jsonl")));
    const history = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) assert.ok(!history.includes(v));
  });
});
