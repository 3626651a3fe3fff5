import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { NotFoundError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { FileHistory } from "../../provider/rotation/history/file";
import { FileLocks } from "../../provider/rotation/lock";
import { RotationInProgressError } from "../../provider/rotation/errors";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { hasStaging } from "../../provider/stores/types";

describe("rotation: file store stages, file locks, file history", () => {
  let dir: string;
  const clock = new ManualClock(Date.parse("2026-03-01T00:00:00Z"));
  const env = { DSOPS_FILE_KEY: "unit-key" };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock, env });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "dsops-rot-unit-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("pending is invisible to readers until promoted; promote keeps the old current as previous; discard drops it", async () => {
    const s = store();
    assert.ok(hasStaging(s));
    await s.put("k", new Secret("one-value"));
    const p = await s.putPending("k", new Secret("two-value"));
    assert.equal((await s.get({ key: "k" })).value.reveal(), "one-value");
    assert.equal((await s.get({ key: "k", version: "pending" })).value.reveal(), "two-value");
    assert.deepEqual(await s.stagesOf("k"), { current: "1", pending: p.versionId });
    await s.promote("k", p.versionId);
    await s.promote("k", p.versionId); // idempotent
    assert.deepEqual(await s.stagesOf("k"), { current: "2", previous: "1" });
    assert.equal((await s.get({ key: "k", version: "previous" })).value.reveal(), "one-value");
    const q = await s.putPending("k", new Secret("three-value"));
    await s.discardPending("k", "999"); // another version: no-op
    assert.equal((await s.stagesOf("k")).pending, q.versionId);
    await s.discardPending("k", q.versionId);
    await s.discardPending("k"); // nothing pending: no-op
    assert.deepEqual(await s.stagesOf("k"), { current: "2", previous: "1" });
    await assert.rejects(s.get({ key: "k", version: "pending" }), NotFoundError);
    // Ids are never reused after a discard.
    assert.equal((await s.putPending("k", new Secret("four-value"))).versionId, "4");
    // Rolling back = promoting the previous version.
    await s.promote("k", "1");
    assert.deepEqual(await s.stagesOf("k"), { current: "1", previous: "2", pending: "4" });
  });

  it("reads a store file written before stages existed", async () => {
    const s = store();
    await s.put("old", new Secret("legacy-value"));
    const data = JSON.parse(readFileSync(join(dir, "s.store"), "utf8")) as { secrets: Record<string, Record<string, unknown>> };
    delete data.secrets.old.previous;
    delete data.secrets.old.pending;
    writeFileSync(join(dir, "s.store"), JSON.stringify(data));
    assert.equal((await store().get({ key: "old" })).value.reveal(), "legacy-value");
    assert.deepEqual(await store().stagesOf("old"), { current: "1" });
  });

  it("a lock is refused while its owner lives, naming it, and taken over once its pid is dead", async () => {
    const locks = new FileLocks(join(dir, "locks"), clock);
    mkdirSync(join(dir, "locks"));
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    const deadPid = Number(dead.stdout);
    writeFileSync(locks.pathOf("s1"), JSON.stringify({ pid: deadPid, host: hostname(), who: "gone@host", since: "2026-01-01T00:00:00.000Z" }));
    const held = await locks.acquire("s1", { pid: process.pid, host: hostname(), who: "me@here", since: "2026-03-01T00:00:00.000Z" });
    assert.equal(locks.holder("s1")?.who, "me@here");
    // A live owner (the parent of this process) on this host: refused.
    writeFileSync(locks.pathOf("s2"), JSON.stringify({ pid: process.ppid, host: hostname(), who: "ops@box", since: "x", rotationId: "rot-1" }));
    await assert.rejects(locks.acquire("s2", { pid: process.pid, host: hostname(), who: "me", since: "y" }), (e: unknown) => {
      assert.ok(e instanceof RotationInProgressError);
      assert.match(e.message, /in progress by ops@box \(pid \d+ on .*rotation rot-1\)/);
      return true;
    });
    // Owners on other hosts are never taken over.
    writeFileSync(locks.pathOf("s3"), JSON.stringify({ pid: deadPid, host: "another-host", who: "x@another-host", since: "z" }));
    await assert.rejects(locks.acquire("s3", { pid: process.pid, host: hostname(), who: "me", since: "y" }), RotationInProgressError);
    await held.release();
    assert.equal(locks.holder("s1"), undefined);
  });

  it("history: the last snapshot of a record wins, a torn last line is skipped, the file is 0600", async () => {
    const h = new FileHistory(join(dir, "h.jsonl"), clock);
    const rec: RotationRecord = { id: "rot-1", kind: "rotate", secret: "store://l/k", env: "e", variable: "V", service: "s", targetType: "postgresql", strategy: "single-user", who: "me", startedAt: "2026-03-01T00:00:00.000Z", status: "running", steps: [] };
    await h.save(rec);
    await h.save({ ...rec, status: "succeeded" });
    await h.save({ ...rec, id: "rot-2", startedAt: "2026-03-02T00:00:00.000Z" });
    writeFileSync(join(dir, "h.jsonl"), '{"id":"rot-3","sta', { flag: "a" });
    const again = new FileHistory(join(dir, "h.jsonl"), clock);
    assert.deepEqual((await again.list()).map((r) => `${r.id}:${r.status}`), ["rot-2:running", "rot-1:succeeded"]);
    assert.deepEqual((await again.list({ status: ["running"] })).map((r) => r.id), ["rot-2"]);
    // Appends by another writer are picked up by an open reader.
    await h.save({ ...rec, id: "rot-4", startedAt: "2026-03-03T00:00:00.000Z" });
    assert.equal((await again.list({ limit: 1 }))[0].id, "rot-4");
    assert.equal(statSync(join(dir, "h.jsonl")).mode & 0o777, 0o600);
  });
});
