// An in-memory API-key target (the reference implementation of a `create`-capable target) stands in for aws.iam until that target exists; the store is the real file store.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError } from "../../provider/rotation/engine";
import { VerificationError } from "../../provider/rotation/targets/errors";
import { createTarget } from "../../provider/rotation/targets/registry";
import type { Credential, Target, TargetCapability } from "../../provider/rotation/targets/types";
import { FileStore } from "../../provider/stores/file";

/** API keys: several per owner at once; `create` mints, `revoke` deletes, `verify` checks. */
class KeyTarget implements Target {
  readonly type = "postgresql" as const; // any registered type: the engine only reads capabilities
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["create", "revoke", "verify"]);
  readonly valueRules = {};
  readonly keys = new Map<string, { owner: string; secret: string }>();
  failVerify = false;
  private n = 0;
  constructor(readonly name: string) {}
  async create(owner: string, value?: Secret): Promise<Credential> {
    const id = `AK${++this.n}`;
    this.keys.set(id, { owner, secret: value?.reveal() ?? "x" });
    return { principal: id, secret: value ?? new Secret("x") };
  }
  async revoke(c: Credential): Promise<void> {
    this.keys.delete(c.principal);
  }
  async verify(c: Credential): Promise<void> {
    if (this.failVerify || this.keys.get(c.principal)?.secret !== c.secret.reveal()) throw new VerificationError(`key ${c.principal} refused`);
  }
  async list(owner: string): Promise<string[]> {
    return [...this.keys].filter(([, k]) => k.owner === owner).map(([id]) => id);
  }
}

describe("rotation engine: two-secret with a grace period, config checks", () => {
  let dir: string;
  let clock: ManualClock;
  const env = { ...process.env, DSOPS_FILE_KEY: "unit-key" };
  const yaml = `secretStores:
  local: { type: file, path: ./s.store }
services:
  api: { type: postgresql, admin: "store://local/admin" }
envs:
  prod:
    KEY:
      from: "store://local/api/key"
      rotation: { service: api, strategy: two-secret, user: svc, grace_period: 1h }
`;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-eng-"));
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    clock = new ManualClock(Date.parse("2026-05-01T00:00:00Z"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const setup = () => {
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env });
    const target = new KeyTarget("api");
    const engine = new RotationEngine(config, { clock, env, targets: { api: target } });
    const store = new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock, env });
    return { engine, target, store };
  };

  it("both keys are valid during the grace period; the old one is revoked by the first run after it", async () => {
    const { engine, target, store } = setup();
    try {
      const first = await engine.rotate("prod", "KEY");
      assert.equal(first.record.status, "succeeded"); // no old key: nothing to wait for
      assert.deepEqual([...target.keys.keys()], ["AK1"]);
      const second = await engine.rotate("prod", "KEY");
      assert.equal(second.record.status, "grace");
      assert.equal(second.record.retireAfter, "2026-05-01T01:00:00.000Z");
      assert.deepEqual([...target.keys.keys()], ["AK1", "AK2"]);
      assert.equal(JSON.parse((await store.get({ key: "api/key" })).value.reveal()).username, "AK2");
      await assert.rejects(engine.rotate("prod", "KEY"), /in its grace period until 2026-05-01T01:00:00.000Z/);
      clock.advance(3600 * 1000);
      const done = await engine.rotate("prod", "KEY");
      assert.equal(done.resumed, true);
      assert.equal(done.record.id, second.record.id);
      assert.equal(done.record.status, "succeeded");
      assert.deepEqual([...target.keys.keys()], ["AK2"]);
    } finally {
      await engine.close();
    }
  });

  it("emergency cuts the grace period short and revokes the old key at once", async () => {
    const { engine, target } = setup();
    try {
      await engine.rotate("prod", "KEY");
      await engine.rotate("prod", "KEY"); // AK1 in grace
      const r = await engine.rotate("prod", "KEY", { strategy: "emergency", reason: "key pasted in chat" });
      assert.equal(r.record.status, "succeeded");
      assert.deepEqual([...target.keys.keys()], ["AK3"]);
    } finally {
      await engine.close();
    }
  });

  it("a failed verification revokes the new key and keeps the old one current", async () => {
    const { engine, target, store } = setup();
    try {
      await engine.rotate("prod", "KEY");
      target.failVerify = true;
      await assert.rejects(engine.rotate("prod", "KEY"), (e: unknown) => e instanceof RotationError && /rolled back: key AK2 refused/.test(e.message));
      assert.deepEqual([...target.keys.keys()], ["AK1"]);
      assert.equal(JSON.parse((await store.get({ key: "api/key" })).value.reveal()).username, "AK1");
      assert.equal((await store.stagesOf("api/key")).pending, undefined);
    } finally {
      await engine.close();
    }
  });

  it("service settings are checked by the target's own schema, with the YAML path", () => {
    const ctx = { resolveRef: async () => new Secret(""), clock, configDir: dir };
    assert.throws(() => createTarget("db", { type: "postgresql", admin: "store://x/y", port: "5432", colour: 1 }, ctx), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems, ["services.db.port: Invalid input: expected number, received string", 'services.db: unknown key "colour"']);
      return true;
    });
    assert.throws(() => createTarget("db", { type: "postgres" }, ctx), /services.db.type: unknown rotation target type "postgres" \(did you mean "postgresql"\?\)/);
    assert.throws(() => createTarget("db", { type: "redis" }, ctx), (e: unknown) => e instanceof ConfigError && /^services\.db\.admin: /.test(e.problems[0]));
  });

  it("the rotation block is checked when dsops.yaml loads", () => {
    assert.throws(
      () => parseConfig(yaml.replace("strategy: two-secret", "strategy: two-secrets"), { env }),
      (e: unknown) => e instanceof ConfigError && /envs\.prod\.KEY\.rotation\.strategy: Invalid option/.test(e.message),
    );
    assert.throws(() => parseConfig(yaml.replace("grace_period: 1h", "grace_priod: 1h"), { env }), /unknown key "grace_priod" \(did you mean "grace_period"\?\)/);
  });
});
