// A local HTTPS server that speaks the Kubernetes TokenReview API (POST /apis/authentication.k8s.io/v1/tokenreviews), for Vault's kubernetes auth.
import { spawnSync } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A service account the server knows, with the JWT that stands for it. */
export interface ServiceAccount {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** An RS256-signed service-account JWT (the legacy secret-based claims). */
  readonly jwt: string;
}

export interface TokenReviewServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** The PEM of the server's self-signed certificate (Vault's kubernetes_ca_cert). */
  readonly caCert: string;
  /** Every TokenReview asked: the token reviewed, the caller's bearer token, and the answer. */
  readonly reviews: Array<{ token: string; bearer: string | undefined; authenticated: boolean }>;
  /** A JWT the server will vouch for. */
  serviceAccount(namespace: string, name: string): ServiceAccount;
  /** A JWT with the same claims as `sa`, that the server does not know (as after the account was deleted). */
  forged(sa: ServiceAccount): string;
  close(): Promise<void>;
}

const b64url = (x: Buffer | string) => Buffer.from(x).toString("base64url");

/**
 * Start the server on a free loopback port with a certificate for 127.0.0.1 (made by the
 * openssl CLI). It answers `authenticated: true` only for JWTs it issued by `serviceAccount`.
 */
export async function startTokenReviewServer(): Promise<TokenReviewServer> {
  const dir = mkdtempSync(join(tmpdir(), "kube-tokenreview-"));
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  const r = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const key = readFileSync(keyPath);
  const caCert = readFileSync(certPath, "utf8");
  rmSync(dir, { recursive: true, force: true });

  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const known = new Map<string, ServiceAccount>();
  const reviews: TokenReviewServer["reviews"] = [];
  const jwtFor = (claims: Record<string, string>, k = signingKey) => {
    const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: "test" }));
    const body = b64url(JSON.stringify(claims));
    return `${head}.${body}.${b64url(sign("sha256", Buffer.from(`${head}.${body}`), k))}`;
  };
  const claimsOf = (namespace: string, name: string, uid: string) => ({
    iss: "kubernetes/serviceaccount",
    "kubernetes.io/serviceaccount/namespace": namespace,
    "kubernetes.io/serviceaccount/secret.name": `${name}-token`,
    "kubernetes.io/serviceaccount/service-account.name": name,
    "kubernetes.io/serviceaccount/service-account.uid": uid,
    sub: `system:serviceaccount:${namespace}:${name}`,
  });

  const server: Server = createServer({ key, cert: caCert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews") {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ kind: "Status", status: "Failure", code: 404 }));
        return;
      }
      let token: string;
      try {
        token = String((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { spec?: { token?: unknown } }).spec?.token ?? "");
      } catch {
        res.writeHead(400).end();
        return;
      }
      const sa = known.get(token);
      const auth = req.headers.authorization;
      reviews.push({ token, bearer: auth?.startsWith("Bearer ") ? auth.slice(7) : undefined, authenticated: !!sa });
      const status = sa
        ? { authenticated: true, user: { username: `system:serviceaccount:${sa.namespace}:${sa.name}`, uid: sa.uid, groups: ["system:serviceaccounts", `system:serviceaccounts:${sa.namespace}`] } }
        : { authenticated: false, error: "invalid bearer token" };
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ kind: "TokenReview", apiVersion: "authentication.k8s.io/v1", spec: { token }, status }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    caCert,
    reviews,
    serviceAccount: (namespace, name) => {
      const uid = randomUUID();
      const sa = { namespace, name, uid, jwt: jwtFor(claimsOf(namespace, name, uid)) };
      known.set(sa.jwt, sa);
      return sa;
    },
    forged: (sa) => jwtFor(claimsOf(sa.namespace, sa.name, sa.uid), createPrivateKey(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
