// Local server speaking the real SecretManagerService gRPC protocol to the real client library (@google-cloud/secret-manager): no real GCP Secret Manager server can run here.
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import type { Clock } from "../../provider/core/clock";
import { systemClock } from "../../provider/core/clock";

/**
 * An in-memory Google Cloud Secret Manager (v1) behind the service's own protos, shipped in
 * the client package. Names, states, `latest`, checksums and status codes follow the real
 * service: NOT_FOUND for a missing secret or version, ALREADY_EXISTS for a second CreateSecret,
 * FAILED_PRECONDITION when a DISABLED or DESTROYED version is accessed, PERMISSION_DENIED for a
 * project the caller may not use, INVALID_ARGUMENT for malformed names and checksum mismatches.
 */

type State = "ENABLED" | "DISABLED" | "DESTROYED";

interface VersionRecord {
  readonly id: number;
  data: Buffer | null;
  readonly crc32c: number;
  readonly clientChecksum: boolean;
  readonly createTime: number;
  state: State;
  destroyTime?: number;
}

interface SecretRecord {
  readonly name: string;
  readonly createTime: number;
  readonly labels: Record<string, string>;
  readonly replication: unknown;
  readonly versions: VersionRecord[];
  /** Version aliases (UpdateSecret with update_mask `version_aliases`): alias → version number. */
  aliases: Record<string, number>;
  etag: number;
}

/** An error the next calls answer with, instead of their normal result. */
interface Injected {
  remaining: number;
  readonly code: grpc.status;
  readonly message: string;
  /** Only calls of this method (e.g. "AccessSecretVersion"); any method when absent. */
  readonly method?: string;
  /** Never answer the call (a server that hangs) instead of answering `code`. */
  readonly hang?: boolean;
}

export interface GcpSecretManagerServerOptions {
  /** Projects the caller may use; any other gets PERMISSION_DENIED like the real service. Default: any project. */
  readonly projects?: readonly string[];
  /** Time source of create_time and destroy_time (default: the system clock). */
  readonly clock?: Clock;
  /**
   * Regional locations served (`projects/<p>/locations/<l>/secrets/<s>`): a regional secret has
   * no replication, like the real service. Behind Google's front (`google`), a location's
   * names are served only at `secretmanager.<l>.rep.googleapis.com`, global ones only at
   * `secretmanager.googleapis.com`.
   */
  readonly locations?: readonly string[];
  /** Serve as Google's front does: TLS, bearer tokens, the OAuth token and IAM Credentials endpoints, a proxy. */
  readonly google?: GoogleFrontOptions;
}

/**
 * Google's front, as the client libraries meet it: Secret Manager over TLS under the real host
 * names (a CA of the test's own, reached through an HTTP CONNECT proxy, which is how a child
 * process's client reaches `secretmanager.googleapis.com` unchanged), every call with a bearer
 * token, and the two endpoints google-auth-library calls: the OAuth 2.0 token endpoint
 * (`oauth2.googleapis.com/token`, JWT-bearer grant signed with a service account's key) and
 * the IAM Credentials API (`iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/
 * <sa>:generateAccessToken`). A token is accepted when it is a self-signed JWT of a known
 * service account (what the Secret Manager client sends for a key file) or an access token
 * these endpoints issued.
 */
export interface GoogleFrontOptions {
  /** Service accounts with a key: their key files are `keyFile(email)`. */
  readonly serviceAccounts: readonly string[];
  /** Principals that may use Secret Manager (default: every service account). */
  readonly readers?: readonly string[];
  /** target service account → principals allowed to impersonate it (roles/iam.serviceAccountTokenCreator). */
  readonly impersonation?: Readonly<Record<string, readonly string[]>>;
}

/** One call as the server received it. */
export interface ReceivedCall {
  readonly method: string;
  /** The resource name or parent of the request. */
  readonly name?: string;
  /** Who the bearer token stands for (Google's front only). */
  readonly principal?: string;
  /** The `:authority` the call was made to. */
  readonly authority: string;
}

