import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { GetRoleCredentialsCommand, SSOClient } from "@aws-sdk/client-sso";
import { CreateTokenCommand, SSOOIDCClient } from "@aws-sdk/client-sso-oidc";
import { AuthError, ConfigError, DsopsError } from "../core/errors";
import { writeFileAtomic } from "../core/fsutil";
import type { Clock } from "../core/clock";
import { mapAwsError } from "./aws-common";
import { CachedCredentials, type TemporaryCredentials } from "./aws-credentials";
import { CredentialsStore, readOnlyCredentials } from "./aws-sts";
import type { StoreSettings } from "./settings";
import type { StoreContext, VersionInfo } from "./types";

type SsoSettings = Extract<StoreSettings, { type: "aws.sso" }>;

/** The SSO fields of a store (aws.sso, or the `sso:` section of the aws router). */
export type SsoFields = Omit<SsoSettings, "type" | "retries" | "region"> & { readonly start_url?: string };

/** Where the role credentials come from, after the profile and sso-session sections are read. */
export interface SsoTarget {
  readonly startUrl: string;
  readonly region: string;
  readonly accountId: string;
  readonly roleName: string;
  /** The sso-session whose name keys the token cache; without one, the start URL keys it (legacy profiles). */
  readonly session?: string;
  readonly profile?: string;
}

/** Sections of an AWS config file: `[default]`, `[profile x]`, `[sso-session y]`, keyed as written. */
function readIni(path: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return out;
  }
  let section: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (head) {
      section = {};
      out.set(head[1].replace(/\s+/g, " "), section);
      continue;
    }
    const eq = line.indexOf("=");
    if (section && eq > 0 && !/^\s/.test(raw)) section[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** The user's home folder as the store's environment says (HOME, USERPROFILE), else the OS's. */
function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || env.USERPROFILE || homedir();
}

/**
 * The SSO start URL, region, account and role of the store: its settings, completed from
 * `profile` in the AWS config file (AWS_CONFIG_FILE, else ~/.aws/config), including the
 * profile's `sso_session` section, as the AWS CLI reads them; `fallbackRegion` (the store's
 * `region`) when no sso_region is found.
 */
export function ssoTarget(storeName: string, s: SsoFields, env: NodeJS.ProcessEnv, fallbackRegion?: string): SsoTarget {
  let fromProfile: Record<string, string> = {};
  let fromSession: Record<string, string> = {};
  const configFile = env.AWS_CONFIG_FILE || join(home(env), ".aws", "config");
  if (s.profile !== undefined || s.sso_session !== undefined) {
    const ini = readIni(configFile);
    if (s.profile !== undefined) {
      const p = ini.get(s.profile === "default" ? "default" : `profile ${s.profile}`) ?? (s.profile === "default" ? ini.get("profile default") : undefined);
      if (!p) throw new ConfigError(`store "${storeName}": profile "${s.profile}" is not in ${configFile}`, undefined, { hint: `create it with: aws configure sso --profile ${s.profile}` });
      fromProfile = p;
    }
    const session = s.sso_session ?? fromProfile.sso_session;
    if (session !== undefined) {
      const sec = ini.get(`sso-session ${session}`);
      if (!sec) throw new ConfigError(`store "${storeName}": sso-session "${session}" is not in ${configFile}`);
      fromSession = sec;
    }
  }
  const session = s.sso_session ?? fromProfile.sso_session;
  const startUrl = s.sso_start_url ?? s.start_url ?? fromSession.sso_start_url ?? fromProfile.sso_start_url;
  // dsops's examples give only `region`: it stands for sso_region when nothing else names one.
  const region = s.sso_region ?? fromSession.sso_region ?? fromProfile.sso_region ?? fallbackRegion;
  const accountId = s.account_id ?? fromProfile.sso_account_id;
  const roleName = s.role_name ?? fromProfile.sso_role_name;
  const missing = [
    ["sso_start_url", startUrl],
    ["sso_region", region],
    ["account_id", accountId],
    ["role_name", roleName],
  ].filter(([, v]) => !v).map(([k]) => k);
  if (missing.length)
    throw new ConfigError(`store "${storeName}": missing ${missing.join(", ")}${s.profile !== undefined ? ` (not in its settings nor in profile "${s.profile}" of ${configFile})` : ""}`, undefined, {
      hint: "set them in the store, or name a profile of ~/.aws/config made by `aws configure sso`",
    });
  return { startUrl: startUrl!, region: region!, accountId: accountId!, roleName: roleName!, ...(session !== undefined ? { session } : {}), ...(s.profile !== undefined ? { profile: s.profile } : {}) };
}

