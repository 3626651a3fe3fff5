import { formatDuration } from "../core/duration";
import { lastRotationAt, variableDueAt } from "../rotation/due";
import type { RotationRecord } from "../rotation/types";
import { controlIds, waiverExpiresAt, type ControlId, type Waiver } from "./settings";
import type { ComplianceInput, ComplianceReport, ControlInfo, ControlResult, CredentialFacts, CredentialReport, RotationRef, Verdict, WaiverRef, WaiverReport } from "./types";

/**
 * The compliance report, computed from plain data (configuration, rotation records, version
 * metadata, waivers): this module never sees a store or a value. Each control gives each
 * credential pass, fail or not-applicable with the reason.
 */

const DAY = 86_400_000;
/** PCI-DSS v4.0 8.3.9: passwords changed at least once every 90 days. */
const PCI_PASSWORD_MAX_AGE = 90 * DAY;

export const controlCatalogue: Readonly<Record<ControlId, ControlInfo>> = {
  "pci-dss-8.3.9": {
    id: "pci-dss-8.3.9",
    framework: "pci-dss",
    title: "PCI-DSS v4.0 8.3.9: passwords changed at least once every 90 days",
    checks: "password credentials: the policy's change period (ttl or schedule) is at most 90 days and the current password is younger than 90 days and not overdue",
  },
  "pci-dss-8.6.3": {
    id: "pci-dss-8.6.3",
    framework: "pci-dss",
    title: "PCI-DSS v4.0 8.6.3: application and system account passwords changed periodically",
    checks: "password and application secrets: the policy defines a change period (ttl or schedule) and the current credential is not past it",
  },
  "pci-dss-3.6": {
    id: "pci-dss-3.6",
    framework: "pci-dss",
    title: "PCI-DSS v4.0 3.6: cryptographic keys are secured",
    checks: "keys: kept in a secret store that versions them (not a literal or the environment) and assigned to an owner (custodian)",
  },
  "pci-dss-3.7": {
    id: "pci-dss-3.7",
    framework: "pci-dss",
    title: "PCI-DSS v4.0 3.7: key-management lifecycle (cryptoperiod, retirement)",
    checks: "keys: a cryptoperiod is defined (ttl or schedule), the current key is within it, and the last rotation retired the old key",
  },
  "soc2-cc6.1": {
    id: "soc2-cc6.1",
    framework: "soc2",
    title: "SOC 2 CC6.1: logical access security over protected information",
    checks: "the credential is kept in a secret store (not a literal or the environment) whose version metadata can be read",
  },
  "soc2-cc6.2": {
    id: "soc2-cc6.2",
    framework: "soc2",
    title: "SOC 2 CC6.2: credentials issued through an authorised, recorded process",
    checks: "the credential has an owner (metadata.owner) and its current version was issued by a recorded rotation (who, when)",
  },
  "soc2-cc6.3": {
    id: "soc2-cc6.3",
    framework: "soc2",
    title: "SOC 2 CC6.3: access removed when no longer needed",
    checks: "after the last rotation the old credential was revoked (retire step), or is in a grace period that has not ended; a break-glass window was followed by a rotation",
  },
  "soc2-cc7.2": {
    id: "soc2-cc7.2",
    framework: "soc2",
    title: "SOC 2 CC7.2: anomalies are monitored and acted on",
    checks: "failed and rolled-back rotations are counted; the control fails while the newest rotation is failed, rolled back or unfinished (rotations of dsops chaos experiments are counted apart, not as incidents)",
  },
};

const appliesTo = (framework: ComplianceInput["framework"]) => controlIds.filter((id) => framework === "all" || controlCatalogue[id].framework === framework);

const iso = (t: number) => new Date(t).toISOString();
/** A report's durations: whole days from two days up (`30d`, `172d`), else hours or minutes. */
function days(ms: number): string {
  const m = Math.max(0, ms);
  if (m >= 2 * DAY) return `${Math.floor(m / DAY)}d`;
  return formatDuration(Math.max(60_000, Math.round(m / 60_000) * 60_000));
}
const isoOf = (r: RotationRecord) => r.finishedAt ?? r.startedAt;

