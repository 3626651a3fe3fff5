import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { FileStore } from "../../provider/stores/file";
import { Secret } from "../../provider/core/secret";
import { ManualClock } from "../../provider/core/clock";
import { dynamicToken } from "../../sdk/tokens";

const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };

/**
 * The fast check of closure serialization: run a program under setMocks, take the provider
 * Pulumi serialized for each resource, deserialize it as the provider host does, and run it.
 */
describe("Pulumi resources under mocks: serialized providers run", function () {
  this.timeout(60000);
  let dir: string;
  const oldCwd = process.cwd();
  const registered: Array<{ type: string; name: string; inputs: Record<string, unknown> }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-mocks-"));
    // The program's folder has the package installed, as a user's program does.
    mkdirSync(join(dir, "node_modules", "@dsops"), { recursive: true });
    symlinkSync(join(__dirname, "..", "..", ".."), join(dir, "node_modules", "@dsops", "pulumi"), "dir");
    const store = new FileStore("local", { type: "file", path: "./secrets.store" }, { configDir: dir, clock: new ManualClock(0), env: {} });
    await store.put("app/token", new Secret("mock-secret-value-1"));
    await store.put("app/db", new Secret(JSON.stringify({ password: " pw-2 " })));
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push({ type: args.type, name: args.name, inputs: args.inputs });
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: () => ({}),
      },
      "proj",
      "stack",
      true,
    );
  });
  after(() => {
    process.chdir(oldCwd);
    rmSync(dir, { recursive: true, force: true });
  });

  it("registers typed dynamic resources whose serialized provider resolves from the file store", async () => {
    const dsops = require("../../sdk") as typeof import("../../sdk");
    new dsops.SecretReference("token", { ref: "store://local/app/token" });
    new dsops.SecretReference("db", { store: "local", key: "app/db#password", transform: "trim" });
    new dsops.SecretReference("inline", { store: { type: "file", path: "./secrets.store" }, key: "app/token" });
    await new Promise((r) => setTimeout(r, 200));
    const refs = registered.filter((r) => r.type === dynamicToken("SecretReference"));
    assert.deepEqual(refs.map((r) => r.name).sort(), ["db", "inline", "token"]);
    const serialized = refs[0].inputs.__provider as string;
    assert.equal(typeof serialized, "string");
    assert.ok(serialized.includes('require("@dsops/pulumi/provider/dynamic/handlers")'), "the provider must require the installed handlers");
    assert.ok(serialized.length < 4000, `serialized provider is ${serialized.length} characters`);
    assert.ok(refs.every((r) => r.inputs.__provider === serialized), "every resource of a type carries the same provider");

    process.chdir(dir); // the provider host runs in the program's folder
    const provider = requireFromString(serialized).handler();
    await provider.configure?.({ config: { get: () => undefined, require: () => { throw new Error("no"); } } });
    for (const r of refs) {
      const inputs = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => k !== "__provider"));
      const checked = await provider.check!({}, inputs);
      assert.deepEqual(checked.failures ?? [], [], r.name);
      const created = await provider.create(checked.inputs);
      const expected = r.name === "db" ? "pw-2" : "mock-secret-value-1";
      assert.equal(created.outs.value, expected, r.name);
      assert.equal(created.outs.storeType, "file");
      const diff = await provider.diff!(created.id, created.outs, inputs);
      assert.equal(diff.changes, false, `${r.name}: no drift right after create`);
    }
  });

  it("a SecretReference registers without promise stacks and restores Error.stackTraceLimit, also when construction throws", async () => {
    const dsops = require("../../sdk") as typeof import("../../sdk");
    const before = Error.stackTraceLimit;
    registered.length = 0;
    // Count the stacks formatted with frames while the resource is constructed: Pulumi's per-property
    // promises (4 per property, printed only with PULUMI_DEBUG_PROMISE_LEAKS) take none; its own
    // source position (one unlimited stack) is still taken.
    const prepare = Error.prepareStackTrace;
    let withFrames = 0;
    Error.prepareStackTrace = (err, frames) => {
      if (frames.length > 0) withFrames++;
      return prepare ? prepare(err, frames) : `${String(err)}\n${frames.map((f) => `    at ${String(f)}`).join("\n")}`;
    };
    try {
      new dsops.SecretReference("quiet", { ref: "store://local/app/token" });
    } finally {
      Error.prepareStackTrace = prepare;
    }
    assert.equal(Error.stackTraceLimit, before);
    assert.ok(withFrames >= 1 && withFrames < 4, `${withFrames} stacks with frames`);
    await new Promise((r) => setTimeout(r, 50));
    const inputs = registered.find((r) => r.name === "quiet")?.inputs ?? {};
    assert.deepEqual(Object.keys(inputs).filter((k) => k !== "__provider").sort(), ["ref"], "no `store` input when none is given");
    // A construction error (a parent that is not a resource) leaves the limit as it was.
    assert.throws(() => new dsops.SecretReference("bad", { ref: "store://local/app/token" }, { parent: {} as pulumi.Resource }), /parent/);
    assert.equal(Error.stackTraceLimit, before);
  });

  it("getSecretOutput and getEnvironmentOutput take Inputs and return secret Outputs; a bad argument fails naming it", async () => {
    const dsops = require("../../sdk") as typeof import("../../sdk");
    // `promise()` is the SDK's own way to await an Output (what `pulumi.all` uses underneath).
    const settle = <T>(o: pulumi.Output<T>) => (o as unknown as { promise(): Promise<T> }).promise();
    const path = join(dir, "secrets.store");
    const secret = dsops.getSecretOutput({ store: pulumi.output({ type: "file", path }), key: pulumi.output("app/db#password"), transform: pulumi.output("trim") });
    assert.equal(await pulumi.isSecret(secret), true, "the result is a secret");
    assert.equal(await pulumi.isSecret(secret.value), true, "and so is its value");
    const got = await settle(secret);
    assert.deepEqual([got.value, got.versionId, got.storeType], ["pw-2", "1", "file"]);

    const env = dsops.getEnvironmentOutput({
      config: pulumi.output({ secretStores: { s: { type: "file", path } }, envs: { e: { TOKEN: { from: "store://s/app/token" }, MODE: { literal: "x" } } } }),
      env: pulumi.output("e"),
    });
    assert.equal(await pulumi.isSecret(env.variables), true);
    const resolved = await settle(env);
    assert.deepEqual(resolved.variables, { MODE: "x", TOKEN: "mock-secret-value-1" });
    assert.deepEqual(resolved.plan.map((p) => [p.name, p.source, p.versionId]), [["MODE", "literal", undefined], ["TOKEN", "store", "1"]]);

    await assert.rejects(settle(dsops.getSecretOutput({ ref: pulumi.output("store://nope/app/token") })), (e: Error) => {
      assert.ok(pulumi.RunError.isInstance(e), `a RunError (message only, no stack trace), got ${e.name}`);
      assert.match(e.message, /^getSecretOutput: ref: unknown store "nope"/);
      return true;
    });
    await assert.rejects(settle(dsops.getEnvironmentOutput({ config: { envs: {} }, env: pulumi.output("prod") })), /getEnvironmentOutput: env: unknown env "prod"/);
  });

  it("getComplianceReportOutput takes Inputs and returns the plain report of a stack's dsops.yaml; a bad argument fails naming it", async () => {
    const dsops = require("../../sdk") as typeof import("../../sdk");
    const settle = <T>(o: pulumi.Output<T>) => (o as unknown as { promise(): Promise<T> }).promise();
    const config = {
      secretStores: { s: { type: "file", path: join(dir, "secrets.store") } },
      services: { db: { type: "postgresql", host: "127.0.0.1", port: 5432, database: "app", admin: "store://s/pg/admin" } },
      envs: { e: { TOKEN: { from: "store://s/app/token", metadata: { owner: "team" }, rotation: { service: "db", user: "app", ttl: "30d" } } } },
    };
    const out = dsops.getComplianceReportOutput({ config: pulumi.output(config), framework: pulumi.output("pci-dss" as const) });
    assert.equal(await pulumi.isSecret(out), false, "a report holds no value");
    const got = await settle(out);
    assert.deepEqual(got.report.controls.map((c) => c.id), ["pci-dss-8.3.9", "pci-dss-8.6.3", "pci-dss-3.6", "pci-dss-3.7"]);
    assert.deepEqual(got.report.credentials.map((c) => [c.env, c.variable, c.owner, c.kind, c.versions.current]), [["e", "TOKEN", "team", "password", "1"]]);
    assert.deepEqual(JSON.parse(got.json), got.report);
    assert.ok(!got.json.includes("mock-secret-value-1"), "no value in the report");
    await assert.rejects(settle(dsops.getComplianceReportOutput({ config, env: pulumi.output("prod") })), /getComplianceReportOutput: env: unknown env "prod" \(envs: e\)/);
    await assert.rejects(settle(dsops.getComplianceReportOutput({ config, framework: "iso" as "all" })), /getComplianceReportOutput: framework: /);
  });

  it("reports bad inputs as check failures naming the property", async () => {
    const { secretReference } = require("../../provider/dynamic/handlers") as typeof import("../../provider/dynamic/handlers");
    assert.deepEqual((await secretReference.check({}, {})).failures, [{ property: "ref", reason: "give ref, or store with key" }]);
    assert.deepEqual((await secretReference.check({}, { ref: "store://x/y", key: "k" })).failures, [{ property: "ref", reason: "give either ref, or store with key, not both" }]);
    assert.deepEqual((await secretReference.check({}, { ref: "store://loca/app/token" })).failures, [
      { property: "ref", reason: 'unknown store "loca" (did you mean "local"?)' },
    ]);
    assert.deepEqual((await secretReference.check({}, { ref: "store://local/x", transform: "trimm" })).failures, [
      { property: "ref", reason: 'unknown transform "trimm" (did you mean "trim"?)' },
    ]);
  });

  it("MaintenanceWindow: check names the field, outputs follow DSOPS_CLOCK", async () => {
    const { maintenanceWindow } = require("../../provider/dynamic/handlers") as typeof import("../../provider/dynamic/handlers");
    assert.deepEqual((await maintenanceWindow.check({}, { schedule: "0 2 * *", duration: "4h" })).failures, [
      { property: "schedule", reason: '"0 2 * *" must have 5 fields (minute hour day-of-month month day-of-week)' },
    ]);
    assert.deepEqual((await maintenanceWindow.check({}, { schedule: "0 2 * * SUN", duration: "4h", timezone: "Europe/Berlinn" })).failures, [
      { property: "timezone", reason: '"Europe/Berlinn" is not an IANA time zone' },
    ]);
    assert.deepEqual((await maintenanceWindow.check({}, { schedule: "0 2 * * SUN", duration: "4h", blackouts: [{ start: "2026-12-24", end: "2026-12-26", reason: "" }] })).failures, [
      { property: "blackouts[0].reason", reason: "a blackout needs a reason" },
    ]);
    const spec = { schedule: "0 2 * * SUN", duration: "4h", timezone: "Europe/Berlin", blackouts: [{ start: "2026-12-20", end: "2026-12-21", reason: "freeze" }] };
    const old = process.env.DSOPS_CLOCK;
    try {
      process.env.DSOPS_CLOCK = "2026-12-13T02:00:00Z"; // Sunday 03:00 CET: open
      let r = await maintenanceWindow.create(spec);
      assert.deepEqual([r.outs.isOpen, r.outs.nextOpenAt, r.outs.nextCloseAt], [true, "2026-12-13T01:00:00.000Z", "2026-12-13T05:00:00.000Z"]);
      process.env.DSOPS_CLOCK = "2026-12-20T02:00:00Z"; // inside the blackout
      r = await maintenanceWindow.create(spec);
      assert.deepEqual([r.outs.isOpen, r.outs.blockedBy, r.outs.nextOpenAt], [false, "freeze", "2026-12-27T01:00:00.000Z"]);
      assert.equal((await maintenanceWindow.diff("id", r.outs, spec)).changes, false, "time alone does not update a window");
      assert.equal((await maintenanceWindow.diff("id", r.outs, { ...spec, duration: "2h" })).changes, true);
    } finally {
      if (old === undefined) delete process.env.DSOPS_CLOCK;
      else process.env.DSOPS_CLOCK = old;
    }
  });
});
