/**
 * What the benchmarks share: running the CLI as a child and timing it, medians, and the line
 * each figure is printed on (figure, ratio, target, MET / NOT MET). Not a benchmark itself
 * (scripts/bench.sh runs dist/bench/*.js only, not this folder).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

export const BIN = join(__dirname, "..", "..", "..", "bin", "dsops");

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Run {
  ms: number;
  /** Peak resident set of the child in MB, when it was run with `rssProbe`. */
  rssMb?: number;
  /** CPU time (user + system) of the child itself in ms, when it was run with `cpuProbe`. */
  cpuMs?: number;
  stdout: string;
}

/**
 * A preload that prints the process's peak RSS at exit (`node -r FILE …`): Node gives a parent
 * no rusage of its children, so the child reports its own.
 */
export function rssProbe(dir: string): string {
  const file = join(dir, "rss-probe.js");
  writeFileSync(file, `process.on("exit", () => process.stderr.write("\\nbench-max-rss-kb " + process.resourceUsage().maxRSS + "\\n"));\n`);
  return file;
}

/**
 * A preload that prints the process's own CPU time (user + system) at exit: on a shared machine
 * CPU time varies less with the load than wall time does. A child's children are not counted
 * (`dsops exec`'s figure is the wrapper's own).
 */
export function cpuProbe(dir: string): string {
  const file = join(dir, "cpu-probe.js");
  writeFileSync(file, `process.on("exit", () => { const u = process.cpuUsage(); process.stderr.write("\\nbench-cpu-us " + (u.user + u.system) + "\\n"); });\n`);
  return file;
}

/** Runs `node ARGS` in `cwd`, fails on a non-zero exit, returns its wall time. */
export function timedNode(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Run {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", maxBuffer: 256 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const rss = /bench-max-rss-kb (\d+)/.exec(r.stderr);
  const cpu = /bench-cpu-us (\d+)/.exec(r.stderr);
  return { ms, rssMb: rss ? Number(rss[1]) / 1024 : undefined, cpuMs: cpu ? Number(cpu[1]) / 1000 : undefined, stdout: r.stdout };
}

/**
 * Runs each named command once per round, the rounds one after the other, so every command
 * sees the same machine load (paired, interleaved); returns each command's runs.
 */
export function interleaved<K extends string>(rounds: number, cmds: Record<K, () => Run>): Record<K, Run[]> {
  const out = Object.fromEntries(Object.keys(cmds).map((k) => [k, [] as Run[]])) as Record<K, Run[]>;
  for (const k of Object.keys(cmds) as K[]) cmds[k](); // one warm-up each (file-system cache, compile cache)
  for (let i = 0; i < rounds; i++) for (const k of Object.keys(cmds) as K[]) out[k].push(cmds[k]());
  return out;
}

export const ms = (runs: readonly Run[]): number => median(runs.map((r) => r.ms));
export const cpuMs = (runs: readonly Run[]): number => median(runs.map((r) => r.cpuMs ?? NaN));

/** The machine's load, printed with the figures (they mean little on a busy machine). */
export function loadLine(): string {
  return `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`;
}

/**
 * One line of the table: `figure  value  ratio R×  target ≤ T×: MET|NOT MET`. With a unit
 * (e.g. "MB") the ratio is the value itself, compared with the target in that unit.
 */
export function row(figure: string, value: string, ratio: number, target: number, unit?: string): string {
  const verdict = ratio <= target ? "MET" : "NOT MET";
  const measure = unit ? `target ≤ ${target} ${unit}` : `ratio ${ratio.toFixed(2)}×  target ≤ ${target}×`;
  return `${figure.padEnd(52)} ${value.padStart(18)}  ${measure}: ${verdict}`;
}

/** CPU time (user + sys, ms) of this process's waited-for children so far, from /proc (Linux; 0 elsewhere). */
function childrenCpuMs(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of stat(5) (cutime, cstime), in clock ticks of 10 ms.
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Runs `file ARGS` in `cwd` (any program: the single executable), fails on a non-zero exit,
 * returns its wall time and its CPU time (user + sys; 10 ms ticks, so compare means).
 */
export function timedCmd(file: string, args: readonly string[], cwd: string): Run & { cpuMs: number } {
  const c0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(file, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", maxBuffer: 256 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, cpuMs: childrenCpuMs() - c0, stdout: r.stdout };
}

export const meanCpu = (runs: readonly (Run & { cpuMs?: number })[]): number => runs.reduce((a, r) => a + (r.cpuMs ?? 0), 0) / runs.length;
