import { dirname, isAbsolute, join, resolve } from "node:path";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../engine/errors";
import { Secret, scrub } from "../engine/secret";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "gcp.secretmanager" }>;
type ClientOptions = NonNullable<ConstructorParameters<typeof SecretManagerServiceClient>[0]>;
/** Options of every call: `retry: null` turns the client's retries off (the engine retries); `timeout` is the call's deadline. */
interface CallOptions {
  readonly retry: null;
  readonly timeout: number;
}

/** A secret version as the reference names it. */
interface SecretRef {
  readonly project: string;
  /** The secret id (`db-password`). */
  readonly secret: string;
  /** A version number or `latest`. */
  readonly version: string;
  /** How messages name the secret: the id, or the full resource name for another project. */
  readonly display: string;
}

/** gRPC status codes the store reacts to (google.rpc.Code). */
const Code = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
const codeNames: Record<number, string> = {
  0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
  6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
  11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
};
const retryableCodes = new Set<number>([Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED, Code.UNAVAILABLE]);

const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;
const LATEST = "latest";

/**
 * Google Cloud Secret Manager, through the official client (@google-cloud/secret-manager,
 * gRPC). Keys: `name`, `name@3`, `name:3` (the dsops form), `name@latest`,
 * `projects/<p>/secrets/<name>` and `projects/<p>/secrets/<name>/versions/<v>`; the reference's
 * version wins over one in the key. Values are UTF-8 text, or base64 with `binary` when the
 * payload is not valid UTF-8; payload checksums (CRC32C) are verified on read and sent on write.
 * The client's own retries are off: the engine retries what this store marks retryable.
 */
