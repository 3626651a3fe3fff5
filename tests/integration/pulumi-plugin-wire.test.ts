import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as proto from "@pulumi/pulumi/proto/provider_pb";
import * as pluginProto from "@pulumi/pulumi/proto/plugin_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { engineAddress } from "../../provider/plugin/serve";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * (RotationPolicy here rotates a role of a real PostgreSQL 15, tests/support/postgres.ts.)
 * The dsops plugin on the wire: bin/pulumi-resource-dsops started as the engine starts it, and
 * driven with the Pulumi gRPC client of @pulumi/pulumi's protos, as the engine drives it (any
 * language's program reaches the plugin this way). Secrets must be marked on the wire here,
 * whatever a language host adds from schema.json.
 */
const ROOT = join(__dirname, "..", "..", "..");
const SIG = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const URN = (type: string, name: string) => `urn:pulumi:dev::wire::dsops:index:${type}::${name}`;
const secret = (value: unknown) => ({ [SIG]: SECRET_SIG, value });

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => unknown;
/** One unary call of the client; `Res` is the method's response type. */
const call = <Res>(client: ResourceProviderClient, fn: unknown, req: unknown) =>
  new Promise<Res>((resolve, reject) => (fn as Unary).call(client, req, (err, res) => (err ? reject(err) : resolve(res as Res))));

