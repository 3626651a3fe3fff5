// Real peer: Debian's keepassxc-cli (package keepassxc) on KDBX databases this test creates with it; nothing is simulated.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { KeePassXcStore } from "../../provider/stores/keepassxc";
import { contentVersion } from "../../provider/stores/literal";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun } from "../support/cli";
import { storeContract } from "../support/store-contract";

const hasCli = spawnSync("keepassxc-cli", ["--version"]).status === 0;

describe("keepassxc store (real keepassxc-cli)", function () {
  this.timeout(120000);
  let dir: string;
  const PW = `kp-master-${randomBytes(8).toString("hex")}`;
  const PW2 = `kp-master2-${randomBytes(8).toString("hex")}`;
  /** Every password and value of this file: no error, argv or output may hold one. */
  const secrets: string[] = [PW, PW2];
  const val = (tag: string) => {
    const v = `kpv-${tag}-${randomBytes(8).toString("hex")}`;
    secrets.push(v);
    return v;
  };
  const ctx = (): StoreContext => ({ configDir: dir, clock: systemClock, env: process.env });
  const makeStore = (extra: Record<string, unknown> = {}, name = "kp") =>
    new KeePassXcStore(name, storeSettingsSchemas.keepassxc.parse({ type: "keepassxc", database: "main.kdbx", password: PW, ...extra }), ctx());
  /** keepassxc-cli itself, as a user runs it (passwords on stdin). */
  function kp(args: string[], input: string): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("keepassxc-cli", args, { cwd: dir, input, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  /** Create or update an entry with keepassxc-cli (its groups first); extra: -u/--url/--notes; pw null: a key-file-only database. */
  function kpSet(db: string, entry: string, value: string, extra: string[] = [], pw: string | null = PW, keyArgs: string[] = []): void {
    const first = pw === null ? "" : `${pw}\n`;
    const groups = entry.split("/").slice(0, -1);
    for (let i = 1; i <= groups.length; i++) kp(["mkdir", ...keyArgs, db, groups.slice(0, i).join("/")], first);
    const exists = kp(["show", ...keyArgs, "-a", "title", db, entry], first).status === 0;
    const r = kp([exists ? "edit" : "add", ...keyArgs, ...extra, "-p", db, entry], `${first}${value}\n`);
    assert.equal(r.status, 0, r.stderr);
  }
  const kpShow = (db: string, entry: string, attr = "password", pw = PW, keyArgs: string[] = []) => kp(["show", ...keyArgs, "-a", attr, db, entry], `${pw}\n`);
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
  const assertClean = (text: string, what: string) => {
    for (const s of secrets) assert.ok(!text.includes(s), `${what} holds a password or value:\n${text}`);
  };

  before(function () {
    if (!hasCli) this.skip();
    dir = mkdtempSync(join(tmpdir(), "dsops-kp-"));
    const mk = (args: string[], input: string) => assert.equal(kp(["db-create", "-t", "100", ...args], input).status, 0);
    mk(["-p", "main.kdbx"], `${PW}\n${PW}\n`);
    mk(["-p", "--set-key-file", "both.key", "both.kdbx"], `${PW2}\n${PW2}\n`);
    mk(["--set-key-file", "only.key", "only.kdbx"], "");
    mk(["--set-key-file", "other.key", "other.kdbx"], "");
  });
  after(() => {
    if (dir) {
      spawnSync("chattr", ["-i", join(dir, "ro.kdbx")]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  storeContract("keepassxc", async () => ({
    store: makeStore(),
    seed: async (key, values) => {
      for (const v of values) kpSet("main.kdbx", key, v);
      return values.map(contentVersion);
    },
    key: (n) => `contract/${n}`,
  }));

  it("reads the password, #username, #url, #notes (several lines), #title and custom attributes of an entry", async () => {
    const pw = val("api");
    kpSet("main.kdbx", "prod/api", pw, ["-u", "alice", "--url", "https://api.example.test", "--notes", "line one\nline two"]);
    const store = makeStore();
    assert.equal((await store.get({ key: "prod/api" })).value.reveal(), pw);
    assert.equal((await store.get({ key: "/prod/api" })).value.reveal(), pw);
    assert.equal((await store.get({ key: "prod/api", field: "username" })).value.reveal(), "alice");
    assert.equal((await store.get({ key: "prod/api", field: "url" })).value.reveal(), "https://api.example.test");
    assert.equal((await store.get({ key: "prod/api", field: "notes" })).value.reveal(), "line one\nline two");
    assert.equal((await store.get({ key: "prod/api", field: "Title" })).value.reveal(), "api");
    assert.equal((await store.get({ key: "prod/api", field: "password" })).versionId, contentVersion(pw));
    await assert.rejects(store.get({ key: "prod/api", field: "no_such_attr" }), (e: unknown) => {
      assert.ok(e instanceof NotFoundError, String(e));
      assert.match((e as Error).message, /^store "kp": read of "prod\/api" \(attribute no_such_attr\): entry "prod\/api" has no attribute "no_such_attr"$/);
      return true;
    });
    await assert.rejects(store.get({ key: "prod/nothing" }), (e: unknown) => e instanceof NotFoundError && /entry "prod\/nothing" not found in .*main\.kdbx/.test((e as Error).message));
    await assert.rejects(store.get({ key: "nogroup/x" }), NotFoundError);
    await assert.rejects(store.get({ key: "prod/api", version: "0123456789abcdef" }), NotFoundError);
    await assert.rejects(store.get({ key: "prod//api" }), (e: unknown) => e instanceof DsopsError && /not an entry path/.test((e as Error).message));
  });

  it("writes: a new entry (its groups created) and an edit, both read back by keepassxc-cli; other attributes kept", async () => {
    const store = makeStore();
    const v1 = val("w1");
    const v2 = val("w2");
    const a = await store.put("deep/er/still/svc", new Secret(v1));
    assert.equal(a.versionId, contentVersion(v1));
    assert.equal(kpShow("main.kdbx", "deep/er/still/svc").stdout, `${v1}\n`);
    kp(["edit", "-u", "bob", "main.kdbx", "deep/er/still/svc"], `${PW}\n`);
    const b = await store.put("deep/er/still/svc", new Secret(v2));
    assert.notEqual(a.versionId, b.versionId);
    assert.equal(kpShow("main.kdbx", "deep/er/still/svc").stdout, `${v2}\n`);
    assert.equal(kpShow("main.kdbx", "deep/er/still/svc", "username").stdout, "bob\n");
    // Writes of one store run one at a time: none is lost to another's save.
    const many = Array.from({ length: 4 }, (_, i) => ({ key: `par/e${i}`, v: val(`par${i}`) }));
    await Promise.all(many.map((m) => store.put(m.key, new Secret(m.v))));
    for (const m of many) assert.equal(kpShow("main.kdbx", m.key).stdout, `${m.v}\n`);
    await assert.rejects(store.put("deep/x", new Secret("two\nlines")), (e: unknown) => e instanceof DsopsError && /line break/.test((e as Error).message) && !/two/.test((e as Error).message));
  });

  it("databases with a key file: password + key file, key file alone; a wrong or missing key file is an AuthError naming key_file", async () => {
    const v = val("kf");
    kpSet("both.kdbx", "g/e", v, [], PW2, ["-k", "both.key"]);
    assert.equal((await makeStore({ database: "both.kdbx", password: PW2, key_file: "both.key" }).get({ key: "g/e" })).value.reveal(), v);
    const w = val("only");
    kpSet("only.kdbx", "g/e", w, [], null, ["--no-password", "-k", "only.key"]);
    const only = new KeePassXcStore("kp", storeSettingsSchemas.keepassxc.parse({ type: "keepassxc", database: "only.kdbx", key_file: "only.key" }), ctx());
    assert.equal((await only.get({ key: "g/e" })).value.reveal(), w);
    const w2 = val("only2");
    await only.put("g/e", new Secret(w2));
    assert.equal(kp(["show", "--no-password", "-k", "only.key", "-a", "password", "only.kdbx", "g/e"], "").stdout, `${w2}\n`);
    await only.check();
    const wrongKey = new KeePassXcStore("kp", storeSettingsSchemas.keepassxc.parse({ type: "keepassxc", database: "only.kdbx", key_file: "other.key" }), ctx());
    await assert.rejects(wrongKey.get({ key: "g/e" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /^store "kp": read of "g\/e": the database .*only\.kdbx did not open: wrong key file \(setting key_file\)$/);
      return true;
    });
    await assert.rejects(makeStore({ database: "both.kdbx", password: PW2, key_file: "missing.key" }).get({ key: "g/e" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /the key file .*missing\.key \(setting key_file\) cannot be read: No such file or directory/);
      assertClean(errorText(e), "the error");
      return true;
    });
  });

  it("attacks: a wrong password, a missing or corrupt database, a missing CLI, a CLI that hangs", async () => {
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    secrets.push(wrong);
    await assert.rejects(makeStore({ password: wrong }).get({ key: "prod/api" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /^store "kp": read of "prod\/api": the database .*main\.kdbx did not open: wrong password \(setting password\)$/);
      assertClean(errorText(e), "the error");
      return true;
    });
    await assert.rejects(makeStore({ password: wrong }).check(), AuthError);
    await assert.rejects(makeStore({ database: "absent.kdbx" }).get({ key: "a/b" }), (e: unknown) => {
      assert.ok(e instanceof DsopsError && !(e instanceof AuthError) && !(e instanceof NotFoundError), String(e));
      assert.match((e as Error).message, /the database .*absent\.kdbx \(setting database\) does not exist/);
      return true;
    });
    writeFileSync(join(dir, "corrupt.kdbx"), Buffer.concat([readFileSync(join(dir, "main.kdbx")).subarray(0, 200), randomBytes(300)]));
    await assert.rejects(makeStore({ database: "corrupt.kdbx" }).get({ key: "prod/api" }), (e: unknown) => {
      assert.ok(e instanceof StoreError || e instanceof AuthError, String(e));
      assert.ok(!(e instanceof StoreError && e.retryable), "a damaged file is not retried");
      // KeePassXC cannot tell a damaged file from a wrong password (the header's HMAC fails): the hint says both.
      if (e instanceof AuthError) assert.match(String((e as DsopsError).hint), /the file may be damaged/);
      assertClean(errorText(e), "the error");
      return true;
    });
    writeFileSync(join(dir, "garbage.kdbx"), "not a database at all");
    await assert.rejects(makeStore({ database: "garbage.kdbx" }).get({ key: "prod/api" }), (e: unknown) => e instanceof StoreError && !e.retryable && /garbage\.kdbx is not a readable KDBX database/.test((e as Error).message));
    await assert.rejects(makeStore({ cli: join(dir, "no-such-cli") }).get({ key: "prod/api" }), (e: unknown) => {
      assert.ok(e instanceof StoreError && !e.retryable, String(e));
      assert.match((e as Error).message, /no-such-cli not found/);
      assert.match(String((e as DsopsError).hint), /apt-get install keepassxc/);
      return true;
    });
    const hang = join(dir, "hang.sh");
    writeFileSync(hang, "#!/bin/sh\nexec sleep 60\n");
    chmodSync(hang, 0o755);
    await assert.rejects(makeStore({ cli: hang, timeout_ms: 300 }).get({ key: "prod/api" }), (e: unknown) => e instanceof TimeoutError && /did not finish within 300 ms \(timeout_ms\)/.test((e as Error).message));
  });

  it("the database password and values never reach keepassxc-cli's arguments (stdin only)", async () => {
    const log = join(dir, "argv.log");
    const wrap = join(dir, "kp-wrap.sh");
    writeFileSync(wrap, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec keepassxc-cli "$@"\n`);
    chmodSync(wrap, 0o755);
    const store = makeStore({ cli: wrap });
    const v = val("argv");
    await store.put("argv/entry", new Secret(v));
    assert.equal((await store.get({ key: "argv/entry" })).value.reveal(), v);
    const argv = readFileSync(log, "utf8");
    assert.match(argv, /^add .*-p .*main\.kdbx argv\/entry$/m);
    assertClean(argv, "keepassxc-cli's argv");
  });

  it("several keys are read from ONE csv export (quotes, commas, line breaks kept); a missing entry is its own NotFoundError", async () => {
    const log = join(dir, "argv-batch.log");
    const wrap = join(dir, "kp-wrap-batch.sh");
    writeFileSync(wrap, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec keepassxc-cli "$@"\n`);
    chmodSync(wrap, 0o755);
    const tricky = `${val("q")}"quoted",comma\\back`;
    secrets.push(tricky);
    kpSet("main.kdbx", "batch/one", tricky, ["-u", 'us"er', "--notes", 'a,"b"\nc']);
    const top = val("top");
    kpSet("main.kdbx", "top-level", top);
    const results = await makeStore({ cli: wrap }).getMany([
      { key: "batch/one" },
      { key: "batch/one", field: "username" },
      { key: "batch/one", field: "notes" },
      { key: "batch/absent" },
      { key: "/top-level" },
      { key: "batch/one", field: "title" },
    ]);
    assert.equal((results[0] as { value: Secret }).value.reveal(), tricky);
    assert.equal((results[0] as { versionId: string }).versionId, contentVersion(tricky));
    assert.equal((results[1] as { value: Secret }).value.reveal(), 'us"er');
    assert.equal((results[2] as { value: Secret }).value.reveal(), 'a,"b"\nc');
    assert.ok(results[3] instanceof NotFoundError && /entry "batch\/absent" not found/.test(results[3].message), String(results[3]));
    assert.equal((results[4] as { value: Secret }).value.reveal(), top);
    assert.equal((results[5] as { value: Secret }).value.reveal(), "one");
    const runs = readFileSync(log, "utf8").trim().split("\n");
    assert.equal(runs.length, 1, runs.join("\n"));
    assert.match(runs[0], /^export -f csv .*main\.kdbx$/);
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    secrets.push(wrong);
    const failed = await makeStore({ password: wrong }).getMany([{ key: "batch/one" }, { key: "top-level" }]);
    for (const r of failed) {
      assert.ok(r instanceof AuthError, String(r));
      assertClean(errorText(r), "the error");
    }
  });

  it("a read-only database file: the write fails, nothing half-written (the database opens, the old value is there)", async function () {
    copyFileSync(join(dir, "main.kdbx"), join(dir, "ro.kdbx"));
    const old = val("ro-old");
    kpSet("ro.kdbx", "ro/e", old);
    const before = readFileSync(join(dir, "ro.kdbx"));
    if (process.getuid?.() === 0) {
      if (spawnSync("chattr", ["+i", join(dir, "ro.kdbx")]).status !== 0) return this.skip(); // root ignores file modes; chattr +i is the way
    } else chmodSync(join(dir, "ro.kdbx"), 0o400);
    const filesBefore = readdirSync(dir).sort();
    const store = makeStore({ database: "ro.kdbx" });
    const v = val("ro-new");
    await assert.rejects(store.put("ro/e", new Secret(v)), (e: unknown) => {
      assert.ok(e instanceof StoreError && !e.retryable, String(e));
      assert.match((e as Error).message, /^store "kp": write of "ro\/e": cannot write .*ro\.kdbx: /);
      assertClean(errorText(e), "the error");
      return true;
    });
    await assert.rejects(store.put("ro/new/entry", new Secret(v)), StoreError);
    assert.deepEqual(readFileSync(join(dir, "ro.kdbx")), before);
    assert.deepEqual(readdirSync(dir).sort(), filesBefore);
    assert.equal(kpShow("ro.kdbx", "ro/e").stdout, `${old}\n`);
    assert.equal((await store.get({ key: "ro/e" })).value.reveal(), old);
  });

  it("through the CLI: get, render (a relative database, ${VAR} and store:// passwords, #fields), doctor, secrets set; errors exit 1 naming store and setting", async () => {
    const cdir = mkdtempSync(join(tmpdir(), "dsops-kp-cli-"));
    try {
      copyFileSync(join(dir, "main.kdbx"), join(cdir, "team.kdbx"));
      const pw = val("cli");
      const json = JSON.stringify({ db: { password: val("json") } });
      const db = join(cdir, "team.kdbx");
      kpSet(db, "prod/web", pw, ["-u", "web-user", "--notes", "n1\nn2"]);
      kpSet(db, "prod/json", json);
      writeFileSync(
        join(cdir, "dsops.yaml"),
        `version: 1
secretStores:
  kp: { type: keepassxc, database: ./team.kdbx, password: "\${KP_PW}" }
  kpref: { type: keepassxc, database: ./team.kdbx, password: "store://master/KP_MASTER" }
  master: { type: env }
  loop: { type: keepassxc, database: ./team.kdbx, password: "store://loop2/x" }
  loop2: { type: keepassxc, database: ./team.kdbx, password: "store://loop/y" }
envs:
  app:
    PW: { from: "store://kp/prod/web" }
    USER: { from: "store://kp/prod/web#username" }
    NOTES: { from: "kp:prod/web#notes" }
    DBPW: { from: "store://kp/prod/json#.db.password" }
    VIA_REF: { from: "store://kpref/prod/web" }
  loop:
    X: { from: "store://loop/prod/web" }
`,
      );
      const env = { KP_PW: PW, KP_MASTER: PW };
      const g = await dsopsRun(["get", "--env", "app", "--var", "USER"], { cwd: cdir, env });
      assert.equal(g.status, 0, g.stderr);
      assert.equal(g.stdout.trim(), "web-user");
      const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: cdir, env });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(readFileSync(join(cdir, "out.json"), "utf8")) as { variables: Record<string, string> };
      assert.deepEqual(out.variables, { PW: pw, USER: "web-user", NOTES: "n1\nn2", DBPW: (JSON.parse(json) as { db: { password: string } }).db.password, VIA_REF: pw });
      assertClean(r.stdout + r.stderr, "render's output");
      const doc = await dsopsRun(["doctor", "--json", "--store", "kp"], { cwd: cdir, env });
      assert.equal(doc.status, 0, doc.stdout + doc.stderr);
      assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
      const wrong = `wrong-${randomBytes(6).toString("hex")}`;
      secrets.push(wrong);
      const bad = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: cdir, env: { KP_PW: wrong, KP_MASTER: PW } });
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /PW \(store kp, key prod\/web\): store "kp": read of "prod\/web": the database .*team\.kdbx did not open: wrong password \(setting password\)/);
      const docBad = await dsopsRun(["doctor", "--store", "kp"], { cwd: cdir, env: { KP_PW: wrong } });
      assert.equal(docBad.status, 1, docBad.stdout + docBad.stderr);
      assert.match(docBad.stdout + docBad.stderr, /kp +keepassxc +failed .*wrong password \(setting password\)/);
      const loop = await dsopsRun(["get", "--env", "loop", "--var", "X"], { cwd: cdir, env });
      assert.equal(loop.status, 1, loop.stderr);
      assert.match(loop.stderr, /X \(store loop, key prod\/web\): store "loop": the reference store:\/\/loop2\/x in its settings leads back to store "loop"/);
      const missing = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: cdir, env: { KP_MASTER: PW } });
      assert.equal(missing.status, 1, missing.stderr);
      assert.match(missing.stderr, /KP_PW/);
      const nv = val("set");
      const set = await dsopsRun(["secrets", "set", "--store", "kp", "--key", "staging/new-svc"], { cwd: cdir, env, input: `${nv}\n` });
      assert.equal(set.status, 0, set.stderr);
      assert.match(set.stderr, new RegExp(`store kp: staging/new-svc → version ${contentVersion(nv)}`));
      assert.equal(kpShow(db, "staging/new-svc").stdout, `${nv}\n`);
      const login = await dsopsRun(["login", "kp"], { cwd: cdir, env });
      assert.equal(login.status, 0, login.stderr);
      assert.match(login.stdout + login.stderr, /opens .*team\.kdbx itself with its password \(password\); nothing to log in to/);
      for (const x of [g, bad, docBad, doc, loop, missing, set, login]) assertClean(x.stdout + x.stderr, "the CLI's output");
    } finally {
      rmSync(cdir, { recursive: true, force: true });
    }
  });
});
