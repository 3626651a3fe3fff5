import * as z from "zod";
import { monitorSchema } from "../monitor";

/**
 * `rotation.rollout` (zod only; the planner lives in ./plan.ts). A service with many instances:
 * the same credential is applied to several targets of the service's type, in waves, with
 * health monitoring between waves. Each instance is the service's `services:` entry with the
 * instance's own settings laid over it (host, port, database, admin …).
 */

const name = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, "expected a name of letters, digits, '_', '.', ':' and '-'");

/** A label value: `canary: true` marks a canary instance. */
export const labelValueSchema = z.union([z.string(), z.boolean(), z.number()]);

/**
 * One instance: `name`, optional `labels`, and any setting of the service's target type that
 * differs for this instance (`host`, `port`, `database`, `admin` …; checked by the target's own
 * schema when the instance is used). `type` cannot be changed.
 */
export const rolloutInstanceSchema = z
  .looseObject({
    name,
    labels: z.record(z.string(), labelValueSchema).optional(),
  })
  .superRefine((v, ctx) => {
    if ("type" in v) ctx.addIssue({ code: "custom", path: ["type"], message: "an instance has the type of its service; remove \"type\"" });
  });
export type RolloutInstanceSettings = z.infer<typeof rolloutInstanceSchema>;

/** A reference as dsops writes it in a setting: `{store, key, version}` or `{provider, key, version}` (also under `from:`). */
const storeRefSchema = z.union([
  z.strictObject({ store: z.string().min(1), key: z.string().min(1), version: z.string().min(1).optional() }),
  z.strictObject({ provider: z.string().min(1), key: z.string().min(1), version: z.string().min(1).optional() }),
]);

/** Instances from an HTTP endpoint answering JSON `[{name, labels, …settings}]` (or `{"instances": [...]}`). */
export const rolloutEndpointDiscoverySchema = z.strictObject({
  /** dsops's spelling names the kind; without `type` the block is an endpoint. */
  type: z.literal("endpoint"),
  endpoint: z.string().url().optional(),
  /** dsops's name of `endpoint`. */
  url: z.string().url().optional(),
  /** Request headers; a value `store://…` is resolved (a bearer token kept in a store). */
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * dsops's `auth: {type: bearer, token}`: sent as `Authorization: Bearer <token>`; the token is
   * a `store://…` reference, `{from: {store, key}}` / `{store, key}` (dsops's form), `${VAR}`
   * (read from the environment when the rotation runs) or text.
   */
  auth: z.strictObject({ type: z.literal("bearer"), token: z.union([z.string().min(1), z.strictObject({ from: z.union([z.string().min(1), storeRefSchema]) }), storeRefSchema]) }).optional(),
  timeout_ms: z.number().int().positive().max(120000).default(10000),
});

/**
 * The pods of a Kubernetes namespace matching `label_selector` (dsops's names), read through the
 * official client with the kubeconfig file (`kubeconfig`, else KUBECONFIG / ~/.kube/config /
 * in-cluster) and its `context` (else the current one). Only running pods, not being deleted.
 * Instance: the pod's name and labels; `host` its pod IP; `port` the container port named (or
 * numbered) by `port`; annotations `dsops.io/<setting>` set any other instance setting.
 */
export const rolloutKubernetesDiscoverySchema = z.strictObject({
  type: z.literal("kubernetes"),
  namespace: z.string().min(1).default("default"),
  label_selector: z.string().min(1),
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  port: z.union([z.string().min(1), z.number().int().min(1).max(65535)]).optional(),
  timeout_ms: z.number().int().positive().max(120000).default(10000),
});

/**
 * AWS EC2 instances by tag (dsops's `type: cloud, provider: aws, region, filters`), running
 * ones only, through the official EC2 client (DescribeInstances). A filter key `Env` or
 * `tag:Env` matches the tag. Instance: its id, its tags as labels, `host` its private IP
 * (`address: public_ip` for the public one); tags `dsops:<setting>` set any other setting.
 */
export const rolloutCloudDiscoverySchema = z.strictObject({
  type: z.literal("cloud"),
  provider: z.literal("aws"),
  region: z.string().min(1).optional(),
  filters: z.array(z.strictObject({ key: z.string().min(1), value: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) })).min(1),
  address: z.enum(["private_ip", "public_ip"]).default("private_ip"),
  /** An endpoint URL (moto, LocalStack, VPC endpoints). */
  endpoint: z.string().url().optional(),
  profile: z.string().min(1).optional(),
  timeout_ms: z.number().int().positive().max(120000).default(10000),
});

/** `discovery:` without a `type` is an endpoint (the form before dsops's `type:`). */
const discoveryTypes = ["kubernetes", "cloud", "endpoint"];
const endpointByDefault = (v: unknown, ctx: { addIssue(i: { code: "custom"; message: string; path?: PropertyKey[]; fatal?: boolean }): void }) => {
  if (!v || typeof v !== "object" || Array.isArray(v)) return v;
  if (!("type" in v)) return { ...v, type: "endpoint" };
  const t = (v as { type: unknown }).type;
  if (!discoveryTypes.includes(t as string))
    ctx.addIssue({ code: "custom", path: ["type"], fatal: true, message: `unknown discovery type ${JSON.stringify(t)} (expected kubernetes, cloud or endpoint; listed instances go in rollout.instances)` });
  return v;
};

