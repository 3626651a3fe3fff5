import * as z from "zod";
import { durationMs, durationSchema, formatDuration, tryParseDuration } from "../core/duration";
import { suggest } from "../core/suggest";
import type { ConfigCheck, Findings, Path } from "../engine/config/load";
import type { RawConfig, VariableSpec } from "../engine/config/schema";
import { parseFrom } from "../engine/refs";
import { healthCheckSchema } from "../health/settings";
import { emailSettingsSchema, pagerdutySettingsSchema, slackSettingsSchema, webhookSettingsSchema } from "../notify/settings";
import { isKnownStrategy, rotationStrategies, strategyAliases, type VariableRotation } from "../rotation/settings";
import { pluginStrategyNames } from "../rotation/strategies/names";
import { monitorSchema } from "../rotation/monitor";
import { rolloutDiscoverySchema, rolloutSchema } from "../rotation/rollout/settings";
import { targetSettingsSchemas } from "../rotation/targets/settings";
import { targetTypeAliases, targetTypes, type TargetType } from "../rotation/targets/types";

/**
 * dsops's rotation shapes, read as ours. dsops writes a service's rotation beside the service
 * (`services.<svc>.rotation.{strategy, health_checks, rollback, canary|rollout, notifications}`,
 * `services.<svc>.admin_credentials`), file-wide defaults in a top-level `rotation:` block, and
 * on the variable only `service: <svc>` and `rotation: {ttl: 30d}`. This check (run before the
 * rotation check) lays each onto the variable's own `rotation:` block, in our keys:
 *
 * | dsops | ours |
 * |---|---|
 * | variable `service:` | `rotation.service` |
 * | `rotation.ttl` | `rotation.ttl` (due interval) |
 * | `strategy: two-key / overlap / random / immediate …` | `rotation.strategy` |
 * | `strategy: canary / percentage_rollout` + `canary:` / `rollout:` | `rotation.rollout` |
 * | `health_checks.{monitoring_period, interval, failure_threshold}` | `rotation.monitor.{period, interval, failures}` |
 * | `health_checks.checks[]`, `custom_scripts[]` | `rotation.health[]` |
 * | `rollback.automatic: false` (with a rollout) | `rotation.rollout.on_failure: stop` |
 * | `notifications.<channel>` | `notifications.<channel>` + `rotation.notifications.channels` |
 * | `admin_credentials: {username, password: {from}}` | the service's `admin: {username, password: store://…}` |
 *
 * A key the variable's block sets wins over the service's, which wins over the top-level
 * block's. What has no equivalent is refused with the reason; what is accepted but changes
 * nothing here is a warning naming it. Positions are those of what the user wrote.
 */

const dsopsDuration = durationSchema;

/** One entry of `health_checks.checks`: its type decides the rest (checked against our check of that type). */
const dsopsCheckSchema = z.looseObject({ type: z.string().min(1), name: z.string().optional() });

const customScriptSchema = z.strictObject({
  name: z.string().min(1),
  script: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  timeout: dsopsDuration.optional(),
  environment: z.record(z.string(), z.unknown()).optional(),
  retry: z.looseObject({}).optional(),
});

export const dsopsHealthChecksSchema = z.strictObject({
  enabled: z.boolean().default(true),
  monitoring_period: dsopsDuration.optional(),
  interval: dsopsDuration.optional(),
  failure_threshold: z.number().int().min(1).max(100).optional(),
  checks: z.array(dsopsCheckSchema).optional(),
  custom_scripts: z.array(customScriptSchema).optional(),
});

export const dsopsRollbackSchema = z.strictObject({
  automatic: z.boolean().optional(),
  on_verification_failure: z.boolean().optional(),
  on_health_check_failure: z.boolean().optional(),
  timeout: dsopsDuration.optional(),
  max_retries: z.number().int().min(0).optional(),
});

export const dsopsVerificationSchema = z.strictObject({
  enabled: z.boolean().optional(),
  timeout: dsopsDuration.optional(),
  query: z.string().optional(),
  retries: z.number().int().min(0).max(20).optional(),
});

const waveSchema = z.strictObject({
  percentage: z.number().gt(0).max(100),
  wait: dsopsDuration.optional(),
  health_monitoring: dsopsDuration.optional(),
  require_approval: z.boolean().optional(),
});

export const dsopsRolloutSchema = z.strictObject({
  discovery: z.looseObject({ type: z.string().min(1) }).optional(),
  instance_selector: z.string().optional(),
  health_monitoring_period: dsopsDuration.optional(),
  failure_threshold: z.number().int().min(1).max(100).optional(),
  rollout_waves: z.array(waveSchema).min(1).optional(),
  waves: z.array(waveSchema).min(1).optional(),
  pause_on_failure: z.boolean().optional(),
  manual_approval_required: z.boolean().optional(),
  persist_progress: z.boolean().optional(),
  progress_file: z.string().optional(),
});

