// What the Azure stores (azure.keyvault, azure.identity, the azure router) share: one
// credential from their settings, and the mapping of the SDK's errors to ours.
import { isAbsolute, resolve } from "node:path";
import type { TokenCredential } from "@azure/identity";
import { AuthError, DsopsError, NotFoundError, StoreError, TimeoutError } from "../core/errors";
import { scrub, type Secret } from "../core/secret";
import type { StoreSettings } from "./settings";
import type { StoreContext } from "./types";

type AzureSettings = Extract<StoreSettings, { type: "azure.keyvault" | "azure.identity" | "azure" }>;

/** The credential settings of any Azure store. */
export type AzureCredentialSettings = Pick<
  AzureSettings,
  | "tenant_id"
  | "client_id"
  | "client_secret"
  | "client_certificate_path"
  | "client_certificate_password"
  | "use_managed_identity"
  | "user_assigned_identity_id"
  | "use_workload_identity"
  | "federated_token_file"
  | "use_azure_cli"
  | "authority_host"
  | "disable_instance_discovery"
>;

/** Which way of signing in the settings choose (words for messages and `doctor`). */
export function azureCredentialKind(s: AzureCredentialSettings): string {
  if (s.client_secret !== undefined) return "client secret";
  if (s.client_certificate_path !== undefined) return "client certificate";
  if (s.use_managed_identity) return s.user_assigned_identity_id ? "user-assigned managed identity" : "managed identity";
  if (s.use_workload_identity) return "workload identity";
  if (s.use_azure_cli) return "Azure CLI (az login)";
  return "DefaultAzureCredential";
}

/** The @azure/identity credential the settings name. Loads the SDK. */
export function azureCredential(storeName: string, s: AzureCredentialSettings, ctx: StoreContext): TokenCredential {
  const id = require("@azure/identity") as typeof import("@azure/identity");
  const authorityHost = s.authority_host ?? ctx.env.AZURE_AUTHORITY_HOST;
  const common = { ...(authorityHost ? { authorityHost } : {}), ...(s.disable_instance_discovery ? { disableInstanceDiscovery: true } : {}) };
  const empty = (field: string, v: string | undefined) => {
    if (v === undefined || v === "") throw new DsopsError(`store "${storeName}": ${field} is empty`, { hint: `set ${field} (an unset \${VAR} leaves it empty)` });
    return v;
  };
  if (s.client_secret !== undefined) {
    return new id.ClientSecretCredential(empty("tenant_id", s.tenant_id), empty("client_id", s.client_id), empty("client_secret", s.client_secret), common);
  }
  if (s.client_certificate_path !== undefined) {
    const path = isAbsolute(s.client_certificate_path) ? s.client_certificate_path : resolve(ctx.configDir, s.client_certificate_path);
    return new id.ClientCertificateCredential(
      empty("tenant_id", s.tenant_id),
      empty("client_id", s.client_id),
      { certificatePath: path, ...(s.client_certificate_password !== undefined ? { certificatePassword: s.client_certificate_password } : {}) },
      common,
    );
  }
  if (s.use_managed_identity) {
    return s.user_assigned_identity_id ? new id.ManagedIdentityCredential({ clientId: s.user_assigned_identity_id }) : new id.ManagedIdentityCredential();
  }
  if (s.use_workload_identity) {
    const tokenFilePath = s.federated_token_file ?? ctx.env.AZURE_FEDERATED_TOKEN_FILE;
    const tenantId = s.tenant_id ?? ctx.env.AZURE_TENANT_ID;
    const clientId = s.client_id ?? ctx.env.AZURE_CLIENT_ID;
    if (!tokenFilePath || !tenantId || !clientId) {
      const missing = [!tenantId && "tenant_id (or AZURE_TENANT_ID)", !clientId && "client_id (or AZURE_CLIENT_ID)", !tokenFilePath && "federated_token_file (or AZURE_FEDERATED_TOKEN_FILE)"].filter(Boolean);
      throw new DsopsError(`store "${storeName}": use_workload_identity needs ${missing.join(", ")}`, {
        hint: "on AKS the workload identity webhook sets AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE",
      });
    }
    const file = isAbsolute(tokenFilePath) ? tokenFilePath : resolve(ctx.configDir, tokenFilePath);
    return new id.WorkloadIdentityCredential({ tenantId, clientId, tokenFilePath: file, ...common });
  }
  if (s.use_azure_cli) return new id.AzureCliCredential(s.tenant_id ? { tenantId: s.tenant_id } : {});
  return new id.DefaultAzureCredential({
    ...common,
    ...(s.tenant_id ? { tenantId: s.tenant_id } : {}),
    ...(s.client_id ? { managedIdentityClientId: s.client_id, workloadIdentityClientId: s.client_id } : {}),
  });
}

/** The credential values a message must never carry. */
export function azureSecretsOf(s: AzureCredentialSettings): string[] {
  return [s.client_secret, s.client_certificate_password].filter((v): v is string => typeof v === "string" && v.length > 0);
}

