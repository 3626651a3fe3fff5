import type { Secret } from "../core/secret";
import type { Clock } from "../core/clock";
import type { StoreType, StoreSettings } from "./settings";

/** What the engine asks a store for: a key in the store's own terms, and a version. */
export interface StoreKey {
  /** The key in the store's own terms (`myapp/prod`, `/app/db`, `kv/data/x`, `name@3`). Never holds the `#field` part. */
  readonly key: string;
  /** A version id or stage/label, in the store's own terms. */
  readonly version?: string;
  /** Extra reference options (`?opt=x`) the store may understand. */
  readonly options?: Readonly<Record<string, string>>;
  /**
   * The reference's `#field`, given only to a store that `readsField` it (an attribute of a
   * password manager's entry: username, url, notes …); other stores never see it.
   */
  readonly field?: string;
}

/** One version of a secret, as read from a store. */
export interface SecretVersion {
  /** The value; binary secrets are base64-encoded and flagged `binary`. */
  readonly value: Secret;
  /** The store's id of this version. */
  readonly versionId: string;
  /** When this version was created, ISO-8601, when the store says. */
  readonly updatedAt?: string;
  /** True when the store held bytes, and `value` is their base64 encoding. */
  readonly binary?: boolean;
  /**
   * Named fields of the entry besides its value (a password manager's `user: alice` lines):
   * a reference's `#field` reads one of these when it is there, else the field of the value's JSON.
   */
  readonly fields?: Readonly<Record<string, Secret>>;
}

/** Metadata of a secret's version, without its value. */
export interface VersionInfo {
  readonly versionId: string;
  readonly updatedAt?: string;
}

/** What a store can do. The engine picks its calls from these. */
export interface StoreCapabilities {
  /** `put` writes a new version. */
  readonly write: boolean;
  /** Older versions can be read by id or label. */
  readonly versions: boolean;
  /** Largest number of keys one `getMany` call fetches; 0 when the store has no batch call. */
  readonly batch: number;
  /** The store can hold binary values. */
  readonly binary: boolean;
  /**
   * The store keeps rotation stages (pending/current/previous) and implements the `Staging`
   * methods. Rotation refuses a secret whose store has no staging.
   */
  readonly staging?: boolean;
}

/**
 * Rotation stages, in each store's own terms: AWS Secrets Manager AWSPENDING/AWSCURRENT/
 * AWSPREVIOUS, SSM labels, Vault KV v2 versions + custom metadata, GCP versions + labels or
 * aliases, the file store's `pending`/`previous` fields. A `StoreKey.version` of `"current"`,
 * `"previous"` or `"pending"` reads (or describes) the version in that stage, or NotFoundError.
 */
export type Stage = "current" | "previous" | "pending";
export const stages: readonly Stage[] = ["current", "previous", "pending"];

/**
 * What a store implements so the rotation engine can stage a new value before the target
 * accepts it. Every method is idempotent (the engine repeats a step after a crash).
 */
export interface Staging {
  /**
   * Write `value` as a new version in the `pending` stage; `current` is unchanged and readers
   * keep getting it. A pending version already there is replaced (discarded).
   */
  putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo>;
  /**
   * Make `versionId` current: the version current until now becomes `previous`; when
   * `versionId` was pending, nothing is pending afterwards. Promoting the current version is a
   * no-op. Rolling back is promoting the previous (or an older, named) version.
   */
  promote(key: string, versionId: string): Promise<VersionInfo>;
  /** Drop the pending stage (of `versionId` only, when given). No pending version: no-op. */
  discardPending(key: string, versionId?: string): Promise<void>;
  /** The version id in each stage (absent stages left out); no values read. */
  stagesOf(key: string): Promise<Partial<Record<Stage, string>>>;
}

/** True when the store can stage rotations. */
export function hasStaging(store: Store): store is Store & Staging {
  const s = store as Partial<Staging>;
  return store.capabilities.staging === true && typeof s.putPending === "function" && typeof s.promote === "function" && typeof s.discardPending === "function" && typeof s.stagesOf === "function";
}

/** Options of a write. */
export interface PutOptions {
  /** Free-form description kept with the version where the store allows. */
  readonly description?: string;
}

/** A secret store: the one narrow interface every store type implements. */
export interface Store {
  /** The store's name in the configuration. */
  readonly name: string;
  readonly type: StoreType;
  readonly capabilities: StoreCapabilities;
  /**
   * True when the store reads this `#field` of a reference itself (`StoreKey.field`: an
   * attribute of a password manager's entry) instead of the engine extracting it from a JSON value.
   */
  readsField?(field: string): boolean;
  /** Read one secret version. Missing secret/version → NotFoundError. */
  get(k: StoreKey): Promise<SecretVersion>;
  /** Read several secrets in one call; one result per key, in order; a failed key is an Error in its slot. */
  getMany?(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>>;
  /** The current (or named) version's metadata, without fetching the value where the store allows. */
  describe(k: StoreKey): Promise<VersionInfo>;
  /** Write a new current version. Only when `capabilities.write`. */
  put?(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo>;
  /**
   * The current version id of up to `limit` secrets, in one or a few calls and without their
   * values, keyed by name (and ARN where the store has them): Pulumi's drift checks call
   * `diff` one resource at a time, so a preview of many references asks this once instead.
   */
  listCurrentVersions?(limit: number): Promise<Map<string, string>>;
  /** Check connectivity and authentication (for `doctor`). */
  check?(): Promise<void>;
  /** Release connections. */
  close?(): Promise<void>;
}

/** What a store factory gets besides its settings. */
export interface StoreContext {
  /** Folder of the configuration file; relative paths in settings are relative to it. */
  readonly configDir: string;
  readonly clock: Clock;
  /** The environment (the `env` store reads it). */
  readonly env: NodeJS.ProcessEnv;
  /** Told of warnings (no values), e.g. DSOPS_FILE_KEY overriding a file store's key file. */
  readonly onWarning?: (message: string) => void;
  /**
   * Resolve a `store://` reference to another store, for a setting that holds one (a
   * database password kept in another store). Absent where no resolver runs the store.
   */
  readonly resolveRef?: (uri: string) => Promise<Secret>;
}

export type StoreFactory<T extends StoreType> = (
  name: string,
  settings: Extract<StoreSettings, { type: T }>,
  ctx: StoreContext,
) => Store;
