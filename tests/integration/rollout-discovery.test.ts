// Cloud discovery runs against a real moto_server (EC2 DescribeInstances through @aws-sdk/client-ec2); the endpoint discovery and the EC2 fault answers come from local HTTP servers started by the test; every instance is a real PostgreSQL 15 server on its own loopback port.
import { strict as assert } from "node:assert";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EC2Client, RunInstancesCommand, StopInstancesCommand } from "@aws-sdk/client-ec2";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { AuthError, ConfigError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { parseConfig } from "../../provider/compose/config";
import { composeRotation } from "../../provider/compose/rotation";
import { RotationError, type RotationResult } from "../../provider/rotation/engine";
import type { RolloutRecord } from "../../provider/rotation/rollout/plan";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { startMoto, type Moto } from "../support/moto";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Rollout discovery `cloud` (AWS EC2 instances by tag, running only) and `endpoint` with dsops's
 * `auth: {type: bearer, token}` (a store reference or ${VAR}): the instances found get the new
 * password wave by wave; a failing health check rolls them back; refusals, garbage, hangs and
 * an empty answer stop the rotation before anything changes, naming the discovery.
 */
describe("rotation rollout: cloud (EC2 on moto) and endpoint (bearer auth) discovery", function () {
  this.timeout(240000);
  const N = 3;
  const pgs: RunningPostgres[] = [];
  const admins: Client[] = [];
  let moto: Moto;
  let dir: string;
  let http: Server;
  let httpUrl = "";
  const sockets = new Set<Socket>();
  /** What the HTTP server answers, by path. */
  let answer: (path: string, auth: string | undefined) => { status: number; body: string; hang?: boolean; type?: string } = () => ({ status: 404, body: "" });
  const seenAuth: Array<string | undefined> = [];
  const TOKEN = "disc-bearer-" + Math.random().toString(36).slice(2);
  const env = { DSOPS_FILE_KEY: "disc-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "roller", DISC_TOKEN: TOKEN, AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };
  const values = new Set<string>([TOKEN]);
  const outputs: string[] = [];
  const ids: string[] = [];
  let n = 0;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const worksOn = async (user: string, pw: string) => {
    const out: number[] = [];
    for (let i = 0; i < N; i++) if (await pgs[i].canLogin(user, pw)) out.push(i);
    return out;
  };
  const stored = async (key: string) => {
    const v = (await store().get({ key, version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  const alters = (user: string) => pgs.map((p) => p.log().split(`ALTER ROLE "${user}" WITH PASSWORD`).length - 1);
  const recordOf = (user: string) => {
    const m = new Map<string, RolloutRecord>();
    for (const l of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RolloutRecord).id, JSON.parse(l) as RolloutRecord);
    return [...m.values()].find((r) => r.secret === `store://local/app/${user}`) as RolloutRecord;
  };

  async function setup(o: { discovery: string; rollout?: string; rotation?: string; noGrant?: number[]; runEnv?: Record<string, string | undefined> }) {
    const user = `d${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    for (let i = 0; i < N; i++) {
      await admins[i].query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      if (!o.noGrant?.includes(i)) await admins[i].query(`GRANT SELECT ON guarded TO ${escapeIdentifier(user)}`);
    }
    await store().put(`app/${user}`, new Secret(pw));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pgs[0].port}, database: postgres, admin: "store://local/pg/admin-0" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation:
        service: app-db
        user: ${user}
${o.rotation ? `        ${o.rotation}\n` : ""}        rollout: { discovery: ${o.discovery}, ${o.rollout ?? "strategy: canary"} }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    const runEnv = { ...process.env, ...env, ...o.runEnv };
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: runEnv });
    const progress: string[] = [];
    const engine = composeRotation(config, {
      env: runEnv,
      clock: systemClock,
      metrics: false,
      onEvent: (m) => {
        progress.push(m);
        outputs.push(m);
      },
    });
    return { user, pw, engine, progress };
  }
  async function rotateOnce(s: Awaited<ReturnType<typeof setup>>): Promise<{ result?: RotationResult; error?: unknown }> {
    try {
      return { result: await s.engine.rotate("prod", "X") };
    } catch (error) {
      outputs.push(String(error));
      return { error };
    } finally {
      await s.engine.close();
    }
  }
  async function refused(o: Parameters<typeof setup>[0]): Promise<Error> {
    const s = await setup(o);
    const r = await rotateOnce(s);
    assert.ok(r.error instanceof Error, `expected a refusal, got ${r.result?.record.status}`);
    assert.equal(await stored(`app/${s.user}`), s.pw);
    assert.deepEqual(alters(s.user), [0, 0, 0], "nothing changed");
    return r.error;
  }

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = "test";
    process.env.AWS_SECRET_ACCESS_KEY = "test";
    for (let i = 0; i < N; i++) pgs.push(await startPostgres());
    moto = await startMoto();
    dir = mkdtempSync(join(tmpdir(), "dsops-rollout-disc-"));
    for (const [i, p] of pgs.entries()) {
      const c = new Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" });
      await c.connect();
      await c.query("CREATE TABLE guarded (x int)");
      admins.push(c);
      values.add(p.adminPassword);
      await store().put(`pg/admin-${i}`, new Secret(JSON.stringify({ username: p.adminUser, password: p.adminPassword })));
    }
    await store().put("discovery/token", new Secret(TOKEN));
    // EC2: one running instance per PostgreSQL server (tags say where it listens), a stopped one and one of another environment.
    const ec2 = new EC2Client({ region: "eu-west-1", endpoint: moto.endpoint, credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    const tags = (extra: Record<string, string>) => [{ ResourceType: "instance" as const, Tags: Object.entries(extra).map(([Key, Value]) => ({ Key, Value })) }];
    for (let i = 0; i < N; i++) {
      const r = await ec2.send(
        new RunInstancesCommand({
          ImageId: "ami-12c6146b",
          MinCount: 1,
          MaxCount: 1,
          TagSpecifications: tags({ Environment: "production", Service: "orders", Name: `orders-${i + 1}`, ...(i === 2 ? { canary: "true" } : {}), "dsops:host": "127.0.0.1", "dsops:port": String(pgs[i].port), "dsops:admin": `store://local/pg/admin-${i}` }),
        }),
      );
      ids.push(r.Instances?.[0].InstanceId as string);
    }
    const stopped = await ec2.send(new RunInstancesCommand({ ImageId: "ami-12c6146b", MinCount: 1, MaxCount: 1, TagSpecifications: tags({ Environment: "production", Service: "orders", "dsops:port": "1" }) }));
    await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped.Instances?.[0].InstanceId as string] }));
    await ec2.send(new RunInstancesCommand({ ImageId: "ami-12c6146b", MinCount: 1, MaxCount: 1, TagSpecifications: tags({ Environment: "staging", Service: "orders", "dsops:port": "1" }) }));
    ec2.destroy();

    http = createServer((req, res) => {
      seenAuth.push(req.headers.authorization);
      req.resume();
      const a = answer(req.url ?? "/", req.headers.authorization);
      if (a.hang) return;
      res.writeHead(a.status, { "content-type": a.type ?? "application/json" }).end(a.body);
    });
    http.on("connection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const a of admins) await a.end().catch(() => undefined);
    for (const s of sockets) s.destroy();
    await new Promise((r) => http?.close(r));
    await moto?.stop();
    for (const p of pgs) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  });

  const cloud = (extra = "") => `{ type: cloud, provider: aws, region: eu-west-1, endpoint: "${moto.endpoint}", filters: [{ key: Environment, value: production }, { key: "tag:Service", value: orders }]${extra} }`;

  it("cloud: the running EC2 instances with the tags are the instances (tags as labels, dsops:* tags as settings); canary first; every one takes the new password", async () => {
    const s = await setup({ discovery: cloud() });
    const r = await rotateOnce(s);
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    const now = await stored(`app/${s.user}`);
    assert.deepEqual(await worksOn(s.user, now), [0, 1, 2]);
    assert.deepEqual(await worksOn(s.user, s.pw), []);
    const rec = recordOf(s.user);
    assert.deepEqual(
      rec.rollout?.instances.map((i) => i.name).sort(),
      [...ids].sort(),
      "the stopped instance and the staging one are not instances",
    );
    const byId = new Map(rec.rollout?.instances.map((i) => [i.name, i]));
    for (let i = 0; i < N; i++) {
      const inst = byId.get(ids[i]);
      assert.equal(inst?.settings.port, pgs[i].port);
      assert.equal(inst?.settings.host, "127.0.0.1");
      assert.equal(inst?.labels.Name, `orders-${i + 1}`);
      assert.equal(inst?.labels["dsops:port"], undefined, "dsops:* tags are settings, not labels");
    }
    assert.deepEqual(rec.rollout?.waves[0], { label: "canary", instances: [ids[2]] });
  });

  it("cloud: a health check failing after the first wave rolls the instances done back; the others were never touched", async () => {
    const s = await setup({
      discovery: cloud(),
      rollout: "strategy: canary, waves: [50, 100]",
      rotation: `health: [{ type: sql, name: guarded, query: "SELECT count(*) FROM guarded" }]\n        monitor: { failures: 1 }`,
      noGrant: [2],
    });
    const r = await rotateOnce(s);
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, new RegExp(`rolled back: rollout wave 1/\\d \\(canary\\) failed: ${ids[2]}: health checks after wave 1/\\d \\(canary\\) failed: .*permission denied for table guarded`));
    assert.equal(await stored(`app/${s.user}`), s.pw);
    assert.deepEqual(await worksOn(s.user, s.pw), [0, 1, 2]);
    assert.deepEqual(alters(s.user), [0, 0, 2], "only the canary was set, and set back");
    assert.equal(recordOf(s.user).status, "rolled-back");
  });

  it("cloud: no running instance matches, EC2 refuses (403), answers garbage, hangs or is down, no region: refused before any change, naming the discovery", async () => {
    const none = await refused({ discovery: cloud().replace("value: orders", "value: payments") });
    assert.match(none.message, /rollout\.discovery: aws eu-west-1 \(http:\/\/127\.0\.0\.1:\d+\), filters Environment=production, tag:Service=payments: no running instance matches; a rollout needs at least one instance/);

    const fault = (e: string, extra = "") => cloud(extra).replace(`endpoint: "${moto.endpoint}"`, `endpoint: "${httpUrl}/${e}"`);
    answer = (path) =>
      path.startsWith("/denied")
        ? { status: 403, type: "text/xml", body: '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r-1</RequestID></Response>' }
        : path.startsWith("/garbage")
          ? { status: 200, type: "text/xml", body: "<DescribeInstancesResponse><reservationSet><item>" }
          : { status: 200, body: "", hang: true };
    const denied = await refused({ discovery: fault("denied") });
    assert.ok(denied instanceof AuthError, String(denied));
    assert.match(denied.message, /rollout\.discovery: aws eu-west-1 .*: UnauthorizedOperation: You are not authorized/);
    const garbage = await refused({ discovery: fault("garbage") });
    assert.ok(garbage instanceof StoreError, String(garbage));
    assert.match(garbage.message, /rollout\.discovery: aws eu-west-1 .*: the answer is not a DescribeInstances response/);
    const hung = await refused({ discovery: fault("hang", ", timeout_ms: 1500") });
    assert.ok(hung instanceof TimeoutError, String(hung));
    assert.match(hung.message, /rollout\.discovery: aws eu-west-1 .*: no answer within 1500 ms/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const down = await refused({ discovery: cloud().replace(moto.endpoint, `http://127.0.0.1:${port}`) });
    assert.ok(down instanceof StoreError && down.retryable, String(down));
    assert.match(down.message, /rollout\.discovery: aws eu-west-1 \(http:\/\/127\.0\.0\.1:\d+\), filters .*: ECONNREFUSED$/);
    const noRegion = await refused({ discovery: cloud().replace("region: eu-west-1, ", ""), runEnv: { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined } });
    assert.ok(noRegion instanceof ConfigError, String(noRegion));
    assert.match(noRegion.message, /rollout\.discovery\.region: required \(or AWS_REGION\)/);
  });

  const instancesBody = () =>
    JSON.stringify({ instances: pgs.map((p, i) => ({ id: `inst-${i + 1}`, labels: { role: i === 0 ? "canary" : "production", ...(i === 0 ? { canary: "true" } : {}) }, port: p.port, admin: `store://local/pg/admin-${i}` })) });
  const guarded = (path: string, auth: string | undefined) =>
    !path.startsWith("/admin/instances") ? { status: 404, body: "" } : auth === `Bearer ${TOKEN}` ? { status: 200, body: instancesBody() } : { status: 401, body: '{"error":"unauthorized"}' };

  it("endpoint: auth {type: bearer, token: store://…} sends Authorization: Bearer; dsops's {instances: [{id, labels}]} answer; waves over the instances", async () => {
    answer = guarded;
    const s = await setup({ discovery: `{ type: endpoint, url: "${httpUrl}/admin/instances", auth: { type: bearer, token: "store://local/discovery/token" } }` });
    const r = await rotateOnce(s);
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    assert.equal(seenAuth[seenAuth.length - 1], `Bearer ${TOKEN}`);
    const rec = recordOf(s.user);
    assert.deepEqual(rec.rollout?.waves.map((w) => w.instances), [["inst-1"], ["inst-2", "inst-3"]]);
    assert.deepEqual(await worksOn(s.user, await stored(`app/${s.user}`)), [0, 1, 2]);
  });

  it("endpoint: dsops's own form token: {from: {store, key}} (and {store, key}) is resolved from the store", async () => {
    answer = guarded;
    for (const token of ["{ from: { store: local, key: discovery/token } }", "{ store: local, key: discovery/token }"]) {
      const s = await setup({ discovery: `{ type: endpoint, url: "${httpUrl}/admin/instances", auth: { type: bearer, token: ${token} } }`, rollout: "strategy: all" });
      const r = await rotateOnce(s);
      assert.equal(r.result?.record.status, "succeeded", String(r.error));
      assert.equal(seenAuth[seenAuth.length - 1], `Bearer ${TOKEN}`);
      assert.deepEqual(await worksOn(s.user, await stored(`app/${s.user}`)), [0, 1, 2]);
    }
    const missing = await refused({ discovery: `{ type: endpoint, url: "${httpUrl}/admin/instances", auth: { type: bearer, token: { from: { store: local, key: discovery/none } } } }` });
    assert.match(missing.message, /discovery\/none/);
  });

  it("endpoint: the token as ${VAR} is read from the environment of the run", async () => {
    answer = guarded;
    const s = await setup({ discovery: `{ type: endpoint, url: "${httpUrl}/admin/instances", auth: { type: bearer, token: "\${DISC_TOKEN}" } }`, rollout: "strategy: all" });
    const r = await rotateOnce(s);
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    assert.equal(seenAuth[seenAuth.length - 1], `Bearer ${TOKEN}`);
    assert.deepEqual(await worksOn(s.user, await stored(`app/${s.user}`)), [0, 1, 2]);
  });

  it("endpoint: without the token or with a wrong one → 401 is an auth error naming the discovery, never the token; an unset ${VAR}, an empty list, garbage and a hang are refused", async () => {
    answer = guarded;
    const url = `${httpUrl}/admin/instances`;
    const without = await refused({ discovery: `{ type: endpoint, url: "${url}" }` });
    assert.ok(without instanceof AuthError, String(without));
    assert.equal(without.message, `envs.prod.X.rotation.rollout.discovery: ${url}: HTTP 401: the endpoint refused a request without credentials`);
    const wrongToken = "wrong-" + TOKEN.split("").reverse().join("");
    values.add(wrongToken);
    const wrong = await refused({ discovery: `{ type: endpoint, url: "${url}", auth: { type: bearer, token: "\${WRONG}" } }`, runEnv: { WRONG: wrongToken } });
    assert.ok(wrong instanceof AuthError, String(wrong));
    assert.match(wrong.message, /rollout\.discovery: http:\/\/127\.0\.0\.1:\d+\/admin\/instances: HTTP 401: the endpoint refused the credentials sent/);
    assert.ok(!wrong.message.includes(wrongToken) && !(wrong as AuthError).hint?.includes(wrongToken));
    assert.equal(seenAuth[seenAuth.length - 1], `Bearer ${wrongToken}`);
    const unset = await refused({ discovery: `{ type: endpoint, url: "${url}", auth: { type: bearer, token: "\${NOT_SET_ANYWHERE}" } }` });
    assert.match(unset.message, /rollout\.discovery\.auth\.token: environment variable NOT_SET_ANYWHERE is not set/);

    answer = (path) => (path.startsWith("/empty") ? { status: 200, body: '{"instances": []}' } : path.startsWith("/garbage") ? { status: 200, body: "<html>" } : { status: 200, body: "", hang: true });
    const empty = await refused({ discovery: `{ type: endpoint, url: "${httpUrl}/empty" }` });
    assert.match(empty.message, /rollout\.discovery: http:\/\/127\.0\.0\.1:\d+\/empty: no instances; a rollout needs at least one instance/);
    const garbage = await refused({ discovery: `{ type: endpoint, url: "${httpUrl}/garbage" }` });
    assert.match(garbage.message, /rollout\.discovery: http:\/\/127\.0\.0\.1:\d+\/garbage: the answer is not JSON/);
    const hung = await refused({ discovery: `{ type: endpoint, url: "${httpUrl}/hang", timeout_ms: 1500 }` });
    assert.ok(hung instanceof TimeoutError, String(hung));
    assert.match(hung.message, /rollout\.discovery: http:\/\/127\.0\.0\.1:\d+\/hang: no answer within 1500 ms/);
  });

  it("settings: url and endpoint together, auth next to an authorization header, a filter-less cloud block are config errors naming the field", () => {
    const mk = (d: string) => () =>
      parseConfig(`version: 1
secretStores: { local: { type: file, path: ./s.store } }
services: { db: { type: postgresql, admin: "store://local/a" } }
envs: { prod: { X: { from: "store://local/x", rotation: { service: db, user: u, rollout: { discovery: ${d} } } } } }
`, { file: join(dir, "other.yaml"), env: { ...process.env, ...env } });
    assert.throws(mk(`{ type: endpoint, url: "http://a/x", endpoint: "http://a/y" }`), /rollout\.discovery: give the discovery endpoint's URL \(endpoint: or url:\), one of them/);
    assert.throws(mk(`{ url: "http://a/x", headers: { Authorization: "store://local/t" }, auth: { type: bearer, token: x } }`), /rollout\.discovery\.auth: auth and an authorization header both set the Authorization header/);
    assert.throws(mk(`{ url: "http://a/x", auth: { type: basic, token: x } }`), /rollout\.discovery\.auth\.type/);
    assert.throws(mk(`{ type: cloud, provider: aws, region: eu-west-1 }`), /rollout\.discovery\.filters: required/);
    assert.throws(mk(`{ type: cloud, provider: gcp, filters: [{ key: a, value: b }] }`), /rollout\.discovery\.provider/);
  });

  it("no token or password in records, events or output", () => {
    const text = [readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8"), ...outputs].join("\n");
    assert.ok(values.size > 5);
    for (const v of values) assert.ok(!text.includes(v), "a secret value appears in records or output");
  });
});
