import { AuthError, DsopsError, StoreError, TimeoutError, errorMessage } from "../../core/errors";
import type { Secret } from "../../core/secret";
import { formatStoreUri, parseFrom } from "../../engine/refs";
import type { RotationRecord } from "../types";
import { cloudInstances, kubernetesInstances } from "./discover";
import { defaultWaves, rolloutInstanceSchema, type RolloutEndpointDiscoverySchemaOut, type RolloutSettings } from "./settings";

/** One instance as a rollout uses it (kept in the rotation record: names, labels and settings, never a value). */
export interface RolloutInstance {
  readonly name: string;
  readonly labels: Readonly<Record<string, string | boolean | number>>;
  /** Target settings laid over the service's entry (host, port …; `admin` is a reference, not a value). */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** One wave: the instances that get the new credential together, then are verified (and monitored). */
export interface RolloutWave {
  /** The service group, when the rollout has groups. */
  readonly group?: string;
  /** `canary`, `25%`, `all`. */
  readonly label: string;
  readonly instances: string[];
}

/**
 * A rollout's progress, kept in the rotation record and saved before each instance's apply, so
 * a run killed at any instant resumes at the right wave.
 */
export interface RolloutProgress {
  readonly strategy: RolloutSettings["strategy"];
  readonly onFailure: RolloutSettings["on_failure"];
  readonly instances: RolloutInstance[];
  readonly waves: RolloutWave[];
  /** Index of the first wave not finished (waves before it are applied, verified and monitored). */
  wave: number;
  /** Instances that may hold the new credential (recorded before the apply). */
  applied: string[];
  /** Instances that hold it and logged in with it. */
  verified: string[];
  /** `continue` / `stop`: instances that failed and were put back to the old credential. */
  failed: Array<{ instance: string; wave: number; error: string }>;
  /** Rollback: instances put back to the old credential so far. */
  restored: string[];
  /** `stop`: where the rollout halted (the next run resumes there). */
  halted?: { wave: number; error: string; at: string };
}

/** A rotation record that may carry rollout progress. */
export type RolloutRecord = RotationRecord & { rollout?: RolloutProgress };

export const progressOf = (rec: RotationRecord): RolloutProgress | undefined => (rec as RolloutRecord).rollout;

/** `on_failure: stop` halted the rollout: the record stays open, the next run resumes. */
export class RolloutHalted extends Error {}

/** Display name of a wave: `wave 2/4 (db, 25%)`. */
export function waveName(p: RolloutProgress, w: number): string {
  const wave = p.waves[w];
  return `wave ${w + 1}/${p.waves.length} (${wave.group ? `${wave.group}, ` : ""}${wave.label})`;
}

export const isCanary = (i: RolloutInstance): boolean => i.labels.canary === true || i.labels.canary === "true";

function toInstance(raw: Record<string, unknown>): RolloutInstance {
  const { name, labels, ...settings } = raw as { name: string; labels?: Record<string, string | boolean | number> };
  return { name, labels: labels ?? {}, settings };
}

/** Where a URL goes, without query string or credentials (messages). */
function plainUrl(u: string): string {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/** Where the rotation runs: the config's directory (relative kubeconfig) and the environment (`${VAR}`, AWS). */
export interface DiscoveryContext {
  readonly configDir: string;
  readonly env: NodeJS.ProcessEnv;
}

/** The instances of a rollout: listed, or discovered (endpoint, kubernetes, cloud). */
export async function rolloutInstances(r: RolloutSettings, path: string, resolveRef: (ref: string) => Promise<Secret>, dc: DiscoveryContext = { configDir: process.cwd(), env: process.env }): Promise<RolloutInstance[]> {
  if (r.instances) return r.instances.map((i) => toInstance(i as Record<string, unknown>));
  const d = r.discovery as NonNullable<RolloutSettings["discovery"]>;
  const where = `${path}.discovery`;
  let list: unknown[];
  if (d.type === "kubernetes") list = await kubernetesInstances(d, where, dc.configDir);
  else if (d.type === "cloud") list = await cloudInstances(d, where, dc.env);
  else list = await endpointInstances(d, where, resolveRef, dc.env);
  const at = d.type === "endpoint" ? `${where}: ${plainUrl((d.endpoint ?? d.url) as string)}` : `${where} (${d.type})`;
  const out: RolloutInstance[] = [];
  for (const [i, raw] of list.entries()) {
    // dsops's endpoint answers name an instance by `id`.
    const item = raw && typeof raw === "object" && !("name" in raw) && typeof (raw as { id?: unknown }).id === "string" ? (({ id, ...rest }) => ({ name: id, ...rest }))(raw as { id: string }) : raw;
    const p = rolloutInstanceSchema.safeParse(item);
    if (!p.success) {
      const issue = p.error.issues[0];
      throw new DsopsError(`${at}: instance ${i}${issue.path.length ? `.${issue.path.join(".")}` : ""}: ${issue.message}`);
    }
    if (out.some((x) => x.name === p.data.name)) throw new DsopsError(`${at}: instance "${p.data.name}" is listed twice`);
    out.push(toInstance(p.data as Record<string, unknown>));
  }
  return out;
}

/** `${VAR}` / `${VAR:-default}` in a discovery token, from the environment of the run. */
function expandVars(text: string, env: NodeJS.ProcessEnv, field: string): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, dflt: string | undefined) => {
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    if (dflt !== undefined) return dflt;
    throw new DsopsError(`${field}: environment variable ${name} is not set`);
  });
}

