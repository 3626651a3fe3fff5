import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { FaultSwitch, listenLoopback, sendJson, type HttpFault } from "./http-fault";
import { serveInChild, startServerProcess } from "./server-process";

/**
 * A local server speaking the 1Password Connect REST API, the part the official
 * `@1password/connect` client calls: `GET /heartbeat`, `GET /v1/vaults` (`filter=title eq "…"`),
 * `GET /v1/vaults/{id}`, `GET /v1/vaults/{id}/items` (`filter=title eq "…"`: summaries without
 * fields), `GET /v1/vaults/{id}/items/{id}` (the full item: fields, sections, files),
 * `POST /v1/vaults/{id}/items` (create), `PUT /v1/vaults/{id}/items/{id}` (replace; the item's
 * `version` goes up by one), `GET …/items/{id}/files[/{id}[/content]]`. Every `/v1` call needs
 * `Authorization: Bearer <token>` with a known token (else 401). Errors are Connect's
 * `{"status": n, "message": "…"}`. Ids are 26 characters of [a-z0-9], as Connect's.
 *
 * Faults for attack tests: `fault(...)` makes the next `count` `/v1` requests (default all)
 * answer a status (with `Retry-After`), hang, or answer a body that is not JSON.
 */
export interface OpField {
  id?: string;
  type?: string;
  purpose?: string;
  label?: string;
  value?: string;
  section?: { id: string };
}

export interface OpItem {
  id: string;
  title: string;
  vault: { id: string };
  category: string;
  version: number;
  sections?: Array<{ id: string; label?: string }>;
  fields?: OpField[];
  files?: Array<{ id: string; name: string; size: number; content_path: string; section?: { id: string } }>;
  createdAt: string;
  updatedAt: string;
}

export type OpFault = HttpFault;

export interface OpConnectServer {
  /** `http://127.0.0.1:<port>`: the connect_host. */
  readonly url: string;
  /** vault id → its name and items (the server's state). */
  readonly vaults: Map<string, { name: string; items: Map<string, OpItem> }>;
  /** file id → its bytes. */
  readonly files: Map<string, Buffer>;
  /** Every `/v1` request: method and path with query (never a token or body). */
  readonly requests: string[];
  addVault(name: string): string;
  /** Create an item as another Connect client would; returns it (ids filled in). */
  addItem(vaultId: string, item: { title: string; category?: string; sections?: Array<{ id: string; label?: string }>; fields?: OpField[] }): OpItem;
  /** Attach a file (bytes) to an item, in an optional section. */
  addFile(vaultId: string, itemId: string, name: string, bytes: Buffer, sectionId?: string): string;
  fault(f: OpFault | undefined): void;
  stop(): Promise<void>;
}

export const newOpId = (): string => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(26)].map((b) => alphabet[b % alphabet.length]).join("");
};

