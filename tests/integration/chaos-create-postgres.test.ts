// Chaos on a create-type target on a real PostgreSQL 15: a test plugin target (written below, loaded through dsops.yaml plugins:) whose `create` makes a new login role per rotation (create-user), with two-secret; built CLI.
import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "pg";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * PostgreSQL's own target sets passwords in place (no `create`), so the create-user path is a
 * plugin target here: `create(principal)` makes the role `<principal>_<hex>` with the value as
 * its password (sent as a SCRAM verifier), `list` names those roles, `revoke` drops one, `verify`
 * logs in as it. A lost
 * answer of `create` (target-timeout) and a kill -9 right after it must leave no extra role:
 * the roles at the server afterwards are exactly the stored credentials' (current, and the
 * previous one in two-secret's grace).
 */
const ROOT = resolve(__dirname, "../../..");
const PLUGIN = `"use strict";
const { z, Secret, VerificationError, TargetError } = require(${JSON.stringify(join(ROOT, "dist/provider/library/plugin.js"))});
const { Client, escapeIdentifier, escapeLiteral } = require(${JSON.stringify(require.resolve("pg"))});
const { scramVerifier } = require(${JSON.stringify(join(ROOT, "dist/provider/rotation/targets/postgresql.js"))});
const { randomBytes } = require("node:crypto");
module.exports = {
  apiVersion: 1,
  name: "pg-create-user",
  targets: {
    "pgc.role": {
      settings: z.strictObject({ port: z.number().int(), admin: z.string().startsWith("store://") }),
      capabilities: ["create", "revoke", "verify"],
      create: (name, settings, ctx) => {
        const admin = async (fn) => {
          const a = JSON.parse((await ctx.resolveRef(settings.admin)).reveal());
          const c = new Client({ host: "127.0.0.1", port: settings.port, user: a.username, password: a.password, database: "postgres" });
          c.on("error", () => undefined);
          await c.connect();
          try { return await fn(c); } finally { await c.end(); }
        };
        return {
          name, type: "pgc.role", capabilities: new Set(["create", "revoke", "verify"]), valueRules: { minLength: 8, maxLength: 100, forbidden: "\\0" },
          async create(principal, value) {
            const secret = value ?? new Secret(randomBytes(18).toString("base64url"));
            const role = principal + "_" + randomBytes(4).toString("hex");
            await admin((c) => c.query("CREATE ROLE " + escapeIdentifier(role) + " LOGIN PASSWORD " + escapeLiteral(scramVerifier(secret.reveal()))));
            return { principal: role, secret };
          },
          // The roles made for a principal (ids), so what a lost or killed create made is found.
          async list(principal) {
            return admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", [principal.replace(/[_%\\\\]/g, "\\\\$&") + "\\\\_%"])).rows.map((r) => r.rolname));
          },
          async revoke(cred) {
            await admin((c) => c.query("DROP ROLE IF EXISTS " + escapeIdentifier(cred.principal)));
          },
          async verify(cred) {
            const c = new Client({ host: "127.0.0.1", port: settings.port, user: cred.principal, password: cred.secret.reveal(), database: "postgres" });
            c.on("error", () => undefined);
            try { await c.connect(); await c.query("SELECT 1"); } catch (e) { throw new VerificationError('login as "' + cred.principal + '" failed: ' + (e.code || "refused")); } finally { await c.end().catch(() => undefined); }
          },
        };
      },
    },
  },
};
`;