/** The handle on Google's front. */
export interface GoogleFront {
  /** PEM file of the CA that signed the servers' certificate. */
  readonly caFile: string;
  /** `http://127.0.0.1:<port>`, the CONNECT proxy in front of the Google host names. */
  readonly proxyUrl: string;
  /** Host names CONNECTed to through the proxy, in order. */
  readonly connects: readonly string[];
  /** generateAccessToken calls: who asked, for whom, granted or not. */
  readonly impersonations: ReadonlyArray<{ source: string; target: string; granted: boolean }>;
  /** generateAccessToken requests received, answered or not. */
  iamRequests(): number;
  /** Answer every generateAccessToken with this HTTP status (503, 429 …) from now on; undefined ends it. */
  failIam(status: number | undefined): void;
  /** The service account's JSON key file (written under the server's folder). */
  keyFile(email: string): string;
  /** Environment that sends a child process's Google clients here: the proxy, and the CA trusted by Node and gRPC. */
  childEnv(): NodeJS.ProcessEnv;
}

/** The handle a test holds on a running server. */
export interface GcpSecretManagerServer {
  readonly port: number;
  /** Calls received per RPC method name (`AccessSecretVersion` …), failed ones included. */
  readonly calls: Readonly<Record<string, number>>;
  /** Calls answered with an injected failure (failNext, failFraction) so far. */
  injectedFailures(): number;
  /** Answer the next `count` calls (of `method`, or of any method) with `code` (default UNAVAILABLE). */
  failNext(count: number, opts?: { code?: grpc.status; method?: string; message?: string }): void;
  /**
   * Answer a `fraction` of the calls from now on with UNAVAILABLE, spread evenly from the first
   * one (call i, from 0, fails when ⌈(i+1)·fraction⌉ > ⌈i·fraction⌉), until `clearFaults`.
   */
  failFraction(fraction: number): void;
  /** Leave the next `count` calls (of `method`, or of any method) unanswered: the caller's deadline ends them. */
  hangNext(count: number, opts?: { method?: string }): void;
  /** Forget the injected failures and hangs not used up yet. */
  clearFaults(): void;
  /** Send a wrong data_crc32c with the next AccessSecretVersion answer (a corrupted payload in transit). */
  corruptNextChecksum(): void;
  /** Every call, with its resource name, principal and authority. */
  readonly received: readonly ReceivedCall[];
  /** Google's front, when started with `google`. */
  readonly google?: GoogleFront;
  /** Client options that reach this server with the real client and no credentials lookup. */
  clientOptions(): NonNullable<ConstructorParameters<typeof SecretManagerServiceClient>[0]>;
  stop(): Promise<void>;
}

/** Folder of the installed client package (its protos and its own google-gax/grpc-js). */
export function secretManagerPackageDir(): string {
  // build/src/index.js → package root
  return join(dirname(require.resolve("@google-cloud/secret-manager")), "..", "..");
}

/**
 * The @grpc/grpc-js instance the client library uses (through google-gax): its channel
 * credentials must come from that instance.
 */
