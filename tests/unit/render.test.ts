import { strict as assert } from "node:assert";
import YAML from "yaml";
import { dotenvValue, formatFromPath, render } from "../../provider/engine/render";
import { Secret } from "../../provider/core/secret";

const vars = { B: new Secret("has space"), A: new Secret("plain"), C: new Secret('q"\\\n\r\t'), E: new Secret(""), D: new Secret("x=$y#z") };

describe("output formats", () => {
  it("dotenv: sorted keys, quoting and escaping exactly when needed", () => {
    assert.equal(
      render("dotenv", { variables: vars, generatedAt: "t" }),
      'A=plain\nB="has space"\nC="q\\"\\\\\\n\\r\\t"\nD="x=$y#z"\nE=""\n',
    );
    for (const [v, out] of [["it's", `"it's"`], ["back\\slash", "back\\slash"], ["tab\t", '"tab\\t"'], ["a#b", '"a#b"']]) assert.equal(dotenvValue(v), out);
  });

  it("json and yaml carry generated_at, generated_by and variables", () => {
    const j = JSON.parse(render("json", { variables: vars, generatedAt: "2026-01-01T00:00:00.000Z" }));
    assert.deepEqual(Object.keys(j), ["generated_at", "generated_by", "variables"]);
    assert.equal(j.generated_by, "dsops");
    assert.equal(j.variables.C, 'q"\\\n\r\t');
    const y = YAML.parse(render("yaml", { variables: vars, generatedAt: "2026-01-01T00:00:00.000Z" }));
    assert.deepEqual(y, j);
  });

  it("takes the format from the file name", () => {
    const cases: Array<[string, string | undefined]> = [
      [".env", "dotenv"], ["prod.env", "dotenv"], [".env.local", "dotenv"], ["out/x.json", "json"], ["a.yaml", "yaml"], ["a.yml", "yaml"],
      ["a.tmpl", "template"], ["a.template", "template"], ["a.txt", undefined],
    ];
    for (const [p, f] of cases) assert.equal(formatFromPath(p), f, p);
  });
});
