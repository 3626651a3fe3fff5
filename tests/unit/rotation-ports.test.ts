// An in-memory API-key target (the reference implementation of a `create`-capable target) stands in for a real one; the store is the real file store, the metrics a real prom-client registry.
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { composeRotation } from "../../provider/compose/rotation";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { parseConfig } from "../../provider/compose/config";
import { DsopsMetrics } from "../../provider/metrics/index";
import { decideDue } from "../../provider/rotation/due";
import { RotationEngine } from "../../provider/rotation/engine";
import type { RotationEvent } from "../../provider/rotation/events";
import { VerificationError } from "../../provider/rotation/targets/errors";
import type { Credential, Target, TargetCapability } from "../../provider/rotation/targets/types";
import { Window } from "../../provider/schedule/window";
import { FileStore } from "../../provider/stores/file";

class KeyTarget implements Target {
  readonly type = "postgresql" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["create", "revoke", "verify"]);
  readonly valueRules = {};
  readonly keys = new Map<string, string>();
  private n = 0;
  constructor(readonly name: string) {}
  async create(_owner: string, value?: Secret): Promise<Credential> {
    const id = `AK${++this.n}`;
    this.keys.set(id, value?.reveal() ?? "x");
    return { principal: id, secret: value ?? new Secret("x") };
  }
  async revoke(c: Credential): Promise<void> {
    this.keys.delete(c.principal);
  }
  async verify(c: Credential): Promise<void> {
    if (this.keys.get(c.principal) !== c.secret.reveal()) throw new VerificationError(`key ${c.principal} refused`);
  }
  async list(): Promise<string[]> {
    return [...this.keys.keys()];
  }
}

describe("rotation ports: the bare engine, the composed engine, the due decision", () => {
  let dir: string;
  const clock = new ManualClock(Date.parse("2026-05-01T00:00:00Z"));
  const env = { ...process.env, DSOPS_FILE_KEY: "unit-key" };
  const yaml = (rotation: string, top: string) => `${top}secretStores:
  local: { type: file, path: ./s.store }
services:
  api: { type: postgresql, admin: "store://local/admin" }
envs:
  prod:
    KEY:
      from: "store://local/api/key"
      rotation: { service: api, strategy: two-secret, user: svc${rotation} }
`;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "dsops-rot-ports-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const config = (rotation = "", top = "") => parseConfig(yaml(rotation, top), { file: join(dir, "dsops.yaml"), env });

  it("a bare engine refuses rotation.health checks it cannot run, before anything changes", async () => {
    const target = new KeyTarget("api");
    const engine = new RotationEngine(config(`, health: [{ type: script, command: "exit 0" }]`), { clock, env, targets: { api: target } });
    try {
      await assert.rejects(engine.rotate("prod", "KEY"), /envs\.prod\.KEY\.rotation\.health: this rotation engine has no health checker/);
      assert.equal(target.keys.size, 0);
      assert.deepEqual(await engine.history(), []);
      const store = new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock, env });
      assert.equal((await store.stagesOf("api/key")).current, undefined);
      // healthChecks: false skips them, as before.
      const skipping = new RotationEngine(config(`, health: [{ type: script, command: "exit 0" }]`), { clock, env, targets: { api: target }, healthChecks: false });
      assert.equal((await skipping.rotate("prod", "KEY")).record.status, "succeeded");
      await skipping.close();
    } finally {
      await engine.close();
    }
  });

  it("events go out on the bus; a metrics port given to the bare engine counts them", async () => {
    const metrics = new DsopsMetrics();
    const seen: RotationEvent[] = [];
    const engine = new RotationEngine(config(), { clock, env, targets: { api: new KeyTarget("api") }, metrics });
    engine.events.on("rotation", ({ event }) => seen.push(event));
    try {
      await engine.rotate("prod", "KEY");
      assert.deepEqual(seen.map((e) => e.type), ["started", "completed"]);
      assert.match(await metrics.text(), /dsops_rotation_completed_total\{service="api",env="prod",status="succeeded"\} 1/);
    } finally {
      await engine.close();
    }
  });

  it("the composed engine writes the metrics textfile at the end of a run; the bare one does not", async () => {
    const withTextfile = () => config("", "metrics:\n  prometheus: { textfile: ./m.prom }\n");
    const bare = new RotationEngine(withTextfile(), { clock, env, targets: { api: new KeyTarget("api") } });
    await bare.rotate("prod", "KEY");
    await bare.close();
    assert.equal(existsSync(join(dir, "m.prom")), false);
    const composed = composeRotation(withTextfile(), { clock, env, targets: { api: new KeyTarget("api") }, metrics: new DsopsMetrics() });
    await composed.rotate("prod", "KEY");
    await composed.close();
    assert.equal(existsSync(join(dir, "m.prom")), true);
  });

  it("the due decision: schedule after the last rotation, windows and their blackouts", () => {
    const paths = { cron: "schedule" };
    const at = Date.parse("2026-05-04T12:00:00Z");
    const never = decideDue({ schedule: { cron: "0 3 * * *" }, paths, now: at });
    assert.equal(never.due, true);
    assert.equal(never.nextDueAt, undefined);
    assert.equal(never.window.open, true);
    const recent = decideDue({ schedule: { every: "7d" }, paths, now: at, lastRotatedAt: Date.parse("2026-05-01T00:00:00Z") });
    assert.equal(recent.due, false);
    assert.equal(new Date(recent.nextDueAt as number).toISOString(), "2026-05-08T00:00:00.000Z");
    const windows = [new Window({ schedule: "0 2 * * *", duration: "2h", blackouts: [{ start: "2026-05-04", end: "2026-05-05", reason: "freeze" }] }, "windows[0]")];
    const closed = decideDue({ schedule: { cron: "0 3 * * *" }, paths, now: Date.parse("2026-05-04T02:30:00Z"), lastRotatedAt: Date.parse("2026-05-01T00:00:00Z"), windows });
    assert.equal(closed.due, true);
    assert.equal(closed.window.open, false);
    assert.equal(closed.window.blockedBy, "freeze");
    assert.equal(new Date(closed.window.nextOpenAt as number).toISOString(), "2026-05-06T02:00:00.000Z");
  });
});
