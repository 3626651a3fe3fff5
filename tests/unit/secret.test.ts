import { strict as assert } from "node:assert";
import { inspect, format } from "node:util";
import { Secret, scrub } from "../../provider/core/secret";

describe("Secret", () => {
  const value = "hunter2-very-secret";
  const s = new Secret(value);

  it("reveals only through reveal()", () => {
    assert.equal(s.reveal(), value);
    assert.equal(s.length, value.length);
  });

  it("redacts in String(), templates, JSON, inspect, format and concatenation", () => {
    const outputs = [String(s), `${s}`, JSON.stringify({ s }), inspect(s), inspect({ nested: { s } }), format("%s %o %j", s, s, { s }), "x" + s];
    for (const o of outputs) assert.ok(!o.includes(value), o);
    assert.equal(String(s), "[secret]");
  });

  it("keeps the value out of its own properties and errors built from it", () => {
    assert.deepEqual(Object.keys(s), []);
    const err = new Error(`failed with ${s}`);
    assert.ok(!String(err.stack).includes(value));
  });

  it("masks for display", () => {
    assert.equal(new Secret("").masked(), "");
    assert.equal(new Secret("short").masked(), "********");
    assert.equal(s.masked(), "********");
  });

  it("scrubs plaintexts out of text", () => {
    assert.equal(scrub(`a ${value} b`, [s]), "a [secret] b");
  });
});
