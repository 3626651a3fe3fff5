/**
 * Rotate 50 PostgreSQL users (alternating-users, with verification) through the engine, on a
 * throwaway PostgreSQL 15, against the floor: the same ALTER ROLE plus a login and SELECT 1 done
 * directly with pg. Prints the median per rotation, the total, and the ratio (target ≤ 3×).
 * Not a test: `npm run bench -- rotate-postgres [count]`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { parseConfig } from "../provider/compose/config";
import { systemClock } from "../provider/core/clock";
import { Secret } from "../provider/core/secret";
import { composeRotation } from "../provider/compose/rotation";
import { generate } from "../provider/rotation/generator";
import { scramVerifier } from "../provider/rotation/targets/postgresql";
import { FileStore } from "../provider/stores/file";
import { startPostgres } from "../tests/support/postgres";

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 50);
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "dsops-bench-rot-"));
  const env = { ...process.env, DSOPS_FILE_KEY: "bench-key" };
  const admin = new Client({ host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, database: "postgres" });
  try {
    await admin.connect();
    const store = new FileStore("local", { type: "file", path: join(dir, "s.store") }, { configDir: dir, clock: systemClock, env });
    await store.put("pg/admin", new Secret(JSON.stringify({ username: pg.adminUser, password: pg.adminPassword })));
    let vars = "";
    for (let i = 0; i < n; i++) {
      for (const s of ["a", "b", "f"]) await admin.query(`CREATE ROLE u${i}_${s} LOGIN`);
      const pw = generate().reveal();
      await admin.query(`ALTER ROLE u${i}_a PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      await store.put(`app/u${i}`, new Secret(JSON.stringify({ username: `u${i}_a`, password: pw })));
      vars += `    U${i}:\n      from: "store://local/app/u${i}"\n      rotation: { service: db, strategy: alternating-users, users: [u${i}_a, u${i}_b] }\n`;
    }
    const yaml = `secretStores:\n  local: { type: file, path: ./s.store }\nservices:\n  db: { type: postgresql, host: 127.0.0.1, port: ${pg.port}, admin: "store://local/pg/admin" }\nenvs:\n  bench:\n${vars}`;
    writeFileSync(join(dir, "dsops.yaml"), yaml);
    const config = parseConfig(yaml, { file: join(dir, "dsops.yaml"), env });

    // Floor: what any rotation must do at least — the same ALTER ROLE, then a login with the new password and SELECT 1.
    const floor: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const pw = generate().reveal();
      await admin.query(`ALTER ROLE ${escapeIdentifier(`u${i}_f`)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(pw))}`);
      const c = new Client({ host: pg.host, port: pg.port, user: `u${i}_f`, password: pw, database: "postgres" });
      await c.connect();
      await c.query("SELECT 1");
      await c.end();
      floor.push(performance.now() - t0);
    }

    const engine = composeRotation(config, { env });
    const times: number[] = [];
    try {
      await engine.rotate("bench", "U0"); // warm: admin connection, modules
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const r = await engine.rotate("bench", `U${i}`);
        times.push(performance.now() - t0);
        if (r.record.status !== "succeeded") throw new Error(`U${i}: ${r.record.status}`);
      }
    } finally {
      await engine.close();
    }
    const fTotal = floor.reduce((a, b) => a + b, 0);
    const eTotal = times.reduce((a, b) => a + b, 0);
    const ratio = median(times) / median(floor);
    process.stdout.write(
      [
        `rotate ${n} PostgreSQL users (alternating-users, verified; file store, file history)`,
        `  engine: median ${ms(median(times))} per rotation, total ${ms(eTotal)}`,
        `  floor (ALTER ROLE + login + SELECT 1 with pg): median ${ms(median(floor))}, total ${ms(fTotal)}`,
        `  ratio (median): ${ratio.toFixed(2)}x  (total: ${(eTotal / fTotal).toFixed(2)}x; target <= 3x) ${ratio <= 3 ? "OK" : "OVER TARGET"}`,
      ].join("\n") + "\n",
    );
  } finally {
    await admin.end().catch(() => undefined);
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
});
