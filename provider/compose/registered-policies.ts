import type { Client } from "pg";
import { clock } from "../core/clock";
import { DsopsError, errorMessage } from "../core/errors";
import { parseStoreUri } from "../engine/refs";
import { Window, type WindowSpec } from "../schedule/window";
import { currentVersionAge, decideDue, type DueSchedule, type RotationDecision } from "../rotation/due";
import type { HistoryBackend, HistoryFilter } from "../rotation/history/types";
import type { HeldLock, LockOwner, RotationRecord } from "../rotation/types";
import { hasStaging } from "../stores/types";
import { configFromObject, type Config } from "./config";
import type { ComposedRotationEngine, ComposedRotationOptions } from "./rotation";

/**
 * RotationPolicy definitions registered in the scheduler's PostgreSQL (issue 13): the Pulumi
 * provider writes one row per policy at `up` and deletes it at `destroy`; `dsops worker
 * --scheduler` reads them, composes each into a configuration (the one the policy builds), makes
 * the policy's due decision and queues the due ones; workers rotate them. A row holds settings
 * as written (store:// references, ${VAR} expansions), never a value: a credential-like setting
 * that holds a literal is refused before anything is written. Rotation records and locks of
 * registered policies live in the same database (the postgres history backend), so a rotation
 * made by a worker is seen by Pulumi's preview and refresh, and the two never rotate at once.
 */

export const POLICY_SCHEMA = "dsops_worker";
export const POLICY_TABLE = "policies";
/** Rotation records and locks of registered policies, in the scheduler's database. */
export const POLICY_HISTORY_TABLE = "dsops_rotation_history";
/** The env and variable a policy's configuration names its secret by (as the RotationPolicy builds it). */
export const POLICY_ENV = "pulumi";
export const POLICY_VARIABLE = "SECRET";

/** What the setting names: a store:// reference or `env:NAME` holding the URL, or a URL without a password. */
export interface SchedulerSetting {
  readonly database: string;
}

/**
 * The scheduler setting (`dsops:scheduler`): `{"database": "store://…" | "env:NAME"}` (JSON) or
 * that string alone. A postgresql:// URL with a password is refused: it would sit in the stack's
 * configuration and state in plaintext.
 */
export function parseSchedulerSetting(text: string, label = "dsops:scheduler"): SchedulerSetting {
  let v: unknown = text;
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      v = JSON.parse(trimmed);
    } catch {
      throw new DsopsError(`${label}: not a JSON object {"database": "store://…" | "env:NAME"}`);
    }
  }
  const database = typeof v === "string" ? v.trim() : v && typeof v === "object" ? (v as { database?: unknown }).database : undefined;
  if (typeof database !== "string" || !database)
    throw new DsopsError(`${label}: say which PostgreSQL holds the scheduler: {"database": "store://<store>/<key>"} or {"database": "env:NAME"}`);
  const at = typeof v === "string" ? label : `${label}.database`;
  if (database.startsWith("store://")) {
    parseStoreUri(database);
    return { database };
  }
  if (database.startsWith("env:")) {
    if (!/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new DsopsError(`${at}: "${database}" is not env:NAME (a variable name)`);
    return { database };
  }
  if (/^postgres(ql)?:\/\//i.test(database)) {
    let password: string;
    try {
      password = new URL(database).password;
    } catch {
      throw new DsopsError(`${at}: not a valid postgresql:// URL`);
    }
    if (password || /[?&]password=/i.test(database))
      throw new DsopsError(`${at}: a postgresql:// URL with a password is refused (it would be stored in plaintext in the stack's configuration and state)`, {
        hint: `keep the URL in a store and write {"database": "store://<store>/<key>"}, or in an environment variable of the provider's process and write {"database": "env:NAME"}`,
      });
    return { database };
  }
  throw new DsopsError(`${at}: "${database.slice(0, 20)}…" is neither store://…, env:NAME nor a postgresql:// URL without a password`);
}

/** The connection string the setting names (`resolveRef` reads a store:// reference). Never printed. */
export async function schedulerUrl(s: SchedulerSetting, resolveRef: (uri: string) => Promise<string>, env: NodeJS.ProcessEnv = process.env, label = "dsops:scheduler"): Promise<string> {
  if (s.database.startsWith("env:")) {
    const name = s.database.slice(4);
    const v = env[name];
    if (!v) throw new DsopsError(`${label}: environment variable ${name} is not set (in the environment of the Pulumi provider's process)`);
    return v;
  }
  if (s.database.startsWith("store://")) {
    try {
      return (await resolveRef(s.database)).trim();
    } catch (e) {
      throw new DsopsError(`${label}: cannot read ${s.database}: ${errorMessage(e)}`);
    }
  }
  return s.database;
}

