// Real servers on loopback (moto_server, OpenBao); GCP Secret Manager is the local server speaking its real gRPC protocol to the real client (tests/support/gcp-secretmanager-server.ts): no real one can run here.
import { strict as assert } from "node:assert";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { createStore } from "../../provider/stores/registry";
import { storeSettingsSchemas, type StoreSettings } from "../../provider/stores/settings";
import type { Store } from "../../provider/stores/types";
import { dsopsRun, type CliResult } from "../support/cli";
import { startFaultProxy, type Fault, type FaultProxy } from "../support/fault-proxy";
import { startGcpSecretManagerServer, type GcpSecretManagerServer } from "../support/gcp-secretmanager-server";
import { startMoto, motoCredentials, type Moto } from "../support/moto";
import { startOpenBao, type OpenBao } from "../support/openbao";
import { freePort, startAll } from "../support/server";

/**
 * The fault table of issue 17: every remote store × every command that reads or writes it
 * (`get`, `render`, `exec`, `plan`, `secrets set`, and one rotation), each under each fault —
 * throttled then answering, answering only some requests, a refused connection, a persistent
 * 5xx/429, a server that never answers. The built `dsops` runs against the real servers
 * (moto_server, OpenBao, the local gRPC Secret Manager) behind a fault-injecting proxy on
 * loopback (the gRPC server injects its own faults). A command exits 0 only when it did its
 * job; otherwise it exits 1 having done nothing (no file written or replaced, no child run, no
 * version written), with a message naming the store, the key and the cause, and no value.
 */

type FaultName = "retried" | "intermittent" | "refused" | "failing" | "hang";

/** What each fault column expects, and the settings that keep the table fast. */
const COLUMNS: Record<FaultName, { title: string; succeeds: boolean; settings: string }> = {
  retried: { title: "throttled twice, then answering", succeeds: true, settings: "timeout_ms: 5000, retries: 3" },
  intermittent: { title: "30% of requests failing (503/UNAVAILABLE)", succeeds: true, settings: "timeout_ms: 5000, retries: 3" },
  refused: { title: "a refused connection (closed port)", succeeds: false, settings: "timeout_ms: 5000, retries: 2" },
  failing: { title: "failing on every request (5xx/429)", succeeds: false, settings: "timeout_ms: 5000, retries: 2" },
  hang: { title: "never answering (past timeout_ms)", succeeds: false, settings: "timeout_ms: 400, retries: 1" },
};

/** The cause each failing column must name, per store. */
type Causes = Record<"refused" | "failing" | "hang", RegExp>;

/** One remote store of the table. */
interface Row {
  /** The store's name in dsops.yaml (messages name it). */
  readonly store: string;
  readonly type: string;
  /** A key holding a seeded value, read by get/render/exec. */
  readonly readKey: string;
  /** A key `secrets set` writes. */
  readonly writeKey: string;
  readonly causes: Causes;
  /** The store's settings (YAML flow mapping body) reaching the server through the fault, or a closed port. */
  settings(fault: FaultName): string;
  /** Set the fault up (before a command runs). */
  inject(fault: FaultName): void;
  /** Take the fault away (so that the test can inspect the server). */
  clear(): void;
  /** Requests (or calls) the server side saw since `inject`. */
  seen(): number;
  /** True when a fault was actually met since `inject` (a success then proves a retry). */
  met(): boolean;
  /** The store client reaching the real server directly (seeding, checking what was written). */
  direct(): Store;
}

