import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { FaultSwitch, listenLoopback, sendJson, type HttpFault } from "./http-fault";

/**
 * A local server speaking the part of Infisical's REST API that `@infisical/sdk` 5 calls for
 * secrets: `POST /api/v1/auth/universal-auth/login` (`{clientId, clientSecret}` → an access
 * token), and the raw-secrets API v3: `GET /api/v3/secrets/raw` (a folder's secrets),
 * `GET|POST|PATCH /api/v3/secrets/raw/<name>` (read, optionally `version=N`; create; update =
 * a new version), with `workspaceId`, `environment`, `secretPath` as query (GET) or body.
 * Access tokens go as `Authorization: Bearer`. Errors are Infisical's
 * `{reqId, statusCode, message, error}`. Values with `${NAME}` are expanded from the same
 * folder when `expandSecretReferences` is true; `viewSecretValue=false` hides values.
 *
 * Faults for attack tests: `fault(...)` makes the next `count` requests (default all) answer a
 * status, hang, or answer a body that is not JSON.
 */
export interface InfisicalIdentity {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Project ids the identity may read and write. */
  readonly projects: readonly string[];
}

export type InfisicalFault = HttpFault;

interface Version {
  readonly value: string;
  readonly version: number;
  readonly at: string;
}

export interface InfisicalServer {
  readonly url: string;
  /** Every request (method, path, query), never a body or header. */
  readonly requests: Array<{ method: string; path: string; query: Record<string, string> }>;
  addIdentity(i: InfisicalIdentity): void;
  /** An access token for `projects`, as a user's or a service's token would be. */
  addAccessToken(token: string, projects: readonly string[]): void;
  /** Forget every access token issued by logins (they answer 401 from now on). */
  revokeLoginTokens(): void;
  /** Write a secret version directly (the server's state). */
  write(project: string, env: string, path: string, name: string, value: string): number;
  /** The current value, or undefined. */
  read(project: string, env: string, path: string, name: string): string | undefined;
  fault(f: InfisicalFault | undefined): void;
  stop(): Promise<void>;
}