/** The command that logs in again, for hints. */
export function ssoLoginHint(t: SsoTarget): string {
  if (t.profile) return `aws sso login --profile ${t.profile}`;
  if (t.session) return `aws sso login --sso-session ${t.session}`;
  return `aws sso login --profile <a profile with sso_start_url ${t.startUrl}>`;
}

/** The file of the SSO token cache for `t`, as the AWS CLI names it (SHA-1 of the session name, or of the start URL). */
export function ssoCacheFile(t: SsoTarget, cachePath: string | undefined, configDir: string, env: NodeJS.ProcessEnv): string {
  const dir = cachePath ? (isAbsolute(cachePath) ? cachePath : resolve(configDir, cachePath)) : join(home(env), ".aws", "sso", "cache");
  return join(dir, `${createHash("sha1").update(t.session ?? t.startUrl).digest("hex")}.json`);
}

/** Refresh a cached SSO token this long before it expires (as the AWS CLI and SDK do). */
export const SSO_TOKEN_REFRESH_MS = 5 * 60_000;

/** The token cache file as `aws sso login` writes it (sso-session profiles carry the refresh fields). */
interface SsoTokenCache {
  accessToken?: unknown;
  expiresAt?: unknown;
  refreshToken?: unknown;
  clientId?: unknown;
  clientSecret?: unknown;
  registrationExpiresAt?: unknown;
  [k: string]: unknown;
}

/**
 * Role credentials of IAM Identity Center: the access token `aws sso login` cached is read
 * (again at each fetch, so a new login is picked up), then SSO GetRoleCredentials. A token that
 * expires within 5 minutes is refreshed first, as the AWS CLI does, when the cache holds a
 * refresh token and a client registration that has not expired (sso-session logins): SSO OIDC
 * CreateToken (grant refresh_token), and the new token is written back to the cache file
 * atomically, so the AWS CLI and other tools see it too. A refused refresh leaves the file as it
 * was and says how to log in again.
 */