const VALUES = new Set<string>();
function value(prefix: string): string {
  const v = `${prefix}-${randomBytes(9).toString("base64url").replace(/[-_]/g, "x")}`;
  VALUES.add(v);
  return v;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("faults: every command exits 0 only when it did its job (built binary; moto, OpenBao, gRPC Secret Manager behind injected faults)", function () {
  this.timeout(180000);
  let dir: string;
  let moto: Moto;
  let bao: OpenBao;
  let gcp: GcpSecretManagerServer;
  let closedPort: number;
  const proxies: FaultProxy[] = [];
  const outputs: string[] = [];
  const directs: Store[] = [];

  const ctx = () => ({ configDir: dir, clock: systemClock, env: {} });
  const directStore = (name: string, raw: Record<string, unknown>): Store => {
    const settings = (storeSettingsSchemas as Record<string, { parse(x: unknown): unknown }>)[raw.type as string].parse(raw) as StoreSettings;
    const s = createStore(name, settings, ctx());
    directs.push(s);
    return s;
  };

  /** A row for an HTTP store: a proxy of its own in front of `upstream`. */
  async function httpRow(o: {
    store: string;
    type: string;
    readKey: string;
    writeKey: string;
    upstream: string;
    /** The status a persistent failure answers. */
    failing: number;
    causes: Causes;
    settings: (endpoint: string) => string;
    direct: Record<string, unknown>;
  }): Promise<Row> {
    const proxy = await startFaultProxy(o.upstream);
    proxies.push(proxy);
    const faults: Record<FaultName, Fault> = {
      retried: { kind: "status", status: 429, first: 2 },
      intermittent: { kind: "status", status: 503, fraction: 0.3 },
      refused: { kind: "pass" },
      failing: { kind: "status", status: o.failing },
      hang: { kind: "hang" },
    };
    let direct: Store | undefined;
    return {
      store: o.store,
      type: o.type,
      readKey: o.readKey,
      writeKey: o.writeKey,
      causes: o.causes,
      settings: (fault) => o.settings(fault === "refused" ? `http://127.0.0.1:${closedPort}` : proxy.endpoint) + `, ${COLUMNS[fault].settings}`,
      inject: (fault) => proxy.set(faults[fault]),
      clear: () => proxy.set({ kind: "pass" }),
      seen: () => proxy.received,
      met: () => proxy.injected > 0,
      direct: () => (direct ??= directStore(`${o.store}-direct`, o.direct)),
    };
  }

  const rows: Row[] = [];
  /** The value of each row's read key, and the last value written to its write key. */
  const readValue = new Map<string, string>();
  const written = new Map<string, string>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dsops-faults-"));
    closedPort = await freePort();
    [moto, bao, gcp] = await startAll([startMoto(), startOpenBao(), startGcpSecretManagerServer()] as const, (s) => s.stop());
    const aws = `region: us-east-1, access_key_id: ${motoCredentials.accessKeyId}, secret_access_key: ${motoCredentials.secretAccessKey}`;
    const awsDirect = { region: "us-east-1", endpoint: moto.endpoint, access_key_id: motoCredentials.accessKeyId, secret_access_key: motoCredentials.secretAccessKey };
    rows.push(
      await httpRow({
        store: "sm",
        type: "aws.secretsmanager",
        readKey: "faults/read",
        writeKey: "faults/written",
        upstream: moto.endpoint,
        failing: 500,
        causes: { refused: /ECONNREFUSED/, failing: /HTTP 500/, hang: /no answer within 400 ms|TimeoutError/ },
        settings: (endpoint) => `type: aws.secretsmanager, endpoint: "${endpoint}", ${aws}`,
        direct: { type: "aws.secretsmanager", ...awsDirect },
      }),
      await httpRow({
        store: "ssm",
        type: "aws.ssm",
        readKey: "/faults/read",
        writeKey: "/faults/written",
        upstream: moto.endpoint,
        failing: 429,
        causes: { refused: /ECONNREFUSED/, failing: /HTTP 429/, hang: /no answer within 400 ms|TimeoutError/ },
        settings: (endpoint) => `type: aws.ssm, endpoint: "${endpoint}", ${aws}`,
        direct: { type: "aws.ssm", ...awsDirect },
      }),
      await httpRow({
        store: "vault",
        type: "vault",
        readKey: "secret/faults/read",
        writeKey: "secret/faults/written",
        upstream: bao.address,
        failing: 503,
        causes: { refused: /ECONNREFUSED/, failing: /HTTP 503/, hang: /no answer within 400 ms|ECONNABORTED/ },
        settings: (endpoint) => `type: vault, address: "${endpoint}", token: "${bao.rootToken}"`,
        direct: { type: "vault", address: bao.address, token: bao.rootToken },
      }),
    );
    let gcpDirect: Store | undefined;
    const gcpSeen = () => Object.values(gcp.calls).reduce((a, b) => a + b, 0);
    let gcpBase = 0;
    let failuresBase = 0;
    rows.push({
      store: "gsm",
      type: "gcp.secretmanager",
      readKey: "faults-read",
      writeKey: "faults-written",
      causes: { refused: /UNAVAILABLE/, failing: /UNAVAILABLE/, hang: /no answer within 400 ms|DEADLINE_EXCEEDED/ },
      settings: (fault) =>
        `type: gcp.secretmanager, project_id: faults, endpoint: "127.0.0.1", port: ${fault === "refused" ? closedPort : gcp.port}, insecure: true, ${COLUMNS[fault].settings}`,
      inject: (fault) => {
        gcp.clearFaults();
        gcpBase = gcpSeen();
        failuresBase = gcp.injectedFailures();
        if (fault === "retried") gcp.failNext(2, { code: 8, message: "Quota exceeded." }); // RESOURCE_EXHAUSTED
        if (fault === "intermittent") gcp.failFraction(0.3);
        if (fault === "failing") gcp.failNext(1_000_000);
        if (fault === "hang") gcp.hangNext(1_000_000);
      },
      clear: () => gcp.clearFaults(),
      seen: () => gcpSeen() - gcpBase,
      met: () => gcp.injectedFailures() > failuresBase,
      direct: () => (gcpDirect ??= directStore("gsm-direct", { type: "gcp.secretmanager", project_id: "faults", endpoint: "127.0.0.1", port: gcp.port, insecure: true })),
    });
    // The aws router (issue 19): Secrets Manager through an sm: key, on the same moto.
    rows.push(
      await httpRow({
        store: "aws",
        type: "aws",
        readKey: "sm:faults/router-read",
        writeKey: "sm:faults/router-written",
        upstream: moto.endpoint,
        failing: 503,
        causes: { refused: /ECONNREFUSED/, failing: /HTTP 503/, hang: /no answer within 400 ms|TimeoutError/ },
        settings: (endpoint) => `type: aws, endpoint: "${endpoint}", ${aws}`,
        direct: { type: "aws", ...awsDirect },
      }),
    );
    for (const row of rows) {
      const v = value(`read-${row.store}`);
      await row.direct().put?.(row.readKey, new Secret(v));
      readValue.set(row.store, v);
      const w = value(`first-${row.store}`);
      await row.direct().put?.(row.writeKey, new Secret(w));
      written.set(row.store, w);
    }
  });

  after(async () => {
    for (const out of outputs) for (const v of VALUES) assert.ok(!out.includes(v), `a secret value appeared in output:\n${out}`);
    await Promise.all(directs.map((s) => s.close?.()));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all([moto?.stop(), bao?.stop(), gcp?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Write the configuration of one row under one fault; returns its file name. */
  function config(row: Row, fault: FaultName): string {
    const file = `${row.store}-${fault}.yaml`;
    writeFileSync(
      join(dir, file),
      `version: 1
secretStores:
  ${row.store}: { ${row.settings(fault)} }
envs:
  app:
    FAULTS_SECRET: { from: { store: ${row.store}, key: "${row.readKey}" } }
    MODE: { literal: faults }
`,
    );
    return file;
  }

  const run = (args: string[], input?: string): Promise<CliResult> => dsopsRun(args, { cwd: dir, ...(input !== undefined ? { input } : {}) });

  /** Every output is searched for values, except the value `get` was asked for. */
  const record = (r: CliResult, allowedStdout?: string): CliResult => {
    outputs.push(r.stderr, allowedStdout !== undefined ? r.stdout.split(allowedStdout).join("") : r.stdout);
    return r;
  };

  /** A failure that did nothing must say so: exit 1, the store, the key, the cause; never 0, never 70. */
  function assertNamedFailure(r: CliResult, row: Row, key: string, fault: FaultName, what: string): void {
    assert.equal(r.status, 1, `${what} must exit 1, got ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, /^error: /m, `${what}: no error message\n${r.stderr}`);
    assert.ok(r.stderr.includes(`"${row.store}"`) || r.stderr.includes(`store ${row.store}`), `${what}: the message does not name store ${row.store}\n${r.stderr}`);
    assert.ok(r.stderr.includes(key), `${what}: the message does not name key ${key}\n${r.stderr}`);
    assert.match(r.stderr, row.causes[fault as keyof Causes], `${what}: the message does not name the cause\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error/);
  }

  // The rows, in the order `before` builds them (titles are needed before the servers run).
  const ROW_TYPES = ["aws.secretsmanager", "aws.ssm", "vault", "gcp.secretmanager", "aws"];
  for (const [rowIndex, type] of ROW_TYPES.entries()) {
    for (const fault of Object.keys(COLUMNS) as FaultName[]) {
      const col = COLUMNS[fault];
      it(`${type} × ${col.title}: get, render, exec, plan, secrets set ${col.succeeds ? "do their job (exit 0)" : "fail with exit 1 and change nothing"}`, async () => {
        const row = rows[rowIndex];
        assert.equal(row.type, type);
        const file = config(row, fault);
        const expected = readValue.get(row.store) as string;
        const label = `${row.type} × ${fault}`;

        // get
        row.inject(fault);
        const got = record(await run(["-c", file, "get", "--env", "app", "--var", "FAULTS_SECRET"]), col.succeeds ? expected : undefined);
        if (col.succeeds) {
          assert.equal(got.status, 0, `${label}: get\n${got.stderr}`);
          assert.equal(got.stdout, expected + "\n");
          assert.ok(row.met(), `${label}: get met no fault`);
        } else {
          assertNamedFailure(got, row, row.readKey, fault, `${label}: get`);
          assert.equal(got.stdout, "");
        }

        // render: an old file stays byte-identical on failure; written on success
        row.inject(fault);
        const out = join(dir, `${row.store}-${fault}.env`);
        const old = `OLD=contents-${randomBytes(4).toString("hex")}\n`;
        writeFileSync(out, old, { mode: 0o600 });
        const rendered = record(await run(["-c", file, "render", "--env", "app", "--out", out]));
        if (col.succeeds) {
          assert.equal(rendered.status, 0, `${label}: render\n${rendered.stderr}`);
          assert.match(readFileSync(out, "utf8"), new RegExp(`^FAULTS_SECRET=${expected}$`, "m"));
          assert.ok(row.met(), `${label}: render met no fault`);
        } else {
          assertNamedFailure(rendered, row, row.readKey, fault, `${label}: render`);
          assert.equal(readFileSync(out, "utf8"), old, `${label}: render changed the old file`);
        }

        // exec: the child runs (and sees the value) only on success
        row.inject(fault);
        const marker = join(dir, `${row.store}-${fault}.ran`);
        if (existsSync(marker)) unlinkSync(marker);
        const child = `require("fs").writeFileSync(${JSON.stringify(marker)}, require("crypto").createHash("sha256").update(process.env.FAULTS_SECRET || "", "utf8").digest("hex"))`;
        const executed = record(await run(["-c", file, "exec", "--env", "app", "--", process.execPath, "-e", child]));
        if (col.succeeds) {
          assert.equal(executed.status, 0, `${label}: exec\n${executed.stderr}`);
          assert.equal(readFileSync(marker, "utf8"), sha256(expected), `${label}: the child did not get the value`);
          assert.ok(row.met(), `${label}: exec met no fault`);
        } else {
          assertNamedFailure(executed, row, row.readKey, fault, `${label}: exec`);
          assert.ok(!existsSync(marker), `${label}: exec ran the child after a failure`);
        }

        // plan: calls no store, so no fault can stop it
        row.inject(fault);
        const planned = record(await run(["-c", file, "plan", "--env", "app"]));
        assert.equal(planned.status, 0, `${label}: plan\n${planned.stderr}`);
        assert.match(planned.stdout, new RegExp(`FAULTS_SECRET +store +${row.store} \\(${row.type.replace(".", "\\.")}\\)`));
        assert.equal(row.seen(), 0, `${label}: plan called the store`);

        // secrets set: written (and read back from the server) only on success
        row.inject(fault);
        const next = value(`set-${row.store}-${fault}`);
        const set = record(await run(["-c", file, "secrets", "set", "--store", row.store, "--key", row.writeKey], next + "\n"));
        const setMetFault = row.met();
        row.clear();
        const now = (await row.direct().get({ key: row.writeKey })).value.reveal();
        if (col.succeeds) {
          assert.equal(set.status, 0, `${label}: secrets set\n${set.stderr}`);
          assert.match(set.stderr, new RegExp(`store ${row.store}: ${row.writeKey} → version \\S+`));
          assert.equal(now, next, `${label}: secrets set did not write the value`);
          assert.ok(setMetFault, `${label}: secrets set met no fault`);
          written.set(row.store, next);
        } else {
          assertNamedFailure(set, row, row.writeKey, fault, `${label}: secrets set`);
          assert.equal(now, written.get(row.store), `${label}: a failed secrets set changed the secret`);
        }
      });
    }
  }
  describe("rotation (`secrets rotate`, single-user, a Vault-held secret, a webhook target on loopback)", () => {
    let hook: Server;
    let hookUrl: string;
    let proxy: FaultProxy;
    /** The password the webhook's system holds for its user: what the target would accept. */
    let atTarget = "";
    const KEY = "secret/faults/rotated";
    const vault = () => rows[2].direct();

    before(async () => {
      // The external system: keeps one password, set by `rotate`, checked by `verify`.
      hook = createServer((req, res) => {
        let raw = "";
        req.on("data", (d: Buffer) => (raw += d));
        req.on("end", () => {
          const body = JSON.parse(raw || "{}") as { action?: string; new_secret?: string };
          const answer = (o: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(o));
          if (body.action === "rotate") {
            atTarget = body.new_secret ?? "";
            return answer({ success: true });
          }
          if (body.action === "verify") return answer(body.new_secret === atTarget ? { success: true } : { success: false, error: "wrong password" });
          return answer({ success: true });
        });
      });
      await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
      hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/`;
      proxy = await startFaultProxy(bao.address);
      proxies.push(proxy);
      atTarget = value("rotation-first");
      await vault().put?.(KEY, new Secret(atTarget));
    });
    after(async () => {
      hook?.closeAllConnections();
      await new Promise((r) => hook?.close(r));
    });

    function rotationConfig(fault: FaultName): string {
      const file = `rotation-${fault}.yaml`;
      const address = fault === "refused" ? `http://127.0.0.1:${closedPort}` : proxy.endpoint;
      writeFileSync(
        join(dir, file),
        `version: 1
secretStores:
  rot: { type: vault, address: "${address}", token: "${bao.rootToken}", ${COLUMNS[fault].settings} }
services:
  hook: { type: webhook, url: "${hookUrl}", timeout_ms: 10000 }
envs:
  prod:
    ROTATED:
      from: "store://rot/${KEY}"
      rotation: { service: hook, strategy: single-user, user: app }
`,
      );
      return file;
    }

    const faults: Array<[FaultName, Fault]> = [
      ["retried", { kind: "status", status: 429, first: 2 }],
      ["refused", { kind: "pass" }],
      ["failing", { kind: "status", status: 503 }],
      ["hang", { kind: "hang" }],
    ];
    for (const [fault, injected] of faults) {
      const col = COLUMNS[fault];
      it(`× ${col.title}: ${col.succeeds ? "rotates (exit 0), target and store agree on the new value" : "exits 1; the target and the store keep the old value"}`, async () => {
        const file = rotationConfig(fault);
        const before = (await vault().get({ key: KEY })).value.reveal();
        assert.equal(atTarget, before, "the target and the store agree before the run");
        proxy.set(injected);
        const r = record(await run(["-c", file, "secrets", "rotate", "--env", "prod", "--var", "ROTATED"]));
        const met = proxy.injected > 0;
        proxy.set({ kind: "pass" });
        const stored = (await vault().get({ key: KEY })).value.reveal();
        VALUES.add(stored);
        VALUES.add(atTarget);
        if (col.succeeds) {
          assert.equal(r.status, 0, r.stderr);
          assert.ok(met, "the rotation met no fault");
          assert.match(r.stdout, /rotation \S+: succeeded/);
          assert.notEqual(stored, before, "the store still holds the old value");
          assert.equal(atTarget, stored, "the target and the store disagree");
        } else {
          assert.equal(r.status, 1, `secrets rotate must exit 1, got ${r.status}\n${r.stderr}`);
          assert.match(r.stderr, /^error: /m);
          assert.match(r.stderr, /"rot"|store:\/\/rot\//, r.stderr);
          assert.ok(r.stderr.includes(KEY), r.stderr);
          assert.match(r.stderr, rows[2].causes[fault as keyof Causes], r.stderr);
          assert.doesNotMatch(r.stderr, /internal error/);
          assert.equal(stored, before, "a failed rotation changed the stored value");
          assert.equal(atTarget, before, "a failed rotation changed the target");
        }
      });
    }
  });

  it("the safety net: a command whose event loop empties before it finishes exits 70 with a message, never 0", async () => {
    // Simulate the bug class (a timer that does not keep the process alive): every
    // timers/promises sleep is unreferenced, so the retry backoff after a refused connection
    // leaves Node nothing to wait on while the command is still unfinished.
    const preload = join(dir, "unref-sleeps.js");
    writeFileSync(
      preload,
      `const timers = require("node:timers/promises");
const setTimeout = timers.setTimeout;
timers.setTimeout = (ms, v, options) => setTimeout(ms, v, { ...options, ref: false });
`,
    );
    const file = config(rows[0], "refused");
    const out = join(dir, "net.env");
    writeFileSync(out, "OLD=1\n");
    const r = record(await dsopsRun(["-c", file, "render", "--env", "app", "--out", out], { cwd: dir, env: { NODE_OPTIONS: `--require ${preload}` } }));
    assert.equal(r.status, 70, r.stderr);
    assert.match(r.stderr, /internal error: dsops stopped waiting before the command finished/);
    assert.equal(readFileSync(out, "utf8"), "OLD=1\n");
  });
});
