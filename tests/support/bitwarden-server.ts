import { createCipheriv, createPublicKey, createHmac, generateKeyPairSync, pbkdf2Sync, publicEncrypt, constants, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { strict as assert } from "node:assert";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket } from "node:net";

/**
 * A local server speaking the part of the Bitwarden server API the real `bw` CLI calls, so the
 * CLI logs in, syncs and writes against it with its own client-side encryption:
 * identity `POST /identity/accounts/prelogin/password` (the account's KDF and salt),
 * `POST /identity/connect/token` (grant_type=password with the master password hash, and
 * refresh_token), api `GET /api/config`, `GET /api/accounts/revision-date`, `GET /api/sync`,
 * `POST /api/ciphers`, `POST /api/ciphers/create` (organisation items with their collections), `POST /api/ciphers/import`, attachments (`POST /api/ciphers/:id/attachment/v2`, the multipart upload, `GET` of its data and file),
 * `PUT /api/ciphers/:id`, `GET /api/ciphers/:id`. The server never sees a plaintext: it stores
 * the encrypted ciphers bw uploads and hands them back on sync.
 *
 * Accounts are made by `register()`, which does what a Bitwarden client does when it signs up
 * (the server's sign-up endpoint takes the same client-made material): derive the master key
 * (PBKDF2-SHA256 over the password, salted with the e-mail), wrap a random user key with the
 * stretched master key, make an RSA key pair whose private half the user key wraps; an
 * organisation gets a random key wrapped with the member's public key. Only the master
 * password hash and the wrapped keys are kept.
 *
 * `requests` records method and path of every request (never bodies); `fault()` makes the next
 * requests answer a status or hang.
 */
export interface BitwardenServer {
  /** `https://127.0.0.1:<port>` for `bw config server` (bw refuses plain http). */
  readonly url: string;
  /** A PEM file of the CA that signed the server's certificate: NODE_EXTRA_CA_CERTS for bw. */
  readonly caFile: string;
  readonly requests: Array<{ method: string; path: string }>;
  register(email: string, password: string, opts?: { iterations?: number }): void;
  /** An organisation the account owns, with one collection; returns their ids. */
  addOrganization(email: string, name: string, collection: string): { organizationId: string; collectionId: string };
  fault(f: { kind: "status"; status: number; count?: number } | { kind: "hang"; count?: number }): void;
  /** Cipher ids stored for an account. */
  cipherIds(email: string): string[];
  close(): Promise<void>;
}

interface Account {
  id: string;
  email: string;
  name: string;
  iterations: number;
  passwordHash: Buffer;
  key: string;
  publicKey: string;
  privateKey: string;
  userKey: Buffer;
  securityStamp: string;
  revision: number;
  ciphers: Map<string, Record<string, unknown>>;
  organizations: Array<{ id: string; name: string; key: string; collectionId: string; collectionName: string }>;
  tokens: Set<string>;
  refreshTokens: Set<string>;
}

function b64(b: Buffer): string {
  return b.toString("base64");
}

/** HKDF-Expand (RFC 5869, one SHA-256 block): what Bitwarden clients stretch the master key with. */
function hkdfExpand(prk: Buffer, info: string): Buffer {
  return createHmac("sha256", prk).update(Buffer.concat([Buffer.from(info, "utf8"), Buffer.from([1])])).digest();
}

/** An EncString of type 2 (AES-256-CBC with HMAC-SHA256) of `plain` under a 64-byte key (32 enc + 32 mac). */
function encType2(key: Buffer, plain: Buffer): string {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key.subarray(0, 32), iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  const mac = createHmac("sha256", key.subarray(32, 64)).update(Buffer.concat([iv, ct])).digest();
  return `2.${b64(iv)}|${b64(ct)}|${b64(mac)}`;
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString("base64url");
}

