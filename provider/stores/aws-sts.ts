import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { DsopsError } from "../core/errors";
import { Secret } from "../core/secret";
import { awsClientConfig, mapAwsError } from "./aws-common";
import { CachedCredentials, assumeRoleFetch, assumeRoleInput, credentialComponent, credentialComponentName, type TemporaryCredentials } from "./aws-credentials";
import type { StoreSettings } from "./settings";
import type { SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type StsSettings = Extract<StoreSettings, { type: "aws.sts" }>;

/** Why a write to a credentials store is refused (aws.sts, aws.sso, and their router prefixes). */
export function readOnlyCredentials(storeName: string, type: string): DsopsError {
  return new DsopsError(`store "${storeName}" (${type}) is read-only: it hands out temporary credentials, which cannot be written`, {
    hint: "write secrets to an aws.secretsmanager or aws.ssm store",
  });
}

/** A store that hands out one set of temporary credentials by component. */
export abstract class CredentialsStore implements Store {
  abstract readonly type: StoreSettings["type"];
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false, staging: false };

  protected constructor(
    readonly name: string,
    protected readonly cache: CachedCredentials,
  ) {}

  /** Version id of a set of credentials: its expiry (a new set is a new version). */
  protected versionOf(c: TemporaryCredentials): string {
    return c.expiration.toISOString();
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const component = credentialComponentName(this.name, k.key);
    const c = await this.cache.get();
    if (k.version !== undefined && k.version !== "current" && k.version !== this.versionOf(c))
      throw new DsopsError(`store "${this.name}": key "${k.key}" has no versions (temporary credentials; ask without ?version=)`);
    return { value: new Secret(credentialComponent(this.name, component, c)), versionId: this.versionOf(c) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    credentialComponentName(this.name, k.key);
    return { versionId: this.versionOf(await this.cache.get()) };
  }
}

/**
 * dsops's aws.sts: temporary credentials from STS AssumeRole of `assume_role`, called with the
 * store's own credentials (keys, profile or the default chain). A key names the component:
 * access_key_id, secret_access_key, session_token, expiration, credentials (all as JSON),
 * assumed_role_arn. One AssumeRole serves every key until shortly before expiry.
 */
export class AwsStsStore extends CredentialsStore {
  readonly type = "aws.sts" as const;
  private readonly closeSts: () => void;
  private readonly caller: STSClient;

  constructor(name: string, settings: StsSettings, ctx: StoreContext) {
    const base = awsClientConfig(name, settings, ctx.env);
    const input = assumeRoleInput(name, settings, ctx.clock);
    const { fetch, close } = assumeRoleFetch(name, base, input);
    super(name, new CachedCredentials(fetch, ctx.clock));
    this.closeSts = close;
    this.caller = new STSClient(base);
  }

  put(): Promise<VersionInfo> {
    return Promise.reject(readOnlyCredentials(this.name, this.type));
  }

  /** `doctor`: the store's own credentials work (GetCallerIdentity), then the role can be assumed. */
  async check(): Promise<void> {
    try {
      await this.caller.send(new GetCallerIdentityCommand({}));
    } catch (e) {
      throw mapAwsError(e, { store: this.name, subject: "the caller identity", action: "checking" });
    }
    await this.cache.get();
  }

  async close(): Promise<void> {
    this.caller.destroy();
    this.closeSts();
  }
}
