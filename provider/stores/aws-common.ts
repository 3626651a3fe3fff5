import { AuthError, ConfigError, DsopsError, NotFoundError, StoreError } from "../core/errors";

/** The connection settings every AWS store shares (`awsCommon` in settings.ts). */
export interface AwsConnectionSettings {
  readonly region?: string;
  readonly endpoint?: string;
  readonly profile?: string;
  readonly access_key_id?: string;
  readonly secret_access_key?: string;
  readonly session_token?: string;
  readonly timeout_ms?: number;
}

/** The part of an SDK v3 client configuration the AWS stores set. */
export interface AwsClientConfig {
  region: string;
  /** The engine retries (with its own backoff and timeout); the SDK must not retry as well. */
  maxAttempts: number;
  endpoint?: string;
  /** Static keys, or a function giving temporary ones (assume_role: see ./aws-credentials.ts). */
  credentials?:
    | { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
    | (() => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>);
  profile?: string;
  /**
   * Time limits of each HTTP request (timeout_ms): the engine abandons a read after timeout_ms
   * on its own clock, and this ends the request itself, for every call (writes and rotation
   * steps included), so no call can hang on a server that never answers.
   */
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: true };
}

/**
 * The client configuration of an AWS store. Region: the setting, else AWS_REGION, else
 * AWS_DEFAULT_REGION, else us-east-1. Credentials: static keys when given, else the named
 * `profile` (shared config/credentials files), else the SDK's default chain (environment,
 * AWS_PROFILE, SSO, container and instance roles).
 */
