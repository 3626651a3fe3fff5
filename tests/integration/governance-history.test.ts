import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { ConfigError } from "../../provider/core/errors";
import { parseConfig } from "../../provider/compose/config";
import { FileHistory } from "../../provider/rotation/history/file";
import { PostgresHistory } from "../../provider/rotation/history/postgres";
import type { HistoryBackend } from "../../provider/rotation/history/types";
import type { ApprovalRecord } from "../../provider/rotation/governance";
import { mintApprovalToken, verifyApprovalToken } from "../../provider/rotation/approval-identity";
import type { RotationRecord } from "../../provider/rotation/types";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Approval and break-glass records share the rotation history backends (the file and a real
 * PostgreSQL 15 table) without showing up among rotation records; `rotation.approval` settings
 * are checked at load, naming the field; approval tokens are checked (signature, expiry, shape).
 */
describe("governance records in the history backends; approval settings and tokens", function () {
  this.timeout(60_000);
  let pg: RunningPostgres | undefined;
  let dir: string;

  const rotation: RotationRecord = {
    id: "rot-1",
    kind: "rotate",
    secret: "store://local/app/a",
    env: "prod",
    variable: "A",
    service: "db",
    targetType: "postgresql",
    strategy: "single-user",
    who: "x@h",
    startedAt: "2026-11-20T10:00:00.000Z",
    status: "succeeded",
    steps: [],
  };
  const approval: ApprovalRecord = {
    id: "apr-1",
    kind: "approval",
    secret: "store://local/app/a",
    env: "prod",
    variable: "A",
    service: "db",
    status: "pending",
    requestedBy: "scheduler",
    startedAt: "2026-11-20T11:00:00.000Z",
    expiresAt: "2026-11-21T11:00:00.000Z",
    required: 1,
    approvers: [],
    identity: "os",
    policyPath: "envs.prod.A.rotation.approval",
    decisions: [],
  };

  async function contract(h: HistoryBackend): Promise<void> {
    await h.save(rotation);
    await h.save(approval as unknown as RotationRecord);
    assert.deepEqual((await h.list()).map((r) => r.id), ["rot-1"]);
    assert.deepEqual((await h.list({ secret: rotation.secret })).map((r) => r.id), ["rot-1"]);
    assert.deepEqual((await h.list({ governance: true })).map((r) => r.id), ["apr-1"]);
    assert.deepEqual((await h.list({ governance: true, env: "prod", variable: "A" })).map((r) => r.id), ["apr-1"]);
    assert.deepEqual(await h.list({ governance: true, env: "dev" }), []);
    // Saved again with a decision: the last snapshot wins.
    await h.save({ ...approval, status: "granted", decisions: [{ by: "alice", identity: "os", decision: "granted", reason: "ok", at: "2026-11-20T12:00:00.000Z" }] } as unknown as RotationRecord);
    const [again] = (await h.list({ governance: true })) as unknown as ApprovalRecord[];
    assert.equal(again.status, "granted");
    assert.equal(again.decisions[0].by, "alice");
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-gov-history-"));
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("file history: rotation records and governance records are listed apart", async () => {
    await contract(new FileHistory(join(dir, "h.jsonl"), new ManualClock(0)));
  });

  it("postgres history (real PostgreSQL 15): rotation records and governance records are listed apart", async () => {
    const p = pg as RunningPostgres;
    const h = new PostgresHistory({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" }, "gov_history", [p.adminPassword]);
    try {
      await contract(h);
    } finally {
      await h.close();
    }
  });

  it("postgres history: first uses of a new table from many sessions at once all succeed (the tables are made one session at a time)", async () => {
    const p = pg as RunningPostgres;
    for (let round = 0; round < 3; round++) {
      const hs = Array.from({ length: 8 }, () => new PostgresHistory({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" }, `race_history_${round}`, [p.adminPassword]));
      try {
        const got = await Promise.allSettled(hs.map((h) => h.list({})));
        assert.deepEqual(
          got.filter((g) => g.status === "rejected").map((g) => String((g as PromiseRejectedResult).reason)),
          [],
        );
      } finally {
        await Promise.all(hs.map((h) => h.close()));
      }
    }
  });

  it("rotation.approval settings are checked at load, naming the field", () => {
    const head = `version: 1\nsecretStores:\n  local: { type: file, path: ./s.store }\nservices:\n  db: { type: postgresql, admin: "store://local/a" }\nenvs:\n  prod:\n    A: { from: "store://local/x", rotation: { service: db, user: u, approval: `;
    const problems = (approval: string): string => {
      try {
        parseConfig(`${head}${approval} } }\n`, { file: "/x/dsops.yaml", label: "dsops.yaml", env: {} });
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.problems.join("\n");
      }
      return "";
    };
    assert.equal(problems("{ approvers: [alice] }"), "");
    assert.match(problems("{ identity: token }"), /envs\.prod\.A\.rotation\.approval\.token_key: identity token needs the HMAC key/);
    assert.match(problems("{ identity: token, token_key: s3cr3t }"), /envs\.prod\.A\.rotation\.approval\.token_key: a store:\/\/ reference or env:NAME, never the key itself/);
    assert.match(problems("{ required: 2, approvers: [alice] }"), /envs\.prod\.A\.rotation\.approval\.required: 2 approvals required, but approvers lists only 1/);
    assert.match(problems("{ expires: soon }"), /envs\.prod\.A\.rotation\.approval\.expires/);
    assert.match(problems("{ identity: ldap }"), /envs\.prod\.A\.rotation\.approval\.identity/);
    assert.match(problems("{ approver: [alice] }"), /envs\.prod\.A\.rotation\.approval\.approver: unknown key/);
  });

  it("approval tokens: the subject of a good token; forged, other key, expired, malformed are refused", () => {
    const key = "k-" + Math.random().toString(36).slice(2);
    const t = mintApprovalToken(key, "carol@example.test", Date.parse("2026-11-20T13:00:00Z"));
    assert.equal(verifyApprovalToken(key, t, Date.parse("2026-11-20T12:00:00Z"), "f"), "carol@example.test");
    assert.throws(() => verifyApprovalToken("other", t, Date.parse("2026-11-20T12:00:00Z"), "f.token_key"), /the signature does not match the key of f\.token_key/);
    const [v, , exp, sig] = t.split(".");
    const forged = [v, Buffer.from("mallory").toString("base64url"), exp, sig].join(".");
    assert.throws(() => verifyApprovalToken(key, forged, Date.parse("2026-11-20T12:00:00Z"), "f"), /signature does not match/);
    assert.throws(() => verifyApprovalToken(key, t, Date.parse("2026-11-20T13:00:00Z"), "f"), /expired at 2026-11-20T13:00:00\.000Z/);
    assert.throws(() => verifyApprovalToken(key, "garbage", 0, "f"), (e: Error) => /malformed/.test(e.message) && !e.message.includes("garbage"));
  });
});
