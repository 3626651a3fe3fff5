import { clock as currentClock } from "../core/clock";
import { ConfigError, DsopsError } from "../core/errors";
import type { Config } from "../engine/config/load";
import type { ComplianceReport, CredentialFacts, CredentialKind, Framework, GovernanceReader } from "../report/index";
import type { RotationEngine } from "../rotation/engine";
import type { VariableRotation } from "../rotation/settings";

/**
 * The compliance report of a configuration: the facts of each rotated variable (its policy,
 * owner, store and target), its rotation records and its store's version metadata, handed to
 * provider/report as plain data. The report reads the stores through `status` alone, which asks
 * each store for stage ids (`stagesOf`) and the current version's metadata (`describe`): no
 * value is ever read to build a report.
 */

/** What a report reads: a RotationEngine's read-only views (no rotate, no value). */
export type ComplianceSource = Pick<RotationEngine, "status" | "history" | "rotated" | "config">;

export interface ComplianceOptions {
  readonly framework?: Framework;
  readonly env?: string;
  /** Milliseconds since the epoch (default: the project clock). */
  readonly now?: number;
  /** Approvals and break-glass records to list (none by default). */
  readonly governance?: GovernanceReader;
}

/** Credentials whose target mints a key rather than setting a password. */
const KEY_TARGETS = new Set(["aws.iam"]);
const PASSWORD_TARGETS = new Set(["postgresql", "mysql", "redis"]);
const KINDS: readonly CredentialKind[] = ["password", "key", "secret"];

/** The credential kind: `metadata.credential` when set, else from the target type. */
function kindOf(config: Config, env: string, variable: string, targetType: string, strategy: string): CredentialKind {
  const meta = config.envs[env][variable].spec.metadata;
  const given = meta?.credential;
  if (given !== undefined) {
    if (typeof given !== "string" || !KINDS.includes(given as CredentialKind))
      throw new ConfigError(`envs.${env}.${variable}.metadata.credential: expected one of ${KINDS.join(", ")} (what the compliance report treats the credential as), got ${JSON.stringify(given)}`);
    return given as CredentialKind;
  }
  if (KEY_TARGETS.has(targetType)) return "key";
  if (PASSWORD_TARGETS.has(targetType) || strategy === "alternating-users" || strategy === "single-user") return "password";
  return "secret";
}

function ownerOf(config: Config, env: string, variable: string): string | undefined {
  const owner = config.envs[env][variable].spec.metadata?.owner;
  if (owner === undefined) return undefined;
  if (typeof owner !== "string" || !owner.trim()) throw new ConfigError(`envs.${env}.${variable}.metadata.owner: expected a non-empty string (the credential's owner, a team or a person), got ${JSON.stringify(owner)}`);
  return owner;
}

/** `compliance.waivers[i].credential` names a rotated variable (or `<env>/*` an env with one). */
function checkWaivers(
  waivers: NonNullable<Config["raw"]["compliance"]>["waivers"] | undefined,
  rotated: ReadonlyArray<{ env: string; variable: string }>,
  /** Waivers to check (default all); the others are not in this report. */
  applies: (credential: string) => boolean = () => true,
): void {
  (waivers ?? []).forEach((w, i) => {
    if (!applies(w.credential)) return;
    const [env, variable] = w.credential.split("/");
    const ok = rotated.some((v) => v.env === env && (variable === "*" || v.variable === variable));
    if (!ok) {
      const known = rotated.map((v) => `${v.env}/${v.variable}`);
      const msg = `compliance.waivers[${i}].credential: "${w.credential}" is not a rotated variable${known.length ? ` (rotated: ${known.slice(0, 12).join(", ")}${known.length > 12 ? ", …" : ""})` : " (no variable has a rotation block)"}`;
      throw new ConfigError(msg, [msg], { hint: "name it as <env>/<VARIABLE>, or <env>/* for every rotated variable of the env" });
    }
  });
}

