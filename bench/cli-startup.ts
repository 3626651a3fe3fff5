/**
 * Start-up cost of the dsops command line: the median wall time of `dsops get` on the embedded
 * file store against the median of `node -e 0` (the floor any Node CLI pays), N runs each,
 * alternated so both see the same machine load. Prints the figures and their ratio; not a test.
 *
 *   node dist/bench/cli-startup.js [runs]        (default 20)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const BIN = join(__dirname, "..", "..", "bin", "dsops");
const RUNS = Number(process.argv[2] ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function timed(args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-startup-"));
  try {
    writeFileSync(join(dir, "dsops.yaml"), 'version: 1\nsecretStores:\n  local: { type: file }\nenvs:\n  dev:\n    TOKEN: { from: "store://local/app/token" }\n');
    const set = spawnSync(process.execPath, [BIN, "secrets", "set", "--store", "local", "--key", "app/token"], { cwd: dir, input: "bench-value", encoding: "utf8" });
    if (set.status !== 0) throw new Error(`secrets set failed: ${set.stderr}`);
    const get = [BIN, "get", "--env", "dev", "--var", "TOKEN"];
    // one warm-up each (file-system cache)
    timed(get, dir);
    timed(["-e", "0"], dir);
    const dsopsMs: number[] = [];
    const nodeMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      dsopsMs.push(timed(get, dir));
      nodeMs.push(timed(["-e", "0"], dir));
    }
    const d = median(dsopsMs);
    const n = median(nodeMs);
    console.log(`runs: ${RUNS} each (node ${process.version})`);
    console.log(`dsops get (file store): median ${d.toFixed(1)} ms (min ${Math.min(...dsopsMs).toFixed(1)}, max ${Math.max(...dsopsMs).toFixed(1)})`);
    console.log(`node -e 0:              median ${n.toFixed(1)} ms (min ${Math.min(...nodeMs).toFixed(1)}, max ${Math.max(...nodeMs).toFixed(1)})`);
    console.log(`ratio: ${(d / n).toFixed(2)}x (dsops's own start-up and work: ${(d - n).toFixed(1)} ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