/** The raw instances an HTTP endpoint answers (`[...]` or `{"instances": [...]}`; an instance's `id` is its name when it has no `name`). */
async function endpointInstances(d: RolloutEndpointDiscoverySchemaOut, where: string, resolveRef: (ref: string) => Promise<Secret>, env: NodeJS.ProcessEnv): Promise<unknown[]> {
  const url = (d.endpoint ?? d.url) as string;
  const at = `${where}: ${plainUrl(url)}`;
  const headers: Record<string, string> = { accept: "application/json" };
  const secrets: string[] = [];
  for (const [k, v] of Object.entries(d.headers)) {
    if (v.startsWith("store://")) {
      const s = (await resolveRef(v)).reveal();
      secrets.push(s);
      headers[k] = s;
    } else headers[k] = v;
  }
  if (d.auth) {
    const raw = d.auth.token;
    let token: string;
    if (typeof raw !== "string") {
      let ref: string;
      try {
        ref = formatStoreUri(parseFrom("from" in raw ? raw.from : raw));
      } catch (e) {
        throw new DsopsError(`${where}.auth.token: ${errorMessage(e)}`);
      }
      token = (await resolveRef(ref)).reveal();
    } else token = raw.startsWith("store://") ? (await resolveRef(raw)).reveal() : expandVars(raw, env, `${where}.auth.token`);
    if (!token) throw new DsopsError(`${where}.auth.token: empty`);
    secrets.push(token);
    headers.authorization = `Bearer ${token}`;
  }
  const scrubbed = (m: string) => secrets.reduce((acc, s) => (s ? acc.split(s).join("***") : acc), m);
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(d.timeout_ms) });
  } catch (e) {
    const n = (e as Error).name;
    if (n === "TimeoutError" || n === "AbortError") throw new TimeoutError(`${at}: no answer within ${d.timeout_ms} ms`);
    throw new StoreError(`${at}: ${scrubbed((e as { cause?: { code?: string } }).cause?.code ?? errorMessage(e))}`, true);
  }
  const text = await res.text().catch(() => "");
  if (res.status === 401 || res.status === 403)
    throw new AuthError(`${at}: HTTP ${res.status}: the endpoint refused ${d.auth || secrets.length ? "the credentials sent" : "a request without credentials"}`, {
      hint: d.auth ? "check the token of auth: {type: bearer, token}" : "give it a token: auth: {type: bearer, token: store://…}",
    });
  if (res.status < 200 || res.status > 299) throw new StoreError(`${at}: HTTP ${res.status} (expected 2xx)`, res.status === 429 || res.status >= 500);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new DsopsError(`${at}: the answer is not JSON`);
  }
  const list = Array.isArray(body) ? body : Array.isArray((body as { instances?: unknown })?.instances) ? (body as { instances: unknown[] }).instances : undefined;
  if (!list) throw new DsopsError(`${at}: expected a JSON array of instances [{"name", "labels", …settings}] (or {"instances": [...]})`);
  if (!list.length) throw new DsopsError(`${at}: no instances; a rollout needs at least one instance`);
  return list;
}

