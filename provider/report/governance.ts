import type { GovernanceEvent } from "./types";

/**
 * Approval and break-glass records (provider/rotation/governance.ts, kept in the rotation
 * history next to the rotation records, one record per request or break-glass, its last
 * snapshot winning) read as the report's events. The shapes below are the fields the report
 * uses, as COORD-r5.md defines them; a record of another kind is ignored.
 */

interface ApprovalDecisionLike {
  readonly by: string;
  readonly decision: "granted" | "denied";
  readonly reason?: string;
  readonly at: string;
}

interface ApprovalRecordLike {
  readonly id: string;
  readonly kind: "approval";
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  readonly status: string;
  readonly requestedBy: string;
  readonly startedAt: string;
  readonly expiresAt?: string;
  readonly decisions?: readonly ApprovalDecisionLike[];
  readonly finishedAt?: string;
  readonly rotationId?: string;
  readonly reason?: string;
}

interface BreakGlassRecordLike {
  readonly id: string;
  readonly kind: "breakglass";
  readonly secret: string;
  readonly env: string;
  readonly variable: string;
  readonly status: string;
  readonly openedBy: string;
  readonly startedAt: string;
  readonly reason: string;
  readonly expiresAt?: string;
  readonly finishedAt?: string;
  readonly closedBy?: string;
  readonly closedHow?: string;
  readonly emergencyRotationId?: string;
  readonly forcedRotationId?: string;
  readonly forcedRotationStatus?: string;
  readonly reads?: ReadonlyArray<{ readonly by: string; readonly at: string; readonly command: string }>;
}

const isRecord = (r: unknown, kind: string): boolean => typeof r === "object" && r !== null && (r as { kind?: unknown }).kind === kind && typeof (r as { id?: unknown }).id === "string";

/** The events of approval and break-glass records (other records are skipped), oldest first. */
export function governanceEvents(records: readonly unknown[]): GovernanceEvent[] {
  const out: GovernanceEvent[] = [];
  for (const r of records) {
    if (isRecord(r, "approval")) {
      const a = r as ApprovalRecordLike;
      const base = { env: a.env, variable: a.variable, secret: a.secret };
      out.push({ id: a.id, kind: "approval-requested", at: a.startedAt, ...base, who: a.requestedBy, ...(a.reason ? { reason: a.reason } : {}), ...(a.expiresAt ? { until: a.expiresAt } : {}) });
      for (const d of a.decisions ?? [])
        out.push({ id: a.id, kind: d.decision === "granted" ? "approval-granted" : "approval-denied", at: d.at, ...base, who: d.by, ...(d.reason ? { reason: d.reason } : {}), ...(a.rotationId ? { rotationId: a.rotationId } : {}) });
      if (a.status === "expired") out.push({ id: a.id, kind: "approval-expired", at: a.finishedAt ?? a.expiresAt ?? a.startedAt, ...base });
    } else if (isRecord(r, "breakglass")) {
      const b = r as BreakGlassRecordLike;
      const base = { env: b.env, variable: b.variable, secret: b.secret };
      const until = b.finishedAt ?? b.expiresAt;
      out.push({ id: b.id, kind: "breakglass-opened", at: b.startedAt, ...base, who: b.openedBy, reason: b.reason, ...(until ? { until } : {}), ...(b.emergencyRotationId ? { rotationId: b.emergencyRotationId } : {}) });
      // Each read of a sealed value under the grant (access: breakglass): who, when, which command.
      for (const rd of b.reads ?? []) out.push({ id: b.id, kind: "breakglass-read", at: rd.at, ...base, who: rd.by, reason: `read with ${rd.command}` });
      if (b.status === "closed" && b.finishedAt)
        out.push({
          id: b.id,
          kind: "breakglass-closed",
          at: b.finishedAt,
          ...base,
          ...(b.closedBy ? { who: b.closedBy } : {}),
          reason: `${b.closedHow ?? "closed"}${b.forcedRotationId ? `; forced rotation ${b.forcedRotationId} ${b.forcedRotationStatus ?? ""}`.trimEnd() : "; no forced rotation recorded"}`,
          ...(b.forcedRotationId ? { rotationId: b.forcedRotationId } : {}),
        });
    }
  }
  return out.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
}
