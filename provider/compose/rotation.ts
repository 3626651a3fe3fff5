import { isAbsolute, resolve as resolvePath } from "node:path";
import { clock as currentClock } from "../core/clock";
import { errorMessage } from "../core/errors";
import type { Config } from "../engine/config/load";
import { parseStoreUri } from "../engine/refs";
import type { DsopsMetrics } from "../metrics/index";
import type { Notifications } from "../notify/index";
import { RotationEngine, type RotateOptions, type RotationEngineOptions, type RotationResult } from "../rotation/engine";
import type { RotationEvent } from "../rotation/events";
import type { HealthPort, MetricsPort, NotifyPort, ValuePolicyPort } from "../rotation/ports";

/**
 * The composition of rotation with the operations around it: a RotationEngine whose events
 * reach the configured notification channels (provider/notify) and the metrics
 * (provider/metrics), and whose `rotation.health` checks run through provider/health. The
 * faces (CLI, Pulumi providers) and library users build engines here; the rotation layer itself
 * never loads notify, metrics or health. Each is loaded when first needed (a command that sends
 * nothing loads no notifier; prom-client only once an event is counted).
 */

/** How a composed engine is built: the engine's options, plus what the operations use. */
export interface ComposedRotationOptions extends Omit<RotationEngineOptions, "notify" | "metrics" | "health"> {
  /** The notification hub (default: built from `notifications:` in the config; false: none). */
  readonly notifications?: Notifications | false;
  /** The metrics the events update (default: the process's `defaultMetrics()`; false: none, and no metrics textfile). */
  readonly metrics?: DsopsMetrics | false;
  /** A delivery that failed for good (default: a warning on stderr). */
  readonly onNotificationDropped?: (channel: string, event: RotationEvent, message: string) => void;
  /**
   * This engine's runs only (`secrets rotate --notify` / `--no-notify`): `always` sends every
   * event to every configured channel, whatever the variable's `rotation.notifications` says (a
   * channel's own `enabled`/`events` still hold); `never` sends nothing.
   */
  readonly notifyOverride?: "always" | "never";
}

/** A RotationEngine wired to notify, metrics and health; `notifications` and `metrics` are its hub and its metrics. */
export class ComposedRotationEngine extends RotationEngine {
  private readonly composed: Operations;

  constructor(config: Config, options: ComposedRotationOptions = {}) {
    const { notifications: _n, metrics: _m, onNotificationDropped: _d, notifyOverride: _o, ...engineOptions } = options;
    const ops = new Operations(config, options);
    super(config, { ...engineOptions, metrics: ops.metricsPort, notify: ops.notifyPort, health: ops.healthPort, ...valuePolicyOf(config) });
    this.composed = ops;
    ops.bind(this);
  }

  /** The notification hub (undefined when no channel is configured). */
  get notifications(): Notifications | undefined {
    return this.composed.notifications;
  }

  /** The metrics the events update (undefined: none). */
  get metrics(): DsopsMetrics | undefined {
    return this.composed.metrics;
  }
}

/**
 * The `policies:` a generated value must meet (provider/guard): complexity and patterns of the
 * variable's env. Without `policies:` there is nothing to meet.
 */
function valuePolicyOf(config: Config): { valuePolicy?: ValuePolicyPort } {
  const p = config.raw.policies;
  if (!p) return {};
  const { rulesFor, valueProblems } = require("../guard/policy") as typeof import("../guard/policy");
  return { valuePolicy: { problems: (env, value) => valueProblems(rulesFor(p, env), value) } };
}

/** Build a rotation engine with the configured notifications, metrics and health checks. */
export function composeRotation(config: Config, options: ComposedRotationOptions = {}): ComposedRotationEngine {
  return new ComposedRotationEngine(config, options);
}

/**
 * Library API: rotate one variable's secret with a fresh composed engine (notifications, metrics
 * and health checks as configured). Throws RotationInProgressError when another run holds the
 * secret's lock, RotationError when the rotation rolled back or failed.
 */
