import type { TokenCredential } from "@azure/identity";
import type { KeyVaultSecret, SecretClient } from "@azure/keyvault-secrets";
import { DsopsError, NotFoundError } from "../core/errors";
import { Secret } from "../core/secret";
import { azureCredential, azureCredentialKind, mapAzureError, type AzureCredentialSettings } from "./azure-common";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

/** The vault part of the settings (the router passes its `keyvault:` block with its credentials). */
export interface KeyVaultSettings extends AzureCredentialSettings {
  readonly vault_url: string;
  readonly disable_challenge_resource_verification?: boolean;
  readonly timeout_ms?: number;
}

/** The tag on a version that holds its rotation stage. */
export const STAGE_TAG = "dsops-stage";
/** The tag value of a pending version that was discarded (it may still be the latest version). */
const DISCARDED = "discarded";
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-zA-Z]{1,64}$/;

/** A secret and version as the key names them. */
interface KvRef {
  readonly name: string;
  /** A version id, a stage (`current`, `previous`, `pending`), or undefined (dsops's current). */
  readonly version?: string;
}

interface VersionState {
  readonly id: string;
  readonly enabled: boolean;
  readonly tags: Record<string, string>;
  readonly created?: Date;
}

/** A secret's versions and its latest one, what its stages are computed from. */
interface StageState {
  readonly versions: readonly VersionState[];
  /** The latest version (the one a read without a version gets); undefined when it is disabled. */
  readonly latest?: VersionState;
}

/**
 * Azure Key Vault secrets, through the official client (@azure/keyvault-secrets) and a
 * credential of @azure/identity. Keys: `name`, `name/<version>` (dsops's form), `name@<version>`;
 * the reference's `?version=` wins. Values are strings (Key Vault holds text). The client's
 * own retries are off: the engine retries what this store marks retryable.
 *
 * Rotation staging: each version's stage is its tag `dsops-stage` (`current`, `previous`,
 * `pending`; `discarded` for a dropped pending version). A new version is the vault's latest,
 * so a pending version is the latest one during a rotation: dsops reads a bare name as its
 * latest version unless that version carries a stage other than `current`, and then read the
 * version tagged `current`. Readers outside dsops get the latest version, i.e. the pending
 * value during a rotation (and, after a discarded rotation, the discarded value until the next
 * write). Version ids never change from pending to current.
 */
