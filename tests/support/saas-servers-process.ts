import { startAkeylessServer } from "./akeyless-server";
import { startDopplerServer, type DopplerToken } from "./doppler-server";
import { startGcpSecretManagerServer } from "./gcp-secretmanager-server";
import { startInfisicalServer, type InfisicalIdentity } from "./infisical-server";
import { serveInChild, startServerProcess } from "./server-process";

/**
 * The local Doppler, Infisical and Akeyless servers and the Secret Manager gRPC server
 * (tests/support/*-server.ts) in one child process, for tests whose own event loop blocks while
 * a client runs (spawnSync of the Pulumi CLI). Seed and change them through the wire (the
 * stores' own clients or the official SDKs), never through the in-process handles.
 */
export interface SaasServersSpec {
  readonly doppler: { projects: Record<string, string[]>; tokens: Record<string, DopplerToken> };
  readonly infisical: { projects: Record<string, string[]>; identities: InfisicalIdentity[] };
  readonly akeyless: { accessKeys: Array<{ accessId: string; accessKey: string; prefix?: string }> };
  readonly gcp: { projects: string[] };
}

export interface SaasServersProcess {
  readonly dopplerUrl: string;
  readonly infisicalUrl: string;
  readonly akeylessUrl: string;
  /** Plain-text gRPC on 127.0.0.1 (the gcp store's `endpoint` + `port` + `insecure`). */
  readonly gcpPort: number;
  stop(): Promise<void>;
}

type Ready = Omit<SaasServersProcess, "stop">;

export async function startSaasServersProcess(spec: SaasServersSpec): Promise<SaasServersProcess> {
  return startServerProcess<Ready>(__filename, { DSOPS_SAAS_SPEC: JSON.stringify(spec) }, "the servers'");
}


if (require.main === module && process.argv[2] === "serve") {
  void (async () => {
    const spec = JSON.parse(process.env.DSOPS_SAAS_SPEC ?? "{}") as SaasServersSpec;
    const doppler = await startDopplerServer(spec.doppler);
    const infisical = await startInfisicalServer({ projects: spec.infisical.projects });
    for (const i of spec.infisical.identities) infisical.addIdentity(i);
    const akeyless = await startAkeylessServer();
    for (const k of spec.akeyless.accessKeys) akeyless.addAccessKey(k.accessId, k.accessKey, k.prefix);
    const gcp = await startGcpSecretManagerServer({ projects: spec.gcp.projects });
    const ready: Ready = { dopplerUrl: doppler.url, infisicalUrl: infisical.url, akeylessUrl: akeyless.url, gcpPort: gcp.port };
    serveInChild(ready, () => Promise.all([doppler.stop(), infisical.stop(), akeyless.stop(), gcp.stop()]));
  })();
}
