import * as z from "zod";
import { durationSchema } from "../../core/duration";

/**
 * `chains:` (dsops.yaml, top level): a rotation that spans environments. One variable, rotated
 * env by env in the order of `stages`; after each stage but the last, that stage's
 * `rotation.health` checks are watched for `soak` before the next stage starts. A failure
 * stops the chain and rolls back the stages already rotated. Each stage is the variable of that
 * env, with its own `rotation:` block (its own service, store and history).
 */
export const chainSchema = z.strictObject({
  /** The variable rotated in each stage (`envs.<stage>.<variable>`, with a `rotation:` block in each). */
  variable: z.string().min(1),
  /** The envs, in order (at least two, each once). */
  stages: z.array(z.string().min(1)).min(2),
  /** How long a stage's health checks are watched before the next stage is rotated. */
  soak: durationSchema.default("10m"),
  /** How often the health checks run while a stage soaks. */
  soak_interval: durationSchema.default("1m"),
  /** Consecutive failed rounds while soaking that stop the chain (and roll it back). */
  failures: z.number().int().min(1).max(100).default(1),
});
export type ChainSettings = z.infer<typeof chainSchema>;

export const chainsSchema = z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a chain name is letters, digits, _ . -"), chainSchema);

declare module "../../engine/config/schema" {
  interface ConfigSections {
    /** Multi-environment rotations (`chains:`). */
    chains?: Record<string, ChainSettings>;
  }
}