export async function startOpConnectServer(opts: { tokens: string[] }): Promise<OpConnectServer> {
  const tokens = new Set(opts.tokens);
  const vaults = new Map<string, { name: string; items: Map<string, OpItem> }>();
  const files = new Map<string, Buffer>();
  const requests: string[] = [];
  const faults = new FaultSwitch();
  const now = () => new Date().toISOString();

  const send = sendJson;
  const fail = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>) => send(res, status, { status, message }, headers);

  const normalise = (vaultId: string, input: Partial<OpItem>, id: string, version: number, createdAt: string): OpItem => ({
    id,
    title: String(input.title ?? ""),
    vault: { id: vaultId },
    category: input.category ?? "PASSWORD",
    version,
    sections: (input.sections ?? []).map((s) => ({ id: s.id || newOpId(), ...(s.label !== undefined ? { label: s.label } : {}) })),
    fields: (input.fields ?? []).map((f) => ({ ...f, id: f.id || newOpId(), type: f.type ?? "STRING" })),
    files: input.files ?? [],
    createdAt,
    updatedAt: now(),
  });
  const summary = (i: OpItem) => ({ id: i.id, title: i.title, vault: i.vault, category: i.category, version: i.version, createdAt: i.createdAt, updatedAt: i.updatedAt });
  const titleFilter = (q: URLSearchParams): string | undefined => {
    const f = q.get("filter");
    if (f === null) return undefined;
    const m = /^title eq "(.*)"$/.exec(f);
    return m ? m[1] : "\0no-match";
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/heartbeat") {
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end(".");
      }
      if (!url.pathname.startsWith("/v1/")) return fail(res, 404, "Invalid request path");
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      if (faults.answer(res, fail, { throttled: "Too Many Requests", other: "injected failure" })) return;
      const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
      if (!auth || !tokens.has(auth[1].trim())) return fail(res, 401, "Invalid token signature");
      const p = url.pathname.split("/").slice(2).filter((x) => x !== "").map(decodeURIComponent); // after "/v1"; a trailing "/" is the same path
      let body: Partial<OpItem> = {};
      if (chunks.length) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Partial<OpItem>;
        } catch {
          return fail(res, 400, "Invalid request body");
        }
      }
      if (p[0] !== "vaults") return fail(res, 404, "Invalid request path");
      if (p.length === 1 && req.method === "GET") {
        const t = titleFilter(url.searchParams);
        return send(res, 200, [...vaults].filter(([, v]) => t === undefined || v.name === t).map(([id, v]) => ({ id, name: v.name, items: v.items.size, type: "USER_CREATED" })));
      }
      const vault = vaults.get(p[1]);
      if (!vault) return fail(res, 404, `vault ${p[1]} not found`);
      if (p.length === 2 && req.method === "GET") return send(res, 200, { id: p[1], name: vault.name, items: vault.items.size });
      if (p[2] !== "items") return fail(res, 404, "Invalid request path");
      if (p.length === 3) {
        if (req.method === "GET") {
          const t = titleFilter(url.searchParams);
          return send(res, 200, [...vault.items.values()].filter((i) => t === undefined || i.title === t).map(summary));
        }
        if (req.method === "POST") {
          if (!body.title) return fail(res, 400, "Validation: item title is required");
          const item = normalise(p[1], body, newOpId(), 1, now());
          vault.items.set(item.id, item);
          return send(res, 200, item);
        }
        return fail(res, 405, "method not allowed");
      }
      const item = vault.items.get(p[3]);
      if (!item) return fail(res, 404, `item ${p[3]} not found`);
      if (p.length === 4) {
        if (req.method === "GET") return send(res, 200, item);
        if (req.method === "PUT") {
          if (body.id !== undefined && body.id !== item.id) return fail(res, 400, "item id in the body does not match the path");
          const next = normalise(p[1], { ...body, files: item.files }, item.id, item.version + 1, item.createdAt);
          vault.items.set(item.id, next);
          return send(res, 200, next);
        }
        return fail(res, 405, "method not allowed");
      }
      if (p[4] !== "files" || req.method !== "GET") return fail(res, 404, "Invalid request path");
      if (p.length === 5) return send(res, 200, item.files ?? []);
      const file = (item.files ?? []).find((f) => f.id === p[5]);
      if (!file) return fail(res, 404, `file ${p[5]} not found`);
      if (p.length === 6) return send(res, 200, file);
      if (p[6] === "content") {
        const bytes = files.get(file.id) ?? Buffer.alloc(0);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length });
        return res.end(bytes);
      }
      return fail(res, 404, "Invalid request path");
    });
  });
  const { url, stop } = await listenLoopback(server);

  return {
    url,
    vaults,
    files,
    requests,
    addVault(name) {
      const id = newOpId();
      vaults.set(id, { name, items: new Map() });
      return id;
    },
    addItem(vaultId, input) {
      const v = vaults.get(vaultId);
      if (!v) throw new Error(`no vault ${vaultId}`);
      const item = normalise(vaultId, input, newOpId(), 1, now());
      v.items.set(item.id, item);
      return item;
    },
    addFile(vaultId, itemId, name, bytes, sectionId) {
      const item = vaults.get(vaultId)?.items.get(itemId);
      if (!item) throw new Error(`no item ${itemId}`);
      const id = newOpId();
      files.set(id, bytes);
      item.files = [...(item.files ?? []), { id, name, size: bytes.length, content_path: `/v1/vaults/${vaultId}/items/${itemId}/files/${id}/content`, ...(sectionId ? { section: { id: sectionId } } : {}) }];
      return id;
    },
    fault: (f) => faults.set(f),
    stop,
  };
}

/** The server running in a child process, as `startOpConnectServerProcess` reports it. */
export interface OpConnectServerProcess {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * The same server in a child process, for tests whose own event loop blocks while a client
 * runs (spawnSync of the Pulumi CLI): seed it through the real Connect client.
 */
export async function startOpConnectServerProcess(tokens: string[], vaults: string[]): Promise<OpConnectServerProcess> {
  return startServerProcess<Omit<OpConnectServerProcess, "stop">>(__filename, { DSOPS_OP_TOKENS: JSON.stringify(tokens), DSOPS_OP_VAULTS: JSON.stringify(vaults) }, "the Connect server");
}


if (require.main === module && process.argv[2] === "serve") {
  void (async () => {
    const srv = await startOpConnectServer({ tokens: JSON.parse(process.env.DSOPS_OP_TOKENS ?? "[]") as string[] });
    for (const v of JSON.parse(process.env.DSOPS_OP_VAULTS ?? "[]") as string[]) srv.addVault(v);
    serveInChild({ url: srv.url }, () => srv.stop());
  })();
}
