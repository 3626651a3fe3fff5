// Chaos on a create-type target: a real Redis 7 (started by the test on a loopback port) whose ACL users get a second password from two-secret's `create`; built CLI.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { redisPasswordHash, userPasswords } from "../../provider/rotation/targets/redis";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { startRedis, type RunningRedis } from "../support/redis";

/**
 * A target-timeout injected on `create` (the password is added at Redis, the answer lost) and a
 * kill -9 right after `create` (before the new credential is staged) must not leave the created
 * password behind: after the chaos run, and after the next run that recovers the killed one,
 * the user's passwords at Redis are exactly the stored ones (current, and the previous one in
 * its grace period). PostgreSQL has no create-type target (its roles are set in place), so the
 * create path is proven on Redis ACL users.
 */
describe("dsops chaos run on a create-type target (two-secret on real Redis ACL users): no created credential is left behind", function () {
  this.timeout(120000);
  let redis: RunningRedis | undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-create-"));
  const env = { DSOPS_FILE_KEY: "chaos-create-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env: { ...env, ...extra } });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  /** The stored credential of a version ({username, password}), noted for the leak search. */
  async function stored(key: string, version = "current"): Promise<{ username: string; password: string }> {
    const v = (await store().get({ key, version })).value.reveal();
    const c = JSON.parse(v) as { username: string; password: string };
    values.add(c.password);
    return c;
  }
  const passwordsOf = async (user: string) => userPasswords(await (redis as RunningRedis).command(["ACL", "GETUSER", user])).sort();
  const history = (): RotationRecord[] => {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (line.trim()) recs.set((JSON.parse(line) as RotationRecord).id, JSON.parse(line) as RotationRecord);
    return [...recs.values()];
  };

  before(async () => {
    redis = await startRedis();
    await store().put("redis/admin", new Secret(JSON.stringify({ username: redis.adminUser, password: redis.adminPassword })));
    values.add(redis.adminPassword);
    for (const u of ["t_timeout", "t_kill", "t_store"]) {
      const pw = `Init-${u}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await redis.command(["ACL", "SETUSER", u, "on", `#${redisPasswordHash(pw)}`, "~app:*", "+ping"]);
      await store().put(`app/${u}`, new Secret(JSON.stringify({ username: u, password: pw })));
    }
    const two = (u: string) => ({ from: `store://local/app/${u}`, rotation: { service: "cache", strategy: "two-secret", user: u } });
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { cache: { type: "redis", host: "127.0.0.1", port: redis.port, admin: "store://local/redis/admin" } },
        envs: { staging: { TIMEOUT: two("t_timeout"), KILL: two("t_kill"), STORE: two("t_store") } },
        chaos: { envs: ["staging"] },
      }),
    );
  });
  after(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("target-timeout on create: the password reached Redis, its answer was lost; the rollback revokes it (only the stored password remains); verdict proven", async () => {
    const old = await stored("app/t_timeout");
    const file = join(dir, "timeout.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "TIMEOUT", "--inject", "target-timeout", "--timeout", "100ms", "--report", file]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const report = JSON.parse(readFileSync(file, "utf8")) as { verdict: string; experiments: Array<{ step: string; verdict: string; rotation: { id: string; status: string; steps: string[] }; after: { loginWorks: boolean; pendingVersion: string | null } }> };
    outputs.push(JSON.stringify(report));
    const x = report.experiments[0];
    assert.equal(report.verdict, "rollback path proven");
    assert.equal(x.step, "apply");
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["apply:failed", "restore:ok", "discard:ok"], "restore revoked the created password (it used to be skipped: nothing known to revoke)");
    assert.equal(x.after.loginWorks, true);
    assert.equal(x.after.pendingVersion, null);
    // The target: exactly the stored password is valid; the one create added is gone.
    assert.deepEqual(await passwordsOf("t_timeout"), [redisPasswordHash(old.password)]);
    assert.deepEqual(await stored("app/t_timeout"), old);
    assert.equal(await redis?.canLogin("t_timeout", old.password), true);
    assert.equal((await store().stagesOf("app/t_timeout")).pending, undefined);
    // The history holds no value.
    const text = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) assert.ok(!text.includes(v), "a value in the history");
  });

  it("kill -9 right after create (before staging), then the next run: the orphan password is revoked, the rotation finishes; Redis holds only the stored passwords", async () => {
    const old = await stored("app/t_kill");
    const file = join(dir, "kill.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "KILL", "--inject", "kill-at:apply", "--report", file]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const report = JSON.parse(readFileSync(file, "utf8")) as { verdict: string; experiments: Array<{ run: { signal: string | null }; recovery?: { exitCode: number | null }; verdict: string; rotation: { id: string } }> };
    outputs.push(JSON.stringify(report));
    const x = report.experiments[0];
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.verdict, "proven");
    const now = await stored("app/t_kill");
    assert.notEqual(now.password, old.password);
    // The killed run's password (created, never staged) was revoked by the recovery; what remains is the new current and the old one (two-secret's grace).
    const have = await passwordsOf("t_kill");
    const allowed = new Set([redisPasswordHash(now.password), redisPasswordHash(old.password)]);
    assert.ok(have.every((h) => allowed.has(h)), `only the stored passwords are valid at Redis (have ${have.length})`);
    assert.ok(have.includes(redisPasswordHash(now.password)));
    assert.equal(await redis?.canLogin("t_kill", now.password), true);
    const rec = history().find((h) => h.id === x.rotation.id);
    assert.ok(rec && (rec.status === "succeeded" || rec.status === "grace"), rec?.status);
    assert.match(outputs.join("\n"), /the credential an interrupted create may have made for "t_kill" was revoked/);
  });

  it("kill -9 right after create by hand (DSOPS_FAULT=after:apply on secrets rotate), then secrets rotate: no extra password", async () => {
    const before = await stored("app/t_timeout");
    const k = await cli(["secrets", "rotate", "--env", "staging", "--var", "TIMEOUT"], { DSOPS_FAULT: "after:apply" });
    assert.equal(k.status, null, k.stderr);
    assert.equal((await passwordsOf("t_timeout")).length, 2, "the killed run left its created password at Redis");
    const r = await cli(["secrets", "rotate", "--env", "staging", "--var", "TIMEOUT"]);
    assert.equal(r.status, 0, r.stderr);
    const now = await stored("app/t_timeout");
    const have = await passwordsOf("t_timeout");
    assert.deepEqual(have, [redisPasswordHash(now.password), redisPasswordHash(before.password)].sort(), "new current + old (grace); the orphan is gone");
  });

  it("store-write-failure on a create-type target: the value's write (before create) is refused, nothing is created at Redis; verdict proven", async () => {
    const old = await stored("app/t_store");
    const before = await passwordsOf("t_store");
    const file = join(dir, "store.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "STORE", "--inject", "store-write-failure", "--report", file]);
    const report = JSON.parse(readFileSync(file, "utf8")) as { experiments: Array<{ step: string; verdict: string; problems: string[]; rotation: { status: string; steps: string[] } }> };
    outputs.push(JSON.stringify(report));
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const x = report.experiments[0];
    assert.equal(x.verdict, "proven", x.problems.join("; "));
    assert.equal(x.step, "apply");
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["apply:failed", "restore:skipped", "discard:ok"]);
    assert.deepEqual(await passwordsOf("t_store"), before, "nothing was created at Redis");
    assert.deepEqual(await stored("app/t_store"), old);
  });

  it("no value in any output or report", () => {
    const text = outputs.join("\n");
    for (const v of values) assert.ok(!text.includes(v), "a value is in an output");
  });
});
