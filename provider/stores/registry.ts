import type { StoreType, StoreSettings } from "./settings";
import type { Store, StoreContext, StoreFactory } from "./types";
import { pluginStoreType } from "./plugins";

/**
 * The one registration point of store types. Exhaustive: a type in `StoreType` without a
 * factory does not compile. Each factory `require`s its module when called, so a store's SDK
 * is loaded only when a store of that type is used.
 */
export const storeFactories: { [T in StoreType]: StoreFactory<T> } = {
  literal: (name, s) => new (require("./literal") as typeof import("./literal")).LiteralStore(name, s),
  mock: (name, s) => new (require("./mock") as typeof import("./mock")).MockStore(name, s),
  json: (name, s, ctx) => new (require("./json") as typeof import("./json")).JsonStore(name, s, ctx),
  env: (name, s, ctx) => new (require("./env") as typeof import("./env")).EnvStore(name, s, ctx),
  file: (name, s, ctx) => new (require("./file") as typeof import("./file")).FileStore(name, s, ctx),
  "aws.secretsmanager": (name, s, ctx) =>
    new (require("./aws-secretsmanager") as typeof import("./aws-secretsmanager")).AwsSecretsManagerStore(name, s, ctx),
  "aws.ssm": (name, s, ctx) => new (require("./aws-ssm") as typeof import("./aws-ssm")).AwsSsmStore(name, s, ctx),
  "aws.sts": (name, s, ctx) => new (require("./aws-sts") as typeof import("./aws-sts")).AwsStsStore(name, s, ctx),
  "aws.sso": (name, s, ctx) => new (require("./aws-sso") as typeof import("./aws-sso")).AwsSsoStore(name, s, ctx),
  aws: (name, s, ctx) => new (require("./aws-router") as typeof import("./aws-router")).AwsRouterStore(name, s, ctx),
  vault: (name, s, ctx) => new (require("./vault") as typeof import("./vault")).VaultStore(name, s, ctx),
  "gcp.secretmanager": (name, s, ctx) =>
    new (require("./gcp-secretmanager") as typeof import("./gcp-secretmanager")).GcpSecretManagerStore(name, s, ctx),
  gcp: (name, s, ctx) => new (require("./gcp") as typeof import("./gcp")).GcpStore(name, s, ctx),
  "azure.keyvault": (name, s, ctx) => new (require("./azure-keyvault") as typeof import("./azure-keyvault")).AzureKeyVaultStore(name, s, ctx),
  "azure.identity": (name, s, ctx) => new (require("./azure-identity") as typeof import("./azure-identity")).AzureIdentityStore(name, s, ctx),
  azure: (name, s, ctx) => new (require("./azure") as typeof import("./azure")).AzureStore(name, s, ctx),
  doppler: (name, s, ctx) => new (require("./doppler") as typeof import("./doppler")).DopplerStore(name, s, ctx),
  infisical: (name, s, ctx) => new (require("./infisical") as typeof import("./infisical")).InfisicalStore(name, s, ctx),
  akeyless: (name, s, ctx) => new (require("./akeyless") as typeof import("./akeyless")).AkeylessStore(name, s, ctx),
  onepassword: (name, s, ctx) => new (require("./onepassword") as typeof import("./onepassword")).OnePasswordStore(name, s, ctx),
  keepassxc: (name, s, ctx) => new (require("./keepassxc") as typeof import("./keepassxc")).KeePassXcStore(name, s, ctx),
  lastpass: (name, s, ctx) => new (require("./lastpass") as typeof import("./lastpass")).LastPassStore(name, s, ctx),
  pass: (name, s, ctx) => new (require("./pass") as typeof import("./pass")).PassStore(name, s, ctx),
  keychain: (name, s, ctx) => new (require("./keychain") as typeof import("./keychain")).KeychainStore(name, s, ctx),
  bitwarden: (name, s, ctx) => new (require("./bitwarden") as typeof import("./bitwarden")).BitwardenStore(name, s, ctx),
  "bitwarden-sm": (name, s, ctx) => new (require("./bitwarden-sm") as typeof import("./bitwarden-sm")).BitwardenSmStore(name, s, ctx),
};

export function createStore(name: string, settings: StoreSettings, ctx: StoreContext): Store {
  if (!Object.hasOwn(storeFactories, settings.type)) {
    // A plugin's type (./plugins.ts); its settings were checked with the plugin's schema at load.
    const plugin = pluginStoreType(settings.type);
    if (plugin) {
      const { type: _type, timeout_ms: _t, retries: _r, ...own } = settings as Record<string, unknown>;
      return plugin.create(name, own, ctx);
    }
  }
  const factory = storeFactories[settings.type] as StoreFactory<StoreType>;
  return factory(name, settings as never, ctx);
}
