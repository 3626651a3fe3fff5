import { createServer, request } from "node:http";
import { httpReady, onFreePort, startServer } from "./server";

/** A moto_server (a local server speaking the AWS wire protocols) started for a test file. */
export interface Moto {
  /** `http://127.0.0.1:<port>`: the endpoint to give AWS clients. */
  readonly endpoint: string;
  /** Everything moto printed so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** Static credentials moto accepts (it does not check them). */
export const motoCredentials = { accessKeyId: "test", secretAccessKey: "test" } as const;

/** Start `moto_server -H 127.0.0.1 -p <free port>`; ready when GET /moto-api/ answers. */
export async function startMoto(): Promise<Moto> {
  const { server, endpoint } = await onFreePort(async (port) => {
    const endpoint = `http://127.0.0.1:${port}`;
    const server = await startServer("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
      port,
      ready: () => httpReady(`${endpoint}/moto-api/`),
      timeoutMs: 60000,
    });
    return { server, endpoint };
  });
  return { endpoint, output: server.output, stop: server.stop };
}

/** An error answer in the AWS JSON protocol (what Secrets Manager and SSM send). */
export interface AwsFault {
  readonly status: number;
  /** The error type (`ThrottlingException`, `AccessDeniedException`, …). */
  readonly type: string;
  readonly message?: string;
}

/**
 * A loopback HTTP proxy in front of a real AWS-protocol server (moto) that records the
 * operation of every request (from its `X-Amz-Target` header, e.g. `BatchGetSecretValue`) and
 * answers chosen operations with an error instead of forwarding them.
 */
export interface AwsProxy {
  readonly endpoint: string;
  /** Operation names of every request seen, in order. */
  readonly calls: string[];
  /** Answer the next `times` requests for `operation` (default: all of them) with `fault`. */
  fail(operation: string, fault: AwsFault, times?: number): void;
  /** Forget recorded calls and pending faults. */
  reset(): void;
  close(): Promise<void>;
}

export async function startAwsProxy(target: string): Promise<AwsProxy> {
  const t = new URL(target);
  const calls: string[] = [];
  const faults = new Map<string, { fault: AwsFault; left: number }>();
  const server = createServer((req, res) => {
    const op = String(req.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
    calls.push(op);
    const f = faults.get(op);
    if (f && f.left > 0) {
      f.left--;
      req.resume();
      const body = JSON.stringify({ __type: f.fault.type, message: f.fault.message ?? f.fault.type });
      res.writeHead(f.fault.status, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": f.fault.type, "x-amzn-requestid": "fault" });
      res.end(body);
      return;
    }
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    fail: (operation, fault, times = Infinity) => void faults.set(operation, { fault, left: times }),
    reset: () => {
      calls.length = 0;
      faults.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
