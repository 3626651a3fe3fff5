// Runs against moto_server, a local server speaking the AWS Systems Manager (Parameter Store) wire protocol, not real AWS.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { GetParameterCommand, GetParameterHistoryCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { systemClock } from "../../provider/core/clock";
import { NotFoundError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AwsSsmStore } from "../../provider/stores/aws-ssm";
import type { SecretVersion } from "../../provider/stores/types";
import { motoCredentials, startMoto, type Moto } from "../support/moto";
import { stagingContract } from "../support/staging-contract";

function makeStore(endpoint: string): AwsSsmStore {
  return new AwsSsmStore(
    "ssm",
    { type: "aws.ssm", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", with_decryption: true },
    { configDir: tmpdir(), clock: systemClock, env: {} },
  );
}

function uid(prefix: string): string {
  return `/${prefix}-${randomBytes(4).toString("hex")}/p`;
}

function val(tag: string): string {
  return `${tag}-${randomBytes(6).toString("hex")}`;
}

function value(r: SecretVersion | Error): string {
  if (r instanceof Error) throw r;
  return r.value.reveal();
}

describe("aws.ssm staging (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let admin: SSMClient;
  before(async () => {
    moto = await startMoto();
    admin = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
  });
  after(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  async function labels(name: string): Promise<Record<string, string[]>> {
    const out = await admin.send(new GetParameterHistoryCommand({ Name: name, MaxResults: 50 }));
    return Object.fromEntries((out.Parameters ?? []).filter((p) => p.Labels?.length).map((p) => [String(p.Version), [...(p.Labels ?? [])].sort()]));
  }

  // dsops readers (GetParameter by name:current, else by name) are the plain readers here: a
  // GetParameter of the bare name outside dsops reads the latest version, which is the pending
  // one during a rotation (documented on the store).
  stagingContract("aws.ssm", async () => ({
    store: makeStore(moto.endpoint),
    key: (name) => `/staging/${name}`,
  }));

  describe("SSM specifics", () => {
    let store: AwsSsmStore;
    before(() => (store = makeStore(moto.endpoint)));
    after(async () => store.close());

    it("labels the versions current, pending and previous; current only while it is not the latest", async () => {
      const name = uid("labels");
      const a = await store.put(name, new Secret(val("a")));
      const p = await store.putPending(name, new Secret(val("b")));
      assert.deepEqual(await labels(name), { [a.versionId]: ["current"], [p.versionId]: ["pending"] });
      // A reader outside dsops reading the bare name gets the latest version: the pending one.
      const raw = (await admin.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter;
      assert.equal(String(raw?.Version), p.versionId);
      await store.promote(name, p.versionId);
      assert.deepEqual(await labels(name), { [a.versionId]: ["previous"] });
      // rollback: current is pinned to the older version
      await store.promote(name, a.versionId);
      assert.deepEqual(await labels(name), { [a.versionId]: ["current"], [p.versionId]: ["previous"] });
    });

    it("getMany follows the current label in its batch, and falls back to the bare name", async () => {
      const staged = uid("many-staged");
      const plain = uid("many-plain");
      const a = val("a");
      const b = val("b");
      const c = val("c");
      await store.put(staged, new Secret(a));
      await store.putPending(staged, new Secret(b));
      await admin.send(new PutParameterCommand({ Name: plain, Value: c, Type: "SecureString" }));
      const missing = uid("many-missing");
      const res = await store.getMany([{ key: staged }, { key: plain }, { key: missing }, { key: staged, version: "pending" }, { key: staged, version: "current" }]);
      assert.deepEqual([value(res[0]), value(res[1])], [a, c]);
      assert.ok(res[2] instanceof NotFoundError);
      assert.deepEqual([value(res[3]), value(res[4])], [b, a]);
      assert.equal((await store.describe({ key: staged })).versionId, "1");
    });

    it("a put on a staged parameter makes the new version current and the old current previous", async () => {
      const name = uid("put");
      const a = await store.put(name, new Secret(val("a")));
      const p = await store.putPending(name, new Secret(val("b")));
      await store.promote(name, p.versionId);
      await store.promote(name, a.versionId); // rollback pins current to version 1
      const c = await store.put(name, new Secret(val("c")));
      assert.deepEqual(await store.stagesOf(name), { current: c.versionId, previous: a.versionId });
      assert.equal((await store.get({ key: name })).versionId, c.versionId);
    });

    it("a discarded first rotation leaves no current version", async () => {
      const name = uid("first-discard");
      const p = await store.putPending(name, new Secret(val("b")));
      await store.discardPending(name, p.versionId);
      assert.deepEqual(await store.stagesOf(name), {});
      await assert.rejects(store.get({ key: name, version: "current" }), NotFoundError);
      await assert.rejects(store.describe({ key: name, version: "current" }), NotFoundError);
      // the next rotation starts over
      const q = await store.putPending(name, new Secret(val("c")));
      await store.promote(name, q.versionId);
      assert.deepEqual(await store.stagesOf(name), { current: q.versionId });
    });
  });
});
