import { strict as assert } from "node:assert";
import fc from "fast-check";
import { parseStoreUri, formatStoreUri, parseFrom, type SecretRef } from "../../provider/engine/refs";
import { DsopsError, RefError } from "../../provider/core/errors";
import { extractJsonField } from "../../provider/engine/jsonpath";

describe("references", () => {
  it("parses store:// URIs with path, field, version and options", () => {
    // Issue 17: an unknown query parameter (`&region=…`, read by no store) is an error now, not ignored.
    assert.deepEqual(parseStoreUri("store://aws/myapp/prod#url?version=AWSCURRENT"), {
      store: "aws",
      key: "myapp/prod",
      field: "url",
      version: "AWSCURRENT",
    });
    assert.deepEqual(parseStoreUri("store://aws/myapp/prod#url?version_stage=blue"), { store: "aws", key: "myapp/prod", field: "url", options: { version_stage: "blue" } });
    assert.throws(() => parseStoreUri("store://aws/myapp/prod#url?version=AWSCURRENT&region=eu-west-1"), /unknown query parameter "region"/);
    assert.deepEqual(parseStoreUri("store://vault/kv/data/x#.db.hosts[0]"), { store: "vault", key: "kv/data/x", field: ".db.hosts[0]" });
    assert.deepEqual(parseStoreUri("store://gcp/name@3"), { store: "gcp", key: "name@3" });
    assert.deepEqual(parseStoreUri("store://ssm//app/db/url"), { store: "ssm", key: "/app/db/url" });
  });

  it("rejects malformed URIs with the project's error type", () => {
    for (const bad of ["aws/x", "store://", "store://aws", "store://aws/", "store:///x"]) {
      assert.throws(() => parseStoreUri(bad), RefError, bad);
    }
  });

  // Issue 17: these were accepted and read the wrong thing (the whole value, the last of two versions, nothing).
  it("refuses unknown, repeated and empty query parameters, ??, and empty or malformed fields", () => {
    const cases: Array<[string, RegExp]> = [
      ["store://s/k?foo=bar", /^reference "store:\/\/s\/k\?foo=bar": unknown query parameter "foo"; a reference takes version, version_id, version_stage$/],
      ["store://s/k?versoin=1", /unknown query parameter "versoin" \(did you mean "version"\?\)/],
      ["store://s/k?version=1&version=2", /query parameter "version" is given twice/],
      ["store://s/k?version=1&version_stage=x", /give one of version, version_id, version_stage, not version and version_stage/],
      ["store://s/k??version=1", /"\?\?": the query starts after a single "\?"/],
      ["store://s/k?", /"\?" with no query after it/],
      ["store://s/k?version=", /query parameter "version" has no value/],
      ["store://s/k?version", /query parameter "version" has no value/],
      ["store://s/k?version=1&", /an empty query parameter/],
      ["store://s/k?version=1#f", /"#" inside the query: the field goes before it/],
      ["store://s/k#", /nothing after "#" \(to read the whole secret, leave out "#"\)/],
      ["store://s/k#.", /the field "#\." names no field/],
      ["store://s/k#..", /bad field "#\.\.": empty step after "\."/],
      ["store://s/k#a..b", /bad field "#a\.\.b"/],
      ["store://s/k#a.", /bad field "#a\."/],
      ["store://s/k#[0", /bad field "#\[0": missing "\]"/],
      ["store://s/k#%2E%2E", /bad field "#\.\."/],
    ];
    for (const [uri, re] of cases) assert.throws(() => parseStoreUri(uri), (e: unknown) => e instanceof RefError && re.test(e.message), uri);
    assert.throws(() => parseFrom({ store: "s", key: "k#" }), /reference to store "s", key "k#": nothing after "#"/);
    assert.throws(() => parseFrom({ provider: "s", key: "k#.." }), /bad field "#\.\."/);
    assert.throws(() => parseFrom({ store: "s", key: "#f" }), /missing key before "#"/);
    // What stays valid: version ids with "+" (a space, as in any URL query), negative indexes (from the end), quoted keys.
    assert.deepEqual(parseStoreUri("store://s/k#.hosts[-1]?version=3"), { store: "s", key: "k", field: ".hosts[-1]", version: "3" });
    assert.deepEqual(parseStoreUri('store://s/k#["a.b"]'), { store: "s", key: "k", field: '["a.b"]' });
    assert.equal(extractJsonField('{"hosts":["a","b"]}', ".hosts[-1]"), "b");
    assert.throws(() => extractJsonField('{"hosts":["a","b"]}', ".hosts[-3]"), /index -3 out of range \(length 2\)/);
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
        // Issue 17: malformed field paths (`[A`, `..`, `.`) are refused by the parser now, so only well-formed ones round-trip.
        field: fc.option(fc.stringMatching(/^\.?[A-Za-z0-9_-]{1,6}(\.[A-Za-z0-9_-]{1,4}|\[-?[0-9]\]){0,2}$/), { nil: undefined }),
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
          if (e instanceof URIError) throw new Error("URIError escaped for " + JSON.stringify(s), { cause: e });
        }
      }),
    );
  });
});
