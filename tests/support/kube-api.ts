// A local HTTPS server that speaks the Kubernetes core API the way the official client calls it (GET /api/v1/namespaces/{ns}/pods?labelSelector=…), with bearer-token auth, for rollout discovery and the kubernetes_pod_ready health check.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A pod the server holds (the fields a pod list carries that we use). */
export interface FakePod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Default Running. */
  phase?: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  /** Default true. */
  ready?: boolean;
  podIP?: string;
  /** Container ports (one container). */
  ports?: Array<{ name?: string; containerPort: number }>;
  deleting?: boolean;
}

/** How the server answers the pod list: normally, 403, a body that is not JSON, or never. */
export type KubeMode = "ok" | "forbidden" | "malformed" | "hang" | "throttled";

export interface KubeApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** PEM of the self-signed certificate (a kubeconfig's certificate-authority-data). */
  readonly caCert: string;
  /** Pods by namespace (mutable: tests flip readiness between waves). */
  readonly pods: FakePod[];
  /** Every request: method, path with query, the bearer token sent, the status answered. */
  readonly requests: Array<{ method: string; url: string; bearer: string | undefined; status: number }>;
  mode: KubeMode;
  /** A bearer token the server accepts (several can be issued). */
  token(): string;
  /**
   * A kubeconfig (YAML) with the given contexts, each pointing at this server (or at `server`)
   * with the given token; `current` is its current-context.
   */
  kubeconfig(contexts: Array<{ name: string; token: string; namespace?: string; server?: string }>, current: string): string;
  close(): Promise<void>;
}

/** Parse a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) into a predicate. */
export function labelSelector(sel: string): (labels: Record<string, string>) => boolean {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of sel) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  const tests = parts.map((p): ((l: Record<string, string>) => boolean) => {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const [, k, op, vals] = m;
      const set = vals.split(",").map((v) => v.trim());
      return op === "in" ? (l) => k in l && set.includes(l[k]) : (l) => !(k in l) || !set.includes(l[k]);
    }
    if ((m = /^([^\s!=]+)\s*!=\s*(\S*)$/.exec(p))) {
      const [, k, v] = m;
      return (l) => l[k] !== v;
    }
    if ((m = /^([^\s!=]+)\s*==?\s*(\S*)$/.exec(p))) {
      const [, k, v] = m;
      return (l) => l[k] === v;
    }
    if ((m = /^!([^\s!=]+)$/.exec(p))) {
      const [, k] = m;
      return (l) => !(k in l);
    }
    if ((m = /^([^\s!=]+)$/.exec(p))) {
      const [, k] = m;
      return (l) => k in l;
    }
    throw new Error(`unable to parse requirement: ${p}`);
  });
  return (l) => tests.every((t) => t(l));
}

function podJson(p: FakePod) {
  const ready = p.ready ?? true;
  const phase = p.phase ?? "Running";
  const now = "2026-06-01T00:00:00Z";
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: randomUUID(),
      resourceVersion: "1001",
      creationTimestamp: now,
      labels: p.labels,
      ...(p.annotations ? { annotations: p.annotations } : {}),
      ...(p.deleting ? { deletionTimestamp: now, deletionGracePeriodSeconds: 30 } : {}),
    },
    spec: {
      containers: [{ name: "app", image: "example/app:1", ports: (p.ports ?? []).map((x) => ({ ...x, protocol: "TCP" })), resources: {}, terminationMessagePath: "/dev/termination-log", imagePullPolicy: "IfNotPresent" }],
      restartPolicy: "Always",
      nodeName: "node-1",
    },
    status: {
      phase,
      conditions: [
        { type: "Initialized", status: "True", lastProbeTime: null, lastTransitionTime: now },
        { type: "Ready", status: ready ? "True" : "False", lastProbeTime: null, lastTransitionTime: now, ...(ready ? {} : { reason: "ContainersNotReady", message: "containers with unready status: [app]" }) },
        { type: "ContainersReady", status: ready ? "True" : "False", lastProbeTime: null, lastTransitionTime: now },
        { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: now },
      ],
      hostIP: "10.0.0.1",
      ...(p.podIP ? { podIP: p.podIP, podIPs: [{ ip: p.podIP }] } : {}),
      startTime: now,
      containerStatuses: [{ name: "app", ready, restartCount: 0, image: "example/app:1", imageID: "", started: phase === "Running", state: phase === "Running" ? { running: { startedAt: now } } : { waiting: { reason: "ContainerCreating" } } }],
    },
  };
}

const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });

/** Start the server on a free loopback port with a certificate for 127.0.0.1 (made by the openssl CLI). */
export async function startKubeApi(): Promise<KubeApiServer> {
  const dir = mkdtempSync(join(tmpdir(), "kube-api-"));
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

  const tokens = new Set<string>();
  const sockets = new Set<Socket>();
  const api: KubeApiServer = {
    url: "",
    caCert,
    pods: [],
    requests: [],
    mode: "ok",
    token: () => {
      const t = `kube-token-${randomUUID()}`;
      tokens.add(t);
      return t;
    },
    kubeconfig: (contexts, current) => {
      const ca = Buffer.from(caCert).toString("base64");
      const lines = ["apiVersion: v1", "kind: Config", "clusters:"];
      for (const c of contexts) lines.push(`- name: ${c.name}-cluster`, "  cluster:", `    server: ${c.server ?? api.url}`, `    certificate-authority-data: ${ca}`);
      lines.push("users:");
      for (const c of contexts) lines.push(`- name: ${c.name}-user`, "  user:", `    token: ${c.token}`);
      lines.push("contexts:");
      for (const c of contexts) lines.push(`- name: ${c.name}`, "  context:", `    cluster: ${c.name}-cluster`, `    user: ${c.name}-user`, ...(c.namespace ? [`    namespace: ${c.namespace}`] : []));
      lines.push(`current-context: ${current}`, "preferences: {}", "");
      return lines.join("\n");
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const server: Server = createServer({ key, cert: caCert }, (req, res) => {
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const send = (code: number, body: string, type = "application/json") => {
      api.requests.push({ method: req.method ?? "", url: req.url ?? "", bearer, status: code });
      res.writeHead(code, { "content-type": type }).end(body);
    };
    req.resume();
    if (!bearer || !tokens.has(bearer)) return send(401, status(401, "Unauthorized", "Unauthorized"));
    const u = new URL(req.url ?? "/", "https://127.0.0.1");
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(u.pathname);
    if (req.method !== "GET" || !m) return send(404, status(404, "NotFound", "the server could not find the requested resource"));
    const ns = decodeURIComponent(m[1]);
    if (api.mode === "hang") {
      api.requests.push({ method: req.method, url: req.url ?? "", bearer, status: 0 });
      return; // never answers
    }
    if (api.mode === "forbidden")
      return send(403, status(403, "Forbidden", `pods is forbidden: User "system:serviceaccount:${ns}:dsops" cannot list resource "pods" in API group "" in the namespace "${ns}"`));
    if (api.mode === "throttled") return send(429, status(429, "TooManyRequests", "the server has received too many requests and has asked us to try again later"));
    if (api.mode === "malformed") return send(200, '{"kind":"PodList","items":[{"metadata":', "application/json");
    let match: (l: Record<string, string>) => boolean;
    try {
      match = labelSelector(u.searchParams.get("labelSelector") ?? "");
    } catch (e) {
      return send(400, status(400, "BadRequest", (e as Error).message));
    }
    const items = api.pods.filter((p) => p.namespace === ns && match(p.labels)).map(podJson);
    send(200, JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1001" }, items }));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (api as { url: string }).url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return api;
}
