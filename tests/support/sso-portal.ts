import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { serveInChild, startServerProcess } from "./server-process";

export const SSO_ACCOUNT = "123456789012";
export const SSO_ROLE = "Developer";

/**
 * A local server speaking the SSO portal API (GetRoleCredentials: GET /federation/credentials,
 * x-amz-sso_bearer_token) and SSO OIDC CreateToken (POST /token, grant refresh_token) to the
 * real @aws-sdk/client-sso and client-sso-oidc clients: moto has no SSO portal. It checks the
 * bearer token, the account and the role.
 */
export class SsoPortal {
  server!: Server;
  endpoint = "";
  calls = 0;
  validToken = "";
  /** Answer every call with this error instead. */
  fault?: { status: number; type: string };
  /** Everything handed out (searched for in messages). */
  issued: string[] = [];
  /** SSO OIDC: the client registration and the refresh token CreateToken accepts. */
  client = { id: "client-id-1", secret: "" };
  refreshToken = "";
  refreshCalls = 0;
  /** Answer GET /__issued with `issued` (the child-process portal, asked by the test). */
  exposeIssued = false;
  constructor(private readonly clock: () => { now(): number } = () => Date) {}
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (this.exposeIssued && url.pathname === "/__issued") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify(this.issued));
      }
      this.calls++;
      const send = (status: number, body: unknown, type?: string) => {
        res.writeHead(status, { "content-type": "application/json", ...(type ? { "x-amzn-errortype": type } : {}) });
        res.end(JSON.stringify(body));
      };
      if (this.fault) return send(this.fault.status, { message: `injected ${this.fault.type}` }, this.fault.type);
      if (req.method === "POST" && url.pathname === "/token") {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          this.refreshCalls++;
          const r = JSON.parse(body) as { clientId?: string; clientSecret?: string; grantType?: string; refreshToken?: string };
          if (r.clientId !== this.client.id || r.clientSecret !== this.client.secret) return send(401, { error: "invalid_client" }, "InvalidClientException");
          if (r.grantType !== "refresh_token" || !this.refreshToken || r.refreshToken !== this.refreshToken) return send(400, { error: "invalid_grant" }, "InvalidGrantException");
          this.validToken = `aoa${randomBytes(24).toString("hex")}`;
          this.refreshToken = `aor${randomBytes(24).toString("hex")}`;
          this.issued.push(this.validToken, this.refreshToken);
          send(200, { accessToken: this.validToken, expiresIn: 28800, refreshToken: this.refreshToken, tokenType: "Bearer" });
        });
        return;
      }
      if (req.method !== "GET" || url.pathname !== "/federation/credentials") return send(404, { message: "no such operation" }, "ResourceNotFoundException");
      if (req.headers["x-amz-sso_bearer_token"] !== this.validToken) return send(401, { message: "Session token not found or invalid" }, "UnauthorizedException");
      if (url.searchParams.get("account_id") !== SSO_ACCOUNT || url.searchParams.get("role_name") !== SSO_ROLE)
        return send(403, { message: "No access" }, "ForbiddenException");
      const secret = randomBytes(20).toString("base64");
      const token = randomBytes(40).toString("base64");
      this.issued.push(secret, token);
      send(200, {
        roleCredentials: { accessKeyId: `ASIA${randomBytes(8).toString("hex").toUpperCase()}`, secretAccessKey: secret, sessionToken: token, expiration: this.clock().now() + 3600_000 },
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

/** The portal running in a child process, as `startSsoPortalProcess` reports it. */
export interface SsoPortalProcess {
  readonly endpoint: string;
  /** Everything the portal handed out so far (asked of the child over HTTP: GET /__issued). */
  issued(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * The portal in a child process, for tests whose own event loop blocks while a client runs
 * (spawnSync of the Pulumi CLI). It accepts `validToken` as the cached SSO access token.
 */
export async function startSsoPortalProcess(validToken: string): Promise<SsoPortalProcess> {
  const p = await startServerProcess<{ endpoint: string }>(__filename, { DSOPS_SSO_TOKEN: validToken }, "the SSO portal");
  return { ...p, issued: async () => (await (await fetch(`${p.endpoint}/__issued`)).json()) as string[] };
}


if (require.main === module && process.argv[2] === "serve") {
  void (async () => {
    const portal = new SsoPortal();
    portal.validToken = process.env.DSOPS_SSO_TOKEN ?? "";
    portal.exposeIssued = true;
    await portal.start();
    serveInChild({ endpoint: portal.endpoint }, () => portal.close());
  })();
}