export async function rotate(config: Config, env: string, variable: string, options: RotateOptions & ComposedRotationOptions = {}): Promise<RotationResult> {
  const engine = composeRotation(config, options);
  try {
    return await engine.rotate(env, variable, options);
  } finally {
    await engine.close();
  }
}

/** The notification hub, the metrics and the health checker of one engine, each built on first use. */
class Operations {
  private hub?: Notifications | false;
  private sink?: DsopsMetrics | false;
  private engine?: RotationEngine;

  constructor(
    private readonly config: Config,
    private readonly opts: ComposedRotationOptions,
  ) {}

  /** The engine whose resolver reads `store://` settings and whose history the metrics textfile tells. */
  bind(engine: RotationEngine): void {
    this.engine = engine;
    // The textfile tells the whole history (each CLI run is a process of its own).
    engine.events.onRunEnd(() => this.writeTextfile());
  }

  readonly notifyPort: NotifyPort = {
    emit: (event, perVariable) => {
      if (this.opts.notifyOverride === "never") return undefined;
      return this.notifications?.emit(event, this.opts.notifyOverride === "always" ? undefined : perVariable);
    },
    settle: async () => this.notifications?.settle(),
  };

  readonly metricsPort: MetricsPort = {
    observe: (event) => this.metrics?.observe(event),
    healthCheck: (labels, healthy, seconds) => this.metrics?.healthCheck(labels, healthy, seconds),
  };

  readonly healthPort: HealthPort = {
    monitor: (checks, monitor, ctx, o) => (require("../health/index") as typeof import("../health/index")).healthPort.monitor(checks, monitor, ctx, o),
  };

  get notifications(): Notifications | undefined {
    if (this.hub === undefined) {
      if (this.opts.notifications !== undefined) this.hub = this.opts.notifications;
      else if (!this.config.raw.notifications) this.hub = false;
      else {
        const { Notifications: Hub } = require("../notify/index") as typeof import("../notify/index");
        const resolver = this.engine?.resolver;
        this.hub = new Hub(this.config.raw.notifications, {
          clock: this.opts.clock ?? currentClock(),
          configDir: this.config.dir,
          ...(resolver ? { resolveRef: async (ref: string) => (await resolver.resolveRef(parseStoreUri(ref))).value.reveal() } : {}),
          onDropped: (d) => {
            this.metrics?.dropped(d.channel, d.event.type);
            if (this.opts.onNotificationDropped) this.opts.onNotificationDropped(d.channel, d.event, d.message);
            else process.stderr.write(`warning: notification to ${d.channel} (${d.event.type}, ${d.event.service}/${d.event.env}) dropped: ${d.message}\n`);
          },
        });
      }
    }
    return this.hub || undefined;
  }

  get metrics(): DsopsMetrics | undefined {
    if (this.sink === undefined) {
      if (this.opts.metrics !== undefined) this.sink = this.opts.metrics;
      else {
        this.sink = (require("../metrics/index") as typeof import("../metrics/index")).defaultMetrics();
        // The process's registry carries the configuration's constant labels (`metrics.prometheus.labels`).
        const labels = this.config.raw.metrics?.prometheus?.labels;
        if (labels && Object.keys(labels).length) this.sink.registry.setDefaultLabels({ ...labels });
      }
    }
    return this.sink || undefined;
  }

  /** `metrics.prometheus.textfile`: written at the end of each run, from the whole history. */
  private async writeTextfile(): Promise<void> {
    const file = this.config.raw.metrics?.prometheus?.textfile;
    if (!file || this.opts.metrics === false || !this.engine) return;
    try {
      const { metricsFromHistory } = require("../metrics/history") as typeof import("../metrics/history");
      const { DsopsMetrics } = require("../metrics/index") as typeof import("../metrics/index");
      await metricsFromHistory(await this.engine.history(), new DsopsMetrics(this.config.raw.metrics?.prometheus?.labels)).writeTextfile(isAbsolute(file) ? file : resolvePath(this.config.dir, file));
    } catch (e) {
      process.stderr.write(`warning: metrics textfile ${file}: ${errorMessage(e)}\n`);
    }
  }
}
