// Email goes through nodemailer to a real SMTP server (the smtp-server package) started here; PagerDuty is a local HTTP server taking Events API v2 requests as PagerDuty's endpoint does.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsopsRun } from "../support/cli";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startSmtp, type SmtpReceiver } from "../support/smtp";

const T0 = "2026-03-01T10:00:00.000Z";

describe("dsops leak report --notify over email (SMTP) and PagerDuty (Events API v2)", function () {
  this.timeout(60000);
  let dir: string;
  let smtp: SmtpReceiver;
  let pd: HttpReceiver;
  const password = "smtp-" + randomBytes(12).toString("hex");
  const routingKey = "R" + randomBytes(15).toString("hex");
  const outputs: string[] = [];

  const config = (o: { smtpPassword?: string; pdPath?: string } = {}) => `version: 1
notifications:
  email:
    smtp: { host: 127.0.0.1, port: ${smtp.port}, tls: false, username: dsops, password: "${o.smtpPassword ?? password}" }
    from: dsops@example.test
    to: [security@example.test, oncall@example.test]
    batch_mode: daily
  pagerduty:
    integration_key: "${routingKey}"
    service_id: PXXXXXX
    events_url: "${pd.url}${o.pdPath ?? "/v2/enqueue"}"
    retry: { max_attempts: 1 }
`;
  const report = async (args: string[]) => {
    const r = await dsopsRun(["--config", "team/dsops.yaml", "leak", "report", ...args, "--notify"], { cwd: dir, env: { DSOPS_CLOCK: T0 } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(async () => {
    smtp = await startSmtp({ user: "dsops", password });
    pd = await startHttpReceiver((_n, req) => (req.path === "/v2/enqueue" ? 202 : 500));
  });
  after(async () => {
    await smtp?.close();
    await pd?.close();
    for (const out of outputs) {
      assert.ok(!out.includes(password), "the SMTP password appeared in output");
      assert.ok(!out.includes(routingKey), "the routing key appeared in output");
    }
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-leak-notify-"));
    mkdirSync(join(dir, "team"));
    pd.reset();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("sends one email at once (not batched) and one PagerDuty trigger with the title, type and status; exit 0", async () => {
    writeFileSync(join(dir, "team", "dsops.yaml"), config());
    const before = smtp.mails.length;
    const r = await report(["--title", "AWS key in a gist", "--type", "api-key", "--status", "investigating", "--severity", "high", "--secret", "AWS_SECRET", "--commit", "abcdef1"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "INC-0001\n");
    assert.match(r.stderr, /^notified email: sent to security@example\.test, oncall@example\.test$/m);
    assert.match(r.stderr, /^notified pagerduty: sent to http:\/\/127\.0\.0\.1:\d+\/v2\/…$/m);

    const mail = (await smtp.waitFor(before + 1))[before];
    assert.ok(mail);
    assert.deepEqual(mail.to, ["security@example.test", "oncall@example.test"]);
    assert.equal(mail.user, "dsops", "logged in at the SMTP server");
    assert.match(mail.raw, /^Subject: \[dsops\] Secret leak INC-0001: AWS key in a gist\r?$/m);
    assert.match(mail.raw, /^X-Dsops: incident\r?$/m);
    assert.match(mail.raw, /Secret leak INC-0001: AWS key in a gist\r?\nSeverity: high\r?\nStatus: investigating\r?\nType: api-key\r?\nSecrets: AWS_SECRET\r?\nCommits: abcdef1/);

    assert.equal(pd.requests.length, 1);
    const ev = JSON.parse(pd.requests[0]?.body ?? "{}") as { routing_key: string; event_action: string; dedup_key: string; payload: { summary: string; severity: string; source: string; timestamp: string; custom_details: Record<string, string> } };
    assert.equal(pd.requests[0]?.headers["content-type"], "application/json");
    assert.equal(ev.routing_key, routingKey);
    assert.equal(ev.event_action, "trigger");
    assert.equal(ev.dedup_key, "dsops-leak-INC-0001");
    assert.equal(ev.payload.summary, "[dsops] Secret leak INC-0001: AWS key in a gist");
    assert.equal(ev.payload.severity, "error", "high → error");
    assert.equal(ev.payload.timestamp, T0);
    assert.deepEqual(
      [ev.payload.custom_details.incident, ev.payload.custom_details.type, ev.payload.custom_details.status, ev.payload.custom_details.secrets, ev.payload.custom_details.service_id],
      ["INC-0001", "api-key", "investigating", "AWS_SECRET", "PXXXXXX"],
    );
    assert.ok(!readdirSync(join(dir, "team", ".dsops")).includes("email-queue.json"), "the incident did not wait in the digest queue");
  });

  it("a failing channel (SMTP login refused, PagerDuty answering 500) is exit 1, named with its cause; the incident is recorded", async () => {
    writeFileSync(join(dir, "team", "dsops.yaml"), config({ smtpPassword: "wrong-password", pdPath: "/down" }));
    const before = smtp.mails.length;
    const r = await report(["--title", "token in CI log", "--type", "token", "--severity", "critical"]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, "INC-0001\n");
    assert.match(r.stderr, /^error: not notified email: smtp 127\.0\.0\.1:\d+: .*(auth|Invalid login|credentials)/im);
    assert.match(r.stderr, /^error: not notified pagerduty: .*500/m);
    assert.equal(smtp.mails.length, before, "no message went through");
    assert.equal(pd.requests.length, 1, "one attempt (retry.max_attempts: 1)");
    const rec = JSON.parse(readFileSync(join(dir, "team", ".dsops", "incidents", "INC-0001.json"), "utf8")) as { summary: string; type: string };
    assert.deepEqual([rec.summary, rec.type], ["token in CI log", "token"]);

    // One channel down, the other up: still exit 1, naming only the failed one.
    writeFileSync(join(dir, "team", "dsops.yaml"), config({ pdPath: "/down" }));
    const half = await report(["--summary", "second"]);
    assert.equal(half.status, 1, half.stderr);
    assert.match(half.stderr, /^notified email: /m);
    assert.match(half.stderr, /^error: not notified pagerduty: /m);
    assert.ok(!/not notified email/.test(half.stderr));
  });
});
