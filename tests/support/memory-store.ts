import { NotFoundError, StoreError } from "../../provider/core/errors";
import { Secret } from "../../provider/core/secret";
import type { Clock } from "../../provider/core/clock";
import type { SecretVersion, Store, StoreCapabilities, StoreKey, VersionInfo } from "../../provider/stores/types";

/**
 * The reference implementation of the Store interface, in memory, for the resolver's own
 * tests: it records every call and can be told to fail or to answer late, which no real
 * server can be made to do on demand. Store client libraries are tested on real servers.
 */
export class MemoryStore implements Store {
  readonly type = "literal" as const;
  readonly calls: Array<{ method: "get" | "getMany"; keys: string[] }> = [];
  private readonly data = new Map<string, string[]>();
  /** Fail the next N calls with a retryable error. */
  failNext = 0;
  /** Answer only after this many ms of the given clock. */
  delayMs = 0;
  /** Calls in progress now, and the most there ever were. */
  active = 0;
  maxActive = 0;

  constructor(
    readonly name: string,
    readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: false },
    private readonly clock?: Clock,
  ) {}

  set(key: string, value: string): this {
    this.data.set(key, [...(this.data.get(key) ?? []), value]);
    return this;
  }

  private async answer(): Promise<void> {
    this.maxActive = Math.max(this.maxActive, ++this.active);
    try {
      if (this.delayMs && this.clock) await this.clock.sleep(this.delayMs);
    } finally {
      this.active--;
    }
    if (this.failNext > 0) {
      this.failNext--;
      throw new StoreError(`store "${this.name}": throttled`, true);
    }
  }

  private read(k: StoreKey): SecretVersion {
    const versions = this.data.get(k.key);
    if (!versions) throw new NotFoundError(`store "${this.name}": secret "${k.key}" not found`);
    const idx = k.version === undefined ? versions.length - 1 : Number(k.version) - 1;
    if (!(idx >= 0 && idx < versions.length)) throw new NotFoundError(`store "${this.name}": "${k.key}" has no version ${k.version}`);
    return { value: new Secret(versions[idx]), versionId: String(idx + 1) };
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    this.calls.push({ method: "get", keys: [k.key] });
    await this.answer();
    return this.read(k);
  }

  get getMany(): Store["getMany"] {
    if (!this.capabilities.batch) return undefined;
    return async (keys: readonly StoreKey[]) => {
      this.calls.push({ method: "getMany", keys: keys.map((k) => k.key) });
      await this.answer();
      return keys.map((k) => {
        try {
          return this.read(k);
        } catch (e) {
          return e as Error;
        }
      });
    };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    return { versionId: this.read(k).versionId };
  }

  async put(key: string, value: Secret): Promise<VersionInfo> {
    this.set(key, value.reveal());
    return { versionId: String(this.data.get(key)?.length) };
  }
}
