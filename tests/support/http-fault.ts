import type { Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * What the local service stand-ins (Doppler, Infisical, Akeyless, 1Password Connect) share
 * (and, for its loopback listener, the fault proxy):
 * a JSON reply, injected faults for attack tests, and listening on loopback with a stop that
 * also cuts connections a hang left open.
 */

/** The next `count` requests (default all) answer `status` (with `Retry-After`), hang, or a body that is not JSON. */
export type HttpFault =
  | { readonly kind: "status"; readonly status: number; readonly retryAfter?: number; readonly count?: number }
  | { readonly kind: "hang"; readonly count?: number }
  | { readonly kind: "malformed"; readonly count?: number };

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** The service's own error reply for `status`, with `message` (and extra headers such as Retry-After). */
export type ErrorReply = (res: ServerResponse, status: number, message: string, headers: Record<string, string>) => void;

/** The fault armed by a test, spent one request at a time. */
export class FaultSwitch {
  private armed: (HttpFault & { left: number }) | undefined;

  set(f: HttpFault | undefined): void {
    this.armed = f ? { ...f, left: f.count ?? Number.POSITIVE_INFINITY } : undefined;
  }

  /**
   * Answer this request with the armed fault, if any is left: true when it did (a hang answers
   * nothing and also returns true), so the handler stops there.
   */
  answer(res: ServerResponse, reply: ErrorReply, messages: { throttled: string; other: string }): boolean {
    const f = this.armed;
    if (!f || f.left <= 0) return false;
    f.left -= 1;
    if (f.kind === "hang") return true;
    if (f.kind === "malformed") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("<html>502 Bad Gateway: not json {");
      return true;
    }
    reply(res, f.status, f.status === 429 ? messages.throttled : messages.other, f.retryAfter !== undefined ? { "retry-after": String(f.retryAfter) } : {});
    return true;
  }
}

/** Listen on 127.0.0.1 (a free port); `stop` destroys open connections (hung requests) and closes. */
export async function listenLoopback(server: Server): Promise<{ port: number; url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
