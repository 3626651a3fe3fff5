import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import nodemailer from "nodemailer";
import type { z } from "zod";
import { DsopsError } from "../core/errors";
import { channelTimeoutMs, emailSettingsSchema } from "./settings";
import type { Notifier, NotifierContext, RotationEvent } from "./types";
import { eventFacts, parseSettings, wants } from "./util";

/** HTML-escaped text (the email bodies). */
export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

/** Subject of one event: `[dsops] <title>: <service> (<env>)`. */
export const emailSubject = (e: RotationEvent): string => `[dsops] ${e.title}: ${e.service} (${e.env})`;

/** Text and HTML bodies of one event. */
export function emailBodies(e: RotationEvent): { text: string; html: string } {
  const facts = eventFacts(e);
  const text = [`${e.title}: ${e.service} (${e.env})`, "", ...facts.map(([k, v]) => `${k}: ${v}`), ...(e.error ? ["", `Error: ${e.error}`] : []), "", `-- dsops, ${e.at}`].join("\n") + "\n";
  const html =
    `<html><body><h2>${esc(e.title)}: ${esc(e.service)} (${esc(e.env)})</h2><table>` +
    facts.map(([k, v]) => `<tr><th align="left">${esc(k)}</th><td>${esc(v)}</td></tr>`).join("") +
    `</table>${e.error ? `<p><b>Error:</b> <code>${esc(e.error)}</code></p>` : ""}<p><small>dsops, ${esc(e.at)}</small></p></body></html>`;
  return { text, html };
}

/** Subject and bodies of a digest of several events. */
export function digestMessage(events: RotationEvent[], mode: string): { subject: string; text: string; html: string } {
  const services = [...new Set(events.map((e) => `${e.service} (${e.env})`))];
  const alarms = events.filter((e) => e.type === "failed" || e.type === "rollback" || e.type === "dead-lettered").length;
  const subject = `[dsops] Rotation digest (${mode}): ${services.length === 1 ? services[0] : `${services.length} services`}, ${events.length} event${events.length === 1 ? "" : "s"}${alarms ? `, ${alarms} failed` : ""}`;
  const text =
    `${events.length} rotation event(s):\n\n` +
    events.map((e) => `- ${e.at} ${e.title}: ${e.service} (${e.env}) ${e.variable}${e.status ? ` [${e.status}]` : ""}${e.newVersionId ? ` version ${e.newVersionId}` : ""}${e.error ? ` error: ${e.error}` : ""}`).join("\n") +
    "\n";
  const html =
    `<html><body><h2>dsops rotation digest (${esc(mode)})</h2><table><tr><th>When</th><th>Event</th><th>Service</th><th>Env</th><th>Variable</th><th>Status</th><th>Error</th></tr>` +
    events.map((e) => `<tr><td>${esc(e.at)}</td><td>${esc(e.title)}</td><td>${esc(e.service)}</td><td>${esc(e.env)}</td><td>${esc(e.variable)}</td><td>${esc(e.status ?? "")}</td><td>${esc(e.error ?? "")}</td></tr>`).join("") +
    `</table></body></html>`;
  return { subject, text, html };
}

/**
 * nodemailer's TLS options of the `smtp:` settings: dsops's `tls` (true: TLS from the first byte;
 * `starttls`: STARTTLS required; false: plaintext, STARTTLS not tried) wins over ours.
 */
export function smtpTls(smtp: { tls?: boolean | "starttls"; secure: boolean; require_tls: boolean }): { secure: boolean; requireTLS: boolean; ignoreTLS: boolean } {
  if (smtp.tls === true) return { secure: true, requireTLS: false, ignoreTLS: false };
  if (smtp.tls === "starttls") return { secure: false, requireTLS: true, ignoreTLS: false };
  if (smtp.tls === false) return { secure: false, requireTLS: false, ignoreTLS: true };
  return { secure: smtp.secure, requireTLS: smtp.require_tls, ignoreTLS: false };
}

export type EmailSettings = z.infer<typeof emailSettingsSchema>;

/**
 * Sends one message over the `smtp:` settings (nodemailer; a transport per message). Used by the
 * email notifier and by `leak report --notify` (provider/notify/incident.ts). The `X-Dsops`
 * header says what the message is about.
 */
