// The real Bitwarden CLI (`bw`, npm @bitwarden/cli) against a local server speaking the Bitwarden server API (tests/support/bitwarden-server.ts): no Bitwarden server can run here; bw does its own client-side encryption.
import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { extractJsonField } from "../../provider/engine/jsonpath";
import { Secret } from "../../provider/core/secret";
import { BitwardenStore } from "../../provider/stores/bitwarden";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { BW_CLI, BW_EMAIL as EMAIL, BW_PASSWORD as PASSWORD, bitwardenLoggedIn as loggedIn, type BitwardenLogin as Bw } from "../support/bitwarden-server";
import { dsopsRun } from "../support/cli";
import { storeContract } from "../support/store-contract";

const BW = BW_CLI;

let pending: Array<{ name: string; notes: string; done: (id: string) => void; fail: (e: Error) => void }> = [];

/** Seed a secure note through `bw import` together with the others asked for in the same tick; its revision date. */
function importSoon(b: Bw, name: string, notes: string): Promise<string> {
  return new Promise<string>((done, fail) => {
    pending.push({ name, notes, done, fail });
    if (pending.length > 1) return;
    setImmediate(() => {
      const batch = pending;
      pending = [];
      const file = join(b.appdata, `import-${randomBytes(4).toString("hex")}.json`);
      writeFileSync(file, JSON.stringify({ encrypted: false, folders: [], items: batch.map((p) => ({ type: 2, name: p.name, notes: p.notes, secureNote: { type: 0 }, favorite: false, reprompt: 0 })) }));
      (async () => {
        const r = await b.bw(["import", "bitwardenjson", file]);
        rmSync(file, { force: true });
        if (r.code !== 0) throw new Error(`bw import: ${r.stderr}`);
        const listed = JSON.parse((await b.bw(["list", "items"])).stdout) as Array<{ name: string; revisionDate: string }>;
        for (const p of batch) {
          const it = listed.find((i) => i.name === p.name);
          if (it) p.done(it.revisionDate);
          else p.fail(new Error(`bw import did not create ${p.name}`));
        }
      })().catch((e: Error) => batch.forEach((p) => p.fail(e)));
    });
  });
}

const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64");

function store(b: Bw, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = { BW_SESSION: b.session }): BitwardenStore {
  const settings = storeSettingsSchemas.bitwarden.parse({ type: "bitwarden", cli_path: BW, appdata_dir: b.appdata, ...extra });
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: { ...b.env, ...env } };
  return new BitwardenStore("bw", settings, ctx);
}

