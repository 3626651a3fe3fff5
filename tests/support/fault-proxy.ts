import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { listenLoopback } from "./http-fault";

/**
 * What the proxy does with the requests it receives:
 * - `pass`: forward every request to the upstream;
 * - `status`: answer `status` (429, 500, 503 …) instead of forwarding, to the first `first`
 *   requests (then forward), or to a `fraction` of them spread evenly from the first one on
 *   (request i, from 0, fails when ⌈(i+1)·fraction⌉ > ⌈i·fraction⌉: with 0.3, requests 0, 3, 6,
 *   9 … — below ½ no two failures are adjacent), or, with neither, to every request;
 * - `hang`: read the request and never answer (the connection stays open until the client
 *   gives up or the proxy closes).
 * Nothing is random: a row of a fault table runs the same way every time.
 */
export type Fault =
  | { readonly kind: "pass" }
  | { readonly kind: "status"; readonly status: number; readonly first?: number; readonly fraction?: number }
  | { readonly kind: "hang" };

/** A loopback HTTP proxy in front of a real server, injecting faults on request. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give clients instead of the upstream's. */
  readonly endpoint: string;
  /** Requests received since the last `set` (answered, forwarded or hanging). */
  readonly received: number;
  /** Requests answered with an injected status since the last `set`. */
  readonly injected: number;
  /** Switch to another fault; counters start again at 0. */
  set(fault: Fault): void;
  close(): Promise<void>;
}

const REASONS: Record<number, string> = { 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable" };

/** Start a proxy on 127.0.0.1 and a free port, forwarding to `upstream` (`http://host:port`). */
export async function startFaultProxy(upstream: string, fault: Fault = { kind: "pass" }): Promise<FaultProxy> {
  const up = new URL(upstream);
  let current = fault;
  let received = 0;
  let injected = 0;

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const headers = { ...req.headers, host: up.host };
    const out = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  };

  const fails = (i: number): boolean => {
    if (current.kind !== "status") return false;
    if (current.first !== undefined) return i < current.first;
    if (current.fraction !== undefined) return Math.ceil((i + 1) * current.fraction) > Math.ceil(i * current.fraction);
    return true;
  };

  const server = createServer((req, res) => {
    const i = received++;
    if (current.kind === "hang") {
      req.resume(); // read the request, never answer
      return;
    }
    if (current.kind === "status" && fails(i)) {
      injected++;
      req.resume();
      const body = JSON.stringify({ errors: [`injected fault: HTTP ${current.status}`], message: "injected fault" });
      res.writeHead(current.status, REASONS[current.status] ?? "Fault", { "content-type": "application/json", "content-length": Buffer.byteLength(body), "retry-after": "0" });
      res.end(body);
      return;
    }
    forward(req, res);
  });
  const { url, stop } = await listenLoopback(server);
  return {
    endpoint: url,
    get received() {
      return received;
    },
    get injected() {
      return injected;
    },
    set(f: Fault) {
      current = f;
      received = 0;
      injected = 0;
    },
    close: stop,
  };
}
