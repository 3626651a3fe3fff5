import { ConfigError } from "../../core/errors";
import { suggest } from "../../core/suggest";
import { pluginTargetType, type PluginTargetType } from "./plugins";
import { plannedTargetTypes, targetTypes, type Target, type TargetContext, type TargetFactory, type TargetType } from "./types";

/**
 * The one registration point of rotation target types. Exhaustive: a type in `targetTypes`
 * without a factory does not compile. Each factory `require`s its module when called, so a
 * target's client library is loaded only when a service of that type is rotated.
 */
export const targetFactories: Record<TargetType, TargetFactory> = {
  postgresql: (name, raw, ctx) => {
    const m = require("./postgresql") as typeof import("./postgresql");
    return new m.PostgresTarget(name, raw, ctx);
  },
  mysql: (name, raw, ctx) => new (require("./mysql") as typeof import("./mysql")).MysqlTarget(name, raw, ctx),
  redis: (name, raw, ctx) => new (require("./redis") as typeof import("./redis")).RedisTarget(name, raw, ctx),
  "aws.iam": (name, raw, ctx) => new (require("./aws-iam") as typeof import("./aws-iam")).AwsIamTarget(name, raw, ctx),
  webhook: (name, raw, ctx) => new (require("./webhook") as typeof import("./webhook")).WebhookTarget(name, raw, ctx),
  script: (name, raw, ctx) => new (require("./script") as typeof import("./script")).ScriptTarget(name, raw, ctx),
};

/** Build the target of a `services:` entry. Unknown or planned types are ConfigErrors naming the path. */
export function createTarget(name: string, raw: unknown, ctx: TargetContext): Target {
  const type = (raw as { type?: unknown } | undefined)?.type;
  const path = `services.${name}.type`;
  if (typeof type !== "string") throw new ConfigError(`${path}: missing service type`);
  if (!(targetTypes as readonly string[]).includes(type)) {
    const plugin = pluginTargetType(type);
    if (plugin) return createPluginTarget(plugin, name, raw, ctx);
    if ((plannedTargetTypes as readonly string[]).includes(type))
      throw new ConfigError(`${path}: rotation target type "${type}" is not supported yet (supported: ${targetTypes.join(", ")})`);
    const hint = suggest(type, [...targetTypes, ...plannedTargetTypes]);
    throw new ConfigError(`${path}: unknown rotation target type "${type}"${hint ? ` (did you mean "${hint}"?)` : ` (supported: ${targetTypes.join(", ")})`}`);
  }
  return targetFactories[type as TargetType](name, raw, ctx);
}

/** A plugin's target, its entry checked with the plugin's schema (without `type`); issues name the field. */
function createPluginTarget(plugin: PluginTargetType, name: string, raw: unknown, ctx: TargetContext): Target {
  const { type: _type, ...own } = raw as Record<string, unknown>;
  const parsed = plugin.settings.safeParse(own);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `services.${name}${i.path.map((p) => `.${String(p)}`).join("")}: ${i.message}`);
    throw new ConfigError(problems.join("\n"), problems, { hint: `settings of rotation target type "${plugin.type}" (plugin ${plugin.plugin})` });
  }
  return plugin.create(name, parsed.data, ctx);
}
