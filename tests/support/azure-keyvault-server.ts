// A local HTTPS server speaking the Azure Key Vault secrets REST API and the Microsoft Entra
// (AAD) token endpoints that @azure/keyvault-secrets and @azure/identity call: no Key Vault
// emulator can run here (Lowkey Vault's application is not on Maven Central).
import { execFileSync } from "node:child_process";
import { createPublicKey, randomBytes, verify, X509Certificate, createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveInChild, startServerProcess } from "./server-process";

/** A client the token endpoint knows: by secret, by certificate, or by a federated (workload identity) assertion. */
export interface AzureClient {
  readonly clientId: string;
  readonly secret?: string;
  /** PEM of the certificate whose key signs the client assertion. */
  readonly certificatePem?: string;
  /** A federated token (the content of AZURE_FEDERATED_TOKEN_FILE) accepted as client_assertion. */
  readonly federatedToken?: string;
}

/** What the server answers instead of serving a Key Vault request (after the bearer check). */
export type KeyVaultFault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfter?: number; readonly code?: string; readonly message?: string }
  | { readonly kind: "hang" }
  | { readonly kind: "malformed" };

interface Version {
  readonly id: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  readonly created: number;
  updated: number;
  /** Order of creation (created is whole seconds, as the service writes it). */
  readonly seq: number;
}

interface SecretEntry {
  versions: Version[];
  deletedAt?: number;
}

export interface AzureKeyVaultServer {
  /** `https://localhost:<port>`: the vault URL and the authority host. */
  readonly url: string;
  readonly port: number;
  readonly tenantId: string;
  /** PEM of the CA that signed the server's certificate (give it to the client). */
  readonly caPem: string;
  /** Path of that CA in a file (NODE_EXTRA_CA_CERTS for a child process). */
  readonly caFile: string;
  /** The App Service managed-identity endpoint (IDENTITY_ENDPOINT) and its header (IDENTITY_HEADER). */
  readonly identityEndpoint: string;
  readonly identityHeader: string;
  /** The client id of the system-assigned managed identity, and those of user-assigned ones the endpoint knows. */
  readonly managedIdentities: { readonly system: string; readonly userAssigned: readonly string[] };
  addClient(c: AzureClient): void;
  /** Make a certificate + key (one PEM file) for a client; returns its path and the certificate's PEM. */
  makeClientCertificate(name: string): { path: string; certificatePem: string };
  /** Every Key Vault request from now on gets this fault (undefined: serve normally); `first` limits it to the next N. */
  setFault(fault: KeyVaultFault | undefined, first?: number): void;
  /** Seed a version directly (as another writer would); returns its version id. */
  seed(name: string, value: string, opts?: { tags?: Record<string, string>; contentType?: string; enabled?: boolean }): string;
  /** Soft-delete a secret as `az keyvault secret delete` does. */
  softDelete(name: string): void;
  /** The versions of a secret, oldest first (for assertions on the server's state). */
  versionsOf(name: string): ReadonlyArray<{ id: string; tags?: Record<string, string>; enabled: boolean }>;
  /** Requests seen, by kind ("token", "msi", "kv", "kv-unauthenticated"). */
  readonly counts: Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

const VAULT_RESOURCE = "https://vault.azure.net";

/**
 * Start the server on 127.0.0.1 and a free port, with a fresh CA and a certificate for
 * localhost and 127.0.0.1 (made with openssl in a temporary folder).
 */
export async function startAzureKeyVaultServer(opts: { tenantId?: string } = {}): Promise<AzureKeyVaultServer> {
  const tenantId = opts.tenantId ?? "00000000-0000-4000-8000-00000000d5d5";
  const dir = mkdtempSync(join(tmpdir(), "dsops-azure-kv-"));
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=dsops test CA");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
  const caPem = readFileSync(join(dir, "ca.pem"), "utf8");

  const clients = new Map<string, AzureClient>();
  /** Issued bearer tokens → what they are for. */
  const tokens = new Map<string, { scope: string; clientId: string }>();
  const secrets = new Map<string, SecretEntry>();
  const counts: Record<string, number> = {};
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  let fault: KeyVaultFault | undefined;
  let faultLeft = Infinity;
  let seq = 0;
  const sockets = new Set<Socket>();
  const identityHeader = randomBytes(12).toString("hex");
  const managedIdentities = { system: "mi-system-" + randomBytes(4).toString("hex"), userAssigned: ["mi-user-" + randomBytes(4).toString("hex")] };

  let base = "";
  const issue = (scope: string, clientId: string) => {
    const t = "kvtok-" + randomBytes(24).toString("base64url");
    tokens.set(t, { scope, clientId });
    return t;
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(JSON.stringify(body));
  };
  const kvError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    json(res, status, { error: { code, message } }, headers);
  const aadError = (res: ServerResponse, status: number, error: string, description: string) =>
    json(res, status, { error, error_description: description, error_codes: [status === 401 ? 7000215 : 900023], timestamp: new Date().toISOString(), trace_id: randomBytes(8).toString("hex"), correlation_id: randomBytes(8).toString("hex") });

  const bundle = (name: string, v: Version) => ({
    id: `${base}/secrets/${name}/${v.id}`,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags ? { tags: v.tags } : {}),
    attributes: { enabled: v.enabled, created: v.created, updated: v.updated, recoveryLevel: "Recoverable+Purgeable", recoverableDays: 90 },
  });
  const latest = (e: SecretEntry) => e.versions[e.versions.length - 1];

