import { strict as assert } from "node:assert";
import type { Connection } from "mysql2/promise";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { RotationError } from "../../provider/rotation/index";
import { MysqlTarget, nativePasswordHash } from "../../provider/rotation/targets/mysql";
import { startMariaDb, type RunningMariaDb } from "../support/mariadb";
import { targetContract, type RotationBench } from "../support/target-contract";

/**
 * Rotation of real MariaDB accounts (a server started by the test on a free loopback port): the
 * target contract (single-user, alternating-users, a failing verification rolled back,
 * emergency, crashes at every step, no value anywhere, the server's general query log
 * included), then what only this target does: server-side hashing, the server detection, an
 * account locked by its administrator that stays locked, its errors.
 */
let db: RunningMariaDb;
let admin: Connection;
/** Passwords of the `server` password_hashing service: these are sent to the server on purpose. */
const serverSent = new Set<string>();
const adminCred = () => JSON.stringify({ username: db.adminUser, password: db.adminPassword });

async function createUser(bench: RotationBench, user: string, password: string): Promise<void> {
  bench.values.add(password);
  await admin.query("CREATE USER ?@'%' IDENTIFIED BY PASSWORD ?", [user, nativePasswordHash(password)]);
}

const showCreateUser = async (user: string) => {
  const [rows] = await admin.query(`SHOW CREATE USER ?@'%'`, [user]);
  return Object.values((rows as Array<Record<string, string>>)[0])[0];
};

targetContract(
  {
    label: "mysql (real MariaDB)",
    type: "mysql",
    service: "app-db",
    badSettings: [
      [{ admin: "nope" }, /services\.x\.admin: expected a reference/],
      [{ admin: "store://a/b", bogus: 1 }, /services\.x: unknown key "bogus"/],
    ],
    minimalSettings: { admin: "store://a/b" },
    targetClass: MysqlTarget,
    capabilities: ["rotate", "revoke", "verify"],
    initialPassword: (u) => `Init-${u}-${Math.random().toString(36).slice(2)}'"\\;`,
    async setup(bench) {
      db = await startMariaDb();
      admin = await db.connect(db.adminUser, db.adminPassword);
      await admin.query("CREATE DATABASE app");
      await admin.query("CREATE TABLE app.guarded (x int)"); // no grants: a verification query on it fails
      await bench.store().put("mysql/admin", new Secret(adminCred()));
      bench.adminKeys.add("mysql/admin");
      for (const [key, user] of [
        ["app/srv", "srv"],
        ["app/locked", "locked"],
      ]) {
        const pw = `Init-${user}-${Math.random().toString(36).slice(2)}'"\\;`;
        await createUser(bench, user, pw);
        await bench.seed(key, pw);
      }
      const service = { type: "mysql", host: "127.0.0.1", port: db.port, admin: "store://local/mysql/admin" };
      return {
        service,
        moreServices: { "app-db-server-hash": { ...service, password_hashing: "server" } },
        moreVariables: {
          SRV: { from: "store://local/app/srv", rotation: { service: "app-db-server-hash", strategy: "single-user", user: "srv" } },
          LOCKED: { from: "store://local/app/locked", rotation: { service: "app-db", strategy: "single-user", user: "locked" } },
        },
        async principal(user, password) {
          await createUser(bench, user, password);
          return { username: user, password };
        },
        canLogin: (user, password) => db.canLogin(user, password),
        failingVerification: { query: "SELECT * FROM app.guarded", reason: /SELECT command denied/ },
        async afterRevoke(old) {
          assert.doesNotMatch(await showCreateUser(old.username), /ACCOUNT LOCK/, "revoke does not lock the account");
        },
        // client-native hashing: no plaintext in the log, except the server-hashing service's (sent escaped, by configuration)
        haystacks: async () => [["MariaDB general query log", db.log()]],
        clearSent: serverSent,
        async stop() {
          await admin?.end().catch(() => undefined);
          await db?.stop();
        },
      };
    },
  },
  (bench) => {
    const target = () => new MysqlTarget("app-db", bench.config.raw.services["app-db"], { resolveRef: async () => new Secret(adminCred()), clock: systemClock, configDir: bench.dir });

    it("computes the mysql_native_password hash the server computes", async () => {
      const pw = `hash-check-${Math.random()}`;
      const [rows] = await admin.query("SELECT PASSWORD(?) AS h", [pw]);
      assert.equal((rows as Array<{ h: string }>)[0].h, nativePasswordHash(pw));
    });

    it("single-user with server-side hashing (the password sent escaped)", async () => {
      const old = await bench.stored("app/srv");
      const r = await bench.rotate("SRV");
      assert.ok(!(r instanceof Error), String(r));
      const now = await bench.stored("app/srv");
      serverSent.add(now);
      assert.equal(await db.canLogin("srv", now), true);
      assert.equal(await db.canLogin("srv", old), false);
      const log = db.log();
      assert.ok(log.includes("ALTER USER"), "the general log records statements");
      assert.ok([...serverSent].some((v) => log.includes(v)), "the server-hashing service sends the password (the search can find one)");
    });

    it("detects the server (MariaDB) and sets passwords with MariaDB's statement", async () => {
      const t = target();
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
      const before = await showCreateUser("locked");
      assert.match(before, /ACCOUNT LOCK/);
      const old = await bench.stored("app/locked");
      const err = await bench.rotate("LOCKED");
      assert.ok(err instanceof RotationError, String(err));
      assert.match(err.message, /rolled back: .*login as "locked" failed: .*locked/i);
      const after = await showCreateUser("locked");
      assert.match(after, /ACCOUNT LOCK/, "the account is still locked");
      assert.equal(after, before, "the account (and its password hash) is as it was");
      assert.equal(await bench.stored("app/locked"), old);
      assert.equal((await bench.store().stagesOf("app/locked")).pending, undefined);
      assert.equal(bench.record(err.recordId as string).status, "rolled-back");
    });

    it("target errors: a missing account, a refused verification; never a value", async () => {
      const t = target();
      const secret = new Secret(`Missing-${Math.random()}'pw`);
      bench.values.add(secret.reveal());
      try {
        await assert.rejects(t.setSecret({ principal: "nobody", secret }), (e: Error) => {
          bench.outputs.push(e.message);
          return /account 'nobody'@'%' does not exist/.test(e.message);
        });
        await assert.rejects(t.verify({ principal: "single", secret }), (e: Error) => {
          bench.outputs.push(e.message);
          return /login as "single" failed: Access denied/.test(e.message);
        });
        await t.revoke({ principal: "nobody", secret }); // no account: no-op
        await t.check();
      } finally {
        await t.close();
      }
    });
  },
);
