import { AuthError, ConfigError, DsopsError, StoreError, TimeoutError, errorMessage } from "../../core/errors";
import { isRunning, listPods } from "./kube";
import type { RolloutCloudDiscoverySchemaOut, RolloutKubernetesDiscoverySchemaOut } from "./settings";

/**
 * Rollout discovery `kubernetes` (pods by label selector) and `cloud` (AWS EC2 instances by tag):
 * the raw instances `{name, labels, …settings}` that plan.ts checks like listed ones.
 */

type RawInstance = Record<string, unknown> & { name: string; labels: Record<string, string> };

/** `dsops.io/port: "5432"` → port 5432; other settings stay text. */
function metadataSettings(entries: Record<string, string>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entries)) {
    if (!k.startsWith(prefix) || k.length === prefix.length) continue;
    const key = k.slice(prefix.length);
    out[key] = key === "port" && /^\d+$/.test(v) ? Number(v) : v;
  }
  return out;
}

/** The running pods matching the selector, as instances (name, labels, host = pod IP, port, annotations `dsops.io/<setting>`). */
export async function kubernetesInstances(d: RolloutKubernetesDiscoverySchemaOut, where: string, configDir: string): Promise<RawInstance[]> {
  const pods = await listPods(d, where, configDir);
  const running = pods.filter(isRunning);
  const at = `${where}: namespace ${d.namespace}, label_selector "${d.label_selector}"`;
  if (!running.length)
    throw new DsopsError(`${at}: no running pod (${pods.length ? `${pods.length} pod(s) match, none running` : "no pod matches"}); a rollout needs at least one instance`);
  return running.map((p) => {
    const name = p.metadata?.name ?? "";
    const labels = { ...(p.metadata?.labels ?? {}) };
    const settings: Record<string, unknown> = {};
    if (p.status?.podIP) settings.host = p.status.podIP;
    if (d.port !== undefined) {
      const ports = (p.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
      const hit = typeof d.port === "number" ? ports.find((x) => x.containerPort === d.port) : ports.find((x) => x.name === d.port);
      if (!hit) throw new DsopsError(`${at}: pod "${name}" has no container port ${typeof d.port === "number" ? d.port : `named "${d.port}"`} (port:)`);
      settings.port = hit.containerPort;
    }
    return { name, labels, ...settings, ...metadataSettings(p.metadata?.annotations ?? {}, "dsops.io/") };
  });
}

/** Running EC2 instances matching every tag filter, as instances (id, tags as labels, host = private or public IP, tags `dsops:<setting>`). */
export async function cloudInstances(d: RolloutCloudDiscoverySchemaOut, where: string, env: NodeJS.ProcessEnv): Promise<RawInstance[]> {
  const { EC2Client, DescribeInstancesCommand } = await import("@aws-sdk/client-ec2");
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const region = d.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError(`${where}.region: required (or AWS_REGION)`);
  const client = new EC2Client({
    region,
    maxAttempts: 1,
    ...(d.endpoint ? { endpoint: d.endpoint } : {}),
    ...(d.profile ? { profile: d.profile } : {}),
    requestHandler: { connectionTimeout: d.timeout_ms, requestTimeout: d.timeout_ms, throwOnRequestTimeout: true },
  });
  const filters = [
    { Name: "instance-state-name", Values: ["running"] },
    ...d.filters.map((f) => ({ Name: f.key.startsWith("tag:") ? f.key : `tag:${f.key}`, Values: Array.isArray(f.value) ? f.value : [f.value] })),
  ];
  const shown = d.filters.map((f) => `${f.key}=${Array.isArray(f.value) ? f.value.join("|") : f.value}`).join(", ");
  const at = `${where}: aws ${region}${d.endpoint ? ` (${d.endpoint})` : ""}, filters ${shown}`;
  const out: RawInstance[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new DescribeInstancesCommand({ Filters: filters, ...(token ? { NextToken: token } : {}) }), { abortSignal: AbortSignal.timeout(d.timeout_ms) });
      for (const r of page.Reservations ?? [])
        for (const i of r.Instances ?? []) {
          if (i.State?.Name !== "running" || !i.InstanceId) continue;
          const tags = Object.fromEntries((i.Tags ?? []).filter((t) => t.Key !== undefined && !t.Key.startsWith("dsops:")).map((t) => [t.Key as string, t.Value ?? ""]));
          const host = d.address === "public_ip" ? i.PublicIpAddress : i.PrivateIpAddress;
          const own = metadataSettings(Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])), "dsops:");
          out.push({ name: i.InstanceId, labels: tags, ...(host ? { host } : {}), ...own });
        }
      token = page.NextToken;
    } while (token);
  } catch (e) {
    const name = (e as { name?: string }).name ?? "";
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (name === "TimeoutError" || name === "AbortError" || name === "RequestTimeout") throw new TimeoutError(`${at}: no answer within ${d.timeout_ms} ms`);
    if (status === 401 || status === 403 || /AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch|CredentialsProviderError/.test(name))
      throw new AuthError(`${at}: ${name || `HTTP ${status}`}: ${errorMessage(e).split("\n")[0].slice(0, 200)}`);
    const code = (e as { code?: string }).code;
    if (code && /^E[A-Z]+$/.test(code)) throw new StoreError(`${at}: ${code}`, true);
    if ((status === undefined || status < 300) && /parse|Deserializ|Unexpected token|not valid JSON/i.test(errorMessage(e)))
      throw new StoreError(`${at}: the answer is not a DescribeInstances response (${errorMessage(e).split("\n")[0].slice(0, 120)})`);
    throw new StoreError(`${at}: ${name || "error"}: ${errorMessage(e).split("\n")[0].slice(0, 200)}`, status === 429 || (status ?? 0) >= 500 || /Throttl|RequestLimitExceeded/.test(name));
  } finally {
    client.destroy();
  }
  if (!out.length) throw new DsopsError(`${at}: no running instance matches; a rollout needs at least one instance`);
  return out;
}