describe("bitwarden store (bw CLI)", function () {
  this.timeout(120000);

  let b: Bw | undefined;
  storeContract(
    "bitwarden (real bw CLI, local Bitwarden server)",
    async () => {
      b = await loggedIn();
      const bw = b;
      return {
        store: store(bw),
        seed: async (key, values) => {
          // One-value seeds made in one tick go to bw together as one `bw import` (bw is slow to start).
          if (values.length === 1) return [await importSoon(bw, key, values[0])];
          const ids: string[] = [];
          let item: Record<string, unknown> | undefined;
          for (const v of values) {
            const r = item
              ? await bw.bw(["edit", "item", String(item.id)], encode({ ...item, notes: v }))
              : await bw.bw(["create", "item"], encode({ type: 2, name: key, notes: v, secureNote: { type: 0 } }));
            assert.equal(r.code, 0, r.stderr);
            item = JSON.parse(r.stdout) as Record<string, unknown>;
            ids.push(String(item.revisionDate));
          }
          return ids;
        },
      };
    },
    async () => b?.close(),
  );

  describe("items, fields, batches, writes, sign-in and faults", () => {
    let w: Bw;
    const values: string[] = [];
    const val = (tag: string) => {
      const v = `bwval-${tag}-${randomBytes(6).toString("hex")}`;
      values.push(v);
      return v;
    };
    before(async () => {
      w = await loggedIn();
    });
    after(async () => w?.close());

    /** A copy of bw that records its argv (one line per run) and then runs bw. */
    function recordingCli(): { path: string; log: string } {
      const dir = mkdtempSync(join(tmpdir(), "dsops-bw-argv-"));
      const log = join(dir, "argv.log");
      const path = join(dir, "bw");
      writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$*" >> "${log}"\nexec "${BW}" "$@"\n`);
      chmodSync(path, 0o755);
      writeFileSync(log, "");
      return { path, log };
    }

    it("reads a login item's fields (#password, #username, #totp, #uri, #notes, custom fields) by name and by id", async () => {
      const pw = val("pw");
      const api = val("api");
      const r = await w.bw(["create", "item"], encode({ type: 1, name: "db-login", notes: "the db", login: { username: "app", password: pw, totp: "JBSWY3DPEHPK3PXP", uris: [{ uri: "https://db.example" }] }, fields: [{ name: "api_key", value: api, type: 1 }] }));
      assert.equal(r.code, 0, r.stderr);
      const id = (JSON.parse(r.stdout) as { id: string }).id;
      const s = store(w);
      for (const key of ["db-login", id]) {
        const got = await s.get({ key });
        const text = got.value.reveal();
        assert.equal(extractJsonField(text, "password"), pw);
        assert.equal(extractJsonField(text, "username"), "app");
        assert.equal(extractJsonField(text, "totp"), "JBSWY3DPEHPK3PXP");
        assert.equal(extractJsonField(text, "uri"), "https://db.example");
        assert.equal(extractJsonField(text, "notes"), "the db");
        assert.equal(extractJsonField(text, "api_key"), api);
        assert.ok(got.versionId.length > 0);
      }
    });

    it("reads several keys with one `bw list items`, passes no secret in argv, and writes through stdin", async () => {
      const cli = recordingCli();
      const s = store(w, { cli_path: cli.path });
      const a = val("a");
      const c = val("c");
      await s.put("batch-a", new Secret(a));
      await s.put("batch-c", new Secret(c));
      writeFileSync(cli.log, "");
      const got = await s.getMany([{ key: "batch-a" }, { key: "batch-missing" }, { key: "batch-c" }]);
      assert.equal((got[0] as { value: Secret }).value.reveal(), a);
      assert.ok(got[1] instanceof NotFoundError && got[1].message.includes("batch-missing"), String(got[1]));
      assert.equal((got[2] as { value: Secret }).value.reveal(), c);
      const runs = readFileSync(cli.log, "utf8").trim().split("\n");
      assert.deepEqual(runs, ["list items --nointeraction"]);
      // A second write edits the same item (bw edit item, the JSON on stdin).
      const a2 = val("a2");
      writeFileSync(cli.log, "");
      await s.put("batch-a", new Secret(a2));
      assert.equal((await s.get({ key: "batch-a" })).value.reveal(), a2);
      const argv = readFileSync(cli.log, "utf8");
      assert.match(argv, /^edit item [0-9a-f-]{36} --nointeraction$/m);
      for (const v of [...values, w.session, PASSWORD]) assert.ok(!argv.includes(v), "a secret reached bw's argv");
      assert.equal(w.srv.cipherIds(EMAIL).length >= 3, true);
      // The plan of a run: the session in the environment, never in argv.
      const plan = s.spawnPlan(["list", "items"]);
      assert.equal(plan.env.BW_SESSION, w.session);
      assert.ok(!plan.args.join(" ").includes(w.session));
    });

    it("writes a login item's password (bw edit item), read back by #password", async () => {
      const r = await w.bw(["create", "item"], encode({ type: 1, name: "svc-login", login: { username: "svc", password: val("old") } }));
      assert.equal(r.code, 0, r.stderr);
      const s = store(w);
      const pw = val("new");
      const info = await s.put("svc-login", new Secret(pw));
      const got = await s.get({ key: "svc-login" });
      assert.equal(extractJsonField(got.value.reveal(), "password"), pw);
      assert.equal(extractJsonField(got.value.reveal(), "username"), "svc");
      assert.equal(got.versionId, info.versionId);
      // bw's own view agrees (the server holds the encrypted cipher bw uploaded).
      const seen = await w.bw(["get", "password", "svc-login"]);
      assert.equal(seen.stdout.trim(), pw);
    });

    it("reads an attachment (?attachment=<file name>) as base64 bytes flagged binary; a missing one is not found", async () => {
      const r = await w.bw(["create", "item"], encode({ type: 2, name: "with-file", notes: val("file-note"), secureNote: { type: 0 } }));
      assert.equal(r.code, 0, r.stderr);
      const id = (JSON.parse(r.stdout) as { id: string }).id;
      const bytes = Buffer.concat([Buffer.from([0, 1, 2, 250, 255, 10, 13]), randomBytes(32)]);
      const file = join(w.appdata, "client.p12");
      writeFileSync(file, bytes);
      const up = await w.bw(["create", "attachment", "--file", file, "--itemid", id]);
      assert.equal(up.code, 0, up.stderr);
      rmSync(file);
      const s = store(w);
      const got = await s.get({ key: "with-file", options: { attachment: "client.p12" } });
      assert.equal(got.binary, true);
      assert.deepEqual(Buffer.from(got.value.reveal(), "base64"), bytes);
      const many = await s.getMany([{ key: "with-file", options: { attachment: "client.p12" } }, { key: "with-file", options: { attachment: "nope.txt" } }]);
      assert.deepEqual(Buffer.from((many[0] as { value: Secret }).value.reveal(), "base64"), bytes);
      assert.ok(many[1] instanceof NotFoundError && /no attachment "nope.txt"/.test(many[1].message), String(many[1]));
    });

    it("names two items of one name instead of picking one", async () => {
      for (let i = 0; i < 2; i++) assert.equal((await w.bw(["create", "item"], encode({ type: 2, name: "twin", notes: val("twin"), secureNote: { type: 0 } }))).code, 0);
      await assert.rejects(store(w).get({ key: "twin" }), (e: unknown) => e instanceof StoreError && /2 items are named "twin"/.test((e as Error).message) && !values.some((v) => (e as Error).message.includes(v)));
    });

    it("organisation vaults: organization_id + collection scope reads and creates", async () => {
      const { organizationId, collectionId } = w.srv.addOrganization(EMAIL, "Acme", "prod");
      assert.equal((await w.bw(["sync"])).code, 0);
      const s = store(w, { organization_id: organizationId, collection: collectionId });
      const v = val("org");
      await s.put("org-secret", new Secret(v));
      assert.equal((await s.get({ key: "org-secret" })).value.reveal(), v);
      const listed = JSON.parse((await w.bw(["list", "items", "--organizationid", organizationId])).stdout) as Array<{ name: string; organizationId: string; collectionIds: string[] }>;
      const it0 = listed.find((i) => i.name === "org-secret");
      assert.ok(it0, "bw lists the item in the organisation");
      assert.deepEqual(it0.collectionIds, [collectionId]);
      // A personal item of the same name is outside the store's scope.
      await store(w).put("personal-only", new Secret(val("p")));
      await assert.rejects(s.get({ key: "personal-only" }), (e: unknown) => e instanceof NotFoundError && (e as Error).message.includes(organizationId));
    });

    it("a locked vault (no session) is an auth error whose hint is bw unlock; check() says the same", async () => {
      const s = store(w, {}, { BW_SESSION: undefined });
      await assert.rejects(s.get({ key: "db-login" }), (e: unknown) => e instanceof AuthError && /locked/.test((e as Error).message) && /bw unlock/.test((e as DsopsError).hint ?? ""));
      await assert.rejects(s.check(), (e: unknown) => e instanceof AuthError && /bw unlock/.test((e as DsopsError).hint ?? ""));
      await store(w).check();
    });

    it("a bw that is not logged in is an auth error whose hint is bw login", async () => {
      const fresh = mkdtempSync(join(tmpdir(), "dsops-bw-fresh-"));
      try {
        const s = store(w, { appdata_dir: fresh }, { BW_SESSION: undefined });
        await assert.rejects(s.get({ key: "x" }), (e: unknown) => e instanceof AuthError && /not logged in/.test((e as Error).message) && /bw login/.test((e as DsopsError).hint ?? ""));
        await assert.rejects(s.check(), (e: unknown) => e instanceof AuthError && /bw login/.test((e as DsopsError).hint ?? ""));
      } finally {
        rmSync(fresh, { recursive: true, force: true });
      }
    });

    it("a wrong session key is an auth error that does not print the key", async () => {
      const bad = randomBytes(64).toString("base64");
      const s = store(w, { session: bad });
      await assert.rejects(s.get({ key: "db-login" }), (e: unknown) => e instanceof AuthError && !(e as Error).message.includes(bad) && !(e as Error).message.includes(w.session));
    });

    it("the dsops CLI: render with #field, doctor (ok, then locked with the bw unlock hint), login runs bw unlock", async () => {
      const pw = val("cli-pw");
      const note = val("cli-note");
      assert.equal((await w.bw(["create", "item"], encode({ type: 1, name: "cli-login", login: { username: "cli-user", password: pw } }))).code, 0);
      assert.equal((await w.bw(["create", "item"], encode({ type: 2, name: "cli-note", notes: note, secureNote: { type: 0 } }))).code, 0);
      const dir = mkdtempSync(join(tmpdir(), "dsops-bw-cli-"));
      try {
        writeFileSync(
          join(dir, "dsops.yaml"),
          `version: 1
secretStores:
  vault: { type: bitwarden, cli_path: "${BW}", appdata_dir: "${w.appdata}" }
envs:
  app:
    PW: { from: "store://vault/cli-login#password" }
    USER: { from: { store: vault, key: cli-login#username } }
    NOTE: { from: "vault:cli-note" }
    ABSENT: { from: "store://vault/no-such-item#password", optional: true }
`,
        );
        const env = { ...w.env, BW_SESSION: w.session };
        const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env });
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: Record<string, string> };
        assert.deepEqual(out.variables, { PW: pw, USER: "cli-user", NOTE: note });
        assert.match(r.stderr, /ABSENT: optional, left out: .*no-such-item.*/);
        const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env });
        assert.equal(doc.status, 0, doc.stderr);
        assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
        const locked = { ...w.env };
        const docBad = await dsopsRun(["doctor"], { cwd: dir, env: { ...locked, BW_SESSION: undefined } });
        assert.equal(docBad.status, 1, docBad.stderr);
        assert.match(docBad.stdout + docBad.stderr, /vault +bitwarden +failed .*locked/);
        assert.match(docBad.stdout + docBad.stderr, /bw unlock/);
        const get = await dsopsRun(["get", "--env", "app", "--var", "PW"], { cwd: dir, env: { ...locked, BW_SESSION: undefined } });
        assert.equal(get.status, 1, get.stderr);
        assert.match(get.stderr, /store "vault".*locked/);
        // login runs the real `bw unlock`; without a terminal bw cannot ask for the password and says so.
        const login = await dsopsRun(["login", "vault"], { cwd: dir, env: { ...locked, BW_SESSION: undefined } });
        assert.match(login.stderr + login.stdout, /bw unlock/);
        assert.match(login.stderr + login.stdout, /BW_SESSION/);
        for (const t of [r, doc, docBad, get, login]) {
          for (const v of [...values, w.session, PASSWORD]) assert.ok(!(t.stdout + t.stderr).includes(v), "a value or the session reached dsops's output");
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a missing bw, a hanging bw, and a server down on write", async () => {
      await assert.rejects(store(w, { cli_path: "/nonexistent/bw" }).get({ key: "x" }), (e: unknown) => e instanceof StoreError && /cannot be run/.test((e as Error).message) && /cli_path/.test((e as DsopsError).hint ?? ""));
      const dir = mkdtempSync(join(tmpdir(), "dsops-bw-hang-"));
      const hang = join(dir, "bw");
      writeFileSync(hang, "#!/bin/sh\nexec sleep 600\n");
      chmodSync(hang, 0o755);
      await assert.rejects(store(w, { cli_path: hang, timeout_ms: 500 }).get({ key: "x" }), (e: unknown) => e instanceof TimeoutError && /store "bw"/.test((e as Error).message));
      rmSync(dir, { recursive: true, force: true });
      w.srv.fault({ kind: "status", status: 503, count: 10 });
      const v = val("down");
      try {
        await assert.rejects(store(w).put("during-outage", new Secret(v)), (e: unknown) => e instanceof StoreError && (e as Error).message.includes("during-outage") && !(e as Error).message.includes(v));
      } finally {
        w.srv.fault({ kind: "status", status: 503, count: 0 });
      }
    });
  });
});