function ref(r: RotationRecord): RotationRef {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    startedAt: r.startedAt,
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    strategy: r.strategy,
    who: r.who,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

interface Facts {
  readonly c: CredentialFacts;
  /** Records of this credential, newest first. */
  readonly recs: readonly RotationRecord[];
  readonly now: number;
  readonly issuedAt?: number;
  readonly maxAgeMs?: number;
  readonly dueAt?: number;
  readonly governance: NonNullable<ComplianceInput["governance"]>;
}

type Check = (f: Facts) => { verdict: Verdict; reason: string };

const periodOf = (f: Facts) => [f.c.policy.ttl !== undefined ? `ttl ${f.c.policy.ttl}` : undefined, f.c.policy.schedule ? `schedule "${f.c.policy.schedule}"` : undefined].filter(Boolean).join(" and ");
const ageText = (f: Facts) => (f.issuedAt === undefined ? "" : `age ${days(f.now - f.issuedAt)}`);

/** The change-period test shared by 8.6.3 and 3.7: a period is defined, and the credential is not past it. */
function withinPeriod(f: Facts, what: string): { verdict: Verdict; reason: string } {
  if (f.maxAgeMs === undefined) return { verdict: "fail", reason: `no change period: the rotation policy has neither ttl nor schedule (rotated by hand only)` };
  if (f.issuedAt === undefined) return { verdict: "fail", reason: `the ${what}'s age is unknown: never rotated, and the store gives no date for its current version` };
  if (f.dueAt !== undefined && f.dueAt <= f.now) return { verdict: "fail", reason: `${ageText(f)}: overdue since ${iso(f.dueAt)} (${periodOf(f)})` };
  return { verdict: "pass", reason: `${ageText(f)} within the change period of ${days(f.maxAgeMs)} (${periodOf(f)}); next due ${f.dueAt !== undefined ? iso(f.dueAt) : "-"}` };
}

/** A rotation run by `dsops chaos` (its reason says so), or the recovery after one. */
const isChaos = (r: RotationRecord) => r.reason?.startsWith("dsops chaos:") === true;

const lastRotate = (f: Facts) => f.recs.find((r) => r.kind === "rotate" && (r.status === "succeeded" || r.status === "grace"));

const checks: Readonly<Record<ControlId, Check>> = {
  "pci-dss-8.3.9": (f) => {
    if (f.c.kind !== "password") return { verdict: "not-applicable", reason: `not a password (${f.c.kind}); see ${f.c.kind === "key" ? "3.6/3.7" : "8.6.3"}` };
    const p = withinPeriod(f, "password");
    if (p.verdict === "fail") return p;
    if ((f.maxAgeMs as number) > PCI_PASSWORD_MAX_AGE) return { verdict: "fail", reason: `the change period ${days(f.maxAgeMs as number)} (${periodOf(f)}) is longer than 90 days` };
    if (f.now - (f.issuedAt as number) > PCI_PASSWORD_MAX_AGE) return { verdict: "fail", reason: `${ageText(f)} is over 90 days` };
    return { verdict: "pass", reason: `${ageText(f)}, change period ${days(f.maxAgeMs as number)} (${periodOf(f)}): at most 90 days` };
  },
  "pci-dss-8.6.3": (f) => (f.c.kind === "key" ? { verdict: "not-applicable", reason: "a cryptographic key: see 3.6/3.7" } : withinPeriod(f, f.c.kind)),
  "pci-dss-3.6": (f) => {
    if (f.c.kind !== "key") return { verdict: "not-applicable", reason: `not a cryptographic key (${f.c.kind})` };
    if (["literal", "env"].includes(f.c.storeType)) return { verdict: "fail", reason: `kept in store "${f.c.store}" of type ${f.c.storeType}, which neither protects nor versions it` };
    if (!f.c.owner) return { verdict: "fail", reason: `no key custodian: set metadata.owner on envs.${f.c.env}.${f.c.variable}` };
    return { verdict: "pass", reason: `kept in store "${f.c.store}" (${f.c.storeType}), custodian ${f.c.owner}` };
  },
  "pci-dss-3.7": (f) => {
    if (f.c.kind !== "key") return { verdict: "not-applicable", reason: `not a cryptographic key (${f.c.kind})` };
    const p = withinPeriod(f, "key");
    if (p.verdict === "fail") return p;
    const retire = retirement(f);
    return retire.verdict === "fail" ? retire : { verdict: "pass", reason: `${p.reason}; ${retire.reason}` };
  },
  "soc2-cc6.1": (f) => {
    if (["literal", "env"].includes(f.c.storeType)) return { verdict: "fail", reason: `kept in store "${f.c.store}" of type ${f.c.storeType}: no access control or versions` };
    if (f.c.problem) return { verdict: "fail", reason: `the store's version metadata could not be read: ${f.c.problem}` };
    return { verdict: "pass", reason: `kept in store "${f.c.store}" (${f.c.storeType})${f.c.versions.current ? `, current version ${f.c.versions.current}` : ""}` };
  },
  "soc2-cc6.2": (f) => {
    if (!f.c.owner) return { verdict: "fail", reason: `no owner: set metadata.owner on envs.${f.c.env}.${f.c.variable}` };
    const last = lastRotate(f);
    if (!last) return { verdict: "fail", reason: `owner ${f.c.owner}; the current credential was not issued by a recorded rotation (never rotated)` };
    return { verdict: "pass", reason: `owner ${f.c.owner}; current credential issued by rotation ${last.id} (${last.who}, ${isoOf(last)})` };
  },
  "soc2-cc6.3": (f) => {
    // A break-glass window handed the credential out: once it has ended, a rotation started after it opened must have replaced it.
    for (const g of f.governance.filter((x) => x.kind === "breakglass-opened")) {
      const end = g.until ? Date.parse(g.until) : undefined;
      if (end === undefined || end > f.now) continue;
      const replaced = f.recs.some((r) => r.kind === "rotate" && (r.status === "succeeded" || r.status === "grace") && r.startedAt >= g.at);
      if (!replaced) return { verdict: "fail", reason: `break-glass ${g.id} (opened ${g.at} by ${g.who ?? "-"}) ended at ${g.until} and no successful rotation has replaced the credential since it opened` };
    }
    const last = lastRotate(f);
    if (!last) return { verdict: "not-applicable", reason: "never rotated: no earlier credential to revoke" };
    return retirement(f);
  },
  "soc2-cc7.2": (f) => {
    // Faults injected on purpose (`dsops chaos`) prove the rollback paths; they are no incident.
    const real = f.recs.filter((r) => !isChaos(r));
    const chaos = f.recs.length - real.length;
    const failed = real.filter((r) => r.status === "failed").length;
    const rolled = real.filter((r) => r.status === "rolled-back").length;
    const newest = real[0];
    const drills = chaos ? `; ${chaos} chaos experiment rotation(s) not counted` : "";
    if (!newest) return { verdict: "pass", reason: `no rotation recorded yet: nothing failed${drills}` };
    const counts = `${failed} failed and ${rolled} rolled-back rotation(s) of ${real.length}${drills}`;
    if (newest.status === "failed" || newest.status === "rolled-back")
      return { verdict: "fail", reason: `the newest rotation ${newest.id} ${newest.status} at ${isoOf(newest)}${newest.error ? `: ${newest.error}` : ""} and has not been followed by a successful one (${counts})` };
    if (newest.status === "running") return { verdict: "fail", reason: `rotation ${newest.id} started at ${newest.startedAt} is unfinished${newest.error ? `: ${newest.error}` : ""} (${counts})` };
    return { verdict: "pass", reason: failed + rolled ? `${counts}; each was followed by a successful rotation (last ${newest.id})` : `no failed or rolled-back rotation (${real.length} recorded${drills})` };
  },
};

/** CC6.3 and 3.7: the old credential of the last rotation is revoked, or in a grace period that has not ended. */
function retirement(f: Facts): { verdict: Verdict; reason: string } {
  const last = lastRotate(f);
  if (!last) return { verdict: "fail", reason: "never rotated: the first credential was never replaced" };
  const retire = last.steps.find((s) => s.name === "retire");
  if (retire?.outcome === "failed") return { verdict: "fail", reason: `rotation ${last.id} could not revoke the old credential: ${retire.message ?? "retire failed"}` };
  if (last.status === "grace") {
    const until = last.retireAfter ? Date.parse(last.retireAfter) : undefined;
    if (until !== undefined && until <= f.now) return { verdict: "fail", reason: `rotation ${last.id}: the old credential is still valid; its grace period ended at ${last.retireAfter}` };
    return { verdict: "pass", reason: `rotation ${last.id}: the old credential is revoked at the end of its grace period (${last.retireAfter ?? "-"})` };
  }
  const how =
    last.strategy === "alternating-users"
      ? `the previous user${last.oldPrincipal ? ` ${last.oldPrincipal}` : ""} keeps its password until the next rotation changes it (alternating-users)`
      : last.strategy === "two-secret" || last.strategy === "emergency"
        ? `the old credential${last.oldPrincipal ? ` (${last.oldPrincipal})` : ""} was revoked`
        : "the new password replaced the old one at the target (the old one no longer works)";
  return { verdict: "pass", reason: `rotation ${last.id} ${isoOf(last)}: ${how}` };
}

/** The change period a policy allows, ms (ttl, or the schedule's interval after `base`). */
function maxAgeOf(c: CredentialFacts, at: string, base: number): number | undefined {
  const due = variableDueAt(c.policy, at, base, base);
  return due === undefined ? undefined : due - base;
}

function waiverRef(w: Waiver): WaiverRef {
  return { approver: w.approver, expires: w.expires, reason: w.reason, ...(w.ticket ? { ticket: w.ticket } : {}) };
}

function matches(w: Waiver, c: CredentialFacts, control: ControlId): boolean {
  const [env, variable] = w.credential.split("/");
  return env === c.env && (variable === "*" || variable === c.variable) && (w.control === "*" || w.control === control);
}

/** Build the report. Pure: the same input gives the same report. */
export function buildComplianceReport(input: ComplianceInput): ComplianceReport {
  const { now } = input;
  const controls = appliesTo(input.framework);
  const governance = [...(input.governance ?? [])].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const bySecret = new Map<string, RotationRecord[]>();
  // Rotation records only: a history may hold other kinds (approvals, break-glass), given as `governance`.
  const records = input.records.filter((r) => r.kind === "rotate" || r.kind === "rollback");
  for (const r of records) bySecret.set(r.secret, [...(bySecret.get(r.secret) ?? []), r]);
  const covers = new Map<Waiver, string[]>();
  const credentials: CredentialReport[] = input.credentials.map((c) => {
    const recs = (bySecret.get(c.secret) ?? []).filter((r) => r.env === c.env && r.variable === c.variable).sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
    const lastAt = lastRotationAt(recs, c.secret);
    const storeAt = c.versions.updatedAt ? Date.parse(c.versions.updatedAt) : undefined;
    const issuedAt = lastAt ?? (storeAt !== undefined && !Number.isNaN(storeAt) ? storeAt : undefined);
    const at = `envs.${c.env}.${c.variable}.rotation`;
    const maxAgeMs = maxAgeOf(c, at, issuedAt ?? now);
    const dueAt = issuedAt !== undefined && maxAgeMs !== undefined ? variableDueAt(c.policy, at, issuedAt, now) : undefined;
    const facts: Facts = {
      c,
      recs,
      now,
      ...(issuedAt !== undefined ? { issuedAt } : {}),
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
      ...(dueAt !== undefined ? { dueAt } : {}),
      governance: governance.filter((g) => (g.secret ? g.secret === c.secret : g.env === c.env && g.variable === c.variable)),
    };
    const results: ControlResult[] = controls.map((id) => {
      const r = checks[id](facts);
      if (r.verdict !== "fail") return { control: id, ...r };
      const ws = input.waivers.filter((w) => matches(w, c, id));
      const active = ws.find((w) => waiverExpiresAt(w) > now);
      const expired = ws.find((w) => waiverExpiresAt(w) <= now);
      for (const w of ws) covers.set(w, [...(covers.get(w) ?? []), `${c.env}/${c.variable} ${id}`]);
      return { control: id, ...r, ...(active ? { waiver: waiverRef(active) } : {}), ...(!active && expired ? { expiredWaiver: waiverRef(expired) } : {}) };
    });
    const newest = recs[0];
    const last = lastRotate(facts);
    return {
      env: c.env,
      variable: c.variable,
      secret: c.secret,
      store: c.store,
      storeType: c.storeType,
      service: c.service,
      targetType: c.targetType,
      kind: c.kind,
      ...(c.owner ? { owner: c.owner } : {}),
      policy: { ...c.policy, ...(maxAgeMs !== undefined ? { maxAgeMs, maxAge: days(maxAgeMs) } : {}) },
      versions: c.versions,
      ...(issuedAt !== undefined ? { issuedAt: iso(issuedAt), issuedFrom: lastAt !== undefined ? ("rotation" as const) : ("store" as const), ageMs: Math.max(0, now - issuedAt), age: days(now - issuedAt) } : {}),
      ...(dueAt !== undefined ? { dueAt: iso(dueAt) } : {}),
      overdue: dueAt !== undefined && dueAt <= now,
      ...(newest ? { lastRotation: ref(newest) } : last ? { lastRotation: ref(last) } : {}),
      result: newest ? newest.status : "never",
      rotations: {
        total: recs.length,
        succeeded: recs.filter((r) => r.status === "succeeded" || r.status === "grace").length,
        failed: recs.filter((r) => r.status === "failed").length,
        rolledBack: recs.filter((r) => r.status === "rolled-back").length,
        running: recs.filter((r) => r.status === "running").length,
      },
      controls: results,
      compliant: results.every((r) => r.verdict !== "fail" || r.waiver !== undefined),
      ...(c.problem ? { problem: c.problem } : {}),
    };
  });
  const keys = new Set(input.credentials.map((c) => `${c.env}/${c.variable}`));
  const rotations = records
    .filter((r) => keys.has(`${r.env}/${r.variable}`))
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0))
    .map((r) => ({ ...ref(r), env: r.env, variable: r.variable, secret: r.secret }));
  const waivers: WaiverReport[] = input.waivers.map((w) => ({ ...w, status: waiverExpiresAt(w) > now ? "active" : "expired", covers: covers.get(w) ?? [] }));
  const all = credentials.flatMap((c) => c.controls);
  return {
    kind: "dsops.compliance-report",
    version: 1,
    generatedAt: iso(now),
    framework: input.framework,
    ...(input.env ? { env: input.env } : {}),
    ...(input.source ? { source: input.source } : {}),
    summary: {
      credentials: credentials.length,
      compliant: credentials.filter((c) => c.compliant).length,
      failing: credentials.filter((c) => !c.compliant).length,
      overdue: credentials.filter((c) => c.overdue).length,
      controls: {
        pass: all.filter((r) => r.verdict === "pass").length,
        fail: all.filter((r) => r.verdict === "fail" && !r.waiver).length,
        waived: all.filter((r) => r.verdict === "fail" && r.waiver).length,
        notApplicable: all.filter((r) => r.verdict === "not-applicable").length,
      },
      rotations: {
        total: rotations.length,
        succeeded: rotations.filter((r) => r.status === "succeeded").length,
        failed: rotations.filter((r) => r.status === "failed").length,
        rolledBack: rotations.filter((r) => r.status === "rolled-back").length,
        running: rotations.filter((r) => r.status === "running").length,
        grace: rotations.filter((r) => r.status === "grace").length,
        chaos: rotations.filter((r) => r.reason?.startsWith("dsops chaos:")).length,
      },
      waivers: { active: waivers.filter((w) => w.status === "active").length, expired: waivers.filter((w) => w.status === "expired").length },
      breakGlass: governance.filter((g) => g.kind === "breakglass-opened").length,
      approvals: governance.filter((g) => g.kind.startsWith("approval-")).length,
    },
    controls: controls.map((id) => controlCatalogue[id]),
    credentials,
    rotations,
    waivers,
    governance,
  };
}
