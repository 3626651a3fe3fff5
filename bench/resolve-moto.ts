/**
 * Benchmark (not a test): resolve 1,000 secrets held in moto_server with the engine, against a
 * plain loop of GetSecretValue with the same SDK. Prints wall time, calls made and the ratio.
 * Target: the engine at least 10 times faster, with calls close to ceil(1000/20) = 50.
 *
 * Then `dsops render` (the CLI, a child process) of 100 and 1,000 of those secrets against its
 * floor: the start-up of `dsops get` of a tiny literal config + ceil(N/20) BatchGetSecretValue
 * calls alone through one SDK client, at most 16 in flight (the engine's default concurrency).
 * The calls are timed in a child process of their own (loading the SDK, making the client,
 * opening its connections, all cold, as render must), minus `node -e 0` (Node's own start is in
 * the start-up already): timed in this warm process, they left out the ≈ 35 ms SDK load and the
 * cold code, which render cannot skip (the warm figure is printed too). Target: ≤ 1.2× the floor.
 * Medians of paired, interleaved runs; CPU time (user+sys) is printed beside each wall time.
 *   npm run bench -- resolve-moto      (or: node dist/bench/resolve-moto.js [count] [render-runs])
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { BatchGetSecretValueCommand, CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { BIN, cpuMs as cpu, cpuProbe, interleaved, loadLine, median, ms, row, timedNode } from "./support/measure";
import { configFromObject } from "../provider/compose/config";
import { Resolver } from "../provider/engine/resolve";
import { startMoto, motoCredentials } from "../tests/support/moto";

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1000);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const moto = await startMoto();
  try {
    const client = new SecretsManagerClient({ endpoint: moto.endpoint, region: "us-east-1", credentials: motoCredentials, maxAttempts: 1 });
    const names = Array.from({ length: count }, (_, i) => `bench/app/secret-${String(i).padStart(4, "0")}`);
    process.stderr.write(`seeding ${count} secrets in moto…\n`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n, j) => client.send(new CreateSecretCommand({ Name: n, SecretString: `value-${i + j}` }))));
    }

    // Warm both paths once (SDK load, connection set-up), then measure.
    await client.send(new GetSecretValueCommand({ SecretId: names[0] }));

    let loopCalls = 0;
    const t0 = process.hrtime.bigint();
    for (const n of names) {
      await client.send(new GetSecretValueCommand({ SecretId: n }));
      loopCalls++;
    }
    const loopMs = Number(process.hrtime.bigint() - t0) / 1e6;

    const config = configFromObject({
      secretStores: { aws: { type: "aws.secretsmanager", endpoint: moto.endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test" } },
      envs: { bench: Object.fromEntries(names.map((n, i) => [`V${i}`, { from: `store://aws/${n}` }])) },
    });
    const resolver = new Resolver(config);
    const t1 = process.hrtime.bigint();
    const res = await resolver.resolveEnv("bench");
    const engineMs = Number(process.hrtime.bigint() - t1) / 1e6;
    if (Object.keys(res.variables).length !== count) throw new Error("engine resolved the wrong number of variables");
    if (res.variables.V7.value.reveal() !== "value-7") throw new Error("engine resolved a wrong value");
    await resolver.close();
    client.destroy();

    const rows = [
      ["path", "wall ms", "calls"],
      ["plain GetSecretValue loop", loopMs.toFixed(0), String(loopCalls)],
      ["dsops engine (batched)", engineMs.toFixed(0), String(resolver.stats.calls)],
    ];
    for (const r of rows) console.log(r[0].padEnd(28) + r[1].padStart(9) + r[2].padStart(8));
    console.log(`secrets: ${count}; speed-up (loop / engine): ${(loopMs / engineMs).toFixed(1)}x (target >= 10x); calls: ${resolver.stats.calls} (ideal ceil(${count}/20) = ${Math.ceil(count / 20)})`);

    await renderVsFloor(moto.endpoint, names, Number(process.argv[3] ?? 5));
  } finally {
    await moto.stop();
  }
}

/** `dsops render` of N secrets on moto vs start-up of a tiny config + the batched calls alone. */
async function renderVsFloor(endpoint: string, names: readonly string[], runs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-render-"));
  const client = new SecretsManagerClient({ endpoint, region: "us-east-1", credentials: motoCredentials, maxAttempts: 1 });
  try {
    writeFileSync(join(dir, "tiny.yaml"), 'version: 1\nenvs:\n  dev:\n    GREETING: { literal: "hello" }\n');
    const sizes = [100, 1000].filter((n) => n <= names.length);
    for (const n of sizes) {
      const vars = names.slice(0, n).map((k, i) => `    V${i}: { from: "store://aws/${k}" }`);
      writeFileSync(
        join(dir, `render-${n}.yaml`),
        `version: 1\nsecretStores:\n  aws: { type: aws.secretsmanager, endpoint: "${endpoint}", region: us-east-1, access_key_id: test, secret_access_key: test }\nenvs:\n  bench:\n${vars.join("\n")}\n`,
      );
    }
    const tiny = [BIN, "-c", "tiny.yaml", "get", "--env", "dev", "--var", "GREETING"];
    const renderArgs = (n: number) => [BIN, "-c", `render-${n}.yaml`, "render", "--env", "bench", "--out", join(dir, "out.env")];
    const probe = cpuProbe(dir); // each child reports its own CPU time (user+sys)
    writeFileSync(join(dir, "calls.js"), callsScript(require.resolve("@aws-sdk/client-secrets-manager")));
    const callsArgs = (n: number) => [join(dir, "calls.js"), endpoint, JSON.stringify(names.slice(0, n))];
    await batches(client, names.slice(0, 20)); // the client's first call (connection, SDK warm-up)
    console.log(`\n# dsops render of N secrets on moto vs its floor (${loadLine()}); medians of ${runs} interleaved rounds`);
    for (const n of sizes) {
      // A warm-up of each, then rounds of: the warm calls (in this process), then the children.
      const r = interleaved(runs, {
        node: () => timedNode(["-r", probe, "-e", "0"], dir),
        startup: () => timedNode(["-r", probe, ...tiny], dir),
        calls: () => timedNode(["-r", probe, ...callsArgs(n)], dir),
        render: () => timedNode(["-r", probe, ...renderArgs(n)], dir),
      });
      const warm: number[] = [];
      for (let i = 0; i < runs; i++) warm.push(await batches(client, names.slice(0, n)));
      const floor = ms(r.startup) + ms(r.calls) - ms(r.node);
      const floorCpu = cpu(r.startup) + cpu(r.calls) - cpu(r.node);
      console.log(
        `${`floor for ${n}: start-up ${ms(r.startup).toFixed(0)} ms + ${Math.ceil(n / 20)} batched calls ${(ms(r.calls) - ms(r.node)).toFixed(0)} ms`.padEnd(52)} ${`${floor.toFixed(0)} ms`.padStart(18)}  CPU ${floorCpu.toFixed(0)} ms (the calls in this warm process: ${median(warm).toFixed(0)} ms)`,
      );
      console.log(row(`dsops render, ${n} secrets on moto vs the floor`, `${ms(r.render).toFixed(0)} ms`, ms(r.render) / floor, 1.2));
      console.log(row(`  the same in CPU time (user+sys)`, `${cpu(r.render).toFixed(0)} ms`, cpu(r.render) / floorCpu, 1.2));
    }
  } finally {
    client.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor's calls as a script of their own: `node calls.js ENDPOINT KEYS-JSON` (`batches` below, cold). */
function callsScript(sdk: string): string {
  return `process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const { SecretsManagerClient, BatchGetSecretValueCommand } = require(${JSON.stringify(sdk)});
const keys = JSON.parse(process.argv[3]);
const client = new SecretsManagerClient({ endpoint: process.argv[2], region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts: 1 });
const groups = [];
for (let i = 0; i < keys.length; i += 20) groups.push(keys.slice(i, i + 20));
let next = 0;
const worker = async () => {
  while (next < groups.length) {
    const g = groups[next++];
    const r = await client.send(new BatchGetSecretValueCommand({ SecretIdList: g }));
    if ((r.SecretValues ?? []).length !== g.length) throw new Error("BatchGetSecretValue returned " + (r.SecretValues ?? []).length + " of " + g.length);
  }
};
Promise.all(Array.from({ length: Math.min(16, groups.length) }, worker)).then(() => client.destroy(), (e) => { console.error(e); process.exit(1); });
`;
}

/** ceil(N/20) BatchGetSecretValue calls for `keys`, at most 16 in flight; returns the wall ms. */
async function batches(client: SecretsManagerClient, keys: readonly string[]): Promise<number> {
  const groups: string[][] = [];
  for (let i = 0; i < keys.length; i += 20) groups.push(keys.slice(i, i + 20));
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < groups.length) {
      const g = groups[next++];
      const r = await client.send(new BatchGetSecretValueCommand({ SecretIdList: g }));
      if ((r.SecretValues ?? []).length !== g.length) throw new Error(`BatchGetSecretValue returned ${r.SecretValues?.length} of ${g.length}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, groups.length) }, worker));
  return performance.now() - t0;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