describe("the dsops plugin on the wire (bin/pulumi-resource-dsops, Pulumi's gRPC provider protocol)", function () {
  this.timeout(60000);
  let dir: string;
  let plugin: ChildProcess;
  let client: ResourceProviderClient;
  const FILE_KEY = `wire-key-${randomBytes(6).toString("hex")}`;
  const values: string[] = [];
  let printed = "";
  const fileStore = (at = Date.now()) => new FileStore("vault", { type: "file", path: join(dir, "team.store") }, { configDir: dir, clock: new ManualClock(at), env: { DSOPS_FILE_KEY: FILE_KEY } });
  /** A new version of `key` with a fresh value (made at `at`). */
  const put = async (key: string, at = Date.now()) => {
    const v = `wire-${randomBytes(9).toString("base64url")}`;
    values.push(v);
    return { value: v, versionId: (await fileStore(at).put(key, new Secret(v))).versionId };
  };
  const update = async (type: string, id: string, olds: object, news: object) => {
    const req = new proto.UpdateRequest();
    req.setUrn(URN(type, "r"));
    req.setId(id);
    req.setOlds(Struct.fromJavaScript(olds as never));
    req.setNews(Struct.fromJavaScript(news as never));
    return (await call<proto.UpdateResponse>(client, client.update, req)).getProperties()?.toJavaScript() as Record<string, unknown>;
  };
  const read = async (type: string, id: string, props: object) => {
    const req = new proto.ReadRequest();
    req.setUrn(URN(type, "r"));
    req.setId(id);
    req.setProperties(Struct.fromJavaScript(props as never));
    return (await call<proto.ReadResponse>(client, client.read, req)).getProperties()?.toJavaScript() as Record<string, unknown>;
  };
  const remove = async (type: string, id: string, props: object) => {
    const req = new proto.DeleteRequest();
    req.setUrn(URN(type, "r"));
    req.setId(id);
    req.setProperties(Struct.fromJavaScript(props as never));
    await call<Empty>(client, client.delete, req);
  };
  const failuresOf = (res: proto.CheckResponse) => res.getFailuresList().map((f) => [f.getProperty(), f.getReason()]);
  const invoke = async (tok: string, args: object) => {
    const req = new proto.InvokeRequest();
    req.setTok(tok);
    req.setArgs(Struct.fromJavaScript(args as never));
    return call<proto.InvokeResponse>(client, client.invoke, req);
  };

  const check = (type: string, olds: object, news: object) => {
    const req = new proto.CheckRequest();
    req.setUrn(URN(type, "r"));
    req.setOlds(Struct.fromJavaScript(olds as never));
    req.setNews(Struct.fromJavaScript(news as never));
    return call<proto.CheckResponse>(client, client.check, req);
  };
  const create = async (type: string, inputs: object) => {
    const req = new proto.CreateRequest();
    req.setUrn(URN(type, "r"));
    req.setProperties(Struct.fromJavaScript(inputs as never));
    const res = await call<proto.CreateResponse>(client, client.create, req);
    return { id: res.getId(), outs: res.getProperties()?.toJavaScript() as Record<string, unknown> };
  };
  const diff = async (type: string, id: string, olds: object, news: object) => {
    const req = new proto.DiffRequest();
    req.setUrn(URN(type, "r"));
    req.setId(id);
    req.setOlds(Struct.fromJavaScript(olds as never));
    req.setNews(Struct.fromJavaScript(news as never));
    const res = await call<proto.DiffResponse>(client, client.diff, req);
    const detailed: Record<string, { kind: number; inputDiff: boolean }> = {};
    res.getDetaileddiffMap().forEach((d: proto.PropertyDiff, k: string) => (detailed[k] = { kind: d.getKind(), inputDiff: d.getInputdiff() }));
    return { changes: res.getChanges(), has: res.getHasdetaileddiff(), detailed };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-plugin-wire-"));
    writeFileSync(join(dir, "dsops.yaml"), "secretStores:\n  vault: { type: file, path: ./team.store }\n");
    plugin = spawn(process.execPath, [join(ROOT, "bin", "pulumi-resource-dsops")], { cwd: dir, env: { ...process.env, DSOPS_FILE_KEY: FILE_KEY }, stdio: ["ignore", "pipe", "pipe"] });
    plugin.stderr?.on("data", (d: Buffer) => (printed += d.toString()));
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      plugin.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        printed += d.toString();
        const line = /^(\d+)\n/.exec(out);
        if (line) resolve(line[1]);
      });
      plugin.once("exit", (code) => reject(new Error(`the plugin exited ${code} before printing its port:\n${printed}`)));
    });
    client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    if (plugin && plugin.exitCode === null) {
      const exited = new Promise<number | null>((resolve) => plugin.once("exit", (code) => resolve(code)));
      plugin.kill("SIGINT");
      assert.equal(await exited, 0, "the plugin leaves cleanly when the engine interrupts it");
    }
    rmSync(dir, { recursive: true, force: true });
    for (const v of values) assert.ok(!printed.includes(v), "a secret value was printed by the plugin");
  });

  it("finds the engine's address among the arguments the engine passes", () => {
    assert.equal(engineAddress(["--logtostderr", "-v=9", "--tracing", "http://127.0.0.1:9/trace", "127.0.0.1:43121"]), "127.0.0.1:43121");
    assert.equal(engineAddress(["--logtostderr"]), undefined);
  });

  it("without @pulumi/pulumi beside it, the plugin says what to install (exit 1, no stack trace)", () => {
    const alone = mkdtempSync(join(tmpdir(), "dsops-plugin-alone-"));
    try {
      mkdirSync(join(alone, "bin"));
      copyFileSync(join(ROOT, "bin", "pulumi-resource-dsops"), join(alone, "bin", "pulumi-resource-dsops"));
      const r = spawnSync(process.execPath, [join(alone, "bin", "pulumi-resource-dsops")], { cwd: alone, encoding: "utf8", timeout: 30000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /@pulumi\/pulumi is not installed beside @dsops\/pulumi/);
      assert.match(r.stderr, /hint: npm install -g @dsops\/pulumi @pulumi\/pulumi/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });

  it("reports package.json's version and serves schema.json", async () => {
    const info = await call<pluginProto.PluginInfo>(client, client.getPluginInfo, new Empty());
    assert.equal(info.getVersion(), (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version);
    const req = new proto.GetSchemaRequest();
    req.setVersion(0);
    const schema = await call<proto.GetSchemaResponse>(client, client.getSchema, req);
    assert.equal(schema.getSchema(), readFileSync(join(ROOT, "schema.json"), "utf8"));
  });

  it("CheckConfig names the setting that is wrong; Configure takes dsops:configFile and accepts secrets", async () => {
    const bad = new proto.CheckRequest();
    bad.setUrn("urn:pulumi:dev::wire::pulumi:providers:dsops::default");
    bad.setOlds(Struct.fromJavaScript({}));
    bad.setNews(Struct.fromJavaScript({ stores: "{not json" }));
    const failures = (await call<proto.CheckResponse>(client, client.checkConfig, bad)).getFailuresList().map((f) => [f.getProperty(), f.getReason()]);
    assert.deepEqual(failures, [["stores", "stack config dsops:stores is not a JSON object of stores"]]);
    const good = new proto.CheckRequest();
    good.setUrn("urn:pulumi:dev::wire::pulumi:providers:dsops::default");
    good.setOlds(Struct.fromJavaScript({}));
    good.setNews(Struct.fromJavaScript({ configFile: "dsops.yaml", stores: { extra: { type: "file", path: "./extra.store" } } }));
    assert.deepEqual((await call<proto.CheckResponse>(client, client.checkConfig, good)).getFailuresList(), []);

    const req = new proto.ConfigureRequest();
    req.setArgs(Struct.fromJavaScript({ configFile: "dsops.yaml" }));
    req.setAcceptsecrets(true);
    const res = await call<proto.ConfigureResponse>(client, client.configure, req);
    assert.equal(res.getAcceptsecrets(), true);
  });

  it("SecretReference: check, create (value a secret), drift in check and diff (versionId), update, read, delete", async () => {
    const v1 = await put("app/token");
    const unknown = (await check("SecretReference", {}, { ref: "store://valut/app/token" })).getFailuresList().map((f) => [f.getProperty(), f.getReason()]);
    assert.deepEqual(unknown, [["ref", 'unknown store "valut" (did you mean "vault"?)']]);

    const inputs = { ref: "store://vault/app/token" };
    assert.deepEqual((await check("SecretReference", {}, inputs)).getInputs()?.toJavaScript(), inputs, "a new resource's inputs pass unchanged");
    const made = await create("SecretReference", inputs);
    assert.equal(made.id, "store://vault/app/token");
    assert.deepEqual(made.outs.value, secret(v1.value), "value is a secret on the wire");
    assert.equal(made.outs.versionId, "1");
    assert.equal(made.outs.storeType, "file");

    // (The store changes between calls here; in a Pulumi operation, one process reads each store's listing once.)
    const v2 = await put("app/token");
    const checked = (await check("SecretReference", inputs, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
    assert.deepEqual(checked, { ...inputs, versionId: "2" }, "check of an existing resource adds the store's current version");
    assert.deepEqual(await diff("SecretReference", made.id, made.outs, checked), {
      changes: proto.DiffResponse.DiffChanges.DIFF_SOME,
      has: true,
      detailed: { versionId: { kind: proto.PropertyDiff.Kind.UPDATE, inputDiff: false } },
    });
    assert.deepEqual(await diff("SecretReference", made.id, { ...made.outs, versionId: "2" }, checked), { changes: proto.DiffResponse.DiffChanges.DIFF_NONE, has: false, detailed: {} });
    const transformed = { ...inputs, transform: "base64_encode" };
    assert.deepEqual((await diff("SecretReference", made.id, made.outs, transformed)).detailed, { transform: { kind: proto.PropertyDiff.Kind.ADD, inputDiff: true } });

    const up = new proto.UpdateRequest();
    up.setUrn(URN("SecretReference", "r"));
    up.setId(made.id);
    up.setOlds(Struct.fromJavaScript(made.outs as never));
    up.setNews(Struct.fromJavaScript(transformed as never));
    const updated = (await call<proto.UpdateResponse>(client, client.update, up)).getProperties()?.toJavaScript() as Record<string, unknown>;
    // One process reads each secret once (a Pulumi operation): the value read at create, transformed.
    assert.deepEqual(updated.value, secret(Buffer.from(v1.value).toString("base64")));
    assert.equal(updated.transform, "base64_encode");

    const rd = new proto.ReadRequest();
    rd.setUrn(URN("SecretReference", "r"));
    rd.setId(made.id);
    rd.setProperties(Struct.fromJavaScript(made.outs as never));
    const read = await call<proto.ReadResponse>(client, client.read, rd);
    assert.equal(read.getId(), made.id);
    assert.deepEqual((read.getProperties()?.toJavaScript() as Record<string, unknown>).value, secret(v1.value));
    values.push(v2.value, Buffer.from(v1.value).toString("base64"));

    const del = new proto.DeleteRequest();
    del.setUrn(URN("SecretReference", "r"));
    del.setId(made.id);
    del.setProperties(Struct.fromJavaScript(updated as never));
    await call<Empty>(client, client.delete, del);
  });

  it("a secret input stays a secret in the outputs (an inline store marked secret)", async () => {
    const v = await put("app/inline");
    const inline = secret({ type: "file", path: "./team.store" });
    const made = await create("SecretReference", { store: inline, key: "app/inline" });
    assert.deepEqual(made.outs.store, inline);
    assert.deepEqual(made.outs.value, secret(v.value));
  });

  it("MaintenanceWindow: create and an input diff naming the property", async () => {
    const inputs = { schedule: "0 2 * * 0", duration: "4h" };
    const made = await create("MaintenanceWindow", inputs);
    assert.equal(typeof made.outs.isOpen, "boolean");
    assert.deepEqual((await diff("MaintenanceWindow", made.id, made.outs, { ...inputs, duration: "2h" })).detailed, { duration: { kind: proto.PropertyDiff.Kind.UPDATE, inputDiff: true } });
    const failures = (await check("MaintenanceWindow", {}, { schedule: "0 2 * * 0" })).getFailuresList().map((f) => f.getProperty());
    assert.deepEqual(failures, ["duration"]);
  });

  it("getSecret: the value a secret; bad arguments are failures", async () => {
    const v = await put("app/fn");
    const req = new proto.InvokeRequest();
    req.setTok("dsops:index:getSecret");
    req.setArgs(Struct.fromJavaScript({ ref: "store://vault/app/fn" }));
    const res = await call<proto.InvokeResponse>(client, client.invoke, req);
    const got = res.getReturn()?.toJavaScript() as Record<string, unknown>;
    assert.deepEqual(got, { value: secret(v.value), versionId: "1", storeType: "file", updatedAt: got.updatedAt });
    assert.match(String(got.updatedAt), /^\d{4}-\d\d-\d\dT/);
    const bad = new proto.InvokeRequest();
    bad.setTok("dsops:index:getSecret");
    bad.setArgs(Struct.fromJavaScript({ store: "vault" }));
    assert.deepEqual((await call<proto.InvokeResponse>(client, client.invoke, bad)).getFailuresList().map((f) => [f.getProperty(), f.getReason()]), [["key", "store needs a key"]]);
    await assert.rejects(invoke("dsops:index:getNothing", {}), /unknown function dsops:index:getNothing/);
  });

  it("an unknown resource type is a check failure naming it, and an error elsewhere", async () => {
    const failures = (await check("Nothing", {}, { x: 1 })).getFailuresList().map((f) => f.getReason());
    assert.match(failures.join(), /unknown resource type dsops:index:Nothing \(the dsops plugin serves .*dsops:index:RotationPolicy/);
    await assert.rejects(create("Nothing", { x: 1 }), /unknown resource type dsops:index:Nothing/);
  });

  const envConfig = { secretStores: { vault: { type: "file", path: "./team.store" } }, envs: { dev: { TOKEN: { from: "store://vault/app/env" }, MODE: { literal: "prod" } } } };

  it("Environment: check (env named), create (variables a secret), drift in check and diff (currentVersions), update, read, delete", async () => {
    const v1 = await put("app/env");
    assert.deepEqual(failuresOf(await check("Environment", {}, { config: envConfig, env: "dve" })), [["env", 'unknown env "dve" (did you mean "dev"?)']]);
    assert.deepEqual(failuresOf(await check("Environment", {}, { env: "dev" })), [["configFile", "give exactly one of configFile or config"]]);
    const inputs = { config: envConfig, env: "dev" };
    const first = (await check("Environment", {}, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
    const made = await create("Environment", first);
    assert.equal(made.id, "env:dev");
    assert.deepEqual(made.outs.variables, secret({ TOKEN: v1.value, MODE: "prod" }), "variables are a secret on the wire");
    assert.deepEqual((made.outs.plan as Array<{ name: string; versionId?: string }>).map((p) => [p.name, p.versionId]), [["MODE", undefined], ["TOKEN", "1"]]);

    assert.deepEqual(await diff("Environment", made.id, made.outs, (await check("Environment", made.outs, inputs)).getInputs()?.toJavaScript() as object), { changes: proto.DiffResponse.DiffChanges.DIFF_NONE, has: false, detailed: {} });
    // (One process reads each secret once, as in a Pulumi operation: the state here is one whose TOKEN was read at version "0".)
    const checked = (await check("Environment", made.outs, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
    assert.deepEqual(checked.currentVersions, { TOKEN: "1" }, "check of an existing Environment adds the store's current versions");
    const stale = { ...made.outs, plan: (made.outs.plan as Array<{ name: string }>).map((p) => (p.name === "TOKEN" ? { ...p, versionId: "0" } : p)) };
    assert.deepEqual(await diff("Environment", made.id, stale, checked), {
      changes: proto.DiffResponse.DiffChanges.DIFF_SOME,
      has: true,
      detailed: { currentVersions: { kind: proto.PropertyDiff.Kind.ADD, inputDiff: false } },
    });
    assert.deepEqual((await diff("Environment", made.id, made.outs, { ...inputs, env: "other" })).detailed, { env: { kind: proto.PropertyDiff.Kind.UPDATE, inputDiff: true } });

    const updated = await update("Environment", made.id, stale, checked);
    assert.deepEqual(updated.variables, secret({ TOKEN: v1.value, MODE: "prod" }), "variables stay a secret after update (one process reads each secret once)");
    const refreshed = await read("Environment", made.id, made.outs);
    assert.equal((refreshed.variables as Record<string, unknown>)[SIG], SECRET_SIG);
    assert.deepEqual(Object.keys((refreshed.variables as { value: object }).value).sort(), ["MODE", "TOKEN"]);
    await remove("Environment", made.id, updated);
    assert.equal((await fileStore().get({ key: "app/env" })).value.reveal(), v1.value, "deleting an Environment deletes nothing in the store");
  });

  it("getEnvironment: variables a secret, the plan plain; bad arguments are failures", async () => {
    const got = (await invoke("dsops:index:getEnvironment", { config: envConfig, env: "dev" })).getReturn()?.toJavaScript() as Record<string, unknown>;
    assert.equal((got.variables as Record<string, unknown>)[SIG], SECRET_SIG, "variables are a secret on the wire");
    assert.deepEqual(Object.keys((got.variables as { value: object }).value).sort(), ["MODE", "TOKEN"]);
    assert.deepEqual((got.plan as Array<{ name: string; source: string }>).map((p) => [p.name, p.source]), [["MODE", "literal"], ["TOKEN", "store"]]);
    assert.deepEqual(failuresOf(await invoke("dsops:index:getEnvironment", { config: envConfig, env: "prd" }) as unknown as proto.CheckResponse), [["env", 'unknown env "prd" (envs: dev)']]);
  });

  it("getComplianceReport: the report plain on the wire (no value in it), its JSON text the same report; bad arguments are failures", async () => {
    const v = await put("app/rotated");
    const config = {
      secretStores: { vault: { type: "file", path: "./team.store" } },
      services: { db: { type: "postgresql", host: "127.0.0.1", port: 5432, database: "app", admin: "store://vault/pg/admin" } },
      envs: { dev: { DB: { from: "store://vault/app/rotated", metadata: { owner: "team-db" }, rotation: { service: "db", user: "app", ttl: "30d" } } } },
    };
    const got = (await invoke("dsops:index:getComplianceReport", { config, framework: "soc2" })).getReturn()?.toJavaScript() as { report: Record<string, unknown>; json: string };
    assert.equal(got.report[SIG], undefined, "the report is not a secret");
    assert.deepEqual(JSON.parse(got.json), got.report);
    const report = got.report as unknown as { controls: Array<{ id: string }>; credentials: Array<{ owner: string; versions: { current?: string }; controls: Array<{ control: string; verdict: string }> }> };
    assert.deepEqual(report.controls.map((c) => c.id), ["soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"]);
    assert.equal(report.credentials[0].owner, "team-db");
    assert.equal(report.credentials[0].versions.current, v.versionId, "the store's version metadata");
    assert.equal(report.credentials[0].controls[0].verdict, "pass");
    assert.ok(!got.json.includes(v.value), "no value in the report");
    assert.deepEqual(failuresOf((await invoke("dsops:index:getComplianceReport", { config, framework: "iso27001" })) as unknown as proto.CheckResponse).map(([p]) => p), ["framework"]);
    assert.deepEqual(failuresOf((await invoke("dsops:index:getComplianceReport", { config, configFile: "dsops.yaml" })) as unknown as proto.CheckResponse), [["configFile", "give configFile or config, not both"]]);
  });

  describe("RotationPolicy on a real PostgreSQL role", () => {
    let pg: RunningPostgres;
    let admin: Client;
    const DAY = 86400000;
    before(async () => {
      pg = await startPostgres();
      admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
      await admin.connect();
      await admin.query("CREATE ROLE wire_app LOGIN");
    });
    after(async () => {
      await admin?.end().catch(() => undefined);
      await pg?.stop();
    });
    const target = () => ({ type: "postgresql", host: "127.0.0.1", port: pg.port, database: "postgres", admin: "store://vault/pg/admin", user: "wire_app" });
    const setRole = async (password: string) => {
      values.push(password);
      await admin.query(`ALTER ROLE ${escapeIdentifier("wire_app")} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    };

    it("a typo in a target setting or the strategy is a check failure naming the property; dsops:scheduler is checked by CheckConfig", async () => {
      await fileStore().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
      await put("app/db");
      const base = { secret: "store://vault/app/db", target: target(), strategy: "single-user", schedule: { every: "30d" } };
      const strategy = failuresOf(await check("RotationPolicy", {}, { ...base, strategy: "single-usr" }));
      assert.deepEqual(strategy.map(([p]) => p), ["strategy"]);
      assert.match(String(strategy[0][1]), /single-user/);
      const setting = failuresOf(await check("RotationPolicy", {}, { ...base, target: { ...target(), hots: "127.0.0.1" } }));
      assert.equal(setting.length, 1, JSON.stringify(setting));
      assert.match(String(setting[0][0]), /^target\.hots$/, JSON.stringify(setting));
      const store = failuresOf(await check("RotationPolicy", {}, { ...base, secret: "store://valut/app/db" }));
      assert.deepEqual(store, [["secret", 'unknown store "valut" (did you mean "vault"?)']]);

      const cfg = (news: object) => {
        const req = new proto.CheckRequest();
        req.setUrn("urn:pulumi:dev::wire::pulumi:providers:dsops::default");
        req.setOlds(Struct.fromJavaScript({}));
        req.setNews(Struct.fromJavaScript(news as never));
        return call<proto.CheckResponse>(client, client.checkConfig, req);
      };
      const withPassword = failuresOf(await cfg({ configFile: "dsops.yaml", scheduler: JSON.stringify({ database: "postgresql://u:hunter2@127.0.0.1/db" }) }));
      // No property named: the engine would print its value (the password); the reason names the setting.
      assert.deepEqual(withPassword.map(([p]) => p), [""]);
      assert.match(String(withPassword[0][1]), /stack config dsops:scheduler\.database: a postgresql:\/\/ URL with a password is refused/);
      assert.doesNotMatch(String(withPassword[0][1]), /hunter2/);
      assert.deepEqual(failuresOf(await cfg({ configFile: "dsops.yaml", scheduler: { database: "env:DSOPS_SCHEDULER_URL" } })), []);
      // Back to the configuration of the other tests (no scheduler).
      const req = new proto.ConfigureRequest();
      req.setArgs(Struct.fromJavaScript({ configFile: "dsops.yaml" }));
      req.setAcceptsecrets(true);
      await call<proto.ConfigureResponse>(client, client.configure, req);
    });

    it("check writes the due decision into pendingRotation; diff names it; update rotates the role; read, delete", async () => {
      const p0 = `Pw-wire0-${randomBytes(12).toString("base64url")}`;
      await setRole(p0);
      // The stored password is 40 days old: with `every: 30d` and no window, the policy is due now.
      await fileStore(Date.now() - 40 * DAY).put("app/db", new Secret(p0));
      const inputs = { secret: "store://vault/app/db", target: target(), strategy: "single-user", schedule: { every: "30d" } };
      const first = (await check("RotationPolicy", {}, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
      assert.match(String(first.pendingRotation), /^due since \d{4}-\d\d-\d\dT/);
      assert.equal(first.policyId, "wire/dev/r", "the scheduler's id of the policy, from the URN");
      const made = await create("RotationPolicy", first);
      assert.equal(made.id, "policy:store://vault/app/db");
      assert.deepEqual(made.outs.value, secret(p0), "value is a secret on the wire");
      assert.equal(made.outs.status, "due");
      assert.equal(made.outs.pendingRotation, "");
      assert.ok(await pg.canLogin("wire_app", p0), "create does not rotate");

      const checked = (await check("RotationPolicy", made.outs, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
      assert.match(String(checked.pendingRotation), /^due since /);
      assert.deepEqual(await diff("RotationPolicy", made.id, made.outs, checked), {
        changes: proto.DiffResponse.DiffChanges.DIFF_SOME,
        has: true,
        detailed: { pendingRotation: { kind: proto.PropertyDiff.Kind.UPDATE, inputDiff: true } },
      });
      const rotated = await update("RotationPolicy", made.id, made.outs, checked);
      assert.equal(rotated.status, "rotated");
      assert.match(String(rotated.lastResult), /^rotated rot-\S+ \(due since [^)]+\): version \d+ → \d+$/);
      const p1 = (rotated.value as { value: string }).value;
      values.push(p1);
      assert.deepEqual(rotated.value, secret(p1));
      assert.notEqual(p1, p0);
      assert.ok(await pg.canLogin("wire_app", p1), "the new password logs in");
      assert.ok(!(await pg.canLogin("wire_app", p0)), "the old password is refused");

      const after = (await check("RotationPolicy", rotated, inputs)).getInputs()?.toJavaScript() as Record<string, unknown>;
      assert.equal(after.pendingRotation, "", "not due after the rotation");
      assert.deepEqual(await diff("RotationPolicy", made.id, rotated, after), { changes: proto.DiffResponse.DiffChanges.DIFF_NONE, has: false, detailed: {} });
      assert.deepEqual((await diff("RotationPolicy", made.id, rotated, { ...after, schedule: { every: "60d" } })).detailed, { schedule: { kind: proto.PropertyDiff.Kind.UPDATE, inputDiff: true } });

      // A triggers change: the diff names it, and the update rotates whatever the schedule says.
      const triggered = { ...after, triggers: { n: "1" } };
      assert.deepEqual((await diff("RotationPolicy", made.id, rotated, triggered)).detailed, { triggers: { kind: proto.PropertyDiff.Kind.ADD, inputDiff: true } });
      // …against a target that refuses connections: the error names the policy and the cause, no trace; nothing changed.
      const closed = { ...triggered, target: { ...target(), port: 9 } };
      await assert.rejects(update("RotationPolicy", made.id, rotated, closed), (e: Error) => {
        assert.match(e.message, /RotationPolicy store:\/\/vault\/app\/db: .*ECONNREFUSED/s, e.message);
        assert.doesNotMatch(e.message, /\n\s+at .*\.js:\d+/, e.message);
        return true;
      });
      assert.equal((await fileStore().get({ key: "app/db" })).value.reveal(), p1, "a failed rotation leaves the current version");
      assert.ok(await pg.canLogin("wire_app", p1));
      const retriggered = await update("RotationPolicy", made.id, rotated, triggered);
      assert.match(String(retriggered.lastResult), /^rotated rot-\S+ \(triggers changed\)/);
      const p2 = (retriggered.value as { value: string }).value;
      values.push(p2);
      assert.ok(await pg.canLogin("wire_app", p2) && !(await pg.canLogin("wire_app", p1)), "rotated again: only the newest password logs in");

      const refreshed = await read("RotationPolicy", made.id, retriggered);
      assert.deepEqual(refreshed.value, secret(p2));
      assert.equal(refreshed.currentVersionId, retriggered.currentVersionId);
      assert.equal(refreshed.status, "rotated", "a rotation by the policy is no drift");

      // Changed outside the policy: refresh reports drift.
      const manual = `Pw-manual-${randomBytes(12).toString("base64url")}`;
      await setRole(manual);
      await fileStore().put("app/db", new Secret(manual));
      const drifted = await read("RotationPolicy", made.id, retriggered);
      assert.equal(drifted.status, "drifted");
      assert.match(String(drifted.lastResult), /changed outside the policy/);
      assert.deepEqual(drifted.value, secret(manual));

      await remove("RotationPolicy", made.id, drifted);
      assert.equal((await fileStore().get({ key: "app/db" })).value.reveal(), manual, "deleting a policy deletes nothing in the store");
      assert.ok(await pg.canLogin("wire_app", manual), "nor the role");
    });

    it("getComplianceReport with policies: the stack's policy as pulumi/<name> with its rotations, plain on the wire; a bad policy input names policies[i].inputs.<field>", async () => {
      const inputs = { secret: "store://vault/app/db", target: target(), strategy: "single-user", schedule: { every: "30d" } };
      const got = (await invoke("dsops:index:getComplianceReport", { policies: [{ name: "r", inputs }], framework: "pci-dss" })).getReturn()?.toJavaScript() as { report: Record<string, unknown>; json: string };
      assert.equal(got.report[SIG], undefined, "the report is not a secret");
      assert.deepEqual(JSON.parse(got.json), got.report);
      const report = got.report as unknown as { credentials: Array<{ env: string; variable: string; secret: string; policy: { ttl?: string } }>; rotations: Array<{ env: string; variable: string; status: string }> };
      assert.deepEqual(report.credentials.map((c) => `${c.env}/${c.variable} ${c.secret}`), ["pulumi/r store://vault/app/db"]);
      assert.equal(report.credentials[0].policy.ttl, "30d");
      assert.ok(report.rotations.filter((r) => r.variable === "r" && r.status === "succeeded").length >= 2, JSON.stringify(report.rotations));
      for (const v of values) assert.ok(!got.json.includes(v), "no value in the report");
      await assert.rejects(invoke("dsops:index:getComplianceReport", { policies: [{ name: "r", inputs: { ...inputs, strategy: 7 } }] }), /policies\[0\]\.inputs\.strategy/);
      assert.deepEqual(failuresOf((await invoke("dsops:index:getComplianceReport", { policies: [{ inputs }] })) as unknown as proto.CheckResponse).map(([p]) => p), ["policies.0.name"]);
    });
  });
});
