import { DsopsError } from "../../core/errors";
import { TargetError, scrubError } from "./errors";
import type { AdminSetting } from "./settings";
import type { TargetContext } from "./types";

/**
 * What the targets that log in as an administrator share (postgresql, mysql, redis): the admin
 * credential, the one admin connection they keep, and telling network failures (worth trying
 * again, the connection replaced) from refusals.
 */

/** A user name and password, the admin credential's JSON value `{"username", "password"}`. */
export interface Login {
  readonly username: string;
  readonly password: string;
}

/**
 * Resolve the admin credential of service `service`: a reference to JSON {"username",
 * "password"}, or {username, password} where the password (and a username `store://…`) is a
 * reference to the value itself.
 */
export async function adminLogin(ctx: TargetContext, service: string, admin: AdminSetting): Promise<Login> {
  if (typeof admin !== "string") {
    const username = admin.username.startsWith("store://") ? (await ctx.resolveRef(admin.username)).reveal() : admin.username;
    const password = (await ctx.resolveRef(admin.password)).reveal();
    if (!username) throw new DsopsError(`service "${service}": the admin user name (${admin.username}) is empty`);
    return { username, password };
  }
  const ref = admin;
  const raw = await ctx.resolveRef(ref);
  let cred: { username?: unknown; password?: unknown };
  try {
    cred = JSON.parse(raw.reveal()) as typeof cred;
  } catch {
    throw new DsopsError(`service "${service}": the admin credential (${ref}) is not JSON {"username", "password"}`);
  }
  if (typeof cred.username !== "string" || typeof cred.password !== "string")
    throw new DsopsError(`service "${service}": the admin credential (${ref}) needs string fields "username" and "password"`);
  return { username: cred.username, password: cred.password };
}

/** The error of a refused or failed admin login, without the password; retryable when the network failed. */
export function adminLoginError(service: string, login: Login, e: unknown, network: boolean): TargetError {
  return new TargetError(`service "${service}": admin login as "${login.username}" failed: ${scrubError(e, [login.password])}`, network);
}

/** Error codes of Node's sockets and resolver that mean the network failed, not the server refused. */
const NETWORK_CODES = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"];

/** What a client library adds to the socket errors: its own codes, error names and message words. */
export interface NetworkSigns {
  readonly codes?: readonly string[];
  readonly names?: RegExp;
  readonly message: RegExp;
}

/** True for a network failure or timeout (trying again may work; the connection is replaced). */
export function isNetworkError(e: unknown, signs: NetworkSigns): boolean {
  const code = (e as { code?: string } | undefined)?.code ?? "";
  const name = (e as Error | undefined)?.name ?? "";
  return (
    NETWORK_CODES.includes(code) ||
    (signs.codes ?? []).includes(code) ||
    (signs.names !== undefined && signs.names.test(name)) ||
    signs.message.test((e as Error | undefined)?.message ?? "")
  );
}

/**
 * The one admin connection of a target, opened on first use. A failed opening is forgotten
 * (the next use tries again); `drop` forgets a broken connection so the next use opens a new one.
 */
export class AdminConnection<C> {
  private conn?: Promise<C>;

  constructor(
    private readonly open: () => Promise<C>,
    private readonly end: (c: C) => unknown,
  ) {}

  get(): Promise<C> {
    if (!this.conn) {
      const p = this.open();
      this.conn = p;
      p.catch(() => {
        if (this.conn === p) this.conn = undefined;
      });
    }
    return this.conn;
  }

  /** Forget the connection (broken, or closed by the server); it is not ended. */
  drop(): void {
    this.conn = undefined;
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    if (c) await c.then(this.end).catch(() => undefined);
  }
}
