import { createHash } from "node:crypto";
import { NotFoundError } from "../core/errors";
import { Secret } from "../core/secret";
import type { StoreSettings } from "./settings";
import type { SecretVersion, Store, StoreCapabilities, StoreKey, VersionInfo } from "./types";

/** Values written in the configuration itself (`values: {version: "1.0.0"}`); not for secrets. */
export class LiteralStore implements Store {
  readonly type = "literal" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false };
  constructor(readonly name: string, private readonly settings: Extract<StoreSettings, { type: "literal" }>) {}

  async get(k: StoreKey): Promise<SecretVersion> {
    const values = this.settings.values ?? {};
    if (!Object.prototype.hasOwnProperty.call(values, k.key)) throw new NotFoundError(`store "${this.name}": no literal value "${k.key}"`);
    const v = values[k.key];
    return { value: new Secret(v), versionId: contentVersion(v) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }
}

/** A version id derived from content, for stores without versions (never reveals the value). */
export function contentVersion(value: string): string {
  return createHash("sha256").update("dsops-version\0").update(value).digest("hex").slice(0, 16);
}
