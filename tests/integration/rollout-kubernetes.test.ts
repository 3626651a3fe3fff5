// The Kubernetes API is a local HTTPS server started by the test (tests/support/kube-api.ts) speaking the core API to the official @kubernetes/client-node; every discovered pod is a real PostgreSQL 15 server on its own loopback port.
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { systemClock } from "../../provider/core/clock";
import { AuthError, StoreError, TimeoutError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import { parseConfig } from "../../provider/compose/config";
import { composeRotation } from "../../provider/compose/rotation";
import { runCheck, type HealthCheckSettings } from "../../provider/health";
import type { HealthContext } from "../../provider/rotation/ports";
import { RotationError, type RotationResult } from "../../provider/rotation/engine";
import type { RolloutRecord } from "../../provider/rotation/rollout/plan";
import { scramVerifier } from "../../provider/rotation/targets/postgresql";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun } from "../support/cli";
import { startKubeApi, type KubeApiServer } from "../support/kube-api";
import { startPostgres, type RunningPostgres } from "../support/postgres";

/**
 * Rollout discovery `kubernetes` (namespace, label_selector, kubeconfig, context) and the
 * health check `kubernetes_pod_ready`, through the official client: the pods found get the new
 * password wave by wave; a pod that stops being Ready between waves rolls everything back; a
 * server that is down, refuses, answers garbage or hangs, a selector with no running pod and a
 * bad kubeconfig or context are refused before anything changes, with the field named.
 */
