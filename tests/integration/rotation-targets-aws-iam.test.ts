// Runs against moto_server, a local server speaking the AWS IAM and STS wire protocols, not real AWS (moto does not check signatures: a deleted key is detected by GetCallerIdentity answering as someone else).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, ListAccessKeysCommand, UpdateAccessKeyCommand } from "@aws-sdk/client-iam";
import { ManualClock, systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError, createTarget, type FaultPoint } from "../../provider/rotation/index";
import { AwsIamTarget } from "../../provider/rotation/targets/aws-iam";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { motoCredentials, startMoto, type Moto } from "../support/moto";

describe("rotation: aws.iam target (moto_server)", function () {
  this.timeout(120000);
  let moto: Moto;
  let iam: IAMClient;
  let dir: string;
  let config: Config;
  const clock = new ManualClock(Date.now());
  const values = new Set<string>();
  const outputs: string[] = [];
  const env = { DSOPS_FILE_KEY: "iam-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const engine = (opts: ConstructorParameters<typeof RotationEngine>[1] = {}) =>
    new RotationEngine(config, { env: { ...process.env, ...env }, clock, onEvent: (m) => outputs.push(m), ...opts });
  const target = () =>
    new AwsIamTarget("iam", config.raw.services.iam, {
      resolveRef: async () => new Secret(JSON.stringify({ access_key_id: "test", secret_access_key: "test" })),
      clock: systemClock,
      configDir: dir,
    });

  async function storedCred(key: string): Promise<{ username: string; password: string }> {
    const o = JSON.parse((await store().get({ key })).value.reveal()) as { username: string; password: string };
    values.add(o.password);
    return o;
  }
  const keysOf = async (user: string) => ((await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => `${k.AccessKeyId}:${k.Status}`).sort();
  async function works(keyId: string, secret: string): Promise<boolean> {
    const t = target();
    try {
      await t.verify({ principal: keyId, secret: new Secret(secret) });
      return true;
    } catch {
      return false;
    } finally {
      await t.close();
    }
  }
  function history(): RotationRecord[] {
    const recs = new Map<string, RotationRecord>();
    for (const line of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n"))
      if (line.trim()) recs.set((JSON.parse(line) as RotationRecord).id, JSON.parse(line) as RotationRecord);
    return [...recs.values()];
  }

  async function seedUser(user: string, key: string): Promise<void> {
    await iam.send(new CreateUserCommand({ UserName: user }));
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey;
    values.add(k?.SecretAccessKey as string);
    await store().put(key, new Secret(JSON.stringify({ username: k?.AccessKeyId, password: k?.SecretAccessKey })));
  }

  before(async () => {
    moto = await startMoto();
    iam = new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-iam-"));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  iam:
    type: aws.iam
    region: us-east-1
    endpoint: ${moto.endpoint}
    admin: "store://local/aws/admin"
envs:
  prod:
    KEY:
      from: "store://local/app/key"
      rotation: { service: iam, strategy: two-secret, user: deployer, grace_period: 1h }
    NOW:
      from: "store://local/app/now"
      rotation: { service: iam, strategy: two-secret, user: ci, grace_period: 1h }
    CRASH:
      from: "store://local/app/crash"
      rotation: { service: iam, strategy: two-secret, user: crashy, grace_period: 1s }
    WRONG:
      from: "store://local/app/wrong"
      rotation: { service: iam, strategy: single-user, user: deployer }
    BENCHED:
      from: "store://local/app/benched"
      rotation: { service: iam, strategy: two-secret, user: benched, grace_period: 1h }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    await store().put("aws/admin", new Secret(JSON.stringify({ access_key_id: "test", secret_access_key: "test" })));
    await seedUser("deployer", "app/key");
    await seedUser("ci", "app/now");
    await seedUser("crashy", "app/crash");
    await seedUser("benched", "app/benched");
  });

  after(async () => {
    iam?.destroy();
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("checks its settings; can create, revoke and verify (not rotate in place)", () => {
    const ctx = { resolveRef: async () => new Secret(""), clock: systemClock, configDir: "." };
    assert.throws(() => createTarget("i", { type: "aws.iam", endpoint: "not a url" }, ctx), /services\.i\.endpoint/);
    const t = createTarget("i", { type: "aws.iam" }, ctx);
    assert.deepEqual([...t.capabilities].sort(), ["create", "revoke", "verify"]);
  });

  it("two-secret: a new key next to the old; both work during the grace period; the old is deleted after it", async () => {
    const old = await storedCred("app/key");
    assert.equal(await works(old.username, old.password), true);
    const e = engine();
    try {
      const r = await e.rotate("prod", "KEY");
      assert.equal(r.record.status, "grace");
      const now = await storedCred("app/key");
      assert.notEqual(now.username, old.username);
      assert.match(now.username, /^AKIA/);
      assert.deepEqual(await keysOf("deployer"), [`${now.username}:Active`, `${old.username}:Active`].sort());
      assert.equal(await works(now.username, now.password), true);
      assert.equal(await works(old.username, old.password), true, "the old key works during the grace period");
      clock.advance(3600 * 1000 + 1);
      const done = await e.rotate("prod", "KEY");
      assert.equal(done.record.status, "succeeded");
      assert.deepEqual(await keysOf("deployer"), [`${now.username}:Active`]);
      assert.equal(await works(old.username, old.password), false, "the old key is gone");
      // the next rotation: again two keys at most
      clock.advance(1);
      const again = await e.rotate("prod", "KEY");
      assert.equal(again.record.status, "grace");
      assert.equal((await keysOf("deployer")).length, 2);
    } finally {
      await e.close();
    }
  });

  it("emergency: the old key is deleted at once", async () => {
    const old = await storedCred("app/now");
    const e = engine();
    try {
      const r = await e.rotate("prod", "NOW", { strategy: "emergency", reason: "key in a public repo" });
      assert.equal(r.record.status, "succeeded");
    } finally {
      await e.close();
    }
    const now = await storedCred("app/now");
    assert.deepEqual(await keysOf("ci"), [`${now.username}:Active`]);
    assert.equal(await works(old.username, old.password), false);
  });

  it("a user at the limit of two keys: a key no stored value knows (left by a crash) is deleted before the new one is created", async () => {
    const old = await storedCred("app/now");
    const orphan = (await iam.send(new CreateAccessKeyCommand({ UserName: "ci" }))).AccessKey;
    values.add(orphan?.SecretAccessKey as string);
    assert.equal((await keysOf("ci")).length, 2);
    const e = engine();
    try {
      await e.rotate("prod", "NOW", { strategy: "immediate" });
    } finally {
      await e.close();
    }
    const now = await storedCred("app/now");
    const keys = await keysOf("ci");
    assert.deepEqual(keys, [`${now.username}:Active`]);
    assert.ok(!keys.some((k) => k.startsWith(orphan?.AccessKeyId as string)));
    assert.ok(!keys.some((k) => k.startsWith(old.username)));
  });

  it("a failing verification (the key is gone before it is checked) deletes the new key and keeps the old", async () => {
    const old = await storedCred("app/crash");
    // Just before verification, another process deletes the new key (as an operator would): verification then fails for real.
    const e = engine({
      fault: (p) => {
        if (p !== "before:verify") return;
        const script = `
          const { IAMClient, ListAccessKeysCommand, DeleteAccessKeyCommand } = require("@aws-sdk/client-iam");
          const c = new IAMClient({ region: "us-east-1", endpoint: process.argv[1], credentials: { accessKeyId: "test", secretAccessKey: "test" } });
          (async () => {
            for (const k of (await c.send(new ListAccessKeysCommand({ UserName: "crashy" }))).AccessKeyMetadata)
              if (k.AccessKeyId !== process.argv[2]) await c.send(new DeleteAccessKeyCommand({ UserName: "crashy", AccessKeyId: k.AccessKeyId }));
          })().catch((e) => { console.error(e.name); process.exit(1); });`;
        const r = spawnSync(process.execPath, ["-e", script, moto.endpoint, old.username], { cwd: process.cwd(), encoding: "utf8" });
        if (r.status !== 0) throw new Error(`deleting the new key failed: ${r.stderr}`);
      },
    });
    let err: unknown;
    try {
      await e.rotate("prod", "CRASH");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.deepEqual(await storedCred("app/crash"), old);
    assert.deepEqual(await keysOf("crashy"), [`${old.username}:Active`], "the new key was deleted");
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.deepEqual(
      rec.steps.map((s) => `${s.name}:${s.outcome}`),
      ["apply:ok", "stage:ok", "verify:failed", "restore:ok", "discard:ok"],
    );
  });

  it("a run that dies at each step is finished by the next run; never more than two keys, the stored key works", async () => {
    const points = ["apply", "stage", "verify", "promote"].flatMap((x) => [`before:${x}`, `after:${x}`]) as FaultPoint[];
    for (const point of points) {
      const crashing = engine({
        fault: (p) => {
          if (p === point) throw new Error(`simulated crash at ${p}`);
        },
      });
      await assert.rejects(crashing.rotate("prod", "CRASH"), /simulated crash/);
      await crashing.close();
      const cur = await storedCred("app/crash");
      assert.equal(await works(cur.username, cur.password), true, `${point}: stored current works after the crash`);
      clock.advance(2000);
      const e = engine();
      try {
        let r = await e.rotate("prod", "CRASH");
        if (r.record.status === "grace") {
          clock.advance(2000);
          r = await e.rotate("prod", "CRASH");
        }
        assert.equal(r.record.status, "succeeded", point);
      } finally {
        await e.close();
      }
      const now = await storedCred("app/crash");
      assert.equal(await works(now.username, now.password), true, `${point}: current works after the resume`);
      assert.deepEqual(await keysOf("crashy"), [`${now.username}:Active`], `${point}: only the stored key is left`);
    }
  });

  it("a stored key someone deactivated (Inactive) is not rotated: no new (active) key is minted, the rotation fails clearly", async () => {
    const old = await storedCred("app/benched");
    await iam.send(new UpdateAccessKeyCommand({ UserName: "benched", AccessKeyId: old.username, Status: "Inactive" }));
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "BENCHED");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, new RegExp(`access key ${old.username} of IAM user "benched" is Inactive: it was deactivated outside dsops, and a new key would be active; nothing was changed`));
    assert.deepEqual(await keysOf("benched"), [`${old.username}:Inactive`], "no key was minted; the old one is still Inactive");
    assert.deepEqual(await storedCred("app/benched"), old);
    assert.equal((await store().stagesOf("app/benched")).pending, undefined);
    const rec = history().find((r) => r.id === (err as RotationError).recordId) as RotationRecord;
    assert.equal(rec.status, "rolled-back");
    // Re-activated by its administrator, the key rotates as usual.
    await iam.send(new UpdateAccessKeyCommand({ UserName: "benched", AccessKeyId: old.username, Status: "Active" }));
    const again = engine();
    try {
      assert.equal((await again.rotate("prod", "BENCHED")).record.status, "grace");
    } finally {
      await again.close();
    }
    assert.equal((await keysOf("benched")).length, 2);
  });

  it("single-user is refused: IAM keys cannot be set in place", async () => {
    const e = engine();
    try {
      await assert.rejects(e.rotate("prod", "WRONG"), /single-user needs a target that can rotate; service "iam" \(aws\.iam\) cannot/);
    } finally {
      await e.close();
    }
  });

  it("target errors name the user or key, never a secret; revoking a deleted key is a no-op", async () => {
    const t = target();
    try {
      await assert.rejects(t.create("no-such-user"), /IAM user "no-such-user" does not exist/);
      await t.revoke({ principal: "AKIAXXXXXXXXXXXXXXXX", secret: new Secret("") });
      const k = await t.create("crashy");
      values.add(k.secret.reveal());
      await assert.rejects(t.create("crashy"), /already has 2 access keys/);
      await t.revoke(k);
      await t.revoke(k);
    } finally {
      await t.close();
    }
  });

  it("no secret key in records, events or errors", () => {
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    assert.ok(values.size >= 5);
    for (const v of values) {
      assert.ok(!recs.includes(v), "a secret key is in the history");
      for (const o of outputs) assert.ok(!o.includes(v), "a secret key is in an event or error");
    }
  });
});
