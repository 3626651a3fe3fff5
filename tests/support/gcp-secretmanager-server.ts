// Local server speaking the real SecretManagerService gRPC protocol to the real client library (@google-cloud/secret-manager): no real GCP Secret Manager server can run here.
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

function parseProject(parent: string): string {
  const m = /^projects\/([^/]+)$/.exec(parent ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: parent [${parent}].`);
  return m[1];
}

function parseSecret(name: string): { project: string; secret: string } {
  const m = /^projects\/([^/]+)\/secrets\/([^/]+)$/.exec(name ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: name [${name}].`);
  return { project: m[1], secret: m[2] };
}

function parseVersion(name: string): { project: string; secret: string; version: string } {
  const m = /^projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/]+)$/.exec(name ?? "");
  if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: name [${name}].`);
  // `latest`, a version number, or a version alias (accessed by name like the real service).
  if (m[3] !== "latest" && !/^[1-9][0-9]*$/.test(m[3]) && !ALIAS.test(m[3])) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource field value in the request: version [${m[3]}].`);
  }
  return { project: m[1], secret: m[2], version: m[3] };
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
  const injected: Injected[] = [];
  let corruptChecksum = false;
  /** Calls left unanswered (hangNext) whose caller has not given up yet. */
  let hung = 0;
  /** failFraction: the fraction, and the calls counted since it was set. */
  let fractional: { fraction: number; seen: number } | undefined;
  let injectedFailures = 0;

  const checkProject = (project: string, permission: string, resource: string) => {
    if (options.projects && !options.projects.includes(project)) {
      throw new RpcError(
        grpc.status.PERMISSION_DENIED,
        `Permission '${permission}' denied for resource '${resource}' (or it may not exist).`,
      );
    }
  };

  const findSecret = (name: string, permission: string): SecretRecord => {
    const { project } = parseSecret(name);
    checkProject(project, permission, name);
    const s = secrets.get(name);
    if (!s) throw new RpcError(grpc.status.NOT_FOUND, `Secret [${name}] not found.`);
    return s;
  };

  const findVersion = (name: string, permission: string): { secret: SecretRecord; version: VersionRecord } => {
    const { project, secret, version } = parseVersion(name);
    const secretName = `projects/${project}/secrets/${secret}`;
    checkProject(project, permission, name);
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
      const project = parseProject(req.parent);
      checkProject(project, "secretmanager.secrets.list", req.parent);
      const mine = [...secrets.values()].filter((s) => s.name.startsWith(`${req.parent}/secrets/`));
      const { items, next } = page(mine, req.page_size, req.page_token);
      return { secrets: items.map(secretMessage), next_page_token: next, total_size: mine.length };
    },
    CreateSecret(req) {
      const project = parseProject(req.parent);
      checkProject(project, "secretmanager.secrets.create", req.parent);
      if (!SECRET_ID.test(req.secret_id ?? "")) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid secret_id [${req.secret_id}]: must match [a-zA-Z0-9_-]{1,255}.`);
      }
      const replication = req.secret?.replication;
      if (!replication || (!replication.automatic && !replication.user_managed)) {
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
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );

  return {
    port,
    calls,
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
      return {
        apiEndpoint: "127.0.0.1",
        port,
        sslCreds: clientGrpc().credentials.createInsecure(),
        // Known universe: the client then does not look for credentials (no metadata-server probe).
        universeDomain: "googleapis.com",
      };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        // A call left hanging would hold a graceful shutdown forever.
        if (hung > 0) {
          server.forceShutdown();
          resolve();
        } else server.tryShutdown(() => resolve());
      }),
  };
}
