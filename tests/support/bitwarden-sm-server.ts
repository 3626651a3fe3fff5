import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { serveInChild, startServerProcess } from "./server-process";

/**
 * A local server speaking the part of Bitwarden Secrets Manager's wire protocol that the
 * official `@bitwarden/sdk-napi` (1.0.0) uses, so the real SDK (its Rust HTTP client and its
 * client-side crypto) runs against loopback:
 *
 * - identity `POST <identity>/connect/token` (form: `grant_type=client_credentials`,
 *   `scope=api.secrets`, `client_id` = the access token's id, `client_secret`): a JWT
 *   `access_token` whose payload carries `organization` (the SDK reads it, never checks the
 *   signature), and `encrypted_payload`: an EncString holding `{"encryptionKey": <org key,
 *   base64>}` under the key the SDK derives from the access token's 16-byte secret
 *   (HMAC-SHA256 keyed "bitwarden-accesstoken" over the secret, then HKDF-Expand-SHA256 with
 *   info "sm-access-token" to 64 bytes: 32 AES key + 32 MAC key). A wrong id or secret is
 *   `400 {"error":"invalid_client"}`, as Bitwarden's identity server answers.
 * - API (Bearer token): `GET /secrets/{id}`, `POST /secrets/get-by-ids` (`{ids}`; 404 when any
 *   is missing, as Bitwarden does), `GET /organizations/{org}/secrets` (ids and encrypted keys),
 *   `POST /organizations/{org}/secrets` (create), `PUT /secrets/{id}` (update),
 *   `POST /secrets/delete`, `GET /projects/{id}`, `GET /organizations/{org}/projects`.
 *   Errors are Bitwarden's `ErrorResponseModel` (`{message, object: "error"}`).
 *
 * Secret keys, values and notes arrive and are stored as the EncStrings (type 2, AES-256-CBC +
 * HMAC-SHA256) the SDK made; the server never decrypts them. It does hold the organisation key
 * (it stands in for the organisation's admin who made the access token), so it can encrypt
 * project names and check, for the tests, what a stored value decrypts to.
 *
 * Faults for attack tests: `fault(...)` makes the next `count` API or identity requests
 * answer a status, hang, or answer a body that is not JSON.
 */
export type BwsFault =
  | { readonly kind: "status"; readonly status: number; readonly count?: number; readonly on?: "api" | "identity" }
  | { readonly kind: "hang"; readonly count?: number; readonly on?: "api" | "identity" }
  | { readonly kind: "malformed"; readonly count?: number; readonly on?: "api" | "identity" };

interface StoredSecret {
  readonly id: string;
  key: string;
  value: string;
  note: string;
  projectIds: string[];
  readonly created: string;
  revised: string;
}

export interface BwsServer {
  /** The API base (the SDK's apiUrl). */
  readonly apiUrl: string;
  /** The identity base (the SDK's identityUrl). */
  readonly identityUrl: string;
  readonly organizationId: string;
  /** Every request (method, path), never a body or header. */
  readonly requests: Array<{ method: string; path: string }>;
  /** A new machine-account access token (`0.<id>.<secret>:<key>`) for this organisation. */
  newAccessToken(): string;
  /** A project of the organisation; returns its id. */
  addProject(name: string): string;
  /** Forget every bearer token issued so far (API calls answer 401 until the SDK logs in again). */
  revokeBearerTokens(): void;
  /** What the stored value of `id` decrypts to (a test's check of what the SDK wrote), or undefined. */
  storedValue(id: string): string | undefined;
  /** The raw stored records (EncStrings), to check that no plaintext reached the server. */
  storedRaw(): string;
  fault(f: BwsFault | undefined): void;
  stop(): Promise<void>;
}

/** An EncString type 2 (AesCbc256_HmacSha256_B64): `2.<iv>|<ciphertext>|<mac>`, MAC over iv‖ciphertext. */
function encString(plain: Buffer, key: Buffer): string {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key.subarray(0, 32), iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  const mac = createHmac("sha256", key.subarray(32, 64)).update(iv).update(ct).digest();
  return `2.${iv.toString("base64")}|${ct.toString("base64")}|${mac.toString("base64")}`;
}

