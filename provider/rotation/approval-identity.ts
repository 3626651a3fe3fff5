import { execFileSync } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { userInfo } from "node:os";
import { DsopsError } from "../core/errors";
import type { ApprovalPolicy } from "./settings";

/**
 * Who approves (or requests) a rotation, by the method `rotation.approval.identity` names:
 * - `os` (default): the OS user name running dsops (DSOPS_USER, else USER, as rotation records
 *   name it): convenient, as strong as the machine's accounts;
 * - `git`: `git config user.email` (as git finds it from the current folder);
 * - `token`: the subject of a signed approval token (`--token`, or DSOPS_APPROVAL_TOKEN):
 *   `v1.<subject, base64url>.<expiry, unix seconds>.<HMAC-SHA256 hex>` over
 *   `v1.<subject, base64url>.<expiry>` with the key `rotation.approval.token_key` names
 *   (`store://…` or `env:NAME`). `dsops rotation approval-token --as WHO` mints one.
 * The requester (who runs the pass) is named the same way; with `token`, by the OS user.
 */
export interface ApproverIdentity {
  readonly id: string;
  readonly method: ApprovalPolicy["identity"];
}

/** The OS user as rotation records name it (DSOPS_USER, else USER, else the OS account), without the host. */
export function osIdentity(): string {
  const user = process.env.DSOPS_USER ?? process.env.USER;
  if (user) return user;
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

export function gitIdentity(cwd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const out = execFileSync("git", ["config", "user.email"], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).trim();
    return out || undefined;
  } catch {
    return undefined;
  }
}

/** Who requests: the OS user, or (identity git) the git email when set. */
export function requesterIdentity(policy: ApprovalPolicy, cwd: string): string {
  return (policy.identity === "git" ? gitIdentity(cwd) : undefined) ?? osIdentity();
}

const b64u = (s: string) => Buffer.from(s, "utf8").toString("base64url");
const sign = (key: string, payload: string) => createHmac("sha256", key).update(payload).digest("hex");

/** A token for `subject` valid until `expiresAtMs`. */
export function mintApprovalToken(key: string, subject: string, expiresAtMs: number): string {
  if (!subject.trim()) throw new DsopsError("approval token: the subject (--as) is empty");
  const payload = `v1.${b64u(subject)}.${Math.floor(expiresAtMs / 1000)}`;
  return `${payload}.${sign(key, payload)}`;
}

/** The subject of a valid token; a malformed, forged or expired one is a DsopsError (never echoing the token). */
export function verifyApprovalToken(key: string, token: string, nowMs: number, field: string): string {
  const parts = token.trim().split(".");
  if (parts.length !== 4 || parts[0] !== "v1" || !/^\d+$/.test(parts[2]) || !/^[0-9a-f]{64}$/.test(parts[3]))
    throw new DsopsError(`approval token: malformed (expected v1.<subject>.<expiry>.<signature>)`, { hint: "mint one with dsops rotation approval-token --as WHO" });
  const want = Buffer.from(sign(key, parts.slice(0, 3).join(".")), "hex");
  const got = Buffer.from(parts[3], "hex");
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw new DsopsError(`approval token: the signature does not match the key of ${field}`);
  if (nowMs >= Number(parts[2]) * 1000) throw new DsopsError(`approval token: expired at ${new Date(Number(parts[2]) * 1000).toISOString()}`);
  const subject = Buffer.from(parts[1], "base64url").toString("utf8");
  if (!subject) throw new DsopsError("approval token: empty subject");
  return subject;
}

/**
 * The approver's identity under `policy` (`path`: the policy's `…rotation.approval`, for errors).
 * `resolveKey` reads `token_key` (`store://…`; `env:NAME` is read here).
 */
export async function approverIdentity(
  policy: ApprovalPolicy,
  path: string,
  o: { cwd: string; token?: string; nowMs: number; resolveKey: (ref: string) => Promise<string>; env?: NodeJS.ProcessEnv },
): Promise<ApproverIdentity> {
  const env = o.env ?? process.env;
  if (policy.identity === "os") return { id: osIdentity(), method: "os" };
  if (policy.identity === "git") {
    const id = gitIdentity(o.cwd, env);
    if (!id) throw new DsopsError(`${path}.identity is git, but git config user.email is not set here`, { hint: "git config --global user.email you@example.com" });
    return { id, method: "git" };
  }
  const token = o.token ?? env.DSOPS_APPROVAL_TOKEN;
  if (!token) throw new DsopsError(`${path}.identity is token: give the approval token (--token, or DSOPS_APPROVAL_TOKEN)`, { hint: "dsops rotation approval-token --as WHO mints one" });
  const key = await tokenKey(policy, path, o.resolveKey, env);
  return { id: verifyApprovalToken(key, token, o.nowMs, `${path}.token_key`), method: "token" };
}

/** The HMAC key `token_key` names. */
export async function tokenKey(policy: ApprovalPolicy, path: string, resolveKey: (ref: string) => Promise<string>, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const ref = policy.token_key;
  if (!ref) throw new DsopsError(`${path}.token_key is not set: identity token needs the key that signs approval tokens`);
  const key = ref.startsWith("env:") ? env[ref.slice(4)] : await resolveKey(ref);
  if (!key) throw new DsopsError(`${path}.token_key: ${ref} is empty or unset`);
  return key;
}
