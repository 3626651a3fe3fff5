import { z } from "zod";

/** The `metrics:` block of dsops.yaml (zod only: loading it loads no prom-client). */
export const metricsSchema = z.strictObject({
  prometheus: z
    .strictObject({
      enabled: z.boolean().default(false),
      port: z.number().int().min(1).max(65535).default(9090),
      path: z.string().default("/metrics"),
      textfile: z.string().optional(),
    })
    .optional(),
});
export type MetricsSettings = z.infer<typeof metricsSchema>;

declare module "../engine/config/schema" {
  interface ConfigSections {
    /** Prometheus metrics (`metrics:`). */
    metrics?: MetricsSettings;
  }
}
