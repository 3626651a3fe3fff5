import type { ConfigCheck, Findings, Path } from "../engine/config/load";
import type { RawConfig } from "../engine/config/schema";
import { parseStoreUri, type SecretRef } from "../engine/refs";
import { suggest } from "../core/suggest";
import type { VariableRotation } from "./settings";
import { baseShapeOf, resolveStrategy } from "./strategies/index";
import { pluginStrategy } from "./strategies/plugins";
import { targetCapabilities, targetSettingsSchemas, type TargetSettings } from "./targets/settings";
import { plannedTargetTypes, targetTypeAliases, targetTypes, type TargetCapability, type TargetType } from "./targets/types";
import { pluginTargetType, type PluginTargetType } from "./targets/plugins";

/**
 * The checks of `services:` entries and `rotation:` blocks that used to wait for a rotation to
 * run: each target's settings against its schema, every `rotation.service` against `services:`,
 * what each strategy needs (`user`, `users`), the rotated reference (no `#field`, no pinned
 * version), `rotation.schedule`, `rotation.history.service` and the settings of listed rollout
 * instances. They run where dsops.yaml loads (`dsops plan`, the Pulumi resources' `check`), so a
 * typo fails there, with its path, line and column, instead of weeks later in a night window.
 * No target's client library is loaded: the schemas live in `rotation/targets/settings.ts`.
 * The composed loader (provider/compose/config.ts) runs them as `rotationConfigCheck`.
 */

/**
 * The loader's check: `checkRotations` unless the caller turned it off (`checkRotations: false`),
 * strict when asked (`strictRotations`); the services come back with alias types replaced.
 */
export const rotationConfigCheck: ConfigCheck = (raw, { refOf, findings, options }) =>
  options.checkRotations === false ? raw : { ...raw, services: checkRotations(raw, refOf, findings, options.strictRotations === true) };

const known = targetTypes as readonly string[];
const catalogue = plannedTargetTypes as readonly string[];

const pathText = (p: Path) => p.join(".");

/**
 * Check `raw.services` and every variable's `rotation` block. `refOf` gives a variable's checked
 * reference (undefined when the variable has none or it failed its own checks). Returns the
 * services with alias types replaced by the type they name (`postgres` → `postgresql`).
 */