/** Cumulative percentage waves over `list`: wave i ends at ceil(p_i % of the count); empty waves are dropped. */
function percentWaves(list: RolloutInstance[], percents: readonly number[]): Array<{ label: string; instances: string[] }> {
  const out: Array<{ label: string; instances: string[] }> = [];
  let from = 0;
  for (const p of percents) {
    const upto = Math.min(list.length, Math.max(1, Math.ceil((p * list.length) / 100 - 1e-9)));
    if (upto > from) out.push({ label: `${p}%`, instances: list.slice(from, upto).map((i) => i.name) });
    from = Math.max(from, upto);
  }
  return out;
}

function matches(i: RolloutInstance, selector: Record<string, string | boolean | number>): boolean {
  return Object.entries(selector).every(([k, v]) => i.labels[k] !== undefined && String(i.labels[k]) === String(v));
}

/** Groups in dependency order (config order among those whose dependencies are done). */
function orderGroups(groups: NonNullable<RolloutSettings["groups"]>) {
  const done = new Set<string>();
  const out: typeof groups = [];
  while (out.length < groups.length) {
    const next = groups.find((g) => !done.has(g.name) && g.depends_on.every((d) => done.has(d)));
    if (!next) throw new DsopsError("rollout.groups: the groups depend on each other in a cycle");
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/**
 * The waves of a rollout: per group (in dependency order), canary instances first; `canary`:
 * the canaries as a wave of their own, then the rest (in `waves` when given, else at once);
 * `percentage`: cumulative percentage waves; `all`: one wave.
 */
export function planWaves(r: RolloutSettings, instances: RolloutInstance[], path: string): RolloutWave[] {
  let parts: Array<{ group?: string; members: RolloutInstance[] }>;
  if (r.groups) {
    const ordered = orderGroups(r.groups);
    const members = new Map<string, RolloutInstance[]>(ordered.map((g) => [g.name, []]));
    for (const g of r.groups)
      for (const n of g.instances ?? [])
        if (!instances.some((i) => i.name === n)) throw new DsopsError(`${path}.groups: group "${g.name}" names instance "${n}", which is not among the instances (${instances.map((i) => i.name).join(", ")})`);
    for (const i of instances) {
      const in_ = r.groups.filter((g) => (g.instances ? g.instances.includes(i.name) : matches(i, g.selector ?? {})));
      if (!in_.length) throw new DsopsError(`${path}.groups: instance "${i.name}" is in no group`, { hint: "list it in a group, or give a group a selector that matches its labels ({} matches every instance)" });
      if (in_.length > 1) throw new DsopsError(`${path}.groups: instance "${i.name}" is in more than one group (${in_.map((g) => g.name).join(", ")})`);
      (members.get(in_[0].name) as RolloutInstance[]).push(i);
    }
    parts = ordered.map((g) => ({ group: g.name, members: members.get(g.name) as RolloutInstance[] }));
  } else parts = [{ members: instances }];

  if (r.strategy === "canary" && !instances.some(isCanary))
    throw new DsopsError(`${path}: strategy canary needs an instance labelled canary: true (instances: ${instances.map((i) => i.name).join(", ")})`);

  const waves: RolloutWave[] = [];
  for (const part of parts) {
    if (!part.members.length) continue;
    const canaries = part.members.filter(isCanary);
    const rest = part.members.filter((i) => !isCanary(i));
    const ordered = [...canaries, ...rest];
    const g = part.group !== undefined ? { group: part.group } : {};
    if (r.strategy === "all") waves.push({ ...g, label: "all", instances: ordered.map((i) => i.name) });
    else if (r.strategy === "percentage") for (const w of percentWaves(ordered, r.waves ?? defaultWaves)) waves.push({ ...g, ...w });
    else {
      if (canaries.length) waves.push({ ...g, label: "canary", instances: canaries.map((i) => i.name) });
      if (rest.length) {
        if (r.waves) for (const w of percentWaves(rest, r.waves)) waves.push({ ...g, ...w });
        else waves.push({ ...g, label: "rest", instances: rest.map((i) => i.name) });
      }
    }
  }
  return waves;
}

/** A fresh progress for a rollout plan. */
export function newProgress(r: RolloutSettings, instances: RolloutInstance[], waves: RolloutWave[]): RolloutProgress {
  return { strategy: r.strategy, onFailure: r.on_failure, instances, waves, wave: 0, applied: [], verified: [], failed: [], restored: [] };
}
