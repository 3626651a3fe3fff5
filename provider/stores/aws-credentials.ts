import type { AssumeRoleCommandInput } from "@aws-sdk/client-sts";
import { ConfigError, NotFoundError, StoreError } from "../core/errors";
import type { Clock } from "../core/clock";
import { awsClientConfig, mapAwsError, type AwsClientConfig, type AwsConnectionSettings } from "./aws-common";

/**
 * Temporary AWS credentials shared by the AWS stores: STS AssumeRole (the `assume_role`
 * setting of any AWS store, and the `aws.sts` store), and the SSO role credentials of
 * `aws.sso`. Cached on the store's clock and fetched again shortly before they expire.
 */

/** Temporary credentials and when they expire. */
export interface TemporaryCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  /** The ARN of the assumed role's session (AssumeRole only). */
  readonly assumedRoleArn?: string;
}

/** The SDK's credential identity (what a client's `credentials` function returns). */
export interface AwsIdentity {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** Credentials are fetched again this long before they expire (the AWS SDKs use 5 minutes). */
export const REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * Credentials cached until `REFRESH_MARGIN_MS` before they expire, by the store's clock
 * (DSOPS_CLOCK moves it in tests). Concurrent callers share one fetch; a failed fetch is not
 * cached.
 */
export class CachedCredentials {
  private current?: TemporaryCredentials;
  private inflight?: Promise<TemporaryCredentials>;

  constructor(
    private readonly fetch: () => Promise<TemporaryCredentials>,
    private readonly clock: Clock,
  ) {}

  /** Fresh credentials: the cached ones while they last, else a new fetch. */
  /** Forget the cached credentials (a service refused them): the next `get` fetches. */
  invalidate(): void {
    this.current = undefined;
  }

  async get(): Promise<TemporaryCredentials> {
    const c = this.current;
    if (c && c.expiration.getTime() - REFRESH_MARGIN_MS > this.clock.now()) return c;
    this.inflight ??= this.fetch().then(
      (fresh) => {
        this.current = fresh;
        this.inflight = undefined;
        return fresh;
      },
      (e: unknown) => {
        this.inflight = undefined;
        throw e;
      },
    );
    return this.inflight;
  }

  /**
   * A `credentials` function for an SDK client. The SDK keeps what it gets until 5 minutes
   * before `expiration` by the system time, not by the store's clock; it is told an expiration
   * just inside that window (still in the future), so it asks again at every request and this
   * cache, on the store's clock, decides when to fetch.
   */
  provider(): () => Promise<AwsIdentity> {
    return async () => {
      const c = await this.get();
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(Date.now() + SDK_ASKS_AGAIN_MS) };
    };
  }
}

/** An expiration this close makes the SDK ask the provider again at its next request (its window is 5 minutes). */
const SDK_ASKS_AGAIN_MS = 4 * 60_000;

/** Error names with which a service refuses credentials that expired or were revoked before the cache thought. */
const REFUSED_CREDENTIALS = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId", "UnrecognizedClientException"]);

interface MiddlewareStack {
  add(mw: (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>, options: { step: "initialize"; name: string }): void;
}

/**
 * When a call of `client` is refused because its temporary credentials expired (or were
 * revoked) early, `onRefused` drops them, so the next call fetches new ones instead of failing
 * until the cached expiry.
 */
export function dropRefusedCredentials(client: { middlewareStack: unknown }, onRefused: (() => void) | undefined): void {
  if (!onRefused) return;
  (client.middlewareStack as MiddlewareStack).add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (e) {
        const name = e && typeof e === "object" ? (e as { name?: string }).name : undefined;
        if (name !== undefined && REFUSED_CREDENTIALS.has(name)) onRefused();
        throw e;
      }
    },
    { step: "initialize", name: "dsopsDropRefusedCredentials" },
  );
}

/** The AssumeRole settings (dsops's names). */
export interface AssumeRoleSettings {
  /** The ARN of the role to assume. */
  readonly assume_role?: string;
  readonly role_session_name?: string;
  readonly external_id?: string;
  /** Seconds the credentials last (900–43200; default 3600). */
  readonly duration?: number;
  /** The ARN (or serial number) of the MFA device the role's trust policy requires. */
  readonly mfa_serial_number?: string;
  /** The current code of that device (usually `${MFA_CODE}` from the environment). */
  readonly mfa_token_code?: string;
  /** A session policy (JSON) that narrows the role's permissions. */
  readonly session_policy?: string;
}

/** The AssumeRole request of a store's settings (checked: MFA serial and code go together). */
export function assumeRoleInput(storeName: string, s: AssumeRoleSettings & { assume_role: string }, clock: Clock): AssumeRoleCommandInput {
  if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/.test(s.assume_role))
    throw new ConfigError(`store "${storeName}": assume_role is not a role ARN: ${s.assume_role}`, undefined, { hint: "e.g. arn:aws:iam::123456789012:role/Deploy" });
  if (s.mfa_serial_number !== undefined && !s.mfa_token_code)
    throw new ConfigError(`store "${storeName}": mfa_serial_number needs mfa_token_code (the current code of the device)`, undefined, {
      hint: "set mfa_token_code: ${MFA_CODE} and run with MFA_CODE=<code from the device>",
    });
  if (s.mfa_token_code !== undefined && !s.mfa_serial_number) throw new ConfigError(`store "${storeName}": mfa_token_code needs mfa_serial_number`);
  return {
    RoleArn: s.assume_role,
    RoleSessionName: s.role_session_name || `dsops-${Math.floor(clock.now() / 1000)}`,
    DurationSeconds: s.duration ?? 3600,
    ...(s.external_id ? { ExternalId: s.external_id } : {}),
    ...(s.mfa_serial_number ? { SerialNumber: s.mfa_serial_number, TokenCode: s.mfa_token_code } : {}),
    ...(s.session_policy ? { Policy: s.session_policy } : {}),
  };
}