describe("dsops chaos run on a create-type target on real PostgreSQL 15 (create-user plugin target, two-secret): no created role is left behind", function () {
  this.timeout(120000);
  let pg: RunningPostgres | undefined;
  let admin: Client | undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-pgcreate-"));
  const env = { DSOPS_FILE_KEY: "chaos-pgc-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env: { ...env, ...extra } });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  async function stored(key: string): Promise<{ username: string; password: string }> {
    const c = JSON.parse((await store().get({ key, version: "current" })).value.reveal()) as { username: string; password: string };
    values.add(c.password);
    return c;
  }
  /** The login roles made for a principal (`<principal>` and `<principal>_<hex>`). */
  async function roles(principal: string): Promise<string[]> {
    const r = await (admin as Client).query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname = $1 OR rolname LIKE $2 ORDER BY rolname", [principal, `${principal}\\_%`]);
    return r.rows.map((x) => x.rolname);
  }

  before(async () => {
    pg = await startPostgres();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    values.add(pg.adminPassword);
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    for (const p of ["ct", "ck", "ht", "hk"]) {
      const pw = `Init-${p}-${Math.random().toString(36).slice(2)}`;
      values.add(pw);
      await admin.query(`CREATE ROLE ${p}_init LOGIN PASSWORD '${pw}'`);
      await store().put(`app/${p}`, new Secret(JSON.stringify({ username: `${p}_init`, password: pw })));
    }
    // Roles an administrator made by hand before any rotation, named like the target's own (`<principal>_…`): never revoked.
    for (const p of ["ht", "hk"]) await admin.query(`CREATE ROLE ${p}_handmade LOGIN PASSWORD 'Hand-${p}-pw'`);
    values.add("Hand-ht-pw").add("Hand-hk-pw");
    mkdirSync(join(dir, "plugins", "pgc"), { recursive: true });
    writeFileSync(join(dir, "plugins", "pgc", "index.js"), PLUGIN);
    const two = (p: string) => ({ from: `store://local/app/${p}`, rotation: { service: "db", strategy: "two-secret", user: p } });
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        plugins: ["./plugins/pgc"],
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { db: { type: "pgc.role", port: pg.port, admin: "store://local/pg/admin" } },
        envs: { staging: { TIMEOUT: two("ct"), KILL: two("ck"), HAND_TIMEOUT: two("ht"), HAND_KILL: two("hk") } },
        chaos: { envs: ["staging"] },
      }),
    );
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("target-timeout on create: the role was created, its answer lost; the rollback drops it: only the stored role remains; verdict proven", async () => {
    const old = await stored("app/ct");
    const file = join(dir, "timeout.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "TIMEOUT", "--inject", "target-timeout", "--timeout", "100ms", "--report", file]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const x = (JSON.parse(text) as { experiments: Array<{ verdict: string; rotation: { status: string; steps: string[] }; after: { loginWorks: boolean } }> }).experiments[0];
    assert.equal(x.verdict, "proven");
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["apply:failed", "restore:ok", "discard:ok"]);
    assert.equal(x.after.loginWorks, true);
    assert.deepEqual(await roles("ct"), ["ct_init"], "no role created by the rotation is left");
    assert.deepEqual(await stored("app/ct"), old);
    assert.equal(await pg?.canLogin("ct_init", old.password), true);
    assert.equal((await store().stagesOf("app/ct")).pending, undefined);
  });

  it("kill -9 right after create (kill-at:apply), then the recovery run: the killed run's role is dropped; the roles are the stored ones", async () => {
    const old = await stored("app/ck");
    const file = join(dir, "kill.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "KILL", "--inject", "kill-at:apply", "--report", file]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const x = (JSON.parse(text) as { experiments: Array<{ verdict: string; run: { signal: string }; recovery?: { exitCode: number } }> }).experiments[0];
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.verdict, "proven");
    const now = await stored("app/ck");
    assert.notEqual(now.username, old.username);
    // The new current role, and the old one (two-secret keeps it for its grace): nothing else.
    assert.deepEqual(await roles("ck"), [old.username, now.username].sort());
    assert.equal(await pg?.canLogin(now.username, now.password), true);
  });

  it("target-timeout with a role made by hand before the rotation (same prefix): the rollback drops only the role the rotation made; the hand-made one stays (a warning names it)", async () => {
    const old = await stored("app/ht");
    const file = join(dir, "hand-timeout.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "HAND_TIMEOUT", "--inject", "target-timeout", "--timeout", "100ms", "--report", file]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const x = (JSON.parse(text) as { experiments: Array<{ verdict: string; rotation: { status: string; steps: string[]; warnings?: string[] } }> }).experiments[0];
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["apply:failed", "restore:ok", "discard:ok"]);
    assert.deepEqual(await roles("ht"), ["ht_handmade", "ht_init"], "the hand-made role stays; the role the rotation made is gone");
    assert.equal(await pg?.canLogin("ht_handmade", "Hand-ht-pw"), true, "the hand-made role still logs in");
    assert.ok(x.rotation.warnings?.some((w) => w.includes("credential ht_handmade of \"ht\"") && w.includes("left as it is")), JSON.stringify(x.rotation.warnings));
    assert.deepEqual(await stored("app/ht"), old);
  });

  it("kill -9 right after create with a role made by hand before: the recovery drops only the killed run's role; the hand-made one stays", async () => {
    const old = await stored("app/hk");
    const file = join(dir, "hand-kill.json");
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", "HAND_KILL", "--inject", "kill-at:apply", "--report", file]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const x = (JSON.parse(text) as { experiments: Array<{ verdict: string; run: { signal: string }; recovery?: { exitCode: number }; rotation: { warnings?: string[] } }> }).experiments[0];
    assert.equal(x.run.signal, "SIGKILL");
    assert.equal(x.recovery?.exitCode, 0);
    assert.equal(x.verdict, "proven");
    const now = await stored("app/hk");
    assert.notEqual(now.username, old.username);
    assert.deepEqual(await roles("hk"), ["hk_handmade", old.username, now.username].sort());
    assert.equal(await pg?.canLogin("hk_handmade", "Hand-hk-pw"), true);
    assert.ok(x.rotation.warnings?.some((w) => w.includes("credential hk_handmade of \"hk\"")), JSON.stringify(x.rotation.warnings));
  });

  it("no value in any output, report or the history", () => {
    const text = outputs.join("\n") + readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) assert.ok(!text.includes(v), "a value is in an output or the history");
  });
});