/** The password of a connection string (to scrub from errors). */
function passwordOf(url: string): string[] {
  try {
    const p = decodeURIComponent(new URL(url).password);
    return p ? [p] : [];
  } catch {
    return [];
  }
}

function scrub(text: string, url: string): string {
  let out = text;
  for (const s of [url, ...passwordOf(url)]) if (s) out = out.split(s).join("***");
  return out;
}

/** A registered policy's definition: what the worker needs to make its due decision and rotate it. */
export interface PolicyDefinition {
  readonly version: 1;
  /** The rotated secret, `store://<store>/<key>`. */
  readonly secret: string;
  /** The folder relative paths of the settings are read from (the Pulumi program's). */
  readonly dir: string;
  /** The policy's schedule (`every` or `cron` with its `timezone`). */
  readonly schedule: DueSchedule;
  /** The policy's maintenance windows (with their blackouts). */
  readonly windows: readonly WindowSpec[];
  /** The configuration the policy builds (dsops.yaml's shape): settings as written, references and ${VAR} left as they are. */
  readonly config: Record<string, unknown>;
  /** RotationPolicy `after`: the predecessor (its secret), its stage and soak; the policy is not due before it rotated and soaked. */
  readonly after?: { readonly policy: string; readonly stage: string; readonly soak?: string };
}

export interface RegisteredPolicy {
  /** `<project>/<stack>/<resource name>` (or the policy's secret when the program names none). */
  readonly id: string;
  readonly project: string;
  readonly stack: string;
  readonly name: string;
  readonly definition: PolicyDefinition;
  readonly updatedAt: string;
}

const CREDENTIAL = /token|secret|password|passphrase|private|credential|access_key|client_key|api_key/i;
const NOT_A_VALUE = /(_file|_path|_dir|_env|_ttl|_stage|_mount)$/i;
/** Store types whose settings are the values themselves. */
const VALUE_STORES = new Set(["literal", "mock"]);

/**
 * The credential-like settings of a definition that hold a literal rather than a store://
 * reference or a ${VAR} expansion (their paths; no value): a registration refuses them.
 */
