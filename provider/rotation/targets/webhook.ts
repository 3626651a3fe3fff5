import { createHmac } from "node:crypto";
import * as z from "zod";
import type { Secret } from "../../core/secret";
import { TargetError, VerificationError, parseServiceSettings, scrubError } from "./errors";
import type { Credential, Target, TargetCapability, TargetContext, TargetType, VerifyOptions, ValueRules } from "./types";
import { webhookSettingsSchema, type WebhookSettings } from "./settings";

/** The settings schemas live in ./settings.ts (no client library), so configurations are checked without loading this file. */
export { protocolCapabilities, webhookSettingsSchema, type WebhookSettings } from "./settings";

/**
 * dsops's JSON protocol for external rotators (webhook and script targets), so existing dsops
 * integrations keep working. Request: {action: rotate|verify|rollback|status, service, user,
 * new_secret?, dry_run: false, metadata}. Response: {success, message, new_secret_ref, error,
 * warnings, metadata}. The secret travels only inside the request body (never a URL, header,
 * argument or environment variable), and every message read back is scrubbed of it.
 */
export type ProtocolAction = "rotate" | "verify" | "rollback" | "status";

export interface ProtocolRequest {
  readonly action: ProtocolAction;
  readonly service: string;
  /** The principal (user, key id); absent for `status`. */
  readonly user?: string;
  /** The secret to set (`rotate`, `rollback`) or to check (`verify`). */
  readonly new_secret?: string;
  readonly dry_run: boolean;
  readonly metadata: Record<string, unknown>;
}

export interface ProtocolResponse {
  readonly success: boolean;
  readonly message?: string;
  readonly new_secret_ref?: string;
  readonly error?: string;
  readonly warnings?: string[];
  readonly metadata?: Record<string, unknown>;
}

const responseSchema = z.object({
  success: z.boolean(),
  message: z.string().optional().nullable(),
  new_secret_ref: z.string().optional().nullable(),
  error: z.string().optional().nullable(),
  warnings: z.array(z.string()).optional().nullable(),
  metadata: z.record(z.string(), z.unknown()).optional().nullable(),
});

/** Parse a response body; a body that is not the protocol's JSON is an error naming what came back (scrubbed, shortened). */
export function parseResponse(body: string, service: string, secrets: Array<Secret | string>): ProtocolResponse {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new TargetError(`service "${service}": the answer is not JSON: ${scrubError(body.slice(0, 200), secrets)}`);
  }
  const r = responseSchema.safeParse(raw);
  if (!r.success) throw new TargetError(`service "${service}": the answer is not a dsops protocol response (${r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")})`);
  const d = r.data;
  return {
    success: d.success,
    ...(d.message ? { message: d.message } : {}),
    ...(d.new_secret_ref ? { new_secret_ref: d.new_secret_ref } : {}),
    ...(d.error ? { error: d.error } : {}),
    ...(d.warnings ? { warnings: d.warnings } : {}),
    ...(d.metadata ? { metadata: d.metadata } : {}),
  };
}

/**
 * A target speaking the protocol; subclasses carry the request (HTTP POST, a process's stdin).
 * `setSecret` sends `rotate`, `verify` sends `verify`, `check` sends `status`.
 */
export abstract class ProtocolTarget implements Target {
  abstract readonly type: TargetType;
  readonly capabilities: ReadonlySet<TargetCapability>;
  readonly valueRules: ValueRules = { minLength: 1, maxLength: 4096, forbidden: "\0" };
  /** Warnings and messages of the last answers (scrubbed), for callers that show them. */
  readonly notes: string[] = [];

  constructor(
    readonly name: string,
    caps: readonly ("rotate" | "verify")[],
  ) {
    this.capabilities = new Set<TargetCapability>(caps);
  }

  /** Send one request; return the raw answer body. Errors must be scrubbed of `secrets`. */
  protected abstract send(body: string, action: ProtocolAction, secrets: Array<Secret | string>): Promise<string>;

