import { NotFoundError } from "../core/errors";
import { Secret } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { SecretVersion, Store, StoreCapabilities, StoreKey, VersionInfo } from "./types";

/** dsops's `mock` store answers these two keys unless `values` says otherwise. */
export const mockDefaults: Readonly<Record<string, string>> = { "test-secret": "mock-value", "api-key": "mock-api-key-123" };

/** dsops's `mock` store: fixed values for tests (`values`, over dsops's two defaults); read-only. */
export class MockStore implements Store {
  readonly type = "mock" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false };
  constructor(readonly name: string, private readonly settings: Extract<StoreSettings, { type: "mock" }>) {}

  async get(k: StoreKey): Promise<SecretVersion> {
    const values = this.settings.values ?? {};
    const v = Object.hasOwn(values, k.key) ? values[k.key] : Object.hasOwn(mockDefaults, k.key) ? mockDefaults[k.key] : undefined;
    if (v === undefined) throw new NotFoundError(`store "${this.name}": no mock value "${k.key}"`, { hint: `keys: ${[...new Set([...Object.keys(values), ...Object.keys(mockDefaults)])].join(", ")}` });
    if (k.version !== undefined && k.version !== contentVersion(v)) throw new NotFoundError(`store "${this.name}": key "${k.key}" has no version "${k.version}" (a mock store keeps one)`);
    return { value: new Secret(v), versionId: contentVersion(v) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }
}