export function checkRotations(
  raw: RawConfig,
  refOf: (env: string, variable: string) => SecretRef | undefined,
  out: Findings,
  /** Also refuse what would make a rotation fail but is only a warning in dsops.yaml (a policy of its own: RotationPolicy). */
  strict = false,
): Record<string, RawConfig["services"][string]> {
  const fails = strict ? out.error : out.warn;
  const services: Record<string, RawConfig["services"][string]> = Object.create(null);
  const serviceNames = Object.keys(raw.services);
  const storeNames = [...new Set([...Object.keys(raw.secretStores), ...Object.keys(raw.providers)])];

  // Who uses each service: rotations, and postgres histories.
  const users = new Map<string, string[]>();
  const use = (service: string, by: Path) => users.set(service, [...(users.get(service) ?? []), pathText(by)]);
  // Keys, not entries: no pair is made for each of the (many) variables that have no rotation.
  for (const [env, vars] of Object.entries(raw.envs))
    for (const name of Object.keys(vars)) {
      const spec = vars[name];
      const r = spec.rotation;
      if (!r) continue;
      use(r.service, ["envs", env, name, "rotation"]);
      if (r.history?.type === "postgres") use(r.history.service, ["envs", env, name, "rotation", "history"]);
    }

  const settings = new Map<string, TargetSettings>();
  for (const [name, entry] of Object.entries(raw.services)) {
    const given = entry.type;
    const type = Object.hasOwn(targetTypeAliases, given) ? targetTypeAliases[given] : given;
    services[name] = type === given ? entry : { ...entry, type };
    const at: Path = ["services", name, "type"];
    const usedBy = users.get(name) ?? [];
    if (known.includes(type)) {
      const s = out.parse(targetSettingsSchemas[type as TargetType], services[name], ["services", name]);
      if (s) settings.set(name, s as TargetSettings);
      checkRefs(services[name], ["services", name], storeNames, out);
    } else if (pluginTargetType(type)) {
      // A plugin's type: its schema checks the entry without `type`; its declared capabilities stand for the target's.
      const plugin = pluginTargetType(type) as PluginTargetType;
      const { type: _type, ...own } = services[name];
      if (out.parse(plugin.settings, own, ["services", name]) !== undefined) settings.set(name, { type, capabilities: plugin.capabilities } as unknown as TargetSettings);
      checkRefs(services[name], ["services", name], storeNames, out);
    } else if (catalogue.includes(type)) {
      (usedBy.length ? fails : out.warn)(
        at,
        `service type "${type}" is in dsops's service catalogue, but this version cannot rotate it yet (rotation targets: ${targetTypes.join(", ")})` +
          (usedBy.length ? `; rotating ${usedBy.join(", ")} fails until then` : ""),
      );
    } else {
      const hint = suggest(type, [...targetTypes, ...Object.keys(targetTypeAliases), ...plannedTargetTypes]);
      const what = `unknown rotation target type "${type}"${hint ? ` (did you mean "${hint}"?)` : ` (rotation targets: ${targetTypes.join(", ")})`}`;
      if (usedBy.length) out.error(at, what);
      else out.warn(at, `${what}; no rotation uses it`);
    }
  }

  for (const [env, vars] of Object.entries(raw.envs))
    for (const name of Object.keys(vars)) {
      const spec = vars[name];
      const policy = spec.rotation as VariableRotation | undefined;
      if (!policy) continue;
      const v: Path = ["envs", env, name];
      const r: Path = [...v, "rotation"];
      if (spec.literal !== undefined) out.error([...v, "literal"], "a rotated variable needs a secret in a store (from: store://…), not a literal");
      const ref = refOf(env, name);
      if (ref?.field !== undefined) out.error([...v, "from"], `rotation rotates a whole secret; remove "#${ref.field}" (read a field of it in another variable)`);
      if (ref?.version !== undefined) out.error([...v, "from"], `a rotated secret cannot pin a version ("${ref.version}"): rotation moves the current one`);
      if (ref?.options) out.error([...v, "from"], `a rotated secret cannot pin a version (${Object.keys(ref.options).join(", ")}): rotation moves the current one`);

      const shape = baseShapeOf(policy);
      if ((shape === "single-user" || shape === "two-secret") && !policy.user)
        out.error(
          [...r, "user"],
          shape === "single-user"
            ? `${policy.strategy} rotation needs the user whose password is rotated (user: <name>)${policy.users ? ', or strategy: alternating-users for "users"' : ""}`
            : "two-secret rotation needs the owner (user, account) the keys belong to (user: <name>)",
        );
      if (shape === "alternating-users") {
        if (!policy.users) out.error([...r, "users"], `${policy.strategy} rotation needs two users, e.g. users: [app_a, app_b]`);
        else if (policy.users[0] === policy.users[1]) out.error([...r, "users"], `the two users must differ (both are "${policy.users[0]}")`);
      } else if (policy.users && !pluginStrategy(shape)) out.warn([...r, "users"], `"users" is read only by strategy alternating-users; ${policy.strategy} rotates "${policy.user ?? "(no user)"}"`, true);
      if (policy.grace_period !== undefined && shape !== "two-secret" && !pluginStrategy(shape))
        out.warn([...r, "grace_period"], `"grace_period" is read only by strategy two-secret`, true);

      const service = policy.service;
      if (!Object.hasOwn(raw.services, service)) {
        const hint = suggest(service, serviceNames);
        const store = Object.hasOwn(raw.secretStores, service) || Object.hasOwn(raw.providers, service);
        out.error(
          [...r, "service"],
          (store ? `"${service}" is a secret store, not a service: rotation.service names the services: entry whose credential this is` : `unknown service "${service}"`) +
            (hint ? ` (did you mean "${hint}"?)` : serviceNames.length ? ` (services: ${serviceNames.join(", ")})` : " (no services: are defined)"),
        );
      } else {
        const s = settings.get(service);
        if (s) {
          const needs = resolveStrategy(policy).shape.requires;
          const caps = pluginTargetType(s.type) ? new Set((s as unknown as { capabilities: TargetCapability[] }).capabilities) : targetCapabilities(s);
          const missing = needs.filter((c) => !caps.has(c));
          if (missing.length)
            fails(
              [...r, "strategy"],
              `strategy ${shape} needs a target that can ${missing.join(" and ")}; service "${service}" (${s.type}) cannot, so rotating fails`,
            );
          checkSqlHealthTypes(policy, service, s.type, r, fails);
          if (policy.rollout?.instances && !pluginTargetType(s.type)) checkInstances(raw.services[service], s.type, policy.rollout.instances, [...r, "rollout", "instances"], storeNames, out);
        }
      }
      if (policy.approval) {
        if (policy.approval.identity === "token" && !policy.approval.token_key)
          out.error([...r, "approval", "token_key"], "identity token needs the HMAC key that signs approval tokens: token_key: store://… or env:NAME");
        if (policy.approval.approvers && policy.approval.approvers.length < policy.approval.required)
          out.error([...r, "approval", "required"], `${policy.approval.required} approvals required, but approvers lists only ${policy.approval.approvers.length}`);
      }
      if (policy.rollout && shape === "two-secret")
        out.error([...r, "rollout"], "strategy two-secret mints a credential per target; a rollout applies one credential to many instances (use single-user or alternating-users)");

      if (policy.schedule !== undefined) {
        const { parseCron } = require("../schedule/window") as typeof import("../schedule/window");
        try {
          parseCron(policy.schedule, "");
        } catch (e) {
          out.error([...r, "schedule"], (e as Error).message.replace(/^: /, ""));
        }
      }

      if (policy.windows?.length) {
        const { Window } = require("../schedule/window") as typeof import("../schedule/window");
        policy.windows.forEach((w, i) => {
          try {
            new Window(w, "");
          } catch (e) {
            const m = /^([A-Za-z]+)(?:\[(\d+)\])?(?:\.([a-z]+))?: (.*)$/s.exec((e as Error).message);
            const sub: Path = m ? [m[1], ...(m[2] !== undefined ? [Number(m[2])] : []), ...(m[3] ? [m[3]] : [])] : [];
            out.error([...r, "windows", i, ...sub], m ? m[4] : (e as Error).message);
          }
        });
      }

      const h = policy.history;
      if (h?.type === "postgres") {
        if (!Object.hasOwn(raw.services, h.service)) {
          const hint = suggest(h.service, serviceNames);
          out.error([...r, "history", "service"], `unknown service "${h.service}"${hint ? ` (did you mean "${hint}"?)` : ""}; the history needs a postgresql service`);
        } else if (services[h.service].type !== "postgresql")
          out.error([...r, "history", "service"], `service "${h.service}" is of type ${services[h.service].type}; the history needs a postgresql service`);
      }
    }
  return services;
}

