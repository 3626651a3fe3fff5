/**
 * Benchmark (not a test): resolve 1,000 secrets held in moto_server with the engine, against a
 * plain loop of GetSecretValue with the same SDK. Prints wall time, calls made and the ratio.
 * Target: the engine at least 10 times faster, with calls close to ceil(1000/20) = 50.
 *   npm run bench -- resolve-moto      (or: node dist/bench/resolve-moto.js [count])
 */
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
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
  } finally {
    await moto.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
