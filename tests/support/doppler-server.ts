import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { FaultSwitch, listenLoopback, sendJson, type HttpFault } from "./http-fault";

/**
 * A local server speaking Doppler's REST API (v3), the part dsops and the Doppler CLI use:
 * `GET /v3/me`, `GET /v3/configs/config/secret` (one secret), `GET /v3/configs/config/secrets`
 * (the config's secrets, `secrets=` to pick some), `GET /v3/configs/config/secrets/download`
 * (`format=json`: a flat JSON object), `GET /v3/configs/config/secrets/names`, and
 * `POST /v3/configs/config/secrets` (body `secrets: {NAME: value}` or the CLI's
 * `change_requests`). Tokens go as `Authorization: Bearer <token>` (or HTTP Basic with the token
 * as user name). A service token is bound to one project/config (and may be read-only); a
 * personal token reaches every config and must name one. Errors are Doppler's
 * `{"messages": [...], "success": false}`. Computed values resolve `${NAME}` in the same config.
 *
 * Faults for attack tests: `fault(...)` makes the next `count` requests (default all) answer a
 * status (with `Retry-After`), hang, or answer a body that is not JSON.
 */
export interface DopplerToken {
  /** service: bound to `project`/`config`; personal: any config. */
  readonly kind: "service" | "personal";
  readonly project?: string;
  readonly config?: string;
  /** Service tokens only: `read` refuses writes (403). */
  readonly access?: "read" | "read/write";
}

export type DopplerFault = HttpFault;

export interface DopplerRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
}

export interface DopplerServer {
  /** `http://127.0.0.1:<port>`: the api_url / --api-host. */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order (never with its token or body). */
  readonly requests: DopplerRequest[];
  /** project → config → name → raw value (the server's state, readable and writable by tests). */
  readonly projects: Map<string, Map<string, Map<string, string>>>;
  addToken(token: string, t: DopplerToken): void;
  fault(f: DopplerFault | undefined): void;
  stop(): Promise<void>;
}

const NAME = /^[A-Z_][A-Z0-9_]*$/;