export function ssoFetch(
  storeName: string,
  t: SsoTarget,
  cacheFile: string,
  opts: { endpoint?: string; timeoutMs?: number; clock: Clock },
): { fetch: () => Promise<TemporaryCredentials>; close: () => void } {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const client = new SSOClient({
    region: t.region,
    maxAttempts: 1,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    requestHandler: { connectionTimeout: opts.timeoutMs ?? 30000, requestTimeout: opts.timeoutMs ?? 30000, throwOnRequestTimeout: true },
  });
  const hint = `log in again: ${ssoLoginHint(t)}`;
  let oidc: SSOOIDCClient | undefined;
  const refresh = async (token: SsoTokenCache): Promise<SsoTokenCache | undefined> => {
    const { refreshToken, clientId, clientSecret, registrationExpiresAt } = token;
    if (typeof refreshToken !== "string" || typeof clientId !== "string" || typeof clientSecret !== "string") return undefined;
    const registered = typeof registrationExpiresAt === "string" ? Date.parse(registrationExpiresAt) : NaN;
    if (!(registered > opts.clock.now())) return undefined;
    oidc ??= new SSOOIDCClient({
      region: t.region,
      maxAttempts: 1,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      requestHandler: { connectionTimeout: opts.timeoutMs ?? 30000, requestTimeout: opts.timeoutMs ?? 30000, throwOnRequestTimeout: true },
    });
    let out;
    try {
      out = await oidc.send(new CreateTokenCommand({ grantType: "refresh_token", clientId, clientSecret, refreshToken }));
    } catch (e) {
      const err = mapAwsError(e, { store: storeName, subject: `the SSO session of ${t.startUrl}`, action: "refreshing" });
      if (err instanceof AuthError || ["InvalidGrantException", "UnauthorizedClientException", "ExpiredTokenException", "InvalidClientException"].includes((e as { name?: string }).name ?? ""))
        throw new AuthError(`store "${storeName}": the SSO session of ${t.startUrl} could not be refreshed (${(e as { name?: string }).name ?? "refused"}); ${hint}`, { hint });
      throw err;
    }
    if (typeof out.accessToken !== "string" || typeof out.expiresIn !== "number")
      throw new DsopsError(`store "${storeName}": SSO OIDC answered a refresh of ${t.startUrl} without a token`);
    const next: SsoTokenCache = {
      ...token,
      accessToken: out.accessToken,
      expiresAt: new Date(opts.clock.now() + out.expiresIn * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      ...(out.refreshToken ? { refreshToken: out.refreshToken } : {}),
    };
    writeFileAtomic(cacheFile, JSON.stringify(next), 0o600);
    return next;
  };
  const fetch = async (): Promise<TemporaryCredentials> => {
    let token: SsoTokenCache;
    try {
      token = JSON.parse(readFileSync(cacheFile, "utf8")) as typeof token;
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no SSO token cached" : "the SSO token cache cannot be read";
      throw new AuthError(`store "${storeName}": ${why} for ${t.startUrl} (${cacheFile}); ${hint}`, { hint });
    }
    let expires = typeof token.expiresAt === "string" ? Date.parse(token.expiresAt) : NaN;
    if (typeof token.accessToken !== "string" || !token.accessToken || Number.isNaN(expires))
      throw new AuthError(`store "${storeName}": the SSO token cache ${cacheFile} holds no usable token; ${hint}`, { hint });
    if (expires - SSO_TOKEN_REFRESH_MS <= opts.clock.now()) {
      const next = await refresh(token);
      if (next) {
        token = next;
        expires = Date.parse(next.expiresAt as string);
      }
    }
    if (expires <= opts.clock.now())
      throw new AuthError(`store "${storeName}": the SSO session of ${t.startUrl} expired at ${new Date(expires).toISOString()}; ${hint}`, { hint });
    let out;
    try {
      out = await client.send(new GetRoleCredentialsCommand({ accessToken: token.accessToken as string, accountId: t.accountId, roleName: t.roleName }));
    } catch (e) {
      const err = mapAwsError(e, { store: storeName, subject: `role "${t.roleName}" of account ${t.accountId}`, action: "getting SSO credentials of" });
      if (err instanceof AuthError || (e as { name?: string }).name === "UnauthorizedException")
        throw new AuthError(`store "${storeName}": the SSO session of ${t.startUrl} was refused (${err.message.replace(/^store "[^"]*": /, "")}); ${hint}`, { hint });
      throw err;
    }
    const c = out.roleCredentials;
    if (!c?.accessKeyId || !c.secretAccessKey || !c.sessionToken || typeof c.expiration !== "number")
      throw new DsopsError(`store "${storeName}": SSO answered without complete role credentials for role "${t.roleName}" of account ${t.accountId}`);
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiration) };
  };
  return {
    fetch,
    close: () => {
      client.destroy();
      oidc?.destroy();
    },
  };
}

/**
 * dsops's aws.sso: role credentials of IAM Identity Center from the token cache of
 * `aws sso login`; keys name the component as in aws.sts. The credentials are fetched again
 * shortly before they expire; an expired or missing login is an AuthError saying how to log in.
 */
export class AwsSsoStore extends CredentialsStore {
  readonly type = "aws.sso" as const;
  private readonly closeSso: () => void;

  constructor(name: string, settings: SsoSettings, ctx: StoreContext) {
    const t = ssoTarget(name, settings, ctx.env, settings.region);
    const file = ssoCacheFile(t, settings.cache_path, ctx.configDir, ctx.env);
    const { fetch, close } = ssoFetch(name, t, file, { endpoint: settings.endpoint, timeoutMs: settings.timeout_ms, clock: ctx.clock });
    super(name, new CachedCredentials(fetch, ctx.clock));
    this.closeSso = close;
  }

  put(): Promise<VersionInfo> {
    return Promise.reject(readOnlyCredentials(this.name, this.type));
  }

  /** `doctor`: the cached login is valid and the role's credentials can be had. */
  async check(): Promise<void> {
    await this.cache.get();
  }

  async close(): Promise<void> {
    this.closeSso();
  }
}
