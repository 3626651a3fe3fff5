/**
 * Start-up and per-variable cost of the dsops command line (issue 20's targets), each figure
 * printed with its ratio and target. Not a test: every figure is the median of paired,
 * interleaved runs (each round runs every command once), so all see the same machine load.
 *
 *   node dist/bench/cli-startup.js [runs] [plan-runs]     (defaults 15 and 5)
 *
 * - `dsops get` / `render` / `exec` of a tiny config (literal store) vs `node -e 0`: ≤ 1.5×.
 *   `dsops get` on the embedded file store is printed too (no target: it reads a file).
 * - the `dsops exec` wrapper: (exec -- node -e 0) − (node -e 0) vs `node -e 0`: ≤ 1.5×.
 * - the optional single executable (dist/bin/dsops, or DSOPS_BENCH_BIN), when built: its get /
 *   render / exec beside the Node CLI's, same target, with CPU time (user + sys).
 * - `dsops plan` of 1,000 variables vs 1 variable: ≤ 1.3× (wall, and CPU time); 10,000: linear
 *   (the CPU cost per variable above 1 at 10,000 ≤ 1.5× the one at 1,000) and peak RSS under
 *   300 MB. CPU time: each child's own (a preload reports it).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, cpuMs, cpuProbe, interleaved, loadLine, meanCpu, ms, row, rssProbe, timedCmd, timedNode, type Run } from "./support/measure";

const RUNS = Number(process.argv[2] ?? 15);
const PLAN_RUNS = Number(process.argv[3] ?? 5);

function planConfig(n: number): string {
  const lines = ["version: 1", "secretStores:", "  local: { type: file }", "envs:", "  prod:"];
  for (let i = 0; i < n; i++) lines.push(`    VAR_${i}: { from: "store://local/app/var-${i}" }`);
  return lines.join("\n") + "\n";
}

/**
 * The optional single executable (`npm run build:bin` writes dist/bin/dsops; DSOPS_BENCH_BIN names
 * another), when it exists: get / render / exec beside the Node CLI's, all in the same paired,
 * interleaved rounds, with wall time, ratio to `node -e 0` and mean CPU time (user + sys).
 */
