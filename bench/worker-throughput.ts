/**
 * `dsops worker` throughput: 1,000 due rotations of a cheap target (the webhook protocol, to a
 * local HTTP receiver), run by 1, 2 and 4 worker processes on a throwaway PostgreSQL 15 queue,
 * against the floor: the same rotations run by one process without the queue (`dsops rotation
 * run --due`). Each round moves DSOPS_CLOCK 31 days on (ttl 30d), so all 1,000 are due again.
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
import { FileStore } from "../provider/stores/file";
import { evaluateDue } from "../provider/cli/commands/rotation-run";
import { DSOPS_BIN } from "../tests/support/cli";
import { startHttpReceiver } from "../tests/support/http-receiver";
import { startPostgres } from "../tests/support/postgres";

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

function yamlOf(n: number, hookUrl: string, prefix: string): string {
  let vars = "";
  for (let i = 0; i < n; i++) vars += `    ${prefix}${i}:\n      from: "store://local/app/${prefix}${i}"\n      rotation: { service: hook, strategy: single-user, user: u${i}, ttl: 30d }\n`;
  return `secretStores:\n  local: { type: file, path: ./s.store }\nservices:\n  hook: { type: webhook, url: "${hookUrl}/rotate" }\nenvs:\n  bench:\n${vars}`;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const pg = await startPostgres();
  const hook = await startHttpReceiver();
  hook.setBody('{"success":true}');
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-worker-"));
  const env = { DSOPS_FILE_KEY: "bench-key", DSOPS_WORKER_DATABASE_URL: pg.connectionString(pg.adminUser, pg.adminPassword) };
  const lines: string[] = [];
  try {
    const store = new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock: systemClock, env: { ...process.env, ...env } });
    for (let i = 0; i < n; i++) await store.put(`app/R${i}`, new Secret(`initial-${i}-${Math.random().toString(36).slice(2)}`));
    writeFileSync(join(dir, "dsops.yaml"), yamlOf(n, hook.url, "R"));
    let round = 0;
    const clockOf = () => ({ ...env, DSOPS_CLOCK: new Date(T0 + round * 31 * DAY).toISOString() });

    // Floor: one process, no queue.
    round++;
    let t = performance.now();
    const floorOut = await run(["rotation", "run", "--due", "--json"], dir, clockOf());
    const floorS = (performance.now() - t) / 1000;
    const floorRotated = (JSON.parse(floorOut) as Array<{ result: string }>).filter((r) => r.result === "rotated").length;
    if (floorRotated !== n) throw new Error(`floor: ${floorRotated} of ${n} rotated`);
    const floorRate = n / floorS;
    lines.push(`${n} due rotations of a webhook target (local receiver), file store, file history`);
    lines.push(`  floor (dsops rotation run --due, one process, no queue): ${floorS.toFixed(1)} s, ${floorRate.toFixed(1)} rotations/s`);

    for (const workers of [1, 2, 4]) {
      round++;
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

    // The due decision of 10,000 rotations in one pass, in this process (1,000 of them with a history).
    const big = 10_000;
    const bigYaml = yamlOf(n, hook.url, "R").replace(/envs:\n {2}bench:\n/, `envs:\n  bench:\n${yamlOf(big - n, hook.url, "X").split("  bench:\n")[1]}`);
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
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