export function literalSecrets(def: PolicyDefinition): string[] {
  const out: string[] = [];
  const isRef = (s: string) => s.startsWith("store://") || /\$\{[^}]+\}/.test(s) || s === "";
  const walk = (v: unknown, path: string, sensitive: boolean) => {
    if (typeof v === "string") {
      if (sensitive && !isRef(v)) out.push(path);
      return;
    }
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}[${i}]`, sensitive));
    // A setting is credential-like by its own name (`password`, `token`, `client_secret`…), not by an enclosing one.
    if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k, CREDENTIAL.test(k) && !NOT_A_VALUE.test(k));
  };
  const c = def.config as Record<string, Record<string, Record<string, unknown>> | undefined>;
  for (const section of ["secretStores", "providers"] as const)
    for (const [name, entry] of Object.entries(c[section] ?? {})) {
      if (VALUE_STORES.has(String(entry?.type))) out.push(`${section}.${name}.values`);
      else walk(entry, `${section}.${name}`, false);
    }
  walk(c.services, "services", false);
  walk(c.notifications, "notifications", false);
  walk(c.envs, "envs", false);
  return out;
}

/** Create the schema and table if missing (inside the caller's transaction). */
async function ensureTable(c: Client): Promise<void> {
  // Concurrent CREATE … IF NOT EXISTS can fail one session (duplicate key in pg_type): one at a time.
  await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ["dsops policy registry schema"]);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${escapeIdentifier(POLICY_SCHEMA)}`);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${table()} (id text PRIMARY KEY, project text NOT NULL, stack text NOT NULL, name text NOT NULL, secret text NOT NULL, definition jsonb NOT NULL, updated_at timestamptz NOT NULL)`,
  );
}

/** pg, loaded when a registry is used (the Pulumi providers load this module for every resource). */
const pg = () => require("pg") as typeof import("pg");
const escapeIdentifier = (s: string) => pg().escapeIdentifier(s);
const table = () => `${escapeIdentifier(POLICY_SCHEMA)}.${escapeIdentifier(POLICY_TABLE)}`;

async function withDb<T>(url: string, what: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new (pg().Client)({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: "dsops policy registry" });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return await fn(c);
  } catch (e) {
    if (e instanceof DsopsError) throw e;
    throw new DsopsError(`scheduler database: cannot ${what}: ${scrub(errorMessage(e), url)}`, {
      hint: "check that the PostgreSQL the scheduler setting names is up and that its user may create the schema dsops_worker",
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Register (insert or replace) a policy's definition, in one transaction: the row is written whole or not at all. */
export async function registerPolicy(url: string, p: Omit<RegisteredPolicy, "updatedAt">): Promise<void> {
  const literal = literalSecrets(p.definition);
  if (literal.length)
    throw new DsopsError(`cannot register the policy with the scheduler: ${literal.join(", ")} ${literal.length > 1 ? "hold literal values" : "holds a literal value"}; the registration stores settings, never secrets`, {
      hint: "write a store://<store>/<key> reference or a ${VAR} expansion there",
    });
  await withDb(url, `register policy ${p.id}`, async (c) => {
    await c.query("BEGIN");
    try {
      await ensureTable(c);
      // `after` cycles across registrations: checked under a table lock, so two registrations
      // made at once cannot each close half of a cycle.
      if (p.definition.after) {
        await c.query(`LOCK TABLE ${table()} IN SHARE ROW EXCLUSIVE MODE`);
        const rows = await c.query<{ id: string; secret: string; pred: string | null }>(`SELECT id, secret, definition->'after'->>'policy' AS pred FROM ${table()} WHERE id <> $1`, [p.id]);
        const cycle = afterCycleOf([...rows.rows, { id: p.id, secret: p.definition.secret, pred: p.definition.after.policy }], p.id);
        if (cycle) throw cycle;
      }
      await c.query(
        `INSERT INTO ${table()} (id, project, stack, name, secret, definition, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET project = EXCLUDED.project, stack = EXCLUDED.stack, name = EXCLUDED.name, secret = EXCLUDED.secret, definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at`,
        [p.id, p.project, p.stack, p.name, p.definition.secret, JSON.stringify(p.definition), new Date(clock().now()).toISOString()],
      );
      await c.query("COMMIT");
    } catch (e) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw e;
    }
  });
}

/**
 * The `after` cycle through the policy `id` among registered rows (each: its secret and its
 * `after.policy`), as the error that refuses it, naming every policy of the cycle; else undefined.
 */
export function afterCycleOf(rows: ReadonlyArray<{ id: string; secret: string; pred: string | null }>, id: string, label = "after.policy"): DsopsError | undefined {
  const self = rows.find((r) => r.id === id);
  if (!self?.pred) return undefined;
  const { afterCycle, describeAfterCycle } = require("../rotation/chain/after") as typeof import("../rotation/chain/after");
  const preds = (secret: string) => rows.filter((r) => r.secret === secret && r.pred).map((r) => r.pred as string);
  // The policy itself is known by its id; the others by the registrations holding their secret.
  const ids = (secret: string) => (secret === self.secret ? [id] : rows.filter((r) => r.secret === secret && r.pred).map((r) => r.id));
  const cycle = afterCycle(self.secret, preds);
  if (!cycle) return undefined;
  return new DsopsError(`${label}: the policies wait for each other in a cycle: ${describeAfterCycle(cycle, (s) => `policy ${ids(s).join(", ")}`)} (→: waits for); none of them would ever rotate`, {
    hint: "the policy of the first stage has no after: remove `after` from one policy of the cycle",
  });
}

/** Remove a policy's row; true when there was one. */
export async function unregisterPolicy(url: string, id: string): Promise<boolean> {
  return withDb(url, `unregister policy ${id}`, async (c) => {
    const exists = await c.query(`SELECT to_regclass($1) AS t`, [`${POLICY_SCHEMA}.${POLICY_TABLE}`]);
    if (!exists.rows[0]?.t) return false;
    const r = await c.query(`DELETE FROM ${table()} WHERE id = $1`, [id]);
    return (r.rowCount ?? 0) > 0;
  });
}

/** Every registered policy (none when the table does not exist yet). */
export async function listPolicies(url: string): Promise<RegisteredPolicy[]> {
  return withDb(url, "read the registered policies", async (c) => {
    const exists = await c.query(`SELECT to_regclass($1) AS t`, [`${POLICY_SCHEMA}.${POLICY_TABLE}`]);
    if (!exists.rows[0]?.t) return [];
    const r = await c.query<{ id: string; project: string; stack: string; name: string; definition: PolicyDefinition; updated_at: Date }>(
      `SELECT id, project, stack, name, definition, updated_at FROM ${table()} ORDER BY id`,
    );
    return r.rows.map((x) => ({ id: x.id, project: x.project, stack: x.stack, name: x.name, definition: x.definition, updatedAt: new Date(x.updated_at).toISOString() }));
  });
}

/** The rotation history (records and locks) of registered policies, in the scheduler's database; connects on first use. */
export function policyHistory(url: () => Promise<string>): HistoryBackend {
  let inner: Promise<HistoryBackend> | undefined;
  const backend = () => {
    if (!inner) {
      inner = url().then((u) => {
        const { PostgresHistory } = require("../rotation/history/postgres") as typeof import("../rotation/history/postgres");
        return new PostgresHistory({ connectionString: u, connectionTimeoutMillis: 10_000, application_name: "dsops-rotation-history" }, POLICY_HISTORY_TABLE, [u, ...passwordOf(u)]);
      });
      inner.catch(() => (inner = undefined));
    }
    return inner;
  };
  return {
    kind: "postgres",
    save: async (r: RotationRecord) => (await backend()).save(r),
    get: async (id: string) => (await backend()).get(id),
    list: async (f?: HistoryFilter) => (await backend()).list(f),
    lock: async (secret: string, owner: LockOwner): Promise<HeldLock> => (await backend()).lock(secret, owner),
    holder: async (secret: string) => (await backend()).holder(secret),
    close: async () => {
      const b = inner;
      inner = undefined;
      if (b) await (await b).close();
    },
  };
}

/** The configuration of a registered policy (the one its RotationPolicy builds). */
export function policyConfig(p: Pick<RegisteredPolicy, "id" | "definition">): Config {
  return configFromObject(p.definition.config, { dir: p.definition.dir, label: `registered policy ${p.id}`, strictRotations: true, deferUnsetEnv: true });
}

/** A registered policy's engine: its configuration, composed, with the scheduler database's history. */
export function policyEngine(p: Pick<RegisteredPolicy, "id" | "definition">, history: HistoryBackend, options: ComposedRotationOptions = {}): ComposedRotationEngine {
  const { composeRotation } = require("./rotation") as typeof import("./rotation");
  return composeRotation(policyConfig(p), { ...options, history });
}

/**
 * The policy's due decision, the one its RotationPolicy makes at plan time: the age of the
 * secret's current version (the store's date of it, else the rotation that made it), the
 * schedule, the windows and the clock. No value is read.
 */
export async function policyDecision(engine: ComposedRotationEngine, def: PolicyDefinition): Promise<RotationDecision> {
  const ref = parseStoreUri(def.secret);
  const store = engine.resolver.store(ref.store);
  if (!hasStaging(store)) throw new DsopsError(`${def.secret}: store "${ref.store}" (${store.type}) cannot stage rotations`);
  const now = clock().now();
  const stages = await store.stagesOf(ref.key);
  const last = await currentVersionAge(store, ref.key, stages.current, engine, { variable: POLICY_VARIABLE, secret: `store://${ref.store}/${ref.key}` });
  const windows = def.windows.map((w, i) => new Window(w, `windows[${i}]`));
  const d = decideDue({ schedule: def.schedule, paths: { cron: "schedule.cron", window: "schedule", every: "schedule.every" }, windows, now, ...(last !== undefined ? { lastRotatedAt: last } : {}) });
  const lastAt = last !== undefined ? { lastRotatedAt: last } : {};
  const dueAt = d.nextDueAt ?? 0;
  if (!d.due) return { state: "not-due", ...lastAt, dueAt };
  if (def.after) {
    // Multi-environment order: not before the predecessor's rotation in its earlier stage has soaked.
    const { predecessorWait } = require("../rotation/chain/after") as typeof import("../rotation/chain/after");
    const { parseDuration } = require("../core/duration") as typeof import("../core/duration");
    const pred = { secret: def.after.policy, stage: def.after.stage, soakMs: def.after.soak === undefined ? 0 : parseDuration(def.after.soak, "after.soak", { allowZero: true }) };
    const why = predecessorWait(pred, await engine.history({ secret: pred.secret, limit: 50 }), last, now);
    if (why) return { state: "blocked", ...lastAt, reason: why };
  }
  if (d.window.open) return { state: "due", ...lastAt, dueAt };
  if (d.window.blockedBy) return { state: "blocked", ...lastAt, reason: `blackout: ${d.window.blockedBy}` };
  return { state: "waiting", ...lastAt, dueAt, ...(d.window.nextOpenAt !== undefined ? { opensAt: d.window.nextOpenAt } : {}) };
}
