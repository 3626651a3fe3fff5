// Real peers: Debian's `pass` and GnuPG (gpg, gpg-agent) with throwaway GNUPGHOMEs and keys generated here; git for the store's history.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { storeEncryption } from "../../provider/guard/policy";
import { AuthError, DsopsError, NotFoundError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { PassStore } from "../../provider/stores/pass";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsAsync, dsopsRun } from "../support/cli";
import { storeContract } from "../support/store-contract";

const root = mkdtempSync(join(tmpdir(), "dsops-pass-"));
const HOME = join(root, "home");
mkdirSync(HOME, { recursive: true });
/** The environment of every pass, gpg and dsops child here: a throwaway HOME, never the user's keys. */
const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME, LANG: "C", GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.invalid", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.invalid" };
const homes: string[] = [];

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): string {
  const r = spawnSync(cmd, args, { env: { ...baseEnv, ...env }, input, encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A GnuPG home with one new key (no passphrase unless given); its fingerprint. */
function gpgHome(name: string, passphrase = ""): { home: string; fpr: string } {
  const home = join(root, name);
  mkdirSync(home, { mode: 0o700 });
  homes.push(home);
  run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-gen-key", `${name} <${name}@example.invalid>`, "default", "default", "never"], { GNUPGHOME: home });
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(run("gpg", ["--with-colons", "--list-secret-keys"], { GNUPGHOME: home }))![1];
  return { home, fpr };
}

/** A new password store for the key, a git repository when `git`. */
function passStore(name: string, gpg: { home: string; fpr: string }, git: boolean): string {
  const dir = join(root, name);
  run("pass", ["init", gpg.fpr], { GNUPGHOME: gpg.home, PASSWORD_STORE_DIR: dir });
  if (git) run("pass", ["git", "init"], { GNUPGHOME: gpg.home, PASSWORD_STORE_DIR: dir });
  return dir;
}

function insert(dir: string, home: string, key: string, content: string): void {
  run("pass", ["insert", "--multiline", "--force", key], { GNUPGHOME: home, PASSWORD_STORE_DIR: dir }, content);
}

const values: string[] = [];
const val = (tag: string) => {
  const v = `pv-${tag}-${randomBytes(8).toString("hex")}`;
  values.push(v);
  return v;
};
const assertClean = (text: string, what: string) => {
  for (const v of values) assert.ok(!text.includes(v), `${what} holds a value:\n${text}`);
};
const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;
const ctx: StoreContext = { configDir: root, clock: systemClock, env: baseEnv };

let A: { home: string; fpr: string };
let gitDir: string;
let plainDir: string;
const makeStore = (extra: Record<string, unknown> = {}, name = "pw") =>
  new PassStore(name, storeSettingsSchemas.pass.parse({ type: "pass", store_dir: gitDir, gpg_home: A.home, ...extra }), ctx);
const lastCommit = (dir: string, key: string) => run("git", ["-C", dir, "log", "-1", "--format=%H", "--", `${key}.gpg`], {}).trim();

describe("pass store (real pass + gpg)", function () {
  this.timeout(120000);

  before(() => {
    A = gpgHome("alice");
    gitDir = passStore("store-git", A, true);
    plainDir = passStore("store-plain", A, false);
  });

  after(() => {
    for (const h of homes) spawnSync("gpgconf", ["--kill", "all"], { env: { ...baseEnv, GNUPGHOME: h } });
    rmSync(root, { recursive: true, force: true });
  });

  describe("contract", () => {
    storeContract("pass (a git store)", async () => ({
      store: makeStore(),
      seed: async (key: string, vals: string[]) => {
        const ids: string[] = [];
        for (const v of vals) {
          insert(gitDir, A.home, key, `${v}\n`);
          ids.push(lastCommit(gitDir, key));
        }
        return ids;
      },
      key: (name: string) => `contract/${name}`,
      missingVersion: "0123456789abcdef0123456789abcdef01234567",
    }));
    storeContract("pass (a store without git)", async () => ({
      store: makeStore({ store_dir: plainDir }),
      seed: async (key: string, vals: string[]) => {
        const ids: string[] = [];
        for (const v of vals) {
          insert(plainDir, A.home, key, `${v}\n`);
          ids.push((await makeStore({ store_dir: plainDir }).describe({ key })).versionId);
        }
        return ids;
      },
    }));
  });

  it("reads the first line as the value and name: value lines as fields; PASSWORD_STORE_DIR is the default folder", async () => {
    const pw = val("first");
    const user = `alice-${randomBytes(3).toString("hex")}`;
    insert(gitDir, A.home, "web/site", `${pw}\nuser: ${user}\nurl: https://example.invalid/login\nnotes without colon\n`);
    const store = new PassStore("pw", storeSettingsSchemas.pass.parse({ type: "pass", gpg_home: A.home }), { ...ctx, env: { ...baseEnv, PASSWORD_STORE_DIR: gitDir } });
    const got = await store.get({ key: "web/site" });
    assert.equal(got.value.reveal(), pw);
    assert.equal(got.fields?.user?.reveal(), user);
    assert.equal(got.fields?.url?.reveal(), "https://example.invalid/login");
    assert.equal(got.versionId, lastCommit(gitDir, "web/site"));
    assert.equal((await store.get({ key: "web/site", version: got.versionId })).value.reveal(), pw);
    assert.equal((await store.get({ key: "web/site", version: "current" })).value.reveal(), pw);
  });

  it("writes through pass insert: one git commit per write, the entry's other lines kept, encrypted to every recipient of its folder", async () => {
    const B = gpgHome("bob");
    const pub = run("gpg", ["--armor", "--export", B.fpr], { GNUPGHOME: B.home });
    run("gpg", ["--batch", "--import"], { GNUPGHOME: A.home }, pub);
    run("gpg", ["--batch", "--import-ownertrust"], { GNUPGHOME: A.home }, `${B.fpr}:6:\n`);
    run("pass", ["init", "--path", "team", A.fpr, B.fpr], { GNUPGHOME: A.home, PASSWORD_STORE_DIR: gitDir });
    const old = val("old");
    insert(gitDir, A.home, "team/db", `${old}\nuser: dbadmin\n`);
    const before = Number(run("git", ["-C", gitDir, "rev-list", "--count", "HEAD"], {}).trim());
    const store = makeStore();
    const v = val("new");
    const info = await store.put("team/db", new Secret(v));
    assert.equal(Number(run("git", ["-C", gitDir, "rev-list", "--count", "HEAD"], {}).trim()), before + 1);
    assert.equal(info.versionId, run("git", ["-C", gitDir, "rev-parse", "HEAD"], {}).trim());
    assert.match(run("git", ["-C", gitDir, "log", "-1", "--format=%s"], {}), /team\/db/);
    assert.equal(run("git", ["-C", gitDir, "status", "--porcelain"], {}).trim(), "");
    assert.equal(run("pass", ["show", "team/db"], { GNUPGHOME: A.home, PASSWORD_STORE_DIR: gitDir }), `${v}\nuser: dbadmin\n`);
    // bob alone (his own GnuPG home) decrypts the new entry: it is encrypted to both recipients.
    const asBob = new PassStore("pw", storeSettingsSchemas.pass.parse({ type: "pass", store_dir: gitDir, gpg_home: B.home }), ctx);
    assert.equal((await asBob.get({ key: "team/db" })).value.reveal(), v);
    const packets = spawnSync("gpg", ["--batch", "--list-packets", join(gitDir, "team/db.gpg")], { env: { ...baseEnv, GNUPGHOME: join(root, "empty-for-packets") }, encoding: "utf8" });
    const keyids = [...`${packets.stdout}${packets.stderr}`.matchAll(/keyid ([0-9A-F]{16})/g)].map((m) => m[1]);
    assert.equal(new Set(keyids).size, 2, `${packets.stdout}${packets.stderr}`);
    // a new entry holds the value alone; concurrent writes of one store are serialized (one git lock).
    const vs = [val("c1"), val("c2"), val("c3")];
    await Promise.all(vs.map((x, i) => store.put(`conc/e${i}`, new Secret(x))));
    for (let i = 0; i < vs.length; i++) assert.equal((await store.get({ key: `conc/e${i}` })).value.reveal(), vs[i]);
    assert.equal(Number(run("git", ["-C", gitDir, "rev-list", "--count", "HEAD"], {}).trim()), before + 4);
    // a value with a line break is refused, nothing written
    await assert.rejects(store.put("team/db", new Secret(`${val("multi")}\nuser: x`)), (e: unknown) => e instanceof DsopsError && /line break/.test((e as Error).message) && !errorText(e).includes("pv-"));
    assert.equal(run("pass", ["show", "team/db"], { GNUPGHOME: A.home, PASSWORD_STORE_DIR: gitDir }), `${v}\nuser: dbadmin\n`);
  });

  it("missing entries, folders and bad paths: not found or refused, naming the entry", async () => {
    const store = makeStore();
    await assert.rejects(store.get({ key: "nope/not-here" }), (e: unknown) => e instanceof NotFoundError && /entry "nope\/not-here" is not in the password store/.test((e as Error).message));
    insert(gitDir, A.home, "folder/inside", `${val("in")}\n`);
    await assert.rejects(store.get({ key: "folder" }), (e: unknown) => e instanceof NotFoundError && /it is a folder of entries/.test((e as Error).message));
    for (const bad of ["../etc/passwd", "/abs", "a//b", "a/", "./a"])
      await assert.rejects(store.get({ key: bad }), (e: unknown) => e instanceof DsopsError && !(e instanceof NotFoundError) && /is not a pass entry path/.test((e as Error).message), bad);
    await assert.rejects(store.get({ key: "folder/inside", version: "deadbeef" }), (e: unknown) => e instanceof NotFoundError && /has no version "deadbeef"/.test((e as Error).message));
  });

  it("gpg cannot decrypt (no secret key in the GnuPG home, an entry encrypted to another key): AuthError naming gpg, no value", async () => {
    const v = val("locked");
    insert(gitDir, A.home, "secret/one", `${v}\nuser: u\n`);
    const emptyHome = join(root, "gpg-empty");
    mkdirSync(emptyHome, { mode: 0o700 });
    homes.push(emptyHome);
    const noKey = makeStore({ gpg_home: emptyHome });
    await assert.rejects(noKey.get({ key: "secret/one" }), (e: unknown) => {
      assert.ok(e instanceof AuthError, String(e));
      assert.match((e as Error).message, /store "pw": read of entry "secret\/one": gpg cannot decrypt it: .*(No secret key|decryption failed)/s);
      assert.match(String((e as AuthError).hint), /secret key .*gpg --list-secret-keys/);
      assertClean(errorText(e), "the error");
      return true;
    });
    // carol's entry, in a folder encrypted to carol alone: alice (whose home this store uses) cannot read it
    const C = gpgHome("carol");
    run("gpg", ["--batch", "--import"], { GNUPGHOME: A.home }, run("gpg", ["--armor", "--export", C.fpr], { GNUPGHOME: C.home }));
    run("gpg", ["--batch", "--import-ownertrust"], { GNUPGHOME: A.home }, `${C.fpr}:6:\n`);
    run("pass", ["init", "--path", "carol", C.fpr], { GNUPGHOME: A.home, PASSWORD_STORE_DIR: gitDir });
    insert(gitDir, A.home, "carol/token", `${val("carol")}\n`);
    await assert.rejects(makeStore().get({ key: "carol/token" }), (e: unknown) => e instanceof AuthError && /gpg cannot decrypt/.test((e as Error).message) && !errorText(e).includes("pv-"));
    // a write to carol's entry needs to read its other lines first: the same auth error, nothing written
    const beforeFile = readFileSync(join(gitDir, "carol/token.gpg"));
    await assert.rejects(makeStore().put("carol/token", new Secret(val("overwrite"))), AuthError);
    assert.deepEqual(readFileSync(join(gitDir, "carol/token.gpg")), beforeFile);
  });

  it("a gpg waiting on a pinentry that never answers: TimeoutError at timeout_ms, naming it", async () => {
    const D = gpgHome("dave", "dave-passphrase");
    spawnSync("gpgconf", ["--kill", "gpg-agent"], { env: { ...baseEnv, GNUPGHOME: D.home } });
    const pinentry = join(root, "hanging-pinentry");
    // A pinentry that greets the agent and answers its settings, but never answers the passphrase request.
    writeFileSync(pinentry, '#!/bin/sh\necho "OK Pleased to meet you"\nwhile read l; do case "$l" in GETPIN*) exec 3>&1; exec cat >/dev/null;; *) echo OK;; esac; done\n');
    chmodSync(pinentry, 0o755);
    writeFileSync(join(D.home, "gpg-agent.conf"), `pinentry-program ${pinentry}\n`);
    const dir = passStore("store-dave", D, false);
    insert(dir, D.home, "x", `${val("dave")}\n`);
    const store = new PassStore("pw", storeSettingsSchemas.pass.parse({ type: "pass", store_dir: dir, gpg_home: D.home, timeout_ms: 3000 }), ctx);
    await assert.rejects(store.get({ key: "x" }), (e: unknown) => {
      assert.ok(e instanceof TimeoutError, String(e));
      assert.match((e as Error).message, /store "pw": read of entry "x": "pass show" gave no answer within 3000 ms \(timeout_ms\)/);
      return true;
    });
    // the timed-out pass and its gpg were stopped (their whole process group)
    const gpgOf = (file: string) => readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(file);
        } catch {
          return false;
        }
      });
    assert.deepEqual(gpgOf(join(dir, "x.gpg")), []);
    // Ctrl-C of a dsops waiting on that gpg: the signal also ends pass and gpg (their own process group)
    const cfg = mkdtempSync(join(root, "cli-sigint-"));
    writeFileSync(join(cfg, "dsops.yaml"), `secretStores:\n  pw: { type: pass, store_dir: "${dir}", gpg_home: "${D.home}", timeout_ms: 600000 }\nenvs:\n  e:\n    X: { from: "pw:x" }\n`);
    const child = dsopsAsync(["get", "--env", "e", "--var", "X"], { cwd: cfg, env: baseEnv });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on("exit", (code, signal) => res({ code, signal })));
    // wait for the condition (gpg started on the entry), not for time
    await new Promise<void>((res, rej) => {
      const poll = setInterval(() => {
        if (gpgOf(join(dir, "x.gpg")).length > 0) {
          clearInterval(poll);
          res();
        } else if (child.exitCode !== null) {
          clearInterval(poll);
          rej(new Error(`dsops ended before gpg started (exit ${child.exitCode})`));
        }
      }, 50);
    });
    child.kill("SIGINT");
    const end = await exited;
    assert.ok(end.signal === "SIGINT" || end.code === 130, JSON.stringify(end));
    assert.deepEqual(gpgOf(join(dir, "x.gpg")), []);
  });

  it("no pass on PATH, no store folder, an uninitialized folder: clear errors", async () => {
    const emptyBin = join(root, "empty-bin");
    mkdirSync(emptyBin);
    insert(plainDir, A.home, "p", `${val("p")}\n`);
    const noPass = new PassStore("pw", storeSettingsSchemas.pass.parse({ type: "pass", store_dir: plainDir, gpg_home: A.home }), { ...ctx, env: { ...baseEnv, PATH: emptyBin } });
    await assert.rejects(noPass.get({ key: "p" }), (e: unknown) => e instanceof DsopsError && /the command "pass" is not installed/.test((e as Error).message) && /apt-get install pass/.test(String((e as DsopsError).hint)));
    await assert.rejects(noPass.check(), /the command "pass" is not installed/);
    await assert.rejects(makeStore({ store_dir: join(root, "nowhere") }).get({ key: "p" }), /the password store .*nowhere does not exist or is not a folder/);
    const bare = join(root, "bare");
    mkdirSync(bare);
    await assert.rejects(makeStore({ store_dir: bare }).check(), /is not an initialized password store \(no \.gpg-id\).*/);
    await makeStore().check();
  });

  it("through the CLI: get and render with #user, `path` (dsops's name), doctor, providers, login; no value in any output", async () => {
    const dir = mkdtempSync(join(root, "cli-"));
    const pw = val("cli");
    const user = `svc-${randomBytes(3).toString("hex")}`;
    insert(gitDir, A.home, "cli/db", `${pw}\nuser: ${user}\n`);
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  pw: { type: pass, path: "${gitDir}", gpg_home: "${A.home}" }
  broken: { type: pass, store_dir: "${join(root, "nowhere")}" }
envs:
  app:
    DB_PASSWORD: { from: "pw:cli/db" }
    DB_USER: { from: "store://pw/cli/db#user" }
    GONE: { from: "pw:cli/gone", optional: true }
  bad:
    X: { from: "pw:cli/db#nosuchfield" }
`,
    );
    const env = { ...baseEnv };
    const g = await dsopsRun(["get", "--env", "app", "--var", "DB_USER"], { cwd: dir, env });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout.trim(), user);
    const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: Record<string, string> };
    assert.deepEqual(out.variables, { DB_PASSWORD: pw, DB_USER: user });
    assert.match(r.stderr, /GONE: optional, left out: .*not in the password store/);
    assertClean(r.stdout + r.stderr, "render's output");
    const bad = await dsopsRun(["get", "--env", "bad", "--var", "X"], { cwd: dir, env });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /field "nosuchfield": the entry has no such field \(1 named field\)/);
    assertClean(bad.stdout + bad.stderr, "get's output");
    const doc = await dsopsRun(["doctor", "--store", "pw", "--json"], { cwd: dir, env });
    assert.equal(doc.status, 0, doc.stdout + doc.stderr);
    const docBad = await dsopsRun(["doctor", "--store", "broken"], { cwd: dir, env });
    assert.equal(docBad.status, 1, docBad.stderr);
    assert.match(docBad.stdout + docBad.stderr, /broken +pass +failed .*does not exist or is not a folder/);
    const prov = await dsopsRun(["providers"], { cwd: dir, env });
    assert.match(prov.stdout, /^pass +yes +no\*? +- +no +no +check +the standard Unix password store/m);
    // secrets set: the value on dsops's stdin, then on pass's: a git commit, the user: line kept
    const commits = Number(run("git", ["-C", gitDir, "rev-list", "--count", "HEAD"], {}).trim());
    const nv = val("set");
    const set = await dsopsRun(["secrets", "set", "--store", "pw", "--key", "cli/db"], { cwd: dir, env, input: nv });
    assert.equal(set.status, 0, set.stderr);
    assertClean(set.stdout + set.stderr, "secrets set's output");
    assert.equal(run("pass", ["show", "cli/db"], { GNUPGHOME: A.home, PASSWORD_STORE_DIR: gitDir }), `${nv}\nuser: ${user}\n`);
    assert.equal(Number(run("git", ["-C", gitDir, "rev-list", "--count", "HEAD"], {}).trim()), commits + 1);
    for (const type of ["pass", "keychain"]) assert.deepEqual(storeEncryption({ type }), { ok: true }, type);
    const login = await dsopsRun(["login", "pw"], { cwd: dir, env });
    assert.equal(login.status, 0, login.stderr);
    assert.match(login.stdout + login.stderr, /decrypts with gpg: there is no sign-in/);
  });
});
