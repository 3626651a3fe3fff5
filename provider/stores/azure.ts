import type { TokenCredential } from "@azure/identity";
import { DsopsError } from "../core/errors";
import type { Secret } from "../core/secret";
import { azureCredential, azureCredentialKind } from "./azure-common";
import { AzureIdentityStore, tokenFields } from "./azure-identity";
import { AzureKeyVaultStore } from "./azure-keyvault";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "azure" }>;
export type AzureService = "keyvault" | "identity";

/** dsops's explicit service prefixes of the azure router. */
const PREFIXES: Readonly<Record<string, AzureService>> = {
  kv: "keyvault",
  keyvault: "keyvault",
  vault: "keyvault",
  secrets: "keyvault",
  identity: "identity",
  auth: "identity",
  token: "identity",
  managed: "identity",
};

/**
 * dsops's `azure` router: one store, one set of credentials, and the service chosen by the
 * key. An explicit prefix (`kv:`, `keyvault:`, `vault:`, `secrets:` → Key Vault; `identity:`,
 * `auth:`, `token:`, `managed:` → tokens) wins; without one, a token field (`access_token`,
 * `<scope>:expires_at` …) or a scope (`https://…/.default`) is a token, and anything else goes
 * to `default_service` (default `keyvault`). Key Vault settings are under `keyvault:`
 * (`vault_url`), token settings under `identity:` (`scope`). Writes and rotation staging go
 * to Key Vault.
 */
export class AzureStore implements Store, Staging {
  readonly type = "azure" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: false, staging: true };
  private kv?: AzureKeyVaultStore;
  private id?: AzureIdentityStore;
  private credential?: TokenCredential;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    private readonly ctx: StoreContext,
  ) {}

  /** The service a key goes to, and the key in that service's terms. */
  route(key: string): { service: AzureService; key: string } {
    const colon = key.indexOf(":");
    if (colon > 0) {
      const svc = PREFIXES[key.slice(0, colon).toLowerCase()];
      if (svc) {
        const rest = key.slice(colon + 1);
        if (rest === "") throw new DsopsError(`store "${this.name}": nothing after "${key.slice(0, colon + 1)}"`, { hint: `e.g. ${key.slice(0, colon + 1)}${svc === "keyvault" ? "db-password" : "access_token"}` });
        return { service: svc, key: rest };
      }
    }
    if ((tokenFields as readonly string[]).includes(key) || (tokenFields as readonly string[]).some((f) => key.endsWith(`:${f}`)) || /^https?:\/\/[^\s]+\/\.default$/i.test(key)) {
      return { service: "identity", key };
    }
    return { service: this.settings.default_service, key };
  }

  private cred(): TokenCredential {
    return (this.credential ??= azureCredential(this.name, this.settings, this.ctx));
  }

  private keyvault(): AzureKeyVaultStore {
    if (!this.kv) {
      const kv = this.settings.keyvault;
      if (!kv) {
        throw new DsopsError(`store "${this.name}": a Key Vault key, but the store has no keyvault settings`, {
          hint: "add keyvault: {vault_url: https://<name>.vault.azure.net/} to the store, or prefix token keys with identity:",
        });
      }
      this.kv = new AzureKeyVaultStore(this.name, { ...this.settings, ...kv }, this.ctx, this.cred());
    }
    return this.kv;
  }

  private identity(): AzureIdentityStore {
    return (this.id ??= new AzureIdentityStore(this.name, { ...this.settings, ...(this.settings.identity ?? {}) }, this.ctx, this.cred()));
  }

  private forWrite(key: string, op: string): string {
    const r = this.route(key);
    if (r.service !== "keyvault") throw new DsopsError(`store "${this.name}": ${op} of "${key}": tokens (identity) cannot be written; only Key Vault secrets`);
    return r.key;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const r = this.route(k.key);
    return r.service === "keyvault" ? this.keyvault().get({ ...k, key: r.key }) : this.identity().get({ ...k, key: r.key });
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const r = this.route(k.key);
    return r.service === "keyvault" ? this.keyvault().describe({ ...k, key: r.key }) : this.identity().describe({ ...k, key: r.key });
  }

  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    return this.keyvault().put(this.forWrite(key, "put"), value, options);
  }
  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    return this.keyvault().putPending(this.forWrite(key, "putPending"), value, options);
  }
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    return this.keyvault().promote(this.forWrite(key, "promote"), versionId);
  }
  async discardPending(key: string, versionId?: string): Promise<void> {
    return this.keyvault().discardPending(this.forWrite(key, "discardPending"), versionId);
  }
  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    return this.keyvault().stagesOf(this.forWrite(key, "stagesOf"));
  }

  /** Key Vault when configured (a list call), else a token of the identity scope. */
  async check(): Promise<void> {
    if (this.settings.keyvault) await this.keyvault().check();
    else await this.identity().check();
  }

  get credentialKind(): string {
    return azureCredentialKind(this.settings);
  }
}