  function verifyAssertion(assertion: string, client: AzureClient, audience: string): string | undefined {
    if (client.federatedToken !== undefined && assertion === client.federatedToken) return undefined;
    if (!client.certificatePem) return "client has no certificate";
    const parts = assertion.split(".");
    if (parts.length !== 3) return "client_assertion is not a JWT";
    let header: { alg?: string; x5t?: string; "x5t#S256"?: string };
    let claims: { aud?: string; iss?: string; sub?: string; exp?: number };
    try {
      header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    } catch {
      return "client_assertion is not a JWT";
    }
    const cert = new X509Certificate(client.certificatePem);
    const der = cert.raw;
    const x5t = createHash("sha1").update(der).digest("base64url");
    const x5t256 = createHash("sha256").update(der).digest("base64url");
    if (header.x5t !== x5t && header["x5t#S256"] !== x5t256) return "certificate thumbprint does not match";
    const alg = header.alg === "PS256" ? { hash: "sha256", padding: 6 } : header.alg === "RS256" ? { hash: "sha256", padding: 1 } : undefined;
    if (!alg) return `unsupported alg ${String(header.alg)}`;
    const ok = verify(alg.hash, Buffer.from(`${parts[0]}.${parts[1]}`), { key: createPublicKey(client.certificatePem), padding: alg.padding, ...(alg.padding === 6 ? { saltLength: 32 } : {}) }, Buffer.from(parts[2], "base64url"));
    if (!ok) return "signature does not verify";
    if (claims.iss !== client.clientId || claims.sub !== client.clientId) return "iss/sub is not the client id";
    if (claims.aud !== audience) return `aud ${String(claims.aud)} is not ${audience}`;
    return undefined;
  }