function decString(enc: string, key: Buffer): string | undefined {
  const m = /^2\.([^|]+)\|([^|]+)\|([^|]+)$/.exec(enc);
  if (!m) return undefined;
  const [iv, ct, mac] = [m[1], m[2], m[3]].map((p) => Buffer.from(p, "base64"));
  if (!createHmac("sha256", key.subarray(32, 64)).update(iv).update(ct).digest().equals(mac)) return undefined;
  const d = createDecipheriv("aes-256-cbc", key.subarray(0, 32), iv);
  return Buffer.concat([d.update(ct), d.final()]).toString("utf8");
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export async function startBitwardenSmServer(opts: { organizationId?: string } = {}): Promise<BwsServer> {
  const organizationId = opts.organizationId ?? randomUUID();
  const orgKey = randomBytes(64);
  const clients = new Map<string, { secret: string; payload: string }>();
  const bearers = new Set<string>();
  const secrets = new Map<string, StoredSecret>();
  const projects = new Map<string, { id: string; name: string; created: string }>();
  const requests: BwsServer["requests"] = [];
  let fault: (BwsFault & { left: number }) | undefined;
  const sockets = new Set<Socket>();
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date((clock += 1000)).toISOString();

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (res: ServerResponse, status: number, message: string) =>
    send(res, status, { message, validationErrors: null, exceptionMessage: null, exceptionStackTrace: null, innerExceptionMessage: null, object: "error" });

  const projectRefs = (ids: string[]) => ids.filter((p) => projects.has(p)).map((p) => ({ id: p, name: projects.get(p)?.name ?? null }));
  const secretModel = (s: StoredSecret) => ({
    object: "secret",
    id: s.id,
    organizationId,
    key: s.key,
    value: s.value,
    note: s.note,
    creationDate: s.created,
    revisionDate: s.revised,
    projects: projectRefs(s.projectIds),
    read: true,
    write: true,
  });
  const projectModel = (p: { id: string; name: string; created: string }) => ({ object: "project", id: p.id, organizationId, name: p.name, creationDate: p.created, revisionDate: p.created, read: true, write: true });

  const token = (body: string, res: ServerResponse) => {
    const form = new URLSearchParams(body);
    const c = clients.get(form.get("client_id") ?? "");
    if (form.get("grant_type") !== "client_credentials" || form.get("scope") !== "api.secrets" || !c || c.secret !== form.get("client_secret")) {
      return send(res, 400, { error: "invalid_client" });
    }
    // Real time: the SDK checks a saved token's `exp` against its own clock.
    const iat = Math.floor(Date.now() / 1000);
    const claims = { nbf: iat, exp: iat + 3600, iss: "http://127.0.0.1", client_id: form.get("client_id"), sub: randomUUID(), organization: organizationId, jti: randomBytes(16).toString("hex"), iat, scope: ["api.secrets"] };
    const unsigned = `${b64url(JSON.stringify({ alg: "RS256", typ: "at+jwt" }))}.${b64url(JSON.stringify(claims))}`;
    const jwt = `${unsigned}.${b64url(createHmac("sha256", orgKey).update(unsigned).digest())}`;
    bearers.add(jwt);
    return send(res, 200, { access_token: jwt, expires_in: 3600, token_type: "Bearer", scope: "api.secrets", encrypted_payload: c.payload });
  };

  const api = (req: IncomingMessage, res: ServerResponse, path: string, body: string) => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!bearer || !bearers.has(bearer)) {
      res.writeHead(401, { "content-length": "0" });
      return res.end();
    }
    let parsed: unknown;
    if (body) {
      try {
        parsed = JSON.parse(body);
      } catch {
        return fail(res, 400, "The request body is not valid JSON.");
      }
    }
    const p = (parsed ?? {}) as { ids?: unknown; key?: unknown; value?: unknown; note?: unknown; projectIds?: unknown; name?: unknown };
    const method = req.method ?? "GET";
    let m: RegExpExecArray | null;
    if ((m = /^\/organizations\/([^/]+)\/secrets$/.exec(path))) {
      if (m[1] !== organizationId) return fail(res, 404, "Resource not found.");
      if (method === "GET") {
        const list = [...secrets.values()].map((s) => ({ id: s.id, organizationId, key: s.key, creationDate: s.created, revisionDate: s.revised, projects: projectRefs(s.projectIds) }));
        return send(res, 200, { object: "SecretsWithProjectsList", secrets: list, projects: [...projects.values()].map((x) => ({ id: x.id, name: x.name })) });
      }
      if (method === "POST") {
        if (typeof p.key !== "string" || typeof p.value !== "string" || typeof p.note !== "string") return fail(res, 400, "The model state is invalid.");
        const ids = Array.isArray(p.projectIds) ? (p.projectIds as string[]) : [];
        if (ids.some((x) => !projects.has(x))) return fail(res, 404, "Resource not found.");
        const at = now();
        const s: StoredSecret = { id: randomUUID(), key: p.key, value: p.value, note: p.note, projectIds: ids, created: at, revised: at };
        secrets.set(s.id, s);
        return send(res, 200, secretModel(s));
      }
    }
    if (path === "/secrets/get-by-ids" && method === "POST") {
      const ids = Array.isArray(p.ids) ? (p.ids as string[]) : [];
      const found = ids.map((i) => secrets.get(i)).filter((s): s is StoredSecret => s !== undefined);
      if (found.length !== ids.length) return fail(res, 404, "Resource not found.");
      return send(res, 200, { object: "list", data: found.map(secretModel), continuationToken: null });
    }
    if (path === "/secrets/delete" && method === "POST") {
      const ids = Array.isArray(parsed) ? (parsed as string[]) : [];
      const data = ids.map((i) => ({ id: i, error: secrets.delete(i) ? null : "Secret not found." }));
      return send(res, 200, { object: "list", data, continuationToken: null });
    }
    if ((m = /^\/secrets\/([^/]+)$/.exec(path))) {
      const s = secrets.get(m[1]);
      if (!s) return fail(res, 404, "Resource not found.");
      if (method === "GET") return send(res, 200, secretModel(s));
      if (method === "PUT") {
        if (typeof p.key !== "string" || typeof p.value !== "string" || typeof p.note !== "string") return fail(res, 400, "The model state is invalid.");
        s.key = p.key;
        s.value = p.value;
        s.note = p.note;
        if (Array.isArray(p.projectIds)) s.projectIds = p.projectIds as string[];
        s.revised = now();
        return send(res, 200, secretModel(s));
      }
    }
    if ((m = /^\/organizations\/([^/]+)\/projects$/.exec(path)) && method === "GET") {
      if (m[1] !== organizationId) return fail(res, 404, "Resource not found.");
      return send(res, 200, { object: "list", data: [...projects.values()].map(projectModel), continuationToken: null });
    }
    if ((m = /^\/projects\/([^/]+)$/.exec(path)) && method === "GET") {
      const pr = projects.get(m[1]);
      if (!pr) return fail(res, 404, "Resource not found.");
      return send(res, 200, projectModel(pr));
    }
    return fail(res, 404, "Resource not found.");
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const u = new URL(req.url ?? "/", "http://x");
    requests.push({ method: req.method ?? "GET", path: u.pathname });
    const side = u.pathname.startsWith("/identity/") ? "identity" : "api";
    if (fault && fault.left > 0 && (fault.on ?? "api") === side) {
      fault.left--;
      if (fault.kind === "hang") return;
      if (fault.kind === "malformed") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("<html>upstream error</html>");
        return;
      }
      if (fault.status === 429) {
        res.writeHead(429, { "content-type": "text/plain", "retry-after": "60" });
        res.end("API calls quota exceeded! maximum admitted 200 per 1m.");
        return;
      }
      return fail(res, fault.status, "An error has occurred.");
    }
    if (u.pathname === "/identity/connect/token" && req.method === "POST") return token(body, res);
    if (u.pathname.startsWith("/api/")) return api(req, res, u.pathname.slice("/api".length), body);
    return fail(res, 404, "Resource not found.");
  };

  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => handle(req, res, body));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return {
    apiUrl: `${base}/api`,
    identityUrl: `${base}/identity`,
    organizationId,
    requests,
    newAccessToken: () => {
      const id = randomUUID();
      const secret = randomBytes(22).toString("base64url").replace(/[-_]/g, "x").slice(0, 30);
      const seed = randomBytes(16);
      const derived = Buffer.from(hkdfSync("sha256", seed, "bitwarden-accesstoken", "sm-access-token", 64));
      const payload = encString(Buffer.from(JSON.stringify({ encryptionKey: orgKey.toString("base64") })), derived);
      clients.set(id, { secret, payload });
      return `0.${id}.${secret}:${seed.toString("base64")}`;
    },
    addProject: (name) => {
      const id = randomUUID();
      projects.set(id, { id, name: encString(Buffer.from(name), orgKey), created: now() });
      return id;
    },
    revokeBearerTokens: () => bearers.clear(),
    storedValue: (id) => {
      const s = secrets.get(id);
      return s ? decString(s.value, orgKey) : undefined;
    },
    storedRaw: () => JSON.stringify([...secrets.values()]),
    fault: (f) => (fault = f ? { ...f, left: f.count ?? Number.POSITIVE_INFINITY } : undefined),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What the child process tells its parent: where it listens, and an access token for its organisation. */
export interface BwsServerProcess {
  readonly apiUrl: string;
  readonly identityUrl: string;
  readonly organizationId: string;
  readonly projectId: string;
  readonly accessToken: string;
  stop(): Promise<void>;
}

/**
 * The server in a child process, for tests whose event loop blocks while a client runs
 * (spawnSync of the Pulumi CLI). One project ("e2e") and one access token are made at start;
 * seed it through the SDK.
 */
export async function startBitwardenSmServerProcess(): Promise<BwsServerProcess> {
  return startServerProcess<Omit<BwsServerProcess, "stop">>(__filename, {}, "the Bitwarden Secrets Manager server's");
}

if (require.main === module && process.argv[2] === "serve") {
  void (async () => {
    const s = await startBitwardenSmServer();
    const ready: Omit<BwsServerProcess, "stop"> = { apiUrl: s.apiUrl, identityUrl: s.identityUrl, organizationId: s.organizationId, projectId: s.addProject("e2e"), accessToken: s.newAccessToken() };
    serveInChild(ready, () => s.stop());
  })();
}
