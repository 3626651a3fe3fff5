import { SMTPServer } from "smtp-server";

/** One message an SMTP server received: envelope and raw RFC 5322 text. */
export interface ReceivedMail {
  readonly from: string;
  readonly to: string[];
  readonly raw: string;
  readonly user?: string;
  /** Whether the session ran over TLS (implicit or after STARTTLS). */
  readonly secure: boolean;
}

/** TLS of the test server: `implicit` TLS from the first byte, or `starttls` offered; key and certificate in PEM. */
export interface SmtpTls {
  readonly mode: "implicit" | "starttls";
  readonly key: string;
  readonly cert: string;
}

/**
 * A real SMTP server (the smtp-server package) on a free loopback port, plaintext, with
 * optional AUTH PLAIN/LOGIN: records every message as it arrived on the wire.
 */
export interface SmtpReceiver {
  readonly port: number;
  readonly mails: ReceivedMail[];
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

export async function startSmtp(auth?: { user: string; password: string }, tls?: SmtpTls): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = new SMTPServer({
    secure: tls?.mode === "implicit",
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    disabledCommands: [...(tls?.mode === "starttls" ? [] : ["STARTTLS"]), ...(auth ? [] : ["AUTH"])],
    authOptional: !auth,
    allowInsecureAuth: true,
    logger: false,
    onAuth(a, _session, cb) {
      if (auth && a.username === auth.user && a.password === auth.password) return cb(null, { user: a.username });
      return cb(new Error("invalid credentials"));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
          ...(typeof session.user === "string" ? { user: session.user } : {}),
          secure: Boolean((session as { secure?: boolean }).secure),
        });
        for (const w of waiters.filter((w) => mails.length >= w.count)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
        cb();
      });
    },
  });
  // A client refusing the certificate closes the TLS handshake: the server reports it, the test checks the client's side.
  server.on("error", () => undefined);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    mails,
    waitFor(count, timeoutMs = 10000) {
      if (mails.length >= count) return Promise.resolve(mails);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`smtp: ${mails.length} of ${count} messages after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(mails)) });
      });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
