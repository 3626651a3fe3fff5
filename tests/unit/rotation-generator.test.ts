import { strict as assert } from "node:assert";
import { generatorSchema } from "../../provider/rotation/settings";
import { checkPolicy, generate } from "../../provider/rotation/generator";

const policy = (o: Record<string, unknown> = {}) => generatorSchema.parse(o);

describe("rotation: value generator", () => {
  it("password: the length asked, every class present, only allowed characters", () => {
    for (let i = 0; i < 200; i++) {
      const v = generate(policy({ length: 16 })).reveal();
      assert.equal(v.length, 16);
      assert.match(v, /[a-z]/);
      assert.match(v, /[A-Z]/);
      assert.match(v, /[0-9]/);
      assert.match(v, /[^A-Za-z0-9]/);
    }
  });

  it("formats: alphanumeric, hex, base64, uuid", () => {
    assert.match(generate(policy({ format: "alphanumeric", length: 50 })).reveal(), /^[A-Za-z0-9]{50}$/);
    assert.match(generate(policy({ format: "hex", length: 64 })).reveal(), /^[0-9a-f]{64}$/);
    assert.match(generate(policy({ format: "base64", length: 44 })).reveal(), /^[A-Za-z0-9+/]{44}$/);
    assert.match(generate(policy({ format: "uuid" })).reveal(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("excluded characters and the target's forbidden ones never appear; minimum counts hold", () => {
    const p = policy({ length: 24, exclude: "0O1lI", symbol_set: "!@#", symbols: 3, digits: 4 });
    for (let i = 0; i < 300; i++) {
      const v = generate(p, { forbidden: "@" }).reveal();
      assert.doesNotMatch(v, /[0O1lI@]/);
      assert.ok((v.match(/[!#]/g) ?? []).length >= 3);
      assert.ok((v.match(/[0-9]/g) ?? []).length >= 4);
    }
  });

  it("every character of the alphabet is drawn about equally often (no modulo bias)", () => {
    const counts = new Map<string, number>();
    const n = 2000;
    for (let i = 0; i < n; i++) for (const c of generate(policy({ format: "hex", length: 32 })).reveal()) counts.set(c, (counts.get(c) ?? 0) + 1);
    const expected = (n * 32) / 16;
    assert.equal(counts.size, 16);
    // Chi-square with 15 degrees of freedom: 37.7 is the 0.999 quantile.
    const chi = [...counts.values()].reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    assert.ok(chi < 37.7, `chi-square ${chi.toFixed(1)}`);
  });

  it("refuses policies the target or the alphabet cannot meet", () => {
    assert.throws(() => checkPolicy(policy({ length: 64 }), { maxLength: 32 }), /length 64 exceeds what the target accepts \(32\)/);
    assert.throws(() => checkPolicy(policy({ length: 8 }), { minLength: 12 }), /shorter than the target requires/);
    assert.throws(() => checkPolicy(policy({ format: "alphanumeric", exclude: "0123456789" })), /needs 1 digits character\(s\), but every one is excluded/);
    assert.throws(() => checkPolicy(policy({ length: 8, lower: 3, upper: 3, digits: 3 })), /minimum counts \(10\) exceed length 8/);
    assert.throws(() => generatorSchema.parse({ length: 4 }), /too small|>=8/);
  });
});
