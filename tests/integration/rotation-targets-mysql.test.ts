import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Connection } from "mysql2/promise";
import { parseConfig, type Config } from "../../provider/compose/config";
import { systemClock } from "../../provider/core/clock";
import { ConfigError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError, createTarget, type FaultPoint } from "../../provider/rotation/index";
import { MysqlTarget, nativePasswordHash } from "../../provider/rotation/targets/mysql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { startMariaDb, type RunningMariaDb } from "../support/mariadb";

/**
 * Rotation of real MariaDB accounts (a server started by the test on a free loopback port)
 * through the rotation engine: single-user, alternating-users, a failing verification rolled
 * back, a crash resumed, revoke (an unknown password), an account locked by its administrator
 * that stays locked, the server detection, and a search for every value in records, errors and
 * the server's general query log.
 */
describe("rotation: mysql target (real MariaDB)", function () {
  this.timeout(120000);
  let db: RunningMariaDb;
  let admin: Connection;
  let dir: string;
  let config: Config;
  const values = new Set<string>();
  const outputs: string[] = [];
  /** Passwords of the `server` password_hashing service: these are sent to the server on purpose. */
  const serverSent = new Set<string>();
  const env = { DSOPS_FILE_KEY: "mysql-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const engine = (opts: ConstructorParameters<typeof RotationEngine>[1] = {}) =>
    new RotationEngine(config, { env: { ...process.env, ...env }, onEvent: (m) => outputs.push(m), ...opts });

  async function canLogin(user: string, password: string): Promise<boolean> {
    try {
      const c = await db.connect(user, password);
      try {
        await c.query("SELECT 1");
        return true;
      } finally {
        await c.end();
      }
    } catch {
      return false;
    }
  }

  async function stored(key: string, version = "current"): Promise<string> {
    const v = (await store().get({ key, version })).value.reveal();
    values.add(v);
    try {
      const o = JSON.parse(v) as { password?: string };
      if (o.password) values.add(o.password);
    } catch {
      /* a plain password */
    }
    return v;
  }

  function history(): RotationRecord[] {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n"))
      if (line.trim()) recs.set((JSON.parse(line) as RotationRecord).id, JSON.parse(line) as RotationRecord);
    return [...recs.values()];
  }

  async function createUser(user: string, password: string): Promise<void> {
    values.add(password);
    await admin.query("CREATE USER ?@'%' IDENTIFIED BY PASSWORD ?", [user, nativePasswordHash(password)]);
  }

  async function seed(key: string, value: string): Promise<void> {
    values.add(value);
    await store().put(key, new Secret(value));
  }

  before(async () => {
    db = await startMariaDb();
    admin = await db.connect(db.adminUser, db.adminPassword);
    await admin.query("CREATE DATABASE app");
    await admin.query("CREATE TABLE app.guarded (x int)"); // no grants: a verification query on it fails
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-mysql-"));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db:
    type: mysql
    host: 127.0.0.1
    port: ${db.port}
    admin: "store://local/mysql/admin"
  app-db-server-hash:
    type: mysql
    host: 127.0.0.1
    port: ${db.port}
    admin: "store://local/mysql/admin"
    password_hashing: server
envs:
  prod:
    DB_PASSWORD:
      from: "store://local/app/db-password"
      rotation: { service: app-db, strategy: single-user, user: app }
    DB_LOGIN:
      from: "store://local/app/db-login"
      rotation: { service: app-db, strategy: alternating-users, users: [app_a, app_b], generator: { length: 40, format: alphanumeric } }
    BAD:
      from: "store://local/app/bad"
      rotation: { service: app-db, strategy: single-user, user: bad, verification: { query: "SELECT * FROM app.guarded" } }
    CRASH:
      from: "store://local/app/crash"
      rotation: { service: app-db, strategy: single-user, user: crash }
    CRASH_ALT:
      from: "store://local/app/crash-alt"
      rotation: { service: app-db, strategy: alternating-users, users: [crash_a, crash_b] }
    SRV:
      from: "store://local/app/srv"
      rotation: { service: app-db-server-hash, strategy: single-user, user: srv }
    EMER:
      from: "store://local/app/emer"
      rotation: { service: app-db, strategy: alternating-users, users: [emer_a, emer_b] }
    LOCKED:
      from: "store://local/app/locked"
      rotation: { service: app-db, strategy: single-user, user: locked }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    await store().put("mysql/admin", new Secret(JSON.stringify({ username: db.adminUser, password: db.adminPassword })));
    const init = (u: string) => `Init-${u}-${Math.random().toString(36).slice(2)}'"\\;`;
    for (const [key, user] of [
      ["app/db-password", "app"],
      ["app/bad", "bad"],
      ["app/crash", "crash"],
      ["app/srv", "srv"],
      ["app/locked", "locked"],
    ]) {
      const pw = init(user);
      await createUser(user, pw);
      await seed(key, pw);
    }
    for (const [key, a, b] of [
      ["app/db-login", "app_a", "app_b"],
      ["app/emer", "emer_a", "emer_b"],
      ["app/crash-alt", "crash_a", "crash_b"],
    ]) {
      const pw = init(a);
      await createUser(a, pw);
      await createUser(b, init(b));
      await seed(key, JSON.stringify({ username: a, password: pw }));
    }
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    await db?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("checks its settings with the YAML path", () => {
    const ctx = { resolveRef: async () => new Secret(""), clock: systemClock, configDir: "." };
    assert.throws(() => createTarget("x", { type: "mysql", admin: "nope" }, ctx), (e: unknown) => e instanceof ConfigError && /services\.x\.admin: expected a reference/.test((e as Error).message));
    assert.throws(() => createTarget("x", { type: "mysql", admin: "store://a/b", bogus: 1 }, ctx), /services\.x: unknown key "bogus"/);
    const t = createTarget("x", { type: "mysql", admin: "store://a/b" }, ctx);
    assert.ok(t instanceof MysqlTarget);
    assert.deepEqual([...t.capabilities].sort(), ["revoke", "rotate", "verify"]);
  });

  it("computes the mysql_native_password hash the server computes", async () => {
    const pw = `hash-check-${Math.random()}`;
    const [rows] = await admin.query("SELECT PASSWORD(?) AS h", [pw]);
    assert.equal((rows as Array<{ h: string }>)[0].h, nativePasswordHash(pw));
  });

  it("single-user: changes the password in place, verifies it, keeps the old version as previous", async () => {
    const old = await stored("app/db-password");
    const e = engine();
    try {
      const r = await e.rotate("prod", "DB_PASSWORD");
      assert.equal(r.record.status, "succeeded");
      assert.deepEqual(
        r.record.steps.map((s) => `${s.name}:${s.outcome}`),
        ["generate:ok", "stage:ok", "apply:ok", "verify:ok", "promote:ok", "retire:skipped"],
      );
    } finally {
      await e.close();
    }
    const now = await stored("app/db-password");
    assert.notEqual(now, old);
    assert.equal(await canLogin("app", now), true);
    assert.equal(await canLogin("app", old), false);
    assert.equal(await stored("app/db-password", "previous"), old);
  });

  it("single-user with server-side hashing (the password sent escaped)", async () => {
    const old = await stored("app/srv");
    const e = engine();
    try {
      await e.rotate("prod", "SRV");
    } finally {
      await e.close();
    }
    const now = await stored("app/srv");
    serverSent.add(now);
    assert.equal(await canLogin("srv", now), true);
    assert.equal(await canLogin("srv", old), false);
  });

  it("alternating-users: changes the inactive user and makes it current; the previous user keeps working", async () => {
    const first = JSON.parse(await stored("app/db-login")) as { username: string; password: string };
    assert.equal(first.username, "app_a");
    const e = engine();
    try {
      await e.rotate("prod", "DB_LOGIN");
      const second = JSON.parse(await stored("app/db-login")) as { username: string; password: string };
      assert.equal(second.username, "app_b");
      assert.match(second.password, /^[A-Za-z0-9]{40}$/);
      assert.equal(await canLogin("app_b", second.password), true);
      assert.equal(await canLogin("app_a", first.password), true, "the previous user still works until the next rotation");
      await e.rotate("prod", "DB_LOGIN");
      const third = JSON.parse(await stored("app/db-login")) as { username: string; password: string };
      assert.equal(third.username, "app_a");
      assert.equal(await canLogin("app_a", third.password), true);
      assert.equal(await canLogin("app_a", first.password), false);
      assert.equal(await canLogin("app_b", second.password), true);
    } finally {
      await e.close();
    }
  });

  it("a failing verification rolls back: the old password still works, nothing pending, the record says why", async () => {
    const old = await stored("app/bad");
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "BAD");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, /rolled back: .*SELECT command denied/);
    assert.equal(await stored("app/bad"), old);
    assert.equal(await canLogin("bad", old), true);
    assert.equal((await store().stagesOf("app/bad")).pending, undefined);
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.equal(rec.status, "rolled-back");
    assert.deepEqual(
      rec.steps.map((s) => `${s.name}:${s.outcome}`),
      ["generate:ok", "stage:ok", "apply:ok", "verify:failed", "restore:ok", "discard:ok"],
    );
  });

  const points = ["generate", "stage", "apply", "verify", "promote", "retire"].flatMap((x) => [`before:${x}`, `after:${x}`]) as FaultPoint[];
  for (const [variable, key, user] of [
    ["CRASH", "app/crash", "crash"],
    ["CRASH_ALT", "app/crash-alt", undefined],
  ] as const) {
    it(`${variable}: a run that dies at each of ${points.length} points is finished by the next run`, async () => {
      for (const point of points) {
        const crashing = engine({
          fault: (p) => {
            if (p === point) throw new Error(`simulated crash at ${p}`);
          },
        });
        await assert.rejects(crashing.rotate("prod", variable), /simulated crash/);
        await crashing.close();
        const stages = await store().stagesOf(key);
        if (user) {
          // single-user: the current one works, or the pending one (set at the target, not yet promoted) does.
          const cur = await canLogin(user, await stored(key));
          const pend = stages.pending ? await canLogin(user, await stored(key, stages.pending)) : false;
          assert.ok(cur || pend, `${point}: a stored credential works right after the crash`);
        } else {
          const c = JSON.parse(await stored(key)) as { username: string; password: string };
          assert.equal(await canLogin(c.username, c.password), true, `${point}: the stored current credential works right after the crash`);
        }
        const e = engine();
        try {
          const r = await e.rotate("prod", variable);
          assert.equal(r.resumed, true, point);
          assert.equal(r.record.status, "succeeded", point);
        } finally {
          await e.close();
        }
        const now = await stored(key);
        const c = user ? { username: user, password: now } : (JSON.parse(now) as { username: string; password: string });
        assert.equal(await canLogin(c.username, c.password), true, `${point}: current works after the resume`);
        assert.equal((await store().stagesOf(key)).pending, undefined, `${point}: nothing left pending`);
      }
    });
  }

  it("detects the server (MariaDB) and sets passwords with MariaDB's statement", async () => {
    const t = new MysqlTarget("app-db", config.raw.services["app-db"], {
      resolveRef: async () => new Secret(JSON.stringify({ username: db.adminUser, password: db.adminPassword })),
      clock: systemClock,
      configDir: dir,
    });
    try {
      const info = await t.serverInfo();
      assert.equal(info.flavor, "mariadb");
      assert.match(info.version, /MariaDB/i);
      await t.prepare(); // MariaDB: nothing refused
    } finally {
      await t.close();
    }
  });

  it("an account its administrator locked (ACCOUNT LOCK) stays locked: verification fails, the rotation rolls back, the password hash is the same", async () => {
    await admin.query("ALTER USER 'locked'@'%' ACCOUNT LOCK");
    const account = async () => {
      const [rows] = await admin.query("SHOW CREATE USER 'locked'@'%'");
      return Object.values((rows as Array<Record<string, string>>)[0])[0];
    };
    const before = await account();
    assert.match(before, /ACCOUNT LOCK/);
    const old = await stored("app/locked");
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "LOCKED");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, /rolled back: .*login as "locked" failed: .*locked/i);
    const after = await account();
    assert.match(after, /ACCOUNT LOCK/, "the account is still locked");
    assert.equal(after, before, "the account (and its password hash) is as it was");
    assert.equal(await stored("app/locked"), old);
    assert.equal((await store().stagesOf("app/locked")).pending, undefined);
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.equal(rec.status, "rolled-back");
  });

  it("emergency (alternating-users): revokes the old user at once (an unknown password, no lock); a later rotation gives it a new one", async () => {
    const e = engine();
    try {
      const old = JSON.parse(await stored("app/emer")) as { username: string; password: string };
      await e.rotate("prod", "EMER", { strategy: "emergency", reason: "leaked" });
      const now = JSON.parse(await stored("app/emer")) as { username: string; password: string };
      assert.equal(now.username, "emer_b");
      assert.equal(await canLogin("emer_b", now.password), true);
      assert.equal(await canLogin(old.username, old.password), false, "the old password no longer works");
      const [rows] = await admin.query("SHOW CREATE USER 'emer_a'@'%'");
      assert.doesNotMatch(Object.values((rows as Array<Record<string, string>>)[0])[0], /ACCOUNT LOCK/, "revoke does not lock the account");
      await e.rotate("prod", "EMER");
      const again = JSON.parse(await stored("app/emer")) as { username: string; password: string };
      assert.equal(again.username, "emer_a");
      assert.equal(await canLogin("emer_a", again.password), true, "the revoked account gets a new password");
    } finally {
      await e.close();
    }
  });

  it("target errors: a missing account, a refused verification; never a value", async () => {
    const t = new MysqlTarget("app-db", config.raw.services["app-db"], {
      resolveRef: async () => new Secret(JSON.stringify({ username: db.adminUser, password: db.adminPassword })),
      clock: systemClock,
      configDir: dir,
    });
    const secret = new Secret(`Missing-${Math.random()}'pw`);
    values.add(secret.reveal());
    try {
      await assert.rejects(t.setSecret({ principal: "nobody", secret }), (e: Error) => {
        outputs.push(e.message);
        return /account 'nobody'@'%' does not exist/.test(e.message);
      });
      await assert.rejects(t.verify({ principal: "app", secret }), (e: Error) => {
        outputs.push(e.message);
        return /login as "app" failed: Access denied/.test(e.message);
      });
      await t.revoke({ principal: "nobody", secret }); // no account: no-op
      await t.check();
    } finally {
      await t.close();
    }
  });

  it("no value in records, events, errors, or the server's query log (the plaintext never reaches the server)", () => {
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    const log = db.log();
    assert.ok(log.includes("ALTER USER"), "the general log records statements");
    for (const v of values) {
      assert.ok(!recs.includes(v), "a value is in the history");
      for (const o of outputs) assert.ok(!o.includes(v), "a value is in an event or error");
    }
    // client-native hashing: no plaintext in the log, except the server-hashing service's (sent escaped, by configuration)
    for (const v of values) if (!serverSent.has(v)) assert.ok(!log.includes(v), `a value (${v.length} chars) is in the query log`);
    assert.ok([...serverSent].some((v) => log.includes(v)), "the server-hashing service sends the password (the search can find one)");
  });
});
