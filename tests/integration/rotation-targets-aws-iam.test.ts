// Runs against moto_server, a local server speaking the AWS IAM and STS wire protocols, not real AWS (moto does not check signatures: a deleted key is detected by GetCallerIdentity answering as someone else).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, ListAccessKeysCommand, UpdateAccessKeyCommand } from "@aws-sdk/client-iam";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { RotationError } from "../../provider/rotation/index";
import { AwsIamTarget } from "../../provider/rotation/targets/aws-iam";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { targetContract, type Cred, type RotationBench } from "../support/target-contract";

/**
 * IAM access keys through moto_server: the target contract (two-secret with a grace period, a
 * failing verification rolled back, emergency, single-user refused, crashes at every step, no
 * secret key anywhere), then what only this target does: a user at AWS's limit of two keys, a
 * key deactivated outside dsops, its errors.
 */
let moto: Moto;
let iam: IAMClient;
const adminCred = JSON.stringify({ access_key_id: "test", secret_access_key: "test" });

const keysOf = async (user: string) => ((await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => `${k.AccessKeyId}:${k.Status}`).sort();

/** A new IAM user with one access key: the credential to store. */
async function createUser(bench: RotationBench, user: string): Promise<Cred> {
  await iam.send(new CreateUserCommand({ UserName: user }));
  const k = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey;
  bench.values.add(k?.SecretAccessKey as string);
  return { username: k?.AccessKeyId as string, password: k?.SecretAccessKey as string };
}

/** Another process deletes the user's keys but `keep` (as an operator would). */
function deleteKeysBut(user: string, keep: string): void {
  const script = `
    const { IAMClient, ListAccessKeysCommand, DeleteAccessKeyCommand } = require("@aws-sdk/client-iam");
    const c = new IAMClient({ region: "us-east-1", endpoint: process.argv[1], credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    (async () => {
      for (const k of (await c.send(new ListAccessKeysCommand({ UserName: process.argv[2] }))).AccessKeyMetadata)
        if (k.AccessKeyId !== process.argv[3]) await c.send(new DeleteAccessKeyCommand({ UserName: process.argv[2], AccessKeyId: k.AccessKeyId }));
    })().catch((e) => { console.error(e.name); process.exit(1); });`;
  const r = spawnSync(process.execPath, ["-e", script, moto.endpoint, user, keep], { cwd: process.cwd(), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`deleting the new key failed: ${r.stderr}`);
}

targetContract(
  {
    label: "aws.iam (moto_server)",
    type: "aws.iam",
    service: "iam",
    badSettings: [[{ endpoint: "not a url" }, /services\.x\.endpoint/]],
    minimalSettings: {},
    targetClass: AwsIamTarget,
    capabilities: ["create", "revoke", "verify"],
    async setup(bench) {
      moto = await startMoto();
      iam = new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
      await bench.store().put("aws/admin", new Secret(adminCred));
      bench.adminKeys.add("aws/admin");
      await bench.seed("app/now", JSON.stringify(await createUser(bench, "ci")));
      await bench.seed("app/benched", JSON.stringify(await createUser(bench, "benched")));
      await createUser(bench, "lonely");
      const service = { type: "aws.iam", region: "us-east-1", endpoint: moto.endpoint, admin: "store://local/aws/admin" };
      const works = async (keyId: string, secret: string): Promise<boolean> => {
        const t = new AwsIamTarget("iam", service, { resolveRef: async () => new Secret(adminCred), clock: systemClock, configDir: bench.dir });
        try {
          await t.verify({ principal: keyId, secret: new Secret(secret) });
          return true;
        } catch {
          return false;
        } finally {
          await t.close();
        }
      };
      return {
        service,
        moreVariables: {
          NOW: { from: "store://local/app/now", rotation: { service: "iam", strategy: "two-secret", user: "ci", grace_period: "1h" } },
          BENCHED: { from: "store://local/app/benched", rotation: { service: "iam", strategy: "two-secret", user: "benched", grace_period: "1h" } },
        },
        principal: (user) => createUser(bench, user),
        canLogin: works,
        // Just before verification, another process deletes the new key: verification then fails for real.
        failingVerification: {
          fault: (point, stored, user) => {
            if (point === "before:verify") deleteKeysBut(user, stored.username);
          },
        },
        credentialsOf: keysOf,
        credentialId: (_user, cred) => `${cred.username}:Active`,
        checkMinted: (_user, cred) => assert.match(cred.username, /^AKIA/),
        async stop() {
          iam?.destroy();
          await moto?.stop();
        },
      };
    },
  },
  (bench) => {
    const target = () => new AwsIamTarget("iam", bench.config.raw.services.iam, { resolveRef: async () => new Secret(adminCred), clock: systemClock, configDir: bench.dir });

    // Changed in round 6b (revocation scope): a key no stored value knows was deleted before the new one was created; it may be an
    // administrator's own key, so it is now left alone: the rotation fails clearly naming it, and nothing is changed.
    it("a user at the limit of two keys, the second made by hand: that key is not revoked; the rotation fails clearly naming it, nothing changed", async () => {
      const old = await bench.storedCred("app/now");
      const hand = (await iam.send(new CreateAccessKeyCommand({ UserName: "ci" }))).AccessKey;
      bench.values.add(hand?.SecretAccessKey as string);
      assert.equal((await keysOf("ci")).length, 2);
      const r = await bench.rotate("NOW", { strategy: "immediate" });
      assert.ok(r instanceof RotationError, String(r));
      assert.match(r.message, new RegExp(`IAM user "ci" already has 2 access keys \\(.*${hand?.AccessKeyId}.*\\), the most AWS allows`));
      assert.deepEqual(await keysOf("ci"), [`${old.username}:Active`, `${hand?.AccessKeyId}:Active`].sort(), "both keys are still there and active");
      assert.deepEqual(await bench.storedCred("app/now"), old);
      const rec = bench.record(r.recordId as string);
      assert.equal(rec.status, "rolled-back");
      assert.ok(rec.warnings?.some((w) => w.includes(`credential ${hand?.AccessKeyId} of "ci"`) && w.includes("left as it is")), JSON.stringify(rec.warnings));
      // Its administrator deletes it: the key rotates as usual.
      deleteKeysBut("ci", old.username);
      const again = await bench.rotate("NOW", { strategy: "immediate" });
      assert.ok(!(again instanceof Error), String(again));
      const now = await bench.storedCred("app/now");
      assert.deepEqual(await keysOf("ci"), [`${now.username}:Active`]);
    });

    it("a stored key someone deactivated (Inactive) is not rotated: no new (active) key is minted, the rotation fails clearly", async () => {
      const old = await bench.storedCred("app/benched");
      await iam.send(new UpdateAccessKeyCommand({ UserName: "benched", AccessKeyId: old.username, Status: "Inactive" }));
      const err = await bench.rotate("BENCHED");
      assert.ok(err instanceof RotationError, String(err));
      assert.match(err.message, new RegExp(`access key ${old.username} of IAM user "benched" is Inactive: it was deactivated outside dsops, and a new key would be active; nothing was changed`));
      assert.deepEqual(await keysOf("benched"), [`${old.username}:Inactive`], "no key was minted; the old one is still Inactive");
      assert.deepEqual(await bench.storedCred("app/benched"), old);
      assert.equal((await bench.store().stagesOf("app/benched")).pending, undefined);
      assert.equal(bench.record(err.recordId as string).status, "rolled-back");
      // Re-activated by its administrator, the key rotates as usual.
      await iam.send(new UpdateAccessKeyCommand({ UserName: "benched", AccessKeyId: old.username, Status: "Active" }));
      const again = await bench.rotate("BENCHED");
      assert.ok(!(again instanceof Error), String(again));
      assert.equal(again.record.status, "grace");
      assert.equal((await keysOf("benched")).length, 2);
    });

    it("target errors name the user or key, never a secret; revoking a deleted key is a no-op", async () => {
      const t = target();
      try {
        await assert.rejects(t.create("no-such-user"), /IAM user "no-such-user" does not exist/);
        await t.revoke({ principal: "AKIAXXXXXXXXXXXXXXXX", secret: new Secret("") });
        const k = await t.create("lonely");
        bench.values.add(k.secret.reveal());
        await assert.rejects(t.create("lonely"), /already has 2 access keys/);
        await t.revoke(k);
        await t.revoke(k);
      } finally {
        await t.close();
      }
    });
  },
);