export async function startBitwardenServer(): Promise<BitwardenServer> {
  const dir = mkdtempSync(join(tmpdir(), "dsops-bw-server-"));
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=dsops test CA");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
  const accounts = new Map<string, Account>();
  const requests: Array<{ method: string; path: string }> = [];
  let faults: { kind: "status" | "hang"; status?: number; count: number } | undefined;
  const hung: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  let base = "";

  const byToken = (req: IncomingMessage): Account | undefined => {
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m) return undefined;
    for (const a of accounts.values()) if (a.tokens.has(m[1])) return a;
    return undefined;
  };

  const issueTokens = (a: Account) => {
    const now = Math.floor(Date.now() / 1000);
    const access = [
      b64url({ alg: "HS256", typ: "JWT" }),
      b64url({ nbf: now, exp: now + 3600, iss: "local|login", sub: a.id, email: a.email, email_verified: true, name: a.name, premium: true, amr: ["Application"], client_id: "cli", scope: ["api", "offline_access"], sstamp: a.securityStamp, device: randomUUID() }),
      randomBytes(32).toString("base64url"),
    ].join(".");
    const refresh = randomBytes(32).toString("base64url");
    a.tokens.add(access);
    a.refreshTokens.add(refresh);
    return {
      access_token: access,
      expires_in: 3600,
      token_type: "Bearer",
      refresh_token: refresh,
      scope: "api offline_access",
      Key: a.key,
      PrivateKey: a.privateKey,
      AccountKeys: { publicKeyEncryptionKeyPair: { publicKey: a.publicKey, wrappedPrivateKey: a.privateKey, object: "publicKeyEncryptionKeyPair" }, object: "privateKeys" },
      Kdf: 0,
      KdfIterations: a.iterations,
      KdfMemory: null,
      KdfParallelism: null,
      ResetMasterPassword: false,
      ForcePasswordReset: false,
      MasterPasswordPolicy: { Object: "masterPasswordPolicy" },
      UserDecryptionOptions: {
        HasMasterPassword: true,
        MasterPasswordUnlock: { Salt: a.email, Kdf: { KdfType: 0, Iterations: a.iterations }, MasterKeyEncryptedUserKey: a.key },
        Object: "userDecryptionOptions",
      },
    };
  };

  const cipherOut = (a: Account, c: Record<string, unknown>) => ({ ...c, edit: true, viewPassword: true, manage: true, permissions: { delete: true, restore: true }, organizationUseTotp: true, object: "cipherDetails" });

  const profile = (a: Account) => ({
    id: a.id,
    name: a.name,
    email: a.email,
    emailVerified: true,
    premium: true,
    premiumFromOrganization: false,
    culture: "en-US",
    twoFactorEnabled: false,
    key: a.key,
    privateKey: a.privateKey,
    accountKeys: { publicKeyEncryptionKeyPair: { publicKey: a.publicKey, wrappedPrivateKey: a.privateKey, object: "publicKeyEncryptionKeyPair" }, object: "privateKeys" },
    securityStamp: a.securityStamp,
    forcePasswordReset: false,
    usesKeyConnector: false,
    avatarColor: null,
    creationDate: new Date(0).toISOString(),
    organizations: a.organizations.map((o) => ({
      id: o.id,
      name: o.name,
      key: o.key,
      status: 2,
      type: 0,
      enabled: true,
      usePolicies: false,
      useGroups: false,
      useDirectory: false,
      useEvents: false,
      useTotp: true,
      use2fa: false,
      useApi: false,
      useSso: false,
      useKeyConnector: false,
      useResetPassword: false,
      selfHost: true,
      usersGetPremium: true,
      seats: 10,
      maxCollections: 10,
      maxStorageGb: 1,
      userId: a.id,
      hasPublicAndPrivateKeys: false,
      permissions: {},
      limitCollectionCreation: false,
      limitCollectionDeletion: false,
      allowAdminAccessToAllCollectionItems: true,
      object: "profileOrganization",
    })),
    providers: [],
    providerOrganizations: [],
    object: "profile",
  });

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(text);
  };
  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });
  /** Encrypted attachment files, by attachment id (what bw uploaded, byte for byte). */
  const files = new Map<string, Buffer>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    const path = url.pathname;
    requests.push({ method, path });
    if (faults && faults.count > 0) {
      faults.count--;
      if (faults.kind === "hang") {
        hung.push(res);
        return;
      }
      return send(res, faults.status ?? 500, { message: "fault injected", object: "error" });
    }
    const raw = await readBody(req);
    const body = raw.toString("utf8");
    const file = /^\/attachments\/([0-9a-f-]{36})$/.exec(path);
    if (method === "GET" && file) {
      const bytes = files.get(file[1]);
      if (!bytes) return send(res, 404, { message: "no such file", object: "error" });
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(bytes);
    }
    if (method === "GET" && (path === "/api/config" || path === "/config")) {
      return send(res, 200, { version: "2026.9.0", gitHash: "local", server: { name: "dsops-test", url: "http://127.0.0.1" }, environment: {}, featureStates: {}, push: { pushTechnology: 0 }, settings: { disableUserRegistration: false }, object: "config" });
    }
    if (method === "POST" && path === "/identity/accounts/prelogin/password") {
      const email = String((JSON.parse(body || "{}") as { email?: string; Email?: string }).email ?? "").toLowerCase();
      const a = accounts.get(email);
      return send(res, 200, { KdfSettings: { KdfType: 0, Iterations: a?.iterations ?? 600000 }, Salt: email });
    }
    if (method === "POST" && path === "/identity/connect/token") {
      const form = new URLSearchParams(body);
      if (form.get("grant_type") === "refresh_token") {
        for (const a of accounts.values()) if (a.refreshTokens.has(form.get("refresh_token") ?? "")) return send(res, 200, issueTokens(a));
        return send(res, 400, { error: "invalid_grant" });
      }
      const a = accounts.get((form.get("username") ?? "").toLowerCase());
      const given = Buffer.from(form.get("password") ?? "", "base64");
      if (!a || given.length !== a.passwordHash.length || !timingSafeEqual(given, a.passwordHash)) {
        return send(res, 400, { error: "invalid_grant", error_description: "invalid_username_or_password", ErrorModel: { Message: "Username or password is incorrect. Try again.", Object: "error" } });
      }
      return send(res, 200, issueTokens(a));
    }
    const a = byToken(req);
    if (!a) return send(res, 401, { message: "Unauthorized", object: "error" });
    if (method === "GET" && path === "/api/accounts/revision-date") return send(res, 200, a.revision);
    if (method === "GET" && path === "/api/accounts/profile") return send(res, 200, profile(a));
    // The SDK records the id of the user key once (a migration the client runs after unlock).
    if (method === "POST" && path === "/api/accounts/key-management/user-key-id") {
      res.writeHead(200);
      return res.end();
    }
    if (method === "GET" && path === "/api/sync") {
      return send(res, 200, {
        profile: profile(a),
        folders: [],
        collections: a.organizations.map((o) => ({ id: o.collectionId, organizationId: o.id, name: o.collectionName, externalId: null, readOnly: false, hidePasswords: false, manage: true, object: "collectionDetails" })),
        ciphers: [...a.ciphers.values()].map((c) => cipherOut(a, c)),
        domains: null,
        policies: [],
        sends: [],
        object: "sync",
      });
    }
    const save = (id: string, input: Record<string, unknown>, collectionIds: unknown, existing?: Record<string, unknown>) => {
      const now = new Date().toISOString();
      const c: Record<string, unknown> = {
        ...input,
        id,
        organizationId: input.organizationId ?? null,
        folderId: input.folderId ?? null,
        collectionIds: Array.isArray(collectionIds) ? collectionIds : (existing?.collectionIds ?? []),
        attachments: existing?.attachments ?? null,
        creationDate: existing?.creationDate ?? now,
        revisionDate: now,
        deletedDate: null,
      };
      delete c.lastKnownRevisionDate;
      delete c.attachments2;
      a.ciphers.set(id, c);
      a.revision = Date.now();
      return cipherOut(a, c);
    };
    if (method === "POST" && (path === "/api/ciphers" || path === "/api/ciphers/create")) {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      const input = (path.endsWith("/create") ? parsed.cipher : parsed) as Record<string, unknown>;
      return send(res, 200, save(randomUUID(), input, parsed.collectionIds));
    }
    if (method === "POST" && path === "/api/ciphers/import") {
      const parsed = JSON.parse(body) as { ciphers?: Array<Record<string, unknown>> };
      for (const c of parsed.ciphers ?? []) save(randomUUID(), c, []);
      res.writeHead(200);
      return res.end();
    }
    const att = /^\/api\/ciphers\/([0-9a-f-]{36})\/attachment\/(v2|[0-9a-f-]{36})$/.exec(path);
    if (att) {
      const c = a.ciphers.get(att[1]);
      if (!c) return send(res, 404, { message: "Resource not found.", object: "error" });
      const list = (c.attachments as Array<Record<string, unknown>> | null) ?? [];
      if (method === "POST" && att[2] === "v2") {
        // bw sends the encrypted file name and file key; the file itself follows in a second request.
        const r = JSON.parse(body) as { fileName: string; key: string; fileSize: number };
        const id = randomUUID();
        list.push({ id, url: `${base}/attachments/${id}`, fileName: r.fileName, key: r.key, size: String(r.fileSize), sizeName: `${r.fileSize} Bytes`, object: "attachment" });
        c.attachments = list;
        c.revisionDate = new Date().toISOString();
        a.revision = Date.now();
        return send(res, 200, { attachmentId: id, url: `${base}/api/ciphers/${att[1]}/attachment/${id}`, fileUploadType: 0, cipherResponse: cipherOut(a, c), cipherMiniResponse: null, object: "attachment-fileUpload" });
      }
      const meta = list.find((x) => x.id === att[2]);
      if (!meta) return send(res, 404, { message: "Attachment not found.", object: "error" });
      if (method === "GET") return send(res, 200, meta);
      if (method === "POST") {
        // multipart/form-data with one part, "data": the encrypted file.
        const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(req.headers["content-type"] ?? "");
        const sep = Buffer.from(`--${boundary?.[1] ?? boundary?.[2] ?? ""}`);
        const start = raw.indexOf(Buffer.from("\r\n\r\n"), raw.indexOf(sep)) + 4;
        const end = raw.indexOf(Buffer.concat([Buffer.from("\r\n"), sep]), start);
        if (!boundary || start < 4 || end < 0) return send(res, 400, { message: "no file in the upload", object: "error" });
        files.set(att[2], raw.subarray(start, end));
        res.writeHead(200);
        return res.end();
      }
    }
    const m = /^\/api\/ciphers\/([0-9a-f-]{36})(\/partial)?$/.exec(path);
    if (m) {
      const existing = a.ciphers.get(m[1]);
      if (!existing) return send(res, 404, { message: "Resource not found.", object: "error" });
      if (method === "GET") return send(res, 200, cipherOut(a, existing));
      if (method === "PUT" && !m[2]) return send(res, 200, save(m[1], JSON.parse(body) as Record<string, unknown>, undefined, existing));
    }
    return send(res, 404, { message: `no such endpoint: ${method} ${path}`, object: "error" });
  };

  const server = createServer({ key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) }, (req, res) => {
    handle(req, res).catch((e: unknown) => send(res, 500, { message: String(e), object: "error" }));
  });
  server.on("secureConnection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  base = `https://127.0.0.1:${port}`;

  return {
    url: `https://127.0.0.1:${port}`,
    caFile: join(dir, "ca.pem"),
    requests,
    register(email, password, opts) {
      const e = email.trim().toLowerCase();
      const iterations = opts?.iterations ?? 5000;
      const masterKey = pbkdf2Sync(Buffer.from(password, "utf8"), Buffer.from(e, "utf8"), iterations, 32, "sha256");
      const passwordHash = pbkdf2Sync(masterKey, Buffer.from(password, "utf8"), 1, 32, "sha256");
      const stretched = Buffer.concat([hkdfExpand(masterKey, "enc"), hkdfExpand(masterKey, "mac")]);
      const userKey = randomBytes(64);
      const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      accounts.set(e, {
        id: randomUUID(),
        email: e,
        name: e.split("@")[0],
        iterations,
        passwordHash,
        key: encType2(stretched, userKey),
        publicKey: b64(publicKey.export({ type: "spki", format: "der" })),
        privateKey: encType2(userKey, privateKey.export({ type: "pkcs8", format: "der" })),
        userKey,
        securityStamp: randomUUID(),
        revision: Date.now(),
        ciphers: new Map(),
        organizations: [],
        tokens: new Set(),
        refreshTokens: new Set(),
      });
    },
    addOrganization(email, name, collection) {
      const a = accounts.get(email.toLowerCase());
      if (!a) throw new Error(`no account ${email}`);
      const orgKey = randomBytes(64);
      const pub = Buffer.from(a.publicKey, "base64");
      const wrapped = publicEncrypt({ key: createPublicKey({ key: pub, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, orgKey);
      const o = { id: randomUUID(), name, key: `4.${b64(wrapped)}`, collectionId: randomUUID(), collectionName: encType2(orgKey, Buffer.from(collection, "utf8")) };
      a.organizations.push(o);
      a.revision = Date.now();
      return { organizationId: o.id, collectionId: o.collectionId };
    },
    fault(f) {
      faults = { kind: f.kind, status: f.kind === "status" ? f.status : undefined, count: f.count ?? Number.MAX_SAFE_INTEGER };
      if (f.count === 0) faults = undefined;
    },
    cipherIds(email) {
      return [...(accounts.get(email.toLowerCase())?.ciphers.keys() ?? [])];
    },
    async close() {
      for (const r of hung.splice(0)) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The real Bitwarden CLI the tests drive (npm @bitwarden/cli, a devDependency). */
export const BW_CLI = resolve(__dirname, "../../../node_modules/.bin/bw");
export const BW_EMAIL = "alice@example.test";
/** The test account's master password (searched for in outputs). */
export const BW_PASSWORD = `master-${randomBytes(8).toString("hex")}`;

/** A server with one account, and the real bw logged in to it (its session key). */
export interface BitwardenLogin {
  srv: BitwardenServer;
  appdata: string;
  session: string;
  env: NodeJS.ProcessEnv;
  /** Run the real bw (serialised: bw keeps its state in one file). */
  bw(args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

/** A server with one account, and a bw logged in to it in a fresh app-data folder. */
export async function bitwardenLoggedIn(): Promise<BitwardenLogin> {
  const srv = await startBitwardenServer();
  srv.register(BW_EMAIL, BW_PASSWORD);
  const appdata = mkdtempSync(join(tmpdir(), "dsops-bw-appdata-"));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: appdata, BITWARDENCLI_APPDATA_DIR: appdata, NODE_EXTRA_CA_CERTS: srv.caFile, BW_NOINTERACTION: "true" };
  let queue: Promise<unknown> = Promise.resolve();
  const bw = (args: string[], input?: string, extra?: NodeJS.ProcessEnv) => {
    const next = queue.then(
      () =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
          const c = spawn(BW_CLI, args, { env: { ...env, ...extra } });
          let stdout = "";
          let stderr = "";
          c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
          c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
          c.on("close", (code) => done({ code, stdout, stderr }));
          c.stdin.end(input ?? "");
        }),
    );
    queue = next;
    return next;
  };
  const cfg = await bw(["config", "server", srv.url]);
  assert.equal(cfg.code, 0, cfg.stderr);
  const login = await bw(["login", BW_EMAIL, "--passwordenv", "BW_TEST_PASSWORD", "--raw"], undefined, { BW_TEST_PASSWORD: BW_PASSWORD });
  assert.equal(login.code, 0, login.stderr);
  const session = login.stdout.trim();
  assert.ok(session.length > 20, "bw login --raw prints the session key");
  return {
    srv,
    appdata,
    session,
    env,
    bw: (args, input, extra) => bw(args, input, { BW_SESSION: session, ...extra }),
    close: async () => {
      await srv.close();
      rmSync(appdata, { recursive: true, force: true });
    },
  };
}