/** `services.<svc>.rotation` (and the top-level `rotation:` defaults) as dsops writes it. */
export const dsopsServiceRotationSchema = z.strictObject({
  strategy: z.string().min(1).optional(),
  ttl: dsopsDuration.optional(),
  schedule: z.string().optional(),
  user: z.string().optional(),
  grace_period: dsopsDuration.optional(),
  overlap_duration: dsopsDuration.optional(),
  verification: z.unknown().optional(),
  // The blocks are checked one by one (./dsops-rotation.ts), so a problem in one does not hide the others'.
  canary: z.unknown().optional(),
  rollout: z.unknown().optional(),
  health_checks: z.unknown().optional(),
  rollback: z.unknown().optional(),
  notifications: z.unknown().optional(),
  metrics: z.unknown().optional(),
});
export type DsopsServiceRotation = z.infer<typeof dsopsServiceRotationSchema>;

/** The top-level `rotation:` block: defaults for every rotated variable, and dsops's per-variable `constraints`. */
export const dsopsRotationDefaultsSchema = z.strictObject({
  ...dsopsServiceRotationSchema.shape,
  constraints: z.record(z.string(), z.looseObject({})).optional(),
});
export type DsopsRotationDefaults = z.infer<typeof dsopsRotationDefaultsSchema>;

const adminCredentialsSchema = z.strictObject({
  username: z.unknown(),
  password: z.unknown(),
});

/** dsops strategy names that mean a gradual rollout (ours: `rotation.rollout.strategy`). */
const rolloutStrategyNames: Readonly<Record<string, "canary" | "percentage">> = { canary: "canary", percentage_rollout: "percentage", percentage: "percentage", gradual: "percentage" };

/** Our health checks by type (the ones provider/health implements today). */
function healthSchemas(): Map<string, z.ZodType> {
  const out = new Map<string, z.ZodType>();
  const options = (healthCheckSchema as unknown as { options: Array<{ shape: { type: { value?: unknown; def?: { values?: unknown[] } } } }> }).options;
  for (const o of options) {
    const t = o.shape.type as unknown as { value?: unknown; _zod?: { def?: { values?: unknown[] } } };
    const values = t._zod?.def?.values ?? (t.value !== undefined ? [t.value] : []);
    for (const v of values) out.set(String(v), o as unknown as z.ZodType);
  }
  return out;
}

type Rotation = Record<string, unknown>;

/** The check the composed loader runs before the rotation check. */
export const dsopsRotationCheck: ConfigCheck = (raw, { findings }) => new DsopsRotation(raw, findings).run();

class DsopsRotation {
  private readonly health = healthSchemas();
  private notifications: Record<string, unknown> | undefined;
  /** Channels the file itself defines under notifications: (a service's channels are added to it, for that service's rotations only). */
  private readonly fileChannels: string[];
  /** Channels that came from a service's rotation block. */
  private readonly serviceChannels = new Set<string>();
  private readonly storeNames: string[];

  constructor(
    private readonly raw: RawConfig,
    private readonly out: Findings,
  ) {
    this.notifications = raw.notifications ? { ...(raw.notifications as Record<string, unknown>) } : undefined;
    const n = (raw.notifications ?? {}) as Record<string, unknown>;
    this.fileChannels = [
      ...["slack", "email", "pagerduty"].filter((k) => n[k] !== undefined),
      ...((n.webhooks as Array<{ name?: string }> | undefined) ?? []).map((w) => (w.name ? `webhook:${w.name}` : "webhook")),
    ];
    this.storeNames = [...new Set([...Object.keys(raw.secretStores), ...Object.keys(raw.providers)])];
  }

  run(): RawConfig {
    const raw = this.raw;
    const defaults = (raw as { rotation?: DsopsRotationDefaults }).rotation;
    const top = defaults ? this.mapBlock(defaults, ["rotation"], undefined) : undefined;
    if (defaults?.constraints)
      this.out.warn(["rotation", "constraints"], "accepted and not acted on: give each variable's limits as rotation.generator (length) and its tests as health checks", true);

    // Each service: its rotation block mapped, its admin_credentials read as `admin`, both removed from the target's settings.
    const services: RawConfig["services"] = Object.create(null);
    const perService = new Map<string, Rotation>();
    for (const [name, entry] of Object.entries(raw.services)) {
      const { rotation, admin_credentials, ...rest } = entry as Record<string, unknown>;
      const next: Record<string, unknown> = { ...rest, type: entry.type };
      if ("ssl_mode" in next) this.sslMode(next, ["services", name, "ssl_mode"]);
      if (admin_credentials !== undefined) {
        const admin = this.adminOf(admin_credentials, ["services", name, "admin_credentials"]);
        if (rest.admin !== undefined) this.out.error(["services", name, "admin_credentials"], '"admin_credentials" and "admin" both give the admin login; keep one', true);
        else if (admin) next.admin = admin;
      }
      if (rotation !== undefined) {
        const at: Path = ["services", name, "rotation"];
        const block = this.out.parse(dsopsServiceRotationSchema, rotation, at);
        if (block) perService.set(name, this.mapBlock(block, at, typeOf(entry.type)));
      }
      services[name] = next as RawConfig["services"][string];
    }

    // Only variables with a rotation block have anything to lay under it (no path made for the others).
    for (const [env, vars] of Object.entries(raw.envs))
      for (const name of Object.keys(vars)) if (vars[name].rotation) this.variable(vars[name], ["envs", env, name], top, perService);

    return { ...raw, services, ...(this.notifications ? { notifications: this.notifications as RawConfig["notifications"] } : {}) };
  }

