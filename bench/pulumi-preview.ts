/**
 * Benchmark (not a test): `pulumi preview` of a stack with N SecretReferences on moto_server
 * against the same stack shape with N do-nothing dynamic resources. Prints both medians and
 * the ratio (target: at most 1.2). Drift checks are batched: 200 diffs make ~10 store calls.
 *   npm run bench -- pulumi-preview [counts] [runs]      (default counts 200,1000, runs 3)
 * counts is a comma list (`pulumi-preview 200` for the quick one alone): creating and previewing
 * the two 1,000-resource stacks takes several minutes.
 */
import { readFileSync } from "node:fs";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { startMoto, motoCredentials } from "../tests/support/moto";
import { PulumiProject } from "../tests/support/pulumi";
import { loadLine, row } from "./support/measure";

const counts = (process.argv[2] ?? "200,1000").split(",").map(Number);
const runs = Number(process.argv[3] ?? 3);
/** BENCH_KEEP=1 keeps the two program folders for inspection. */
const keep = process.env.BENCH_KEEP === "1";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * CPU time (user+sys, ms) of this process's waited-for children so far, from /proc/self/stat
 * (Linux; undefined elsewhere): the CLI and everything it waited for (language host, program,
 * provider processes). On a shared machine it varies far less with the load than wall time.
 */
function childCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command name: field 3 is the state; cutime and cstime are fields 16 and 17, in clock ticks (USER_HZ, 100 on Linux).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

function timePreview(p: PulumiProject, count: number): { ms: number; cpuMs?: number } {
  const cpu0 = childCpuMs();
  const t = process.hrtime.bigint();
  const r = p.ok(["preview", "--json"]);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const cpu1 = childCpuMs();
  const summary = (JSON.parse(r.stdout) as { changeSummary: Record<string, number> }).changeSummary;
  if (summary.same !== count + 1) throw new Error(`preview was not clean: ${JSON.stringify(summary)}`);
  return { ms, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuMs: cpu1 - cpu0 } : {}) };
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  for (const count of counts) await bench(count);
}

async function bench(count: number): Promise<void> {
  const moto = await startMoto();
  const projects: PulumiProject[] = [];
  try {
    const client = new SecretsManagerClient({ endpoint: moto.endpoint, region: "us-east-1", credentials: motoCredentials, maxAttempts: 5 /* moto answers 500 now and then under load */ });
    for (let i = 0; i < count; i += 10)
      await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => client.send(new CreateSecretCommand({ Name: `bench/s${i + j}`, SecretString: `v${i + j}` }))));
    client.destroy();

    const refs = new PulumiProject(
      "bench-refs",
      `const dsops = require("@dsops/pulumi");\nfor (let i = 0; i < ${count}; i++) new dsops.SecretReference("s" + i, { ref: "store://aws/bench/s" + i });\n`,
    );
    refs.write("dsops.yaml", `secretStores:\n  aws: { type: aws.secretsmanager, endpoint: "${moto.endpoint}", region: us-east-1, access_key_id: test, secret_access_key: test }\n`);
    const noop = new PulumiProject(
      "bench-noop",
      `const pulumi = require("@pulumi/pulumi");\nconst provider = { async create() { return { id: "x", outs: {} }; }, async diff() { return { changes: false }; } };\nclass Noop extends pulumi.dynamic.Resource { constructor(n) { super(provider, n, {}, {}, "bench", "Noop"); } }\nfor (let i = 0; i < ${count}; i++) new Noop("s" + i);\n`,
    );
    projects.push(refs, noop);
    for (const p of projects) p.timeoutMs = 20 * 60_000;
    for (const p of projects) {
      p.ok(["stack", "init", "bench"]);
      if (p === refs) p.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
      process.stderr.write(`creating ${count} resources in ${p.dir}…\n`);
      p.ok(["up", "--yes", "--skip-preview"]);
    }
    const refRuns: Array<{ ms: number; cpuMs?: number }> = [];
    const noopRuns: Array<{ ms: number; cpuMs?: number }> = [];
    for (let i = 0; i < runs; i++) {
      noopRuns.push(timePreview(noop, count));
      refRuns.push(timePreview(refs, count));
    }
    const refTimes = refRuns.map((r) => r.ms);
    const noopTimes = noopRuns.map((r) => r.ms);
    const a = median(refTimes);
    const b = median(noopTimes);
    console.log(`# pulumi preview, ${count} resources (${loadLine()}); medians of ${runs} interleaved runs`);
    console.log(`pulumi preview, ${count} SecretReferences on moto: median ${a.toFixed(0)} ms (${refTimes.map((x) => x.toFixed(0)).join(", ")})`);
    console.log(`pulumi preview, ${count} do-nothing dynamic resources: median ${b.toFixed(0)} ms (${noopTimes.map((x) => x.toFixed(0)).join(", ")})`);
    const refCpu = refRuns.map((r) => r.cpuMs).filter((x): x is number => x !== undefined);
    const noopCpu = noopRuns.map((r) => r.cpuMs).filter((x): x is number => x !== undefined);
    if (refCpu.length && noopCpu.length)
      console.log(`CPU (user+sys of the CLI and its children): median ${median(refCpu).toFixed(0)} ms vs ${median(noopCpu).toFixed(0)} ms, ratio ${(median(refCpu) / median(noopCpu)).toFixed(2)}×`);
    console.log(row(`pulumi preview, ${count} SecretReferences vs ${count} no-op`, `${a.toFixed(0)} ms`, a / b, 1.2));
  } finally {
    if (!keep) for (const p of projects) p.cleanup();
    await moto.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
