import { strict as assert } from "node:assert";
import { literalSecrets, parseSchedulerSetting, schedulerUrl, type PolicyDefinition } from "../../provider/compose/registered-policies";

/** The scheduler setting and the no-literal-secret rule of a RotationPolicy registration (no server needed). */
describe("registered policies: the dsops:scheduler setting and the literal-secret rule", () => {
  const def = (config: Record<string, unknown>): PolicyDefinition => ({ version: 1, secret: "store://local/app/x", dir: "/", schedule: { every: "30d" }, windows: [], config });

  it("accepts a store:// reference, env:NAME, or a URL without a password, as JSON or alone", () => {
    assert.deepEqual(parseSchedulerSetting('{"database":"store://vault/ops/url"}'), { database: "store://vault/ops/url" });
    assert.deepEqual(parseSchedulerSetting("env:SCHED_URL"), { database: "env:SCHED_URL" });
    assert.deepEqual(parseSchedulerSetting('{"database":"postgresql://dsops@db.internal/ops"}'), { database: "postgresql://dsops@db.internal/ops" });
  });

  it("refuses a postgresql:// URL with a password (in the userinfo or the query), naming the setting, never printing it", () => {
    for (const url of ["postgresql://u:Hunter2-secret@db/x", "postgres://u@db/x?password=Hunter2-secret"]) {
      assert.throws(
        () => parseSchedulerSetting(JSON.stringify({ database: url }), "stack config dsops:scheduler"),
        (e: Error) => /^stack config dsops:scheduler\.database: a postgresql:\/\/ URL with a password is refused/.test(e.message) && !e.message.includes("Hunter2"),
      );
    }
    assert.throws(() => parseSchedulerSetting("{nope"), /dsops:scheduler: not a JSON object/);
    assert.throws(() => parseSchedulerSetting('{"database":"env:1BAD"}'), /dsops:scheduler\.database: "env:1BAD" is not env:NAME/);
    assert.throws(() => parseSchedulerSetting("{}"), /dsops:scheduler: say which PostgreSQL/);
  });

  it("reads env:NAME from the environment and names the variable when it is unset", async () => {
    assert.equal(await schedulerUrl({ database: "env:X" }, async () => "", { X: "postgresql://h/db" }), "postgresql://h/db");
    await assert.rejects(schedulerUrl({ database: "env:X" }, async () => "", {}), /dsops:scheduler: environment variable X is not set/);
    assert.equal(await schedulerUrl({ database: "store://s/k" }, async (uri) => `${uri} value\n`), "store://s/k value");
  });

  it("names credential-like settings holding literals; references and ${VAR} expansions pass; the enclosing names do not count", () => {
    assert.deepEqual(
      literalSecrets(
        def({
          secretStores: {
            vault: { type: "vault", address: "http://v", token: "s.literal" },
            ok: { type: "vault", address: "http://v", token: "${VAULT_TOKEN}" },
            lit: { type: "literal", values: { a: "b" } },
            keyed: { type: "keepassxc", path: "./db.kdbx", password: "store://vault/kp", key_file: "./k" },
          },
          services: { db: { type: "postgresql", admin: { username: "root", password: "plain" } } },
          notifications: { webhooks: [{ name: "w", url: "https://h/x", signing_secret: "store://vault/hook" }] },
          envs: { pulumi: { SECRET: { from: "store://vault/app", rotation: { service: "db", user: "app" } } } },
        }),
      ),
      ["secretStores.vault.token", "secretStores.lit.values", "services.db.admin.password"],
    );
  });
});
