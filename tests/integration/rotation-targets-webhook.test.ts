import { strict as assert } from "node:assert";
import { createServer, type Server } from "node:http";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { TargetError, createTarget } from "../../provider/rotation/index";
import { WebhookTarget, webhookSignature } from "../../provider/rotation/targets/webhook";
import { targetContract } from "../support/target-contract";

/**
 * The webhook target speaks dsops's JSON protocol to an HTTP receiver the test runs on loopback:
 * the receiver plays the external system (it keeps a password per user, sets it on `rotate`,
 * checks it on `verify`, refuses to verify users named bad…), checks the HMAC signature, and
 * records every request. The target contract runs against it, then the webhook's own tests:
 * signatures and headers, what a rollback sends, refusals and transport errors.
 */
let server: Server;
let url: string;
const signingKey = "sign-" + Math.random().toString(36).slice(2);
const passwords = new Map<string, string>();
const requests: Array<{ path: string; headers: Record<string, unknown>; body: Record<string, unknown>; signed: boolean }> = [];

function receiver(): Server {
  return createServer((req, res) => {
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
          if (user.startsWith("bad")) return answer(200, { success: false, error: `verification refused for ${body.new_secret}` });
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
}

targetContract(
  {
    label: "webhook (loopback HTTP receiver)",
    type: "webhook",
    service: "hook",
    badSettings: [
      [{ url: "ftp://x" }, /services\.x\.url/],
      [{ url: "http://127.0.0.1/x", capabilities: ["create"] }, /services\.x\.capabilities/],
    ],
    minimalSettings: { url: "http://127.0.0.1/x" },
    targetClass: WebhookTarget,
    capabilities: ["rotate", "verify"],
    async setup(bench) {
      server = receiver();
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      await bench.store().put("hook/key", new Secret(signingKey));
      bench.adminKeys.add("hook/key");
      return {
        service: { type: "webhook", url: `${url}/signed`, signing_secret: "store://local/hook/key", headers: { "x-team": "payments" } },
        async principal(user, password) {
          passwords.set(user, password);
          bench.values.add(password);
          return { username: user, password };
        },
        canLogin: async (user, password) => passwords.get(user) === password,
        failingVerification: { refusesBad: true, reason: /verification refused for \[secret\]/ },
        async stop() {
          server?.closeAllConnections();
          await new Promise((r) => server?.close(r));
        },
      };
    },
  },
  (bench) => {
    const target = (raw: Record<string, unknown>) =>
      createTarget("t", { type: "webhook", ...raw }, { resolveRef: async () => new Secret(signingKey), clock: systemClock, configDir: "." }) as WebhookTarget;

    it("single-user: rotate then verify, each request signed with the configured headers, the secret only in the body", async () => {
      const now = await bench.stored("c/single");
      const seen = requests.filter((q) => q.body.user === "single");
      assert.deepEqual(
        seen.map((q) => q.body.action),
        ["rotate", "verify"],
      );
      for (const q of seen) {
        assert.equal(q.signed, true, "each request is signed");
        assert.equal(q.headers["x-team"], "payments");
        assert.equal(q.body.user, "single");
        assert.equal(q.body.new_secret, now);
        assert.equal(q.body.service, "hook");
        assert.ok(!JSON.stringify(q.headers).includes(now) && !q.path.includes(now), "the secret is never in a header or the URL");
      }
    });

    it("a refused verification rolls back by sending the old password back (rotate)", async () => {
      const old = await bench.stored("c/bad");
      const seen = requests.filter((q) => q.body.user === "bad");
      assert.deepEqual(
        seen.map((q) => q.body.action),
        ["rotate", "verify", "rotate"],
      );
      bench.values.add(seen[0].body.new_secret as string);
      assert.equal(seen[2].body.new_secret, old);
      assert.equal(passwords.get("bad"), old, "restored at the receiver");
    });

    it("refusals, HTTP errors, bad answers, a bad signature and timeouts are errors without the value", async () => {
      const cred = { principal: "locked", secret: new Secret(`V-${Math.random()}`) };
      bench.values.add(cred.secret.reveal());
      const check = async (re: RegExp, op: () => Promise<unknown>) => {
        const e = await op().then(
          () => undefined,
          (x: unknown) => x,
        );
        assert.ok(e instanceof Error, "expected an error");
        bench.outputs.push(e.message);
        assert.match(e.message, re);
      };
      await check(/rotate of "locked" refused: user locked; refused value \[secret\]/, () => target({ url: `${url}/x` }).setSecret(cred));
      const broken = target({ url: `${url}/broken` });
      await check(/failed: HTTP 502: upstream down \(\[secret\]\)/, () => broken.setSecret(cred));
      const e502 = await broken.setSecret(cred).catch((x: unknown) => x);
      assert.ok(e502 instanceof TargetError && e502.retryable, "5xx is retryable");
      const nj = target({ url: `${url}/notjson` });
      await check(/the answer is not JSON: oops \[secret\]/, () => nj.setSecret(cred));
      const unsigned = createTarget("u", { type: "webhook", url: `${url}/signed` }, { resolveRef: async () => new Secret(""), clock: systemClock, configDir: "." }) as WebhookTarget;
      await check(/HTTP 401: bad signature/, () => unsigned.setSecret(cred));
      const slow = target({ url: `${url}/hang`, timeout_ms: 300 });
      await check(/timed out after 300 ms/, () => slow.setSecret(cred));
      await check(/timed out/, () => slow.verify(cred));
      await target({ url: `${url}/x` }).check();
    });
  },
);
