// The HTTP APIs the checks call are local node:http servers started here (healthy, slow, failing a share of requests, throttling with 429 and rate-limit headers); the rotations and rollbacks run on a real PostgreSQL 15.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { parseConfig } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { composeRotation } from "../../provider/compose/rotation";
import { RotationError } from "../../provider/rotation/engine";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/** A real HTTP server whose answer is decided per request by the test (status, headers, a real delay). */
interface Api {
  url: string;
  seen: Array<{ path: string; authorization?: string }>;
  answer: (n: number, req: IncomingMessage) => { status: number; headers?: Record<string, string>; delayMs?: number };
  reset(): void;
  close(): Promise<void>;
}
async function startApi(): Promise<Api> {
  const open = new Set<ServerResponse>();
  let n = 0;
  const api: Api = {
    url: "",
    seen: [],
    answer: () => ({ status: 200 }),
    reset: () => {
      n = 0;
      api.seen.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const res of open) res.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  const server: Server = createServer((req, res) => {
    api.seen.push({ path: req.url ?? "", ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const a = api.answer(n++, req);
    const send = () => {
      open.delete(res);
      if (!res.destroyed) res.writeHead(a.status, { "content-type": "application/json", ...a.headers }).end(JSON.stringify({ status: a.status < 300 ? "ok" : "error" }));
    };
    open.add(res);
    if (a.delayMs) setTimeout(send, a.delayMs).unref();
    else send();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  api.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return api;
}

describe("HTTP API health checks (http_endpoint, response_time, error_rate, rate_limit) after a rotation, rolled back through the engine (real PostgreSQL)", function () {
  this.timeout(120000);
  let pg: RunningPostgres;
  let admin: Client;
  let dir: string;
  let api: Api;
  const env = { DSOPS_FILE_KEY: "hh-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "health" };
  const values = new Set<string>();
  let n = 0;
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  const yamlFor = (user: string, rotationExtra: string) => `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  app-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/pg/admin" }
envs:
  prod:
    X:
      from: "store://local/app/${user}"
      rotation: { service: app-db, user: ${user}, ${rotationExtra} }
`;

  async function setup(rotationExtra: string) {
    const user = `hh${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    await admin.query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
    await store().put(`app/${user}`, new Secret(pw));
    const config = parseConfig(yamlFor(user, rotationExtra), { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const engine = composeRotation(config, { env: { ...process.env, ...env }, clock: systemClock });
    return { user, pw, engine };
  }

  const current = async (user: string) => {
    const v = (await store().get({ key: `app/${user}`, version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  function records(user: string): RotationRecord[] {
    const m = new Map<string, RotationRecord>();
    for (const l of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RotationRecord).id, JSON.parse(l) as RotationRecord);
    return [...m.values()].filter((r) => r.secret === `store://local/app/${user}`);
  }

  /** The rotation fails with `message`; the old password is current and logs in again, the history has the rolled-back rotation and its rollback. */
  async function expectRollback(s: Awaited<ReturnType<typeof setup>>, message: RegExp): Promise<void> {
    let err: unknown;
    try {
      await s.engine.rotate("prod", "X");
    } catch (e) {
      err = e;
    } finally {
      await s.engine.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    assert.match((err as Error).message, message);
    assert.equal(await current(s.user), s.pw, "the old version is current again");
    assert.equal(await pg.canLogin(s.user, s.pw), true, "the old password logs in again");
    const prev = (await store().get({ key: `app/${s.user}`, version: "previous" })).value.reveal();
    values.add(prev);
    assert.equal(await pg.canLogin(s.user, prev), false, "the rotated password no longer logs in");
    const recs = records(s.user);
    const rot = recs.find((r) => r.kind === "rotate") as RotationRecord;
    const rb = recs.find((r) => r.kind === "rollback") as RotationRecord;
    assert.equal(rot.status, "rolled-back");
    assert.match(rot.error ?? "", /^health checks failed: /);
    assert.equal(rb.status, "succeeded");
    assert.equal(rb.reason, `automatic: health checks failed after rotation ${rot.id}`);
  }

  /** The rotation succeeds; the new password is current and logs in. */
  async function expectSuccess(s: Awaited<ReturnType<typeof setup>>): Promise<string> {
    let rec: RotationRecord;
    try {
      rec = (await s.engine.rotate("prod", "X")).record;
    } finally {
      await s.engine.close();
    }
    assert.equal(rec.status, "succeeded", rec.error);
    const now = await current(s.user);
    assert.notEqual(now, s.pw);
    assert.equal(await pg.canLogin(s.user, now), true);
    return now;
  }

  before(async () => {
    pg = await startPostgres();
    api = await startApi();
    admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), "dsops-health-http-"));
    await store().put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await api?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    api.reset();
    api.answer = () => ({ status: 200 });
  });

  it("http_endpoint: authenticated with the new credential (bearer) and healthy → succeeded; the token sent is the new value", async () => {
    const s = await setup(`health: [{ type: http_endpoint, name: api-health, url: "${api.url}/health?k=1", expected_status: 200, expected_body: '"status":"ok"', timeout: 5s, auth: { type: bearer } }]`);
    const now = await expectSuccess(s);
    assert.equal(api.seen.length, 1);
    assert.equal(api.seen[0]?.authorization, `Bearer ${now}`, "the check authenticated with the rotated value");
  });

  it("http_endpoint: the API refuses the new credential (401) → rolled back; basic auth sends the rotated user and value", async () => {
    api.answer = () => ({ status: 401 });
    const s = await setup(`health: [{ type: http_endpoint, name: api-health, url: "${api.url}/health?token=abc", expected_status: 200, auth: { type: basic } }], monitor: { failures: 1 }`);
    await expectRollback(s, /api-health: http:\/\/127\.0\.0\.1:\d+\/health: HTTP 401 \(expected 200\)/);
    const [user, value] = Buffer.from((api.seen[0]?.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8").split(":");
    assert.equal(user, s.user);
    assert.notEqual(value, s.pw, "the new value was sent, not the old one");
    assert.equal(await pg.canLogin(s.user, value as string), false, "and it was rolled back");
  });

  it("response_time: a fast API is healthy; an API answering in 2 s against a 200 ms p95 threshold rolls back", async () => {
    await expectSuccess(await setup(`health: [{ type: response_time, name: api-latency, endpoint: "${api.url}/v1/ping", samples: 3, p95_threshold_ms: 1500 }]`));
    assert.equal(api.seen.length, 3, "three samples in the round");
    api.answer = () => ({ status: 200, delayMs: 2000 });
    const s = await setup(`health: [{ type: response_time, name: api-latency, endpoint: "${api.url}/v1/ping", samples: 2, p95_threshold_ms: 200 }], monitor: { failures: 1 }`);
    await expectRollback(s, /api-latency: http:\/\/127\.0\.0\.1:\d+\/v1\/ping: over 2 request\(s\): p95 \d+ ms \(limit 200 ms\)/);
  });

  it("error_rate: 1 failure in 10 is within 20%; half the requests failing (503) rolls back, naming the share and the statuses", async () => {
    api.answer = (i) => ({ status: i === 4 ? 500 : 200 });
    await expectSuccess(await setup(`health: [{ type: error_rate, name: api-errors, url: "${api.url}/v1/charges", samples: 10, max_error_rate_pct: 20, window: 5m }]`));
    assert.equal(api.seen.length, 10);
    api.reset();
    api.answer = (i) => ({ status: i % 2 ? 503 : 200 });
    const s = await setup(`health: [{ type: error_rate, name: api-errors, url: "${api.url}/v1/charges", samples: 10, max_error_rate_pct: 20, error_codes: [500, 502, 503, 504] }], monitor: { failures: 1 }`);
    await expectRollback(s, /api-errors: http:\/\/127\.0\.0\.1:\d+\/v1\/charges: 5 of 10 request\(s\) failed \(50% > 20%: 5× HTTP 503\)/);
  });

  it("rate_limit: plenty of quota is healthy; 429 answers, or quota below warning_threshold_pct, roll back", async () => {
    api.answer = () => ({ status: 200, headers: { "x-ratelimit-limit": "100", "x-ratelimit-remaining": "80" } });
    await expectSuccess(await setup(`health: [{ type: rate_limit, name: rl, url: "${api.url}/v1/me", check_headers: true, warning_threshold_pct: 20 }]`));

    api.reset();
    api.answer = (i) => ({ status: i < 2 ? 429 : 200, headers: { "retry-after": "1" } });
    const throttled = await setup(`health: [{ type: rate_limit, name: rl, url: "${api.url}/v1/me", samples: 4, max_throttled_pct: 25 }], monitor: { failures: 1 }`);
    await expectRollback(throttled, /rl: http:\/\/127\.0\.0\.1:\d+\/v1\/me: 2 of 4 request\(s\) answered 429 Too Many Requests \(50% > 25%\)/);

    api.answer = () => ({ status: 200, headers: { "ratelimit-limit": "5000", "ratelimit-remaining": "150" } });
    const low = await setup(`health: [{ type: rate_limit, name: rl, url: "${api.url}/v1/me", warning_threshold_pct: 20 }], monitor: { failures: 1 }`);
    await expectRollback(low, /rl: http:\/\/127\.0\.0\.1:\d+\/v1\/me: 150 of 5000 requests of the rate limit left \(3% < 20%\)/);
  });

  it("an API that refuses connections, or hangs past the timeout, is unhealthy (the cause named), and bad settings are refused naming the field", async () => {
    const gone = await startApi();
    const url = gone.url;
    await gone.close();
    await expectRollback(await setup(`health: [{ type: error_rate, name: gone, url: "${url}/x", samples: 2 }], monitor: { failures: 1 }`), /gone: http:\/\/127\.0\.0\.1:\d+\/x: 2 of 2 request\(s\) failed \(100% > 5%: 2× no answer: ECONNREFUSED\)/);
    api.answer = () => ({ status: 200, delayMs: 60000 });
    await expectRollback(await setup(`health: [{ type: response_time, name: hang, url: "${api.url}/v1/ping", samples: 3, p95_threshold_ms: 500, timeout: 1s }], monitor: { failures: 1 }`), /hang: http:\/\/127\.0\.0\.1:\d+\/v1\/ping: no answer within 1000 ms/);
    assert.throws(() => parseConfig(yamlFor("z", `health: [{ type: response_time, endpoint: /v1/ping, p95_threshold_ms: 100 }]`), { file: join(dir, "dsops.yaml"), env }), /health\[0\]\.endpoint: "\/v1\/ping" is not an absolute URL/s);
    assert.throws(() => parseConfig(yamlFor("z", `health: [{ type: response_time, url: "http://127.0.0.1:1/" }]`), { file: join(dir, "dsops.yaml"), env }), /response_time needs a threshold/);
    assert.throws(() => parseConfig(yamlFor("z", `health: [{ type: http_endpoint, url: "http://127.0.0.1:1/", auth: { type: token } }]`), { file: join(dir, "dsops.yaml"), env }), /health\[0\]\.auth/);
    assert.throws(() => parseConfig(yamlFor("z", `health: [{ type: http_endpoint, url: "http://127.0.0.1:1/", expected_body: "(" }]`), { file: join(dir, "dsops.yaml"), env }), /health\[0\]\.expected_body: not a regular expression/);
  });

  it("no value in the history", () => {
    const text = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    assert.ok(values.size >= 10);
    for (const v of values) assert.ok(!text.includes(v));
  });
});
