import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";

/**
 * The RotationPolicy provider's `check` (what `pulumi preview` calls) refuses, naming the
 * policy's own property, what used to pass the preview and fail at the first rotation: a typo in
 * the target type, a strategy without its users, a `#field` on the rotated secret, a service type
 * not rotated yet, a strategy the target cannot run, an admin credential that does not exist, a
 * window cron with `W`. The store is the real file store in a temporary folder.
 */
describe("RotationPolicy check: rotation settings are checked at preview, on the policy's properties", function () {
  this.timeout(60000);
  let dir: string;
  const FILE_KEY = "policy-check-key-" + Math.random().toString(36).slice(2);
  let ctx: typeof import("../../provider/dynamic/context");
  let rotationPolicy: (typeof import("../../provider/dynamic/rotation-policy"))["rotationPolicy"];
  const saved = { key: process.env.DSOPS_FILE_KEY, cwd: "" };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: FILE_KEY } });

  const target = { type: "postgresql", host: "127.0.0.1", port: 5432, database: "app", admin: "store://local/pg/admin" };
  const good = () => ({ secret: "store://local/app/pw", target: { ...target }, strategy: "single-user", user: "app", schedule: { every: "30d" } }) as Record<string, unknown>;
  const failures = async (inputs: Record<string, unknown>) => (await rotationPolicy.check(undefined, inputs)).failures ?? [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-policy-check-"));
    process.env.DSOPS_FILE_KEY = FILE_KEY;
    await store().put("pg/admin", new Secret(JSON.stringify({ username: "admin", password: "unused" })));
    await store().put("app/pw", new Secret("initial-value"));
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, admin: "store://local/pg/admin" }
  gh: { type: github, org: acme }
`,
    );
    ctx = require("../../provider/dynamic/context") as typeof import("../../provider/dynamic/context");
    rotationPolicy = (require("../../provider/dynamic/rotation-policy") as typeof import("../../provider/dynamic/rotation-policy")).rotationPolicy;
    const st = ctx.state as { cwd: string };
    saved.cwd = st.cwd;
    st.cwd = dir;
    ctx.configure((k) => (k === "dsops:configFile" ? "dsops.yaml" : undefined));
  });
  after(() => {
    ctx?.configure(() => undefined);
    if (ctx) (ctx.state as { cwd: string }).cwd = saved.cwd;
    const dynamicDir = dirname(require.resolve("../../provider/dynamic/context"));
    for (const k of Object.keys(require.cache)) if (k.startsWith(dynamicDir + sep)) delete require.cache[k];
    if (saved.key === undefined) delete process.env.DSOPS_FILE_KEY;
    else process.env.DSOPS_FILE_KEY = saved.key;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a correct policy passes", async () => {
    assert.deepEqual(await failures(good()), []);
    assert.deepEqual(await failures({ ...good(), target: "app-db" }), []);
    // `postgres` (dsops's catalogue name) is read as postgresql.
    assert.deepEqual(await failures({ ...good(), target: { ...target, type: "postgres" } }), []);
  });

  it("a typo in the target type: target.type, with a suggestion", async () => {
    assert.deepEqual(await failures({ ...good(), target: { ...target, type: "postgresqll" } }), [
      { property: "target.type", reason: 'unknown rotation target type "postgresqll" (did you mean "postgresql"?)' },
    ]);
    assert.deepEqual(await failures({ ...good(), target: { ...target, prot: 5432 } }), [{ property: "target.prot", reason: 'unknown key "prot" (did you mean "port"?)' }]);
  });

  it("alternating-users without users, single-user without user: users, user", async () => {
    assert.deepEqual(await failures({ ...good(), strategy: "alternating-users", user: undefined }), [
      { property: "users", reason: "alternating-users rotation needs two users, e.g. users: [app_a, app_b]" },
    ]);
    assert.deepEqual(await failures({ ...good(), user: undefined }), [{ property: "user", reason: "single-user rotation needs the user whose password is rotated (user: <name>)" }]);
  });

  it("a #field or a pinned version on the rotated secret: secret", async () => {
    assert.deepEqual(await failures({ ...good(), secret: "store://local/app/pw#password" }), [
      { property: "secret", reason: 'rotation rotates a whole secret; remove "#password" (read a field of it in another variable)' },
    ]);
    const f = await failures({ ...good(), secret: "store://local/app/pw?versoin=1" });
    assert.equal(f.length, 1);
    assert.equal(f[0].property, "secret");
    assert.match(f[0].reason, /unknown query parameter "versoin" \(did you mean "version"\?\)/);
  });

  it("a service type not rotated yet, a strategy the target cannot run: refused (a policy exists to rotate)", async () => {
    assert.deepEqual(await failures({ ...good(), target: "gh" }), [
      {
        property: "target",
        reason:
          'services.gh.type: service type "github" is in dsops\'s service catalogue, but this version cannot rotate it yet (rotation targets: postgresql, mysql, redis, aws.iam, webhook, script); rotating envs.pulumi.SECRET.rotation fails until then',
      },
    ]);
    assert.deepEqual(await failures({ ...good(), strategy: "two-secret" }), [
      { property: "strategy", reason: 'strategy two-secret needs a target that can create; service "policy-target" (postgresql) cannot, so rotating fails' },
    ]);
  });

  it("an admin credential that does not exist: target.admin (metadata only, no value read)", async () => {
    assert.deepEqual(await failures({ ...good(), target: { ...target, admin: "store://local/pg/admin-typo" } }), [
      { property: "target.admin", reason: 'admin store://local/pg/admin-typo does not exist in store "local"; the rotation logs in with it' },
    ]);
    assert.deepEqual(await failures({ ...good(), target: { ...target, admin: "store://lcoal/pg/admin" } }), [{ property: "target.admin", reason: 'unknown store "lcoal" (did you mean "local"?)' }]);
  });

  it("windows: L and # are accepted, W is refused with the field", async () => {
    const window = (schedule: string) => ({ ...good(), windows: [{ schedule, duration: "2h", timezone: "Europe/Berlin" }] });
    assert.deepEqual(await failures(window("0 2 L * *")), []);
    assert.deepEqual(await failures(window("0 2 * * 0#1")), []);
    const f = await failures(window("0 2 15W * *"));
    assert.equal(f.length, 1);
    assert.equal(f[0].property, "windows[0].schedule");
    assert.match(f[0].reason, /"W" \(nearest weekday\) in the day-of-month field is not supported/);
  });
});