describe("rotation rollout: kubernetes discovery and kubernetes_pod_ready (official client, local Kubernetes API)", function () {
  this.timeout(240000);
  const N = 3;
  const pgs: RunningPostgres[] = [];
  const admins: Client[] = [];
  let kube: KubeApiServer;
  let dir: string;
  let prodToken = "";
  let stagingToken = "";
  const env = { DSOPS_FILE_KEY: "kube-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "roller" };
  const values = new Set<string>();
  const outputs: string[] = [];
  let n = 0;

  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });
  const pod = (i: number) => `api-${i + 1}`;
  const all = Array.from({ length: N }, (_, i) => pod(i));
  const worksOn = async (user: string, pw: string) => {
    const out: string[] = [];
    for (let i = 0; i < N; i++) if (await pgs[i].canLogin(user, pw)) out.push(pod(i));
    return out;
  };
  const stored = async (key: string) => {
    const v = (await store().get({ key, version: "current" })).value.reveal();
    values.add(v);
    return v;
  };
  const alters = (user: string) => pgs.map((p) => p.log().split(`ALTER ROLE "${user}" WITH PASSWORD`).length - 1);
  const history = (): RolloutRecord[] => {
    const m = new Map<string, RolloutRecord>();
    for (const l of readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8").split("\n")) if (l.trim()) m.set((JSON.parse(l) as RolloutRecord).id, JSON.parse(l) as RolloutRecord);
    return [...m.values()];
  };
  const recordOf = (user: string) => history().find((r) => r.secret === `store://local/app/${user}`);
  /** The pods: api-1..3 (api-2 the canary) are the instances; a web pod, a pending and a terminating api pod are not. */
  const resetPods = () => {
    kube.pods.length = 0;
    kube.mode = "ok";
    for (let i = 0; i < N; i++)
      kube.pods.push({
        namespace: "prod",
        name: pod(i),
        labels: { app: "api", tier: "backend", ...(i === 1 ? { canary: "true" } : {}) },
        annotations: { "dsops.io/admin": `store://local/pg/admin-${i}`, "kubectl.kubernetes.io/restartedAt": "2026-06-01T00:00:00Z" },
        podIP: "127.0.0.1",
        ports: [{ name: "metrics", containerPort: 9100 }, { name: "postgres", containerPort: pgs[i].port }],
      });
    kube.pods.push({ namespace: "prod", name: "web-1", labels: { app: "web", tier: "frontend" }, podIP: "127.0.0.1", ports: [{ name: "postgres", containerPort: pgs[0].port }] });
    kube.pods.push({ namespace: "prod", name: "api-pending", labels: { app: "api", tier: "backend" }, phase: "Pending", ready: false, ports: [{ name: "postgres", containerPort: 1 }] });
    kube.pods.push({ namespace: "prod", name: "api-old", labels: { app: "api", tier: "backend" }, deleting: true, podIP: "127.0.0.1", ports: [{ name: "postgres", containerPort: 1 }] });
    kube.pods.push({ namespace: "staging", name: "api-s", labels: { app: "api", tier: "backend" }, podIP: "127.0.0.1", ports: [{ name: "postgres", containerPort: 1 }] });
  };

  const discovery = (extra = "") => `{ type: kubernetes, namespace: prod, label_selector: "app=api,tier=backend", kubeconfig: ./kube.yaml, context: prod, port: postgres${extra} }`;

  /** A fresh role with the same password on every server, and dsops.yaml rotating X over the discovered pods. */
  async function setup(o: { discovery?: string; rollout?: string; rotation?: string; onProgress?: (m: string) => void }) {
    const user = `k${++n}`;
    const pw = `Init-${user}-${Math.random().toString(36).slice(2)}`;
    values.add(pw);
    for (let i = 0; i < N; i++) await admins[i].query(`CREATE ROLE ${escapeIdentifier(user)} LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
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
${o.rotation ? `        ${o.rotation}\n` : ""}        rollout: { discovery: ${o.discovery ?? discovery()}, ${o.rollout ?? "strategy: canary"} }
`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const progress: string[] = [];
    const engine = composeRotation(config, {
      env: { ...process.env, ...env },
      clock: systemClock,
      metrics: false,
      onEvent: (m) => {
        progress.push(m);
        outputs.push(m);
        o.onProgress?.(m);
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
  const appliedOrder = (progress: string[]) => progress.map((m) => /instance (\S+): new credential applied and verified/.exec(m)?.[1]).filter((x): x is string => !!x);

  before(async () => {
    for (let i = 0; i < N; i++) pgs.push(await startPostgres());
    kube = await startKubeApi();
    prodToken = kube.token();
    stagingToken = "not-a-token-the-server-knows-" + Math.random().toString(36).slice(2);
    values.add(prodToken).add(stagingToken);
    dir = mkdtempSync(join(tmpdir(), "dsops-rollout-kube-"));
    writeFileSync(join(dir, "kube.yaml"), kube.kubeconfig([{ name: "staging", token: stagingToken }, { name: "prod", token: prodToken }], "staging"));
    for (const [i, p] of pgs.entries()) {
      const c = new Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: "postgres" });
      await c.connect();
      admins.push(c);
      values.add(p.adminPassword);
      await store().put(`pg/admin-${i}`, new Secret(JSON.stringify({ username: p.adminUser, password: p.adminPassword })));
    }
    resetPods();
  });
  after(async () => {
    for (const a of admins) await a.end().catch(() => undefined);
    await kube?.close();
    for (const p of pgs) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => resetPods());

  it("the running pods matching the selector are the instances (host = pod IP, port = the named container port, annotations dsops.io/*); canary first; kubernetes_pod_ready between waves", async () => {
    const s = await setup({
      // api-pending is not Ready (and not an instance): 3 of the 4 pods suffice.
      rotation: `health: [{ type: kubernetes_pod_ready, name: pods, namespace: prod, label_selector: "app=api", kubeconfig: ./kube.yaml, context: prod, min_ready: 3 }]\n        monitor: { failures: 1 }`,
    });
    const seen = kube.requests.length;
    const r = await rotateOnce(s);
    assert.equal(r.result?.record.status, "succeeded", String(r.error));
    const now = await stored(`app/${s.user}`);
    assert.notEqual(now, s.pw);
    assert.deepEqual(await worksOn(s.user, now), all);
    assert.deepEqual(await worksOn(s.user, s.pw), []);
    assert.deepEqual(alters(s.user), [1, 1, 1]);
    const rec = recordOf(s.user) as RolloutRecord;
    assert.deepEqual(rec.rollout?.instances.map((i) => [i.name, i.settings.host, i.settings.port, i.settings.admin]), [
      ["api-1", "127.0.0.1", pgs[0].port, "store://local/pg/admin-0"],
      ["api-2", "127.0.0.1", pgs[1].port, "store://local/pg/admin-1"],
      ["api-3", "127.0.0.1", pgs[2].port, "store://local/pg/admin-2"],
    ]);
    assert.equal(rec.rollout?.instances[1].labels.canary, "true");
    assert.deepEqual(rec.rollout?.waves.map((w) => [w.label, w.instances]), [["canary", ["api-2"]], ["rest", ["api-1", "api-3"]]]);
    assert.deepEqual(appliedOrder(s.progress), ["api-2", "api-1", "api-3"]);
    // The discovery and the health rounds (after each wave and after the rotation) went to the API with the prod context's token.
    const mine = kube.requests.slice(seen);
    assert.ok(mine.length >= 3, JSON.stringify(mine));
    for (const q of mine) {
      assert.equal(q.bearer, prodToken);
      assert.equal(q.status, 200);
      assert.match(q.url, /^\/api\/v1\/namespaces\/prod\/pods\?labelSelector=app%3Dapi/);
    }
    assert.ok(s.progress.some((m) => /health round 1: healthy/.test(m)));
  });

  it("a pod that is no longer Ready after the canary wave: kubernetes_pod_ready fails → the canary gets the old password back, the rest were never touched", async () => {
    kube.pods.splice(kube.pods.findIndex((p) => p.name === "api-pending"), 1);
    const s = await setup({
      rotation: `health: [{ type: kubernetes_pod_ready, name: pods, namespace: prod, label_selector: "app=api,tier=backend", kubeconfig: ./kube.yaml, context: prod }]\n        monitor: { failures: 1 }`,
      onProgress: (m) => {
        if (/instance api-2: new credential applied and verified/.test(m)) (kube.pods.find((p) => p.name === "api-2") as { ready?: boolean }).ready = false;
      },
    });
    const r = await rotateOnce(s);
    assert.ok(r.error instanceof RotationError, String(r.error));
    assert.match((r.error as Error).message, /rolled back: rollout wave 1\/2 \(canary\) failed: api-2: health checks after wave 1\/2 \(canary\) failed: .*pods: namespace prod, label_selector "app=api,tier=backend": 1 of 3 pod\(s\) not ready: api-2 \(phase Running, Ready=False \(ContainersNotReady\)\)/);
    assert.equal(await stored(`app/${s.user}`), s.pw, "the old version is still current");
    assert.deepEqual(await worksOn(s.user, s.pw), all, "the old password works on every pod's server");
    assert.deepEqual(alters(s.user), [0, 2, 0], "only the canary was set (and set back)");
    const rec = recordOf(s.user) as RolloutRecord;
    assert.equal(rec.status, "rolled-back");
    assert.deepEqual(rec.rollout?.restored, ["api-2"]);
  });

  /** A rotation whose discovery must fail before anything changes; returns the error. */
  async function refused(o: { discovery: string; rollout?: string }): Promise<Error> {
    const s = await setup(o);
    const r = await rotateOnce(s);
    assert.ok(r.error instanceof Error, `expected a refusal, got ${r.result?.record.status}`);
    assert.equal(await stored(`app/${s.user}`), s.pw);
    assert.deepEqual(alters(s.user), [0, 0, 0], "nothing changed");
    return r.error;
  }

  it("no running pod matches (none at all / only pending and terminating ones): the rollout refuses instead of succeeding with zero instances", async () => {
    const none = await refused({ discovery: discovery().replace("app=api,tier=backend", "app=nothing") });
    assert.match(none.message, /rollout\.discovery: namespace prod, label_selector "app=nothing": no running pod \(no pod matches\); a rollout needs at least one instance/);
    kube.pods.splice(0, N);
    const notRunning = await refused({ discovery: discovery() });
    assert.match(notRunning.message, /rollout\.discovery: namespace prod, label_selector "app=api,tier=backend": no running pod \(2 pod\(s\) match, none running\)/);
  });

  it("the API refuses (403), answers garbage, is down or hangs: a typed error naming the discovery and the server; the token is never shown", async () => {
    kube.mode = "forbidden";
    const forbidden = await refused({ discovery: discovery() });
    assert.ok(forbidden instanceof AuthError, String(forbidden));
    assert.match(forbidden.message, /rollout\.discovery: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): HTTP 403: pods is forbidden: .*\(the kubeconfig's user may not list pods there\)/);

    kube.mode = "throttled";
    const throttled = await refused({ discovery: discovery() });
    assert.ok(throttled instanceof StoreError && throttled.retryable, String(throttled));
    assert.match(throttled.message, /HTTP 429/);

    kube.mode = "malformed";
    const garbage = await refused({ discovery: discovery() });
    assert.ok(garbage instanceof StoreError, String(garbage));
    assert.match(garbage.message, /rollout\.discovery: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): the answer is not a pod list/);

    kube.mode = "hang";
    const hung = await refused({ discovery: discovery(", timeout_ms: 1500") });
    assert.ok(hung instanceof TimeoutError, String(hung));
    assert.match(hung.message, /rollout\.discovery: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): no answer within 1500 ms/);

    // A kubeconfig whose cluster is a port nothing listens on.
    const down = await startKubeApi();
    const token = down.token();
    writeFileSync(join(dir, "down.yaml"), down.kubeconfig([{ name: "prod", token }], "prod"));
    await down.close();
    const refusedConn = await refused({ discovery: discovery().replace("./kube.yaml", "./down.yaml") });
    assert.ok(refusedConn instanceof StoreError, String(refusedConn));
    assert.match(refusedConn.message, /rollout\.discovery: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): ECONNREFUSED/);

    // Without `context`, the kubeconfig's current context (staging) is used: its token is refused.
    const wrongCtx = await refused({ discovery: discovery().replace(", context: prod", "") });
    assert.ok(wrongCtx instanceof AuthError, String(wrongCtx));
    assert.match(wrongCtx.message, /HTTP 401.*the credentials of the kubeconfig's user were refused/);

    for (const e of [forbidden, throttled, garbage, hung, refusedConn, wrongCtx]) {
      assert.ok(!e.message.includes(prodToken) && !e.message.includes(stagingToken) && !e.message.includes(token));
    }
  });

  it("kubeconfig missing or invalid, context unknown: the exact field is named", async () => {
    const missing = await refused({ discovery: discovery().replace("./kube.yaml", "./nope.yaml") });
    assert.match(missing.message, new RegExp(`rollout\\.discovery\\.kubeconfig: ${join(dir, "nope.yaml").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} does not exist`));
    writeFileSync(join(dir, "bad.yaml"), "apiVersion: v1\nclusters: [this is: not: valid\n");
    const invalid = await refused({ discovery: discovery().replace("./kube.yaml", "./bad.yaml") });
    assert.match(invalid.message, /rollout\.discovery\.kubeconfig: .*bad\.yaml is not a valid kubeconfig: /);
    const ctx = await refused({ discovery: discovery().replace("context: prod", "context: production") });
    assert.match(ctx.message, /rollout\.discovery\.context: "production" is not a context of kubeconfig .*kube\.yaml \(contexts: staging, prod\)/);
    writeFileSync(join(dir, "empty.yaml"), "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n");
    const empty = await refused({ discovery: discovery().replace("./kube.yaml", "./empty.yaml").replace(", context: prod", "") });
    assert.match(empty.message, /rollout\.discovery\.kubeconfig: kubeconfig .*empty\.yaml has no current context/);
    const port = await refused({ discovery: discovery().replace("port: postgres", "port: grpc") });
    assert.match(port.message, /rollout\.discovery: namespace prod, label_selector "app=api,tier=backend": pod "api-1" has no container port named "grpc" \(port:\)/);
  });

  it("without kubeconfig: KUBECONFIG (then ~/.kube/config, in-cluster) is used; with none of them, the error names the field", async () => {
    const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST };
    const home = mkdtempSync(join(tmpdir(), "dsops-home-"));
    try {
      process.env.HOME = home;
      delete process.env.KUBERNETES_SERVICE_HOST;
      process.env.KUBECONFIG = join(dir, "kube.yaml");
      const s = await setup({ discovery: discovery().replace("kubeconfig: ./kube.yaml, ", ""), rollout: "strategy: all" });
      const r = await rotateOnce(s);
      assert.equal(r.result?.record.status, "succeeded", String(r.error));
      assert.deepEqual(await worksOn(s.user, await stored(`app/${s.user}`)), all);
      delete process.env.KUBECONFIG;
      const none = await refused({ discovery: discovery().replace("kubeconfig: ./kube.yaml, ", "") });
      assert.match(none.message, /rollout\.discovery\.kubeconfig: not given, and there is no KUBECONFIG, ~\/\.kube\/config or in-cluster service account to fall back on/);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("the CLI: --dry-run lists the waves over the discovered pods; a refused discovery exits 1 (not 70) with the message; bad settings are config errors naming the field", async () => {
    const s = await setup({});
    const dry = await dsopsRun(["secrets", "rotate", "--env", "prod", "--var", "X", "--dry-run"], { cwd: dir, env });
    outputs.push(dry.stdout, dry.stderr);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /wave 1\/2 \(canary\): set the password of "k\d+" on api-2/);
    assert.match(dry.stdout, /wave 2\/2 \(rest\): set the password of "k\d+" on api-1, api-3/);
    assert.deepEqual(alters(s.user), [0, 0, 0]);
    kube.mode = "forbidden";
    const r = await dsopsRun(["secrets", "rotate", "--env", "prod", "--var", "X"], { cwd: dir, env });
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /rollout\.discovery: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): HTTP 403/);
    const mk = (d: string) => () =>
      parseConfig(`version: 1
secretStores: { local: { type: file, path: ./s.store } }
services: { db: { type: postgresql, admin: "store://local/a" } }
envs: { prod: { X: { from: "store://local/x", rotation: { service: db, user: u, rollout: { discovery: ${d} } } } } }
`, { file: join(dir, "other.yaml"), env: { ...process.env, ...env } });
    assert.throws(mk("{ type: kubernetes, namespace: prod }"), /rollout\.discovery\.label_selector: required/);
    assert.throws(mk("{ type: kubernetes, label_selector: a=b, kube_config: x }"), /rollout\.discovery\.kube_config: unknown key "kube_config"/);
    assert.throws(mk("{ type: swarm }"), /rollout\.discovery\.type: unknown discovery type "swarm" \(expected kubernetes, cloud or endpoint/);
  });

  it("kubernetes_pod_ready on its own: all Ready is healthy; a not-ready pod, too few with min_ready, no pod, 403 and a hang are unhealthy with the reason", async () => {
    const ctx = { service: "s", env: "prod", variable: "X", secret: "store://local/x", rotationId: "rot-1", strategy: "single-user", configDir: dir } as HealthContext;
    const check = (extra: Partial<Record<string, unknown>> = {}) =>
      ({ type: "kubernetes_pod_ready", name: "pods", namespace: "prod", label_selector: "app=api", kubeconfig: "./kube.yaml", context: "prod", timeout_ms: 1500, ...extra }) as HealthCheckSettings;
    kube.pods.splice(kube.pods.findIndex((p) => p.name === "api-pending"), 1);
    // A pod that ran to completion does not count.
    kube.pods.push({ namespace: "prod", name: "api-migrate", labels: { app: "api" }, phase: "Succeeded", ready: false });
    assert.deepEqual((await runCheck(check(), 0, ctx)).healthy, true);
    (kube.pods[2] as { ready?: boolean }).ready = false;
    const one = await runCheck(check(), 0, ctx);
    assert.equal(one.healthy, false);
    assert.equal(one.message, 'pods: namespace prod, label_selector "app=api": 1 of 3 pod(s) not ready: api-3 (phase Running, Ready=False (ContainersNotReady))');
    assert.equal((await runCheck(check({ min_ready: 2 }), 0, ctx)).healthy, true);
    kube.pods[0].ready = false;
    assert.match((await runCheck(check({ min_ready: 2 }), 0, ctx)).message ?? "", /1 of 3 pod\(s\) ready, at least 2 needed; not ready: api-1 .*, api-3 /);
    assert.match((await runCheck(check({ label_selector: "app in (nothing)" }), 0, ctx)).message ?? "", /no pod matches/);
    kube.mode = "forbidden";
    assert.match((await runCheck(check(), 0, ctx)).message ?? "", /^pods: kubernetes_pod_ready: https:\/\/127\.0\.0\.1:\d+ \(namespace prod\): HTTP 403/);
    kube.mode = "hang";
    assert.match((await runCheck(check(), 0, ctx)).message ?? "", /no answer within 1500 ms/);
    kube.mode = "ok";
    assert.match((await runCheck(check({ kubeconfig: "./missing.yaml" }), 0, ctx)).message ?? "", /^pods: kubernetes_pod_ready\.kubeconfig: .*missing\.yaml does not exist/);
  });

  it("no token or password in records, events or output", () => {
    const text = [readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8"), ...outputs].join("\n");
    assert.ok(values.size > 5);
    for (const v of values) assert.ok(!text.includes(v), "a secret value appears in records or output");
  });
});
