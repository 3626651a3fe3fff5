import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GetAccessKeyLastUsedCommand,
  IAMClient,
  ListAccessKeysCommand,
  UpdateAccessKeyCommand,
} from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { DsopsError } from "../../core/errors";
import { Secret } from "../../core/secret";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, VerifyOptions, ValueRules } from "./types";
import { awsIamSettingsSchema, type AwsIamSettings } from "./settings";

/** The settings schema lives in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { awsIamSettingsSchema, type AwsIamSettings } from "./settings";

/** AWS lets a user hold at most two access keys. */
const MAX_KEYS = 2;

type AwsCreds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/**
 * IAM user access keys. The strategy is two-secret: `create` mints a key next to the current one
 * (a user holds at most two), `verify` calls STS GetCallerIdentity with the new key and checks it
 * answers as the key's owner, `revoke` deactivates and deletes a key, `list` names a user's keys
 * (so a key minted by a crashed run and never stored is removed). The stored value is JSON
 * {"username": <access key id>, "password": <secret access key>}; `rotation.user` names the IAM user.
 */
export class AwsIamTarget implements Target {
  readonly type = "aws.iam" as const;
  readonly capabilities: ReadonlySet<TargetCapability> = new Set<TargetCapability>(["create", "revoke", "verify"]);
  /** The target draws the secret (AWS does); a generated value is not used. */
  readonly valueRules: ValueRules = { minLength: 1, maxLength: 1000 };
  readonly settings: AwsIamSettings;
  private iamClient?: Promise<IAMClient>;
  private adminSecrets: string[] = [];

  constructor(
    readonly name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    this.settings = parseServiceSettings(awsIamSettingsSchema, name, raw);
  }

  private clientConfig(credentials?: AwsCreds) {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    return {
      region: this.settings.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1",
      maxAttempts: 1,
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      ...(credentials ? { credentials } : {}),
    };
  }

  private iam(): Promise<IAMClient> {
    if (!this.iamClient) {
      this.iamClient = (async () => {
        if (!this.settings.admin) return new IAMClient(this.clientConfig());
        const raw = await this.ctx.resolveRef(this.settings.admin);
        let c: { access_key_id?: unknown; secret_access_key?: unknown; session_token?: unknown };
        try {
          c = JSON.parse(raw.reveal()) as typeof c;
        } catch {
          throw new DsopsError(`service "${this.name}": the admin credential (${this.settings.admin}) is not JSON {"access_key_id", "secret_access_key"}`);
        }
        if (typeof c.access_key_id !== "string" || typeof c.secret_access_key !== "string")
          throw new DsopsError(`service "${this.name}": the admin credential (${this.settings.admin}) needs string fields "access_key_id" and "secret_access_key"`);
        this.adminSecrets = [c.secret_access_key, ...(typeof c.session_token === "string" ? [c.session_token] : [])];
        return new IAMClient(
          this.clientConfig({ accessKeyId: c.access_key_id, secretAccessKey: c.secret_access_key, ...(typeof c.session_token === "string" ? { sessionToken: c.session_token } : {}) }),
        );
      })();
      this.iamClient.catch(() => (this.iamClient = undefined));
    }
    return this.iamClient;
  }

  private fail(what: string, e: unknown, secrets: Array<Secret | string> = []): TargetError {
    return new TargetError(`service "${this.name}": ${what} failed: ${scrubError(e, [...secrets, ...this.adminSecrets])}`, retryable(e));
  }

