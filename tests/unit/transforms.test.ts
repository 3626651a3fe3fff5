import { strict as assert } from "node:assert";
import fc from "fast-check";
import { applyTransforms, compileTransforms, formatStep, parseStep, splitChain } from "../../provider/engine/transforms";
import { Secret } from "../../provider/core/secret";
import { DsopsError, TransformError } from "../../provider/core/errors";

const run = (chain: string | string[], input: string, named = {}) => applyTransforms(compileTransforms(chain, named), new Secret(input)).reveal();

describe("transforms", () => {
  it("runs each builtin", () => {
    assert.equal(run("trim", "  a b \n"), "a b");
    assert.equal(run("multiline_to_single", "a\nb\r\nc"), "a b c");
    assert.equal(run("json_extract:.a.b[1]", '{"a":{"b":[1,"two"]}}'), "two");
    assert.equal(run("json_extract:.a", '{"a":{"b":1}}'), '{"b":1}');
    assert.equal(run("yaml_extract:.db.port", "db:\n  port: 5432\n"), "5432");
    assert.equal(run("base64_encode", "hello"), "aGVsbG8=");
    assert.equal(run("base64_decode", "aGVsbG8="), "hello");
    assert.equal(run("replace:-:_", "a-b-c"), "a_b_c");
    assert.equal(run("replace:a\\:b:c", "xa:by"), "xcy");
    assert.equal(run("join:,", '["a","b","c"]'), "a,b,c");
    assert.equal(run("join:;", "a\nb"), "a;b");
  });

  it("chains with | and with , where unambiguous", () => {
    assert.equal(run("json_extract:.list | join:,", '{"list":["x","y"]}'), "x,y");
    assert.equal(run("trim,base64_encode", " hi "), "aGk=");
    assert.deepEqual(splitChain("join:,"), ["join:,"]);
    assert.deepEqual(splitChain("replace:a,b:c|trim"), ["replace:a,b:c", "trim"]);
    assert.deepEqual(splitChain("trim, json_extract:.a"), ["trim", "json_extract:.a"]);
  });

  it("expands named chains, also inside chains", () => {
    const named = { pw: ["json_extract:.password", "trim"], both: "pw | base64_encode" };
    assert.equal(run("pw", '{"password":" s3 "}', named), "s3");
    assert.equal(run("both", '{"password":" s3 "}', named), "czM=");
  });

  it("reports bad transforms with the step and never the value", () => {
    assert.throws(() => parseStep("json_extrct:.a"), /unknown transform "json_extrct" \(did you mean "json_extract"\?\)/);
    assert.throws(() => parseStep("trim:x"), /takes no argument/);
    assert.throws(() => parseStep("json_extract"), /needs an argument/);
    assert.throws(() => parseStep("replace:abc"), /replace:<from>:<to>/);
    const value = "top-secret-value-123";
    assert.throws(
      () => run("json_extract:.a", value),
      (e: unknown) => e instanceof TransformError && e.message.startsWith('transform "json_extract:.a"') && !e.message.includes(value),
    );
    assert.throws(() => run("json_extract:.missing", '{"a":"top-secret-value-123"}'), (e: Error) => /no key "missing"/.test(e.message) && !e.message.includes(value));
    assert.throws(() => run("base64_decode", "not base64 !!"), /not base64/);
  });

  it("format(parse(step)) is the same step (property)", () => {
    const steps = fc.oneof(
      fc.constantFrom("trim", "multiline_to_single", "base64_encode", "base64_decode"),
      fc.stringMatching(/^[a-z]{1,5}(\.[a-z]{1,5}){0,3}(\[[0-9]\])?$/).map((p) => `json_extract:.${p}`),
      fc.stringMatching(/^[a-z,;|]{0,3}$/).filter((s) => !s.includes("|")).map((s) => `join:${s}`),
    );
    fc.assert(fc.property(steps, (s) => assert.equal(formatStep(parseStep(s)), s)));
  });

  it("no input crashes a transform with anything but the project's errors (property)", () => {
    const chains = ["json_extract:.a[0]", "yaml_extract:.a", "base64_decode", "join:,", "replace:a:b", "trim"];
    fc.assert(
      fc.property(fc.constantFrom(...chains), fc.string(), (chain, input) => {
        try {
          run(chain, input);
        } catch (e) {
          if (!(e instanceof DsopsError)) throw e;
        }
      }),
    );
  });
});