/** dsops's SQL health types (provider/health/sql-checks.ts) run on postgresql and mysql services; the replication ones on postgresql. */
const SQL_HEALTH_TYPES = ["connection", "query_latency", "connection_pool", "replication_lag", "replication_connection", "active_transactions"];
const REPLICATION_HEALTH_TYPES = ["replication_lag", "replication_connection"];

function checkSqlHealthTypes(policy: VariableRotation, service: string, type: string, r: Path, fails: Findings["warn"]): void {
  (policy.health ?? []).forEach((c, i) => {
    if (!SQL_HEALTH_TYPES.includes(c.type)) return;
    if (type !== "postgresql" && type !== "mysql")
      fails([...r, "health", i, "type"], `a ${c.type} check needs a SQL service (postgresql, mysql); service "${service}" is ${type}, so the check fails and every rotation rolls back`);
    else if (REPLICATION_HEALTH_TYPES.includes(c.type) && type !== "postgresql")
      fails([...r, "health", i, "type"], `a ${c.type} check watches PostgreSQL streaming replicas; service "${service}" is ${type}, so the check fails and every rotation rolls back`);
  });
}

/** Each listed rollout instance's own settings, laid over its service's entry, against the target's schema. */
function checkInstances(entry: object, type: TargetType, instances: ReadonlyArray<Record<string, unknown>>, at: Path, storeNames: readonly string[], out: Findings): void {
  instances.forEach((inst, i) => {
    const { name: _name, labels: _labels, ...own } = inst;
    if ("type" in own) return; // its own error already ("an instance has the type of its service")
    const keys = new Set(Object.keys(own));
    if (!keys.size) return;
    // Only what the instance sets: problems of the service's own entry are reported there.
    out.parse(targetSettingsSchemas[type], { ...entry, ...own, type }, [...at, i], (p) => keys.has(String(p[0])));
    checkRefs(own, [...at, i], storeNames, out);
  });
}

/** Every `store://` setting (the admin credential, a signing secret) must be a reference to a store of the configuration. */
function checkRefs(entry: object, at: Path, storeNames: readonly string[], out: Findings): void {
  for (const [key, value] of Object.entries(entry)) {
    // A setting made of references ({username, password: "store://…"}, the admin credential): each one.
    if (value && typeof value === "object" && !Array.isArray(value) && key === "admin") {
      checkRefs(value, [...at, key], storeNames, out);
      continue;
    }
    if (typeof value !== "string" || !value.startsWith("store://")) continue;
    let ref: SecretRef;
    try {
      ref = parseStoreUri(value);
    } catch (e) {
      out.error([...at, key], (e as Error).message);
      continue;
    }
    if (!storeNames.includes(ref.store)) {
      const hint = suggest(ref.store, storeNames);
      out.error([...at, key], `unknown store "${ref.store}"${hint ? ` (did you mean "${hint}"?)` : storeNames.length ? ` (stores: ${storeNames.join(", ")})` : " (no secretStores are defined)"}`);
    }
  }
}