/** A fetch of AssumeRole credentials with `base` (the store's own credentials) as the caller. */
export function assumeRoleFetch(storeName: string, base: AwsClientConfig, input: AssumeRoleCommandInput): { fetch: () => Promise<TemporaryCredentials>; close: () => void } {
  // Loaded here, not with the module: a store that assumes no role never needs the STS client.
  const { AssumeRoleCommand, STSClient } = require("@aws-sdk/client-sts") as typeof import("@aws-sdk/client-sts");
  const sts = new STSClient(base);
  const fetch = async (): Promise<TemporaryCredentials> => {
    let out;
    try {
      out = await sts.send(new AssumeRoleCommand(input));
    } catch (e) {
      throw mapAwsError(e, { store: storeName, subject: `role "${input.RoleArn}"`, action: "assuming" });
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date))
      throw new StoreError(`store "${storeName}": assuming role "${input.RoleArn}": STS answered without complete credentials`);
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
      ...(out.AssumedRoleUser?.Arn ? { assumedRoleArn: out.AssumedRoleUser.Arn } : {}),
    };
  };
  return { fetch, close: () => sts.destroy() };
}

/**
 * The client configuration of an AWS store, with `assume_role` applied: the store's own
 * credentials (keys, profile or default chain) call STS AssumeRole, and the client signs with
 * the role's temporary credentials, renewed before they expire. `close` ends the STS client.
 */
export function awsStoreClientConfig(
  storeName: string,
  s: AwsConnectionSettings & AssumeRoleSettings,
  env: NodeJS.ProcessEnv,
  clock: Clock,
): AwsClientSetup {
  const base = awsClientConfig(storeName, s, env);
  if (s.assume_role === undefined) {
    for (const k of ["role_session_name", "external_id", "duration", "mfa_serial_number", "mfa_token_code", "session_policy"] as const)
      if (s[k] !== undefined) throw new ConfigError(`store "${storeName}": ${k} needs assume_role (the ARN of the role to assume)`);
    return { config: base, close: () => undefined };
  }
  const input = assumeRoleInput(storeName, { ...s, assume_role: s.assume_role }, clock);
  const { fetch, close } = assumeRoleFetch(storeName, base, input);
  const cache = new CachedCredentials(fetch, clock);
  const { profile: _profile, ...rest } = base;
  return { config: { ...rest, credentials: cache.provider() }, close, onRefused: () => cache.invalidate() };
}

/** A client configuration, how to release what it holds, and what to do when a service refuses its temporary credentials. */
export interface AwsClientSetup {
  readonly config: AwsClientConfig;
  readonly close: () => void;
  readonly onRefused?: () => void;
}

/** The credential components a key of aws.sts / aws.sso names (dsops's names and spellings). */
export const credentialKeys = ["access_key_id", "secret_access_key", "session_token", "expiration", "credentials"] as const;

const KEY_ALIASES: Readonly<Record<string, string>> = {
  access_key_id: "access_key_id",
  AccessKeyId: "access_key_id",
  AWS_ACCESS_KEY_ID: "access_key_id",
  secret_access_key: "secret_access_key",
  SecretAccessKey: "secret_access_key",
  AWS_SECRET_ACCESS_KEY: "secret_access_key",
  session_token: "session_token",
  SessionToken: "session_token",
  AWS_SESSION_TOKEN: "session_token",
  expiration: "expiration",
  Expiration: "expiration",
  credentials: "credentials",
  all: "credentials",
  assumed_role_arn: "assumed_role_arn",
};

/** The component `key` names (`access_key_id`, `credentials` …), or a NotFoundError naming the store, the key and the valid keys. */
export function credentialComponentName(storeName: string, key: string): string {
  const k = KEY_ALIASES[key];
  if (k === undefined)
    throw new NotFoundError(`store "${storeName}": key "${key}" names no credential component (keys: ${credentialKeys.join(", ")}, assumed_role_arn)`, {
      hint: `e.g. store://${storeName}/access_key_id or ${storeName}:credentials`,
    });
  return k;
}

/** The value of component `name` (from credentialComponentName) of `c`. */
export function credentialComponent(storeName: string, name: string, c: TemporaryCredentials): string {
  switch (name) {
    case "access_key_id":
      return c.accessKeyId;
    case "secret_access_key":
      return c.secretAccessKey;
    case "session_token":
      return c.sessionToken;
    case "expiration":
      return c.expiration.toISOString();
    case "credentials":
      return JSON.stringify({ AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, SessionToken: c.sessionToken, Expiration: c.expiration.toISOString() });
    case "assumed_role_arn":
      if (c.assumedRoleArn) return c.assumedRoleArn;
      throw new NotFoundError(`store "${storeName}": these credentials have no assumed_role_arn`);
    default:
      throw new NotFoundError(`store "${storeName}": key "${name}" names no credential component`);
  }
}
