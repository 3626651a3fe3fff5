// Over 400 lines on purpose: one file per store type (the registry's rule); GCP's reads, versions,
// aliases (rotation staging), writes and credentials are that one type's surface.
import { createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { SecretManagerServiceClient } from "@google-cloud/secret-manager";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret, scrub } from "../core/secret";
import { isSingleExecutable } from "../core/self";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type Settings = Extract<StoreSettings, { type: "gcp.secretmanager" }>;
/** The part of google-gax this store uses: grpc-js, and google-auth-library's clients. */
type Gax = typeof import("google-gax");
type ClientOptions = NonNullable<ConstructorParameters<typeof SecretManagerServiceClient>[0]>;
/** Options of every call: `retry: null` turns the client's retries off (the engine retries); `timeout` is the call's deadline. */
interface CallOptions {
  readonly retry: null;
  readonly timeout: number;
}

/** A secret version as the reference names it. */
interface SecretRef {
  readonly project: string;
  /** The location of a regional secret; undefined for a global one. */
  readonly location?: string;
  /** The secret id (`db-password`). */
  readonly secret: string;
  /** A version number, an alias, or `latest` (which follows the `current` alias when there is one). */
  readonly version: string;
  /** The reference asked for "current" explicitly: the latest version is current only when it is not pending. */
  readonly strict?: boolean;
  /** How messages name the secret: the id, or the full resource name for another project. */
  readonly display: string;
}

/** gRPC status codes the store reacts to (google.rpc.Code). */
const Code = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
const codeNames: Record<number, string> = {
  0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
  6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
  11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
};
const retryableCodes = new Set<number>([Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED, Code.UNAVAILABLE]);

const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;
const LATEST = "latest";
/** The version aliases of the rotation stages. */
const STAGE_ALIASES: Readonly<Record<Stage, string>> = { current: "current", previous: "previous", pending: "pending" };

/** A secret's aliases and its latest version (number and state), what its stages are computed from. */
interface StageState {
  readonly aliases: Record<string, string>;
  /** The number of the latest version, and whether it is enabled; undefined without versions. */
  readonly latest?: { readonly id: string; readonly enabled: boolean };
}

/**
 * Google Cloud Secret Manager, through the official client (@google-cloud/secret-manager,
 * gRPC). Keys: `name`, `name@3`, `name:3` (the dsops form), `name@latest`,
 * `projects/<p>/secrets/<name>` and `projects/<p>/secrets/<name>/versions/<v>`; the reference's
 * version wins over one in the key. Values are UTF-8 text, or base64 with `binary` when the
 * payload is not valid UTF-8; payload checksums (CRC32C) are verified on read and sent on write.
 * The client's own retries are off: the engine retries what this store marks retryable.
 *
 * Rotation staging: the pending value is a new version, and the stages are the secret's
 * version aliases `current`, `previous` and `pending` (UpdateSecret, update mask
 * `version_aliases`), so a version keeps its number from putPending to promote and promote
 * copies nothing. The alias `current` is set only while the current version is not the latest
 * one (during a rotation, after a rollback or a discarded rotation); without it the latest
 * version is current. A read without a version, of `latest` or of "current" accesses
 * `versions/current` and, when the secret has no such alias, `versions/latest`. Readers outside
 * dsops that access `versions/latest` may see the pending value for the duration of a rotation
 * (and, after a discarded rotation, a disabled version); dsops readers never do. While
 * `current` is set, a version added by another client is not current for dsops until promoted.
 * Discarding a pending version disables it.
 */
