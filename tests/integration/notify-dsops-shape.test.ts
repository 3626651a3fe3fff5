// dsops's `notifications:` and `metrics.prometheus.labels` spellings, each proven on a real receiver: local HTTP servers, a local SMTP server (smtp-server, with TLS from a self-signed certificate made by openssl), and `dsops metrics textfile` after a real rotation on PostgreSQL 15.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { ConfigError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { parseConfig } from "../../provider/compose/config";
import { composeRotation } from "../../provider/compose/rotation";
import { defaultMetrics } from "../../provider/metrics/index";
import { Notifications, type DropReport } from "../../provider/notify/index";
import type { RotationEvent } from "../../provider/notify/types";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsops } from "../support/cli";
import { startHttpReceiver, type HttpReceiver } from "../support/http-receiver";
import { startPostgres, type RunningPostgres } from "../support/postgres";
import { startSmtp, type SmtpReceiver } from "../support/smtp";

/** A dsops.yaml with a `notifications:` block (YAML text, indented under it). */
const withNotifications = (block: string) => `version: 1
secretStores:
  local: { type: file, path: ./s.store }
notifications:
${block}
envs:
  dev:
    A: { literal: "x" }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, { file: "/x/dsops.yaml", label: "dsops.yaml", env: {} });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

const event = (type: RotationEvent["type"], extra: Partial<RotationEvent> = {}): RotationEvent => ({
  type,
  title: ({ started: "Rotation started", completed: "Rotation completed", failed: "Rotation failed", rollback: "Rotation rolled back", "due-soon": "Rotation due soon", "dead-lettered": "Rotation dead-lettered" } as Record<string, string>)[type] ?? type,
  service: "app-db",
  env: "prod",
  variable: "DB_PASSWORD",
  secret: "store://local/app/db",
  at: "2026-01-01T00:00:00.000Z",
  ...extra,
});

/** The hub of a dsops.yaml's `notifications:`, its drops collected. */
function hub(block: string, dir = "/x"): { n: Notifications; drops: DropReport[] } {
  const config = parseConfig(withNotifications(block), { file: join(dir, "dsops.yaml"), env: {} });
  const drops: DropReport[] = [];
  const n = new Notifications(config.raw.notifications, { clock: systemClock, configDir: dir, onDropped: (d) => drops.push(d), warn: () => undefined });
  return { n, drops };
}

describe("notifications: dsops's spellings, on real receivers", function () {
  this.timeout(60000);
  let http: HttpReceiver;
  let dir: string;
  before(async () => {
    http = await startHttpReceiver();
    dir = mkdtempSync(join(tmpdir(), "dsops-nshape-"));
  });
  beforeEach(() => {
    http.reset();
    http.setBehaviour(() => 200);
  });
  after(async () => {
    await http?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("slack mentions {on_failure, on_rollback}: each list on its own event, none on success", async () => {
    const { n, drops } = hub(`  slack:
    webhook_url: ${http.url}/slack
    mentions: { on_failure: [S0FAIL1], on_rollback: "U0ROLL1" }`);
    for (const t of ["completed", "failed", "rollback"] as const) n.emit(event(t));
    await n.settle();
    assert.deepEqual(drops, []);
    const byType = (t: string) => http.requests.map((r) => JSON.parse(r.body) as { text: string }).find((b) => b.text.includes(event(t as RotationEvent["type"]).title));
    assert.equal(byType("failed")?.text, "<!subteam^S0FAIL1> [dsops] Rotation failed: app-db (prod)");
    assert.equal(byType("rollback")?.text, "<@U0ROLL1> [dsops] Rotation rolled back: app-db (prod)");
    assert.equal(byType("completed")?.text, "[dsops] Rotation completed: app-db (prod)");
    assert.ok(!http.requests.find((r) => r.body.includes("Rotation completed"))?.body.includes("please look into this"));
  });

  it("pagerduty service_id: sent as custom_details.service_id of the Events v2 trigger", async () => {
    const { n, drops } = hub(`  pagerduty:
    integration_key: RKEY1
    events_url: ${http.url}/enqueue
    service_id: PSERVICE9`);
    n.emit(event("failed", { error: "boom" }));
    await n.settle();
    assert.deepEqual(drops, []);
    const body = JSON.parse(http.requests[0].body) as { routing_key: string; payload: { custom_details: Record<string, string> } };
    assert.equal(body.routing_key, "RKEY1");
    assert.equal(body.payload.custom_details.service_id, "PSERVICE9");
  });

  it("webhook payload_template: rendered with the event by the webhook template engine", async () => {
    const { n, drops } = hub(`  webhooks:
    - url: ${http.url}/hook
      payload_template: '{"text": "{{ .title }} of {{ .service }} in {{ .env }}"}'`);
    n.emit(event("completed"));
    await n.settle();
    assert.deepEqual(drops, []);
    assert.deepEqual(JSON.parse(http.requests[0].body), { text: "Rotation completed of app-db in prod" });
  });

  it("webhook retry {max_attempts, backoff}: max_attempts attempts in all, then dropped saying so", async () => {
    http.setBehaviour(() => 503);
    const { n, drops } = hub(`  webhooks:
    - url: ${http.url}/hook
      name: audit
      retry: { max_attempts: 4, backoff: 1ms }`);
    n.emit(event("failed"));
    await n.settle();
    assert.equal(http.requests.length, 4);
    assert.equal(drops.length, 1);
    assert.match(drops[0].message, /answered HTTP 503 \(after 4 attempts\)$/);
  });

  it("retry max_attempts: 1 means no retry (slack)", async () => {
    http.setBehaviour(() => 500);
    const { n, drops } = hub(`  slack:
    webhook_url: ${http.url}/slack
    retry: { max_attempts: 1 }`);
    n.emit(event("failed"));
    await n.settle();
    assert.equal(http.requests.length, 1);
    assert.match(drops[0].message, /answered HTTP 500$/);
  });

  it("timeout in seconds: an attempt is abandoned after timeout × 1000 ms", async () => {
    http.setBehaviour(() => "hang");
    const { n, drops } = hub(`  webhooks:
    - url: ${http.url}/hook
      timeout: 0.3
      retry: { max_attempts: 1 }`);
    n.emit(event("failed"));
    await n.settle();
    assert.equal(drops.length, 1);
    assert.match(drops[0].message, /no answer within 300 ms$/);
  });

  describe("email smtp.tls (nodemailer secure / requireTLS / ignoreTLS)", () => {
    let key: string;
    let cert: string;
    let caFile: string;
    before(() => {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
      key = readFileSync(join(dir, "key.pem"), "utf8");
      cert = readFileSync(join(dir, "cert.pem"), "utf8");
      caFile = join(dir, "cert.pem");
    });
    const emailBlock = (port: number, smtp: string) => `  email:
    smtp: { host: 127.0.0.1, port: ${port}, ${smtp} }
    from: dsops@example.com
    to: ops@example.com`;
    async function send(server: SmtpReceiver, smtp: string): Promise<DropReport[]> {
      const { n, drops } = hub(emailBlock(server.port, smtp), dir);
      n.emit(event("failed"));
      await n.settle();
      return drops;
    }

    it("tls: true → TLS from the first byte, the server's self-signed certificate checked against ca_file", async () => {
      const server = await startSmtp(undefined, { mode: "implicit", key, cert });
      try {
        assert.deepEqual(await send(server, `tls: true, ca_file: ${caFile}`), []);
        assert.equal(server.mails.length, 1);
        assert.equal(server.mails[0].secure, true);
        // The certificate really is checked: without the CA, the handshake is refused.
        const drops = await send(server, "tls: true");
        assert.equal(drops.length, 1);
        assert.match(drops[0].message, /self-signed certificate/);
        assert.equal(server.mails.length, 1);
      } finally {
        await server.close();
      }
    });

    it("tls: starttls → STARTTLS required (upgraded session); refused by a server without it", async () => {
      const server = await startSmtp(undefined, { mode: "starttls", key, cert });
      const plain = await startSmtp();
      try {
        assert.deepEqual(await send(server, `tls: starttls, ca_file: ${caFile}`), []);
        assert.equal(server.mails[0].secure, true);
        const drops = await send(plain, "tls: starttls");
        assert.equal(drops.length, 1);
        assert.match(drops[0].message, /STARTTLS/);
        assert.equal(plain.mails.length, 0);
      } finally {
        await server.close();
        await plain.close();
      }
    });

    it("tls: false → plaintext even when the server offers STARTTLS", async () => {
      const server = await startSmtp(undefined, { mode: "starttls", key, cert });
      try {
        assert.deepEqual(await send(server, "tls: false"), []);
        assert.equal(server.mails[0].secure, false);
      } finally {
        await server.close();
      }
    });
  });

  describe("bad input: the field, the expectation, line and column", () => {
    const rows: Array<[string, string, string]> = [
      ["slack mentions of a wrong type", `  slack: { webhook_url: "http://h/x", mentions: 5 }`, "notifications.slack.mentions: expected a list of mentions, or { on_failure, on_rollback } (each a mention or a list) at dsops.yaml:5:49"],
      ["slack mentions with an unknown key", `  slack: { webhook_url: "http://h/x", mentions: { on_failur: [U1] } }`, "notifications.slack.mentions.on_failur: unknown key \"on_failur\" (did you mean \"on_failure\"?) at dsops.yaml:5:62"],
      ["smtp.tls not a boolean or starttls", `  email: { smtp: { host: h, tls: tls13 }, from: a@b, to: c@d }`, "notifications.email.smtp.tls: expected true, false or \"starttls\" at dsops.yaml:5:34"],
      ["pagerduty service_id a number", `  pagerduty: { routing_key: K, service_id: 42 }`, "notifications.pagerduty.service_id: Invalid input: expected string, received number at dsops.yaml:5:44"],
      ["payload_template not a string", `  webhooks: [ { url: "http://h/x", payload_template: [a] } ]`, "notifications.webhooks[0].payload_template: Invalid input: expected string, received array at dsops.yaml:5:54"],
      ["retry.max_attempts zero", `  webhooks: [ { url: "http://h/x", retry: { max_attempts: 0 } } ]`, "notifications.webhooks[0].retry.max_attempts: Too small: expected number to be >=1 at dsops.yaml:5:59"],
      ["retry.backoff not a duration", `  webhooks: [ { url: "http://h/x", retry: { backoff: soon } } ]`, "notifications.webhooks[0].retry.backoff: expected a duration (500ms, 2s, 1m) or a number of seconds, at most 10m at dsops.yaml:5:54"],
      ["timeout not a duration", `  slack: { webhook_url: "http://h/x", timeout: soon }`, "notifications.slack.timeout: expected a number of seconds (or a duration: 500ms, 2s) above 0 and at most 300 at dsops.yaml:5:48"],
      ["timeout over 300 s", `  webhooks: [ { url: "http://h/x", timeout: 301 } ]`, "notifications.webhooks[0].timeout: expected a number of seconds (or a duration: 500ms, 2s) above 0 and at most 300 at dsops.yaml:5:45"],
      ["slack mentions.on_failure a number list", `  slack: { webhook_url: "http://h/x", mentions: { on_failure: [1] } }`, "notifications.slack.mentions.on_failure[0]: expected a mention (here, channel, U…, S…) at dsops.yaml:5:64"],
      ["retry.backoff a list", `  webhooks: [ { url: "http://h/x", retry: { backoff: [1] } } ]`, "notifications.webhooks[0].retry.backoff: expected a duration (500ms, 2s, 1m) or a number of seconds, at most 10m at dsops.yaml:5:54"],
    ];
    for (const [name, block, message] of rows) {
      it(name, () => {
        assert.deepEqual(problems(withNotifications(block)), [message]);
      });
    }
    it("template and payload_template together", () => {
      assert.deepEqual(problems(withNotifications(`  webhooks:\n    - { url: "http://h/x", template: a, payload_template: b }`)), [
        "notifications.webhooks[0].payload_template: give template or payload_template, not both (payload_template is dsops's name of template) at dsops.yaml:6:59",
      ]);
    });
  });
});

describe("metrics.prometheus.labels: constant labels in `dsops metrics textfile` (a real rotation on PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let dir: string;
  const env = { DSOPS_FILE_KEY: "labels-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "labels" };
  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), "dsops-labels-"));
    const store = new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
    await store.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    const pw = `Init-${Math.random().toString(36).slice(2)}`;
    const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query(`CREATE ROLE ${escapeIdentifier("app")} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
    await admin.end();
    await store.put("app/app", new Secret(pw));
  });
  after(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("every dsops metric carries the labels; without them, none does", async () => {
    const yaml = (labels: string) => `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
metrics:
  prometheus: { enabled: true${labels} }
envs:
  prod:
    APP: { from: "store://local/app/app", rotation: { service: app-db, user: app } }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml(`, labels: { team: platform, region: eu-west-1 }`));
    const config = parseConfig(readFileSync(join(dir, "dsops.yaml"), "utf8"), { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    // The process's registry (defaultMetrics) too: the rotation's own events carry the labels.
    const e = composeRotation(config, { env: { ...process.env, ...env }, notifications: false });
    // The registry is the process's: rotations of earlier test files counted there too.
    defaultMetrics().registry.resetMetrics();
    try {
      await e.rotate("prod", "APP");
      const live = (await defaultMetrics().text()).split("\n").filter((l) => l.startsWith("dsops_rotation_started_total{"));
      assert.equal(live.length, 1, live.join("\n"));
      assert.match(live[0], /team="platform"/);
    } finally {
      defaultMetrics().registry.setDefaultLabels({});
      await e.close();
    }
    const r = dsops(["metrics", "textfile", join(dir, "out.prom")], { cwd: dir, env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    const samples = readFileSync(join(dir, "out.prom"), "utf8").split("\n").filter((l) => l.startsWith("dsops_"));
    assert.ok(samples.length >= 3, samples.join("\n"));
    for (const s of samples) {
      assert.match(s, /[{,]team="platform"[,}]/, s);
      assert.match(s, /[{,]region="eu-west-1"[,}]/, s);
    }
    assert.ok(samples.some((s) => /^dsops_rotation_started_total\{.*service="app-db".*\} 1$/.test(s)), samples.join("\n"));

    writeFileSync(join(dir, "dsops.yaml"), yaml(""));
    const r2 = dsops(["metrics", "textfile", join(dir, "out2.prom")], { cwd: dir, env: { ...process.env, ...env } });
    assert.equal(r2.status, 0, r2.stderr);
    assert.doesNotMatch(readFileSync(join(dir, "out2.prom"), "utf8"), /team=/);
  });

  it("a label name Prometheus refuses, or one of dsops's own, is a config error at its line and column", () => {
    assert.deepEqual(problems(`version: 1\nmetrics:\n  prometheus: { labels: { 9x: a, env: b, __x: c } }\n`), [
      "metrics.prometheus.labels.9x: not a Prometheus label name (letters, digits and _, not starting with a digit) at dsops.yaml:3:31",
      "metrics.prometheus.labels.env: already a label of dsops's metrics (service, env, strategy, status, trigger, check, type, channel, event, le, quantile) at dsops.yaml:3:39",
      "metrics.prometheus.labels.__x: label names starting with __ are reserved by Prometheus at dsops.yaml:3:47",
    ]);
  });
});
