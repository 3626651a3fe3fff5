import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { FaultSwitch, listenLoopback, sendJson, type HttpFault } from "./http-fault";

/**
 * A local server speaking the part of Akeyless's V2 API that the `akeyless` SDK calls for
 * secrets (every call a JSON POST with the token in the body): `/auth` (access id + access key →
 * token), `/describe-item` (item type, last_version, item_versions), `/get-secret-value`
 * (`names`, optional `version` → `{name: value}`), `/create-secret`, `/update-secret-val` (a new
 * version), `/get-dynamic-secret-value` (new credentials each call), `/get-rotated-secret-value`
 * (`{value: {...}}`). Errors are `{"error": "..."}` with 401/403/404/400. A token may be limited
 * to items under a path prefix (403 elsewhere).
 *
 * Faults: `fault(...)` makes the next `count` requests answer a status, hang, or a body that is
 * not JSON.
 */
export type AkeylessFault = HttpFault;

interface Item {
  readonly type: "STATIC_SECRET" | "DYNAMIC_SECRET" | "ROTATED_SECRET";
  readonly versions: Array<{ value: string; at: string }>;
}

export interface AkeylessServer {
  readonly url: string;
  /** Every request: path and item name (never a body field holding a value or a credential). */
  readonly requests: Array<{ path: string; name?: string }>;
  addAccessKey(accessId: string, accessKey: string, prefix?: string): void;
  addToken(token: string, prefix?: string): void;
  /** Revoke every token /auth issued. */
  revokeIssuedTokens(): void;
  putStatic(name: string, value: string): number;
  addDynamic(name: string): void;
  addRotated(name: string, username: string, password: string): void;
  current(name: string): string | undefined;
  fault(f: AkeylessFault | undefined): void;
  stop(): Promise<void>;
}

export async function startAkeylessServer(): Promise<AkeylessServer> {
  const items = new Map<string, Item>();
  const keys = new Map<string, { accessKey: string; prefix: string }>();
  const tokens = new Map<string, { prefix: string; issued: boolean }>();
  const requests: AkeylessServer["requests"] = [];
  const faults = new FaultSwitch();
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date((clock += 1000)).toISOString();

  const send = sendJson;
  const fail = (res: ServerResponse, status: number, error: string) => send(res, status, { error });
  const putStatic = (name: string, value: string): number => {
    const it = items.get(name) ?? { type: "STATIC_SECRET" as const, versions: [] };
    it.versions.push({ value, at: now() });
    items.set(name, it);
    return it.versions.length;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    let body: Record<string, unknown>;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return fail(res, 400, "failed to parse request body");
    }
    const name = typeof body.name === "string" ? body.name : typeof body.names === "string" ? body.names : Array.isArray(body.names) ? body.names.join(",") : undefined;
    requests.push({ path, ...(name !== undefined ? { name } : {}) });
    if (faults.answer(res, fail, { throttled: "rate limit exceeded", other: "injected failure" })) return;
    if (req.method !== "POST") return fail(res, 405, "method not allowed");
    if (path === "/auth") {
      const k = keys.get(String(body["access-id"] ?? ""));
      if (body["access-type"] !== "access_key" || !k || k.accessKey !== body["access-key"]) return fail(res, 401, "Unauthorized: access denied: invalid access id or access key");
      const token = `t-${randomBytes(16).toString("hex")}`;
      tokens.set(token, { prefix: k.prefix, issued: true });
      return send(res, 200, { token, expiration: new Date(clock + 3600_000).toISOString(), creds: {} });
    }
    const t = tokens.get(String(body.token ?? ""));
    if (!t) return fail(res, 401, "Unauthorized: the token is invalid or expired");
    const names = Array.isArray(body.names) ? (body.names as unknown[]).map(String) : typeof body.names === "string" ? [body.names] : typeof body.name === "string" ? [body.name] : [];
    if (names.length === 0) return fail(res, 400, "missing item name");
    for (const n of names) if (!n.startsWith(t.prefix)) return fail(res, 403, `access denied to item ${n}`);
    const it = items.get(names[0]);
    switch (path) {
      case "/describe-item": {
        if (!it) return fail(res, 404, `failed to describe item: Item ${names[0]} not found`);
        return send(res, 200, {
          item_name: names[0],
          item_type: it.type,
          last_version: it.versions.length,
          modification_date: it.versions.at(-1)?.at,
          item_versions: it.versions.map((v, i) => ({ version: i + 1, creation_date: v.at, item_version_state: "Enabled" })),
        });
      }
      case "/get-secret-value": {
        const out: Record<string, string> = {};
        for (const n of names) {
          const item = items.get(n);
          if (!item || item.type !== "STATIC_SECRET") return fail(res, 404, `failed to get secret value: Item ${n} not found`);
          const v = body.version !== undefined && body.version !== 0 ? item.versions[Number(body.version) - 1] : item.versions.at(-1);
          if (!v) return fail(res, 404, `failed to get secret value: version ${String(body.version)} of ${n} not found`);
          out[n] = v.value;
        }
        return send(res, 200, out);
      }
      case "/create-secret":
        if (it) return fail(res, 400, `failed to create item: item ${names[0]} already exists`);
        if (typeof body.value !== "string") return fail(res, 400, "missing value");
        putStatic(names[0], body.value);
        return send(res, 200, { name: names[0] });
      case "/update-secret-val":
        if (!it || it.type !== "STATIC_SECRET") return fail(res, 404, `failed to update item: Item ${names[0]} not found`);
        if (typeof body.value !== "string") return fail(res, 400, "missing value");
        putStatic(names[0], body.value);
        return send(res, 200, { name: names[0] });
      case "/get-dynamic-secret-value":
        if (!it || it.type !== "DYNAMIC_SECRET") return fail(res, 404, `dynamic secret ${names[0]} not found`);
        return send(res, 200, { user: `tmp-${randomBytes(4).toString("hex")}`, password: randomBytes(12).toString("hex"), ttl_in_minutes: "60", id: randomBytes(4).toString("hex") });
      case "/get-rotated-secret-value": {
        if (!it || it.type !== "ROTATED_SECRET") return fail(res, 404, `rotated secret ${names[0]} not found`);
        const v = body.version !== undefined ? it.versions[Number(body.version) - 1] : it.versions.at(-1);
        if (!v) return fail(res, 404, `version ${String(body.version)} of ${names[0]} not found`);
        return send(res, 200, { value: JSON.parse(v.value) as unknown });
      }
      default:
        return fail(res, 404, `unknown command ${path}`);
    }
  };

  const server = createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (text += d));
    req.on("end", () => handle(req, res, text));
  });
  const { url, stop } = await listenLoopback(server);
  return {
    url,
    requests,
    addAccessKey: (accessId, accessKey, prefix = "/") => void keys.set(accessId, { accessKey, prefix }),
    addToken: (token, prefix = "/") => void tokens.set(token, { prefix, issued: false }),
    revokeIssuedTokens: () => {
      for (const [k, v] of tokens) if (v.issued) tokens.delete(k);
    },
    putStatic,
    addDynamic: (name) => void items.set(name, { type: "DYNAMIC_SECRET", versions: [{ value: "", at: now() }] }),
    addRotated: (name, username, password) => {
      const it = items.get(name) ?? { type: "ROTATED_SECRET" as const, versions: [] };
      it.versions.push({ value: JSON.stringify({ username, password }), at: now() });
      items.set(name, it);
    },
    current: (name) => items.get(name)?.versions.at(-1)?.value,
    fault: (f) => faults.set(f),
    stop,
  };
}