export function smtpSender(
  s: EmailSettings,
  ctx: Pick<NotifierContext, "configDir" | "resolveSetting">,
  path: string,
): (subject: string, text: string, html: string, kind: "rotation" | "incident") => Promise<void> {
  const to = Array.isArray(s.to) ? s.to : [s.to];
  const tls = smtpTls(s.smtp);
  const port = s.smtp.port ?? (tls.secure ? 465 : 587);
  const timeoutMs = channelTimeoutMs(s);
  const caPath = s.smtp.ca_file ? (isAbsolute(s.smtp.ca_file) ? s.smtp.ca_file : resolve(ctx.configDir, s.smtp.ca_file)) : undefined;

  async function transport() {
    const password = s.smtp.password !== undefined ? await ctx.resolveSetting(s.smtp.password) : undefined;
    let ca: string | undefined;
    if (caPath) {
      try {
        ca = readFileSync(caPath, "utf8");
      } catch (e) {
        throw new DsopsError(`${path}.smtp.ca_file: cannot read ${caPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    return nodemailer.createTransport({
      host: s.smtp.host,
      port,
      ...tls,
      ...(s.smtp.username ? { auth: { user: s.smtp.username, pass: password ?? "" } } : {}),
      tls: { rejectUnauthorized: s.smtp.tls_verify, ...(ca ? { ca } : {}) },
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  return async function sendMail(subject: string, text: string, html: string, kind: "rotation" | "incident"): Promise<void> {
    const t = await transport();
    try {
      await t.sendMail({ from: s.from, to, subject, text, html, headers: { "X-Dsops": kind } });
    } catch (e) {
      // nodemailer's messages name the server and the SMTP reply; never the password.
      throw new DsopsError(`smtp ${s.smtp.host}:${port}: ${(e as Error).message}`);
    } finally {
      t.close();
    }
  };
}

interface Queue {
  events: RotationEvent[];
}

const PERIOD: Record<string, number> = { hourly: 3600000, daily: 86400000 };

/**
 * Email over SMTP (nodemailer). `batch_mode: hourly|daily` appends each event to a queue file
 * (mode 0600, written atomically) and sends one digest once the hour (day, UTC) the oldest
 * queued event fell in is over: at the next event, or by `dsops notify flush`.
 */
export function createEmailNotifier(raw: unknown, ctx: NotifierContext, path: string): Notifier {
  const s = parseSettings(emailSettingsSchema, raw, path);
  const queuePath = s.queue_path ? (isAbsolute(s.queue_path) ? s.queue_path : resolve(ctx.configDir, s.queue_path)) : join(ctx.configDir, ".dsops", "email-queue.json");

  const sendMail = smtpSender(s, ctx, path);

  const readQueue = (): Queue => {
    try {
      const q = JSON.parse(readFileSync(queuePath, "utf8")) as Queue;
      return Array.isArray(q.events) ? q : { events: [] };
    } catch {
      return { events: [] };
    }
  };
  const writeQueue = (q: Queue) => {
    mkdirSync(dirname(queuePath), { recursive: true, mode: 0o700 });
    const tmp = `${queuePath}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(q), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, queuePath);
  };
  const dueAt = (q: Queue): number | undefined => {
    if (!q.events.length) return undefined;
    const period = PERIOD[s.batch_mode];
    const oldest = Math.min(...q.events.map((e) => Date.parse(e.at)));
    return Math.floor(oldest / period) * period + period;
  };
  let queueLock: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queueLock.then(fn, fn);
    queueLock = p.catch(() => undefined);
    return p;
  };

  async function flush(force = false): Promise<number> {
    return serial(async () => {
      const q = readQueue();
      const due = dueAt(q);
      if (due === undefined || (!force && ctx.clock.now() < due)) return 0;
      const m = digestMessage(q.events, s.batch_mode);
      await sendMail(m.subject, m.text, m.html, "rotation");
      // Events queued while sending stay for the next digest.
      const sent = new Set(q.events.map((e) => JSON.stringify(e)));
      writeQueue({ events: readQueue().events.filter((e) => !sent.has(JSON.stringify(e))) });
      return q.events.length;
    });
  }

  return {
    type: "email",
    name: "email",
    accepts: (e) => s.enabled && wants(s.events, e),
    async send(e) {
      if (s.batch_mode === "immediate") {
        const b = emailBodies(e);
        await sendMail(emailSubject(e), b.text, b.html, "rotation");
        return;
      }
      await serial(async () => {
        const q = readQueue();
        q.events.push(e);
        writeQueue(q);
      });
      await flush(false);
    },
    flush: (force) => (s.batch_mode === "immediate" ? Promise.resolve(0) : flush(force)),
  };
}