export function awsClientConfig(storeName: string, s: AwsConnectionSettings, env: NodeJS.ProcessEnv): AwsClientConfig {
  // The SDK warns on stderr about Node 20 on first use; dsops supports Node 20, so the
  // warning would only confuse users of the CLI and of Pulumi. A user's own setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const cfg: AwsClientConfig = {
    region: s.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    maxAttempts: 1,
    requestHandler: { connectionTimeout: s.timeout_ms ?? 30000, requestTimeout: s.timeout_ms ?? 30000, throwOnRequestTimeout: true },
  };
  if (s.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(s.endpoint);
    } catch {
      throw new ConfigError(`store "${storeName}": endpoint is not a URL: ${s.endpoint}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(`store "${storeName}": endpoint must be an http(s) URL`);
    cfg.endpoint = s.endpoint;
  }
  const hasKeys = s.access_key_id !== undefined || s.secret_access_key !== undefined;
  if (hasKeys) {
    if (!s.access_key_id || !s.secret_access_key) {
      throw new ConfigError(`store "${storeName}": access_key_id and secret_access_key must be set together`);
    }
    if (s.profile !== undefined) {
      throw new ConfigError(`store "${storeName}": set either profile or access_key_id/secret_access_key, not both`);
    }
    cfg.credentials = {
      accessKeyId: s.access_key_id,
      secretAccessKey: s.secret_access_key,
      ...(s.session_token ? { sessionToken: s.session_token } : {}),
    };
  } else if (s.session_token !== undefined) {
    throw new ConfigError(`store "${storeName}": session_token needs access_key_id and secret_access_key`);
  } else if (s.profile !== undefined) {
    cfg.profile = s.profile;
  }
  return cfg;
}

/** Error names that mean "no such secret, parameter or version". */
const NOT_FOUND = new Set([
  "ResourceNotFoundException", // Secrets Manager: secret, version id or stage
  "ParameterNotFound", // SSM: parameter or label
  "ParameterVersionNotFound", // SSM: version number
]);

/** Error names that mean the credentials were refused or are missing. */
const AUTH = new Set([
  "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
  "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId",
  "ExpiredTokenException", "ExpiredToken", "AuthFailure", "NotAuthorized", "CredentialsProviderError",
  "DecryptionFailure", // Secrets Manager: KMS refused to decrypt
  "InvalidKeyId", // SSM: KMS key not usable
]);

/** Error names that mean "try again later". */
const RETRYABLE = new Set([
  "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
  "RequestThrottled", "RequestThrottledException", "SlowDown", "PriorRequestNotComplete",
  "InternalServiceError", "InternalServerError", "InternalFailure", "InternalError", "ServiceUnavailable",
  "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException", "TimeoutError",
]);

/** Node network error codes worth retrying. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ECONNABORTED", "EPIPE", "ENOTFOUND", "EAI_AGAIN",
  "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT",
]);

/** What a failed call was about, for the error message. */
export interface AwsErrorContext {
  readonly store: string;
  /** What was asked for, already quoted: `secret "myapp/x"`, `parameter "/a/b" version "3"`. */
  readonly subject: string;
  /** What the call did: "reading", "writing", "describing", "checking". */
  readonly action: string;
  /**
   * True when the request carried a secret value (writes). The service's message is then left
   * out: some services echo request fields (validation errors) into it.
   */
  readonly carriesValue?: boolean;
}

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $fault?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/** The AWS error name (`ResourceNotFoundException`) of an SDK error, or undefined. */
export function awsErrorName(e: unknown): string | undefined {
  return e && typeof e === "object" ? (e as SdkErrorShape).name : undefined;
}

/**
 * Map an SDK error to the project's errors. The SDK error is not kept as `cause`: it can hold
 * the raw HTTP response (`$response`), which for a read is the secret itself.
 */
export function mapAwsError(e: unknown, ctx: AwsErrorContext): DsopsError {
  if (e instanceof DsopsError) return e;
  const err = (e && typeof e === "object" ? e : {}) as SdkErrorShape;
  const name = err.name && err.name !== "Error" ? err.name : err.code ?? "Error";
  return classify(name, err.message, err.$metadata?.httpStatusCode, err, ctx);
}

/**
 * Map an error entry a batch call returned for one key (`{ErrorCode, Message}`), without an
 * exception object.
 */
export function mapAwsErrorCode(code: string | undefined, message: string | undefined, ctx: AwsErrorContext): DsopsError {
  return classify(code ?? "Error", message, undefined, {}, ctx);
}

function classify(name: string, message: string | undefined, status: number | undefined, err: SdkErrorShape, ctx: AwsErrorContext): DsopsError {
  const prefix = `store "${ctx.store}"`;
  if (NOT_FOUND.has(name)) return new NotFoundError(`${prefix}: ${ctx.subject} not found`);
  // Secrets Manager answers InvalidRequestException for a secret scheduled for deletion.
  if (name === "InvalidRequestException" && message && /marked for deletion|scheduled for deletion/i.test(message)) {
    return new NotFoundError(`${prefix}: ${ctx.subject} not found (scheduled for deletion)`);
  }
  const detail = describeFailure(name, message, status, ctx.carriesValue === true);
  if (name === "CredentialsProviderError") {
    return new AuthError(`${prefix}: no AWS credentials while ${ctx.action} ${ctx.subject}: ${detail}`, {
      hint: "set access_key_id and secret_access_key, or profile, or the AWS_* environment variables",
    });
  }
  if (AUTH.has(name) || status === 401 || status === 403) {
    return new AuthError(`${prefix}: access refused while ${ctx.action} ${ctx.subject}: ${detail}`, {
      hint: "check the credentials, the region and the IAM (and KMS) permissions of this store",
    });
  }
  const network = err.code !== undefined && NETWORK_CODES.has(err.code) && status === undefined;
  const retryable =
    RETRYABLE.has(name) ||
    network ||
    err.$retryable !== undefined ||
    err.$fault === "server" ||
    status === 429 ||
    (status !== undefined && status >= 500);
  return new StoreError(`${prefix}: ${ctx.action} ${ctx.subject} failed: ${detail}`, retryable);
}

function describeFailure(name: string, message: string | undefined, status: number | undefined, carriesValue: boolean): string {
  const parts = [name];
  if (status !== undefined) parts.push(`(HTTP ${status})`);
  let text = parts.join(" ");
  if (!carriesValue && message && message !== name) {
    const m = message.replace(/\s+/g, " ").trim();
    text += `: ${m.length > 300 ? `${m.slice(0, 300)}…` : m}`;
  }
  return text;
}

/** Split `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Run `fn` on every item concurrently; a failure becomes the Error in its slot. */
export function settleEach<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<Array<R | Error>> {
  return Promise.all(
    items.map((item) => fn(item).catch((e: unknown) => (e instanceof Error ? e : new DsopsError(String(e))))),
  );
}

/** True for a failure of a whole batch call after which per-key reads can still give each key its own answer. */
export function batchFallsBack(e: DsopsError): boolean {
  return !(e instanceof StoreError && e.retryable);
}

/** ISO-8601 text of an SDK date, when there is one. */
export function isoDate(d: Date | undefined): string | undefined {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : undefined;
}
