import { strict as assert } from "node:assert";
import { configRules, fullConfigSchema } from "../../provider/compose/config-schema";
import { createConfigLoader } from "../../provider/engine/config/load";
import { storeSettingsSchemas, storeTypes } from "../../provider/stores/settings";

/**
 * Issue 20: the composed loader builds a feature's schema (and runs the features' checks) only
 * when the file has its section or a variable its key. Every file must load, or fail, exactly as
 * with every feature's schema built: same value, same warnings, same messages.
 */
const lazy = createConfigLoader(configRules);
const full = createConfigLoader({ schema: fullConfigSchema(), checks: configRules.checks, prepare: configRules.prepare });

const texts = [
  "version: 1\nsecretStores:\n  local: { type: file }\nenvs:\n  dev:\n    A: { literal: x }\n    B: { from: \"store://local/b\" }\n",
  "version: 1\ncolour: red\nenvs:\n  dev:\n    A: { literal: x }\n",
  "version: 1\npolices: {}\nenvs:\n  dev:\n    A: { literal: x }\n",
  "envs:\n  dev:\n    A: { literal: x, acess: open }\n",
  "envs:\n  dev:\n    A: { literal: x, colour: open }\n",
  "envs:\n  dev:\n    A: { literal: x, access: sealed }\n",
  "envs:\n  dev:\n    A: { literal: x, access: breakglass }\n",
  "policies: { bogus: 1 }\nenvs:\n  dev:\n    A: { literal: x }\n",
  "policies: null\nenvs: {}\n",
  "chaos: { envs: [prod] }\nenvs:\n  dev:\n    A: { literal: x }\n",
  "chains: { c: { variable: A, stages: [dev, qa] } }\nenvs:\n  dev:\n    A: { literal: x }\n",
  "notifications: { slak: {} }\nmetrics: { enabled: yes }\nenvs:\n  dev:\n    A: { literal: x }\n",
  'rotation: { strategy: nope }\nenvs:\n  dev:\n    A: { from: "store://local/a", rotation: { service: db, colour: 1 } }\nsecretStores:\n  local: { type: file }\n',
  "compliance: []\nplugins: [\"\"]\nenvs: {}\n",
  "services:\n  pg: { type: postgressql }\nenvs: {}\n",
  "envs:\n  dev:\n    A: { literal: x, service: pg }\n  qa:\n    B: { literal: y, rotation: 3 }\n",
  'secretStores:\n  local: { type: file }\nservices:\n  pg: { type: postgresql, admin: "store://local/pg" }\nenvs:\n  dev:\n    A: { from: "store://local/a", rotation: { service: pg, user: a } }\n',
  "envs:\n  dev:\n    A: { literal: x }\n  qa:\n    B: { literal: y, rotation: { bogus: 1 } }\n",
];

function outcome(loader: ReturnType<typeof createConfigLoader>, text: string, focusEnv?: string): string {
  try {
    const c = loader.parseConfig(text, { label: "f.yaml", ...(focusEnv ? { focusEnv } : {}) });
    return `ok ${JSON.stringify(c.raw)} warnings ${JSON.stringify(c.warnings)}`;
  } catch (e) {
    return `error ${(e as Error).message}`;
  }
}

describe("config: feature schemas are built only for the files that use them (issue 20)", () => {
  it("every file loads or fails as with every feature's schema built (value, warnings, messages), in any order", () => {
    for (const order of [texts, [...texts].reverse()])
      for (const text of order) {
        assert.equal(outcome(lazy, text), outcome(full, text), text);
        assert.equal(outcome(lazy, text, "dev"), outcome(full, text, "dev"), `focus dev: ${text}`);
      }
  });

  it("objects (the library's and Pulumi's configFromObject) too: undefined sections, inherited ones", () => {
    const objOutcome = (loader: ReturnType<typeof createConfigLoader>, obj: unknown) => {
      try {
        return `ok ${JSON.stringify(loader.configFromObject(obj).raw)}`;
      } catch (e) {
        return `error ${(e as Error).message}`;
      }
    };
    const inherited = Object.assign(Object.create({ policies: { bogus: 1 } }) as object, { envs: { dev: { A: { literal: "x" } } } });
    const inheritedKey = { envs: { dev: { A: Object.assign(Object.create({ access: "sealed" }) as object, { literal: "x" }) } } };
    for (const obj of [{ envs: { dev: { A: { literal: "x", rotation: undefined } } }, policies: undefined, chaos: undefined }, inherited, inheritedKey])
      assert.equal(objOutcome(lazy, obj), objOutcome(full, obj));
  });

  it("a file without feature sections still names every known key (top level and variable)", () => {
    assert.match(outcome(lazy, "colour: 1\nenvs: {}\n"), /expected one of: version, secretStores, providers, services, transforms, envs, templates, policies, notifications, metrics, rotation, plugins, chaos, chains, compliance, resolver\)/);
    assert.match(outcome(lazy, "envs:\n  dev:\n    A: { literal: x, colour: 1 }\n"), /expected one of: literal, from, transform, optional, description, service, metadata, rotation, access\)/);
    assert.match(outcome(lazy, "complance: {}\nenvs: {}\n"), /did you mean "compliance"\?/);
  });

  it("the store types' schemas are built on first use: every type is listed, each schema is one object", () => {
    assert.ok(storeTypes.length >= 26 && storeTypes.includes("file") && storeTypes.includes("bitwarden-sm"), storeTypes.join(","));
    assert.deepEqual(Object.keys(storeSettingsSchemas), storeTypes);
    for (const t of storeTypes) assert.equal(storeSettingsSchemas[t], storeSettingsSchemas[t], t);
    assert.equal(storeSettingsSchemas.file.parse({ type: "file" }).path, "./secrets.store");
    assert.equal(Object.values(storeSettingsSchemas).length, storeTypes.length);
  });
});