export async function startInfisicalServer(opts: { projects: Record<string, string[]> }): Promise<InfisicalServer> {
  /** project → environment → folder path → name → versions */
  const data = new Map<string, Map<string, Map<string, Map<string, Version[]>>>>();
  for (const [p, envs] of Object.entries(opts.projects)) data.set(p, new Map(envs.map((e) => [e, new Map([["/", new Map()]])])));
  const identities = new Map<string, InfisicalIdentity>();
  const tokens = new Map<string, { projects: readonly string[]; fromLogin: boolean }>();
  const requests: InfisicalServer["requests"] = [];
  const faults = new FaultSwitch();
  let clock = Date.parse("2026-01-01T00:00:00Z");

  const send = sendJson;
  const names: Record<number, string> = { 400: "BadRequest", 401: "UnauthorizedError", 403: "PermissionDenied", 404: "NotFound", 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable" };
  const fail = (res: ServerResponse, status: number, message: string) => send(res, status, { reqId: `req-${randomBytes(6).toString("hex")}`, statusCode: status, message, error: names[status] ?? "Error" });

  const folder = (project: string, env: string, path: string, create: boolean) => {
    const e = data.get(project)?.get(env);
    if (!e) return undefined;
    let f = e.get(path);
    if (!f && create) e.set(path, (f = new Map()));
    return f;
  };
  const write = (project: string, env: string, path: string, name: string, value: string): number => {
    const f = folder(project, env, path, true);
    if (!f) throw new Error(`no environment ${project}/${env}`);
    const versions = f.get(name) ?? [];
    const v = { value, version: versions.length + 1, at: new Date((clock += 1000)).toISOString() };
    versions.push(v);
    f.set(name, versions);
    return v.version;
  };
  const shape = (project: string, env: string, path: string, name: string, v: Version, f: Map<string, Version[]>, expand: boolean, view: boolean) => {
    const value = expand ? v.value.replace(/\$\{([A-Za-z0-9_-]+)\}/g, (m, n: string) => f.get(n)?.at(-1)?.value ?? m) : v.value;
    return {
      id: `${project}:${env}:${path}:${name}`,
      _id: `${project}:${env}:${path}:${name}`,
      workspace: project,
      workspaceId: project,
      environment: env,
      secretPath: path,
      secretKey: name,
      secretValue: view ? value : "<hidden-by-infisical>",
      secretValueHidden: !view,
      secretComment: "",
      version: v.version,
      type: "shared",
      isRotatedSecret: false,
      tags: [],
      createdAt: v.at,
      updatedAt: v.at,
    };
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const u = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(u.searchParams.entries());
    requests.push({ method: req.method ?? "GET", path: u.pathname, query });
    if (faults.answer(res, fail, { throttled: "Rate limit exceeded. Please try again later.", other: "Injected failure" })) return;
    let parsed: Record<string, unknown> = {};
    if (body) {
      try {
        parsed = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return fail(res, 400, "Invalid JSON body");
      }
    }
    if (u.pathname === "/api/v1/auth/universal-auth/login" && req.method === "POST") {
      const i = identities.get(String(parsed.clientId ?? ""));
      if (!i || i.clientSecret !== parsed.clientSecret) return fail(res, 401, "Invalid credentials");
      const accessToken = `inf-at-${randomBytes(16).toString("hex")}`;
      tokens.set(accessToken, { projects: i.projects, fromLogin: true });
      return send(res, 200, { accessToken, expiresIn: 7200, accessTokenMaxTTL: 7200, tokenType: "Bearer" });
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const t = bearer ? tokens.get(bearer) : undefined;
    if (!t) return fail(res, 401, "Token missing or invalid");
    const m = /^\/api\/v3\/secrets\/raw(?:\/([^/]+))?$/.exec(u.pathname);
    if (!m) return fail(res, 404, `Route ${req.method}:${u.pathname} not found`);
    const name = m[1] !== undefined ? decodeURIComponent(m[1]) : undefined;
    const arg = (k: string) => (req.method === "GET" ? query[k] : typeof parsed[k] === "string" ? (parsed[k] as string) : undefined);
    const project = arg("workspaceId") ?? "";
    const env = arg("environment") ?? "";
    const path = arg("secretPath") || "/";
    if (!project || !env) return fail(res, 400, "workspaceId and environment are required");
    if (!data.has(project)) return fail(res, 404, `Project with ID '${project}' not found`);
    if (!t.projects.includes(project)) return fail(res, 403, "You are not allowed to access secrets in this project");
    if (!data.get(project)?.has(env)) return fail(res, 404, `Environment with slug '${env}' in project with ID '${project}' not found`);
    const expand = query.expandSecretReferences !== "false";
    const view = query.viewSecretValue !== "false";
    if (req.method === "GET" && name === undefined) {
      const f = folder(project, env, path, false);
      if (!f) return fail(res, 404, `Folder with path '${path}' in environment with slug '${env}' not found`);
      return send(res, 200, { secrets: [...f.entries()].map(([n, vs]) => shape(project, env, path, n, vs[vs.length - 1], f, expand, view)), imports: [] });
    }
    if (name === undefined) return fail(res, 404, `Route ${req.method}:${u.pathname} not found`);
    if (req.method === "GET") {
      const f = folder(project, env, path, false);
      const vs = f?.get(name);
      if (!f || !vs) return fail(res, 404, `Secret with name '${name}' not found`);
      const v = query.version !== undefined ? vs.find((x) => String(x.version) === query.version) : vs[vs.length - 1];
      if (!v) return fail(res, 404, `Secret version ${query.version} of '${name}' not found`);
      return send(res, 200, { secret: shape(project, env, path, name, v, f, expand, view) });
    }
    if (typeof parsed.secretValue !== "string") return fail(res, 400, "secretValue is required");
    if (req.method === "POST") {
      if (folder(project, env, path, false)?.has(name)) return fail(res, 400, "Secret already exist");
      write(project, env, path, name, parsed.secretValue);
    } else if (req.method === "PATCH") {
      if (!folder(project, env, path, false)?.has(name)) return fail(res, 404, `Secret with name '${name}' not found`);
      write(project, env, path, name, parsed.secretValue);
    } else return fail(res, 404, `Route ${req.method}:${u.pathname} not found`);
    const f = folder(project, env, path, false) as Map<string, Version[]>;
    const vs = f.get(name) as Version[];
    return send(res, 200, { secret: shape(project, env, path, name, vs[vs.length - 1], f, false, false) });
  };

  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => handle(req, res, body));
  });
  const { url, stop } = await listenLoopback(server);
  return {
    url,
    requests,
    addIdentity: (i) => void identities.set(i.clientId, i),
    addAccessToken: (token, projects) => void tokens.set(token, { projects, fromLogin: false }),
    revokeLoginTokens: () => {
      for (const [k, v] of tokens) if (v.fromLogin) tokens.delete(k);
    },
    write,
    read: (project, env, path, name) => folder(project, env, path, false)?.get(name)?.at(-1)?.value,
    fault: (f) => faults.set(f),
    stop,
  };
}
