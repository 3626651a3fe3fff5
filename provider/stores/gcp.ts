import { DsopsError } from "../core/errors";
import { GcpSecretManagerStore } from "./gcp-secretmanager";
import { RouterStore, splitServicePrefix, type Route } from "./router";
import { gcpRefusedServices, gcpSecretManagerNames, type StoreSettings } from "./settings";
import type { Store, StoreCapabilities, StoreContext } from "./types";

type Settings = Extract<StoreSettings, { type: "gcp" }>;

/**
 * dsops's `gcp` type (its "unified" GCP provider): one store, the service chosen by the key's
 * prefix, one set of credentials (project_id, service_account_key_path,
 * impersonate_service_account) for all. Secret Manager (`sm:`, `secretmanager:`, `secrets:`,
 * also `sm://name`) is the one service with secrets to read; a key without a prefix goes to
 * `default_service` (secretmanager). Keys of Cloud KMS (`kms:`, `keys/…`) and Runtime
 * Configurator (`config:`, `config/…`), which dsops's documentation names, are refused with
 * the reason. Settings under `secretmanager:` (location, use_plaintext_names …) apply to
 * Secret Manager only and win over the same settings beside them.
 */
export class GcpStore extends RouterStore {
  readonly type = "gcp" as const;
  readonly capabilities: StoreCapabilities;
  private readonly sm: GcpSecretManagerStore;

  constructor(name: string, private readonly settings: Settings, ctx: StoreContext) {
    super(name);
    if (!(gcpSecretManagerNames as readonly string[]).includes(settings.default_service)) {
      // The settings schema refuses it first; a store built from unchecked settings says the same.
      throw new DsopsError(`store "${name}": default_service "${settings.default_service}" is not supported (supported: secretmanager)`);
    }
    const { default_service: _d, secretmanager, ...common } = settings;
    this.sm = new GcpSecretManagerStore(name, { ...common, ...secretmanager, type: "gcp.secretmanager" }, ctx);
    this.capabilities = this.sm.capabilities;
  }

  protected route(key: string): Route {
    const explicit = splitServicePrefix(key, gcpSecretManagerNames);
    if (explicit) {
      if (explicit.key === "") throw new DsopsError(`store "${this.name}": "${key}" names no secret after "${explicit.prefix}:"`, { hint: `e.g. ${explicit.prefix}:db-password` });
      return { service: "secretmanager", store: this.sm, key: explicit.key };
    }
    for (const r of gcpRefusedServices) {
      const p = splitServicePrefix(key, r.prefixes);
      const path = r.paths.some((pattern) => new RegExp(`^${pattern.replace(/\*/g, "[^/]+")}`).test(key));
      if (p || path) throw new DsopsError(`store "${this.name}": "${key}" is a ${r.service} key, which the gcp store does not read: ${r.why}`, { hint: "sm:<name> reads a Secret Manager secret" });
    }
    // dsops's `secrets/<name>` path form of a Secret Manager secret.
    if (key.startsWith("secrets/") && !key.slice("secrets/".length).includes("/")) return { service: "secretmanager", store: this.sm, key: key.slice("secrets/".length) };
    return { service: "secretmanager", store: this.sm, key };
  }

  protected services(): readonly Store[] {
    return [this.sm];
  }

  async check(): Promise<void> {
    await this.sm.check();
  }
}
