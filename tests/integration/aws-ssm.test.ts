// Runs against moto_server, a local server speaking the AWS Systems Manager (Parameter Store) wire protocol, not real AWS; fault tests put a loopback proxy in front of it that answers chosen calls with AWS errors.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { GetParameterCommand, LabelParameterVersionCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { AwsSsmStore, joinPrefix } from "../../provider/stores/aws-ssm";
import type { StoreSettings } from "../../provider/stores/settings";
import type { SecretVersion } from "../../provider/stores/types";
import { motoCredentials, startAwsProxy, startMoto, type AwsProxy, type Moto } from "../support/moto";
import { storeContract } from "../support/store-contract";

type SsmSettings = Extract<StoreSettings, { type: "aws.ssm" }>;

function uid(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

function makeStore(endpoint: string, extra: Partial<SsmSettings> = {}): AwsSsmStore {
  return new AwsSsmStore(
    "ssm",
    { type: "aws.ssm", endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test", with_decryption: true, ...extra },
    { configDir: tmpdir(), clock: systemClock, env: {} },
  );
}

function value(r: SecretVersion | Error): string {
  if (r instanceof Error) throw r;
  return r.value.reveal();
}

describe("aws.ssm store (moto_server)", function () {
  this.timeout(60000);
  let moto: Moto;
  let admin: SSMClient;

  /** Write `values` to parameter `name` as successive versions (oldest first); their version numbers. */
  async function seed(name: string, values: string[], type: "SecureString" | "String" = "SecureString"): Promise<string[]> {
    const ids: string[] = [];
    for (const [i, v] of values.entries()) {
      const out = await admin.send(new PutParameterCommand({ Name: name, Value: v, Type: type, Overwrite: i > 0 }));
      ids.push(String(out.Version));
    }
    return ids;
  }

  before(async () => {
    moto = await startMoto();
    admin = new SSMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
  });
  after(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  // The contract runs with a prefix: its keys are relative names the store joins to /contract.
  storeContract("aws.ssm", async () => ({
    store: makeStore(moto.endpoint, { parameter_prefix: "/contract" }),
    seed: (key, values) => seed(joinPrefix("/contract", key), values),
  }));

  describe("names, prefixes and selectors", () => {
    let proxy: AwsProxy;
    let store: AwsSsmStore;
    before(async () => {
      proxy = await startAwsProxy(moto.endpoint);
      store = makeStore(proxy.endpoint);
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("joins parameter_prefix to keys that do not start with /", async () => {
      const app = uid("myapp");
      await seed(`/${app}/prod/db/url`, ["prefixed-value"]);
      await seed(`/${app}/shared`, ["absolute-value"]);
      for (const prefix of [`/${app}/prod`, `/${app}/prod/`]) {
        const s = makeStore(moto.endpoint, { parameter_prefix: prefix });
        try {
          assert.equal(s.ref({ key: "db/url" }).name, `/${app}/prod/db/url`);
          assert.equal((await s.get({ key: "db/url" })).value.reveal(), "prefixed-value");
          assert.equal((await s.get({ key: `/${app}/shared` })).value.reveal(), "absolute-value");
          assert.equal((await s.describe({ key: "db/url" })).versionId, "1");
          await assert.rejects(s.get({ key: "db/nope" }), (e: unknown) => {
            assert.ok(e instanceof NotFoundError);
            assert.ok(e.message.includes(`/${app}/prod/db/nope`), e.message);
            return true;
          });
        } finally {
          await s.close();
        }
      }
    });

    it("reads a top-level name without a prefix", async () => {
      const name = uid("toplevel");
      await seed(name, ["top-value"]);
      assert.equal((await store.get({ key: name })).value.reveal(), "top-value");
      const [r] = await store.getMany([{ key: name }, { key: uid("toplevel-missing") }]);
      assert.equal(value(r), "top-value");
    });

    it("reads versions by number, given as version or in the key", async () => {
      const name = `/${uid("ver")}/p`;
      assert.deepEqual(await seed(name, ["one", "two", "three"]), ["1", "2", "3"]);
      const v1 = await store.get({ key: name, version: "1" });
      assert.equal(v1.value.reveal(), "one");
      assert.equal(v1.versionId, "1");
      assert.ok(v1.updatedAt && !Number.isNaN(Date.parse(v1.updatedAt)));
      assert.equal((await store.get({ key: `${name}:2` })).value.reveal(), "two");
      assert.equal((await store.get({ key: `${name}:1`, version: "3" })).value.reveal(), "three");
      assert.equal((await store.get({ key: name })).versionId, "3");
      await assert.rejects(store.get({ key: name, version: "9" }), (e: unknown) => {
        assert.ok(e instanceof NotFoundError);
        assert.ok(e.message.includes(`"${name}:9"`), e.message);
        return true;
      });
    });

    it("reads versions by label (LabelParameterVersion)", async () => {
      const name = `/${uid("label")}/p`;
      await seed(name, ["blue-value", "green-value"]);
      await admin.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: ["blue"] }));
      const blue = await store.get({ key: name, version: "blue" });
      assert.equal(blue.value.reveal(), "blue-value");
      assert.equal(blue.versionId, "1");
      assert.equal((await store.get({ key: `${name}:blue` })).value.reveal(), "blue-value");
      assert.equal((await store.describe({ key: name, version: "blue" })).versionId, "1");
      await assert.rejects(store.get({ key: name, version: "purple" }), NotFoundError);
    });

    it("reads a parameter by ARN, with and without a selector", async () => {
      const name = `/${uid("arn")}/p`;
      await seed(name, ["arn-one", "arn-two"]);
      const arn = `arn:aws:ssm:us-east-1:123456789012:parameter${name}`;
      assert.equal(store.ref({ key: `${arn}:1` }).selector, "1");
      assert.equal((await store.get({ key: arn })).value.reveal(), "arn-two");
      assert.equal((await store.get({ key: `${arn}:1` })).value.reveal(), "arn-one");
      const [a, b] = await store.getMany([{ key: arn }, { key: arn, version: "1" }]);
      assert.deepEqual([value(a), value(b)], ["arn-two", "arn-one"]);
    });

    it("batches versions, labels and duplicates in GetParameters, one request per parameter a call", async () => {
      const name = `/${uid("mix")}/p`;
      const other = `/${uid("mix")}/q`;
      await seed(name, ["m1", "m2", "m3"]);
      await seed(other, ["o1", "o2"]);
      await admin.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: 2, Labels: ["stable"] }));
      const missing = `/${uid("mix")}/absent`;
      proxy.reset();
      const results = await store.getMany([
        { key: name },
        { key: other, version: "1" },
        { key: name, version: "1" },
        { key: name, version: "stable" },
        { key: missing },
        { key: name },
        { key: other, version: "7" },
      ]);
      assert.deepEqual(results.slice(0, 4).map(value), ["m3", "o1", "m1", "m2"]);
      assert.ok(results[4] instanceof NotFoundError && results[4].message.includes(missing));
      assert.equal(value(results[5]), "m3");
      assert.ok(results[6] instanceof NotFoundError && results[6].message.includes(`${other}:7`), String(results[6]));
      // One GetParameters for name, other:1 and missing, with one for name:current and
      // missing:current beside it (bare names follow the rotation label `current`); name:1,
      // name:stable and other:7 alone (a batch holds one request per parameter); the repeated
      // `name` is asked once.
      const gets = proxy.calls.filter((c) => c === "GetParameters").length;
      const singles = proxy.calls.filter((c) => c === "GetParameter").length;
      assert.equal(gets, 2, proxy.calls.join(","));
      assert.equal(singles, 3, proxy.calls.join(","));
    });

    it("reads 23 parameters (one missing) in 3 GetParameters calls, each with its name:current call beside it", async () => {
      const base = `/${uid("many")}`;
      const names = Array.from({ length: 22 }, (_, i) => `${base}/k${i}`);
      await Promise.all(names.map((n, i) => seed(n, [`many-${i}`])));
      const keys = [...names];
      keys.splice(5, 0, `${base}/missing`);
      proxy.reset();
      const results = await store.getMany(keys.map((key) => ({ key })));
      results.forEach((r, i) => {
        if (i === 5) assert.ok(r instanceof NotFoundError);
        else assert.equal(value(r), `many-${names.indexOf(keys[i])}`);
      });
      assert.deepEqual(proxy.calls, ["GetParameters", "GetParameters", "GetParameters", "GetParameters", "GetParameters", "GetParameters"]);
    });
  });

  describe("SecureString decryption", () => {
    it("decrypts by default and returns what the service sends without decryption otherwise", async () => {
      const name = `/${uid("secure")}/p`;
      const plain = `/${uid("plain")}/p`;
      await seed(name, ["secure-plaintext"]);
      await seed(plain, ["plain-text"], "String");
      const decrypting = makeStore(moto.endpoint);
      const raw = makeStore(moto.endpoint, { with_decryption: false });
      try {
        assert.equal((await decrypting.get({ key: name })).value.reveal(), "secure-plaintext");
        assert.equal(value((await decrypting.getMany([{ key: name }, { key: plain }]))[0]), "secure-plaintext");
        // Without decryption AWS sends the base64 KMS ciphertext; moto sends "kms:<key id>:<plaintext>".
        // Either way it is not the plaintext.
        const enc = await raw.get({ key: name });
        assert.notEqual(enc.value.reveal(), "secure-plaintext");
        assert.notEqual(value((await raw.getMany([{ key: name }, { key: plain }]))[0]), "secure-plaintext");
        // A String parameter reads the same either way.
        assert.equal((await raw.get({ key: plain })).value.reveal(), "plain-text");
      } finally {
        await decrypting.close();
        await raw.close();
      }
    });
  });

  describe("describe", () => {
    let proxy: AwsProxy;
    let store: AwsSsmStore;
    before(async () => {
      proxy = await startAwsProxy(moto.endpoint);
      store = makeStore(proxy.endpoint);
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("uses DescribeParameters, which carries no value (and name:current without decryption beside it)", async () => {
      const name = `/${uid("desc")}/p`;
      await seed(name, ["d1", "d2"]);
      proxy.reset();
      const info = await store.describe({ key: name });
      assert.equal(info.versionId, "2");
      assert.ok(info.updatedAt && !Number.isNaN(Date.parse(info.updatedAt)));
      assert.deepEqual([...proxy.calls].sort(), ["DescribeParameters", "GetParameter"]);
      assert.equal((await store.describe({ key: name, version: "1" })).versionId, "1");
      await assert.rejects(store.describe({ key: `/${uid("desc")}/absent` }), NotFoundError);
      await assert.rejects(store.describe({ key: name, version: "5" }), NotFoundError);
    });

    it("falls back to GetParameter without decryption when DescribeParameters is refused", async () => {
      const name = `/${uid("desc-refused")}/p`;
      await seed(name, ["r1", "r2", "r3"]);
      const local = makeStore(proxy.endpoint);
      try {
        proxy.reset();
        proxy.fail("DescribeParameters", { status: 400, type: "AccessDeniedException" });
        assert.equal((await local.describe({ key: name })).versionId, "3");
        assert.deepEqual([...proxy.calls].sort(), ["DescribeParameters", "GetParameter", "GetParameter"]);
        proxy.reset();
        assert.equal((await local.describe({ key: name })).versionId, "3");
        assert.deepEqual(proxy.calls, ["GetParameter", "GetParameter"]);
      } finally {
        await local.close();
      }
    });
  });

  describe("writes", () => {
    let store: AwsSsmStore;
    before(() => (store = makeStore(moto.endpoint, { parameter_prefix: "/written" })));
    after(() => store.close());

    it("creates a SecureString parameter, then adds versions", async () => {
      const key = uid("put");
      const first = await store.put(key, new Secret("w1"), { description: "made by dsops" });
      assert.equal(first.versionId, "1");
      const p = (await admin.send(new GetParameterCommand({ Name: `/written/${key}`, WithDecryption: true }))).Parameter;
      assert.equal(p?.Type, "SecureString");
      assert.equal(p?.Value, "w1");
      const second = await store.put(key, new Secret("w2"));
      assert.equal(second.versionId, "2");
      assert.equal((await store.get({ key })).value.reveal(), "w2");
      assert.equal((await store.get({ key, version: "1" })).value.reveal(), "w1");
    });

    it("keeps the type of an existing parameter", async () => {
      const name = `/${uid("typed")}/p`;
      await seed(name, ["s1"], "String");
      assert.equal((await store.put(name, new Secret("s2"))).versionId, "2");
      const p = (await admin.send(new GetParameterCommand({ Name: name }))).Parameter;
      assert.equal(p?.Type, "String");
      assert.equal(p?.Value, "s2");
    });

    it("refuses to write to a version selector", async () => {
      await assert.rejects(store.put("x:3", new Secret("never")), (e: unknown) => e instanceof DsopsError && !e.message.includes("never"));
    });
  });

  describe("errors", () => {
    let proxy: AwsProxy;
    let store: AwsSsmStore;
    before(async () => {
      proxy = await startAwsProxy(moto.endpoint);
      store = makeStore(proxy.endpoint);
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("names the store and key of a missing parameter or version, never the value", async () => {
      const name = `/${uid("err")}/p`;
      await seed(name, ["do-not-leak-this-value"]);
      for (const [key, version] of [[`/${uid("absent")}/p`, undefined], [name, "42"], [name, "nolabel"]] as const) {
        await assert.rejects(store.get({ key, version }), (e: unknown) => {
          assert.ok(e instanceof NotFoundError, String(e));
          assert.ok(e.message.startsWith(`store "ssm": parameter "${key}`), e.message);
          assert.ok(!`${e.message}${e.stack}${JSON.stringify(e)}`.includes("do-not-leak-this-value"));
          return true;
        });
      }
    });

    for (const [type, status] of [["ThrottlingException", 400], ["InternalServerError", 500]] as const) {
      it(`maps ${type} (HTTP ${status}) to a retryable StoreError, in get and getMany`, async () => {
        proxy.fail("GetParameter", { status, type }, 1);
        proxy.fail("GetParameters", { status, type }, 1);
        for (const p of [store.get({ key: "/x" }), store.getMany([{ key: "/x" }, { key: "/y" }])]) {
          await assert.rejects(p, (e: unknown) => {
            assert.ok(e instanceof StoreError && e.retryable, String(e));
            assert.ok(e.message.includes(type), e.message);
            return true;
          });
        }
      });
    }

    it("maps a refused request to AuthError, and falls back from a refused GetParameters", async () => {
      proxy.fail("GetParameter", { status: 400, type: "AccessDeniedException", message: "not authorized" }, 1);
      await assert.rejects(store.get({ key: "/x" }), AuthError);
      const name = `/${uid("refused")}/p`;
      await seed(name, ["refused-ok"]);
      const local = makeStore(proxy.endpoint);
      try {
        proxy.reset();
        proxy.fail("GetParameters", { status: 400, type: "AccessDeniedException" });
        const [a, b] = await local.getMany([{ key: name }, { key: `/${uid("refused")}/absent` }]);
        assert.equal(value(a), "refused-ok");
        assert.ok(b instanceof NotFoundError);
        assert.deepEqual([...proxy.calls].sort(), ["GetParameter", "GetParameter", "GetParameter", "GetParameter", "GetParameters", "GetParameters"]);
      } finally {
        await local.close();
      }
    });

    it("gives each key its own error when a malformed name fails the whole GetParameters call", async () => {
      const name = `/${uid("malformed")}/p`;
      await seed(name, ["still-read"]);
      proxy.fail("GetParameters", { status: 400, type: "ValidationException", message: "name failed to satisfy constraint" }, 1);
      const [a] = await store.getMany([{ key: name }, { key: "/other" }]);
      assert.equal(value(a), "still-read");
    });

    it("leaves the service's message out of write errors (it may echo the value)", async () => {
      const v = `leaky-${randomBytes(6).toString("hex")}`;
      proxy.fail("PutParameter", { status: 400, type: "ValidationException", message: `Value '${v}' at 'value' failed to satisfy constraint` }, 1);
      await assert.rejects(store.put("/some/param", new Secret(v)), (e: unknown) => {
        assert.ok(e instanceof StoreError && !e.retryable, String(e));
        assert.ok(e.message.includes("ValidationException") && e.message.includes('"/some/param"'), e.message);
        assert.ok(!`${e.message}${e.stack}${JSON.stringify(e)}${String(e.cause)}`.includes(v));
        return true;
      });
    });

    it("checks connectivity with one DescribeParameters call", async () => {
      await store.check();
      assert.deepEqual(proxy.calls, ["DescribeParameters"]);
    });
  });
});