export const rolloutDiscoverySchema = z.preprocess(
  endpointByDefault,
  z.discriminatedUnion("type", [rolloutKubernetesDiscoverySchema, rolloutCloudDiscoverySchema, rolloutEndpointDiscoverySchema]).superRefine((d, ctx) => {
  if (d.type === "kubernetes" || d.type === "cloud") return;
  if ((d.endpoint === undefined) === (d.url === undefined)) ctx.addIssue({ code: "custom", message: "give the discovery endpoint's URL (endpoint: or url:), one of them" });
  if (d.auth && Object.keys(d.headers).some((h) => h.toLowerCase() === "authorization"))
    ctx.addIssue({ code: "custom", path: ["auth"], message: "auth and an authorization header both set the Authorization header; keep one" });
  }),
);
export type RolloutDiscoverySettings = z.infer<typeof rolloutDiscoverySchema>;
export type RolloutKubernetesDiscoverySchemaOut = z.infer<typeof rolloutKubernetesDiscoverySchema>;
export type RolloutCloudDiscoverySchemaOut = z.infer<typeof rolloutCloudDiscoverySchema>;
export type RolloutEndpointDiscoverySchemaOut = z.infer<typeof rolloutEndpointDiscoverySchema>;

/** A service group: its instances by name or by labels; rotated after the groups it depends on. */
export const rolloutGroupSchema = z
  .strictObject({
    name,
    instances: z.array(name).min(1).optional(),
    /** Every label listed must match (a value compares as text: `true` matches "true"). `{}` matches every instance. */
    selector: z.record(z.string(), labelValueSchema).optional(),
    depends_on: z.array(name).default([]),
  })
  .superRefine((g, ctx) => {
    if ((g.instances === undefined) === (g.selector === undefined))
      ctx.addIssue({ code: "custom", message: `group "${g.name}": name its instances or give a selector (one of them)` });
  });

export const rolloutStrategies = ["canary", "percentage", "all"] as const;
export const rolloutFailurePolicies = ["rollback_all", "continue", "stop"] as const;
export const defaultWaves = [5, 25, 50, 100] as const;

export const rolloutSchema = z
  .strictObject({
    /** The instances, listed (explicit discovery). */
    instances: z.array(rolloutInstanceSchema).min(1).optional(),
    /** The instances, discovered (an HTTP endpoint, Kubernetes pods, AWS instances; read when a rotation starts; kept in its record). */
    discovery: rolloutDiscoverySchema.optional(),
    /**
     * `canary`: the instances labelled `canary: true` first (a wave of their own), then the rest
     * (in `waves` when given, else at once); `percentage`: cumulative percentage waves; `all`: one wave.
     */
    strategy: z.enum(rolloutStrategies).default("percentage"),
    /** Cumulative percentages of the instances (of each group), ascending, ending at 100. Default 5, 25, 50, 100. */
    waves: z.array(z.number().gt(0).max(100)).min(1).optional(),
    /** Health monitoring between waves with `rotation.health` (default: `rotation.monitor`). */
    monitor: monitorSchema.optional(),
    /** Service groups, rotated in dependency order (each group in its own waves). */
    groups: z.array(rolloutGroupSchema).min(1).optional(),
    /**
     * A failed instance (apply, verification or the health checks of its wave):
     * `rollback_all` puts the old credential back on every instance that got the new one and
     * ends the rotation rolled back; `continue` puts it back on the failed instance only and goes
     * on (the rotation succeeds with that instance listed as left on the old credential);
     * `stop` puts it back on the failed instance and halts: the rotation stays open, the next run
     * resumes at that wave, `dsops rotation rollback` undoes the waves done.
     */
    on_failure: z.enum(rolloutFailurePolicies).default("rollback_all"),
  })
  .superRefine((r, ctx) => {
    if ((r.instances === undefined) === (r.discovery === undefined))
      ctx.addIssue({ code: "custom", message: "give the instances (instances: [...]) or where to discover them (discovery: {endpoint} or {type: kubernetes|cloud|endpoint, …}), one of them" });
    if (r.instances) {
      const seen = new Set<string>();
      for (const [i, inst] of r.instances.entries()) {
        if (seen.has(inst.name)) ctx.addIssue({ code: "custom", path: ["instances", i, "name"], message: `instance "${inst.name}" is listed twice` });
        seen.add(inst.name);
      }
    }
    if (r.waves) {
      for (let i = 1; i < r.waves.length; i++)
        if (r.waves[i] <= r.waves[i - 1]) ctx.addIssue({ code: "custom", path: ["waves", i], message: "waves are cumulative percentages: each larger than the one before" });
      if (r.waves[r.waves.length - 1] !== 100) ctx.addIssue({ code: "custom", path: ["waves"], message: "the last wave must be 100 (every instance)" });
    }
    if (r.groups) {
      const names = r.groups.map((g) => g.name);
      for (const [i, g] of r.groups.entries()) {
        if (names.indexOf(g.name) !== i) ctx.addIssue({ code: "custom", path: ["groups", i, "name"], message: `group "${g.name}" is defined twice` });
        for (const d of g.depends_on)
          if (!names.includes(d)) ctx.addIssue({ code: "custom", path: ["groups", i, "depends_on"], message: `group "${g.name}" depends on unknown group "${d}"` });
      }
      const cycle = findCycle(r.groups);
      if (cycle) ctx.addIssue({ code: "custom", path: ["groups"], message: `groups depend on each other in a cycle: ${cycle.join(" → ")}` });
    }
  });
export type RolloutSettings = z.infer<typeof rolloutSchema>;
export type RolloutGroup = z.infer<typeof rolloutGroupSchema>;

/** A dependency cycle among groups (names, first repeated at the end), or undefined. */
export function findCycle(groups: ReadonlyArray<{ name: string; depends_on: readonly string[] }>): string[] | undefined {
  const deps = new Map(groups.map((g) => [g.name, g.depends_on]));
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === "done") return undefined;
    if (state.get(n) === "visiting") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "visiting");
    stack.push(n);
    for (const d of deps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const g of groups) {
    const c = visit(g.name);
    if (c) return c;
  }
  return undefined;
}