export async function startDopplerServer(opts: { projects?: Record<string, string[]>; tokens?: Record<string, DopplerToken> } = {}): Promise<DopplerServer> {
  const projects = new Map<string, Map<string, Map<string, string>>>();
  for (const [p, configs] of Object.entries(opts.projects ?? {})) projects.set(p, new Map(configs.map((c) => [c, new Map<string, string>()])));
  const tokens = new Map<string, DopplerToken>(Object.entries(opts.tokens ?? {}));
  const requests: DopplerRequest[] = [];
  const faults = new FaultSwitch();

  const send = sendJson;
  const fail = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>) => send(res, status, { messages: [message], success: false }, headers);

  const tokenOf = (req: IncomingMessage): string | undefined => {
    const h = req.headers.authorization ?? "";
    const bearer = /^Bearer\s+(.+)$/i.exec(h);
    if (bearer) return bearer[1].trim();
    const basic = /^Basic\s+(.+)$/i.exec(h);
    if (basic) return Buffer.from(basic[1], "base64").toString("utf8").split(":")[0];
    return undefined;
  };

  /** Computed values: `${NAME}` replaced by the raw value of NAME in the same config. */
  const computed = (secrets: Map<string, string>, raw: string) => raw.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (m, n: string) => secrets.get(n) ?? m);
  const entry = (secrets: Map<string, string>, raw: string) => {
    const c = computed(secrets, raw);
    return { raw, computed: c, note: "", rawVisibility: "masked", computedVisibility: "masked", rawValueType: { type: "string" }, computedValueType: { type: "string" } };
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const u = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(u.searchParams.entries());
    requests.push({ method: req.method ?? "GET", path: u.pathname, query });
    if (faults.answer(res, fail, { throttled: "You have exceeded the rate limit", other: "Injected failure" })) return;
    const token = tokenOf(req);
    const t = token !== undefined ? tokens.get(token) : undefined;
    if (!t) return fail(res, 401, "Invalid Auth token");
    if (u.pathname === "/v3/me" && req.method === "GET") {
      return send(res, 200, { name: "dsops-test", slug: "dsops-test", type: t.kind === "service" ? "service_token" : "personal", workplace: { name: "test", slug: "test" } });
    }
    let parsed: Record<string, unknown> = {};
    if (req.method === "POST") {
      try {
        parsed = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      } catch {
        return fail(res, 400, "Invalid JSON body");
      }
    }
    const pick = (k: string) => (typeof parsed[k] === "string" && parsed[k] !== "" ? (parsed[k] as string) : query[k] || undefined);
    let project = pick("project");
    let config = pick("config");
    if (t.kind === "service") {
      if ((project && project !== t.project) || (config && config !== t.config)) return fail(res, 403, "This token does not have access to the requested config");
      project = t.project;
      config = t.config;
    }
    if (!project) return fail(res, 400, "Missing project");
    if (!config) return fail(res, 400, "Missing config");
    const p = projects.get(project);
    if (!p) return fail(res, 404, "Could not find requested project");
    const secrets = p.get(config);
    if (!secrets) return fail(res, 404, "Could not find requested config");
    const only = query.secrets ? new Set(query.secrets.split(",")) : undefined;
    const listed = () => [...secrets.keys()].filter((n) => !only || only.has(n)).sort();

    if (u.pathname === "/v3/configs/config/secret" && req.method === "GET") {
      const name = query.name ?? "";
      const raw = secrets.get(name);
      if (raw === undefined) return fail(res, 404, "Could not find requested secret");
      return send(res, 200, { success: true, name, value: entry(secrets, raw) });
    }
    if (u.pathname === "/v3/configs/config/secrets" && req.method === "GET") {
      return send(res, 200, { success: true, secrets: Object.fromEntries(listed().map((n) => [n, entry(secrets, secrets.get(n) as string)])) });
    }
    if (u.pathname === "/v3/configs/config/secrets/names" && req.method === "GET") {
      return send(res, 200, { success: true, names: listed() });
    }
    if (u.pathname === "/v3/configs/config/secrets/download" && req.method === "GET") {
      if ((query.format ?? "json") !== "json") return fail(res, 400, "Only format=json is served here");
      return send(res, 200, Object.fromEntries(listed().map((n) => [n, computed(secrets, secrets.get(n) as string)])));
    }
    if (u.pathname === "/v3/configs/config/secrets" && req.method === "POST") {
      if (t.kind === "service" && t.access !== "read/write") return fail(res, 403, "This token does not have write access");
      const changes = new Map<string, string | null>();
      if (parsed.secrets && typeof parsed.secrets === "object") {
        for (const [n, v] of Object.entries(parsed.secrets as Record<string, unknown>)) changes.set(n, v === null ? null : String(v));
      } else if (Array.isArray(parsed.change_requests)) {
        for (const c of parsed.change_requests as Array<{ name?: unknown; value?: unknown; shouldDelete?: unknown }>) {
          changes.set(String(c.name ?? ""), c.shouldDelete === true || c.value === null ? null : String(c.value ?? ""));
        }
      } else return fail(res, 400, "Missing secrets");
      for (const n of changes.keys()) if (!NAME.test(n)) return fail(res, 400, `Invalid secret name: ${n}. Secret names must contain only uppercase letters, numbers, and underscores`);
      for (const [n, v] of changes) {
        if (v === null) secrets.delete(n);
        else secrets.set(n, v);
      }
      return send(res, 200, { success: true, secrets: Object.fromEntries([...secrets.keys()].sort().map((n) => [n, entry(secrets, secrets.get(n) as string)])) });
    }
    return fail(res, 404, "Not found");
  };

  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => handle(req, res, body));
  });
  const { port, url, stop } = await listenLoopback(server);
  return {
    url,
    port,
    requests,
    projects,
    addToken: (token, t) => void tokens.set(token, t),
    fault: (f) => faults.set(f),
    stop,
  };
}
