import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dsops, dsopsRun } from "../support/cli";
import { startHttpReceiver } from "../support/http-receiver";

const T0 = "2026-03-01T10:00:00.000Z";
const T1 = "2026-03-01T12:30:00.000Z";
/** A credential-looking value a user might paste by mistake (made at run time). */
const PASTED = "ghp_" + randomBytes(27).toString("base64").replace(/[^A-Za-z0-9]/g, "a").slice(0, 36);

describe("dsops leak (built binary, incident records beside dsops.yaml)", function () {
  this.timeout(60000);
  let dir: string;
  const outputs: string[] = [];
  const run = (args: string[], clock = T0) => {
    const r = dsops(["--config", "team/dsops.yaml", ...args], { cwd: dir, env: { DSOPS_CLOCK: clock } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const incidents = () => join(dir, "team", ".dsops", "incidents");

  /** Two records, as the first test makes them. */
  const seed = () => {
    assert.equal(run(["leak", "report", "--summary", "API token pasted in #general", "--severity", "critical", "--secret", "API_TOKEN", "myapp/prod#token"]).status, 0);
    assert.equal(run(["leak", "report", "--summary", "old .env in a backup", "--severity", "low"]).status, 0);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-leak-"));
    mkdirSync(join(dir, "team"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  after(() => {
    for (const out of outputs) assert.ok(!out.includes(PASTED), "the pasted value appeared in output");
  });

  it("report opens a record (0600, folder 0700) with the clock's time, and prints its id", () => {
    const r = run(["leak", "report", "--summary", "API token pasted in #general", "--severity", "critical", "--secret", "API_TOKEN", "myapp/prod#token"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "INC-0001\n");
    assert.match(r.stderr, /opened INC-0001/);
    const file = join(incidents(), "INC-0001.json");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(incidents()).mode & 0o777, 0o700);
    const rec = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(
      { ...rec, notes: rec.notes.map((n: { at: string; text: string }) => ({ at: n.at, text: n.text })) },
      {
        id: "INC-0001",
        created: T0,
        updated: T0,
        severity: "critical",
        summary: "API token pasted in #general",
        secrets: ["API_TOKEN", "myapp/prod#token"],
        status: "open",
        notes: [{ at: T0, text: "reported" }],
      },
    );
    assert.equal(typeof rec.notes[0].by, "string");
    const second = run(["leak", "report", "--summary", "old .env in a backup", "--severity", "low", "--json"]);
    assert.equal(JSON.parse(second.stdout).id, "INC-0002");
  });

  it("list shows the records as a table or JSON, filtered by status", () => {
    assert.match(run(["leak", "list"]).stderr, /^no incidents\n$/);
    seed();
    const r = run(["leak", "list"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ID +STATUS +SEVERITY +CREATED +SECRETS +SUMMARY\n/);
    assert.match(r.stdout, /^INC-0001 +open +critical +2026-03-01T10:00:00\.000Z +API_TOKEN,myapp\/prod#token +API token pasted in #general$/m);
    const j = JSON.parse(run(["leak", "list", "--json"]).stdout);
    assert.deepEqual(j.incidents.map((i: { id: string }) => i.id), ["INC-0001", "INC-0002"]);
  });

  it("update adds to the history: notes, severity, more secrets; timestamps move with the clock", () => {
    seed();
    const r = run(["leak", "update", "1", "--note", "token revoked at the provider", "--severity", "high", "--secret", "WEBHOOK_URL"], T1);
    assert.equal(r.status, 0, r.stderr);
    const rec = JSON.parse(run(["leak", "show", "INC-0001", "--json"]).stdout);
    assert.equal(rec.updated, T1);
    assert.equal(rec.created, T0);
    assert.equal(rec.severity, "high");
    assert.deepEqual(rec.secrets, ["API_TOKEN", "myapp/prod#token", "WEBHOOK_URL"]);
    assert.deepEqual(rec.notes[1], { at: T1, by: rec.notes[1].by, text: "token revoked at the provider", changes: ["severity: critical → high", "secrets: + WEBHOOK_URL"] });
    const nothing = run(["leak", "update", "1"]);
    assert.equal(nothing.status, 1);
    assert.match(nothing.stderr, /nothing to update/);
  });

  it("resolve closes it (once); show prints the history", () => {
    seed();
    const r = run(["leak", "resolve", "INC-0001", "--note", "rotated API_TOKEN; no use seen in logs"], T1);
    assert.equal(r.status, 0, r.stderr);
    const again = run(["leak", "resolve", "inc-1"], T1);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /INC-0001 is already resolved\nhint: /);
    const show = run(["leak", "show", "1"]);
    assert.match(show.stdout, /^INC-0001  RESOLVED  severity critical\n/);
    assert.match(show.stdout, /\nresolved: 2026-03-01T12:30:00\.000Z\n/);
    assert.match(show.stdout, /2026-03-01T12:30:00\.000Z  .+: rotated API_TOKEN; no use seen in logs \[status: open → resolved\]\n$/);
    assert.deepEqual(JSON.parse(run(["leak", "list", "--status", "open", "--json"]).stdout).incidents.map((i: { id: string }) => i.id), ["INC-0002"]);
    const reopened = run(["leak", "update", "1", "--reopen", "--json"]);
    assert.equal(JSON.parse(reopened.stdout).status, "open");
  });

  it("refuses a secret value where a name belongs, without echoing it", () => {
    seed();
    for (const bad of [PASTED, "my password is hunter2"]) {
      const r = run(["leak", "report", "--summary", "x", "--secret", bad]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /--secret: /);
      assert.ok(!r.stderr.includes("hunter2"));
    }
    assert.deepEqual(readdirSync(incidents()).sort(), ["INC-0001.json", "INC-0002.json"]);
  });

  it("unknown ids and bad severities are errors", () => {
    const r = run(["leak", "show", "INC-0099"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no incident INC-0099/);
    assert.equal(run(["leak", "show", "banana"]).status, 1);
    assert.equal(run(["leak", "report", "--summary", "x", "--severity", "apocalyptic"]).status, 2);
  });

  it("report takes dsops's --type --title --description --file --commit; shown and kept in the record", () => {
    const r = run(["leak", "report", "--title", "AWS key in a public gist", "--type", "api-key", "--description", "found by a scanner; the gist is deleted", "--file", "deploy/env.sh", "config/aws.ini", "--commit", "9F2C4E1A0B", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const inc = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(inc.summary, "AWS key in a public gist");
    assert.equal(inc.type, "api-key");
    assert.equal(inc.description, "found by a scanner; the gist is deleted");
    assert.deepEqual(inc.files, ["deploy/env.sh", "config/aws.ini"]);
    assert.deepEqual(inc.commits, ["9f2c4e1a0b"]);
    assert.deepEqual(JSON.parse(readFileSync(join(incidents(), "INC-0001.json"), "utf8")), inc);
    const show = run(["leak", "show", "1"]);
    assert.match(show.stdout, /^type: {5}api-key\ndescription: found by a scanner; the gist is deleted\nfiles: {4}deploy\/env\.sh, config\/aws\.ini\ncommits: {2}9f2c4e1a0b\n/m);
    // Errors: not a commit id (exit 1), both --summary and --title different, neither (exit 2).
    const bad = run(["leak", "report", "--title", "x", "--commit", "not-a-sha"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--commit not-a-sha: not a commit id/);
    assert.equal(run(["leak", "report", "--title", "x", "--summary", "y"]).status, 2);
    const none = run(["leak", "report", "--type", "api-key"]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /required option '--summary <text>' \(or --title\) not specified/);
    assert.deepEqual(readdirSync(incidents()), ["INC-0001.json"]);
  });

  it("an investigating status: at report or by update, listed with the open ones, then resolved", () => {
    assert.equal(run(["leak", "report", "--summary", "token in CI log", "--status", "investigating"]).status, 0);
    assert.equal(run(["leak", "report", "--summary", "second"]).status, 0);
    const up = run(["leak", "update", "2", "--status", "investigating", "--json"], T1);
    assert.equal(up.status, 0, up.stderr);
    const inc = JSON.parse(up.stdout) as { status: string; notes: Array<{ changes?: string[] }> };
    assert.equal(inc.status, "investigating");
    assert.deepEqual(inc.notes.at(-1)?.changes, ["status: open → investigating"]);
    const inv = run(["leak", "list", "--status", "investigating", "--json"]);
    assert.deepEqual((JSON.parse(inv.stdout) as { incidents: Array<{ id: string }> }).incidents.map((i) => i.id), ["INC-0001", "INC-0002"]);
    assert.equal(run(["leak", "resolve", "1"]).status, 0);
    const open = run(["leak", "list", "--status", "open", "--json"]);
    assert.deepEqual((JSON.parse(open.stdout) as { incidents: Array<{ id: string; status: string }> }).incidents.map((i) => [i.id, i.status]), [["INC-0002", "investigating"]]);
    assert.equal(run(["leak", "update", "2", "--status", "bogus"]).status, 2);
    assert.equal(run(["leak", "report", "--summary", "x", "--status", "resolved"]).status, 2);
  });

  it("report --notify sends the incident to Slack and each webhook (signed), never a value; a failed channel is exit 1, the record kept", async () => {
    const rx = await startHttpReceiver((_n, req) => (req.path === "/down" ? 500 : 200));
    try {
      writeFileSync(
        join(dir, "team", "dsops.yaml"),
        `version: 1
secretStores:
  local: { type: file }
notifications:
  slack: { webhook_url: "${rx.url}/slack", channel: "#sec" }
  webhooks:
    - { name: soc, url: "${rx.url}/hook", secret: hmac-key }
    - { name: off, url: "${rx.url}/off", enabled: false }
`,
      );
      const args = ["--config", "team/dsops.yaml", "leak", "report", "--title", "AWS key in a gist", "--type", "api-key", "--severity", "critical", "--secret", "AWS_SECRET", "--commit", "abcdef1", "--notify"];
      const r = await dsopsRun(args, { cwd: dir, env: { DSOPS_CLOCK: T0 } });
      outputs.push(r.stdout, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "INC-0001\n");
      assert.match(r.stderr, /notified slack: sent to http:\/\/127\.0\.0\.1:\d+\/slack\/…\nnotified webhook:soc: sent to http:\/\/127\.0\.0\.1:\d+\/hook\/…\n$/);
      assert.deepEqual(rx.requests.map((q) => q.path).sort(), ["/hook", "/slack"]);
      const slack = JSON.parse(rx.requests.find((q) => q.path === "/slack")?.body ?? "{}") as { text: string; channel: string };
      assert.equal(slack.channel, "#sec");
      assert.match(slack.text, /^Secret leak INC-0001: AWS key in a gist\nSeverity: critical\nStatus: open\nType: api-key\nSecrets: AWS_SECRET\nCommits: abcdef1\n/);
      const hook = rx.requests.find((q) => q.path === "/hook");
      assert.equal(hook?.headers["x-dsops-event"], "incident");
      assert.equal(hook?.headers["x-dsops-signature"], "sha256=" + createHmac("sha256", "hmac-key").update(hook?.body ?? "").digest("hex"));
      const body = JSON.parse(hook?.body ?? "{}") as { type: string; title: string; incident: Record<string, unknown> };
      assert.equal(body.type, "incident");
      assert.equal(body.title, "Secret leak INC-0001: AWS key in a gist");
      const i = body.incident;
      assert.deepEqual([i.id, i.type, i.severity, i.summary, i.created, i.secrets, i.commits], ["INC-0001", "api-key", "critical", "AWS key in a gist", T0, ["AWS_SECRET"], ["abcdef1"]]);
      // A channel that fails: exit 1, said, and the record is there.
      writeFileSync(join(dir, "team", "dsops.yaml"), `version: 1\nnotifications:\n  webhooks:\n    - { name: down, url: "${rx.url}/down", retries: 0 }\n`);
      const bad = await dsopsRun(["--config", "team/dsops.yaml", "leak", "report", "--summary", "second", "--notify"], { cwd: dir, env: { DSOPS_CLOCK: T0 } });
      outputs.push(bad.stdout, bad.stderr);
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /error: not notified webhook:down: .*500/);
      assert.ok(readdirSync(incidents()).includes("INC-0002.json"));
      // No channel configured: exit 1, the record kept.
      writeFileSync(join(dir, "team", "dsops.yaml"), "version: 1\n");
      const none = await dsopsRun(["--config", "team/dsops.yaml", "leak", "report", "--summary", "third", "--notify"], { cwd: dir, env: { DSOPS_CLOCK: T0 } });
      assert.equal(none.status, 1);
      assert.match(none.stderr, /error: INC-0003 is recorded, but no notification channel is configured/);
      assert.ok(readdirSync(incidents()).includes("INC-0003.json"));
    } finally {
      await rx.close();
    }
  });
});
