import * as z from "zod";
import { durationSchema } from "../core/duration";

/**
 * `rotation.monitor` and `rotation.rollout.monitor`: how long and how often the health checks
 * run once a new credential is current (after a rotation, between rollout waves), and how many
 * consecutive failed rounds roll the rotation back. The checks themselves are provider/health's.
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
