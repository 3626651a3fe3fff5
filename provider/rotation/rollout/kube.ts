import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { CoreV1Api, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { AuthError, ConfigError, DsopsError, NotFoundError, StoreError, TimeoutError, errorMessage } from "../../core/errors";

/**
 * Pods by label selector through the official Kubernetes client (`@kubernetes/client-node`):
 * rollout discovery `kubernetes` and the health check `kubernetes_pod_ready` share it. The
 * kubeconfig file and context are checked before any call, with errors naming the field.
 */

export interface PodQuery {
  readonly namespace: string;
  readonly label_selector: string;
  /** A kubeconfig file (relative to the config's directory); absent: KUBECONFIG, ~/.kube/config or in-cluster. */
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly timeout_ms: number;
}

/** Load the kubeconfig and pick the context; `where` names the block in messages (`…rollout.discovery`). */
async function kubeClient(q: PodQuery, where: string, configDir: string): Promise<{ api: CoreV1Api; kc: KubeConfig; k8s: typeof import("@kubernetes/client-node") }> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  let source: string;
  if (q.kubeconfig !== undefined) {
    const file = isAbsolute(q.kubeconfig) ? q.kubeconfig : resolve(configDir, q.kubeconfig);
    source = `kubeconfig ${file}`;
    if (!existsSync(file)) throw new ConfigError(`${where}.kubeconfig: ${file} does not exist`);
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new ConfigError(`${where}.kubeconfig: ${file} is not a valid kubeconfig: ${errorMessage(e).split("\n")[0]}`);
    }
  } else {
    source = "the default kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster)";
    if (!process.env.KUBECONFIG && !existsSync(join(homedir(), ".kube", "config")) && !process.env.KUBERNETES_SERVICE_HOST)
      throw new ConfigError(`${where}.kubeconfig: not given, and there is no KUBECONFIG, ~/.kube/config or in-cluster service account to fall back on`, undefined, {
        hint: "set kubeconfig: to the file (relative to dsops.yaml)",
      });
    try {
      kc.loadFromDefault();
    } catch (e) {
      throw new ConfigError(`${where}: no kubeconfig given and ${source} cannot be read: ${errorMessage(e).split("\n")[0]}`, undefined, { hint: "set kubeconfig: to the file" });
    }
  }
  if (q.context !== undefined) {
    if (!kc.getContextObject(q.context))
      throw new ConfigError(`${where}.context: "${q.context}" is not a context of ${source} (contexts: ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`);
    kc.setCurrentContext(q.context);
  }
  const ctxName = kc.getCurrentContext();
  if (!ctxName || !kc.getContextObject(ctxName))
    throw new ConfigError(`${where}${q.context === undefined ? ".kubeconfig" : ".context"}: ${source} has no current context`, undefined, { hint: "name one with context:" });
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new ConfigError(`${where}${q.kubeconfig !== undefined ? ".kubeconfig" : ""}: context "${ctxName}" of ${source} names no cluster with a server`);
  return { api: kc.makeApiClient(k8s.CoreV1Api), kc, k8s };
}

/** The pods matching the query (every phase); errors name `where` and map to auth / not-found / throttled / timeout. */
export async function listPods(q: PodQuery, where: string, configDir: string): Promise<V1Pod[]> {
  const { api, kc, k8s } = await kubeClient(q, where, configDir);
  const server = kc.getCurrentCluster()?.server ?? "";
  const at = `${where}: ${server} (namespace ${q.namespace})`;
  const signal = AbortSignal.timeout(q.timeout_ms);
  const withSignal = {
    middleware: [
      {
        pre: (c: import("@kubernetes/client-node").RequestContext) => {
          c.setSignal(signal);
          return new k8s.Observable(Promise.resolve(c));
        },
        post: (r: import("@kubernetes/client-node").ResponseContext) => new k8s.Observable(Promise.resolve(r)),
      },
    ],
    middlewareMergeStrategy: "append" as const,
  };
  try {
    const list = await api.listNamespacedPod({ namespace: q.namespace, labelSelector: q.label_selector }, withSignal);
    if (!Array.isArray(list?.items)) throw new StoreError(`${at}: the answer is not a pod list`);
    return list.items;
  } catch (e) {
    if (e instanceof DsopsError) throw e;
    if (signal.aborted) throw new TimeoutError(`${at}: no answer within ${q.timeout_ms} ms`);
    if (e instanceof k8s.ApiException) {
      const code = (e as { code: number }).code;
      const reason = statusMessage((e as { body: unknown }).body);
      const why = `HTTP ${code}${reason ? `: ${reason}` : ""}`;
      if (code === 401) throw new AuthError(`${at}: ${why} (the credentials of the kubeconfig's user were refused)`);
      if (code === 403) throw new AuthError(`${at}: ${why} (the kubeconfig's user may not list pods there)`);
      if (code === 404) throw new NotFoundError(`${at}: ${why}`);
      throw new StoreError(`${at}: ${why}`, code === 429 || code >= 500);
    }
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code) throw new StoreError(`${at}: ${cause.code}`, true);
    // The client's own deserialisation failed: the server answered, but not a pod list.
    throw new StoreError(`${at}: the answer is not a pod list (${errorMessage(e).split("\n")[0].slice(0, 160)})`);
  }
}

/** The `message` of a Kubernetes Status body (JSON text or object), if any. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof b === "string") {
    try {
      b = JSON.parse(b);
    } catch {
      return undefined;
    }
  }
  const m = (b as { message?: unknown } | undefined)?.message;
  return typeof m === "string" ? m.slice(0, 200) : undefined;
}

/** Running and not being deleted. */
export const isRunning = (p: V1Pod): boolean => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp;

/** The pod's Ready condition is True. */
export const isReady = (p: V1Pod): boolean => (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** Why a pod is not ready (phase, Ready condition and its reason). */
export function notReadyReason(p: V1Pod): string {
  const ready = (p.status?.conditions ?? []).find((c) => c.type === "Ready");
  const parts = [`phase ${p.status?.phase ?? "unknown"}`, ready ? `Ready=${ready.status}${ready.reason ? ` (${ready.reason})` : ""}` : "no Ready condition"];
  if (p.metadata?.deletionTimestamp) parts.push("being deleted");
  return parts.join(", ");
}