  /** The user a key belongs to; undefined when the key does not exist. */
  private async ownerOf(keyId: string): Promise<string | undefined> {
    const iam = await this.iam();
    try {
      const out = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: keyId }));
      return out.UserName;
    } catch (e) {
      if (noSuchEntity(e)) return undefined;
      throw this.fail(`looking up the owner of access key ${keyId}`, e);
    }
  }

  /** The access keys of an IAM user with their status (`Active`, `Inactive`). */
  private async keysOf(principal: string): Promise<Array<{ id: string; status: string }>> {
    const iam = await this.iam();
    try {
      const out = await iam.send(new ListAccessKeysCommand({ UserName: principal }));
      return (out.AccessKeyMetadata ?? []).filter((k) => !!k.AccessKeyId).map((k) => ({ id: k.AccessKeyId as string, status: String(k.Status ?? "") }));
    } catch (e) {
      if (noSuchEntity(e)) throw new TargetError(`service "${this.name}": IAM user "${principal}" does not exist`);
      throw this.fail(`listing the access keys of "${principal}"`, e);
    }
  }

  async list(principal: string): Promise<string[]> {
    return (await this.keysOf(principal)).map((k) => k.id);
  }

  /**
   * A new access key for the IAM user `principal` (AWS draws the secret; `value` is ignored).
   * Refused, before anything is minted, when the stored key it replaces (`replacing`) is
   * Inactive: someone deactivated it, and a new key (AWS creates keys Active) would silently
   * give the user its access back.
   */
  async create(principal: string, _value?: Secret, replacing?: Credential): Promise<Credential> {
    const all = await this.keysOf(principal);
    const old = replacing ? all.find((k) => k.id === replacing.principal) : undefined;
    if (old && old.status !== "Active")
      throw new TargetError(
        `service "${this.name}": access key ${old.id} of IAM user "${principal}" is ${old.status || "not active"}: it was deactivated outside dsops, and a new key would be active; nothing was changed. ` +
          `Re-activate it (aws iam update-access-key --status Active) to rotate it, or delete it and store a new key by hand`,
      );
    const keys = all.map((k) => k.id);
    if (keys.length >= MAX_KEYS)
      throw new TargetError(`service "${this.name}": IAM user "${principal}" already has ${keys.length} access keys (${keys.join(", ")}), the most AWS allows; revoke one first`);
    const iam = await this.iam();
    try {
      const out = await iam.send(new CreateAccessKeyCommand({ UserName: principal }));
      const k = out.AccessKey;
      if (!k?.AccessKeyId || !k.SecretAccessKey) throw new Error("the service returned no key");
      return { principal: k.AccessKeyId, secret: new Secret(k.SecretAccessKey) };
    } catch (e) {
      throw this.fail(`creating an access key for "${principal}"`, e);
    }
  }

  /** Deactivate, then (unless `revoke: deactivate`) delete the key. A key that is gone: no-op. */
  async revoke(cred: Credential): Promise<void> {
    const keyId = cred.principal;
    const user = await this.ownerOf(keyId);
    if (user === undefined) return;
    const iam = await this.iam();
    try {
      await iam.send(new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: keyId, Status: "Inactive" }));
      if (this.settings.revoke === "delete") await iam.send(new DeleteAccessKeyCommand({ UserName: user, AccessKeyId: keyId }));
    } catch (e) {
      if (noSuchEntity(e)) return;
      throw this.fail(`revoking access key ${keyId} of "${user}"`, e, [cred.secret]);
    }
  }

  /** STS GetCallerIdentity signed with the key: it must answer, as the key's owner. */
  async verify(cred: Credential, options: VerifyOptions = {}): Promise<void> {
    const sts = new STSClient({
      ...this.clientConfig({ accessKeyId: cred.principal, secretAccessKey: cred.secret.reveal() }),
      ...(options.timeoutMs ? { requestHandler: { requestTimeout: options.timeoutMs } } : {}),
    });
    try {
      let arn: string | undefined;
      try {
        arn = (await sts.send(new GetCallerIdentityCommand({}))).Arn;
      } catch (e) {
        throw new VerificationError(`service "${this.name}": GetCallerIdentity with access key ${cred.principal} failed: ${scrubError(e, [cred.secret])}`);
      }
      const owner = await this.ownerOf(cred.principal);
      if (owner === undefined) throw new VerificationError(`service "${this.name}": access key ${cred.principal} does not exist`);
      if (!arn || !arn.endsWith(`:user/${owner}`) && !arn.endsWith(`/${owner}`))
        throw new VerificationError(`service "${this.name}": access key ${cred.principal} answers as ${arn ?? "nobody"}, not as IAM user "${owner}"`);
      const status = (await this.keysOf(owner)).find((k) => k.id === cred.principal)?.status;
      if (status !== "Active") throw new VerificationError(`service "${this.name}": access key ${cred.principal} of IAM user "${owner}" is ${status || "gone"}, not Active`);
    } finally {
      sts.destroy();
    }
  }

  async check(): Promise<void> {
    const iam = await this.iam();
    try {
      await iam.send(new ListAccessKeysCommand({ MaxItems: 1 }));
    } catch (e) {
      throw this.fail("checking IAM access", e);
    }
  }

  async close(): Promise<void> {
    const c = this.iamClient;
    this.iamClient = undefined;
    if (c) await c.then((x) => x.destroy()).catch(() => undefined);
  }
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string; Code?: string })?.name ?? (e as { Code?: string })?.Code;
}

function noSuchEntity(e: unknown): boolean {
  const x = e as { name?: string; Code?: string };
  return x?.name === "NoSuchEntityException" || x?.name === "NoSuchEntity" || x?.Code === "NoSuchEntity";
}

function retryable(e: unknown): boolean {
  const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const name = errorName(e) ?? "";
  return (status !== undefined && status >= 500) || /Throttl|RequestLimitExceeded|TimeoutError/.test(name) || ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"].includes((e as { code?: string })?.code ?? "");
}
