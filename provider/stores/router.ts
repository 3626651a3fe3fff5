import { DsopsError } from "../core/errors";
import type { Secret } from "../core/secret";
import { hasStaging, type PutOptions, type SecretVersion, type Stage, type Staging, type Store, type StoreCapabilities, type StoreKey, type VersionInfo } from "./types";

/**
 * Shared by the router store types (dsops's "unified" `aws`, `gcp`, `azure`): one store name
 * whose key prefix (`sm:`, `ssm:` …) chooses the service. Two pieces: `splitServicePrefix`
 * reads the prefix, `RouterStore` hands each call to the chosen service's store.
 */

/** A key's service prefix as written (`sm:name`, or `sm://name`), and the key after it. */
export interface ServicePrefix {
  /** The prefix as written, without `:` (`sm`). */
  readonly prefix: string;
  /** The key for that service. */
  readonly key: string;
}

/**
 * The service prefix of `key` when it is one of `prefixes` (`<prefix>:<key>` or
 * `<prefix>://<key>`, case-sensitive as dsops reads them); undefined otherwise.
 */
export function splitServicePrefix(key: string, prefixes: Iterable<string>): ServicePrefix | undefined {
  for (const prefix of prefixes) {
    if (!key.startsWith(`${prefix}:`)) continue;
    const rest = key.slice(prefix.length + 1);
    return { prefix, key: rest.startsWith("//") ? rest.slice(2) : rest };
  }
  return undefined;
}

/** Where a router sends one key: the service's store and the key in its terms. */
export interface Route {
  /** The service's name, for messages (`secretmanager`). */
  readonly service: string;
  readonly store: Store;
  readonly key: string;
}

/**
 * A store that hands every call to the store of the service its key names. `route` throws
 * (a DsopsError naming the store and key) for a service it cannot serve; the calls reject with it. Staging calls are
 * handed on when the chosen store stages; otherwise refused with the service named.
 */
export abstract class RouterStore implements Store, Staging {
  abstract readonly type: Store["type"];
  abstract readonly capabilities: StoreCapabilities;

  constructor(readonly name: string) {}

  /** The service of `key`. */
  protected abstract route(key: string): Route;
  /** Every service store made so far (closed with the router). */
  protected abstract services(): readonly Store[];

  async get(k: StoreKey): Promise<SecretVersion> {
    const r = this.route(k.key);
    return await r.store.get({ ...k, key: r.key });
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const r = this.route(k.key);
    return await r.store.describe({ ...k, key: r.key });
  }

  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const r = this.route(key);
    if (!r.store.put) throw new DsopsError(`store "${this.name}": ${r.service} keys cannot be written ("${key}")`);
    return await r.store.put(r.key, value, options);
  }

  private staging(key: string, op: string): { store: Store & Staging; key: string } {
    const r = this.route(key);
    if (!hasStaging(r.store)) throw new DsopsError(`store "${this.name}": ${r.service} cannot stage a rotation (${op} of "${key}")`);
    return { store: r.store, key: r.key };
  }

  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const r = this.staging(key, "putPending");
    return await r.store.putPending(r.key, value, options);
  }

  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const r = this.staging(key, "promote");
    return await r.store.promote(r.key, versionId);
  }

  async discardPending(key: string, versionId?: string): Promise<void> {
    const r = this.staging(key, "discardPending");
    await r.store.discardPending(r.key, versionId);
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const r = this.staging(key, "stagesOf");
    return await r.store.stagesOf(r.key);
  }

  async close(): Promise<void> {
    await Promise.all(this.services().map((s) => s.close?.()));
  }
}