  /** Lay the service's and the top-level blocks under the variable's own `rotation:`. */
  private variable(spec: VariableSpec, at: Path, top: Rotation | undefined, perService: Map<string, Rotation>): void {
    const own = spec.rotation as Partial<VariableRotation> | undefined;
    if (!own) return;
    let service = own.service;
    if (service === undefined && spec.service !== undefined) {
      service = spec.service.startsWith("svc://") ? (/^svc:\/\/[^/]+\/([^/?#]+)/.exec(spec.service)?.[1] ?? spec.service) : spec.service;
    }
    if (service === undefined) {
      this.out.error([...at, "rotation"], "a rotation needs its service: rotation.service, or the variable's service: (dsops's form)");
      // Reported: the checks after this one look at complete blocks only.
      delete (spec as { rotation?: unknown }).rotation;
      return;
    }
    const fromService = perService.get(service) ?? {};
    const merged: Rotation = { ...(top ?? {}), ...fromService };
    // Nested blocks: the service's health and monitor replace the defaults' as a whole; the variable's own keys win.
    const ownSet = Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined));
    const result: Rotation = { service, ...merged, ...ownSet };
    result.service = service;
    if (result.strategy === undefined) result.strategy = "single-user";
    this.maintenanceWindows(result, [...at, "rotation"]);
    // A service's channels tell its own rotations only: the others keep to the file's channels.
    if (result.notifications === undefined && this.serviceChannels.size) result.notifications = { channels: [...new Set(this.fileChannels)] };
    // In place: the variable's spec is the one the loaded Config hands out.
    (spec as { rotation?: unknown }).rotation = result;
  }

  /**
   * dsops's `constraints.maintenanceWindows: [{cron, duration, timezone}]` as our `windows`
   * (`schedule`, `duration`, `timezone`): the scheduler (`rotation run --due`, `dsops worker`)
   * rotates only inside them. Giving both forms is an error.
   */
  private maintenanceWindows(r: Rotation, at: Path): void {
    const c = r.constraints as Record<string, unknown> | undefined;
    if (!c || c.maintenanceWindows === undefined) return;
    const path: Path = [...at, "constraints", "maintenanceWindows"];
    if (r.windows !== undefined) {
      this.out.error(path, '"constraints.maintenanceWindows" and "windows" both give the maintenance windows; keep one', true);
      return;
    }
    if (!Array.isArray(c.maintenanceWindows)) {
      this.out.error(path, "expected a list of {cron, duration, timezone}", true);
      return;
    }
    const windows: Array<Record<string, unknown>> = [];
    c.maintenanceWindows.forEach((w: unknown, i: number) => {
      const e = (w ?? {}) as Record<string, unknown>;
      const unknown = Object.keys(e).filter((k) => !["cron", "duration", "timezone"].includes(k));
      if (typeof w !== "object" || w === null || Array.isArray(w)) this.out.error([...path, i], "expected {cron, duration, timezone}", true);
      else if (typeof e.cron !== "string") this.out.error([...path, i, "cron"], "required: the cron (5 fields) that opens the window", true);
      else if (typeof e.duration !== "string") this.out.error([...path, i, "duration"], "required: how long the window stays open (4h, 90m)", true);
      else if (e.timezone !== undefined && typeof e.timezone !== "string") this.out.error([...path, i, "timezone"], "expected an IANA zone name (Europe/Paris)", true);
      else if (unknown.length) this.out.error([...path, i, unknown[0]], `unknown key "${unknown[0]}" (expected one of: cron, duration, timezone)`, true);
      else windows.push({ schedule: e.cron, duration: e.duration, ...(e.timezone !== undefined ? { timezone: e.timezone } : {}) });
    });
    if (windows.length === c.maintenanceWindows.length) r.windows = windows;
  }

  /** A dsops rotation block (a service's, or the top-level defaults) in our keys. */
  private mapBlock(b: DsopsServiceRotation, at: Path, type: TargetType | undefined): Rotation {
    const r: Rotation = {};
    let rolloutStrategy: "canary" | "percentage" | undefined;
    if (b.strategy !== undefined) {
      const s = b.strategy;
      if (Object.hasOwn(rolloutStrategyNames, s)) rolloutStrategy = rolloutStrategyNames[s];
      else if (isKnownStrategy(s) || Object.hasOwn(strategyAliases, s)) r.strategy = Object.hasOwn(strategyAliases, s) ? strategyAliases[s] : s;
      else {
        const names = [...rotationStrategies, ...Object.keys(strategyAliases), ...Object.keys(rolloutStrategyNames), ...pluginStrategyNames()];
        const hint = suggest(s, names);
        this.out.error([...at, "strategy"], `unknown strategy "${s}"${hint ? ` (did you mean "${hint}"?)` : ` (expected one of: ${names.join(", ")})`}`);
      }
    }
    if (b.ttl !== undefined) r.ttl = b.ttl;
    if (b.schedule !== undefined) r.schedule = b.schedule;
    if (b.user !== undefined) r.user = b.user;
    if (b.grace_period !== undefined && b.overlap_duration !== undefined)
      this.out.error([...at, "overlap_duration"], '"overlap_duration" is another name of "grace_period", which is given too; keep one', true);
    else if (b.grace_period !== undefined || b.overlap_duration !== undefined) r.grace_period = b.grace_period ?? b.overlap_duration;
    if (b.metrics !== undefined)
      this.out.error([...at, "metrics"], "metrics are configured once for the file: move this block to metrics.prometheus (enabled, port, path, labels)", true);

    const verification = b.verification !== undefined ? this.out.parse(dsopsVerificationSchema, b.verification, [...at, "verification"]) : undefined;
    if (verification) {
      if (verification.enabled === false)
        this.out.error([...at, "verification", "enabled"], "false has no equivalent: the new credential always logs in at the target before it becomes current (verify), or the rotation rolls back", true);
      const ms = verification.timeout !== undefined ? durationMs(verification.timeout) : undefined;
      r.verification = {
        ...(verification.query !== undefined ? { query: verification.query } : {}),
        retries: verification.retries ?? 0,
        timeout_ms: ms !== undefined && ms > 0 ? ms : 10000,
      };
    }
    const health = b.health_checks !== undefined ? this.out.parse(dsopsHealthChecksSchema, b.health_checks, [...at, "health_checks"]) : undefined;
    if (health) this.healthOf(health, [...at, "health_checks"], r);

    const rolloutKey = b.canary ? "canary" : b.rollout ? "rollout" : undefined;
    if (b.canary && b.rollout) this.out.error([...at, "rollout"], '"canary" and "rollout" both describe the rollout; keep one', true);
    if (rolloutKey && !rolloutStrategy) rolloutStrategy = rolloutKey === "canary" ? "canary" : "percentage";
    if (rolloutStrategy && !rolloutKey)
      this.out.error([...at, "strategy"], `strategy ${b.strategy} needs the instances to roll out to: a ${rolloutStrategy === "canary" ? "canary" : "rollout"}: {discovery: …} block`);
    const block = rolloutKey ? this.out.parse(dsopsRolloutSchema, b.canary ?? b.rollout, [...at, rolloutKey]) : undefined;
    if (rolloutKey && rolloutStrategy && block) {
      const ro = this.rolloutOf(block, [...at, rolloutKey], rolloutStrategy, type);
      // Waves are checked at the interval of the service's health checks, as in dsops.
      const m = ro?.monitor as Record<string, unknown> | undefined;
      if (m && m.interval === undefined && (r.monitor as { interval?: unknown } | undefined)?.interval !== undefined) m.interval = (r.monitor as { interval: unknown }).interval;
      // Our schema's defaults and checks (waves ascending to 100, unique instances); problems point at the dsops block.
      const parsed = ro && this.out.parse(rolloutSchema, ro, [...at, rolloutKey]);
      if (parsed) r.rollout = parsed;
    }

    const rollback = b.rollback !== undefined ? this.out.parse(dsopsRollbackSchema, b.rollback, [...at, "rollback"]) : undefined;
    if (rollback) this.rollbackOf(rollback, [...at, "rollback"], r);
    const notifications = b.notifications !== undefined ? this.out.parse(z.looseObject({}), b.notifications, [...at, "notifications"]) : undefined;
    if (notifications) this.notificationsOf(notifications, [...at, "notifications"], r);
    return r;
  }

  private healthOf(h: z.infer<typeof dsopsHealthChecksSchema>, at: Path, r: Rotation): void {
    if (!h.enabled) return;
    const monitor: Record<string, unknown> = {};
    if (h.monitoring_period !== undefined) monitor.period = h.monitoring_period;
    if (h.interval !== undefined) monitor.interval = h.interval;
    if (h.failure_threshold !== undefined) monitor.failures = h.failure_threshold;
    if (Object.keys(monitor).length) {
      const m = this.out.parse(monitorSchema, monitor, at);
      if (m) r.monitor = m;
    }
    const checks: unknown[] = [];
    (h.checks ?? []).forEach((c, i) => {
      const m = this.checkOf(c, [...at, "checks", i]);
      if (m) checks.push(m);
    });
    (h.custom_scripts ?? []).forEach((c, i) => {
      const m = this.scriptOf(c, [...at, "custom_scripts", i]);
      if (m) checks.push(m);
    });
    if (checks.length) r.health = checks;
  }

  /** A dsops check: its type passed through, `timeout` (seconds, or a duration) as `timeout_ms`, checked against our check of that type. */
  private checkOf(c: z.infer<typeof dsopsCheckSchema>, at: Path): unknown {
    const schema = this.health.get(c.type);
    if (!schema) {
      const known = [...this.health.keys()];
      const hint = suggest(c.type, known);
      this.out.error([...at, "type"], `health check type "${c.type}" is not supported by this version${hint ? ` (did you mean "${hint}"?)` : ""} (supported: ${known.join(", ")})`);
      return undefined;
    }
    const { timeout, ...rest } = c as Record<string, unknown>;
    const mapped: Record<string, unknown> = { ...rest };
    if (timeout !== undefined) {
      const ms = typeof timeout === "number" || typeof timeout === "string" ? tryParseDuration(timeout) : undefined;
      if (ms === undefined || ms <= 0) {
        this.out.error([...at, "timeout"], "expected a number of seconds or a duration (5s, 500ms) above 0");
        return undefined;
      }
      if (mapped.timeout_ms !== undefined) {
        this.out.error([...at, "timeout"], '"timeout" (dsops\'s seconds) and "timeout_ms" are both given; keep one', true);
        return undefined;
      }
      mapped.timeout_ms = ms;
    }
    return this.out.parse(schema, mapped, at);
  }

  /** A dsops custom script: our `script` check (no shell when `script` is a path; the environment never holds the secret). */
  private scriptOf(c: z.infer<typeof customScriptSchema>, at: Path): unknown {
    let ok = true;
    if (c.retry !== undefined) {
      this.out.error(
        [...at, "retry"],
        "a check's own retry has no equivalent: a failed round is tried again every health_checks.interval until health_checks.failure_threshold rounds in a row failed",
        true,
      );
      ok = false;
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.environment ?? {})) {
      if (typeof v !== "string") {
        this.out.error([...at, "environment", k], "a health-check script gets text only; a reference here would hand it a secret (it gets DSOPS_SERVICE_NAME, DSOPS_NEW_VERSION … instead)");
        ok = false;
      } else if (/\{\{/.test(v)) {
        this.out.error(
          [...at, "environment", k],
          "templates such as {{.NewConnectionString}} are refused: a health-check script never gets the secret; it gets DSOPS_SERVICE_NAME, DSOPS_ENV, DSOPS_NEW_VERSION, DSOPS_NEW_PRINCIPAL … and logs in with what it reads itself",
        );
        ok = false;
      } else env[k] = v;
    }
    if (!ok) return undefined;
    const mapped = {
      type: "script",
      name: c.name,
      command: Array.isArray(c.script) ? c.script : [c.script],
      env,
      ...(c.timeout !== undefined ? { timeout_ms: Math.max(1, durationMs(c.timeout)) } : {}),
    };
    const schema = this.health.get("script");
    return schema ? this.out.parse(schema, mapped, at) : undefined;
  }

  private rollbackOf(b: z.infer<typeof dsopsRollbackSchema>, at: Path, r: Rotation): void {
    const always = "a failed verification and failed health checks always roll back here, so that the value stored as current keeps working";
    const rollout = r.rollout as Record<string, unknown> | undefined;
    if (b.automatic === false) {
      if (rollout) rollout.on_failure = "stop";
      else this.out.error([...at, "automatic"], `automatic: false has no equivalent without a rollout: ${always}`);
    }
    if (b.on_verification_failure === false) this.out.error([...at, "on_verification_failure"], `false has no equivalent: ${always}`);
    if (b.on_health_check_failure === false) this.out.error([...at, "on_health_check_failure"], `false has no equivalent: ${always} (leave out the health checks you do not want to act on)`);
    if (b.max_retries !== undefined)
      this.out.error([...at, "max_retries"], "no equivalent: a rollback that fails stops and is finished by the next run of the secret (or dsops rotation rollback), never retried in a loop", true);
    if (b.timeout !== undefined)
      this.out.warn([...at, "timeout"], "accepted and not used: each rollback step is bounded by the target's own timeouts (connect_timeout_ms, verification.timeout_ms)", true);
  }

  private rolloutOf(b: z.infer<typeof dsopsRolloutSchema>, at: Path, strategy: "canary" | "percentage", type: TargetType | undefined): Record<string, unknown> | undefined {
    const ro: Record<string, unknown> = { strategy };
    if (!b.discovery) {
      this.out.error(at, "a rollout needs its instances: discovery: {type: explicit, instances: [...]} or {type: endpoint, url}");
      return undefined;
    }
    const d = b.discovery as Record<string, unknown> & { type: string };
    const dAt: Path = [...at, "discovery"];
    if (d.type === "explicit") {
      const { type: _t, instances, ...extra } = d;
      for (const k of Object.keys(extra)) this.out.error([...dAt, k], `unknown key "${k}" (expected one of: type, instances)`, true);
      if (!Array.isArray(instances) || instances.length === 0) {
        this.out.error([...dAt, "instances"], "expected a list of instances [{id, …}]");
        return undefined;
      }
      const settingKeys = type ? Object.keys((targetSettingsSchemas[type] as unknown as { shape: Record<string, unknown> }).shape) : [];
      ro.instances = instances.map((inst, i) => {
        if (!inst || typeof inst !== "object" || Array.isArray(inst)) {
          this.out.error([...dAt, "instances", i], "expected an instance {id, …}");
          return {};
        }
        const { id, name, labels, ...rest } = inst as Record<string, unknown>;
        const out: Record<string, unknown> = { name: id ?? name };
        if (id === undefined && name === undefined) this.out.error([...dAt, "instances", i], "an instance needs its id");
        const lab: Record<string, unknown> = { ...((labels as Record<string, unknown> | undefined) ?? {}) };
        for (const [k, v] of Object.entries(rest)) {
          if (settingKeys.includes(k)) out[k] = v;
          else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") lab[k] = v;
          else this.out.error([...dAt, "instances", i, k], `"${k}" is neither a setting of a ${type ?? "service"} target nor a label (a label is text, a number or true/false)`, true);
        }
        if (Object.keys(lab).length) out.labels = lab;
        return out;
      });
    } else if (d.type === "endpoint") {
      const { type: _t, url, headers, timeout, instance_path, ...extra } = d;
      const disc: Record<string, unknown> = { endpoint: url };
      if (headers !== undefined) disc.headers = headers;
      if (timeout !== undefined) {
        const ms = typeof timeout === "number" || typeof timeout === "string" ? tryParseDuration(timeout) : undefined;
        if (ms === undefined) this.out.error([...dAt, "timeout"], "expected a number of seconds or a duration (10s)");
        else disc.timeout_ms = ms;
      }
      if (instance_path !== undefined && instance_path !== "$.instances[*]" && instance_path !== "$[*]")
        this.out.error([...dAt, "instance_path"], `"${String(instance_path)}" is not read: the endpoint must answer [{…}] ($[*]) or {"instances": [{…}]} ($.instances[*])`);
      const shape = (rolloutDiscoverySchema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
      for (const [k, v] of Object.entries(extra)) {
        if (Object.hasOwn(shape, k)) disc[k] = v;
        else this.out.error([...dAt, k], k === "auth" ? "endpoint discovery with auth: is not supported by this version yet; give the header instead (headers: {authorization: \"store://…\"}, the whole header value kept in a store)" : `unknown key "${k}" (expected one of: type, url, headers, timeout, instance_path)`, true);
      }
      const parsed = this.out.parse(rolloutDiscoverySchema, disc, dAt);
      if (!parsed) return undefined;
      ro.discovery = disc;
      // Endpoint instances carry `id` in dsops's answer; ours read `name`: said in the README.
    } else {
      const shape = (rolloutDiscoverySchema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
      if (Object.hasOwn(shape, "type")) ro.discovery = d;
      else {
        this.out.error(
          [...dAt, "type"],
          `rollout discovery type "${d.type}" is not supported by this version yet (supported: explicit, endpoint)${suggest(d.type, ["explicit", "endpoint", "kubernetes", "cloud"]) && !["kubernetes", "cloud"].includes(d.type) ? ` (did you mean "${suggest(d.type, ["explicit", "endpoint", "kubernetes", "cloud"])}"?)` : ""}`,
        );
        return undefined;
      }
    }

    // Canary: the instances instance_selector picks (k=v[,k=v]) are labelled canary: true.
    if (b.instance_selector !== undefined) {
      const pairs = b.instance_selector.split(",").map((p) => p.trim().split("="));
      if (pairs.some((p) => p.length !== 2 || !p[0])) this.out.error([...at, "instance_selector"], `expected label=value[,label=value] (e.g. role=canary), not "${b.instance_selector}"`);
      else if (strategy !== "canary") this.out.error([...at, "instance_selector"], "instance_selector picks the canary instances; it is read only by strategy canary", true);
      else if (Array.isArray(ro.instances)) {
        for (const inst of ro.instances as Array<Record<string, unknown>>) {
          const labels = (inst.labels as Record<string, unknown> | undefined) ?? {};
          if (pairs.every(([k, v]) => String(labels[k.trim()]) === v.trim())) inst.labels = { ...labels, canary: true };
        }
      } else ro.canary_selector = b.instance_selector;
    }
    if (ro.canary_selector !== undefined) {
      this.out.error([...at, "instance_selector"], "instance_selector works with listed instances (discovery type explicit); discovered instances are marked canary by their label canary: true");
      delete ro.canary_selector;
    }

    // Waves: dsops's percentages are cumulative; each wave's wait and health monitoring become the one period monitored between waves.
    const waves = b.rollout_waves ?? b.waves;
    if (b.rollout_waves && b.waves) this.out.error([...at, "waves"], '"waves" and "rollout_waves" both list the waves; keep one', true);
    const periods: number[] = [];
    if (b.health_monitoring_period !== undefined) periods.push(durationMs(b.health_monitoring_period));
    if (waves) {
      ro.waves = waves.map((w) => w.percentage);
      waves.forEach((w, i) => {
        if (w.require_approval) this.out.error([...at, b.rollout_waves ? "rollout_waves" : "waves", i, "require_approval"], "no approval step here: use pause_on_failure (on_failure: stop) and resume with dsops secrets rotate");
        periods.push(Math.max(w.wait !== undefined ? durationMs(w.wait) : 0, w.health_monitoring !== undefined ? durationMs(w.health_monitoring) : 0));
      });
    }
    const monitor: Record<string, unknown> = {};
    if (periods.length) {
      const longest = Math.max(...periods);
      monitor.period = formatDuration(longest);
      if (new Set(periods).size > 1)
        this.out.warn(
          [...at, b.rollout_waves ? "rollout_waves" : waves ? "waves" : "health_monitoring_period"],
          `waves are monitored for one period here: the longest given (${longest / 1000}s) is used between every two waves`,
          true,
        );
    }
    if (b.failure_threshold !== undefined) monitor.failures = b.failure_threshold;
    if (Object.keys(monitor).length) ro.monitor = monitor;

    if (b.pause_on_failure) ro.on_failure = "stop";
    if (b.manual_approval_required && !b.pause_on_failure)
      this.out.error([...at, "manual_approval_required"], "no approval step here: a rollout halted by pause_on_failure: true waits for you to run dsops secrets rotate again (or dsops rotation rollback)", true);
    if (b.persist_progress === false) this.out.error([...at, "persist_progress"], "progress is always kept in the rotation record (a crashed run resumes at its wave); false has no equivalent", true);
    if (b.progress_file !== undefined)
      this.out.warn([...at, "progress_file"], "accepted and not used: rollout progress is kept in the rotation record, with the rotation history", true);
    return ro;
  }

  /** A service's channels: defined once for the file (under notifications:), and chosen by the service's variables. */
  private notificationsOf(n: Record<string, unknown>, at: Path, r: Rotation): void {
    const schemas: Record<string, z.ZodType> = { slack: slackSettingsSchema, email: emailSettingsSchema, pagerduty: pagerdutySettingsSchema };
    const channels: string[] = [];
    for (const [kind, value] of Object.entries(n)) {
      const cAt: Path = [...at, kind];
      if (kind === "webhook" || kind === "webhooks") {
        const list = kind === "webhook" ? [value] : Array.isArray(value) ? value : [value];
        list.forEach((w, i) => {
          const wAt = kind === "webhook" ? cAt : [...cAt, i];
          const parsed = this.out.parse(webhookSettingsSchema, this.refsOf(w, wAt), wAt) as { name?: string } | undefined;
          if (!parsed) return;
          const name = parsed.name ?? `${String(at[1])}-${i}`;
          const hooks = ((this.notifications ??= {}).webhooks as Array<{ name?: string }> | undefined) ?? [];
          const same = hooks.find((h) => h.name === name);
          if (same && JSON.stringify(same) !== JSON.stringify({ ...parsed, name })) {
            this.out.error(wAt, `a second webhook named "${name}" with other settings (webhook names are unique in the file)`);
            return;
          }
          if (!same) this.notifications.webhooks = [...hooks, { ...parsed, name }];
          channels.push(`webhook:${name}`);
          if (!this.fileChannels.includes(`webhook:${name}`)) this.serviceChannels.add(`webhook:${name}`);
        });
        continue;
      }
      const schema = schemas[kind];
      if (!schema) {
        const hint = suggest(kind, [...Object.keys(schemas), "webhook"]);
        this.out.error(cAt, `unknown notification channel "${kind}"${hint ? ` (did you mean "${hint}"?)` : " (expected one of: slack, email, pagerduty, webhook)"}`, true);
        continue;
      }
      let v = this.refsOf(value, cAt);
      if (v && typeof v === "object" && !Array.isArray(v) && "notify_on_wave_completion" in v) {
        const { notify_on_wave_completion: _w, ...rest } = v as Record<string, unknown>;
        this.out.warn([...cAt, "notify_on_wave_completion"], "accepted and not used: there is no event per wave; a rollout sends started, completed (listing instances left on the old credential), failed and rollback", true);
        v = rest;
      }
      const parsed = this.out.parse(schema, v, cAt);
      if (parsed === undefined) continue;
      const existing = this.notifications?.[kind];
      if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(parsed)) {
        this.out.error(cAt, `a ${kind} channel with other settings than notifications.${kind} (or another service's): there is one ${kind} channel per file; define it once under notifications:`);
        continue;
      }
      (this.notifications ??= {})[kind] = parsed;
      channels.push(kind);
      if (!this.fileChannels.includes(kind)) this.serviceChannels.add(kind);
    }
    if (channels.length) r.notifications = { channels };
  }

  /** A channel's settings with each `{from: {store, key}}` (dsops's form of a credential) as the `store://` reference our channels resolve when they send. */
  private refsOf(value: unknown, at: Path): unknown {
    if (Array.isArray(value)) return value.map((v, i) => this.refsOf(v, [...at, i]));
    if (!value || typeof value !== "object") return value;
    const o = value as Record<string, unknown>;
    if (Object.keys(o).length === 1 && "from" in o) return this.refOrText(o, at, false) ?? "";
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, this.refsOf(v, [...at, k])]));
  }

