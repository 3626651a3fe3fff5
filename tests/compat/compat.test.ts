import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";
import { storeContract } from "../support/store-contract";
import { systemClock } from "../../provider/core/clock";
import { createStore } from "../../provider/stores/registry";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import { contentVersion } from "../../provider/stores/literal";

/**
 * dsops-format configurations (written for this project, in the forms dsops documents): every
 * env planned with the built CLI, rendered where the stores are local, and each refused form
 * with its exact message and line:column.
 */

/** Values the tests use; none may appear in an error or a plan. */
const V = {
  conn: "postgres://app:conn-pw-81@db/app",
  doppler: "dop-value-72",
  lit: "lt-value-63",
  pw: "pw-value-54",
};

const DSOPS_YAML = `version: 1
secretStores:
  lit:
    type: literal
    config:
      values:
        db: '{"password": "${V.pw}", "host": "db"}'
        list: "a, b, c"
  literal-test: { type: literal, values: { TEST: "${V.lit}" } }
  ssm: { type: json, path: ./ssm.json }
  doppler: { type: mock, config: { values: { TEST: "${V.doppler}" } } }
  inline: { type: json, data: '{"hosts": ["h1", "h2"]}' }
  vault: { type: hashicorp.vault, addr: "\${DSOPS_COMPAT_VAULT_ADDR}", token: "\${DSOPS_COMPAT_VAULT_TOKEN}" }
  sm: { type: aws-secretsmanager, region: us-east-1 }
providers:
  legacy: { type: literal, values: { version: "1.0.0" } }
services:
  postgres-prod: { type: postgresql, host: db, admin: "store://literal-test/TEST" }
templates:
  - { name: app-env, format: dotenv, env: dev, out: .env.dev }
  - { name: app-json, format: json, env: dev, out: app.json }
envs:
  dev:
    CONN: { from: "ssm:/database/connection_string" }
    DOP: { from: "doppler:TEST" }
    LT: { from: "literal-test:TEST" }
    PW: { from: "lit:db#password", service: postgres-prod, metadata: { owner: team-a, ticket: 42 } }
    VERSION: { from: { provider: legacy, key: version } }
    BY_URI: { from: "store://literal-test/TEST" }
    PIPED: { from: "lit:list", transform: "join:|" }
    SEMI: { from: "lit:list", transform: "join:;" }
    HOSTS: { from: "inline:hosts", transform: "join:," }
    MOCK_DEFAULT: { from: "doppler:test-secret" }
    DB_ADMIN: { from: { service: "svc://postgresql/postgres-prod?kind=password" }, optional: true }
  prod:
    VAULT_PW: { from: "vault:kv/data/app#password" }
    SM_URL: { from: "sm:myapp/prod#url" }
    ONEPASS_STYLE: { from: "vault:op://Vault/Item/field" }
`;

