import type { RotationRecord, RotationStatus } from "../rotation/types";

/*
 * The report's types: plain data, importing only the rotation record types (which import
 * nothing), so the SDK's declarations that name them pull in no library's types. The zod schema
 * of waivers (./settings.ts) is checked against `Waiver` here.
 */

/** The controls a report checks (README "Compliance reports"). */
export type ControlId = "pci-dss-8.3.9" | "pci-dss-8.6.3" | "pci-dss-3.6" | "pci-dss-3.7" | "soc2-cc6.1" | "soc2-cc6.2" | "soc2-cc6.3" | "soc2-cc7.2";

/** One waiver of `compliance.waivers`. */
export interface Waiver {
  /** `<env>/<VARIABLE>`, or `<env>/*`. */
  readonly credential: string;
  /** A control id, or `*` for all. */
  readonly control: ControlId | "*";
  readonly reason: string;
  readonly approver: string;
  /** An ISO-8601 date (its end, UTC) or instant. */
  readonly expires: string;
  readonly ticket?: string;
}

/** The frameworks a report covers: one, or both. */
export const frameworks = ["pci-dss", "soc2", "all"] as const;
export type Framework = (typeof frameworks)[number];

/**
 * What a credential is, for the controls: a `password` (of a user or role: PCI-DSS 8.3.9 and
 * 8.6.3), a cryptographic `key` (PCI-DSS 3.6/3.7) or another application `secret` (8.6.3).
 */
export type CredentialKind = "password" | "key" | "secret";

/** The version metadata a store gives of a secret (its `stagesOf` and `describe`): ids and dates, never a value. */
export interface VersionFacts {
  readonly current?: string;
  readonly previous?: string;
  readonly pending?: string;
  /** When the store says the current version was written. */
  readonly updatedAt?: string;
}

/** What the report is told of one rotated credential: configuration and metadata, never a value. */
export interface CredentialFacts {
  readonly env: string;
  readonly variable: string;
  /** `store://<store>/<key>`. */
  readonly secret: string;
  readonly store: string;
  readonly storeType: string;
  /** The rotation target (`services:` entry) and its type. */
  readonly service: string;
  readonly targetType: string;
  readonly kind: CredentialKind;
  /** The variable's `metadata.owner`. */
  readonly owner?: string;
  readonly policy: {
    readonly strategy: string;
    readonly schedule?: string;
    readonly ttl?: string;
    /** Each maintenance window in words (`0 2 * * 6 for 4h (UTC)`). */
    readonly windows: readonly string[];
    readonly gracePeriod?: string;
    /** Health checks run after each rotation. */
    readonly healthChecks: number;
  };
  readonly versions: VersionFacts;
  /** Why the version metadata could not be read (the store unreachable …). */
  readonly problem?: string;
}

/**
 * A governance record the report lists beside the rotations: an approval asked, granted, denied
 * or expired, a break-glass window opened or closed. Read through a GovernanceReader.
 */
export interface GovernanceEvent {
  readonly id: string;
  /** `approval-requested`, `approval-granted`, `approval-denied`, `approval-expired`, `breakglass-opened`, `breakglass-closed`, or another kind a reader gives. */
  readonly kind: string;
  readonly at: string;
  readonly env?: string;
  readonly variable?: string;
  readonly secret?: string;
  /** Who acted (requested, approved, opened). */
  readonly who?: string;
  readonly reason?: string;
  /** Break-glass: when the window closes (opened) or closed; approval: when the request expires. */
  readonly until?: string;
  /** The rotation it concerns, when one. */
  readonly rotationId?: string;
}

/** Where governance records come from (approvals and break-glass). */
export interface GovernanceReader {
  list(filter: { env?: string }): Promise<GovernanceEvent[]>;
}

/** What `buildComplianceReport` is given: plain data only, so the report cannot read a value. */
export interface ComplianceInput {
  readonly now: number;
  readonly framework: Framework;
  readonly env?: string;
  /** The dsops.yaml the configuration came from (shown in the report). */
  readonly source?: string;
  readonly credentials: readonly CredentialFacts[];
  /** Rotation records of these credentials, any order. */
  readonly records: readonly RotationRecord[];
  readonly waivers: readonly Waiver[];
  readonly governance?: readonly GovernanceEvent[];
}

