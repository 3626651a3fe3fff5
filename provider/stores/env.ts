import { NotFoundError } from "../core/errors";
import { Secret } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/** Variables of the process environment, optionally under a prefix (`prefix: APP_` reads `APP_<key>`). */
export class EnvStore implements Store {
  readonly type = "env" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false };
  constructor(
    readonly name: string,
    private readonly settings: Extract<StoreSettings, { type: "env" }>,
    private readonly ctx: StoreContext,
  ) {}

  async get(k: StoreKey): Promise<SecretVersion> {
    const varName = `${this.settings.prefix ?? ""}${k.key}`;
    const v = this.ctx.env[varName];
    if (v === undefined) throw new NotFoundError(`store "${this.name}": environment variable ${varName} is not set`);
    return { value: new Secret(v), versionId: contentVersion(v) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }
}
