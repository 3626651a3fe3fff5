import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigFile, Resolver, Secret, ResolveError, type Config } from "../../provider/library/index";
import { FileStore } from "../../provider/stores/file";
import { systemClock } from "../../provider/core/clock";
import { writeFileSync } from "node:fs";

/** The library API (in process) writes policies.audit_logging's log like the CLI: every access, never a value. */
describe("library API: every secret access is written to the audit log (policies.audit_logging)", () => {
  let dir: string;
  const env = { DSOPS_FILE_KEY: "lib-audit-" + Math.random().toString(36).slice(2) };
  const value = "library-audited-value-" + Math.random().toString(36).slice(2);
  const lines = () =>
    readFileSync(join(dir, "audit.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const load = (policies: string): Config => {
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1\nsecretStores:\n  local: { type: file, path: ./s.store }\nenvs:\n  dev:\n    A: { from: "store://local/app/a" }\n    MODE: { literal: x }\n    GONE: { from: "store://local/app/missing", optional: true }\n  broken:\n    B: { from: "store://local/app/missing" }\n${policies}`,
    );
    return loadConfigFile(join(dir, "dsops.yaml"));
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-lib-audit-"));
    await new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock: systemClock, env }).put("app/a", new Secret(value));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("resolveEnv, resolveRef and fetch each write one line (face library), failures included; nested calls are one access", async () => {
    const r = new Resolver(load("policies:\n  audit_logging: { enabled: true, log_path: ./audit.log, log_level: debug }\n"), { env: { ...process.env, ...env } });
    try {
      const res = await r.resolveEnv("dev");
      assert.equal(res.variables.A?.value.reveal(), value);
      assert.equal((await r.resolveRef({ store: "local", key: "app/a" })).value.reveal(), value);
      assert.equal((await r.fetch({ store: "local", key: "app/a" })).versionId, "1");
      await assert.rejects(r.resolveEnv("broken"), ResolveError);
      await assert.rejects(r.resolveRef({ store: "local", key: "app/missing" }));
    } finally {
      await r.close();
    }
    assert.equal(statSync(join(dir, "audit.log")).mode & 0o777, 0o600);
    assert.ok(!readFileSync(join(dir, "audit.log"), "utf8").includes(value), "no value in the audit log");
    const l = lines();
    assert.deepEqual(
      l.map((x) => [x.command, x.face, x.outcome]),
      [
        ["library resolveEnv", "library", "ok"],
        ["library resolveRef", "library", "ok"],
        ["library fetch", "library", "ok"],
        ["library resolveEnv", "library", "refused"],
        ["library resolveRef", "library", "refused"],
      ],
    );
    assert.equal(l[0]?.env, "dev");
    assert.deepEqual(l[0]?.variables, [{ name: "A", store: "local", key: "app/a", versionId: "1" }, { name: "MODE" }]);
    assert.deepEqual([l[1]?.store, l[1]?.key], ["local", "app/a"]);
    assert.match(String(l[3]?.error), /B/);
    assert.match(String(l[4]?.error), /app\/missing/);
    for (const x of l) {
      assert.equal(typeof x.user, "string");
      assert.equal(x.pid, process.pid);
    }
  });

  it("log_level warn logs only refused accesses; without audit_logging no log is written", async () => {
    const r = new Resolver(load("policies:\n  audit_logging: { enabled: true, log_path: ./audit.log, log_level: warn }\n"), { env: { ...process.env, ...env } });
    try {
      await r.resolveEnv("dev");
      await assert.rejects(r.resolveEnv("broken"));
    } finally {
      await r.close();
    }
    assert.deepEqual(lines().map((x) => [x.command, x.outcome]), [["library resolveEnv", "refused"]]);
    rmSync(join(dir, "audit.log"));
    const plain = new Resolver(load(""), { env: { ...process.env, ...env } });
    try {
      await plain.resolveEnv("dev");
    } finally {
      await plain.close();
    }
    assert.equal(existsSync(join(dir, "audit.log")), false);
  });
});