  async function body(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", base);
    const path = url.pathname;
    const text = await body(req);

    // --- Microsoft Entra ID (the authority host) -----------------------------------------
    if (req.method === "GET" && path === "/common/discovery/instance") {
      count("discovery");
      return json(res, 200, {
        tenant_discovery_endpoint: `${base}/${tenantId}/v2.0/.well-known/openid-configuration`,
        "api-version": "1.1",
        metadata: [{ preferred_network: "localhost:" + url.port, preferred_cache: "localhost:" + url.port, aliases: ["localhost:" + url.port] }],
      });
    }
    const oidc = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (req.method === "GET" && oidc) {
      count("openid-configuration");
      const t = oidc[1];
      return json(res, 200, {
        token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/${t}/oauth2/v2.0/logout`,
        issuer: `${base}/${t}/v2.0`,
        jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
      });
    }
    const tok = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (req.method === "POST" && tok) {
      count("token");
      const form = new URLSearchParams(text);
      if (tok[1] !== tenantId) return aadError(res, 400, "invalid_request", `AADSTS90002: Tenant '${tok[1]}' not found.`);
      const clientId = form.get("client_id") ?? "";
      const scope = (form.get("scope") ?? "").split(" ").find((s) => s.endsWith("/.default")) ?? "";
      const client = clients.get(clientId);
      if (form.get("grant_type") !== "client_credentials") return aadError(res, 400, "unsupported_grant_type", "AADSTS70003: only client_credentials here");
      if (!client) return aadError(res, 400, "unauthorized_client", `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`);
      const secret = form.get("client_secret");
      const assertion = form.get("client_assertion");
      if (secret !== null) {
        if (client.secret === undefined || secret !== client.secret) return aadError(res, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
      } else if (assertion !== null) {
        const why = verifyAssertion(assertion, client, `${base}/${tenantId}/oauth2/v2.0/token`);
        if (why) return aadError(res, 401, "invalid_client", `AADSTS700027: Client assertion failed signature validation (${why}).`);
      } else {
        return aadError(res, 401, "invalid_client", "AADSTS7000218: The request body must contain client_assertion or client_secret.");
      }
      if (!scope) return aadError(res, 400, "invalid_scope", "AADSTS1002012: a scope ending in /.default is required");
      return json(res, 200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: issue(scope, clientId) });
    }

    // --- App Service managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER) --------------
    if (req.method === "GET" && path === "/msi/token") {
      count("msi");
      if (req.headers["x-identity-header"] !== identityHeader) return json(res, 401, { error: "invalid_request", error_description: "missing or wrong X-IDENTITY-HEADER" });
      const resource = url.searchParams.get("resource") ?? "";
      const wanted = url.searchParams.get("client_id") ?? url.searchParams.get("mi_res_id") ?? url.searchParams.get("principal_id");
      let clientId = managedIdentities.system;
      if (wanted) {
        if (!managedIdentities.userAssigned.includes(wanted)) return json(res, 400, { statusCode: 400, message: `No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId (${wanted}).` });
        clientId = wanted;
      }
      if (!resource) return json(res, 400, { statusCode: 400, message: "resource is required" });
      const expiresOn = Math.floor(Date.now() / 1000) + 3600;
      return json(res, 200, { access_token: issue(`${resource.replace(/\/$/, "")}/.default`, clientId), expires_on: String(expiresOn), resource, token_type: "Bearer", client_id: clientId });
    }

    // --- Key Vault ------------------------------------------------------------------------
    const auth = req.headers.authorization;
    if (!auth) {
      count("kv-unauthenticated");
      res.setHeader("www-authenticate", `Bearer authorization="${base}/${tenantId}", resource="${VAULT_RESOURCE}"`);
      return kvError(res, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
    }
    count("kv");
    const bearer = /^Bearer (.+)$/.exec(auth)?.[1];
    const grant = bearer ? tokens.get(bearer) : undefined;
    if (!grant) {
      res.setHeader("www-authenticate", `Bearer authorization="${base}/${tenantId}", resource="${VAULT_RESOURCE}"`);
      return kvError(res, 401, "Unauthorized", "AKV10032: Invalid issuer or token.");
    }
    if (grant.scope !== `${VAULT_RESOURCE}/.default`) return kvError(res, 401, "Unauthorized", `AKV10022: Invalid audience (${grant.scope}).`);
    if (fault && faultLeft > 0) {
      faultLeft--;
      const f = fault;
      if (faultLeft <= 0) fault = undefined;
      if (f.kind === "hang") return; // never answered; the socket is destroyed at stop()
      if (f.kind === "malformed") {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end('{"value": "half a bundle", "id": ');
      }
      return kvError(res, f.status, f.code ?? (f.status === 429 ? "Throttled" : f.status === 403 ? "Forbidden" : "ServiceUnavailable"), f.message ?? `injected ${f.status}`, f.retryAfter !== undefined ? { "retry-after": String(f.retryAfter) } : {});
    }
    if (!url.searchParams.get("api-version")) return kvError(res, 400, "BadParameter", "api-version is required");

    const m = /^\/(secrets|deletedsecrets)(?:\/([^/]+))?(?:\/([^/]+))?\/?$/.exec(path);
    if (!m) return kvError(res, 404, "NotFound", `no route ${req.method} ${path}`);
    const [, coll, name, sub] = m;
    const entry = name ? secrets.get(name) : undefined;
    const live = entry && entry.deletedAt === undefined ? entry : undefined;
    const notFound = () => kvError(res, 404, "SecretNotFound", `A secret with (name/id) ${name}${sub && sub !== "versions" ? `/${sub}` : ""} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`);

    if (coll === "secrets") {
      if (!name) {
        if (req.method !== "GET") return kvError(res, 405, "BadParameter", "method");
        const value = [...secrets.entries()].filter(([, e]) => e.deletedAt === undefined).map(([n, e]) => ({ ...bundle(n, latest(e)), id: `${base}/secrets/${n}` }));
        return json(res, 200, { value, nextLink: null });
      }
      if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) return kvError(res, 400, "BadParameter", "The request URI contains an invalid name: " + name);
      if (req.method === "PUT" && !sub) {
        let params: { value?: unknown; tags?: Record<string, string>; contentType?: string; attributes?: { enabled?: boolean } };
        try {
          params = JSON.parse(text);
        } catch {
          return kvError(res, 400, "BadParameter", "The request body is not valid JSON");
        }
        if (typeof params.value !== "string") return kvError(res, 400, "BadParameter", "Property value is required");
        if (entry?.deletedAt !== undefined) return kvError(res, 409, "Conflict", `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`);
        const v = addVersion(name, params.value, { tags: params.tags, contentType: params.contentType, enabled: params.attributes?.enabled });
        return json(res, 200, { value: v.value, ...bundle(name, v) });
      }
      if (req.method === "GET" && sub === "versions") {
        if (!live) return notFound();
        const max = Number(url.searchParams.get("maxresults") ?? "25");
        const skip = Number(url.searchParams.get("$skiptoken") ?? "0");
        // The service lists versions in no promised order; newest first here.
        const all = [...live.versions].reverse();
        const page = all.slice(skip, skip + max);
        const next = skip + max < all.length ? `${base}/secrets/${name}/versions?api-version=${url.searchParams.get("api-version")}&maxresults=${max}&$skiptoken=${skip + max}` : null;
        return json(res, 200, { value: page.map((v) => bundle(name, v)), nextLink: next });
      }
      if (req.method === "GET") {
        if (!live) return notFound();
        const v = sub ? live.versions.find((x) => x.id === sub) : latest(live);
        if (!v) return notFound();
        if (!v.enabled) return kvError(res, 403, "Forbidden", "Operation get is not allowed on a disabled secret.", {});
        return json(res, 200, { value: v.value, ...bundle(name, v) });
      }
      if (req.method === "PATCH" && sub) {
        if (!live) return notFound();
        const v = live.versions.find((x) => x.id === sub);
        if (!v) return notFound();
        let params: { tags?: Record<string, string>; contentType?: string; attributes?: { enabled?: boolean } };
        try {
          params = JSON.parse(text || "{}");
        } catch {
          return kvError(res, 400, "BadParameter", "The request body is not valid JSON");
        }
        if (params.tags !== undefined) v.tags = params.tags;
        if (params.contentType !== undefined) v.contentType = params.contentType;
        if (params.attributes?.enabled !== undefined) v.enabled = params.attributes.enabled;
        v.updated = Math.floor(Date.now() / 1000);
        return json(res, 200, bundle(name, v));
      }
      if (req.method === "DELETE" && !sub) {
        if (!live) return notFound();
        live.deletedAt = Math.floor(Date.now() / 1000);
        return json(res, 200, { ...bundle(name, latest(live)), recoveryId: `${base}/deletedsecrets/${name}`, deletedDate: live.deletedAt, scheduledPurgeDate: live.deletedAt + 90 * 86400 });
      }
      return kvError(res, 405, "BadParameter", `method ${req.method} not allowed on ${path}`);
    }
    // deletedsecrets
    const deleted = entry && entry.deletedAt !== undefined ? entry : undefined;
    const deletedNotFound = () => kvError(res, 404, "SecretNotFound", `Deleted Secret not found: ${name}`);
    if (req.method === "GET" && name && !sub) {
      if (!deleted) return deletedNotFound();
      return json(res, 200, { ...bundle(name as string, latest(deleted)), recoveryId: `${base}/deletedsecrets/${name}`, deletedDate: deleted.deletedAt, scheduledPurgeDate: (deleted.deletedAt as number) + 90 * 86400 });
    }
    if (req.method === "POST" && name && sub === "recover") {
      if (!deleted) return deletedNotFound();
      delete deleted.deletedAt;
      return json(res, 200, bundle(name, latest(deleted)));
    }
    if (req.method === "DELETE" && name && !sub) {
      if (!deleted) return deletedNotFound();
      secrets.delete(name);
      res.writeHead(204);
      return void res.end();
    }
    return kvError(res, 404, "NotFound", `no route ${req.method} ${path}`);
  }

  function addVersion(name: string, value: string, o: { tags?: Record<string, string>; contentType?: string; enabled?: boolean } = {}): Version {
    let e = secrets.get(name);
    if (!e) secrets.set(name, (e = { versions: [] }));
    const now = Math.floor(Date.now() / 1000);
    const v: Version = { id: randomBytes(16).toString("hex"), value, enabled: o.enabled ?? true, created: now, updated: now, seq: seq++, ...(o.tags ? { tags: o.tags } : {}), ...(o.contentType !== undefined ? { contentType: o.contentType } : {}) };
    e.versions.push(v);
    return v;
  }

  const server: Server = createServer({ key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) kvError(res, 500, "InternalError", String(e));
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("secureConnection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  base = `https://localhost:${port}`;

  return {
    url: base,
    port,
    tenantId,
    caPem,
    caFile: join(dir, "ca.pem"),
    identityEndpoint: `${base}/msi/token`,
    identityHeader,
    managedIdentities,
    counts,
    addClient: (c) => void clients.set(c.clientId, c),
    makeClientCertificate(name) {
      ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`);
      const certificatePem = readFileSync(join(dir, `${name}.crt`), "utf8");
      const path = join(dir, `${name}.pem`);
      writeFileSync(path, readFileSync(join(dir, `${name}.key`), "utf8") + certificatePem);
      return { path, certificatePem };
    },
    setFault(f, first) {
      fault = f;
      faultLeft = first ?? Infinity;
    },
    seed: (name, value, o) => addVersion(name, value, o ?? {}).id,
    softDelete(name) {
      const e = secrets.get(name);
      if (!e) throw new Error(`no secret ${name}`);
      e.deletedAt = Math.floor(Date.now() / 1000);
    },
    versionsOf: (name) => (secrets.get(name)?.versions ?? []).map((v) => ({ id: v.id, enabled: v.enabled, ...(v.tags ? { tags: { ...v.tags } } : {}) })),
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The server running in a child process, as `startAzureKeyVaultServerProcess` reports it. */
export interface AzureKeyVaultServerProcess {
  readonly url: string;
  readonly tenantId: string;
  readonly caPem: string;
  readonly caFile: string;
  stop(): Promise<void>;
}

/**
 * The same server in a child process, for tests whose own event loop blocks while a client
 * runs (spawnSync of the Pulumi CLI): seed it through the real SecretClient, not `seed()`.
 */
export async function startAzureKeyVaultServerProcess(clients: AzureClient[]): Promise<AzureKeyVaultServerProcess> {
  return startServerProcess<Omit<AzureKeyVaultServerProcess, "stop">>(__filename, { DSOPS_AZ_CLIENTS: JSON.stringify(clients) }, "the Key Vault server");
}


if (require.main === module && process.argv[2] === "serve") {
  void (async () => {
    const srv = await startAzureKeyVaultServer();
    for (const c of JSON.parse(process.env.DSOPS_AZ_CLIENTS ?? "[]") as AzureClient[]) srv.addClient(c);
    serveInChild({ url: srv.url, tenantId: srv.tenantId, caFile: srv.caFile, caPem: srv.caPem }, () => srv.stop());
  })();
}
