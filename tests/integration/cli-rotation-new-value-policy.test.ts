import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { dsops, type CliResult } from "../support/cli";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * `dsops secrets rotate --new-value -` against a real PostgreSQL 15: a value the user gives meets
 * the same `policies:` (forbidden_patterns, required_patterns, secret_complexity) as a generated
 * one. A refused value is exit 1 with an error naming the policy key and never the value, and
 * nothing is written: the store's file, the role's password and the rotation history stay as
 * they were.
 */
describe("dsops secrets rotate --new-value - meets policies: (real PostgreSQL 15)", function () {
  this.timeout(120_000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  const values = new Set<string>();
  const outputs: CliResult[] = [];
  const first = `First${randomBytes(12).toString("hex")}`;
  values.add(first);

  const cli = (args: string[], input?: string): CliResult => {
    const r = dsops(args, { cwd: dir, ...(input !== undefined ? { input } : {}), env: { DSOPS_CLOCK: "2026-11-20T12:00:00Z" } });
    outputs.push(r);
    return r;
  };
  const hashOf = async (role: string): Promise<string> => (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role])).rows[0].rolpassword;
  const stored = (): string => {
    const r = cli(["get", "--env", "prod", "--var", "DB"]);
    outputs.pop(); // the one output that holds a value
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.replace(/\n$/, "");
  };
  const history = (): string => {
    const r = cli(["rotation", "history", "--env", "prod", "--var", "DB", "--format", "json"]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  before(async () => {
    pg = await startPostgres();
    values.add(pg.adminPassword);
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    await admin.query(`CREATE ROLE ${escapeIdentifier("role_np")} LOGIN PASSWORD ${escapeLiteral(first)}`);
    dir = mkdtempSync(join(tmpdir(), "dsops-newvalue-policy-"));
    const config = {
      version: 1,
      secretStores: { local: { type: "file", path: "./secrets.store" } },
      services: { "app-db": { type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://local/pg/admin" } },
      envs: { prod: { DB: { from: "store://local/app/db", rotation: { service: "app-db", strategy: "single-user", user: "role_np" } } } },
    };
    // The admin's credential is stored before the policies exist (its JSON is no password to police).
    writeFileSync(join(dir, "dsops.yaml"), JSON.stringify(config));
    assert.equal(cli(["secrets", "set", "--store", "local", "--key", "pg/admin"], JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })).status, 0);
    assert.equal(cli(["secrets", "set", "--store", "local", "--key", "app/db"], first).status, 0);
    const policies = {
      forbidden_patterns: ["password", "Secret"],
      required_patterns: ["^[A-Za-z]"],
      secret_complexity: { min_length: 16 },
      environment_rules: { prod: { secret_complexity: { min_length: 20, require_upper: true } } },
    };
    writeFileSync(join(dir, "dsops.yaml"), JSON.stringify({ ...config, policies }));
  });
  after(async () => {
    await admin?.end();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const text = outputs.map((o) => `${o.stdout}\n${o.stderr}`).join("\n");
    for (const v of values) assert.ok(!text.includes(v), `an output holds a value used (${v.length} chars)`);
  });

  const refusals: Array<[string, string, string]> = [
    ["a forbidden pattern", `Abc${randomBytes(6).toString("hex")}Secret${randomBytes(4).toString("hex")}`, "matches forbidden_patterns[1] /Secret/"],
    ["a required pattern missed", `9Abc${randomBytes(12).toString("hex")}`, "does not match required_patterns[0] /^[A-Za-z]/"],
    ["shorter than the env's min_length", `Abc${randomBytes(7).toString("hex")}`, "shorter than secret_complexity.min_length 20 (17 characters)"],
    ["no upper-case letter (the env's rule)", `abc${randomBytes(12).toString("hex")}`.toLowerCase(), "has no upper-case letter (secret_complexity.require_upper)"],
    ["several rules at once", `xpassword${randomBytes(3).toString("hex")}`, "shorter than secret_complexity.min_length 20 (15 characters); has no upper-case letter (secret_complexity.require_upper); matches forbidden_patterns[0] /password/"],
  ];
  for (const [what, value, problems] of refusals) {
    it(`refuses ${what}: exit 1, the error names the policy key and not the value, nothing is written`, async () => {
      values.add(value);
      const storeFile = readFileSync(join(dir, "secrets.store"));
      const hash = await hashOf("role_np");
      const hist = history();
      for (const dry of [[], ["--dry-run"]]) {
        const r = cli(["secrets", "rotate", "--env", "prod", "--var", "DB", ...dry, "--new-value", "-"], value);
        assert.equal(r.status, 1, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
        assert.equal(r.stdout, "");
        assert.equal(
          r.stderr,
          `error: envs.prod.DB.rotation: the new value breaks the policies of env "prod": ${problems}; nothing was written\n` +
            "hint: give a value that meets policies.secret_complexity, forbidden_patterns and required_patterns (or rotate without --new-value: generated values meet them)\n",
        );
      }
      assert.deepEqual(readFileSync(join(dir, "secrets.store")), storeFile, "the store's file is unchanged");
      assert.equal(stored(), first);
      assert.equal(await hashOf("role_np"), hash, "the role's password is unchanged");
      assert.ok(await pg.canLogin("role_np", first));
      assert.equal(history(), hist, "no rotation was recorded");
    });
  }

  it("a value that meets every rule rotates: the role logs in with it and the store holds it", async () => {
    const good = `Good${randomBytes(12).toString("hex")}`;
    values.add(good);
    const r = cli(["secrets", "rotate", "--env", "prod", "--var", "DB", "--new-value", "-"], `${good}\n`);
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.ok(await pg.canLogin("role_np", good));
    assert.ok(!(await pg.canLogin("role_np", first)));
    assert.equal(stored(), good);
  });
});
