/**
 * `dsops worker` throughput: 1,000 due rotations of a cheap target (the webhook protocol, to a
 * local HTTP receiver), run by 1, 2 and 4 worker processes on a throwaway PostgreSQL 15 queue,
 * against the floor: the same rotations run by one process without the queue (`dsops rotation
 * run --due`). Each round moves DSOPS_CLOCK 31 days on (ttl 30d), so all 1,000 are due again.
 * Twice: with the file store and the file history (one machine's set-up, whose files are
 * rewritten under locks every process shares), and with OpenBao's KV v2 and the PostgreSQL
 * history (what several workers share in production).
 * Then the due decision of 10,000 rotations in one pass (the scheduler's `evaluateDue`), with
 * its CPU time (process.cpuUsage; target under a second).
 * Not a test: `npm run bench -- worker-throughput [count]`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseConfig } from "../provider/compose/config";
import { composeRotation } from "../provider/compose/rotation";
import { systemClock } from "../provider/core/clock";
import { Secret } from "../provider/core/secret";
import { createStore } from "../provider/stores/registry";
import type { StoreSettings } from "../provider/stores/settings";
import { evaluateDue } from "../provider/cli/commands/rotation-run";
import { DSOPS_BIN } from "../tests/support/cli";
import { startHttpReceiver } from "../tests/support/http-receiver";
import { haveBao, startOpenBao } from "../tests/support/openbao";
import { startPostgres, type RunningPostgres } from "../tests/support/postgres";

const DAY = 86_400_000;
const T0 = Date.parse("2026-11-20T12:00:00Z");

/** Run the built CLI asynchronously (the receiver in this process must keep answering); rejects on a non-zero exit. */
function run(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [DSOPS_BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`dsops ${args.join(" ")}: exit ${code}\n${err.slice(-2000)}`))));
  });
}

/** Where the secrets and the rotation history live. */
interface Backend {
  readonly label: string;
  /** The `local` store's settings. */
  readonly store: Record<string, unknown>;
  /** dsops.yaml lines before `envs:` (services besides the webhook target). */
  readonly extra: string;
  /** Before every key (Vault's: the KV mount). */
  readonly prefix: string;
  /** Each rotation's `history` setting (none: the file history). */
  readonly history?: string;
}

function yamlOf(n: number, hookUrl: string, prefix: string, b: Backend): string {
  let vars = "";
  for (let i = 0; i < n; i++) vars += `    ${prefix}${i}:\n      from: "store://local/${b.prefix}app/${prefix}${i}"\n      rotation: { service: hook, strategy: single-user, user: u${i}, ttl: 30d${b.history ? `, history: ${b.history}` : ""} }\n`;
  return `secretStores:\n  local: ${JSON.stringify(b.store)}\nservices:\n  hook: { type: webhook, url: "${hookUrl}/rotate" }\n${b.extra}envs:\n  bench:\n${vars}`;
}

function fileBackend(): Backend {
  return { label: "file store, file history", store: { type: "file", path: "./s.store" }, extra: "", prefix: "" };
}

/** OpenBao's KV v2 (the dev server's `secret/` mount) and the PostgreSQL history in the queue's database. */
function baoBackend(address: string, token: string, pg: RunningPostgres): Backend {
  return {
    label: "OpenBao KV v2 store, PostgreSQL history",
    store: { type: "vault", address, token },
    extra: `  history-db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, database: postgres, admin: "store://local/secret/pg/admin" }\n`,
    prefix: "secret/",
    history: "{ type: postgres, service: history-db }",
  };
}

/**
 * The floor, then 1, 2 and 4 workers, on one back-end; `round` is shared by every back-end's
 * runs (each run is 31 days after the previous one), so each run's due instants are new.
 */
