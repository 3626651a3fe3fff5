import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { NotFoundError, StoreError } from "../core/errors";
import { Secret } from "../core/secret";
import { contentVersion } from "./literal";
import type { StoreSettings } from "./settings";
import type { SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/**
 * dsops's `json` store: the top-level names of a JSON object, from a file (`path`, read at each
 * call so an edit is seen by the next run) or inline (`data`). A value that is not a string is
 * given as its JSON text (read its fields with `#field` or `json_extract`). Read-only.
 */
export class JsonStore implements Store {
  readonly type = "json" as const;
  readonly capabilities: StoreCapabilities = { write: false, versions: false, batch: 0, binary: false };
  private readonly file?: string;

  constructor(readonly name: string, private readonly settings: Extract<StoreSettings, { type: "json" }>, ctx: StoreContext) {
    if (settings.path !== undefined) this.file = resolve(ctx.configDir, settings.path);
  }

  private document(): Record<string, unknown> {
    let text: string | undefined;
    let doc: unknown;
    if (this.file !== undefined) {
      try {
        text = readFileSync(this.file, "utf8");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? "error";
        throw new StoreError(`store "${this.name}": cannot read ${this.file}: ${code === "ENOENT" ? "no such file" : code}`, false, { hint: "secretStores.<name>.path is relative to dsops.yaml's folder" });
      }
    } else if (typeof this.settings.data === "string") text = this.settings.data;
    else doc = this.settings.data;
    if (text !== undefined) {
      try {
        doc = JSON.parse(text);
      } catch (e) {
        // The parser's message quotes the text around the fault: it could hold a value.
        const at = /position (\d+)/.exec((e as Error).message);
        throw new StoreError(`store "${this.name}": ${this.file ?? "data"} is not valid JSON${at ? ` (at character ${at[1]})` : ""}`);
      }
    }
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new StoreError(`store "${this.name}": ${this.file ?? "data"} must hold a JSON object ({"name": "value", …})`);
    return doc as Record<string, unknown>;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const doc = this.document();
    if (!Object.hasOwn(doc, k.key) || doc[k.key] === null || doc[k.key] === undefined) throw new NotFoundError(`store "${this.name}": no key "${k.key}" in ${this.file ?? "data"}`);
    const raw = doc[k.key];
    const v = typeof raw === "string" ? raw : JSON.stringify(raw);
    if (k.version !== undefined && k.version !== contentVersion(v)) throw new NotFoundError(`store "${this.name}": key "${k.key}" has no version "${k.version}" (a json store keeps one)`);
    return { value: new Secret(v), versionId: contentVersion(v) };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const { versionId } = await this.get(k);
    return { versionId };
  }
}