export class AzureKeyVaultStore implements Store, Staging {
  readonly type = "azure.keyvault" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: false, staging: true };
  private readonly client: SecretClient;
  private readonly timeoutMs: number;

  constructor(
    readonly name: string,
    private readonly settings: KeyVaultSettings,
    ctx: StoreContext,
    /** A credential shared with other stores (the azure router's); default: the one the settings name. */
    credential?: TokenCredential,
  ) {
    let url: URL;
    try {
      url = new URL(settings.vault_url);
    } catch {
      throw new DsopsError(`store "${name}": vault_url "${settings.vault_url}" is not a URL`, { hint: "e.g. https://my-vault.vault.azure.net/" });
    }
    if (url.protocol !== "https:") throw new DsopsError(`store "${name}": vault_url must be https://, got "${settings.vault_url}"`, { hint: "e.g. https://my-vault.vault.azure.net/" });
    const kv = require("@azure/keyvault-secrets") as typeof import("@azure/keyvault-secrets");
    this.client = new kv.SecretClient(settings.vault_url, credential ?? azureCredential(name, settings, ctx), {
      retryOptions: { maxRetries: 0 },
      ...(settings.disable_challenge_resource_verification ? { disableChallengeResourceVerification: true } : {}),
    });
    this.timeoutMs = settings.timeout_ms ?? 30000;
  }

  private opts() {
    return { abortSignal: AbortSignal.timeout(this.timeoutMs) };
  }

  private err(e: unknown, op: string, ref: KvRef | undefined, value?: Secret): Error {
    const what = ref ? `secret "${ref.name}"${ref.version ? ` version "${ref.version}"` : ""}` : `vault ${this.settings.vault_url}`;
    return mapAzureError(e, this.name, op, what, this.settings, value ? [value] : [], this.timeoutMs);
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const ref = this.parse(k.key, k.version);
    try {
      const s = await this.fetch(ref);
      if (typeof s.value !== "string") throw new NotFoundError(`store "${this.name}": secret "${ref.name}" has no value`);
      return withTime({ value: new Secret(s.value), versionId: s.properties.version ?? "" }, s.properties.createdOn);
    } catch (e) {
      throw this.err(e, "read", ref);
    }
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const ref = this.parse(k.key, k.version);
    try {
      // Key Vault has no metadata-only read of one version: the value is fetched and dropped.
      const s = await this.fetch(ref);
      return withTime({ versionId: s.properties.version ?? "" }, s.properties.createdOn);
    } catch (e) {
      throw this.err(e, "describe", ref);
    }
  }

  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const ref = this.nameOnly(key, "put");
    let st: StageState | undefined;
    let v;
    try {
      st = await this.stageState(ref.name);
      v = await this.client.setSecret(ref.name, value.reveal(), { ...this.opts(), ...(options?.description ? { tags: { description: options.description } } : {}) });
    } catch (e) {
      throw this.err(e, "write", ref, value);
    }
    const versionId = v.properties.version ?? "";
    // A secret with rotation stages: the version current until now becomes previous.
    if (st && st.versions.some((x) => x.tags[STAGE_TAG] !== undefined)) {
      try {
        const stages = stagesFrom(st);
        const changes: Array<[string, string | undefined]> = [];
        for (const x of st.versions) {
          const t = x.tags[STAGE_TAG];
          if (x.id === stages.current) changes.push([x.id, "previous"]);
          else if (t === "current" || t === "previous") changes.push([x.id, undefined]);
        }
        await this.retag(ref.name, st, changes);
      } catch (e) {
        throw this.err(e, "write", ref);
      }
    }
    return withTime({ versionId }, v.properties.createdOn);
  }

  // ---------------------------------------------------------------------------------------
  // Versions and stages

  /** The version a reference names: a bare name (or "current") is the latest version unless that carries another stage. */
  private async fetch(ref: KvRef): Promise<KeyVaultSecret> {
    const v = ref.version;
    const byId = (id: string) => this.client.getSecret(ref.name, { ...this.opts(), version: id });
    if (v === undefined || v === "current") {
      let latest: KeyVaultSecret | undefined;
      try {
        latest = await this.client.getSecret(ref.name, this.opts());
      } catch (e) {
        if (!isDisabled(e)) throw e;
      }
      const stage = latest?.properties.tags?.[STAGE_TAG];
      if (latest && (stage === undefined || stage === "current")) return latest;
      const st = await this.stageState(ref.name);
      const cur = st ? stagesFrom(st).current : undefined;
      if (cur === undefined) throw new NotFoundError(`store "${this.name}": secret "${ref.name}" has no current version`);
      return byId(cur);
    }
    if (v === "previous" || v === "pending") {
      const st = await this.stageState(ref.name);
      const id = st ? stagesFrom(st)[v] : undefined;
      if (id === undefined) throw new NotFoundError(`store "${this.name}": secret "${ref.name}" has no ${v} version`);
      return byId(id);
    }
    return byId(v);
  }

  /** Every version of the secret with its tags, and the latest one; undefined when the secret does not exist. SDK errors pass. */
  private async stageState(name: string): Promise<StageState | undefined> {
    const versions: VersionState[] = [];
    try {
      for await (const p of this.client.listPropertiesOfSecretVersions(name, this.opts())) {
        if (!p.version) continue;
        versions.push({ id: p.version, enabled: p.enabled !== false, tags: { ...(p.tags ?? {}) }, ...(p.createdOn ? { created: p.createdOn } : {}) });
      }
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
    if (versions.length === 0) return undefined;
    let latest: VersionState | undefined;
    try {
      const s = await this.client.getSecret(name, this.opts());
      latest = versions.find((x) => x.id === s.properties.version);
    } catch (e) {
      if (!isDisabled(e)) throw e;
    }
    return { versions, ...(latest ? { latest } : {}) };
  }

  /** Set (or, with undefined, remove) the stage tag of versions, keeping their other tags. */
  private async retag(name: string, st: StageState, changes: ReadonlyArray<readonly [string, string | undefined]>): Promise<void> {
    for (const [id, stage] of changes) {
      const x = st.versions.find((v) => v.id === id);
      const tags = { ...(x?.tags ?? {}) };
      if ((tags[STAGE_TAG] ?? undefined) === stage) continue;
      if (stage === undefined) delete tags[STAGE_TAG];
      else tags[STAGE_TAG] = stage;
      await this.client.updateSecretProperties(name, id, { ...this.opts(), tags });
    }
  }

  /**
   * A new version tagged `pending` (an older pending version is tagged `discarded`). The
   * current version is tagged `current` first, so dsops readers keep getting it once the new
   * version is the latest.
   */
  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const ref = this.nameOnly(key, "putPending");
    let v;
    try {
      const st = await this.stageState(ref.name);
      if (st) {
        const stages = stagesFrom(st);
        const changes: Array<[string, string | undefined]> = [];
        if (stages.current !== undefined) changes.push([stages.current, "current"]);
        if (stages.pending !== undefined && stages.pending !== stages.current) changes.push([stages.pending, DISCARDED]);
        await this.retag(ref.name, st, changes);
      }
      const tags: Record<string, string> = { [STAGE_TAG]: "pending", ...(options?.description ? { description: options.description } : {}) };
      v = await this.client.setSecret(ref.name, value.reveal(), { ...this.opts(), tags });
    } catch (e) {
      throw this.err(e, "write", ref, value);
    }
    return withTime({ versionId: v.properties.version ?? "" }, v.properties.createdOn);
  }

  /** `versionId` becomes current, the version current until now previous; other stage tags of current/previous go. */
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const ref = this.nameOnly(key, "promote");
    try {
      const st = await this.stageState(ref.name);
      if (!st) throw new NotFoundError(`store "${this.name}": secret "${ref.name}" not found`);
      const target = st.versions.find((x) => x.id === versionId);
      if (!target) throw new NotFoundError(`store "${this.name}": secret "${ref.name}" has no version "${versionId}"`);
      const stages = stagesFrom(st);
      const changes: Array<[string, string | undefined]> = [];
      if (!target.enabled) await this.client.updateSecretProperties(ref.name, versionId, { ...this.opts(), enabled: true, tags: target.tags });
      changes.push([versionId, "current"]);
      if (stages.current !== undefined && stages.current !== versionId) {
        changes.push([stages.current, "previous"]);
        for (const x of st.versions) if (x.tags[STAGE_TAG] === "previous" && x.id !== stages.current && x.id !== versionId) changes.push([x.id, undefined]);
      }
      for (const x of st.versions) if (x.tags[STAGE_TAG] === "current" && x.id !== versionId && x.id !== stages.current) changes.push([x.id, undefined]);
      await this.retag(ref.name, st, changes);
      return withTime({ versionId }, target.created);
    } catch (e) {
      throw this.err(e, "write", { name: ref.name, version: versionId });
    }
  }

  /** The pending version (only `versionId`, when given) is tagged `discarded`. */
  async discardPending(key: string, versionId?: string): Promise<void> {
    const ref = this.nameOnly(key, "discardPending");
    try {
      const st = await this.stageState(ref.name);
      const pending = st ? stagesFrom(st).pending : undefined;
      if (!st || pending === undefined || (versionId !== undefined && versionId !== pending)) return;
      await this.retag(ref.name, st, [[pending, DISCARDED]]);
    } catch (e) {
      throw this.err(e, "write", ref);
    }
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const ref = this.nameOnly(key, "stagesOf");
    try {
      const st = await this.stageState(ref.name);
      return st ? stagesFrom(st) : {};
    } catch (e) {
      throw this.err(e, "describe", ref);
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.listPropertiesOfSecrets(this.opts()).byPage({ maxPageSize: 1 }).next();
    } catch (e) {
      throw this.err(e, "list", undefined);
    }
  }

  /** How the store signs in (for `doctor`). */
  get credentialKind(): string {
    return azureCredentialKind(this.settings);
  }

  private nameOnly(key: string, op: string): KvRef {
    const ref = this.parse(key, undefined);
    if (ref.version !== undefined) throw new DsopsError(`store "${this.name}": ${op} takes a secret name without a version, got "${key}"`);
    return ref;
  }

  /** `name`, `name/<version>`, `name@<version>`; `version` (from the reference) wins. */
  parse(key: string, version: string | undefined): KvRef {
    const m = /^([^/@]+)(?:[/@]([^/@]*))?$/.exec(key);
    const name = m?.[1] ?? key;
    if (!m || !NAME.test(name)) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a Key Vault secret name`, {
        hint: "names are 1-127 letters, digits and '-'; a version goes after '/' or '@' (db-password/3f2c…)",
      });
    }
    let v = version ?? (m[2] === "" ? undefined : m[2]);
    if (v !== undefined) {
      const lower = v.toLowerCase();
      if (lower === "current" || lower === "previous" || lower === "pending" || lower === "latest") v = lower;
      else if (!VERSION.test(v)) throw new DsopsError(`store "${this.name}": "${v}" is not a version of secret "${name}"`);
    }
    return { name, ...(v !== undefined && v !== "latest" ? { version: v } : {}) };
  }
}

/** The stages of a secret: the latest version is current unless it is tagged with another stage. */
function stagesFrom(st: StageState): Partial<Record<Stage, string>> {
  const out: Partial<Record<Stage, string>> = {};
  const latestStage = st.latest?.tags[STAGE_TAG];
  if (st.latest && latestStage === undefined) out.current = st.latest.id;
  else out.current = st.versions.find((x) => x.tags[STAGE_TAG] === "current")?.id;
  if (out.current === undefined) delete out.current;
  const previous = st.versions.find((x) => x.tags[STAGE_TAG] === "previous" && x.id !== out.current)?.id;
  if (previous !== undefined) out.previous = previous;
  const pending = st.versions.find((x) => x.tags[STAGE_TAG] === "pending" && x.id !== out.current)?.id;
  if (pending !== undefined) out.pending = pending;
  return out;
}

/** The vault's answer to a read of a disabled version (403 Forbidden, "… disabled secret"). */
function isDisabled(e: unknown): boolean {
  return (e as { statusCode?: number }).statusCode === 403 && /disabled/i.test(String((e as Error).message));
}

function withTime<T extends object>(o: T, d: Date | undefined): T & { updatedAt?: string } {
  return d && !Number.isNaN(d.getTime()) ? { ...o, updatedAt: d.toISOString() } : o;
}