export class GcpSecretManagerStore implements Store {
  readonly type = "gcp.secretmanager" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: true };
  private readonly client: SecretManagerServiceClient;
  private readonly callOptions: CallOptions;

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    ctx: StoreContext,
  ) {
    const opts: ClientOptions = { projectId: settings.project_id };
    if (settings.endpoint) {
      // "host", "host:port" or "https://host[:port]"
      const m = /^(?:[a-z]+:\/\/)?([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/i.exec(settings.endpoint);
      if (!m) throw new DsopsError(`store "${name}": endpoint "${settings.endpoint}" is not a host or host:port`);
      opts.apiEndpoint = m[1];
      const port = settings.port ?? (m[2] ? Number(m[2]) : undefined);
      if (port !== undefined) opts.port = port;
    } else if (settings.port !== undefined) {
      opts.port = settings.port;
    }
    if (settings.insecure) {
      if (!settings.endpoint) {
        throw new DsopsError(`store "${name}": insecure needs an endpoint`, { hint: "insecure is for a local Secret Manager endpoint only" });
      }
      // Plain-text gRPC carries no credentials: no credentials lookup at all (a known universe
      // keeps the auth library from probing the metadata server).
      opts.sslCreds = clientGrpc().credentials.createInsecure() as ClientOptions["sslCreds"];
      opts.universeDomain = "googleapis.com";
    } else if (settings.credentials_file) {
      opts.keyFilename = isAbsolute(settings.credentials_file) ? settings.credentials_file : resolve(ctx.configDir, settings.credentials_file);
    }
    this.client = new SecretManagerServiceClient(opts);
    this.callOptions = { retry: null, timeout: settings.timeout_ms ?? 30000 };
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const ref = this.parse(k.key, k.version);
    let resp;
    try {
      [resp] = await this.client.accessSecretVersion({ name: versionName(ref) }, this.callOptions);
    } catch (e) {
      throw this.mapError(e, "read", ref);
    }
    const versionId = versionIdOf(resp.name) ?? ref.version;
    const data = toBuffer(resp.payload?.data);
    const expected = resp.payload?.dataCrc32c;
    if (expected !== null && expected !== undefined && Number(expected) !== crc32c(data)) {
      throw new StoreError(`store "${this.name}": secret "${ref.display}" version ${versionId}: payload checksum mismatch (data_crc32c)`, true);
    }
    const text = decodeUtf8(data);
    if (text === undefined) return { value: new Secret(data.toString("base64")), versionId, binary: true };
    return { value: new Secret(text), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const ref = this.parse(k.key, k.version);
    let v;
    try {
      [v] = await this.client.getSecretVersion({ name: versionName(ref) }, this.callOptions);
    } catch (e) {
      throw this.mapError(e, "describe", ref);
    }
    const versionId = versionIdOf(v.name) ?? ref.version;
    const state = String(v.state ?? "");
    if (state === "DISABLED" || state === "DESTROYED") {
      throw new NotFoundError(`store "${this.name}": secret "${ref.display}" version ${versionId} is ${state.toLowerCase()}`);
    }
    const updatedAt = isoTime(v.createTime);
    return updatedAt ? { versionId, updatedAt } : { versionId };
  }

  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const ref = this.parse(key, undefined);
    if (ref.version !== LATEST) throw new DsopsError(`store "${this.name}": put takes a secret name without a version, got "${key}"`);
    const parent = `projects/${ref.project}/secrets/${ref.secret}`;
    const data = Buffer.from(value.reveal(), "utf8");
    const add = async () => {
      const [v] = await this.client.addSecretVersion({ parent, payload: { data, dataCrc32c: crc32c(data) } }, this.callOptions);
      return v;
    };
    let v;
    try {
      try {
        v = await add();
      } catch (e) {
        if (codeOf(e) !== Code.NOT_FOUND) throw e;
        try {
          await this.client.createSecret(
            { parent: `projects/${ref.project}`, secretId: ref.secret, secret: { replication: { automatic: {} } } },
            this.callOptions,
          );
        } catch (ce) {
          if (codeOf(ce) !== Code.ALREADY_EXISTS) throw ce;
        }
        v = await add();
      }
    } catch (e) {
      throw this.mapError(e, "write", ref, value);
    }
    const versionId = versionIdOf(v.name);
    if (!versionId) throw new StoreError(`store "${this.name}": secret "${ref.display}": the service answered without a version name`);
    const updatedAt = isoTime(v.createTime);
    return updatedAt ? { versionId, updatedAt } : { versionId };
  }

  async check(): Promise<void> {
    try {
      await this.client.listSecrets({ parent: `projects/${this.settings.project_id}`, pageSize: 1 }, { ...this.callOptions, autoPaginate: false });
    } catch (e) {
      throw this.mapError(e, "list", undefined);
    }
  }

  async close(): Promise<void> {
    // A client whose start failed (unreadable credentials) rejects close with that same error.
    await this.client.close().catch(() => undefined);
  }

  /** Split a key into project, secret id and version; `version` (from the reference) wins. */
  private parse(key: string, version: string | undefined): SecretRef {
    let project = this.settings.project_id;
    let rest = key;
    let fromPath: string | undefined;
    let full = false;
    const m = /^projects\/([^/]+)\/secrets\/([^/]+?)(?:\/versions\/([^/]+))?$/.exec(key);
    if (m) {
      [, project, rest, fromPath] = m;
      full = true;
    } else if (key.startsWith("projects/")) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a secret name (projects/<project>/secrets/<name>[/versions/<v>])`);
    }
    const sep = rest.search(/[@:]/);
    let secret = rest;
    let fromSuffix: string | undefined;
    if (sep >= 0) {
      secret = rest.slice(0, sep);
      fromSuffix = rest.slice(sep + 1);
    }
    if (fromPath !== undefined && fromSuffix !== undefined) {
      throw new DsopsError(`store "${this.name}": "${key}" names its version twice`);
    }
    if (!SECRET_ID.test(secret)) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a valid secret name`, {
        hint: "Secret Manager names are 1-255 letters, digits, '-' and '_'; add a version as name@3 or name:3",
      });
    }
    let v = version ?? fromPath ?? fromSuffix ?? LATEST;
    if (v === "" || v.toLowerCase() === LATEST || v.toLowerCase() === "current") v = LATEST;
    if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new DsopsError(`store "${this.name}": "${v}" is not a version of secret "${secret}"`);
    const display = full && project !== this.settings.project_id ? `projects/${project}/secrets/${secret}` : secret;
    return { project, secret, version: v, display };
  }

  /** The SDK's error as a project error; never carries a value. */
  private mapError(e: unknown, op: "read" | "describe" | "write" | "list", ref: SecretRef | undefined, value?: Secret): Error {
    const code = codeOf(e);
    let details = e instanceof Error ? String((e as { details?: unknown }).details ?? e.message) : String(e);
    if (value) details = scrub(details, [value]);
    const what = ref ? `secret "${ref.display}"` : `project "${this.settings.project_id}"`;
    const keepCause = value ? undefined : { cause: e };
    const prefix = `store "${this.name}"`;
    if (code === Code.NOT_FOUND && ref) {
      if (op === "read" || op === "describe") {
        if (ref.version === LATEST) {
          return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}" (or it has no versions)`, keepCause);
        }
        if (/^Secret Version\b/i.test(details)) return new NotFoundError(`${prefix}: ${what} has no version "${ref.version}"`, keepCause);
        if (/^Secret\b/i.test(details)) return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}"`, keepCause);
        return new NotFoundError(`${prefix}: ${what} version "${ref.version}" not found`, keepCause);
      }
      return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}"`, keepCause);
    }
    if (code === Code.FAILED_PRECONDITION && ref && (op === "read" || op === "describe")) {
      const state = /\b(DISABLED|DESTROYED)\b/.exec(details)?.[1]?.toLowerCase() ?? "disabled or destroyed";
      const id = /\/versions\/(\d+)/.exec(details)?.[1] ?? ref.version;
      return new NotFoundError(`${prefix}: ${what} version ${id} is ${state}`, { ...keepCause, hint: "enable the version or reference another one" });
    }
    if (code === Code.PERMISSION_DENIED || code === Code.UNAUTHENTICATED) {
      return new AuthError(`${prefix}: access to ${what} denied (${codeNames[code]}): ${details}`, keepCause);
    }
    if (typeof code !== "number" || code === Code.UNAVAILABLE) {
      // Credentials that cannot be loaded fail before any call (a file error from the auth
      // library), or surface as UNAVAILABLE from the gRPC metadata plugin.
      const fileError = typeof code !== "number" && typeof (e as { syscall?: unknown } | null)?.syscall === "string";
      if (fileError || /Could not load the default credentials|invalid_grant|private key|client_email|Getting metadata from plugin failed.*(ENOENT|no such file)/i.test(details)) {
        return new AuthError(`${prefix}: no usable Google credentials: ${details}`, {
          ...keepCause,
          hint: "set credentials_file, GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`",
        });
      }
    }
    const retryable = typeof code === "number" && retryableCodes.has(code);
    const status = typeof code === "number" ? (codeNames[code] ?? String(code)) : "error";
    return new StoreError(`${prefix}: ${op} of ${what} failed (${status}): ${details}`, retryable, keepCause);
  }
}

function codeOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "number" ? c : undefined;
}

function versionName(ref: SecretRef): string {
  return `projects/${ref.project}/secrets/${ref.secret}/versions/${ref.version}`;
}

function versionIdOf(name: string | null | undefined): string | undefined {
  return name ? /\/versions\/([^/]+)$/.exec(name)?.[1] : undefined;
}

function toBuffer(data: Uint8Array | string | null | undefined): Buffer {
  if (data === null || data === undefined) return Buffer.alloc(0);
  if (typeof data === "string") return Buffer.from(data, "base64");
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

function isoTime(t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!t || t.seconds === null || t.seconds === undefined) return undefined;
  const ms = Number(String(t.seconds)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of the payload, as Secret Manager computes it. */
export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The @grpc/grpc-js the client library itself uses (through its google-gax): channel
 * credentials must come from that copy.
 */
function clientGrpc(): { credentials: { createInsecure(): unknown } } {
  const pkgDir = join(dirname(require.resolve("@google-cloud/secret-manager")), "..", "..");
  const gax = require(require.resolve("google-gax", { paths: [pkgDir] })) as { grpc: { credentials: { createInsecure(): unknown } } };
  return gax.grpc;
}