/** The login hint of a refused Azure credential. */
export function azureAuthHint(s: AzureCredentialSettings): string {
  if (s.client_secret !== undefined) return "check tenant_id, client_id and client_secret (az ad sp credential reset issues a new secret), and the identity's access to the vault";
  if (s.client_certificate_path !== undefined) return "check tenant_id, client_id and that the certificate in client_certificate_path is registered for the application";
  if (s.use_managed_identity) return "run where a managed identity is assigned (VM, App Service, Container Apps, AKS), and give it access";
  if (s.use_workload_identity) return "check the federated credential of client_id and the token file (AZURE_FEDERATED_TOKEN_FILE)";
  return "run `az login` (or `dsops login <store>`), or set client_secret / use_managed_identity in the store's settings";
}

interface RestLike {
  name?: string;
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
  response?: { headers?: { get?(n: string): string | undefined } };
}

/**
 * The SDK's error (RestError of the vault, an @azure/identity error, an abort) as ours, naming
 * the store, the key and the cause; never a value or a credential. `what` names the object
 * (`secret "db"`). The SDK's error is not kept as the cause: it holds the request, whose
 * Authorization header is a bearer token.
 */
export function mapAzureError(
  e: unknown,
  store: string,
  op: string,
  what: string,
  creds: AzureCredentialSettings,
  extraSecrets: readonly Secret[] = [],
  timeoutMs?: number,
): Error {
  if (e instanceof DsopsError) return e;
  const err = (e ?? {}) as RestLike;
  const hide = [...azureSecretsOf(creds), ...extraSecrets.map((x) => x.reveal())];
  const clean = (t: string) => scrub(t, hide);
  const raw = err.details?.error?.message ?? err.message ?? String(e);
  const msg = clean(firstLines(raw));
  const prefix = `store "${store}"`;
  const status = err.statusCode;
  const svcCode = err.details?.error?.code ?? err.code;
  if (err.name === "AbortError" || /aborted|operation was aborted/i.test(err.message ?? "")) {
    return new TimeoutError(`${prefix}: ${op} of ${what}: no answer within ${timeoutMs ?? "the"} ms (timeout_ms)`);
  }
  if (err.name === "CredentialUnavailableError" || err.name === "AuthenticationError" || err.name === "AggregateAuthenticationError" || err.name === "AuthenticationRequiredError") {
    return new AuthError(`${prefix}: signing in to Azure with ${azureCredentialKind(creds)} failed (${op} of ${what}): ${msg}`, { hint: azureAuthHint(creds) });
  }
  if (status === 401) return new AuthError(`${prefix}: ${op} of ${what} refused: not authenticated (401${svcCode ? ` ${svcCode}` : ""}): ${msg}`, { hint: azureAuthHint(creds) });
  if (status === 403) {
    if (/disabled/i.test(raw)) return new NotFoundError(`${prefix}: ${what} is disabled (403 ${svcCode ?? "Forbidden"})`, { hint: "enable the version (az keyvault secret set-attributes --enabled true) or reference another one" });
    return new AuthError(`${prefix}: ${op} of ${what} forbidden (403${svcCode ? ` ${svcCode}` : ""}): ${msg}`, {
      hint: "give the identity the role Key Vault Secrets User (reads) or Key Vault Secrets Officer (writes), or an access policy with get/list/set",
    });
  }
  if (status === 404) return new NotFoundError(`${prefix}: ${what} not found (404${svcCode ? ` ${svcCode}` : ""})`);
  if (status === 409 && /deleted but recoverable/i.test(raw)) {
    return new StoreError(`${prefix}: ${op} of ${what}: the name is held by a soft-deleted secret (409 Conflict)`, false, {
      hint: "recover it (az keyvault secret recover) or purge it (az keyvault secret purge), then try again",
    });
  }
  if (status === 429 || status === 503 || status === 502 || status === 504 || status === 500) {
    const after = err.response?.headers?.get?.("retry-after");
    return new StoreError(`${prefix}: ${op} of ${what} failed (${status}${svcCode ? ` ${svcCode}` : ""})${after ? `; the service asks to retry after ${after} s` : ""}: ${msg}`, true);
  }
  if (/challenge resource .* does not match the requested domain/i.test(raw)) {
    return new DsopsError(`${prefix}: ${op} of ${what}: the vault's authentication challenge names another domain than vault_url (${msg})`, {
      hint: "check vault_url; for a vault behind a custom domain or private endpoint name, set disable_challenge_resource_verification: true",
    });
  }
  if (status === undefined) {
    const code = err.code ?? "";
    if (/ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|socket hang up/i.test(`${code} ${raw}`)) {
      return new StoreError(`${prefix}: ${op} of ${what} failed: cannot reach the service (${code || msg})`, true);
    }
    if (e instanceof SyntaxError || /JSON|Unexpected (end|token)|deserializ/i.test(raw)) {
      return new StoreError(`${prefix}: ${op} of ${what}: the service answered with malformed JSON (${msg})`, true);
    }
  }
  return new StoreError(`${prefix}: ${op} of ${what} failed (${status ?? svcCode ?? "error"}): ${msg}`, false);
}

function firstLines(t: string): string {
  const lines = t.split("\n").filter((l) => l.trim() !== "");
  const s = lines.slice(0, 2).join(" ").trim();
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}