describe("compat: dsops.yaml forms (issue 18)", function () {
  this.timeout(60000);
  let dir: string;
  const env = { ...process.env };
  delete env.DSOPS_COMPAT_VAULT_ADDR;
  delete env.DSOPS_COMPAT_VAULT_TOKEN;
  const run = (args: string[]) => dsops(args, { cwd: dir, env });
  const noValues = (text: string) => {
    for (const v of Object.values(V)) assert.ok(!text.includes(v), `a value leaked: ${text}`);
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dsops-compat-"));
    writeFileSync(join(dir, "dsops.yaml"), DSOPS_YAML);
    writeFileSync(join(dir, "ssm.json"), JSON.stringify({ "/database/connection_string": V.conn }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("plans env dev: shorthands, legacy provider, service reference, store:// side by side; no value shown", () => {
    const r = run(["plan", "--env", "dev"]);
    assert.equal(r.status, 0, r.stderr);
    noValues(r.stdout + r.stderr);
    assert.match(r.stdout, /^CONN +store +ssm \(json\) +\/database\/connection_string +- *$/m);
    assert.match(r.stdout, /^DOP +store +doppler \(mock\) +TEST +- *$/m);
    assert.match(r.stdout, /^LT +store +literal-test \(literal\) +TEST +- *$/m);
    assert.match(r.stdout, /^PW +store +lit \(literal\) +db#password +- *$/m);
    assert.match(r.stdout, /^VERSION +store +legacy \(literal\) +version +- *$/m);
    assert.match(r.stdout, /^PIPED +store +lit \(literal\) +list +join:\| *$/m);
    assert.match(r.stdout, /^DB_ADMIN \(optional\) +service +- +svc:\/\/postgresql\/postgres-prod\?kind=password +- *$/m);
    assert.match(r.stdout, /SOURCE service: DB_ADMIN names a rotation target, never a value: nothing to resolve/);
  });

  it("plan --json keeps metadata and service, and says what a service reference is", () => {
    const r = run(["plan", "--env", "dev", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { variables: Array<Record<string, unknown>> };
    const by = Object.fromEntries(j.variables.map((v) => [v.name, v]));
    assert.deepEqual(by.PW.metadata, { owner: "team-a", ticket: 42 });
    assert.equal(by.PW.service, "postgres-prod");
    assert.equal(by.DB_ADMIN.source, "service");
    assert.equal(by.DB_ADMIN.service, "svc://postgresql/postgres-prod?kind=password");
    assert.equal(by.DB_ADMIN.note, "names a rotation target, never a value: nothing to resolve");
  });

  it("plans env prod without credentials or network: an unset ${VAR} of a store is a warning naming it", () => {
    const r = run(["plan", "--env", "prod"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^VAULT_PW +store +vault \(vault\) +kv\/data\/app#password +- *$/m);
    assert.match(r.stdout, /^SM_URL +store +sm \(aws\.secretsmanager\) +myapp\/prod#url +- *$/m);
    assert.match(r.stdout, /^ONEPASS_STYLE +store +vault \(vault\) +op:\/\/Vault\/Item\/field +- *$/m);
    assert.ok(
      r.stderr.includes(
        'warning: secretStores.vault.addr: environment variable DSOPS_COMPAT_VAULT_ADDR is not set (use ${DSOPS_COMPAT_VAULT_ADDR:-default} for a default); a command that calls store "vault" stops here at dsops.yaml:13:41\n',
      ),
      r.stderr,
    );
  });

  it("renders env dev through the literal, json and mock stores (the vault store is never called)", () => {
    const r = run(["render", "--env", "dev", "--format", "dotenv", "--out", "out.env"]);
    assert.equal(r.status, 0, r.stderr);
    noValues(r.stderr);
    assert.match(r.stderr, /DB_ADMIN: optional, left out: from: \{service: "svc:\/\/postgresql\/postgres-prod\?kind=password"\} names a rotation target, never a value/);
    const out = readFileSync(join(dir, "out.env"), "utf8");
    assert.equal(statSync(join(dir, "out.env")).mode & 0o777, 0o600);
    const lines = out.trim().split("\n").sort();
    assert.deepEqual(lines, [
      `BY_URI=${V.lit}`,
      `CONN=${V.conn}`,
      `DOP=${V.doppler}`,
      "HOSTS=h1,h2",
      `LT=${V.lit}`,
      "MOCK_DEFAULT=mock-value",
      "PIPED=a|b|c",
      `PW=${V.pw}`,
      "SEMI=a;b;c",
      "VERSION=1.0.0",
    ]);
  });

  it("a command that calls the store with the unset ${VAR} fails there, naming the variable and the setting as written", () => {
    const r = run(["get", "--env", "prod", "--var", "VAULT_PW"]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'error: env "prod": 1 variable failed to resolve:\n  - VAULT_PW (store vault, key kv/data/app): store "vault" cannot be used: secretStores.vault.addr: environment variable DSOPS_COMPAT_VAULT_ADDR is not set (use ${DSOPS_COMPAT_VAULT_ADDR:-default} for a default) at dsops.yaml:13:41; secretStores.vault.token: environment variable DSOPS_COMPAT_VAULT_TOKEN is not set (use ${DSOPS_COMPAT_VAULT_TOKEN:-default} for a default) at dsops.yaml:13:78\n',
    );
  });

  it("refuses to resolve a service reference, saying why", () => {
    writeFileSync(join(dir, "svc.yaml"), 'secretStores:\n  l: { type: literal, values: { admin: x } }\nservices:\n  db: { type: postgresql, admin: "store://l/admin" }\nenvs:\n  dev:\n    A: { from: "svc://postgresql/db" }\n');
    const r = run(["--config", "svc.yaml", "get", "--env", "dev", "--var", "A"]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'error: env "dev": 1 variable failed to resolve:\n  - A: from: {service: "svc://postgresql/db"} names a rotation target, never a value: nothing to resolve (dsops does not resolve it either)\n',
    );
  });

  it("plan --env E reports another env's problems as warnings; using that env refuses them", () => {
    writeFileSync(join(dir, "two.yaml"), 'secretStores:\n  lit: { type: literal, values: { a: x } }\nenvs:\n  dev:\n    A: { from: "lit:a" }\n  prod:\n    B: { from: "nope:a" }\n    C: { from: 42 }\n');
    const ok = run(["--config", "two.yaml", "plan", "--env", "dev"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(
      ok.stderr,
      'warning: envs.prod.C.from: expected "store://<store>/<key>", "<store>:<key>", {store, key, version}, {provider, key, version} or {service: "svc://<type>/<instance>"} at two.yaml:8:16\n',
    );
    const bad = run(["--config", "two.yaml", "plan", "--env", "prod"]);
    assert.equal(bad.status, 1);
    assert.equal(
      bad.stderr,
      'error: invalid configuration:\n  - envs.prod.C.from: expected "store://<store>/<key>", "<store>:<key>", {store, key, version}, {provider, key, version} or {service: "svc://<type>/<instance>"} at two.yaml:8:16\n',
    );
    writeFileSync(join(dir, "two.yaml"), 'secretStores:\n  lit: { type: literal, values: { a: x } }\nenvs:\n  dev:\n    A: { from: "lit:a" }\n  prod:\n    B: { from: "nope:a" }\n');
    const warn = run(["--config", "two.yaml", "plan", "--env", "dev"]);
    assert.equal(warn.status, 0, warn.stderr);
    assert.equal(warn.stderr, 'warning: envs.prod.B.from: unknown store "nope" (stores: lit) at two.yaml:7:16\n');
  });

  const refused: Array<{ name: string; yaml: string; stderr: string }> = [
    {
      name: "a shorthand whose store is not configured",
      yaml: 'secretStores:\n  doppler: { type: mock }\nenvs:\n  dev:\n    A: { from: "dopler:TEST" }\n',
      stderr: 'error: invalid configuration:\n  - envs.dev.A.from: unknown store "dopler" (did you mean "doppler"?) at dsops.yaml:5:16\n',
    },
    {
      name: "a store-native op:// key without its store",
      yaml: 'secretStores:\n  op: { type: mock }\nenvs:\n  dev:\n    A: { from: "op://Vault/Item/field" }\n',
      stderr:
        'error: invalid configuration:\n  - envs.dev.A.from: reference "op://Vault/Item/field": a op:// key is read by a store; name the store: <store>:op://Vault/Item/field, or {store: <store>, key: "op://Vault/Item/field"} at dsops.yaml:5:16\n',
    },
    {
      name: "a malformed service reference",
      yaml: 'envs:\n  dev:\n    A: { from: { service: "svc://postgresql" } }\n',
      stderr:
        'error: invalid configuration:\n  - envs.dev.A.from: service reference "svc://postgresql": expected svc://<type>/<instance> or svc://<type>/<instance>?kind=<kind> (e.g. svc://postgresql/prod-db?kind=password) at dsops.yaml:3:27\n',
    },
    {
      name: "a templates list entry without a name",
      yaml: "templates:\n  - { format: dotenv, env: dev }\nenvs: { dev: {} }\n",
      stderr: "error: invalid configuration:\n  - templates[0].name: required (string) but missing at dsops.yaml:2:5\n",
    },
    {
      name: "two templates of one name in the list",
      yaml: "templates:\n  - { name: a, env: dev }\n  - { name: a, env: dev }\nenvs: { dev: {} }\n",
      stderr: 'error: invalid configuration:\n  - templates[1].name: a second template named "a" (names are unique) at dsops.yaml:3:13\n',
    },
    {
      name: "templates neither a map nor a list",
      yaml: 'templates: "x"\nenvs: { dev: {} }\n',
      stderr: "error: invalid configuration:\n  - templates: expected a map of templates by name, or a list of {name, format, env, out, template_path} at dsops.yaml:1:12\n",
    },
    {
      name: "a setting both beside config: and inside it",
      yaml: "secretStores:\n  l: { type: literal, values: {}, config: { values: {} } }\nenvs: { dev: {} }\n",
      stderr: 'error: invalid configuration:\n  - secretStores.l.config.values: "values" is given both beside config: and inside it; keep one at dsops.yaml:2:45\n',
    },
    {
      name: "Vault's addr and address both given",
      yaml: "secretStores:\n  v: { type: vault, addr: http://a, address: http://b }\nenvs: { dev: {} }\n",
      stderr: 'error: invalid configuration:\n  - secretStores.v.addr: "addr" is another spelling of "address", which is given too; keep one at dsops.yaml:2:21\n',
    },
    {
      name: "an unknown setting under config: points at where it is written",
      yaml: "secretStores:\n  l: { type: literal, config: { valuez: {} } }\nenvs: { dev: {} }\n",
      stderr: 'error: invalid configuration:\n  - secretStores.l.config.valuez: unknown key "valuez" (did you mean "values"?) at dsops.yaml:2:33\n',
    },
    {
      // Issue 12 made `onepassword` (alias `1password`) a supported type: the alias now reaches its settings.
      name: "1password (the alias of onepassword) with a misspelt setting",
      yaml: "secretStores:\n  o: { type: 1password, connect_hots: http://x }\nenvs: { dev: {} }\n",
      stderr: `error: invalid configuration:\n  - secretStores.o.connect_hots: unknown key "connect_hots" (did you mean "connect_host"?) at dsops.yaml:2:25\n`,
    },
    {
      name: "a json store with neither path nor data",
      yaml: "secretStores:\n  j: { type: json }\nenvs: { dev: {} }\n",
      stderr: "error: invalid configuration:\n  - secretStores.j: give either path (a JSON file) or data (inline JSON), not both and not neither at dsops.yaml:2:6\n",
    },
    {
      name: "an ambiguous join separator",
      yaml: 'secretStores:\n  l: { type: literal, values: { a: "x" } }\nenvs:\n  dev:\n    A: { from: "l:a", transform: "join:|trim" }\n',
      stderr: 'error: invalid configuration:\n  - envs.dev.A.transform: transform "join:|trim" is ambiguous: is "|trim" join\'s separator, or does "|" start the next step "trim"? at dsops.yaml:5:34\n',
    },
  ];
  for (const c of refused)
    it(`refuses ${c.name}, with the place`, () => {
      writeFileSync(join(dir, "dsops.yaml"), c.yaml);
      const r = run(["plan", "--env", "dev"]);
      assert.equal(r.stderr, c.stderr);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
    });
});

describe("compat: dsops's mock and json stores", () => {
  const tmp = mkdtempSync(join(tmpdir(), "dsops-compat-stores-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const ctx = { configDir: tmp, clock: systemClock, env: {} };

  storeContract("mock", async () => {
    const settings = storeSettingsSchemas.mock.parse({ type: "mock", values: {} });
    const store = createStore("m", settings, ctx);
    return {
      store,
      // A mock store's values are its settings: seeding sets the value the settings give.
      seed: async (key, values) => {
        settings.values[key] = values[values.length - 1];
        return values.map(contentVersion);
      },
    };
  });

  storeContract("json (file)", async () => {
    const file = join(tmp, "values.json");
    writeFileSync(file, "{}");
    const store = createStore("j", storeSettingsSchemas.json.parse({ type: "json", path: "values.json" }), ctx);
    return {
      store,
      seed: async (key, values) => {
        const doc = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
        doc[key] = values[values.length - 1];
        writeFileSync(file, JSON.stringify(doc));
        return values.map(contentVersion);
      },
    };
  });

  it("json: inline data, non-string values as JSON text, and errors that hold no value", async () => {
    const store = createStore("j", storeSettingsSchemas.json.parse({ type: "json", data: { a: "x", n: { k: [1] } } }), ctx);
    assert.equal((await store.get({ key: "a" })).value.reveal(), "x");
    assert.equal((await store.get({ key: "n" })).value.reveal(), '{"k":[1]}');
    const broken = createStore("b", storeSettingsSchemas.json.parse({ type: "json", data: '{"s": "secret-json-99",' }), ctx);
    await assert.rejects(broken.get({ key: "s" }), (e: Error) => /store "b": data is not valid JSON/.test(e.message) && !e.message.includes("secret-json-99"));
  });
});
