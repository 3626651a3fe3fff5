import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { configFromObject, parseConfig } from "../../provider/compose/config";
import { checkVariableName } from "../../provider/engine/config/load";
import { ConfigError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { createTarget } from "../../provider/rotation/targets/registry";
import { targetCapabilities, targetSettingsSchemas, type TargetSettings } from "../../provider/rotation/targets/settings";
import { targetTypes, type TargetType } from "../../provider/rotation/targets/types";

/** Issue 17: `services:` and `rotation:` are checked when dsops.yaml loads, not when a rotation runs. */

const head = `secretStores:
  local: { type: file, path: ./s.store }
`;

function load(text: string, opts: Parameters<typeof parseConfig>[1] = {}) {
  return parseConfig(text, { file: "/x/dsops.yaml", label: "dsops.yaml", env: {}, ...opts });
}

function problems(text: string, opts: Parameters<typeof parseConfig>[1] = {}): string[] {
  try {
    load(text, opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("config: services and rotation blocks are checked at load", () => {
  it("postgres is read as postgresql; a target's settings are checked by its own schema", () => {
    const c = load(`${head}services:\n  db: { type: postgres, admin: "store://local/a" }\nenvs:\n  p:\n    X: { from: "store://local/x", rotation: { service: db, user: u } }\n`);
    assert.equal(c.raw.services.db.type, "postgresql");
    assert.deepEqual(c.warnings, []);
    assert.deepEqual(problems(`${head}services:\n  db: { type: postgresql, admin: "store://local/a", port: "5432", colour: red }\n`), [
      "services.db.port: Invalid input: expected number, received string at dsops.yaml:4:59",
      'services.db.colour: unknown key "colour" (expected one of: type, host, port, database, admin, ssl, password_hashing, connect_timeout_ms, description) at dsops.yaml:4:67',
    ]);
    assert.deepEqual(problems(`${head}services:\n  db: { type: mysql }\n`), ["services.db.admin: required (string) but missing at dsops.yaml:4:7"]);
  });

  it("an unknown type: an error when a rotation uses the service, a warning when none does", () => {
    const rotated = `${head}services:\n  db: { type: postgresqll }\nenvs:\n  p:\n    X: { from: "store://local/x", rotation: { service: db, user: u } }\n`;
    assert.deepEqual(problems(rotated), ['services.db.type: unknown rotation target type "postgresqll" (did you mean "postgresql"?) at dsops.yaml:4:15']);
    const history = `${head}services:\n  db: { type: postgresql, admin: "store://local/a" }\n  h: { type: postgresqll }\nenvs:\n  p:\n    X: { from: "store://local/x", rotation: { service: db, user: u, history: { type: postgres, service: h } } }\n`;
    assert.match(problems(history).join("\n"), /services\.h\.type: unknown rotation target type "postgresqll"/);
    const unused = load(`${head}services:\n  db: { type: frobnicator }\n`);
    assert.deepEqual(unused.warnings, ['services.db.type: unknown rotation target type "frobnicator" (rotation targets: postgresql, mysql, redis, aws.iam, webhook, script); no rotation uses it at dsops.yaml:4:15']);
  });

  it("a type of dsops's service catalogue loads with a warning that names the rotations using it", () => {
    const c = load(`${head}services:\n  gh: { type: github, org: acme }\n  st: { type: stripe }\nenvs:\n  p:\n    A: { from: "store://local/a", rotation: { service: gh, user: bot } }\n    B: { from: "store://local/b", rotation: { service: gh, user: bot2 } }\n`);
    assert.deepEqual(c.warnings, [
      `services.gh.type: service type "github" is in dsops's service catalogue, but this version cannot rotate it yet (rotation targets: ${targetTypes.join(", ")}); rotating envs.p.A.rotation, envs.p.B.rotation fails until then at dsops.yaml:4:15`,
      `services.st.type: service type "stripe" is in dsops's service catalogue, but this version cannot rotate it yet (rotation targets: ${targetTypes.join(", ")}) at dsops.yaml:5:15`,
    ]);
  });

  it("rotation.service, user, users, the rotated reference: each error with its path and position", () => {
    const text = `${head}services:
  db: { type: postgresql, admin: "store://local/a" }
envs:
  p:
    A: { from: "store://local/a", rotation: { service: dbb, user: u } }
    B: { from: "store://local/b", rotation: { service: local, user: u } }
    C: { from: "store://local/c", rotation: { service: db, strategy: alternating-users } }
    D: { from: "store://local/d", rotation: { service: db, strategy: alternating-users, users: [x, x] } }
    E: { from: "store://local/e", rotation: { service: db, strategy: two-secret } }
    F: { from: "store://local/f#password", rotation: { service: db, user: u } }
    G: { from: "store://local/g?version=3", rotation: { service: db, user: u } }
    H: { literal: x, rotation: { service: db, user: u } }
    I: { from: "store://local/i", rotation: { service: db, strategy: emergency } }
`;
    assert.deepEqual(problems(text), [
      'envs.p.A.rotation.service: unknown service "dbb" (did you mean "db"?) at dsops.yaml:7:56',
      'envs.p.B.rotation.service: "local" is a secret store, not a service: rotation.service names the services: entry whose credential this is (services: db) at dsops.yaml:8:56',
      "envs.p.C.rotation.users: alternating-users rotation needs two users, e.g. users: [app_a, app_b] at dsops.yaml:9:45",
      'envs.p.D.rotation.users: the two users must differ (both are "x") at dsops.yaml:10:96',
      "envs.p.E.rotation.user: two-secret rotation needs the owner (user, account) the keys belong to (user: <name>) at dsops.yaml:11:45",
      'envs.p.F.from: rotation rotates a whole secret; remove "#password" (read a field of it in another variable) at dsops.yaml:12:16',
      'envs.p.G.from: a rotated secret cannot pin a version ("3"): rotation moves the current one at dsops.yaml:13:16',
      "envs.p.H.literal: a rotated variable needs a secret in a store (from: store://…), not a literal at dsops.yaml:14:19",
      "envs.p.I.rotation.user: emergency rotation needs the user whose password is rotated (user: <name>) at dsops.yaml:15:45",
    ]);
  });

  it("schedule, history, rollout and admin references", () => {
    const text = `${head}services:
  db: { type: postgresql, admin: "store://local/a" }
  hook: { type: webhook, url: "http://127.0.0.1:1/", signing_secret: "store://lokal/hmac" }
envs:
  p:
    A: { from: "store://local/a", rotation: { service: db, user: u, schedule: "0 2 * *" } }
    B: { from: "store://local/b", rotation: { service: db, user: u, history: { type: postgres, service: hook } } }
    C: { from: "store://local/c", rotation: { service: db, user: u, rollout: { instances: [{ name: a, prot: 1 }, { name: b, admin: "store://nope/x" }] } } }
    D: { from: "store://local/d", rotation: { service: db, user: u, schedule: "0 3 L * *" } }
`;
    assert.deepEqual(problems(text), [
      'services.hook.signing_secret: unknown store "lokal" (did you mean "local"?) at dsops.yaml:5:70',
      'envs.p.A.rotation.schedule: "0 2 * *" must have 5 fields (minute hour day-of-month month day-of-week) at dsops.yaml:8:79',
      "envs.p.B.rotation.history.service: service \"hook\" is of type webhook; the history needs a postgresql service at dsops.yaml:9:105",
      'envs.p.C.rotation.rollout.instances[0].prot: unknown key "prot" (did you mean "port"?) at dsops.yaml:10:103',
      'envs.p.C.rotation.rollout.instances[1].admin: unknown store "nope" (stores: local) at dsops.yaml:10:132',
    ]);
  });

  it("what the target cannot do, a setting the strategy ignores: warnings (errors with strictRotations)", () => {
    const text = `${head}services:
  iam: { type: aws.iam }
  db: { type: postgresql, admin: "store://local/a" }
envs:
  p:
    A: { from: "store://local/a", rotation: { service: iam, user: deployer } }
    B: { from: "store://local/b", rotation: { service: db, user: u, users: [x, y], grace_period: 1h } }
`;
    assert.deepEqual(load(text).warnings, [
      'envs.p.A.rotation.strategy: strategy single-user needs a target that can rotate; service "iam" (aws.iam) cannot, so rotating fails at dsops.yaml:8:45',
      'envs.p.B.rotation.users: "users" is read only by strategy alternating-users; single-user rotates "u" at dsops.yaml:9:69',
      'envs.p.B.rotation.grace_period: "grace_period" is read only by strategy two-secret at dsops.yaml:9:84',
    ]);
    assert.deepEqual(problems(text, { strictRotations: true }), [
      'envs.p.A.rotation.strategy: strategy single-user needs a target that can rotate; service "iam" (aws.iam) cannot, so rotating fails at dsops.yaml:8:45',
    ]);
  });

  it("checkRotations: false (a configuration built to read history) skips them; inline objects get paths without positions", () => {
    const raw = { secretStores: { local: { type: "file" } }, envs: { e: { V: { from: "store://local/k", rotation: { service: "_" } } } } };
    assert.doesNotThrow(() => configFromObject(raw, { checkRotations: false }));
    assert.throws(
      () => configFromObject(raw),
      (e: unknown) => e instanceof ConfigError && e.problems.join("|") === "envs.e.V.rotation.user: single-user rotation needs the user whose password is rotated (user: <name>)|envs.e.V.rotation.service: unknown service \"_\" (no services: are defined)",
    );
  });

  it("the capabilities table is what real target instances declare", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dsops-caps-"));
    const ctx = { resolveRef: async () => new Secret(""), clock: new ManualClock(0), configDir: dir };
    const dummy: { [T in TargetType]: Record<string, unknown>[] } = {
      postgresql: [{ admin: "store://s/a" }],
      mysql: [{ admin: "store://s/a" }],
      redis: [{ admin: "store://s/a" }],
      "aws.iam": [{ region: "us-east-1" }],
      webhook: [{ url: "http://127.0.0.1:1/" }, { url: "http://127.0.0.1:1/", capabilities: ["rotate"] }],
      script: [{ command: "true" }, { command: "true", capabilities: ["verify"] }],
    };
    try {
      for (const type of targetTypes)
        for (const extra of dummy[type]) {
          const settings = targetSettingsSchemas[type].parse({ type, ...extra }) as TargetSettings;
          const t = createTarget("probe", { type, ...extra }, ctx);
          try {
            assert.deepEqual([...targetCapabilities(settings)].sort(), [...t.capabilities].sort(), `${type} ${JSON.stringify(extra)}`);
          } finally {
            await t.close?.();
          }
        }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("config: names, __proto__ and YAML aliases", () => {
  it("variable names: errors for what no environment holds, warnings for what a shell cannot use", () => {
    assert.equal(checkVariableName("DB_URL"), undefined);
    assert.equal(checkVariableName("_x1"), undefined);
    assert.match(checkVariableName("")?.error ?? "", /empty variable name/);
    assert.match(checkVariableName("A=B")?.error ?? "", /cannot contain "="/);
    assert.match(checkVariableName("A\0B")?.error ?? "", /NUL/);
    assert.match(checkVariableName("1BAD")?.warning ?? "", /not a name a shell can use/);
    assert.match(checkVariableName("A-B")?.warning ?? "", /not a name a shell can use/);
    assert.match(checkVariableName("A\u202eB")?.warning ?? "", /\(U\+202E\): it shows as "AB"/);
    assert.match(checkVariableName("A\u2066B\u200dC")?.warning ?? "", /\(U\+2066, U\+200D\)/);
  });

  it("__proto__ is refused wherever it is a name (it would be dropped); constructor and toString are names like any other", () => {
    assert.deepEqual(problems(`secretStores:\n  l: { type: literal, values: { __proto__: x } }\nservices:\n  __proto__: { type: github }\n`), [
      'secretStores.l.values.__proto__: "__proto__" cannot be a name here (JavaScript reserves it, so it would be lost); rename it at dsops.yaml:2:33',
      'services.__proto__: "__proto__" cannot be a name here (JavaScript reserves it, so it would be lost); rename it at dsops.yaml:4:3',
    ]);
    const c = load(`envs:\n  dev:\n    constructor: { literal: c }\n`);
    assert.equal(c.envs.dev["constructor" as string].spec.literal, "c");
    assert.equal(c.envs.toString, undefined);
    assert.equal(c.envs.dev.toString, undefined);
    assert.equal(c.stores.constructor, undefined);
    assert.equal(c.raw.services.constructor, undefined);
  });

  it("YAML aliases: the library's limit, unknown and self-referring aliases, each with its position", () => {
    const bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
    assert.deepEqual(problems(bomb), ["too many uses of YAML aliases: *b crosses the limit of 100 expanded uses of one anchor (nested aliases multiply) at dsops.yaml:3:40"]);
    assert.deepEqual(problems("a: *x\nb: &x 1\n"), ["unknown alias *x: no anchor &x before it at dsops.yaml:1:4"]);
    assert.deepEqual(problems("a: &x [1, *x]\n"), ["alias *x is inside the node &x it names (a cycle) at dsops.yaml:1:11"]);
    // Within the limit, aliases work as YAML says.
    const c = load(`secretStores:\n  l: &lit { type: literal, values: { a: "1" } }\n  m: *lit\n`);
    assert.equal(c.stores.m.type, "literal");
  });
});
