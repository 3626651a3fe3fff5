import { strict as assert } from "node:assert";
import { parseConfig, configFromObject } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";
import { plannedStoreTypes } from "../../provider/stores/settings";

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, { file: "/x/dsops.yaml", label: "dsops.yaml", env });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("config: dsops.yaml", () => {
  const base = `version: 1
secretStores:
  aws: { type: aws.secretsmanager, region: us-east-1 }
  local: { type: file, path: ./s.store }
providers:
  app_config: { type: literal, values: { version: "1.0.0" } }
transforms:
  db_password: [ "json_extract:.password", "trim" ]
envs:
  production:
    DATABASE_URL: { from: { store: "store://aws/myapp/prod#url?version=AWSCURRENT" } }
    API_SECRET:   { from: { store: aws, key: "myapp/dev/api" }, transform: "json_extract:.secret" }
    VERSION:      { from: { provider: app_config, key: version } }
    DEBUG:        { literal: "true" }
    PLAIN:        { from: "store://local/a/b#c" }
    PW:           { from: "store://local/db", transform: db_password }
    OPTIONAL_X:   { from: { store: local, key: "kv/x#y" }, optional: true }
`;

  it("loads every reference form of the dsops format", () => {
    const c = parseConfig(base, { file: "/x/dsops.yaml" });
    const e = c.envs.production;
    assert.deepEqual(e.DATABASE_URL.ref, { store: "aws", key: "myapp/prod", field: "url", version: "AWSCURRENT" });
    assert.deepEqual(e.API_SECRET.ref, { store: "aws", key: "myapp/dev/api" });
    assert.deepEqual(e.VERSION.ref, { store: "app_config", key: "version" });
    assert.deepEqual(e.PLAIN.ref, { store: "local", key: "a/b", field: "c" });
    assert.deepEqual(e.OPTIONAL_X.ref, { store: "local", key: "kv/x", field: "y" });
    assert.equal(e.OPTIONAL_X.optional, true);
    assert.deepEqual(e.PW.transforms.map((t) => t.name), ["json_extract", "trim"]);
    assert.equal(c.stores.app_config.type, "literal");
    assert.equal(c.stores.local.type, "file");
    assert.equal(c.dir, "/x");
  });

  it("accepts version 0 and 1 and rejects others", () => {
    assert.equal(parseConfig("version: 0\n").raw.version, 0);
    assert.equal(parseConfig("version: 1\n").raw.version, 1);
    assert.equal(parseConfig("{}\n").raw.version, 1);
    const p = problems("version: 2\n");
    assert.match(p[0], /^version: expected 0 or 1 at dsops\.yaml:1:10$/);
  });

  it("names an unknown store with a suggestion, the path, line and column", () => {
    const p = problems(base.replace('store: aws, key: "myapp/dev/api"', 'store: awz, key: "myapp/dev/api"'));
    assert.deepEqual(p, ['envs.production.API_SECRET.from: unknown store "awz" (did you mean "aws"?) at dsops.yaml:12:36']);
  });

  it("names an unknown store in a store:// string form", () => {
    const p = problems(base.replace("store://local/a/b#c", "store://locl/a/b#c"));
    assert.deepEqual(p, ['envs.production.PLAIN.from: unknown store "locl" (did you mean "local"?) at dsops.yaml:15:27']);
  });

  it("rejects unknown keys with a suggestion instead of ignoring them", () => {
    const p = problems(`envs:\n  dev:\n    A: { literal: x, optinal: true }\n`);
    assert.deepEqual(p, ['envs.dev.A.optinal: unknown key "optinal" (did you mean "optional"?) at dsops.yaml:3:22']);
    const q = problems(`secretStore:\n  a: { type: env }\n`);
    assert.deepEqual(q, ['secretStore: unknown key "secretStore" (did you mean "secretStores"?) at dsops.yaml:1:1']);
    const r = problems(`secretStores:\n  v: { type: vault, address: http://x, tokn: abc }\n`);
    assert.deepEqual(r, ['secretStores.v.tokn: unknown key "tokn" (did you mean "token"?) at dsops.yaml:2:40']);
  });

  it("names unknown and not-yet-supported store types", () => {
    assert.deepEqual(problems(`secretStores:\n  a: { type: aws.secretmanager }\n`), [
      'secretStores.a.type: unknown store type "aws.secretmanager" (did you mean "aws.secretsmanager"?) at dsops.yaml:2:14',
    ]);
    // Every store type dsops registers is implemented now (issues 12 and 19): none is "not supported yet".
    assert.deepEqual([...plannedStoreTypes], []);
    for (const t of ["onepassword", "bitwarden", "pass", "keychain", "doppler", "infisical", "akeyless", "azure.keyvault", "aws.sts", "aws.sso", "aws", "gcp", "azure"])
      assert.ok(!problems(`colour: x\nsecretStores:\n  a: { type: ${t} }\n`).some((l) => /not supported yet|unknown store type/.test(l)), t);
  });

  it("collects every problem, not only the first", () => {
    const p = problems(`secretStores:\n  a: { type: env }\nenvs:\n  dev:\n    A: { from: "store://b/x" }\n    B: { description: nothing }\n    C: { from: "store://a/x", transform: "json_extrct:.a" }\n`);
    assert.equal(p.length, 3);
    assert.match(p[0], /^envs\.dev\.A\.from: unknown store "b" .* at dsops\.yaml:5:/);
    assert.match(p[1], /^envs\.dev\.B: needs "literal" or "from" at dsops\.yaml:6:/);
    assert.match(p[2], /^envs\.dev\.C\.transform: unknown transform "json_extrct" \(did you mean "json_extract"\?\)/);
  });

  it("says when a reference names a service instead of a store", () => {
    const p = problems(`secretStores:\n  a: { type: env }\nservices:\n  db: { type: postgresql }\nenvs:\n  dev:\n    A: { from: "store://db/x" }\n`);
    assert.match(p[0], /"db" is a service \(a rotation target\), not a secret store/);
  });

  it("expands ${VAR} and ${VAR:-default} in store settings", () => {
    const text = `secretStores:\n  v: { type: vault, address: "\${VAULT_ADDR:-http://127.0.0.1:8200}", token: "\${VAULT_TOKEN}" }\n`;
    const c = parseConfig(text, { env: { VAULT_TOKEN: "tok-123" } });
    assert.deepEqual(c.stores.v, { type: "vault", address: "http://127.0.0.1:8200", token: "tok-123", auth_method: "token", approle_mount: "approle" });
    const c2 = parseConfig(text, { env: { VAULT_TOKEN: "t", VAULT_ADDR: "https://vault:8200" } });
    assert.equal((c2.stores.v as { address: string }).address, "https://vault:8200");
    assert.deepEqual(problems(text, {}), [
      "secretStores.v.token: environment variable VAULT_TOKEN is not set (use ${VAULT_TOKEN:-default} for a default) at dsops.yaml:2:77",
    ]);
    const lit = parseConfig(`secretStores:\n  l: { type: literal, values: { a: "$\${NOT}" } }\n`, { env: {} });
    assert.deepEqual((lit.stores.l as { values: Record<string, string> }).values, { a: "${NOT}" });
  });

  it("reports YAML syntax errors with line and column", () => {
    const p = problems("envs:\n  dev: [\n");
    assert.match(p[0], / at dsops\.yaml:\d+:\d+$/);
  });

  it("refuses a named transform chain that refers to itself", () => {
    const p = problems(`transforms:\n  a: [ b ]\n  b: [ "trim", a ]\n`);
    assert.ok(p.some((x) => /refers to itself/.test(x)), p.join("\n"));
  });

  it("builds from an object (inline configuration) with paths but no positions", () => {
    assert.throws(
      () => configFromObject({ secretStores: { a: { type: "fil" } } }),
      (e: unknown) => e instanceof ConfigError && e.problems[0] === 'secretStores.a.type: unknown store type "fil" (did you mean "file"?)',
    );
    const c = configFromObject({ secretStores: { a: { type: "file", path: "p.store" } } }, { dir: "/tmp/q" });
    assert.equal(c.dir, "/tmp/q");
  });
});