  /** dsops's `admin_credentials: {username, password}`: each a text or `{from: …}`; the password must come from a store. */
  private adminOf(value: unknown, at: Path): { username: string; password: string } | undefined {
    const c = this.out.parse(adminCredentialsSchema, value, at);
    if (!c) return undefined;
    const username = this.refOrText(c.username, [...at, "username"], true);
    const password = this.refOrText(c.password, [...at, "password"], false);
    return username !== undefined && password !== undefined ? { username, password } : undefined;
  }

  private sslMode(entry: Record<string, unknown>, at: Path): void {
    const mode = entry.ssl_mode;
    delete entry.ssl_mode;
    if (entry.ssl !== undefined) {
      this.out.error(at, '"ssl_mode" is another spelling of "ssl", which is given too; keep one', true);
      return;
    }
    if (typeof mode === "string" && Object.hasOwn(SSL_MODES, mode)) entry.ssl = SSL_MODES[mode];
    else
      this.out.error(
        at,
        `ssl_mode "${String(mode)}" has no equivalent (disable, require or verify-full): "prefer" and "allow" would fall back to plain text without a word, "verify-ca" skips the host name check`,
      );
  }

  private refOrText(v: unknown, at: Path, textOk: boolean): string | undefined {
    if (v === undefined) {
      this.out.error(at, "required but missing");
      return undefined;
    }
    if (typeof v === "string") {
      if (v.startsWith("store://")) return this.known(v, at);
      if (textOk) return v;
      this.out.error(at, "the admin password is never written in dsops.yaml: give a reference, password: {from: {store: <store>, key: <key>}}");
      return undefined;
    }
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "from" in v) {
      try {
        const ref = parseFrom((v as { from: Parameters<typeof parseFrom>[0] }).from);
        if (ref.field !== undefined || ref.version !== undefined) {
          this.out.error([...at, "from"], "a reference to the whole value, without #field or version");
          return undefined;
        }
        return this.known(`store://${ref.store}/${ref.key}`, [...at, "from"]);
      } catch (e) {
        this.out.error([...at, "from"], (e as Error).message);
        return undefined;
      }
    }
    this.out.error(at, textOk ? "expected a text or {from: {store, key}}" : "expected {from: {store, key}}");
    return undefined;
  }

  private known(ref: string, at: Path): string | undefined {
    const store = /^store:\/\/([^/]+)\//.exec(ref)?.[1] ?? "";
    if (this.storeNames.includes(store)) return ref;
    const hint = suggest(store, this.storeNames);
    this.out.error(at, `unknown store "${store}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
    return undefined;
  }
}

/** dsops's `ssl_mode` of a SQL service: the modes ours has (`ssl`); the others refused with the reason. */
const SSL_MODES: Readonly<Record<string, string>> = { disable: "disable", require: "require", "verify-full": "verify-full" };

function typeOf(given: string): TargetType | undefined {
  const t = Object.hasOwn(targetTypeAliases, given) ? targetTypeAliases[given] : given;
  return (targetTypes as readonly string[]).includes(t) ? (t as TargetType) : undefined;
}
