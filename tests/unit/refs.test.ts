import { strict as assert } from "node:assert";
import fc from "fast-check";
import { parseStoreUri, formatStoreUri, parseFrom, type SecretRef } from "../../provider/engine/refs";
import { DsopsError, RefError } from "../../provider/engine/errors";

describe("references", () => {
  it("parses store:// URIs with path, field, version and options", () => {
    assert.deepEqual(parseStoreUri("store://aws/myapp/prod#url?version=AWSCURRENT&region=eu-west-1"), {
      store: "aws",
      key: "myapp/prod",
      field: "url",
      version: "AWSCURRENT",
      options: { region: "eu-west-1" },
    });
    assert.deepEqual(parseStoreUri("store://vault/kv/data/x#.db.hosts[0]"), { store: "vault", key: "kv/data/x", field: ".db.hosts[0]" });
    assert.deepEqual(parseStoreUri("store://gcp/name@3"), { store: "gcp", key: "name@3" });
    assert.deepEqual(parseStoreUri("store://ssm//app/db/url"), { store: "ssm", key: "/app/db/url" });
  });

  it("rejects malformed URIs with the project's error type", () => {
    for (const bad of ["aws/x", "store://", "store://aws", "store://aws/", "store:///x"]) {
      assert.throws(() => parseStoreUri(bad), RefError, bad);
    }
  });

  it("normalises every from form", () => {
    assert.deepEqual(parseFrom("store://a/k#f"), { store: "a", key: "k", field: "f" });
    assert.deepEqual(parseFrom({ store: "a", key: "k#f", version: "2" }), { store: "a", key: "k", field: "f", version: "2" });
    assert.deepEqual(parseFrom({ provider: "p", key: "k" }), { store: "p", key: "k" });
    assert.deepEqual(parseFrom({ store: "store://a/k?version=1" }), { store: "a", key: "k", version: "1" });
    assert.deepEqual(parseFrom({ store: "store://a/k?version=1", version: "7" }), { store: "a", key: "k", version: "7" });
    assert.throws(() => parseFrom({ store: "a" }), /missing key/);
  });

  it("formats and parses back to the same reference (property)", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_.@:+=, -]{1,12}$/);
    const ref = fc.record(
      {
        store: fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/),
        key: fc.array(segment, { minLength: 1, maxLength: 4 }).map((a) => a.join("/")),
        field: fc.option(fc.stringMatching(/^[A-Za-z0-9_.\[\]-]{1,10}$/), { nil: undefined }),
        version: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/), { nil: undefined }),
      },
      { requiredKeys: ["store", "key"] },
    );
    fc.assert(
      fc.property(ref, (r) => {
        const clean: SecretRef = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as SecretRef;
        assert.deepEqual(parseStoreUri(formatStoreUri(clean)), clean);
      }),
    );
  });

  it("never crashes with anything but the project's errors (property)", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseStoreUri("store://" + s);
        } catch (e) {
          if (!(e instanceof DsopsError) && !(e instanceof URIError)) throw e;
          if (e instanceof URIError) throw new Error("URIError escaped for " + JSON.stringify(s));
        }
      }),
    );
  });
});
