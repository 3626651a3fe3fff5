import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";

/**
 * Bad input as its own category: malformed dsops.yaml files, references and transform strings,
 * each with the exact message a user sees from `dsops plan` (field, line and column, hint).
 */
const cases: Array<{ name: string; yaml: string; stderr: string }> = [
  {
    name: "YAML syntax error",
    yaml: "envs:\n  dev: [\n",
    stderr: "error: invalid configuration:\n  - Flow sequence in block collection must be sufficiently indented and end with a ] at dsops.yaml:3:1\nhint: dsops.yaml must be valid YAML\n",
  },
  {
    name: "duplicate key",
    yaml: "envs:\n  dev: {}\n  dev: {}\n",
    stderr: "error: invalid configuration:\n  - Map keys must be unique at dsops.yaml:3:3\nhint: dsops.yaml must be valid YAML\n",
  },
  {
    name: "unknown top-level key",
    yaml: "secretStore:\n  a: { type: env }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStore: unknown key "secretStore" (did you mean "secretStores"?) at dsops.yaml:1:1\n',
  },
  {
    name: "unknown variable key",
    yaml: "envs:\n  dev:\n    A: { literal: x, optinal: true }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.A.optinal: unknown key "optinal" (did you mean "optional"?) at dsops.yaml:3:22\n',
  },
  {
    name: "unknown store type",
    yaml: "secretStores:\n  a: { type: aws.secretmanager }\nenvs: { dev: {} }\n",
    stderr: 'error: invalid configuration:\n  - secretStores.a.type: unknown store type "aws.secretmanager" (did you mean "aws.secretsmanager"?) at dsops.yaml:2:14\n',
  },
  {
    name: "missing required store setting",
    yaml: "secretStores:\n  v: { type: vault }\nenvs: { dev: {} }\n",
    stderr: "error: invalid configuration:\n  - secretStores.v.address: required (string) but missing at dsops.yaml:2:6\n",
  },
  {
    name: "unset environment variable in a store setting",
    yaml: 'secretStores:\n  v: { type: vault, address: "${DSOPS_TEST_UNSET_ADDR}" }\nenvs: { dev: {} }\n',
    stderr: "error: invalid configuration:\n  - secretStores.v.address: environment variable DSOPS_TEST_UNSET_ADDR is not set (use ${DSOPS_TEST_UNSET_ADDR:-default} for a default) at dsops.yaml:2:30\n",
  },
  {
    name: "reference to an unknown store",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://awz/k" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: unknown store "awz" (did you mean "aws"?) at dsops.yaml:5:16\n',
  },
  {
    name: "malformed reference",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://aws" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: reference "store://aws": expected store://<store>/<path> at dsops.yaml:5:16\n',
  },
  {
    name: "bad percent-encoding in a reference",
    yaml: 'secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: "store://aws/a%zz" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: reference "store://aws/a%zz": bad percent-encoding in "a%zz" at dsops.yaml:5:16\n',
  },
  {
    name: "from of the wrong shape",
    yaml: "secretStores:\n  aws: { type: env }\nenvs:\n  dev:\n    X: { from: 42 }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.X.from: expected "store://<store>/<key>", {store, key, version} or {provider, key, version} at dsops.yaml:5:16\n',
  },
  {
    name: "unknown transform",
    yaml: 'secretStores:\n  s: { type: env }\nenvs:\n  dev:\n    X: { from: "store://s/k", transform: "trim | json_extrct:.a" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.transform: unknown transform "json_extrct" (did you mean "json_extract"?) at dsops.yaml:5:42\n',
  },
  {
    name: "transform without its argument",
    yaml: 'secretStores:\n  s: { type: env }\nenvs:\n  dev:\n    X: { from: "store://s/k", transform: "replace:abc" }\n',
    stderr: 'error: invalid configuration:\n  - envs.dev.X.transform: transform "replace" needs replace:<from>:<to> at dsops.yaml:5:42\n',
  },
  {
    name: "variable with neither literal nor from",
    yaml: "envs:\n  dev:\n    X: { description: nothing }\n",
    stderr: 'error: invalid configuration:\n  - envs.dev.X: needs "literal" or "from" at dsops.yaml:3:8\n',
  },
  {
    name: "version other than 0 or 1",
    yaml: "version: 3\n",
    stderr: "error: invalid configuration:\n  - version: expected 0 or 1 at dsops.yaml:1:10\n",
  },
];

describe("bad input: the exact errors users see", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-bad-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of cases) {
    it(c.name, () => {
      writeFileSync(join(dir, "dsops.yaml"), c.yaml);
      const env = { ...process.env };
      delete env.DSOPS_TEST_UNSET_ADDR;
      const r = dsops(["plan", "--env", "dev"], { cwd: dir, env });
      assert.equal(r.stderr, c.stderr);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
    });
  }
});

/**
 * Damaged but parseable file stores: `secrets set` and `get` name the file and what is wrong
 * (exit 1, never a stack trace), and never write over the file.
 */
const damagedStores: Array<{ name: string; content: string; problem: string }> = [
  { name: "secrets is a list", content: '{"format":"dsops-file-store/2","salt":"c2FsdA==","check":"x","secrets":[],"mac":"y"}', problem: "secrets: expected an object, got a list" },
  { name: "the file holds null", content: "null\n", problem: "expected a JSON object, got null" },
  { name: "secrets is null", content: '{"format":"dsops-file-store/1","salt":"c2FsdA==","secrets":null}', problem: "secrets: expected an object, got null" },
  { name: "no salt", content: '{"format":"dsops-file-store/1","secrets":{}}', problem: "salt: missing (expected a string)" },
  { name: "a secret without versions", content: '{"format":"dsops-file-store/1","salt":"c2FsdA==","secrets":{"a":{"current":"1"}}}', problem: 'secrets["a"].versions: missing (expected a list)' },
  { name: "not JSON", content: '{"format":"dsops-file-store/2",', problem: "not valid JSON" },
];

describe("bad input: damaged file stores", function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-bad-store-"));
    writeFileSync(join(dir, "dsops.yaml"), 'secretStores:\n  local: { type: file, path: ./secrets.store }\nenvs:\n  dev:\n    A: { from: "store://local/a" }\n');
    writeFileSync(join(dir, "secrets.store.key"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of damagedStores) {
    it(c.name, () => {
      const path = join(dir, "secrets.store");
      writeFileSync(path, c.content);
      const env = { ...process.env };
      delete env.DSOPS_FILE_KEY;
      const message = `store "local": ${path} is damaged: ${c.problem}`;
      const set = dsops(["secrets", "set", "--store", "local", "--key", "a"], { cwd: dir, input: "new-value", env });
      assert.equal(set.stderr, `error: ${message}\nhint: dsops neither reads from nor writes over a damaged store: restore the file from a backup, or repair what is named above\n`);
      assert.equal(set.status, 1);
      const get = dsops(["get", "--env", "dev", "--var", "A"], { cwd: dir, env });
      assert.equal(get.stderr, `error: env "dev": 1 variable failed to resolve:\n  - A (store local, key a): ${message}\n`);
      assert.equal(get.status, 1);
      assert.equal(get.stdout, "");
      assert.equal(readFileSync(path, "utf8"), c.content, "never written over");
    });
  }
});
