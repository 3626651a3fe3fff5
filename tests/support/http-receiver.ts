import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";

/** One request a receiver got. */
export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Milliseconds since the receiver started (real time). */
  readonly at: number;
}

/** What to answer the n-th request (0-based) with: a status, a status after a delay (real time), or `hang` (never answer until close). */
export type Behaviour = (n: number, req: { path: string; body: string }) => number | "hang" | { status: number; delayMs: number };

/**
 * A real HTTP server on a free loopback port that records every request (Slack webhooks,
 * PagerDuty's Events API, generic webhooks, health endpoints stand in with it).
 */
export interface HttpReceiver {
  readonly port: number;
  readonly url: string;
  readonly requests: Received[];
  /** Resolves once `count` requests have arrived (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  setBehaviour(b: Behaviour): void;
  /** Answer bodies (health checks): default `ok`. */
  setBody(body: string): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startHttpReceiver(behaviour: Behaviour = () => 200): Promise<HttpReceiver> {
  const requests: Received[] = [];
  const hanging = new Set<ServerResponse>();
  const t0 = performance.now();
  let b = behaviour;
  let answer = "ok";
  let n = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r: Received = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: performance.now() - t0 };
      requests.push(r);
      for (const w of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      const what = b(n++, { path: r.path, body: r.body });
      if (what === "hang") {
        hanging.add(res);
        return;
      }
      if (typeof what === "number") res.writeHead(what, { "content-type": "text/plain" }).end(answer);
      else {
        hanging.add(res);
        setTimeout(() => {
          hanging.delete(res);
          if (!res.destroyed) res.writeHead(what.status, { "content-type": "text/plain" }).end(answer);
        }, what.delayMs).unref();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    waitFor(count, timeoutMs = 10000) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver: ${requests.length} of ${count} requests after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(requests)) });
      });
    },
    setBehaviour: (x) => {
      b = x;
      n = 0;
    },
    setBody: (x) => (answer = x),
    reset: () => {
      requests.length = 0;
      n = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