  async request(action: ProtocolAction, cred?: Credential): Promise<ProtocolResponse> {
    const secrets: Array<Secret | string> = cred ? [cred.secret] : [];
    const req: ProtocolRequest = {
      action,
      service: this.name,
      ...(cred ? { user: cred.principal, new_secret: cred.secret.reveal() } : {}),
      dry_run: false,
      metadata: { source: "dsops", target_type: this.type },
    };
    const body = await this.send(JSON.stringify(req), action, secrets);
    const res = parseResponse(body, this.name, secrets);
    for (const w of res.warnings ?? []) this.notes.push(scrubError(w, secrets));
    if (!res.success) {
      const why = scrubError(res.error ?? res.message ?? "no reason given", secrets);
      if (action === "verify") throw new VerificationError(`service "${this.name}": verify of "${cred?.principal}" refused: ${why}`);
      throw new TargetError(`service "${this.name}": ${action}${cred ? ` of "${cred.principal}"` : ""} refused: ${why}`);
    }
    if (res.message) this.notes.push(scrubError(res.message, secrets));
    return res;
  }

  async setSecret(cred: Credential): Promise<void> {
    if (!this.capabilities.has("rotate")) throw new TargetError(`service "${this.name}": rotate is not among its capabilities`);
    await this.request("rotate", cred);
  }

  async verify(cred: Credential, _options?: VerifyOptions): Promise<void> {
    if (!this.capabilities.has("verify")) throw new TargetError(`service "${this.name}": verify is not among its capabilities`);
    try {
      await this.request("verify", cred);
    } catch (e) {
      if (e instanceof VerificationError) throw e;
      // A transport failure during verification is a failed verification (the engine rolls back).
      throw new VerificationError((e as Error).message);
    }
  }

  async check(): Promise<void> {
    await this.request("status");
  }
}

/** The signature header value of a request body. */
export function webhookSignature(key: string, timestamp: string, body: string): string {
  return "sha256=" + createHmac("sha256", key).update(`${timestamp}.${body}`).digest("hex");
}

/** POSTs protocol requests to a URL; a 2xx answer carries the protocol response. */
export class WebhookTarget extends ProtocolTarget {
  readonly type = "webhook" as const;
  readonly settings: WebhookSettings;

  constructor(
    name: string,
    raw: unknown,
    private readonly ctx: TargetContext,
  ) {
    const settings = parseServiceSettings(webhookSettingsSchema, name, raw);
    super(name, settings.capabilities);
    this.settings = settings;
  }

  protected async send(body: string, action: ProtocolAction, secrets: Array<Secret | string>): Promise<string> {
    const s = this.settings;
    const headers: Record<string, string> = { ...s.headers, "content-type": "application/json", "user-agent": "dsops-rotation", "x-dsops-action": action };
    const all = [...secrets];
    if (s.signing_secret) {
      const key = await this.ctx.resolveRef(s.signing_secret);
      all.push(key);
      const ts = String(Math.floor(this.ctx.clock.now() / 1000));
      headers["x-dsops-timestamp"] = ts;
      headers["x-dsops-signature"] = webhookSignature(key.reveal(), ts, body);
    }
    let res: Response;
    try {
      res = await fetch(s.url, { method: "POST", headers, body, signal: AbortSignal.timeout(s.timeout_ms), redirect: "error" });
    } catch (e) {
      const timedOut = (e as Error)?.name === "TimeoutError" || (e as Error)?.name === "AbortError";
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new TargetError(`service "${this.name}": ${action} request to ${redactUrl(s.url)} ${timedOut ? `timed out after ${s.timeout_ms} ms` : `failed: ${cause ?? scrubError(e, all)}`}`, true);
    }
    const text = await res.text().catch(() => "");
    if (res.status < 200 || res.status > 299) {
      // A protocol answer with an error status still says why.
      let why = `HTTP ${res.status}`;
      try {
        const p = parseResponse(text, this.name, all);
        if (p.error ?? p.message) why += `: ${scrubError(p.error ?? p.message, all)}`;
      } catch {
        /* not a protocol answer */
      }
      throw new TargetError(`service "${this.name}": ${action} request to ${redactUrl(s.url)} failed: ${why}`, res.status >= 500 || res.status === 429);
    }
    return text;
  }
}

/** A URL without its userinfo and query (they may hold tokens). */
function redactUrl(u: string): string {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return "(url)";
  }
}
