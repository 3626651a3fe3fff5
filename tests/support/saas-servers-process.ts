import { spawn } from "node:child_process";
import { startAkeylessServer } from "./akeyless-server";
import { startDopplerServer, type DopplerToken } from "./doppler-server";
import { startGcpSecretManagerServer } from "./gcp-secretmanager-server";
import { startInfisicalServer, type InfisicalIdentity } from "./infisical-server";

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
  const child = spawn(process.execPath, [__filename, "serve"], { env: { ...process.env, DSOPS_SAAS_SPEC: JSON.stringify(spec) }, stdio: ["ignore", "pipe", "inherit"] });
  const info = await new Promise<Ready>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Ready);
    });
    child.on("exit", (code) => reject(new Error(`the servers' process exited (${code}) before it was ready`)));
  });
  return {
    ...info,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
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
    process.stdout.write(JSON.stringify(ready) + "\n");
    process.on("SIGTERM", () => void Promise.all([doppler.stop(), infisical.stop(), akeyless.stop(), gcp.stop()]).then(() => process.exit(0)));
  })();
}
