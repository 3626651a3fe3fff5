import * as z from "zod";

/** The labels dsops's metrics have themselves (a constant label may not take one of these names). */
export const METRIC_LABELS = ["service", "env", "strategy", "status", "trigger", "check", "type", "channel", "event", "le", "quantile"];

/** The `metrics:` block of dsops.yaml (zod only: loading it loads no prom-client). */
export const metricsSchema = z.strictObject({
  prometheus: z
    .strictObject({
      enabled: z.boolean().default(false),
      port: z.number().int().min(1).max(65535).default(9090),
      path: z.string().default("/metrics"),
      textfile: z.string().optional(),
      /** Constant labels on every dsops metric (dsops's `labels`), e.g. `{ team: platform, region: eu-west-1 }`. */
      labels: z
        .record(z.string(), z.string())
        .superRefine((labels, ctx) => {
          for (const name of Object.keys(labels)) {
            const why = !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)
              ? "not a Prometheus label name (letters, digits and _, not starting with a digit)"
              : name.startsWith("__")
                ? "label names starting with __ are reserved by Prometheus"
                : METRIC_LABELS.includes(name)
                  ? `already a label of dsops's metrics (${METRIC_LABELS.join(", ")})`
                  : undefined;
            if (why) ctx.addIssue({ code: "custom", path: [name], message: why });
          }
        })
        .optional(),
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