export class GcpSecretManagerStore implements Store, Staging {
  readonly type = "gcp.secretmanager" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: 0, binary: true, staging: true };
  /** The client, made at the first call (credentials are read then, not when the store is created). */
  private clientP?: Promise<SecretManagerServiceClient>;
  private readonly clientOptions: ClientOptions;
  private readonly callOptions: CallOptions;
  /** The location of regional secrets; undefined for global ones. */
  private readonly location?: string;
  /** The service-account key file (absolute), from service_account_key_path or credentials_file. */
  private readonly keyFile?: { readonly path: string; readonly setting: "service_account_key_path" | "credentials_file" };

  constructor(
    readonly name: string,
    private readonly settings: Settings,
    ctx: StoreContext,
  ) {
    const opts: ClientOptions = { projectId: settings.project_id };
    this.location = settings.location && settings.location !== "global" ? settings.location : undefined;
    if (settings.endpoint) {
      // "host", "host:port" or "https://host[:port]"
      const m = /^(?:[a-z]+:\/\/)?([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/i.exec(settings.endpoint);
      if (!m) throw new DsopsError(`store "${name}": endpoint "${settings.endpoint}" is not a host or host:port`);
      opts.apiEndpoint = m[1];
      const port = settings.port ?? (m[2] ? Number(m[2]) : undefined);
      if (port !== undefined) opts.port = port;
    } else {
      // Regional secrets live behind the location's own endpoint.
      if (this.location) opts.apiEndpoint = `secretmanager.${this.location}.rep.googleapis.com`;
      if (settings.port !== undefined) opts.port = settings.port;
    }
    const keySetting = settings.service_account_key_path !== undefined ? "service_account_key_path" : settings.credentials_file !== undefined ? "credentials_file" : undefined;
    if (settings.insecure) {
      if (!settings.endpoint) {
        throw new DsopsError(`store "${name}": insecure needs an endpoint`, { hint: "insecure is for a local Secret Manager endpoint only" });
      }
      // Plain-text gRPC carries no credentials: no credentials lookup at all (a known universe
      // keeps the auth library from probing the metadata server).
      opts.sslCreds = clientGax().grpc.credentials.createInsecure() as ClientOptions["sslCreds"];
      opts.universeDomain = "googleapis.com";
    } else if (keySetting) {
      const raw = (settings[keySetting] as string).replace(/^~(?=$|\/)/, homedir());
      this.keyFile = { path: isAbsolute(raw) ? raw : resolve(ctx.configDir, raw), setting: keySetting };
    }
    this.clientOptions = opts;
    this.callOptions = { retry: null, timeout: settings.timeout_ms ?? 30000 };
  }

  /** The client; its credentials are made on first use. A failure is not kept: the next call tries again. */
  private client(): Promise<SecretManagerServiceClient> {
    if (!this.clientP) {
      this.clientP = this.makeClient();
      this.clientP.catch(() => (this.clientP = undefined));
    }
    return this.clientP;
  }

  private async makeClient(): Promise<SecretManagerServiceClient> {
    const opts: ClientOptions = { ...this.clientOptions };
    if (this.settings.insecure) return new SecretManagerServiceClient(opts);
    const gax = clientGax();
    const key = this.keyFile ? await this.readKeyFile(this.keyFile.path, this.keyFile.setting) : undefined;
    type AuthClient = InstanceType<Gax["googleAuthLibrary"]["AuthClient"]>;
    // A service-account key: the auth library's JWT client (the constructor it recommends).
    let source: AuthClient | undefined =
      key?.type === "service_account"
        ? new gax.googleAuthLibrary.JWT({ email: key.client_email as string, key: key.private_key as string, keyId: key.private_key_id as string | undefined, scopes: [CLOUD_PLATFORM] })
        : undefined;
    const target = this.settings.impersonate_service_account;
    if (target) {
      // The source credentials (the key file, else Application Default Credentials) call the
      // IAM Credentials API's generateAccessToken for `target`; its tokens reach Secret Manager.
      if (!source) {
        try {
          source = await new gax.GoogleAuth({ scopes: [CLOUD_PLATFORM], ...(this.keyFile ? { keyFilename: this.keyFile.path } : {}) }).getClient();
        } catch (e) {
          throw this.mapError(e, "list", undefined);
        }
      }
      const sourceClient = source;
      opts.authClient = withoutWarning(
        // Its warning is about credential configurations from untrusted sources; this one is the user's own dsops.yaml.
        "The `Impersonated` constructor does not validate",
        () => new gax.googleAuthLibrary.Impersonated({ sourceClient, targetPrincipal: target, targetScopes: [CLOUD_PLATFORM], delegates: [], lifetime: 3600 }),
      ) as unknown as ClientOptions["authClient"];
    } else if (source) {
      opts.authClient = source as unknown as ClientOptions["authClient"];
    } else if (this.keyFile) {
      // Other credential files (authorized_user, external_account …): the auth library reads them.
      opts.keyFilename = this.keyFile.path;
    }
    return new SecretManagerServiceClient(opts);
  }

  /**
   * A key file that cannot be read, is not JSON, or is a service-account key without its
   * e-mail or a usable private key: an AuthError naming the store and the setting. Messages
   * never quote the file (it holds a private key).
   */
  private async readKeyFile(path: string, setting: string): Promise<Record<string, unknown>> {
    const what = `store "${this.name}": ${setting} "${path}"`;
    const hint = "give the JSON key file of a service account (IAM → Service accounts → Keys → Add key → JSON)";
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      throw new AuthError(`${what} cannot be read (${code})`, { hint: code === "ENOENT" ? `no such file; ${hint}` : hint });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AuthError(`${what} is not a JSON key file (not valid JSON)`, { hint });
    }
    if (!json || typeof json !== "object" || Array.isArray(json)) throw new AuthError(`${what} is not a JSON key file (not a JSON object)`, { hint });
    const k = json as Record<string, unknown>;
    if (typeof k.type !== "string") throw new AuthError(`${what} is not a Google credentials file (no "type" field)`, { hint });
    if (k.type !== "service_account") return k; // other ADC file types (authorized_user, external_account …): the auth library reads them
    for (const f of ["client_email", "private_key"] as const) {
      if (typeof k[f] !== "string" || k[f] === "") throw new AuthError(`${what} is a service-account key without "${f}"`, { hint });
    }
    try {
      createPrivateKey(k.private_key as string);
    } catch {
      throw new AuthError(`${what}: its "private_key" is not a PEM private key`, { hint });
    }
    return k;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const ref = this.parse(k.key, k.version);
    let resp;
    try {
      resp = await this.followCurrent(ref, async (name) => (await (await this.client()).accessSecretVersion({ name }, this.callOptions))[0]);
    } catch (e) {
      throw this.mapError(e, "read", ref);
    }
    const versionId = versionIdOf(resp.name) ?? ref.version;
    const data = toBuffer(resp.payload?.data);
    const expected = resp.payload?.dataCrc32c;
    if (expected !== null && expected !== undefined && Number(expected) !== crc32c(data)) {
      throw new StoreError(`store "${this.name}": secret "${ref.display}" version ${versionId}: payload checksum mismatch (data_crc32c)`, true);
    }
    const text = decodeUtf8(data);
    if (text === undefined) return { value: new Secret(data.toString("base64")), versionId, binary: true };
    return { value: new Secret(text), versionId };
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const ref = this.parse(k.key, k.version);
    let v;
    try {
      v = await this.followCurrent(ref, async (name) => (await (await this.client()).getSecretVersion({ name }, this.callOptions))[0]);
    } catch (e) {
      throw this.mapError(e, "describe", ref);
    }
    const versionId = versionIdOf(v.name) ?? ref.version;
    const state = String(v.state ?? "");
    if (state === "DISABLED" || state === "DESTROYED") {
      throw new NotFoundError(`store "${this.name}": secret "${ref.display}" version ${versionId} is ${state.toLowerCase()}`);
    }
    const updatedAt = isoTime(v.createTime);
    return updatedAt ? { versionId, updatedAt } : { versionId };
  }

  async put(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const ref = this.parse(key, undefined);
    if (ref.version !== LATEST) throw new DsopsError(`store "${this.name}": put takes a secret name without a version, got "${key}"`);
    const parent = secretName(ref);
    const data = Buffer.from(value.reveal(), "utf8");
    const add = async () => {
      const [v] = await (await this.client()).addSecretVersion({ parent, payload: { data, dataCrc32c: crc32c(data) } }, this.callOptions);
      return v;
    };
    let v;
    try {
      try {
        v = await add();
      } catch (e) {
        if (codeOf(e) !== Code.NOT_FOUND) throw e;
        try {
          await (await this.client()).createSecret({ parent: parentName(ref), secretId: ref.secret, secret: newSecret(ref) }, this.callOptions);
        } catch (ce) {
          if (codeOf(ce) !== Code.ALREADY_EXISTS) throw ce;
        }
        v = await add();
      }
    } catch (e) {
      throw this.mapError(e, "write", ref, value);
    }
    const versionId = versionIdOf(v.name);
    if (!versionId) throw new StoreError(`store "${this.name}": secret "${ref.display}": the service answered without a version name`);
    await this.afterPut(ref, versionId);
    const updatedAt = isoTime(v.createTime);
    return updatedAt ? { versionId, updatedAt } : { versionId };
  }

  /**
   * `versions/current`, else (no such alias) `versions/latest`, through `call`. `strict` (an
   * explicit "current"): the latest version only when it is not the pending one.
   */
  private async followCurrent<T>(ref: SecretRef, call: (name: string) => Promise<T>): Promise<T> {
    if (ref.version !== LATEST) return call(versionName(ref));
    try {
      return await call(versionName({ ...ref, version: STAGE_ALIASES.current }));
    } catch (e) {
      if (codeOf(e) !== Code.NOT_FOUND) throw e;
    }
    const out = await call(versionName(ref));
    if (ref.strict) {
      const id = versionIdOf((out as { name?: string | null }).name);
      const st = await this.stageState(ref);
      if (st && id !== undefined && st.aliases[STAGE_ALIASES.pending] === id) {
        throw new NotFoundError(`store "${this.name}": secret "${ref.display}" has no current version (its latest version is pending)`);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Rotation staging

  private stagingRef(key: string, op: string): SecretRef {
    const ref = this.parse(key, undefined);
    if (ref.version !== LATEST) throw new DsopsError(`store "${this.name}": ${op} takes a secret name without a version, got "${key}"`);
    return ref;
  }

  /** The secret's aliases and latest version; undefined when the secret does not exist. Errors are the SDK's. */
  private async stageState(ref: SecretRef): Promise<StageState | undefined> {
    const name = secretName(ref);
    let secret;
    try {
      [secret] = await (await this.client()).getSecret({ name }, this.callOptions);
    } catch (e) {
      if (codeOf(e) === Code.NOT_FOUND) return undefined;
      throw e;
    }
    const aliases: Record<string, string> = {};
    for (const [a, n] of Object.entries(secret.versionAliases ?? {})) aliases[a] = String(n);
    let latest: StageState["latest"];
    try {
      const [v] = await (await this.client()).getSecretVersion({ name: `${name}/versions/${LATEST}` }, this.callOptions);
      const id = versionIdOf(v.name);
      if (id) latest = { id, enabled: String(v.state ?? "") === "ENABLED" };
    } catch (e) {
      if (codeOf(e) !== Code.NOT_FOUND) throw e; // no versions yet
    }
    return { aliases, ...(latest ? { latest } : {}) };
  }

  /** Replace the secret's version aliases (UpdateSecret, update mask `version_aliases`). */
  private async writeAliases(ref: SecretRef, aliases: Record<string, string>): Promise<void> {
    await (await this.client()).updateSecret(
      {
        secret: { name: secretName(ref), versionAliases: Object.fromEntries(Object.entries(aliases).map(([a, n]) => [a, Number(n)])) },
        updateMask: { paths: ["version_aliases"] },
      },
      this.callOptions,
    );
  }

  private async disable(ref: SecretRef, id: string): Promise<void> {
    try {
      await (await this.client()).disableSecretVersion({ name: versionName({ ...ref, version: id }) }, this.callOptions);
    } catch (e) {
      // already destroyed, or gone: nothing left to disable
      if (codeOf(e) !== Code.FAILED_PRECONDITION && codeOf(e) !== Code.NOT_FOUND) throw e;
    }
  }

  /** After `put` on a secret with rotation aliases: the old current version becomes previous, and `current` goes (the new version is the latest). */
  private async afterPut(ref: SecretRef, v: string): Promise<void> {
    let st;
    try {
      st = await this.stageState(ref);
    } catch (e) {
      if (codeOf(e) === Code.PERMISSION_DENIED) return; // a writer that may not read the secret's metadata keeps no stages
      throw this.mapError(e, "write", ref);
    }
    const a = st?.aliases ?? {};
    if (!st || !Object.values(STAGE_ALIASES).some((x) => a[x] !== undefined)) return;
    let before: string | undefined = a[STAGE_ALIASES.current];
    if (before === undefined) {
      // The latest version before this one, unless it was pending.
      try {
        const [versions] = await (await this.client()).listSecretVersions({ parent: secretName(ref), filter: "state:ENABLED", pageSize: 50 }, { ...this.callOptions, autoPaginate: false });
        before = versions.map((x) => versionIdOf(x.name)).find((id) => id !== undefined && Number(id) < Number(v) && id !== a[STAGE_ALIASES.pending]);
      } catch (e) {
        throw this.mapError(e, "write", ref);
      }
    }
    const next = { ...a };
    if (before !== undefined && before !== v) next[STAGE_ALIASES.previous] = before;
    delete next[STAGE_ALIASES.current];
    try {
      await this.writeAliases(ref, next);
    } catch (e) {
      throw this.mapError(e, "write", ref);
    }
  }

  /**
   * A new version with the alias `pending` (an older pending version is disabled). The current
   * version gets the alias `current` first, so readers keep getting it once the new one is latest.
   */
  async putPending(key: string, value: Secret, _options?: PutOptions): Promise<VersionInfo> {
    const ref = this.stagingRef(key, "putPending");
    const parent = secretName(ref);
    const data = Buffer.from(value.reveal(), "utf8");
    let v;
    try {
      let st = await this.stageState(ref);
      if (!st) {
        try {
          await (await this.client()).createSecret({ parent: parentName(ref), secretId: ref.secret, secret: newSecret(ref) }, this.callOptions);
        } catch (ce) {
          if (codeOf(ce) !== Code.ALREADY_EXISTS) throw ce;
        }
        st = { aliases: {} };
      }
      const current = stagesFrom(st).current;
      if (current !== undefined && st.aliases[STAGE_ALIASES.current] === undefined) {
        await this.writeAliases(ref, { ...st.aliases, [STAGE_ALIASES.current]: current });
      }
      [v] = await (await this.client()).addSecretVersion({ parent, payload: { data, dataCrc32c: crc32c(data) } }, this.callOptions);
    } catch (e) {
      throw this.mapError(e, "write", ref, value);
    }
    const versionId = versionIdOf(v.name);
    if (!versionId) throw new StoreError(`store "${this.name}": secret "${ref.display}": the service answered without a version name`);
    try {
      const st = (await this.stageState(ref)) ?? { aliases: {} };
      const old = st.aliases[STAGE_ALIASES.pending];
      await this.writeAliases(ref, { ...st.aliases, [STAGE_ALIASES.pending]: versionId });
      const stages = stagesFrom(st);
      if (old !== undefined && old !== versionId && old !== stages.current && old !== stages.previous) await this.disable(ref, old);
    } catch (e) {
      throw this.mapError(e, "write", ref);
    }
    const updatedAt = isoTime(v.createTime);
    return updatedAt ? { versionId, updatedAt } : { versionId };
  }

  /**
   * One alias update: `current` on `versionId` (none when it is the latest version), `previous`
   * on the version current until now, `pending` dropped when it named `versionId`. A disabled
   * version is enabled first (a rollback to it).
   */
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const ref = this.stagingRef(key, "promote");
    const vref = { ...ref, version: versionId };
    if (!/^[1-9][0-9]*$/.test(versionId)) throw new NotFoundError(`store "${this.name}": secret "${ref.display}" has no version "${versionId}"`);
    try {
      const st = await this.stageState(ref);
      if (!st) throw new NotFoundError(`store "${this.name}": secret "${ref.display}" not found in project "${ref.project}"`);
      const [v] = await (await this.client()).getSecretVersion({ name: versionName(vref) }, this.callOptions);
      const state = String(v.state ?? "");
      if (state === "DESTROYED") throw new NotFoundError(`store "${this.name}": secret "${ref.display}" version ${versionId} is destroyed`);
      if (state === "DISABLED") await (await this.client()).enableSecretVersion({ name: versionName(vref) }, this.callOptions);
      const stages = stagesFrom(st);
      const next = { ...st.aliases };
      if (stages.current !== versionId) {
        if (stages.current !== undefined) next[STAGE_ALIASES.previous] = stages.current;
        else if (next[STAGE_ALIASES.previous] === versionId) delete next[STAGE_ALIASES.previous];
      }
      if (st.latest?.id === versionId) delete next[STAGE_ALIASES.current];
      else next[STAGE_ALIASES.current] = versionId;
      if (next[STAGE_ALIASES.pending] === versionId) delete next[STAGE_ALIASES.pending];
      if (!sameAliases(next, st.aliases)) await this.writeAliases(ref, next);
      const updatedAt = isoTime(v.createTime);
      return updatedAt ? { versionId, updatedAt } : { versionId };
    } catch (e) {
      throw this.mapError(e, "write", vref);
    }
  }

  /** Drop the alias `pending` (when it names `versionId`, if given), then disable that version. */
  async discardPending(key: string, versionId?: string): Promise<void> {
    const ref = this.stagingRef(key, "discardPending");
    try {
      const st = await this.stageState(ref);
      const pending = st?.aliases[STAGE_ALIASES.pending];
      if (!st || pending === undefined || (versionId !== undefined && pending !== versionId)) return;
      const next = { ...st.aliases };
      delete next[STAGE_ALIASES.pending];
      await this.writeAliases(ref, next);
      const stages = stagesFrom(st);
      if (pending !== stages.current && pending !== stages.previous) await this.disable(ref, pending);
    } catch (e) {
      throw this.mapError(e, "write", ref);
    }
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const ref = this.stagingRef(key, "stagesOf");
    try {
      const st = await this.stageState(ref);
      return st ? stagesFrom(st) : {};
    } catch (e) {
      throw this.mapError(e, "describe", ref);
    }
  }

  async check(): Promise<void> {
    try {
      await (await this.client()).listSecrets({ parent: parentName({ project: this.settings.project_id, location: this.location }), pageSize: 1 }, { ...this.callOptions, autoPaginate: false });
    } catch (e) {
      throw this.mapError(e, "list", undefined);
    }
  }

  async close(): Promise<void> {
    // A client whose start failed (unreadable credentials) rejects close with that same error.
    const p = this.clientP;
    this.clientP = undefined;
    if (p) await p.then((c) => c.close()).catch(() => undefined);
  }

  /**
   * Split a key into project, location, secret id and version; `version` (from the reference)
   * wins. A full resource name may name another project, but not another location than the
   * store's (a regional endpoint serves its own location only). With `use_plaintext_names:
   * false` every key is a full resource name.
   */
  private parse(key: string, version: string | undefined): SecretRef {
    let project = this.settings.project_id;
    let rest = key;
    let fromPath: string | undefined;
    let full = false;
    const m = /^projects\/([^/]+)(?:\/locations\/([^/]+))?\/secrets\/([^/]+?)(?:\/versions\/([^/]+))?$/.exec(key);
    if (m) {
      const loc = m[2] === "global" ? undefined : m[2];
      if (loc !== this.location) {
        throw new DsopsError(`store "${this.name}": "${key}" is ${loc ? `a secret of location "${loc}"` : "a global secret"}, but the store's location is ${this.location ? `"${this.location}"` : "global"}`, {
          hint: "use a store whose location: is the secret's (regional secrets are served by their location's endpoint)",
        });
      }
      [, project, , rest, fromPath] = m;
      full = true;
    } else if (key.startsWith("projects/")) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a secret name (projects/<project>/${this.location ? `locations/${this.location}/` : ""}secrets/<name>[/versions/<v>])`);
    } else if (this.settings.use_plaintext_names === false) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a full resource name, and use_plaintext_names is false`, {
        hint: `write projects/${project}/${this.location ? `locations/${this.location}/` : ""}secrets/<name>[/versions/<v>], or set use_plaintext_names: true`,
      });
    }
    const sep = rest.search(/[@:]/);
    let secret = rest;
    let fromSuffix: string | undefined;
    if (sep >= 0) {
      secret = rest.slice(0, sep);
      fromSuffix = rest.slice(sep + 1);
    }
    if (fromPath !== undefined && fromSuffix !== undefined) {
      throw new DsopsError(`store "${this.name}": "${key}" names its version twice`);
    }
    if (!SECRET_ID.test(secret)) {
      throw new DsopsError(`store "${this.name}": "${key}" is not a valid secret name`, {
        hint: "Secret Manager names are 1-255 letters, digits, '-' and '_'; add a version as name@3 or name:3",
      });
    }
    let v = version ?? fromPath ?? fromSuffix ?? LATEST;
    const strict = v.toLowerCase() === "current";
    if (v === "" || v.toLowerCase() === LATEST || strict) v = LATEST;
    if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new DsopsError(`store "${this.name}": "${v}" is not a version of secret "${secret}"`);
    const location = this.location;
    const display = full && project !== this.settings.project_id ? secretName({ project, location, secret, version: v, display: "" }) : secret;
    return { project, secret, version: v, display, ...(location ? { location } : {}), ...(strict ? { strict } : {}) };
  }

  /** The SDK's error as a project error; never carries a value. */
  private mapError(e: unknown, op: "read" | "describe" | "write" | "list", ref: SecretRef | undefined, value?: Secret): Error {
    if (e instanceof DsopsError) return e; // already this store's own error
    const code = codeOf(e);
    let details = e instanceof Error ? String((e as { details?: unknown }).details ?? e.message) : String(e);
    if (value) details = scrub(details, [value]);
    const what = ref ? `secret "${ref.display}"` : `project "${this.settings.project_id}"`;
    const keepCause = value ? undefined : { cause: e };
    const prefix = `store "${this.name}"`;
    if (code === Code.NOT_FOUND && ref) {
      if (op === "read" || op === "describe") {
        if (ref.version === LATEST) {
          return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}" (or it has no versions)`, keepCause);
        }
        if (/^Secret Version\b/i.test(details)) return new NotFoundError(`${prefix}: ${what} has no version "${ref.version}"`, keepCause);
        if (/^Secret\b/i.test(details)) return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}"`, keepCause);
        return new NotFoundError(`${prefix}: ${what} version "${ref.version}" not found`, keepCause);
      }
      return new NotFoundError(`${prefix}: ${what} not found in project "${ref.project}"`, keepCause);
    }
    if (code === Code.FAILED_PRECONDITION && ref && (op === "read" || op === "describe")) {
      const state = /\b(DISABLED|DESTROYED)\b/.exec(details)?.[1]?.toLowerCase() ?? "disabled or destroyed";
      const id = /\/versions\/(\d+)/.exec(details)?.[1] ?? ref.version;
      return new NotFoundError(`${prefix}: ${what} version ${id} is ${state}`, { ...keepCause, hint: "enable the version or reference another one" });
    }
    if (code === Code.PERMISSION_DENIED || code === Code.UNAUTHENTICATED) {
      return new AuthError(`${prefix}: access to ${what} denied (${codeNames[code]}): ${details}`, keepCause);
    }
    if (this.keyFile && /invalid_grant|Invalid JWT/i.test(details)) {
      return new AuthError(`${prefix}: ${this.keyFile.setting} "${this.keyFile.path}": the token endpoint refused the key (${details.replace(/^.*?(invalid_grant)/is, "$1")})`, {
        ...keepCause,
        hint: "the key may have been deleted or disabled; create a new key for the service account",
      });
    }
    const target = this.settings.impersonate_service_account;
    const impersonation = target ? /(?:\b([A-Z_]+): )?unable to impersonate:\s*([\s\S]*)$/.exec(details) : null;
    if (target && impersonation) {
      const [, status, why] = impersonation;
      const what = `${prefix}: impersonate_service_account "${target}"`;
      // Refused (403, 401, 400, 404): an auth error. Throttled, unavailable or unreachable: retried like any transient failure.
      if (status && !["UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"].includes(status)) {
        return new AuthError(`${what}: the IAM Credentials API refused an access token (the source credentials need roles/iam.serviceAccountTokenCreator on it): ${why}`, {
          ...keepCause,
          hint: "grant the role, or check impersonate_service_account",
        });
      }
      return new StoreError(`${what}: no access token from the IAM Credentials API (${status ?? "unreachable"}): ${why}`, true, keepCause);
    }
    if (typeof code !== "number" || code === Code.UNAVAILABLE) {
      // Credentials that cannot be loaded fail before any call (a file error from the auth
      // library), or surface as UNAVAILABLE from the gRPC metadata plugin.
      const fileError = typeof code !== "number" && typeof (e as { syscall?: unknown } | null)?.syscall === "string";
      if (fileError || /Could not load the default credentials|invalid_grant|private key|client_email|Getting metadata from plugin failed.*(ENOENT|no such file)/i.test(details)) {
        return new AuthError(`${prefix}: no usable Google credentials: ${details}`, {
          ...keepCause,
          hint: "set credentials_file, GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`",
        });
      }
    }
    const retryable = typeof code === "number" && retryableCodes.has(code);
    const status = typeof code === "number" ? (codeNames[code] ?? String(code)) : "error";
    return new StoreError(`${prefix}: ${op} of ${what} failed (${status}): ${details}`, retryable, keepCause);
  }
}