export function clientGrpc(): typeof grpc {
  const gaxPath = require.resolve("google-gax", { paths: [secretManagerPackageDir()] });
  return (require(gaxPath) as { grpc: typeof grpc }).grpc;
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

/** CRC32C (Castagnoli), the checksum Secret Manager uses for payloads. */
function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function timestamp(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;
/** A version alias: starts with a letter; letters, digits, '-' and '_'; at most 63 characters. */
const ALIAS = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** `projects/<p>` or `projects/<p>/locations/<l>`; `location` undefined for a global parent. */
function parseProject(parent: string): { project: string; location?: string } {
  const m = /^projects\/([^/]+)(?:\/locations\/([^/]+))?$/.exec(parent ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: parent [${parent}].`);
  return { project: m[1], location: m[2] };
}

function parseSecret(name: string): { project: string; location?: string; secret: string } {
  const m = /^projects\/([^/]+)(?:\/locations\/([^/]+))?\/secrets\/([^/]+)$/.exec(name ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: name [${name}].`);
  return { project: m[1], location: m[2], secret: m[3] };
}

function parseVersion(name: string): { project: string; location?: string; secretName: string; version: string } {
  const m = /^(projects\/([^/]+)(?:\/locations\/([^/]+))?\/secrets\/([^/]+))\/versions\/([^/]+)$/.exec(name ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: name [${name}].`);
  // `latest`, a version number, or a version alias (accessed by name like the real service).
  if (m[5] !== "latest" && !/^[1-9][0-9]*$/.test(m[5]) && !ALIAS.test(m[5])) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: version [${m[5]}].`);
  }
  return { project: m[2], location: m[3], secretName: m[1], version: m[5] };
}

/** Start the server on 127.0.0.1 and a free port. */
export async function startGcpSecretManagerServer(options: GcpSecretManagerServerOptions = {}): Promise<GcpSecretManagerServer> {
  const clock = options.clock ?? systemClock;
  const pkgDir = secretManagerPackageDir();
  // build/src/index.js → package root (the package's "exports" hides package.json)
  const gaxDir = join(dirname(require.resolve("google-gax", { paths: [pkgDir] })), "..", "..");
  const definition = protoLoader.loadSync("google/cloud/secretmanager/v1/service.proto", {
    includeDirs: [join(pkgDir, "build", "protos"), join(gaxDir, "build", "protos")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { cloud: { secretmanager: { v1: { SecretManagerService: grpc.ServiceClientConstructor } } } };
  };
  const service = loaded.google.cloud.secretmanager.v1.SecretManagerService.service;

  const secrets = new Map<string, SecretRecord>();
  const calls: Record<string, number> = {};
  const received: ReceivedCall[] = [];
  const front = options.google ? createGoogleFront(options.google, options.locations ?? []) : undefined;
  const injected: Injected[] = [];
  let corruptChecksum = false;
  /** Calls left unanswered (hangNext) whose caller has not given up yet. */
  let hung = 0;
  /** failFraction: the fraction, and the calls counted since it was set. */
  let fractional: { fraction: number; seen: number } | undefined;
  let injectedFailures = 0;

  const checkProject = (project: string, permission: string, resource: string, location?: string) => {
    if (location !== undefined && !(options.locations ?? []).includes(location)) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `Location [${location}] is not a Secret Manager location of this server (${(options.locations ?? []).join(", ") || "none"}).`);
    }
    if (options.projects && !options.projects.includes(project)) {
      throw new RpcError(
        grpc.status.PERMISSION_DENIED,
        `Permission '${permission}' denied for resource '${resource}' (or it may not exist).`,
      );
    }
  };

  const findSecret = (name: string, permission: string): SecretRecord => {
    const { project, location } = parseSecret(name);
    checkProject(project, permission, name, location);
    const s = secrets.get(name);
    if (!s) throw new RpcError(grpc.status.NOT_FOUND, `Secret [${name}] not found.`);
    return s;
  };

  const findVersion = (name: string, permission: string): { secret: SecretRecord; version: VersionRecord } => {
    const { project, location, secretName, version } = parseVersion(name);
    checkProject(project, permission, name, location);
    const s = secrets.get(secretName);
    if (!s) throw new RpcError(grpc.status.NOT_FOUND, `Secret [${secretName}] not found or has no versions.`);
    if (version === "latest") {
      const latest = s.versions[s.versions.length - 1];
      if (!latest) throw new RpcError(grpc.status.NOT_FOUND, `Secret [${secretName}] not found or has no versions.`);
      return { secret: s, version: latest };
    }
    const id = /^[0-9]+$/.test(version) ? Number(version) : s.aliases[version];
    const v = id === undefined ? undefined : s.versions.find((x) => x.id === id);
    if (!v) throw new RpcError(grpc.status.NOT_FOUND, `Secret Version [${secretName}/versions/${version}] not found.`);
    return { secret: s, version: v };
  };

  const secretMessage = (s: SecretRecord) => ({
    name: s.name,
    replication: s.replication,
    create_time: timestamp(s.createTime),
    labels: s.labels,
    version_aliases: { ...s.aliases },
    etag: `"${s.etag}"`,
  });

  const versionMessage = (s: SecretRecord, v: VersionRecord) => ({
    name: `${s.name}/versions/${v.id}`,
    create_time: timestamp(v.createTime),
    ...(v.destroyTime !== undefined ? { destroy_time: timestamp(v.destroyTime) } : {}),
    state: v.state,
    etag: `"${v.id}-${v.state}"`,
    client_specified_payload_checksum: v.clientChecksum,
  });

  const page = <T>(items: T[], pageSize: number | undefined, pageToken: string | undefined): { items: T[]; next: string } => {
    const start = pageToken ? Number(Buffer.from(pageToken, "base64").toString("utf8")) : 0;
    if (!Number.isInteger(start) || start < 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, "Invalid page token.");
    const size = pageSize && pageSize > 0 ? Math.min(pageSize, 25000) : 25000;
    const slice = items.slice(start, start + size);
    const next = start + size < items.length ? Buffer.from(String(start + size)).toString("base64") : "";
    return { items: slice, next };
  };

  type Req = Record<string, any>;
  const methods: Record<string, (req: Req) => unknown> = {
    ListSecrets(req) {
      const { project, location } = parseProject(req.parent);
      checkProject(project, "secretmanager.secrets.list", req.parent, location);
      const mine = [...secrets.values()].filter((s) => s.name.startsWith(`${req.parent}/secrets/`));
      const { items, next } = page(mine, req.page_size, req.page_token);
      return { secrets: items.map(secretMessage), next_page_token: next, total_size: mine.length };
    },
    CreateSecret(req) {
      const { project, location } = parseProject(req.parent);
      checkProject(project, "secretmanager.secrets.create", req.parent, location);
      if (!SECRET_ID.test(req.secret_id ?? "")) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid secret_id [${req.secret_id}]: must match [a-zA-Z0-9_-]{1,255}.`);
      }
      const replication = req.secret?.replication;
      if (location !== undefined) {
        // Regional secrets live in their location: no replication policy.
        if (replication) throw new RpcError(grpc.status.INVALID_ARGUMENT, "Replication policy is not supported for regional secrets.");
      } else if (!replication || (!replication.automatic && !replication.user_managed)) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, "Secret.replication is required.");
      }
      const name = `${req.parent}/secrets/${req.secret_id}`;
      if (secrets.has(name)) throw new RpcError(grpc.status.ALREADY_EXISTS, `Secret [${name}] already exists.`);
      const s: SecretRecord = { name, createTime: clock.now(), labels: req.secret?.labels ?? {}, replication, versions: [], aliases: {}, etag: 1 };
      if (req.secret?.version_aliases && Object.keys(req.secret.version_aliases).length) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, "Version aliases can only point to existing versions.");
      }
      secrets.set(name, s);
      return secretMessage(s);
    },
    AddSecretVersion(req) {
      const s = findSecret(req.parent, "secretmanager.versions.add");
      const data: Buffer = Buffer.from(req.payload?.data ?? Buffer.alloc(0));
      if (data.length > 64 * 1024) throw new RpcError(grpc.status.INVALID_ARGUMENT, "Secret payload data exceeds 65536 bytes.");
      const actual = crc32c(data);
      const given = req.payload?.data_crc32c;
      if (given !== undefined && given !== null && Number(given) !== actual) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, "Checksum mismatch: data_crc32c does not match the payload data.");
      }
      const v: VersionRecord = {
        id: s.versions.length + 1,
        data,
        crc32c: actual,
        clientChecksum: given !== undefined && given !== null,
        createTime: clock.now(),
        state: "ENABLED",
      };
      s.versions.push(v);
      return versionMessage(s, v);
    },
    GetSecret(req) {
      return secretMessage(findSecret(req.name, "secretmanager.secrets.get"));
    },
    /**
     * Like the real service, for the fields this server keeps: `version_aliases` (the whole map
     * is replaced; each alias must name an existing version that is not destroyed, and may not
     * be `latest` or a number) and `labels`. An etag given must match.
     */
    UpdateSecret(req) {
      const s = findSecret(req.secret?.name, "secretmanager.secrets.update");
      const paths: string[] = req.update_mask?.paths ?? [];
      if (paths.length === 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, "update_mask is required.");
      const bad = paths.find((p) => p !== "version_aliases" && p !== "labels");
      if (bad) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Unsupported field in update_mask in this local server: ${bad}`);
      const etag: string | undefined = req.secret?.etag;
      if (etag && etag !== `"${s.etag}"`) throw new RpcError(grpc.status.ABORTED, "The etag provided in the request does not match the current etag of the secret.");
      let aliases = s.aliases;
      if (paths.includes("version_aliases")) {
        aliases = {};
        for (const [alias, raw] of Object.entries((req.secret?.version_aliases ?? {}) as Record<string, string | number>)) {
          if (!ALIAS.test(alias) || alias === "latest") throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid version alias [${alias}].`);
          const id = Number(raw);
          const v = s.versions.find((x) => x.id === id);
          if (!v) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Version alias [${alias}] points to a version that does not exist: [${raw}].`);
          if (v.state === "DESTROYED") throw new RpcError(grpc.status.INVALID_ARGUMENT, `Version alias [${alias}] points to a destroyed version: [${raw}].`);
          aliases[alias] = id;
        }
      }
      const labels = paths.includes("labels") ? { ...(req.secret?.labels ?? {}) } : s.labels;
      const updated: SecretRecord = { ...s, aliases, labels, etag: s.etag + 1 };
      secrets.set(s.name, updated);
      return secretMessage(updated);
    },
    DeleteSecret(req) {
      const s = findSecret(req.name, "secretmanager.secrets.delete");
      secrets.delete(s.name);
      return {};
    },
    ListSecretVersions(req) {
      const s = findSecret(req.parent, "secretmanager.versions.list");
      let versions = [...s.versions].reverse(); // newest first, like the real service
      const filter: string = (req.filter ?? "").trim();
      if (filter) {
        const m = /^state:(ENABLED|DISABLED|DESTROYED)$/.exec(filter);
        if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Unsupported filter in this local server: ${filter}`);
        versions = versions.filter((v) => v.state === m[1]);
      }
      const { items, next } = page(versions, req.page_size, req.page_token);
      return { versions: items.map((v) => versionMessage(s, v)), next_page_token: next, total_size: versions.length };
    },
    GetSecretVersion(req) {
      const { secret, version } = findVersion(req.name, "secretmanager.versions.get");
      return versionMessage(secret, version);
    },
    AccessSecretVersion(req) {
      const { secret, version } = findVersion(req.name, "secretmanager.versions.access");
      const versionName = `${secret.name}/versions/${version.id}`;
      if (version.state !== "ENABLED" || !version.data) {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `Secret Version [${versionName}] is in ${version.state} state.`);
      }
      let crc = version.crc32c;
      if (corruptChecksum) {
        corruptChecksum = false;
        crc = (crc ^ 1) >>> 0;
      }
      return { name: versionName, payload: { data: version.data, data_crc32c: String(crc) } };
    },
    DisableSecretVersion(req) {
      const { secret, version } = findVersion(req.name, "secretmanager.versions.disable");
      if (version.state === "DESTROYED") {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `Secret Version [${secret.name}/versions/${version.id}] is in DESTROYED state.`);
      }
      version.state = "DISABLED";
      return versionMessage(secret, version);
    },
    EnableSecretVersion(req) {
      const { secret, version } = findVersion(req.name, "secretmanager.versions.enable");
      if (version.state === "DESTROYED") {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `Secret Version [${secret.name}/versions/${version.id}] is in DESTROYED state.`);
      }
      version.state = "ENABLED";
      return versionMessage(secret, version);
    },
    DestroySecretVersion(req) {
      const { secret, version } = findVersion(req.name, "secretmanager.versions.destroy");
      if (version.state === "DESTROYED") {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `Secret Version [${secret.name}/versions/${version.id}] is in DESTROYED state.`);
      }
      version.state = "DESTROYED";
      version.data = null;
      version.destroyTime = clock.now();
      return versionMessage(secret, version);
    },
  };

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [method, fn] of Object.entries(methods)) {
    implementation[method] = (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      calls[method] = (calls[method] ?? 0) + 1;
      const req = call.request;
      const name: string | undefined = req.name ?? req.parent ?? req.secret?.name;
      const authority = call.getHost();
      if (front) {
        const auth = call.metadata.get("authorization")[0];
        const principal = typeof auth === "string" && auth.startsWith("Bearer ") ? front.principalOf(auth.slice("Bearer ".length), "secretmanager") : undefined;
        received.push({ method, ...(name !== undefined ? { name } : {}), ...(principal ? { principal } : {}), authority });
        if (!principal) {
          callback({ code: grpc.status.UNAUTHENTICATED, details: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential." });
          return;
        }
        if (!front.mayUseSecretManager(principal)) {
          callback({ code: grpc.status.PERMISSION_DENIED, details: `Permission denied on resource '${name}' for ${principal} (or it may not exist).` });
          return;
        }
        const location = /\/locations\/([^/]+)/.exec(name ?? "")?.[1];
        const expected = location ? `secretmanager.${location}.rep.googleapis.com` : "secretmanager.googleapis.com";
        const host = authority.replace(/:\d+$/, "");
        if (principal !== ADMIN && host !== expected) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: `${name} must be accessed at ${expected}, not ${host}.` });
          return;
        }
      } else {
        received.push({ method, ...(name !== undefined ? { name } : {}), authority });
      }
      if (fractional) {
        const i = fractional.seen++;
        if (Math.ceil((i + 1) * fractional.fraction) > Math.ceil(i * fractional.fraction)) {
          injectedFailures++;
          callback({ code: grpc.status.UNAVAILABLE, details: "The service is currently unavailable." });
          return;
        }
      }
      const inj = injected.find((i) => i.remaining > 0 && (!i.method || i.method === method));
      if (inj) {
        inj.remaining--;
        if (inj.hang) {
          hung++;
          call.on("cancelled", () => hung--);
          return;
        }
        injectedFailures++;
        callback({ code: inj.code, details: inj.message });
        return;
      }
      try {
        callback(null, fn(call.request));
      } catch (e) {
        if (e instanceof RpcError) callback({ code: e.code, details: e.message });
        else callback({ code: grpc.status.INTERNAL, details: "Internal error." });
      }
    };
  }

  const server = new grpc.Server();
  server.addService(service, implementation);
  const serverCreds = front
    ? grpc.ServerCredentials.createSsl(null, [{ private_key: front.tls.key, cert_chain: front.tls.cert }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", serverCreds, (err, p) => (err ? reject(err) : resolve(p))));
  const frontHandle = front ? await front.start(port) : undefined;

  return {
    port,
    calls,
    received,
    ...(frontHandle ? { google: frontHandle } : {}),
    injectedFailures: () => injectedFailures,
    failNext(count, opts) {
      injected.push({
        remaining: count,
        code: opts?.code ?? grpc.status.UNAVAILABLE,
        message: opts?.message ?? "The service is currently unavailable.",
        method: opts?.method,
      });
    },
    hangNext(count, opts) {
      injected.push({ remaining: count, code: grpc.status.UNAVAILABLE, message: "", method: opts?.method, hang: true });
    },
    failFraction(fraction) {
      fractional = { fraction, seen: 0 };
    },
    clearFaults() {
      injected.length = 0;
      fractional = undefined;
    },
    corruptNextChecksum() {
      corruptChecksum = true;
    },
    clientOptions() {
      const g = clientGrpc();
      if (front) {
        // The test's own client: TLS to 127.0.0.1 with the admin's token.
        const token = front.adminToken;
        const callCreds = g.credentials.createFromMetadataGenerator((_params, cb) => {
          const md = new g.Metadata();
          md.set("authorization", `Bearer ${token}`);
          cb(null, md);
        });
        return {
          apiEndpoint: "127.0.0.1",
          port,
          sslCreds: g.credentials.combineChannelCredentials(g.credentials.createSsl(Buffer.from(front.tls.ca)), callCreds),
          universeDomain: "googleapis.com",
          // A host name of the certificate (TLS has no server name for an IP address).
          "grpc.ssl_target_name_override": "secretmanager.googleapis.com",
        };
      }
      return {
        apiEndpoint: "127.0.0.1",
        port,
        sslCreds: g.credentials.createInsecure(),
        // Known universe: the client then does not look for credentials (no metadata-server probe).
        universeDomain: "googleapis.com",
      };
    },
    stop: async () => {
      await new Promise<void>((resolve) => {
        // A call left hanging would hold a graceful shutdown forever.
        if (hung > 0 || front) {
          server.forceShutdown();
          resolve();
        } else server.tryShutdown(() => resolve());
      });
      await front?.stop();
    },
  };
}

/** The principal of the test's own seeding client behind Google's front. */
const ADMIN = "admin";
const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";

interface GoogleFrontInternal {
  readonly tls: { readonly key: Buffer; readonly cert: Buffer; readonly ca: string };
  readonly adminToken: string;
  /** Who `token` stands for, for a call to `service`; undefined when it is not valid. */
  principalOf(token: string, service: "secretmanager" | "iamcredentials"): string | undefined;
  mayUseSecretManager(principal: string): boolean;
  start(grpcPort: number): Promise<GoogleFront>;
  stop(): Promise<void>;
}

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** The CA, the servers' certificate, the service accounts' keys, and the token bookkeeping of Google's front. */
function createGoogleFront(opts: GoogleFrontOptions, locations: readonly string[]): GoogleFrontInternal {
  const dir = mkdtempSync(join(tmpdir(), "gcp-front-"));
  const f = (n: string) => join(dir, n);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=dsops test Google CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("leaf.key"), "-out", f("leaf.csr"), "-subj", "/CN=googleapis.com"]);
  const names = ["secretmanager.googleapis.com", ...locations.map((l) => `secretmanager.${l}.rep.googleapis.com`), "oauth2.googleapis.com", "iamcredentials.googleapis.com"];
  writeFileSync(f("leaf.ext"), `subjectAltName=${[...names.map((n) => `DNS:${n}`), "IP:127.0.0.1"].join(",")}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(["x509", "-req", "-in", f("leaf.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f("leaf.pem"), "-days", "2", "-extfile", f("leaf.ext")]);
  const tls = { key: readFileSync(f("leaf.key")), cert: readFileSync(f("leaf.pem")), ca: readFileSync(f("ca.pem"), "utf8") };

  const accounts = new Map<string, { publicKey: KeyObject; keyFile: string }>();
  for (const email of opts.serviceAccounts) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyFile = f(`${email.split("@")[0]}.json`);
    writeFileSync(
      keyFile,
      JSON.stringify({
        type: "service_account",
        project_id: email.split("@")[1]?.split(".")[0] ?? "test",
        private_key_id: randomBytes(20).toString("hex"),
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
        client_email: email,
        client_id: String(100000000000 + accounts.size),
        auth_uri: "https://accounts.google.com/o/oauth2/auth",
        token_uri: "https://oauth2.googleapis.com/token",
      }),
      { mode: 0o600 },
    );
    accounts.set(email, { publicKey, keyFile });
  }
  const adminToken = `admin-${randomBytes(16).toString("hex")}`;
  /** Access tokens issued by the token endpoint and generateAccessToken → principal. */
  const issued = new Map<string, string>([[adminToken, ADMIN]]);
  const issue = (principal: string) => {
    const t = `ya29.test-${randomBytes(24).toString("base64url")}`;
    issued.set(t, principal);
    return t;
  };

  /** The claims of a JWT signed by a known service account (RS256), unexpired; undefined otherwise. */
  const verifiedJwt = (jwt: string): Record<string, unknown> | undefined => {
    const parts = jwt.split(".");
    if (parts.length !== 3) return undefined;
    try {
      const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8")) as { alg?: string };
      const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as Record<string, unknown>;
      const account = typeof claims.iss === "string" ? accounts.get(claims.iss) : undefined;
      if (header.alg !== "RS256" || !account) return undefined;
      if (!verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), account.publicKey, Buffer.from(parts[2], "base64url"))) return undefined;
      // Google's front checks expiry against real time; tests never depend on it.
      if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) return undefined;
      return claims;
    } catch {
      return undefined;
    }
  };

  const principalOf = (token: string, service: "secretmanager" | "iamcredentials"): string | undefined => {
    const known = issued.get(token);
    if (known) return known;
    const claims = verifiedJwt(token);
    if (!claims) return undefined;
    // A self-signed JWT names its API by audience, or carries scopes (what the gRPC clients send).
    const scopes = typeof claims.scope === "string" ? claims.scope.split(" ") : [];
    const aud = typeof claims.aud === "string" ? claims.aud : "";
    if (!scopes.includes(CLOUD_PLATFORM) && !aud.startsWith(`https://${service}.googleapis.com`)) return undefined;
    return claims.iss as string;
  };

  const connects: string[] = [];
  const impersonations: Array<{ source: string; target: string; granted: boolean }> = [];
  let iamRequests = 0;
  let iamFailure: number | undefined;
  const sockets = new Set<net.Socket>();
  const track = (sock: net.Socket) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  };
  let httpsServer: https.Server | undefined;
  let proxy: http.Server | undefined;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  const googleError = (res: http.ServerResponse, status: number, code: string, message: string) => json(res, status, { error: { code: status, message, status: code } });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    const url = new URL(req.url ?? "/", `https://${host}`);
    if (host === "oauth2.googleapis.com" && req.method === "POST" && url.pathname === "/token") {
      const form = new URLSearchParams(body);
      const claims = form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" ? verifiedJwt(form.get("assertion") ?? "") : undefined;
      if (!claims || claims.aud !== "https://oauth2.googleapis.com/token") return json(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      return json(res, 200, { access_token: issue(claims.iss as string), expires_in: 3599, token_type: "Bearer" });
    }
    const m = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url.pathname);
    if (host === "iamcredentials.googleapis.com" && req.method === "POST" && m) {
      iamRequests++;
      if (iamFailure !== undefined) {
        const status = iamFailure === 429 ? "RESOURCE_EXHAUSTED" : "UNAVAILABLE";
        return googleError(res, iamFailure, status, iamFailure === 429 ? "Quota exceeded for quota metric 'Generate access token requests'." : "The service is currently unavailable.");
      }
      const target = decodeURIComponent(m[1]);
      const auth = req.headers.authorization ?? "";
      const source = auth.startsWith("Bearer ") ? principalOf(auth.slice("Bearer ".length), "iamcredentials") : undefined;
      if (!source) return googleError(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
      const granted = (opts.impersonation?.[target] ?? []).includes(source);
      impersonations.push({ source, target, granted });
      if (!granted) return googleError(res, 403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
      let scope: unknown;
      try {
        scope = (JSON.parse(body) as { scope?: unknown }).scope;
      } catch {
        return googleError(res, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      }
      if (!Array.isArray(scope) || scope.length === 0) return googleError(res, 400, "INVALID_ARGUMENT", "Scope required.");
      return json(res, 200, { accessToken: issue(target), expireTime: new Date(Date.now() + 3600_000).toISOString() });
    }
    googleError(res, 404, "NOT_FOUND", `No such endpoint on this test front: ${req.method} ${host}${url.pathname}`);
  };

  return {
    tls,
    adminToken,
    principalOf,
    mayUseSecretManager: (p) => p === ADMIN || (opts.readers ? opts.readers.includes(p) : accounts.has(p)),
    async start(grpcPort) {
      httpsServer = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
        let body = "";
        req.setEncoding("utf8").on("data", (d: string) => (body += d));
        req.on("end", () => handle(req, res, body));
      });
      httpsServer.on("connection", (sock: net.Socket) => track(sock));
      await new Promise<void>((r) => httpsServer?.listen(0, "127.0.0.1", r));
      const httpsPort = (httpsServer.address() as net.AddressInfo).port;
      const upstream = (host: string): number | undefined =>
        /^secretmanager(\.[a-z0-9-]+\.rep)?\.googleapis\.com$/.test(host) ? grpcPort : host === "oauth2.googleapis.com" || host === "iamcredentials.googleapis.com" ? httpsPort : undefined;
      proxy = http.createServer((_req, res) => {
        res.writeHead(502).end();
      });
      proxy.on("connection", (sock: net.Socket) => track(sock));
      proxy.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
        const host = (req.url ?? "").replace(/:\d+$/, "");
        connects.push(host);
        const port = upstream(host);
        if (port === undefined) {
          client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
          return;
        }
        const up = net.connect(port, "127.0.0.1", () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          if (head.length) up.write(head);
          up.pipe(client);
          client.pipe(up);
        });
        track(up);
        up.on("error", () => client.destroy());
        client.on("error", () => up.destroy());
      });
      await new Promise<void>((r) => proxy?.listen(0, "127.0.0.1", r));
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
      return {
        caFile: f("ca.pem"),
        proxyUrl,
        connects,
        impersonations,
        iamRequests: () => iamRequests,
        failIam(status) {
          iamFailure = status;
        },
        keyFile(email) {
          const a = accounts.get(email);
          if (!a) throw new Error(`no service account ${email} on this front`);
          return a.keyFile;
        },
        childEnv: () => ({
          https_proxy: proxyUrl,
          HTTPS_PROXY: proxyUrl,
          grpc_proxy: proxyUrl,
          http_proxy: "",
          HTTP_PROXY: "",
          no_proxy: "",
          NO_PROXY: "",
          no_grpc_proxy: "",
          NODE_EXTRA_CA_CERTS: f("ca.pem"),
          GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: f("ca.pem"),
          GOOGLE_APPLICATION_CREDENTIALS: "",
          METADATA_SERVER_DETECTION: "none",
        }),
      };
    },
    async stop() {
      for (const sock of sockets) sock.destroy();
      await Promise.all([httpsServer, proxy].map((srv) => (srv ? new Promise<void>((r) => srv.close(() => r())) : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