describe("config: duplicate YAML keys (found in one pass, not by the yaml library's quadratic check)", () => {
  it("names every repeated key, nested ones too, in the order of the file, with line and column", () => {
    const text = 'version: 1\nenvs:\n  dev:\n    A: { literal: a }\n    B: { literal: b }\n    A: { literal: c }\n  prod: {}\n  dev: {}\n';
    assert.deepEqual(problems(text), ["Map keys must be unique at dsops.yaml:6:5", "Map keys must be unique at dsops.yaml:8:3"]);
  });

  it("keys that differ as YAML values are not duplicates (1 and \"1\"), and 10,000 distinct keys load", () => {
    assert.doesNotThrow(() => parseConfig('version: 1\nenvs:\n  dev: { A: { literal: x } }\n  1: {}\n  "1": {}\n', { file: "/x/dsops.yaml", label: "dsops.yaml", env: {} }));
    const vars = Array.from({ length: 10000 }, (_, i) => `    V_${i}: { literal: "${i}" }`).join("\n");
    const config = parseConfig(`version: 1\nenvs:\n  dev:\n${vars}\n`, { file: "/x/dsops.yaml", label: "dsops.yaml", env: {} });
    assert.equal(Object.keys(config.raw.envs.dev).length, 10000);
  });
});
