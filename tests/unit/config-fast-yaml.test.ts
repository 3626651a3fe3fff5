import { strict as assert } from "node:assert";
import fc from "fast-check";
import YAML from "yaml";
import { parseConfig } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";
import { fastParseYaml } from "../../provider/engine/config/fast-yaml";

/** Problems and warnings of a file read with or without the fast path. */
function outcome(text: string, yamlFastPath: boolean, focusEnv?: string): { problems?: string[]; warnings?: readonly string[]; envs?: unknown } {
  try {
    const c = parseConfig(text, { file: "/x/dsops.yaml", label: "dsops.yaml", env: {}, yamlFastPath, deferUnsetEnv: true, focusEnv });
    return { warnings: c.warnings, envs: JSON.parse(JSON.stringify(c.envs)) };
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return { problems: e.problems };
  }
}

/** The value and problems of the yaml library's own reading (the slow path's first step). */
function library(text: string): { errors: number; value: unknown } {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  return { errors: doc.errors.length + doc.warnings.length, value: doc.errors.length ? undefined : doc.toJS() };
}

describe("config: the fast path of reading plain YAML", () => {
  it("reads what the yaml library reads, or leaves the file to it (random lines, keys and values)", () => {
    const keys = ["a", "b", "VAR_1", "envs", "x-y", "a.b", "p/q", "true", "null", "__proto__", "constructor", "1x", '"q"', "<<", "k k"];
    const values = [
      "", "# c", "b", "0", "12", '"s"', "'x'", "{ a: b, c: 1 }", "./x", "a  b", "http://h:1/p", "{ a: 'x', b: \"y\", c: ./p }", "0777", "007", "1_000", "1.5", "-5", "+1", "true", "True", "tRue", "FALSE", "~", "~/x", "../x", ".inf", ".x",
      "null", "NULL", "nULL", "yes", "no", "a #b", "a#b", "b:c", "x: y", "x:", "${X}", '"a\\"b"', '"a # b"', '"x" #c', '"x"#c',
      '"open', "'it''s'", "'open", "{a: ${X}}", "{}", "{ }", "{ a: b, }", "{ a: b }   # c", "{ a: b } x", "{ a: b, a: c }", "{ a: {b: c} }", "{ a }", "{a:b}", "[a, b]", "&x a", "*x", "!!str 1", "|", ">-", "@x", "`x", "%x", "? x", "- x", "x ",
    ];
    /** One of `xs`, the first `common` of them (plain YAML the fast path reads) much more often. */
    const pick = (xs: string[], common: number) => fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...xs.slice(0, common)) }, { weight: 1, arbitrary: fc.constantFrom(...xs.slice(common)) });
    // A tree of block mappings written out line by line, then sometimes spoiled: a line moved
    // to another indentation, or a stray line put in.
    type Tree = Array<[string, string | Tree]>;
    const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
      t: fc.array(fc.tuple(pick(keys, 6), fc.oneof({ weight: 4, arbitrary: pick(values, 12) }, { weight: 1, arbitrary: tie("t") })), { minLength: 1, maxLength: 4 }),
    })).t;
    const write = (t: Tree, step: number, depth = 0): string[] =>
      t.flatMap(([k, v]) => (typeof v === "string" ? [`${" ".repeat(depth * step)}${k}:${v ? ` ${v}` : ""}`] : [`${" ".repeat(depth * step)}${k}:`, ...write(v, step, depth + 1)]));
    const stray = fc.constantFrom("", "# comment", "   # indented comment", "  ", "  - item", "---", "...", "\tb: 1", "a: 1\r", "  continued", "é: 1", " b: 1", "     c: 2");
    const file = fc
      .tuple(tree, fc.constantFrom(1, 2, 3, 4), fc.array(fc.tuple(fc.nat(), stray), { maxLength: 2 }), fc.option(fc.tuple(fc.nat(), fc.constantFrom(-2, -1, 1, 2)), { nil: undefined }))
      .map(([t, step, strays, shift]) => {
        const lines = write(t, step);
        for (const [at, l] of strays) lines.splice(at % (lines.length + 1), 0, l);
        if (shift) {
          const i = shift[0] % lines.length;
          lines[i] = shift[1] < 0 ? lines[i].slice(-shift[1]) : " ".repeat(shift[1]) + lines[i];
        }
        return lines;
      });
    let fast = 0;
    fc.assert(
      fc.property(file, fc.boolean(), (lines, finalNewline) => {
        const text = lines.join("\n") + (finalNewline ? "\n" : "");
        const mine = fastParseYaml(text);
        if (!mine) return;
        fast++;
        const theirs = library(text);
        assert.equal(theirs.errors, 0, `the fast path read a file the library refuses:\n${text}`);
        assert.deepStrictEqual(mine.value, theirs.value, text);
      }),
      { numRuns: 3000 },
    );
    assert.ok(fast > 300, `only ${fast} of 3000 files took the fast path`);
  });

  it("takes the fast path for a plain dsops.yaml, and gives the same configuration as the document path", () => {
    const text = `version: 1
# stores
secretStores:
  local: { type: file, path: ./s.store }   # a comment
  lit: { type: literal, values: { a: b } }
envs:
  dev:
    A: { from: "store://local/app/a" }
    B: { from: local:app/b, optional: true }
    C:
      literal: 'it''s'
`;
    assert.equal(fastParseYaml(text), undefined, "a nested flow mapping is left to the library");
    const plain = text.replace("{ type: literal, values: { a: b } }", "\n    type: literal\n    values: { a: b }");
    assert.ok(fastParseYaml(plain));
    assert.deepStrictEqual(outcome(plain, true), outcome(plain, false));
  });

  it("names the same problems at the same line:col on both paths (schema, reference, store, name, other env)", () => {
    const text = `version: 1
secretStores:
  local: { type: file }
  bad: { type: nope }
  vault: { type: vault, address: "\${VAULT_ADDR}" }
envs:
  prod:
    A: { from: "store://nostore/x" }
    B: { from: "store://local/x", transform: "nosuch" }
    C: { literal: "x", unknown: 1 }
    D: {}
    my-var: { literal: "x" }
    E: { from: "store://vault/x", optional: maybe }
  other:
    F: { from: "store://local/x", extra: 1 }
`;
    assert.ok(fastParseYaml(text), "the file is in the fast path's subset");
    const fast = outcome(text, true);
    assert.ok(fast.problems && fast.problems.length >= 3, JSON.stringify(fast));
    assert.ok(fast.problems.every((p) => / at dsops\.yaml:\d+:\d+/.test(p)), fast.problems.join("\n"));
    assert.deepStrictEqual(fast, outcome(text, false));
    // Past the schema: a store type, references, transforms, an entry with neither literal nor from.
    const refs = text.replace("    C: { literal: \"x\", unknown: 1 }\n", "").replace(", optional: maybe", "").replace(", extra: 1", "");
    assert.ok(fastParseYaml(refs));
    const later = outcome(refs, true);
    assert.ok(later.problems && later.problems.length >= 4 && later.problems.every((p) => / at dsops\.yaml:\d+:\d+/.test(p)), JSON.stringify(later));
    assert.deepStrictEqual(later, outcome(refs, false));
    // With focus on one env, the other's problems are warnings, positions included.
    const focused = outcome(refs, true, "other");
    assert.ok(focused.warnings?.length || focused.problems?.length);
    assert.deepStrictEqual(focused, outcome(refs, false, "other"));
    // A file that loads: its warnings (a name a shell cannot use, an unset ${VAR}) with positions.
    const ok = `version: 1\nsecretStores:\n  vault: { type: vault, address: "\${VAULT_ADDR}" }\nenvs:\n  prod:\n    my-var: { from: "store://vault/x" }\n`;
    assert.ok(fastParseYaml(ok));
    const good = outcome(ok, true);
    assert.ok(good.warnings && good.warnings.length === 2 && good.warnings.every((w) => / at dsops\.yaml:\d+:\d+/.test(w)), JSON.stringify(good));
    assert.deepStrictEqual(good, outcome(ok, false));
  });

  it("leaves duplicate keys, anchors, aliases, tabs and CRs to the library, whose errors are unchanged", () => {
    for (const text of [
      "version: 1\nenvs:\n  dev:\n    A: { literal: x }\n    A: { literal: y }\n",
      "version: 1\nenvs:\n  dev:\n    A: { literal: x, literal: y }\n",
      "version: 1\nversion: 1\n",
      "version: 1\nenvs:\n  dev: &d\n    A: { literal: x }\n  prod: *d\n",
      "version: 1\nenvs:\n\tdev: {}\n",
      "version: 1\r\nenvs: {}\r\n",
    ])
      assert.equal(fastParseYaml(text), undefined, text);
    const dup = outcome("version: 1\nenvs:\n  dev:\n    A: { literal: x }\n    A: { literal: y }\n", true);
    assert.deepStrictEqual(dup.problems, ["Map keys must be unique at dsops.yaml:5:5"]);
  });
});
