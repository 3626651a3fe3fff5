import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Debian's Chromium, headless, driven over the DevTools protocol with Node's built-in WebSocket
 * (no npm package): open a page, collect its console errors, uncaught exceptions, log errors
 * (a CSP refusal, a failed load) and every request it makes, evaluate script in it, click,
 * take a screenshot. Each browser has a fresh profile folder, removed on close.
 */
export const CHROMIUM = process.env.DSOPS_CHROMIUM ?? "/usr/bin/chromium";

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

export class ChromiumPage {
  /** Console errors, uncaught exceptions and error log entries, in order. */
  readonly errors: string[] = [];
  /** Every URL the page requested. */
  readonly requests: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<{ method: string; resolve: () => void }> = [];

  private constructor(
    private readonly ws: WebSocket,
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    ws.addEventListener("message", (ev) => this.onMessage(String(ev.data)));
  }

  /** Start Chromium and attach to its first page. Rejects (and stops the browser) after `timeoutMs`. */
  static async launch(timeoutMs = 60_000): Promise<ChromiumPage> {
    const profile = mkdtempSync(join(tmpdir(), "dsops-chromium-"));
    const child = spawn(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "--window-size=1400,1000",
        "about:blank",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    try {
      const browserUrl = await new Promise<string>((resolve, reject) => {
        let err = "";
        const timer = setTimeout(() => reject(new Error(`chromium did not start within ${timeoutMs} ms:\n${err}`)), timeoutMs);
        child.stderr?.setEncoding("utf8").on("data", (d: string) => {
          err += d;
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`chromium exited (${code}) before it listened:\n${err}`));
        });
        child.once("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      const http = browserUrl.replace(/^ws:\/\//, "http://").replace(/\/devtools\/browser\/.*$/, "");
      const targets = (await (await fetch(`${http}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
      const page = targets.find((t) => t.type === "page");
      if (!page) throw new Error("chromium has no page target");
      const ws = new WebSocket(page.webSocketDebuggerUrl);
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener("open", () => resolve(), { once: true });
        ws.addEventListener("error", () => reject(new Error("cannot connect to chromium's page")), { once: true });
      });
      const p = new ChromiumPage(ws, child, profile);
      for (const domain of ["Runtime", "Log", "Network", "Page"]) await p.send(`${domain}.enable`);
      return p;
    } catch (e) {
      child.kill("SIGKILL");
      rmSync(profile, { recursive: true, force: true });
      throw e;
    }
  }

  private onMessage(text: string): void {
    const msg = JSON.parse(text) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown> };
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result ?? {});
      return;
    }
    const params = msg.params ?? {};
    if (msg.method === "Runtime.consoleAPICalled" && (params.type === "error" || params.type === "assert"))
      this.errors.push(`console.${params.type}: ${JSON.stringify((params.args as Array<{ value?: unknown; description?: string }>).map((a) => a.value ?? a.description))}`);
    if (msg.method === "Runtime.exceptionThrown") this.errors.push(`exception: ${JSON.stringify((params.exceptionDetails as { exception?: { description?: string }; text?: string }).exception?.description ?? params.exceptionDetails)}`);
    if (msg.method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") this.errors.push(`log: ${entry.text}${entry.url ? ` (${entry.url})` : ""}`);
    }
    if (msg.method === "Network.requestWillBeSent") this.requests.push((params.request as { url: string }).url);
    for (const w of this.waiters.filter((x) => x.method === msg.method)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Load `url` and wait for its load event. */
  async open(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.waiters.push({ method: "Page.loadEventFired", resolve }));
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** The value of a script expression (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })) as { result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } };
    if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** A real mouse click (pressed and released) at the centre of the element `selector` selects. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number } | null>(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null; e.scrollIntoView({block: "center"}); const r = e.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`,
    );
    if (!box) throw new Error(`click: nothing matches ${selector}`);
    for (const type of ["mousePressed", "mouseReleased"]) await this.send("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
  }

  /** A PNG of the whole page. */
  async screenshot(path: string): Promise<void> {
    const m = (await this.send("Page.getLayoutMetrics")) as { cssContentSize: { width: number; height: number } };
    const r = (await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(m.cssContentSize.width), height: Math.ceil(m.cssContentSize.height), scale: 1 },
    })) as { data: string };
    writeFileSync(path, Buffer.from(r.data, "base64"));
  }

  /** Stop the browser and remove its profile (twice is fine). */
  async close(): Promise<void> {
    try {
      this.ws.close();
    } catch {
      /* already closed */
    }
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
      this.child.kill("SIGKILL");
      await exited;
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