/** The facts of each rotated variable (of `env`), from the configuration and the stores' version metadata. */
export async function credentialFacts(source: ComplianceSource, env?: string): Promise<CredentialFacts[]> {
  const { config } = source;
  const status = await source.status(env);
  return status.map((s) => {
    const v = config.envs[s.env][s.variable];
    const spec = v.spec.rotation as VariableRotation;
    const store = v.ref?.store ?? "-";
    const targetType = String((config.raw.services[spec.service] as { type?: unknown } | undefined)?.type ?? "-");
    const owner = ownerOf(config, s.env, s.variable);
    return {
      env: s.env,
      variable: s.variable,
      secret: s.secret,
      store,
      storeType: config.stores[store]?.type ?? "-",
      service: spec.service,
      targetType,
      kind: kindOf(config, s.env, s.variable, targetType, spec.strategy),
      ...(owner ? { owner } : {}),
      policy: {
        strategy: spec.strategy,
        ...(spec.schedule ? { schedule: spec.schedule } : {}),
        ...(spec.ttl !== undefined ? { ttl: String(spec.ttl) } : {}),
        windows: (spec.windows ?? []).map((w) => `${[w.schedule].flat().join(" | ")} for ${w.duration} (${w.timezone ?? "UTC"})${w.enabled === false ? " [disabled]" : ""}${w.blackouts?.length ? `, ${w.blackouts.length} blackout(s)` : ""}`),
        ...(spec.grace_period !== undefined ? { gracePeriod: String(spec.grace_period) } : {}),
        healthChecks: spec.health?.length ?? 0,
      },
      versions: {
        ...(s.currentVersion ? { current: s.currentVersion } : {}),
        ...(s.previousVersion ? { previous: s.previousVersion } : {}),
        ...(s.pendingVersion ? { pending: s.pendingVersion } : {}),
        ...(s.updatedAt ? { updatedAt: s.updatedAt } : {}),
      },
      ...(s.problem ? { problem: s.problem } : {}),
    };
  });
}

/** Build the compliance report of `source`'s configuration. */
export async function complianceReport(source: ComplianceSource, options: ComplianceOptions = {}): Promise<ComplianceReport> {
  const { buildComplianceReport } = require("../report/build") as typeof import("../report/build");
  const { config } = source;
  if (options.env !== undefined && !config.envs[options.env])
    throw new DsopsError(`env: unknown env "${options.env}" (envs: ${Object.keys(config.envs).join(", ") || "none"})`);
  // `pulumi/<name>` waives a stack's RotationPolicy (getComplianceReport's policies): not in this report, unless the file has an env of that name.
  const applies = (credential: string) => !credential.startsWith(`${POLICY_ENV}/`) || config.envs[POLICY_ENV] !== undefined;
  checkWaivers(config.raw.compliance?.waivers, source.rotated(), applies);
  const credentials = await credentialFacts(source, options.env);
  const records = await source.history(options.env ? { env: options.env } : {});
  const governance = options.governance ? await options.governance.list(options.env ? { env: options.env } : {}) : [];
  return buildComplianceReport({
    now: options.now ?? currentClock().now(),
    framework: options.framework ?? "all",
    ...(options.env ? { env: options.env } : {}),
    ...(config.file ? { source: config.file } : {}),
    credentials,
    records,
    waivers: (config.raw.compliance?.waivers ?? []).filter((w) => applies(w.credential)),
    governance,
  });
}

/**
 * The approvals and break-glass records of the histories of `source`'s rotated variables
 * (provider/rotation/governance.ts keeps them in the same backends as the rotation records and
 * lists them with `{ governance: true }`). A backend that knows no governance records answers
 * with rotation records only, which are skipped: the report then lists none.
 */
export function historyGovernanceReader(source: ComplianceSource & Pick<RotationEngine, "historyFor">): GovernanceReader {
  return {
    async list(filter) {
      const { governanceEvents } = require("../report/governance") as typeof import("../report/governance");
      const { listGovernance } = require("../rotation/governance") as typeof import("../rotation/governance");
      return governanceEvents(await listGovernance(source, filter.env ? { env: filter.env } : {}));
    },
  };
}

/** A stack's RotationPolicy in a report: its resource name, its secret and the read-only engine of the configuration it builds. */
export interface PolicyReportSource {
  /** The resource's name: the report names the credential `pulumi/<name>`. */
  readonly name: string;
  /** `store://<store>/<key>`, as its records name it. */
  readonly secret: string;
  readonly engine: ComplianceSource & Pick<RotationEngine, "historyFor" | "resolver" | "rotate">;
}

/** The env the report names a stack's RotationPolicy under. */
export const POLICY_ENV = "pulumi";

