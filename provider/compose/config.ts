import { createConfigLoader } from "../engine/config/load";
import { configRules } from "./config-schema";

/**
 * The dsops.yaml loader every face uses (the CLI, the Pulumi providers, the SDK, the library
 * API): the engine's loader with the composed schema and the features' checks.
 */
export const { parseConfig, loadConfigFile, configFromObject } = createConfigLoader(configRules);

export type { Config, Variable, LoadOptions } from "../engine/config/load";