/** The stages of a secret: its aliases; without `current`, the latest version when it is enabled and not pending. */
function stagesFrom(st: StageState): Partial<Record<Stage, string>> {
  const a = st.aliases;
  const out: Partial<Record<Stage, string>> = {};
  const current = a[STAGE_ALIASES.current] ?? (st.latest?.enabled && st.latest.id !== a[STAGE_ALIASES.pending] ? st.latest.id : undefined);
  if (current !== undefined) out.current = current;
  if (a[STAGE_ALIASES.previous] !== undefined) out.previous = a[STAGE_ALIASES.previous];
  if (a[STAGE_ALIASES.pending] !== undefined) out.pending = a[STAGE_ALIASES.pending];
  return out;
}

function sameAliases(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function codeOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "number" ? c : undefined;
}

/** `projects/<p>` or, for a regional secret, `projects/<p>/locations/<l>`. */
function parentName(ref: { project: string; location?: string }): string {
  return ref.location ? `projects/${ref.project}/locations/${ref.location}` : `projects/${ref.project}`;
}

function secretName(ref: SecretRef): string {
  return `${parentName(ref)}/secrets/${ref.secret}`;
}

function versionName(ref: SecretRef): string {
  return `${secretName(ref)}/versions/${ref.version}`;
}

/** A new secret: global ones replicate automatically; regional ones have no replication. */
function newSecret(ref: SecretRef): { replication?: { automatic: Record<string, never> } } {
  return ref.location ? {} : { replication: { automatic: {} } };
}

