import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dsops } from "../support/cli";
import { haveBao, startOpenBao, type OpenBao } from "../support/openbao";
import { freePort } from "../support/server";

const VALUE = "doctor-secret-" + Math.random().toString(36).slice(2);

describe("dsops doctor (built binary; OpenBao, a closed port, a silent server)", function () {
  this.timeout(120000);
  let dir: string;
  let bao: OpenBao | undefined;
  let silent: Server;
  let silentPort: number;
  let closedPort: number;
  const sockets: Socket[] = [];
  const outputs: string[] = [];
  const run = (args: string[], input?: string, env?: NodeJS.ProcessEnv) => {
    const r = dsops(args, { cwd: dir, input, env });
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-doctor-"));
    closedPort = await freePort();
    // Accepts connections and never answers: a check must give up at its timeout.
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    silentPort = (silent.address() as { port: number }).port;
    if (haveBao()) bao = await startOpenBao();
  });
  after(async () => {
    for (const out of outputs) assert.ok(!out.includes(VALUE), "a secret appeared in output");
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await bao?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (file: string, stores: string) => {
    writeFileSync(join(dir, file), `version: 1\nsecretStores:\n${stores}\n`);
    return file;
  };

  it("reports each store's check as a table, exit 0 when all pass", () => {
    const file = config("ok.yaml", "  local: { type: file }\n  shell: { type: env, prefix: APP_ }\n  cfg: { type: literal, values: { a: b } }");
    assert.equal(run(["-c", file, "secrets", "set", "--store", "local", "--key", "k"], VALUE).status, 0);
    const r = run(["-c", file, "doctor"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^STORE +TYPE +STATUS +TIME +DETAIL\n/);
    assert.match(r.stdout, /^local +file +ok +\d+ms +connected and authenticated$/m);
    assert.match(r.stdout, /^shell +env +ok +\d+ms +nothing to check \(env stores need no connection\)$/m);
    assert.match(r.stdout, /\nall 3 stores ok\n$/);
  });

  it("fails (exit 1) when a store is unreachable, and reports it in --json", () => {
    const file = config(
      "bad.yaml",
      `  local: { type: file }\n  vault: { type: vault, address: "http://127.0.0.1:${closedPort}", token: t, }`,
    );
    const r = run(["-c", file, "doctor"]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^vault +vault +failed +\d+ms +store "vault"/m);
    assert.match(r.stdout, /\n1 of 2 stores failed\n$/);
    const j = run(["-c", file, "doctor", "--json"]);
    assert.equal(j.status, 1);
    const data = JSON.parse(j.stdout) as { ok: boolean; stores: Array<{ store: string; status: string; detail: string }> };
    assert.equal(data.ok, false);
    assert.deepEqual(data.stores.map((s) => [s.store, s.status]), [["local", "ok"], ["vault", "failed"]]);
  });

  it("gives up on a store that does not answer, at the per-store timeout, checking the others concurrently", () => {
    const file = config(
      "slow.yaml",
      `  a: { type: vault, address: "http://127.0.0.1:${silentPort}", token: t }\n  b: { type: vault, address: "http://127.0.0.1:${silentPort}", token: t }\n  local: { type: file }`,
    );
    const r = run(["-c", file, "doctor", "--timeout", "1s", "--json"]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const data = JSON.parse(r.stdout) as { stores: Array<{ store: string; status: string; detail: string; ms: number }> };
    assert.deepEqual(data.stores.map((s) => [s.store, s.status]), [["a", "timeout"], ["b", "timeout"], ["local", "ok"]]);
    assert.equal(data.stores[0].detail, "no answer within 1000ms");
  });

  it("checks a real Vault API (OpenBao): a good token passes, a bad one fails with an auth error", function () {
    if (!bao) this.skip();
    const file = config(
      "bao.yaml",
      `  good: { type: vault, address: "${bao!.address}", token: "${bao!.rootToken}" }\n  wrong: { type: vault, address: "${bao!.address}", token: not-a-token }`,
    );
    const r = run(["-c", file, "doctor", "--json"]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const data = JSON.parse(r.stdout) as { stores: Array<{ store: string; status: string; detail: string }> };
    assert.deepEqual(data.stores.map((s) => [s.store, s.status]), [["good", "ok"], ["wrong", "failed"]]);
    assert.ok(!r.stdout.includes(bao!.rootToken), "the token is not shown");
    const only = run(["-c", file, "doctor", "--store", "good"]);
    assert.equal(only.status, 0, only.stdout + only.stderr);
    assert.match(only.stdout, /all 1 stores ok/);
  });

  it("shows a Vault store's auth method: userpass logs in for the check; a wrong password fails without showing it", async function () {
    if (!bao) this.skip();
    await fetch(`${bao!.address}/v1/sys/auth/userpass`, { method: "POST", headers: { "X-Vault-Token": bao!.rootToken }, body: JSON.stringify({ type: "userpass" }) });
    const res = await fetch(`${bao!.address}/v1/auth/userpass/users/doc`, { method: "POST", headers: { "X-Vault-Token": bao!.rootToken }, body: JSON.stringify({ password: VALUE }) });
    assert.equal(res.status, 204);
    const file = config(
      "userpass.yaml",
      `  up: { type: vault, address: "${bao!.address}", auth_method: userpass, userpass_username: doc, userpass_password: "\${DOC_PW}" }\n` +
        `  bad: { type: vault, address: "${bao!.address}", auth_method: userpass, userpass_username: doc, userpass_password: not-it-${VALUE.slice(-6)} }`,
    );
    const r = run(["-c", file, "doctor"], undefined, { DOC_PW: VALUE });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^up +vault +ok +\d+ms +connected and authenticated \(auth_method userpass\)$/m);
    assert.match(r.stdout, /^bad +vault +failed +\d+ms +store "bad": userpass login at auth\/userpass refused \(HTTP 400\) \(hint: check userpass_username \("doc"\) and userpass_password/m);
    assert.ok(!r.stdout.includes(`not-it-${VALUE.slice(-6)}`), "the wrong password is not shown");
    const j = run(["-c", file, "doctor", "--json"], undefined, { DOC_PW: VALUE });
    const data = JSON.parse(j.stdout) as { stores: Array<{ store: string; status: string; auth?: string }> };
    assert.deepEqual(data.stores.map((s) => [s.store, s.status, s.auth]), [["up", "ok", "userpass"], ["bad", "failed", "userpass"]]);
  });

  it("is a user error for an unknown --store, and a usage error for a bad option", () => {
    const file = config("one.yaml", "  local: { type: file }");
    const r = run(["-c", file, "doctor", "--store", "nope"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown store "nope"\nhint: stores: local/);
    assert.equal(run(["-c", file, "doctor", "--frobnicate"]).status, 2);
  });
});