export type Verdict = "pass" | "fail" | "not-applicable";

/** One control's verdict on one credential. */
export interface ControlResult {
  readonly control: ControlId;
  readonly verdict: Verdict;
  /** Why, in words (never a value). */
  readonly reason: string;
  /** The active waiver that excuses this failure (the verdict stays `fail`). */
  readonly waiver?: WaiverRef;
  /** A waiver for this failure that has expired (it excuses nothing). */
  readonly expiredWaiver?: WaiverRef;
}

export interface WaiverRef {
  readonly approver: string;
  readonly expires: string;
  readonly reason: string;
  readonly ticket?: string;
}

/** The last rotation of a credential, as the report shows it. */
export interface RotationRef {
  readonly id: string;
  readonly kind: RotationRecord["kind"];
  readonly status: RotationStatus;
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly strategy: string;
  readonly who: string;
  readonly reason?: string;
  readonly error?: string;
}

export interface CredentialReport {
  readonly env: string;
  readonly variable: string;
  readonly secret: string;
  readonly store: string;
  readonly storeType: string;
  readonly service: string;
  readonly targetType: string;
  readonly kind: CredentialKind;
  readonly owner?: string;
  readonly policy: CredentialFacts["policy"] & {
    /** The change period the policy allows (from `ttl`, or the cron `schedule`'s interval), ms and in words. */
    readonly maxAgeMs?: number;
    readonly maxAge?: string;
  };
  readonly versions: VersionFacts;
  /** When the current credential was made: the last rotation, else the store's date of the current version. */
  readonly issuedAt?: string;
  readonly issuedFrom?: "rotation" | "store";
  readonly ageMs?: number;
  readonly age?: string;
  /** When the next rotation is due (the schedule or ttl after `issuedAt`). */
  readonly dueAt?: string;
  readonly overdue: boolean;
  readonly lastRotation?: RotationRef;
  /** The last rotation's status, or `never`. */
  readonly result: RotationStatus | "never";
  readonly rotations: { readonly total: number; readonly succeeded: number; readonly failed: number; readonly rolledBack: number; readonly running: number };
  readonly controls: readonly ControlResult[];
  /** True when no control fails without an active waiver. */
  readonly compliant: boolean;
  readonly problem?: string;
}

export interface ControlInfo {
  readonly id: ControlId;
  readonly framework: "pci-dss" | "soc2";
  readonly title: string;
  /** What dsops checks for it. */
  readonly checks: string;
}

export interface WaiverReport extends Waiver {
  readonly status: "active" | "expired";
  /** Failures it excuses (active) or would have excused (expired), as `<env>/<VAR> <control>`. */
  readonly covers: readonly string[];
}

/** The report: what `--format json` writes and what every other format is rendered from. */
export interface ComplianceReport {
  readonly kind: "dsops.compliance-report";
  readonly version: 1;
  readonly generatedAt: string;
  readonly framework: Framework;
  readonly env?: string;
  readonly source?: string;
  readonly summary: {
    readonly credentials: number;
    readonly compliant: number;
    readonly failing: number;
    readonly overdue: number;
    readonly controls: { readonly pass: number; readonly fail: number; readonly waived: number; readonly notApplicable: number };
    /** Every count includes the rotations of chaos experiments (`dsops chaos`), also counted apart in `chaos`; CC7.2 leaves them out. */
    readonly rotations: { readonly total: number; readonly succeeded: number; readonly failed: number; readonly rolledBack: number; readonly running: number; readonly grace: number; readonly chaos: number };
    readonly waivers: { readonly active: number; readonly expired: number };
    readonly breakGlass: number;
    readonly approvals: number;
  };
  readonly controls: readonly ControlInfo[];
  readonly credentials: readonly CredentialReport[];
  /** Every rotation and manual rollback of these credentials, oldest first. */
  readonly rotations: readonly (RotationRef & { readonly env: string; readonly variable: string; readonly secret: string })[];
  readonly waivers: readonly WaiverReport[];
  readonly governance: readonly GovernanceEvent[];
}
