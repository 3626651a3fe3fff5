import { performance } from "node:perf_hooks";
import { Option, type Command } from "commander";
import { DsopsError, errorMessage } from "../../core/errors";
import type { Store } from "../../stores/types";
import { progress } from "../progress";
import { EXIT, exitWhenDone, loadConfig, parseDuration, printJson, table, warn } from "../util";
import { azureCredentialKind } from "../../stores/azure-common";

/** One store's line in the report. */
export interface DoctorResult {
  readonly store: string;
  readonly type: string;
  /** ok: check passed (or nothing to check); failed: check threw; timeout: no answer in time. */
  readonly status: "ok" | "failed" | "timeout";
  /** Milliseconds the check took. */
  readonly ms: number;
  readonly detail: string;
  readonly hint?: string;
  /** How the store authenticates, where it has a choice (Vault's auth_method). */
  readonly auth?: string;
}

/** Checks in flight at once. */
const CONCURRENCY = 16;
const DEFAULT_TIMEOUT_MS = 10_000;

/** `dsops doctor`: connectivity and credentials of every store, checked concurrently. */
export function register(program: Command): void {
  program
    .command("doctor")
    .description("check each store's connectivity and credentials; exit 1 when any check fails")
    .option("--json", "machine-readable output")
    .option("--timeout <duration>", "time each store's check may take (default: the store's timeout_ms, at most 10s)")
    .option("-s, --store <name...>", "check only these stores")
    .addOption(new Option("-e, --env <env>", "check only the stores this env's variables use").conflicts("store"))
    .action(async (o: { json?: boolean; timeout?: string; store?: string[]; env?: string }, cmd: Command) => {
      const timeout = o.timeout !== undefined ? parseDuration(o.timeout, "--timeout") : undefined;
      const config = loadConfig(cmd);
      const names = o.env !== undefined ? storesOfEnv(config, o.env) : (o.store ?? Object.keys(config.stores));
      if (o.env !== undefined && names.length === 0) {
        if (o.json) printJson({ ok: true, stores: [] });
        else process.stderr.write(`env "${o.env}" uses no store: nothing to check\n`);
        return;
      }
      for (const n of names) if (!config.stores[n]) throw new DsopsError(`unknown store "${n}"`, { hint: `stores: ${Object.keys(config.stores).join(", ") || "none"}` });
      if (names.length === 0) throw new DsopsError("the configuration defines no stores", { hint: "add one under secretStores:" });
      // A check abandoned at its timeout may leave a socket open: end the process when done.
      exitWhenDone();
      const { createStore } = require("../../stores/registry") as typeof import("../../stores/registry");
      const { clock } = require("../../core/clock") as typeof import("../../core/clock");
      const bar = progress("checking stores");
      let done = 0;
      // Create every store first (loading SDKs is synchronous work that would count against the
      // checks already running), then check them concurrently.
      const created = names.map((name) => {
        const settings = config.stores[name];
        try {
          return { name, settings, store: createStore(name, settings, { configDir: config.dir, clock: clock(), env: process.env, onWarning: warn }) };
        } catch (e) {
          return { name, settings, error: e };
        }
      });
      const results = await pool(created, CONCURRENCY, async (c) => {
        const limit = timeout ?? Math.min(c.settings.timeout_ms ?? DEFAULT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
        try {
          const s = c.settings;
          const auth = s.type === "vault" ? s.auth_method : s.type === "azure.keyvault" || s.type === "azure.identity" || s.type === "azure" ? azureCredentialKind(s) : undefined;
          const r = await checkOne(c.name, c.settings.type, limit, () => {
            if (c.store) return c.store;
            throw c.error;
          });
          return auth ? { ...r, auth, ...(r.status === "ok" ? { detail: `${r.detail} (${s.type === "vault" ? "auth_method" : "credential"} ${auth})` } : {}) } : r;
        } finally {
          bar.update(++done, names.length);
        }
      });
      bar.end();
      const failed = results.filter((r) => r.status !== "ok").length;
      const { describePlugins, pluginLines } = require("./providers") as typeof import("./providers");
      const plugins = describePlugins();
      if (o.json) printJson({ ok: failed === 0, stores: results, ...(plugins ? { plugins } : {}) });
      else {
        if (plugins) process.stdout.write(pluginLines(plugins).replace(/^\n/, "") + "\n");
        const rows = [["STORE", "TYPE", "STATUS", "TIME", "DETAIL"]];
        for (const r of results) rows.push([r.store, r.type, r.status, `${r.ms}ms`, r.detail + (r.hint ? ` (hint: ${r.hint})` : "")]);
        process.stdout.write(table(rows));
        process.stdout.write(failed ? `\n${failed} of ${results.length} stores failed\n` : `\nall ${results.length} stores ok\n`);
      }
      if (failed) process.exitCode = EXIT.user;
    });
}

async function checkOne(name: string, type: string, timeoutMs: number, create: () => Store): Promise<DoctorResult> {
  const start = performance.now();
  const ms = () => Math.round(performance.now() - start);
  let store: Store | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    store = create();
    if (!store.check) return { store: name, type, status: "ok", ms: ms(), detail: `nothing to check (${type} stores need no connection)` };
    const timedOut = Symbol("timeout");
    const outcome = await Promise.race([
      store.check().then(() => undefined),
      new Promise<typeof timedOut>((resolve) => (timer = setTimeout(() => resolve(timedOut), timeoutMs))),
    ]);
    if (outcome === timedOut) return { store: name, type, status: "timeout", ms: ms(), detail: `no answer within ${timeoutMs}ms` };
    return { store: name, type, status: "ok", ms: ms(), detail: "connected and authenticated" };
  } catch (e) {
    const hint = e instanceof DsopsError ? e.hint : undefined;
    return { store: name, type, status: "failed", ms: ms(), detail: errorMessage(e).split("\n")[0], ...(hint ? { hint } : {}) };
  } finally {
    if (timer) clearTimeout(timer);
    if (store?.close) {
      // A client stuck on an unanswered request may not close promptly; do not wait long for it.
      let t: NodeJS.Timeout | undefined;
      await Promise.race([store.close().catch(() => undefined), new Promise((resolve) => (t = setTimeout(resolve, 1000)))]);
      clearTimeout(t);
    }
  }
}

/** Map `items` through `fn` with at most `limit` calls in flight; results in input order. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The stores the variables of `env` read from, in the order of secretStores. */
function storesOfEnv(config: ReturnType<typeof loadConfig>, env: string): string[] {
  const vars = config.envs[env];
  if (!vars) {
    const { suggest } = require("../../core/suggest") as typeof import("../../core/suggest");
    const envs = Object.keys(config.envs);
    const near = suggest(env, envs);
    throw new DsopsError(`unknown env "${env}"`, { hint: near ? `did you mean "${near}"?` : `envs: ${envs.join(", ") || "none"}` });
  }
  const used = new Set(Object.values(vars).flatMap((v) => (v.ref ? [v.ref.store] : [])));
  return Object.keys(config.stores).filter((n) => used.has(n));
}
