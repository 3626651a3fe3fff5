import { z } from "zod";
import { durationSchema } from "../core/duration";

/**
 * `rotation.monitor` and `rotation.rollout.monitor` (zod only): how long the health gate keeps
 * checking after the new credential is made current. The gate is the rotation engine's
 * (./engine/health-gate.ts); provider/health runs the checks and re-exports this schema.
 */
export const monitorSchema = z.strictObject({
  /** How long to keep checking after the first round (0: the first round only). */
  period: durationSchema.default(0),
  /** Between rounds. */
  interval: durationSchema.default("30s"),
  /** Consecutive failed rounds that roll the rotation back. */
  failures: z.number().int().min(1).max(100).default(3),
});
export type MonitorSettings = z.infer<typeof monitorSchema>;