function versionIdOf(name: string | null | undefined): string | undefined {
  return name ? /\/versions\/([^/]+)$/.exec(name)?.[1] : undefined;
}

function toBuffer(data: Uint8Array | string | null | undefined): Buffer {
  if (data === null || data === undefined) return Buffer.alloc(0);
  if (typeof data === "string") return Buffer.from(data, "base64");
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

function isoTime(t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!t || t.seconds === null || t.seconds === undefined) return undefined;
  const ms = Number(String(t.seconds)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of the payload, as Secret Manager computes it. */
export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The google-gax the client library itself uses: channel credentials must come from its
 * @grpc/grpc-js, and credentials from its google-auth-library.
 */
function clientGax(): Gax {
  // The single executable has no node_modules to look in: there the google-gax bundled with the
  // client library (npm installs one copy, next to it) is required by name.
  if (isSingleExecutable()) return require("google-gax") as Gax;
  const pkgDir = join(dirname(require.resolve("@google-cloud/secret-manager")), "..", "..");
  return require(require.resolve("google-gax", { paths: [pkgDir] })) as Gax;
}

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";

/** `make()`, with console warnings that start with `prefix` left out (a library's warning that does not apply). */
function withoutWarning<T>(prefix: string, make: () => T): T {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith(prefix)) return;
    warn(...args);
  };
  try {
    return make();
  } finally {
    console.warn = warn;
  }
}