async function throughput(n: number, b: Backend, dir: string, hookUrl: string, env: NodeJS.ProcessEnv, clock: { round: number }, lines: string[]): Promise<void> {
  const ctx = { configDir: dir, clock: systemClock, env: { ...process.env, ...env } };
  const yaml = yamlOf(n, hookUrl, "R", b);
  writeFileSync(join(dir, "dsops.yaml"), yaml);
  // The store as dsops.yaml declares it (its settings parsed, defaults filled in).
  const settings = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env: ctx.env }).stores.local as StoreSettings;
  const store = createStore("local", settings, ctx);
  if (!store.put) throw new Error(`${b.label}: the store cannot be written`);
  for (let i = 0; i < n; i++) await store.put(`${b.prefix}app/R${i}`, new Secret(`initial-${i}-${Math.random().toString(36).slice(2)}`));
  if (b.extra) await store.put(`${b.prefix}pg/admin`, new Secret(String(env.BENCH_PG_ADMIN)));
  const clockOf = () => ({ ...env, DSOPS_CLOCK: new Date(T0 + clock.round * 31 * DAY).toISOString() });

  // Floor: one process, no queue.
  clock.round++;
  let t = performance.now();
  const floorOut = await run(["rotation", "run", "--due", "--json"], dir, clockOf());
  const floorS = (performance.now() - t) / 1000;
  const floorRotated = (JSON.parse(floorOut) as Array<{ result: string }>).filter((r) => r.result === "rotated").length;
  if (floorRotated !== n) throw new Error(`floor: ${floorRotated} of ${n} rotated`);
  const floorRate = n / floorS;
  lines.push(`${n} due rotations of a webhook target (local receiver), ${b.label}`);
  lines.push(`  floor (dsops rotation run --due, one process, no queue): ${floorS.toFixed(1)} s, ${floorRate.toFixed(1)} rotations/s`);

  for (const workers of [1, 2, 4]) {
    clock.round++;
    const e = clockOf();
    t = performance.now();
    await run(["worker", "--scheduler", "--concurrency", "0", "--once"], dir, e);
    const schedS = (performance.now() - t) / 1000;
    t = performance.now();
    const outs = await Promise.all(Array.from({ length: workers }, () => run(["worker", "--once"], dir, e)));
    const s = (performance.now() - t) / 1000;
    const rotated = outs.reduce((a, o) => a + o.split("\n").filter((l) => / rotated \(version /.test(l)).length, 0);
    if (rotated !== n) throw new Error(`${workers} workers: ${rotated} of ${n} rotated`);
    lines.push(
      `  ${workers} worker process(es): ${s.toFixed(1)} s, ${(n / s).toFixed(1)} rotations/s, ${(n / s / floorRate).toFixed(2)}x the floor (scheduler pass queuing ${n}: ${schedS.toFixed(1)} s)`,
    );
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const pg = await startPostgres();
  const hook = await startHttpReceiver();
  hook.setBody('{"success":true}');
  const bao = haveBao() ? await startOpenBao() : undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-worker-"));
  const baoDir = mkdtempSync(join(tmpdir(), "dsops-bench-worker-bao-"));
  const env = {
    DSOPS_FILE_KEY: "bench-key",
    DSOPS_WORKER_DATABASE_URL: pg.connectionString(pg.adminUser, pg.adminPassword),
    BENCH_PG_ADMIN: JSON.stringify({ username: pg.adminUser, password: pg.adminPassword }),
  };
  const lines: string[] = [];
  const clock = { round: 0 };
  try {
    await throughput(n, fileBackend(), dir, hook.url, env, clock, lines);
    if (bao) await throughput(n, baoBackend(bao.address, bao.rootToken, pg), baoDir, hook.url, env, clock, lines);
    else lines.push("OpenBao KV v2 store, PostgreSQL history: skipped (no `bao` on PATH; scripts/peers/install.sh installs it)");
    const round = clock.round;
    let t: number;

    // The due decision of 10,000 rotations in one pass, in this process (1,000 of them with a history).
    const big = 10_000;
    const bigYaml = yamlOf(n, hook.url, "R", fileBackend()).replace(/envs:\n {2}bench:\n/, `envs:\n  bench:\n${yamlOf(big - n, hook.url, "X", fileBackend()).split("  bench:\n")[1]}`);
    writeFileSync(join(dir, "dsops.yaml"), bigYaml);
    process.env.DSOPS_CLOCK = new Date(T0 + (round + 1) * 31 * DAY).toISOString();
    const config = parseConfig(bigYaml, { file: join(dir, "dsops.yaml"), env: { ...process.env, ...env } });
    const engine = composeRotation(config, { env: { ...process.env, ...env }, metrics: false, notifications: undefined });
    try {
      const cpu0 = process.cpuUsage();
      t = performance.now();
      const evals = await evaluateDue(engine);
      const wall = performance.now() - t;
      const cpu = process.cpuUsage(cpu0);
      const due = evals.filter((x) => x.decision?.state === "due").length;
      const cpuS = (cpu.user + cpu.system) / 1e6;
      lines.push(
        `due decision of ${evals.length} rotations in one pass (${n} with ${round} rotations each in the history): ${due} due; CPU ${cpuS.toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)}, system ${(cpu.system / 1e6).toFixed(2)}), wall ${(wall / 1000).toFixed(2)} s; target CPU < 1 s ${cpuS < 1 ? "OK" : "OVER TARGET"}`,
      );
    } finally {
      await engine.close();
    }
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await hook.close();
    await bao?.stop();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(baoDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
