import type { TokenCredential } from "@azure/identity";
import type { Clock } from "../core/clock";
import { DsopsError, NotFoundError } from "../core/errors";
import { Secret } from "../core/secret";
import { azureCredential, azureCredentialKind, mapAzureError, type AzureCredentialSettings } from "./azure-common";
import type { SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/** The identity part of the settings (the router passes its `identity:` block with its credentials). */
export interface IdentitySettings extends AzureCredentialSettings {
  readonly scope?: string;
  readonly timeout_ms?: number;
}

/** What a key reads of a token (dsops's names). */
export const tokenFields = ["access_token", "expires_at", "expires_in", "token_info"] as const;
export type TokenField = (typeof tokenFields)[number];
export const DEFAULT_SCOPE = "https://management.azure.com/.default";

/**
 * Access tokens of Microsoft Entra ID as secret values (dsops's `azure.identity`), from the
 * store's credential (@azure/identity). A key is `[<scope>:]<field>` or a scope alone:
 * `access_token`, `https://graph.microsoft.com/.default:expires_at`,
 * `https://vault.azure.net/.default` (its access token). Fields: `access_token`, `expires_at`
 * (ISO-8601), `expires_in` (whole seconds left, by the engine's clock), `token_info` (all of
 * them and the scope, as JSON). Without a scope in the key: the store's `scope`, else Azure
 * Resource Manager's. The credential caches its tokens and asks for a new one shortly before
 * one expires. The version id is the token's expiry time (ms since the epoch).
 */
export class AzureIdentityStore implements Store {
  readonly type = "azure.identity" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false, staging: false };
  private readonly credential: TokenCredential;
  private readonly timeoutMs: number;
  private readonly clock: Clock;

  constructor(
    readonly name: string,
    private readonly settings: IdentitySettings,
    ctx: StoreContext,
    /** A credential shared with other stores (the azure router's); default: the one the settings name. */
    credential?: TokenCredential,
  ) {
    this.credential = credential ?? azureCredential(name, settings, ctx);
    this.timeoutMs = settings.timeout_ms ?? 30000;
    this.clock = ctx.clock;
  }

  /** Split a key into scope and field. */
  parse(key: string): { scope: string; field: TokenField } {
    const isField = (f: string): f is TokenField => (tokenFields as readonly string[]).includes(f);
    if (isField(key)) return { scope: this.settings.scope ?? DEFAULT_SCOPE, field: key };
    const colon = key.lastIndexOf(":");
    if (colon >= 0 && isField(key.slice(colon + 1))) {
      const scope = key.slice(0, colon);
      return { scope: scope === "" ? (this.settings.scope ?? DEFAULT_SCOPE) : checkScope(this.name, scope), field: key.slice(colon + 1) as TokenField };
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key) || /^[0-9a-f-]{36}(\/\.default)?$/i.test(key)) return { scope: checkScope(this.name, key), field: "access_token" };
    throw new DsopsError(`store "${this.name}": "${key}" is neither a token field (${tokenFields.join(", ")}) nor a scope`, {
      hint: "e.g. access_token, https://graph.microsoft.com/.default, or https://vault.azure.net/.default:expires_at",
    });
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    if (k.version !== undefined) throw new NotFoundError(`store "${this.name}": key "${k.key}": tokens have no versions (got "${k.version}")`);
    const { scope, field } = this.parse(k.key);
    let t;
    try {
      t = await this.credential.getToken(scope, { abortSignal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw mapAzureError(e, this.name, "token request", `scope "${scope}"`, this.settings, [], this.timeoutMs);
    }
    if (!t) throw mapAzureError({ name: "CredentialUnavailableError", message: "no token returned" }, this.name, "token request", `scope "${scope}"`, this.settings);
    const expiresAt = new Date(t.expiresOnTimestamp).toISOString();
    const expiresIn = Math.max(0, Math.floor((t.expiresOnTimestamp - this.clock.now()) / 1000));
    const values: Record<TokenField, () => string> = {
      access_token: () => t.token,
      expires_at: () => expiresAt,
      expires_in: () => String(expiresIn),
      token_info: () => JSON.stringify({ access_token: t.token, token_type: t.tokenType ?? "Bearer", expires_at: expiresAt, expires_in: expiresIn, scope }),
    };
    return { value: new Secret(values[field]()), versionId: String(t.expiresOnTimestamp), updatedAt: expiresAt };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }

  async check(): Promise<void> {
    await this.get({ key: "expires_at" });
  }

  get credentialKind(): string {
    return azureCredentialKind(this.settings);
  }
}

function checkScope(store: string, scope: string): string {
  if (/\s/.test(scope)) throw new DsopsError(`store "${store}": scope "${scope}" holds whitespace; give one scope`, { hint: "e.g. https://graph.microsoft.com/.default" });
  return scope;
}
