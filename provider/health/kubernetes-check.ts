import type { HealthContext } from "../rotation/ports";
import { isReady, listPods, notReadyReason } from "../rotation/rollout/kube";
import type { HealthCheckSettings } from "./settings";

/**
 * Health check `kubernetes_pod_ready` (./settings.ts): list the pods by label selector through
 * the official Kubernetes client and look at their Ready condition. Pods being deleted do not
 * count, nor pods that ran to completion (phase Succeeded). Returns why it is unhealthy, or undefined; a failed call throws (runCheck reports it).
 */
export async function runKubernetesPodReady(c: Extract<HealthCheckSettings, { type: "kubernetes_pod_ready" }>, ctx: HealthContext): Promise<string | undefined> {
  const pods = (await listPods(c, "kubernetes_pod_ready", ctx.configDir)).filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded");
  const at = `namespace ${c.namespace}, label_selector "${c.label_selector}"`;
  if (!pods.length) return `${at}: no pod matches`;
  const notReady = pods.filter((p) => !isReady(p));
  const ready = pods.length - notReady.length;
  const detail = notReady.slice(0, 5).map((p) => `${p.metadata?.name ?? "?"} (${notReadyReason(p)})`).join(", ") + (notReady.length > 5 ? `, … ${notReady.length - 5} more` : "");
  if (c.min_ready !== undefined) return ready >= c.min_ready ? undefined : `${at}: ${ready} of ${pods.length} pod(s) ready, at least ${c.min_ready} needed; not ready: ${detail}`;
  return notReady.length ? `${at}: ${notReady.length} of ${pods.length} pod(s) not ready: ${detail}` : undefined;
}
