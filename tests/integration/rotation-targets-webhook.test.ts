import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { parseConfig, type Config } from "../../provider/compose/config";
import { Secret } from "../../provider/core/secret";
import { RotationEngine, RotationError, TargetError, createTarget } from "../../provider/rotation/index";
import { WebhookTarget, webhookSignature } from "../../provider/rotation/targets/webhook";
import type { RotationRecord } from "../../provider/rotation/types";
import { FileStore } from "../../provider/stores/file";

/**
 * The webhook target speaks dsops's JSON protocol to an HTTP receiver the test runs on loopback:
 * the receiver plays the external system (it keeps a password per user, sets it on `rotate`,
 * checks it on `verify`), checks the HMAC signature, and records every request.
 */
describe("rotation: webhook target (loopback HTTP receiver)", function () {
  this.timeout(60000);
  let server: Server;
  let url: string;
  let dir: string;
  let config: Config;
  const signingKey = "sign-" + Math.random().toString(36).slice(2);
  const passwords = new Map<string, string>();
  const requests: Array<{ path: string; headers: Record<string, unknown>; body: Record<string, unknown>; signed: boolean }> = [];
  const values = new Set<string>();
  const outputs: string[] = [];
  const env = { DSOPS_FILE_KEY: "wh-test-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester" };
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const engine = () => new RotationEngine(config, { env: { ...process.env, ...env }, onEvent: (m) => outputs.push(m) });

  before(async () => {
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += d));
      req.on("end", () => {
        const body = JSON.parse(raw || "{}") as { action?: string; user?: string; new_secret?: string };
        const ts = String(req.headers["x-dsops-timestamp"] ?? "");
        const signed = req.headers["x-dsops-signature"] === webhookSignature(signingKey, ts, raw);
        requests.push({ path: req.url ?? "", headers: req.headers, body, signed });
        const answer = (status: number, o: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
        if (req.url === "/hang") return; // never answers
        if (req.url === "/broken") return answer(502, { success: false, error: `upstream down (${body.new_secret})` });
        if (req.url === "/notjson") return res.writeHead(200).end(`oops ${body.new_secret}`);
        if (req.url === "/signed" && !signed) return answer(401, { success: false, error: "bad signature" });
        const user = body.user ?? "";
        switch (body.action) {
          case "rotate":
            if (user === "locked") return answer(200, { success: false, error: `user locked; refused value ${body.new_secret}` });
            passwords.set(user, body.new_secret ?? "");
            return answer(200, { success: true, message: "rotated", warnings: [`echo ${body.new_secret}`], metadata: { user } });
          case "verify": {
            if (user === "flaky") return answer(200, { success: false, error: `verification refused for ${body.new_secret}` });
            const ok = passwords.get(user) === body.new_secret;
            return answer(200, ok ? { success: true } : { success: false, error: "wrong password" });
          }
          case "status":
            return answer(200, { success: true, message: "ok" });
          default:
            return answer(400, { success: false, error: "unknown action" });
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = mkdtempSync(join(tmpdir(), "dsops-rot-webhook-"));
    const yaml = `version: 1
secretStores:
  local: { type: file, path: ./secrets.store }
services:
  hook:
    type: webhook
    url: ${url}/signed
    signing_secret: "store://local/hook/key"
    headers: { x-team: payments }
envs:
  prod:
    API_PW:
      from: "store://local/app/api"
      rotation: { service: hook, strategy: single-user, user: api }
    FLAKY:
      from: "store://local/app/flaky"
      rotation: { service: hook, strategy: single-user, user: flaky }
    LOGIN:
      from: "store://local/app/login"
      rotation: { service: hook, strategy: alternating-users, users: [svc_a, svc_b] }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    await store().put("hook/key", new Secret(signingKey));
    for (const [key, user] of [
      ["app/api", "api"],
      ["app/flaky", "flaky"],
    ]) {
      const pw = `init-${user}-${Math.random().toString(36).slice(2)}`;
      passwords.set(user, pw);
      values.add(pw);
      await store().put(key, new Secret(pw));
    }
    const pw = `init-a-${Math.random().toString(36).slice(2)}`;
    passwords.set("svc_a", pw);
    values.add(pw);
    await store().put("app/login", new Secret(JSON.stringify({ username: "svc_a", password: pw })));
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const target = (raw: Record<string, unknown>) =>
    createTarget("t", { type: "webhook", ...raw }, { resolveRef: async () => new Secret(signingKey), clock: systemClock, configDir: "." }) as WebhookTarget;

  it("single-user end to end: rotate then verify, signed, the secret only in the body", async () => {
    const old = (await store().get({ key: "app/api" })).value.reveal();
    const before = requests.length;
    const e = engine();
    try {
      const r = await e.rotate("prod", "API_PW");
      assert.equal(r.record.status, "succeeded");
    } finally {
      await e.close();
    }
    const now = (await store().get({ key: "app/api" })).value.reveal();
    values.add(now);
    assert.notEqual(now, old);
    assert.equal(passwords.get("api"), now, "the receiver holds the new password");
    const seen = requests.slice(before);
    assert.deepEqual(
      seen.map((q) => q.body.action),
      ["rotate", "verify"],
    );
    for (const q of seen) {
      assert.equal(q.signed, true, "each request is signed");
      assert.equal(q.headers["x-team"], "payments");
      assert.equal(q.body.user, "api");
      assert.equal(q.body.new_secret, now);
      assert.equal(q.body.service, "hook");
      assert.ok(!JSON.stringify(q.headers).includes(now) && !q.path.includes(now), "the secret is never in a header or the URL");
    }
  });

  it("alternating-users end to end", async () => {
    const e = engine();
    try {
      await e.rotate("prod", "LOGIN");
    } finally {
      await e.close();
    }
    const cur = JSON.parse((await store().get({ key: "app/login" })).value.reveal()) as { username: string; password: string };
    values.add(cur.password);
    assert.equal(cur.username, "svc_b");
    assert.equal(passwords.get("svc_b"), cur.password);
  });

  it("a refused verification rolls back: the receiver gets the old password back (rotate), nothing pending", async () => {
    const old = (await store().get({ key: "app/flaky" })).value.reveal();
    const before = requests.length;
    const e = engine();
    let err: unknown;
    try {
      await e.rotate("prod", "FLAKY");
    } catch (x) {
      err = x;
    } finally {
      await e.close();
    }
    assert.ok(err instanceof RotationError, String(err));
    outputs.push((err as Error).message);
    assert.match((err as Error).message, /rolled back: .*verification refused for \[secret\]/);
    assert.deepEqual(
      requests.slice(before).map((q) => q.body.action),
      ["rotate", "verify", "rotate"],
    );
    const pending = requests[before].body.new_secret as string;
    values.add(pending);
    assert.equal(passwords.get("flaky"), old, "restored at the receiver");
    assert.equal((await store().get({ key: "app/flaky" })).value.reveal(), old);
    assert.equal((await store().stagesOf("app/flaky")).pending, undefined);
  });

  it("refusals, HTTP errors, bad answers, a bad signature and timeouts are errors without the value", async () => {
    const cred = { principal: "locked", secret: new Secret(`V-${Math.random()}`) };
    values.add(cred.secret.reveal());
    const check = async (t: WebhookTarget, re: RegExp, op: () => Promise<unknown>) => {
      const e = await op().then(
        () => undefined,
        (x: unknown) => x,
      );
      assert.ok(e instanceof Error, "expected an error");
      outputs.push(e.message);
      assert.match(e.message, re);
    };
    await check(target({ url: `${url}/x` }), /rotate of "locked" refused: user locked; refused value \[secret\]/, () => target({ url: `${url}/x` }).setSecret(cred));
    const broken = target({ url: `${url}/broken` });
    await check(broken, /failed: HTTP 502: upstream down \(\[secret\]\)/, () => broken.setSecret(cred));
    const e502 = await broken.setSecret(cred).catch((x: unknown) => x);
    assert.ok(e502 instanceof TargetError && e502.retryable, "5xx is retryable");
    const nj = target({ url: `${url}/notjson` });
    await check(nj, /the answer is not JSON: oops \[secret\]/, () => nj.setSecret(cred));
    const unsigned = createTarget("u", { type: "webhook", url: `${url}/signed` }, { resolveRef: async () => new Secret(""), clock: systemClock, configDir: "." });
    await check(unsigned as WebhookTarget, /HTTP 401: bad signature/, () => (unsigned as WebhookTarget).setSecret(cred));
    const slow = target({ url: `${url}/hang`, timeout_ms: 300 });
    await check(slow, /timed out after 300 ms/, () => slow.setSecret(cred));
    await check(slow, /timed out/, () => slow.verify(cred));
    await target({ url: `${url}/x` }).check();
    assert.throws(() => target({ url: "ftp://x" }), /services\.t\.url/);
    assert.throws(() => target({ url: `${url}/x`, capabilities: ["create"] }), /services\.t\.capabilities/);
  });

  it("no value in records, events or errors", () => {
    const recs = readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    for (const v of values) {
      assert.ok(!recs.includes(v), "a value is in the history");
      for (const o of outputs) assert.ok(!o.includes(v), "a value is in an event or error");
    }
    const recs2 = recs.split("\n").filter(Boolean).map((l) => JSON.parse(l) as RotationRecord);
    assert.ok(recs2.some((r) => r.status === "rolled-back"));
  });
});
