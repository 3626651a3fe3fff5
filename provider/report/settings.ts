import * as z from "zod";
import type { ControlId, Waiver } from "./types";

/**
 * The `compliance:` block of dsops.yaml (zod only): the waivers of the compliance report. A
 * waiver excuses one credential from one control until it expires, with who approved it and
 * why; an expired waiver excuses nothing and the report lists it as expired. Waivers are always
 * listed in the report, never hidden.
 */

/** The controls a report checks, by id (`dsops report compliance`, README "Compliance reports"). */
export const controlIds = ["pci-dss-8.3.9", "pci-dss-8.6.3", "pci-dss-3.6", "pci-dss-3.7", "soc2-cc6.1", "soc2-cc6.2", "soc2-cc6.3", "soc2-cc7.2"] as const satisfies readonly ControlId[];
export type { ControlId, Waiver };

/** An ISO-8601 date (`2026-12-31`, the end of that day UTC) or instant. */
const expirySchema = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s)), {
  message: "expected an ISO-8601 date (2026-12-31) or instant (2026-12-31T18:00:00Z)",
});

export const waiverSchema = z.strictObject({
  /** The credential: `<env>/<VARIABLE>`, or `<env>/*` for every rotated variable of the env. */
  credential: z.string().regex(/^[^/\s]+\/[^/\s]+$/, { message: "expected <env>/<VARIABLE> (or <env>/*)" }),
  /** The control it excuses (one of the report's control ids), or `*` for all of them. */
  control: z.union([z.enum(controlIds), z.literal("*")]),
  /** Why the credential cannot meet the control now. */
  reason: z.string().trim().min(1, { message: "a waiver needs a reason" }),
  /** Who approved it (a name or an email address). */
  approver: z.string().trim().min(1, { message: "a waiver needs an approver" }),
  /** When it stops counting: a date (the end of that day, UTC) or an instant. */
  expires: expirySchema,
  /** A ticket or change id, shown with the waiver. */
  ticket: z.string().optional(),
});
// The schema parses to the report's Waiver type, and every control id is in the list.
waiverSchema satisfies z.ZodType<Waiver>;
const _allControls: Record<ControlId, true> = Object.fromEntries(controlIds.map((id) => [id, true])) as Record<(typeof controlIds)[number], true>;
void _allControls;

export const complianceSchema = z.strictObject({
  /** Exceptions to the report's controls, each with approver and expiry (listed, never hidden). */
  waivers: z.array(waiverSchema).default([]),
});
export type ComplianceSettings = z.infer<typeof complianceSchema>;

/** When a waiver stops counting (ms): a date alone means the end of that day, UTC. */
export function waiverExpiresAt(w: Pick<Waiver, "expires">): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(w.expires) ? Date.parse(`${w.expires}T23:59:59.999Z`) : Date.parse(w.expires);
}

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** Waivers of the compliance report (`compliance:`). */
    compliance?: ComplianceSettings;
  }
}