function singleExecutable(dir: string, out: string): void {
  const bin = process.env.DSOPS_BENCH_BIN || join(__dirname, "..", "bin", "dsops");
  if (!existsSync(bin)) {
    console.log(`\n# single executable: none at ${bin} (npm run build:bin, or DSOPS_BENCH_BIN=…)`);
    return;
  }
  const cmds = {
    get: ["get", "--env", "dev", "--var", "GREETING"],
    render: ["render", "--env", "dev", "--out", out],
    exec: ["exec", "--env", "dev", "--", process.execPath, "-e", "0"],
  };
  console.log(`\n# single executable ${bin} vs the Node CLI (${loadLine()}); medians of ${RUNS} interleaved rounds, CPU = mean user+sys of the whole process, from its rusage (10 ms ticks)`);
  const s = interleaved(RUNS, {
    node: () => timedCmd(process.execPath, ["-e", "0"], dir),
    ...Object.fromEntries(
      Object.entries(cmds).flatMap(([k, args]) => [
        [`${k}Node`, () => timedCmd(process.execPath, [BIN, ...args], dir)],
        [`${k}Bin`, () => timedCmd(bin, args, dir)],
      ]),
    ),
  }) as Record<string, (Run & { cpuMs?: number })[]>;
  const node = ms(s.node);
  const cpu = (k: string) => `CPU ${meanCpu(s[k]).toFixed(0)} ms`;
  console.log(`${"node -e 0 (the floor)".padEnd(52)} ${`${node.toFixed(1)} ms`.padStart(18)}  ${cpu("node")}`);
  for (const k of Object.keys(cmds)) {
    console.log(`${row(`dsops ${k}, Node CLI vs node -e 0`, `${ms(s[`${k}Node`]).toFixed(1)} ms`, ms(s[`${k}Node`]) / node, 1.5)}  ${cpu(`${k}Node`)}`);
    console.log(`${row(`dsops ${k}, single executable vs node -e 0`, `${ms(s[`${k}Bin`]).toFixed(1)} ms`, ms(s[`${k}Bin`]) / node, 1.5)}  ${cpu(`${k}Bin`)}`);
  }
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-startup-"));
  try {
    writeFileSync(
      join(dir, "dsops.yaml"),
      'version: 1\nsecretStores:\n  local: { type: file }\nenvs:\n  dev:\n    GREETING: { literal: "hello" }\n    PORT: { literal: "8080" }\n  files:\n    TOKEN: { from: "store://local/app/token" }\n',
    );
    const set = spawnSync(process.execPath, [BIN, "secrets", "set", "--store", "local", "--key", "app/token"], { cwd: dir, input: "bench-value", encoding: "utf8" });
    if (set.status !== 0) throw new Error(`secrets set failed: ${set.stderr}`);
    const out = join(dir, "out.env");

    console.log(`# dsops start-up (${loadLine()}); medians of ${RUNS} interleaved rounds`);
    // Each child reports its own CPU time too (-r cpu-probe.js; `node -e 0` the same way).
    const cpu = cpuProbe(dir);
    const s = interleaved(RUNS, {
      node: () => timedNode(["-r", cpu, "-e", "0"], dir),
      get: () => timedNode(["-r", cpu, BIN, "get", "--env", "dev", "--var", "GREETING"], dir),
      render: () => timedNode(["-r", cpu, BIN, "render", "--env", "dev", "--out", out], dir),
      exec: () => timedNode(["-r", cpu, BIN, "exec", "--env", "dev", "--", process.execPath, "-e", "0"], dir),
      getFile: () => timedNode(["-r", cpu, BIN, "get", "--env", "files", "--var", "TOKEN"], dir),
    });
    const node = ms(s.node);
    console.log(`${"node -e 0 (the floor)".padEnd(52)} ${`${node.toFixed(1)} ms`.padStart(18)}`);
    for (const [k, label] of [
      ["get", "dsops get, tiny config (literal)"],
      ["render", "dsops render, tiny config (literal)"],
      ["exec", "dsops exec -- node -e 0, tiny config"],
    ] as const)
      console.log(row(`${label} vs node -e 0`, `${ms(s[k]).toFixed(1)} ms`, ms(s[k]) / node, 1.5));
    // The wrapper's own cost, paired round by round: exec of `node -e 0` minus `node -e 0`.
    const overhead = ms(s.exec.map((r, i) => ({ ...r, ms: r.ms - s.node[i].ms })));
    console.log(row("dsops exec wrapper overhead vs node -e 0", `${overhead.toFixed(1)} ms`, overhead / node, 1.5));
    console.log(`${"dsops get, file store (no target)".padEnd(52)} ${`${ms(s.getFile).toFixed(1)} ms`.padStart(18)}  ratio ${(ms(s.getFile) / node).toFixed(2)}×`);
    // CPU time (user + system), the process's own (exec: the wrapper's, without its child's).
    const nodeCpu = cpuMs(s.node);
    for (const [k, label] of [
      ["node", "CPU: node -e 0"],
      ["get", "CPU: dsops get, tiny config"],
      ["render", "CPU: dsops render, tiny config"],
      ["exec", "CPU: dsops exec (the wrapper's own)"],
    ] as const)
      console.log(`${label.padEnd(52)} ${`${cpuMs(s[k]).toFixed(1)} ms`.padStart(18)}  ratio ${(cpuMs(s[k]) / nodeCpu).toFixed(2)}×`);

    singleExecutable(dir, out);

    const probe = rssProbe(dir);
    const plans: Record<string, string> = {};
    for (const n of [1, 1000, 10000]) {
      const d = join(dir, `plan-${n}`);
      mkdirSync(d);
      writeFileSync(join(d, "dsops.yaml"), planConfig(n));
      plans[n] = d;
    }
    const cpuOf = cpuProbe(dir);
    const plan = (n: number) => () => timedNode(["-r", probe, "-r", cpuOf, BIN, "plan", "--env", "prod"], plans[n]);
    console.log(`\n# dsops plan of one env, no store called (${loadLine()}); medians of ${PLAN_RUNS} interleaved rounds`);
    const p = interleaved(PLAN_RUNS, { one: plan(1), k1: plan(1000), k10: plan(10000) });
    const [t1, t1k, t10k] = [ms(p.one), ms(p.k1), ms(p.k10)];
    const rss = Math.max(...p.k10.map((r) => r.rssMb ?? NaN));
    console.log(`${"dsops plan, 1 variable".padEnd(52)} ${`${t1.toFixed(1)} ms`.padStart(18)}`);
    console.log(row("dsops plan, 1,000 variables vs 1 variable", `${t1k.toFixed(1)} ms`, t1k / t1, 1.3));
    const [c1, c1k, c10k] = [cpuMs(p.one), cpuMs(p.k1), cpuMs(p.k10)];
    console.log(row(`  the same in CPU time (user+sys; ${c1.toFixed(0)} ms for 1)`, `${c1k.toFixed(0)} ms`, c1k / c1, 1.3));
    // Linearity from CPU time (user+sys) when the children report it: wall time on a busy machine
    // can make the 1,000-variable cost vanish into the noise.
    const [b1, b1k, b10k] = Number.isFinite(c1) ? [c1, c1k, c10k] : [t1, t1k, t10k];
    const per1k = (b1k - b1) / 999;
    const per10k = (b10k - b1) / 9999;
    console.log(
      row(
        `dsops plan, 10,000 variables: per-variable ${Number.isFinite(c1) ? "CPU " : ""}cost vs at 1,000 (${(per10k * 1000).toFixed(1)} vs ${(per1k * 1000).toFixed(1)} µs)`,
        `${t10k.toFixed(1)} ms`,
        per10k / per1k,
        1.5,
      ),
    );
    console.log(row("dsops plan, 10,000 variables: peak RSS", `${rss.toFixed(0)} MB`, rss, 300, "MB"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
