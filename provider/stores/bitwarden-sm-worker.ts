import { parentPort } from "node:worker_threads";

/**
 * The worker thread the `bitwarden-sm` stores run `@bitwarden/sdk-napi` in: one per process,
 * holding one SDK client per store. The SDK is native code whose HTTP calls have no timeout and
 * cannot be cancelled, and a pending call keeps its thread's event loop alive: in this thread,
 * which the main thread does not wait for, a hung call is simply abandoned. (The thread is never
 * terminated while the process runs, and the SDK is never loaded on the main thread: Node aborts
 * when a thread that loaded this native module ends while another one uses it.)
 *
 * Messages in: `{ id, client, op, args }` (`open` makes the client with `[apiUrl, identityUrl]`,
 * `close` forgets it); out: `{ id, data }` or `{ id, error }` (the SDK's message).
 */

/** The part of the SDK this store uses (no compile-time dependency on the optional package). */
interface SdkSecret {
  id: string;
  organizationId: string;
  projectId?: string | null;
  key: string;
  value: string;
  note: string;
  creationDate: string | Date;
  revisionDate: string | Date;
}
interface BitwardenSdkClient {
  auth(): { loginAccessToken(accessToken: string, stateFile?: string): Promise<void> };
  secrets(): {
    get(id: string): Promise<SdkSecret>;
    getByIds(ids: string[]): Promise<{ data: SdkSecret[] }>;
    list(organizationId: string): Promise<{ data: Array<{ id: string; organizationId: string; key: string }> }>;
    create(organizationId: string, key: string, value: string, note: string, projectIds: string[]): Promise<SdkSecret>;
    update(organizationId: string, id: string, key: string, value: string, note: string, projectIds: string[]): Promise<SdkSecret>;
  };
  projects(): { get(id: string): Promise<{ id: string; organizationId: string }> };
}
type Sdk = { BitwardenClient: new (settings: { apiUrl: string; identityUrl: string; userAgent: string; deviceType: string }, logLevel: number) => BitwardenSdkClient };

interface Request {
  readonly id: number;
  readonly client: string;
  readonly op: "open" | "close" | "login" | "get" | "getByIds" | "list" | "create" | "update" | "project";
  readonly args: unknown[];
}

const sdk = require("@bitwarden/sdk-napi") as Sdk;
const clients = new Map<string, BitwardenSdkClient>();

/** Dates as ISO strings: the message crosses threads as a structured clone, kept plain. */
function plain(s: SdkSecret): SdkSecret {
  const iso = (d: string | Date) => (d instanceof Date ? d.toISOString() : String(d));
  return { ...s, creationDate: iso(s.creationDate), revisionDate: iso(s.revisionDate) };
}

async function run(r: Request): Promise<unknown> {
  const a = r.args as string[];
  if (r.op === "open") {
    // LogLevel.Error (4): the SDK logs nothing about calls that succeed.
    clients.set(r.client, new sdk.BitwardenClient({ apiUrl: a[0], identityUrl: a[1], userAgent: "dsops", deviceType: "SDK" }, 4));
    return undefined;
  }
  if (r.op === "close") return void clients.delete(r.client);
  const client = clients.get(r.client);
  if (!client) throw new Error(`no SDK client "${r.client}" in the worker`);
  switch (r.op) {
    case "login":
      return client.auth().loginAccessToken(a[0], a[1] || undefined);
    case "get":
      return plain(await client.secrets().get(a[0]));
    case "getByIds":
      return (await client.secrets().getByIds(r.args[0] as string[])).data.map(plain);
    case "list":
      return (await client.secrets().list(a[0])).data.map((s) => ({ id: s.id, organizationId: s.organizationId, key: s.key }));
    case "create":
      return plain(await client.secrets().create(a[0], a[1], a[2], a[3], r.args[4] as string[]));
    case "update":
      return plain(await client.secrets().update(a[0], a[1], a[2], a[3], a[4], r.args[5] as string[]));
    case "project": {
      const p = await client.projects().get(a[0]);
      return { id: p.id, organizationId: p.organizationId };
    }
  }
}

parentPort?.on("message", (r: Request) => {
  run(r).then(
    (d) => parentPort?.postMessage({ id: r.id, data: d }),
    (e: unknown) => parentPort?.postMessage({ id: r.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