/**
 * The compliance report of a stack's RotationPolicy resources (and, with `config`, of a
 * dsops.yaml's rotated variables beside them): the same report as `dsops report compliance`,
 * each policy a credential `pulumi/<name>` with its rotation history, its approval requests and
 * its break-glass records (read from the histories its engine keeps them in, plus `extra`, the
 * file stores' default histories). Waivers come from `waiversFrom` (the stack's dsops.yaml) and
 * may name `pulumi/<name>`. No value is read.
 */
export async function policiesComplianceReport(
  policies: readonly PolicyReportSource[],
  options: ComplianceOptions & { config?: ComplianceSource & Pick<RotationEngine, "historyFor">; waiversFrom?: Config; extra?: (engine: PolicyReportSource["engine"]) => import("../rotation/history/types").HistoryBackend[] } = {},
): Promise<ComplianceReport> {
  const { buildComplianceReport } = require("../report/build") as typeof import("../report/build");
  const { governanceEvents } = require("../report/governance") as typeof import("../report/governance");
  const { listGovernance } = require("../rotation/governance") as typeof import("../rotation/governance");
  const names = new Set<string>();
  for (const p of policies) {
    if (names.has(p.name)) throw new DsopsError(`policies: two policies are named "${p.name}" (each is reported as ${POLICY_ENV}/<name>)`);
    names.add(p.name);
  }
  const dsopsYaml = options.config;
  if (options.env !== undefined && options.env !== POLICY_ENV && dsopsYaml && !dsopsYaml.config.envs[options.env])
    throw new DsopsError(`env: unknown env "${options.env}" (envs: ${[POLICY_ENV, ...Object.keys(dsopsYaml.config.envs)].join(", ")})`);
  const withPolicies = options.env === undefined || options.env === POLICY_ENV;
  const credentials: CredentialFacts[] = [];
  const records: import("../rotation/types").RotationRecord[] = [];
  const governance: import("../report/types").GovernanceEvent[] = [];
  if (dsopsYaml && options.env !== POLICY_ENV) {
    credentials.push(...(await credentialFacts(dsopsYaml, options.env)));
    records.push(...(await dsopsYaml.history(options.env ? { env: options.env } : {})));
    governance.push(...(await historyGovernanceReader(dsopsYaml).list(options.env ? { env: options.env } : {})));
  }
  if (withPolicies)
    for (const p of policies) {
      const label = <T extends { env: string; variable: string }>(x: T): T => ({ ...x, env: POLICY_ENV, variable: p.name });
      credentials.push(...(await credentialFacts(p.engine)).map(label));
      records.push(...(await p.engine.history({ secret: p.secret })).filter((r) => r.secret === p.secret).map(label));
      const govRecords = await listGovernance(p.engine, { secret: p.secret }, options.extra?.(p.engine) ?? []);
      governance.push(...governanceEvents(govRecords.filter((r) => r.secret === p.secret).map(label)));
    }
  const waiverConfig = options.waiversFrom ?? dsopsYaml?.config;
  // Without the dsops.yaml's variables in the report, only its waivers of policies (pulumi/<name>) apply.
  const applies = (credential: string) => Boolean(dsopsYaml) || credential.startsWith(`${POLICY_ENV}/`);
  const all = waiverConfig?.raw.compliance?.waivers ?? [];
  checkWaivers(all, [...(dsopsYaml ? dsopsYaml.rotated() : []), ...policies.map((p) => ({ env: POLICY_ENV, variable: p.name }))], applies);
  const waivers = all.filter((w) => applies(w.credential));
  const source = dsopsYaml?.config.file ?? waiverConfig?.file;
  return buildComplianceReport({
    now: options.now ?? currentClock().now(),
    framework: options.framework ?? "all",
    ...(options.env ? { env: options.env } : {}),
    ...(source ? { source } : {}),
    credentials,
    records,
    waivers,
    governance: governance.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0)),
  });
}

/** Library API: the report of a configuration, read with a bare rotation engine (no notification, no metric), closed afterwards. */
export async function complianceReportOf(config: Config, options: ComplianceOptions = {}): Promise<ComplianceReport> {
  const { RotationEngine } = require("../rotation/engine") as typeof import("../rotation/engine");
  const engine = new RotationEngine(config);
  try {
    return await complianceReport(engine, { governance: historyGovernanceReader(engine), ...options });
  } finally {
    await engine.close();
  }
}
