import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type SecretValueEntry,
  type GetSecretValueCommandOutput,
} from "@aws-sdk/client-secrets-manager";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret } from "../core/secret";
import {
  awsErrorName,
  batchFallsBack,
  chunks,
  isoDate,
  mapAwsError,
  mapAwsErrorCode,
  settleEach,
  type AwsErrorContext,
} from "./aws-common";
import { awsStoreClientConfig, dropRefusedCredentials, type AwsClientSetup } from "./aws-credentials";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type SecretsManagerSettings = Extract<StoreSettings, { type: "aws.secretsmanager" }>;

/** Most secret ids one BatchGetSecretValue call takes. */
const BATCH = 20;

/** The staging labels AWS itself manages. */
const AWS_STAGES = new Set(["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The rotation stages (`current`, `previous`, `pending`, see ./types.ts) as AWS staging labels. */
const STAGE_LABELS: Readonly<Record<Stage, string>> = { current: "AWSCURRENT", previous: "AWSPREVIOUS", pending: "AWSPENDING" };

/** How a requested version is sent: as a version id or as a staging label. */
type VersionSelector = { readonly VersionId: string } | { readonly VersionStage: string };

/**
 * Tell a version id from a staging label. Explicit options win (`?version_id=…`,
 * `?version_stage=…`). Otherwise: AWSCURRENT/AWSPREVIOUS/AWSPENDING and any all-uppercase
 * label are stages; a UUID is an id; anything outside the 32–64 characters a version id
 * (ClientRequestToken) must have is a stage (`blue`, `green`); the rest is an id.
 */
export function versionSelector(version: string | undefined, options?: Readonly<Record<string, string>>): VersionSelector | undefined {
  if (options?.version_id) return { VersionId: options.version_id };
  if (options?.version_stage) return { VersionStage: options.version_stage };
  if (version === undefined || version === "") return undefined;
  if (version === "current" || version === "previous" || version === "pending") return { VersionStage: STAGE_LABELS[version] };
  if (AWS_STAGES.has(version) || /^[A-Z][A-Z0-9_]*$/.test(version)) return { VersionStage: version };
  if (UUID.test(version)) return { VersionId: version };
  if (version.length < 32 || version.length > 64) return { VersionStage: version };
  return { VersionId: version };
}

/** The label or id a selector names, for messages. */
function selectorText(sel: VersionSelector): string {
  return "VersionId" in sel ? `version "${sel.VersionId}"` : `stage "${sel.VersionStage}"`;
}

/**
 * AWS Secrets Manager, through @aws-sdk/client-secrets-manager.
 *
 * Keys: a secret name (`myapp/prod`), a full ARN, or a partial ARN (without the random suffix).
 * Versions: a version id or a staging label (see `versionSelector`); without one, AWSCURRENT.
 * Binary secrets (SecretBinary) read as base64 with `binary: true`.
 * `getMany` uses BatchGetSecretValue (20 ids a call); keys with a version are read one by one.
 *
 * Rotation stages are AWS's own staging labels: pending = AWSPENDING (PutSecretValue with
 * VersionStages [AWSPENDING], which leaves AWSCURRENT where it is, so readers keep getting the
 * current value), promote = UpdateSecretVersionStage moving AWSCURRENT (AWS moves AWSPREVIOUS to
 * the version AWSCURRENT left), discard = removing AWSPENDING from its version. The same labels
 * AWS's own rotation Lambdas use, so a secret can move between the two.
 */
export class AwsSecretsManagerStore implements Store, Staging {
  readonly type = "aws.secretsmanager" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: BATCH, binary: true, staging: true };
  private readonly client: SecretsManagerClient;
  private readonly closeCredentials: () => void;
  /** Set once BatchGetSecretValue was refused (a policy granting only GetSecretValue): read one by one from then on. */
  private batchRefused = false;

  constructor(
    readonly name: string,
    settings: SecretsManagerSettings,
    ctx: StoreContext,
    shared?: AwsClientSetup,
  ) {
    // The `aws` router passes the client configuration all its services share (one set of credentials).
    const setup = shared ?? awsStoreClientConfig(name, settings, ctx.env, ctx.clock);
    this.client = new SecretsManagerClient(setup.config);
    dropRefusedCredentials(this.client, setup.onRefused);
    this.closeCredentials = setup.close;
  }

  async get(k: StoreKey): Promise<SecretVersion> {
    const sel = versionSelector(k.version, k.options);
    const ctx = this.ctx(k.key, sel, "reading");
    let out: GetSecretValueCommandOutput;
    try {
      // No version: ask for AWSCURRENT by name. AWS answers the same either way; moto keeps a
      // default version of its own that UpdateSecretVersionStage (a promote) does not move.
      out = await this.client.send(new GetSecretValueCommand({ SecretId: k.key, ...(sel ?? { VersionStage: "AWSCURRENT" }) }));
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    return this.toVersion(out, ctx);
  }

  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const results: Array<SecretVersion | Error | undefined> = new Array(keys.length);
    // Plain keys (current version) go to the batch call, once each; versioned ones are read alone.
    const plain = new Map<string, number[]>();
    const single: number[] = [];
    keys.forEach((k, i) => {
      if (versionSelector(k.version, k.options) !== undefined || this.batchRefused) single.push(i);
      else plain.set(k.key, [...(plain.get(k.key) ?? []), i]);
    });

    const unresolved: string[] = [];
    await Promise.all(
      chunks([...plain.keys()], BATCH).map(async (ids) => {
        let found: Map<string, SecretVersion | Error>;
        try {
          found = await this.batchGet(ids);
        } catch (e) {
          const err = mapAwsError(e, { store: this.name, subject: `${ids.length} secrets`, action: "batch reading" });
          if (!batchFallsBack(err)) throw err; // the engine retries the whole call
          if (err instanceof AuthError) this.batchRefused = true;
          unresolved.push(...ids);
          return;
        }
        for (const id of ids) {
          const r = found.get(id);
          if (r === undefined) unresolved.push(id);
          else for (const i of plain.get(id) ?? []) results[i] = r;
        }
      }),
    );
    // Ids the batch answered for neither way (or whose batch call was refused) are read one by one.
    const alone = await settleEach(unresolved, (id) => this.get({ key: id }));
    unresolved.forEach((id, j) => {
      for (const i of plain.get(id) ?? []) results[i] = alone[j];
    });
    const singles = await settleEach(single, (i) => this.get(keys[i]));
    single.forEach((i, j) => (results[i] = singles[j]));
    return results.map((r) => r ?? new DsopsError(`store "${this.name}": no result`));
  }

  /** One BatchGetSecretValue call (following NextToken), its answers keyed by the requested id. */
  private async batchGet(ids: string[]): Promise<Map<string, SecretVersion | Error>> {
    const values: SecretValueEntry[] = [];
    const found = new Map<string, SecretVersion | Error>();
    let next: string | undefined;
    do {
      const out = await this.client.send(new BatchGetSecretValueCommand({ SecretIdList: ids, NextToken: next }));
      values.push(...(out.SecretValues ?? []));
      for (const err of out.Errors ?? []) {
        if (err.SecretId !== undefined && ids.includes(err.SecretId)) {
          found.set(err.SecretId, mapAwsErrorCode(err.ErrorCode, err.Message, this.ctx(err.SecretId, undefined, "reading")));
        }
      }
      next = out.NextToken;
    } while (next);
    for (const id of ids) {
      if (found.has(id)) continue;
      const v = values.find((s) => matches(id, s));
      if (v) {
        try {
          found.set(id, this.toVersion(v, this.ctx(id, undefined, "reading")));
        } catch (e) {
          found.set(id, e as Error);
        }
      }
    }
    return found;
  }

  async describe(k: StoreKey): Promise<VersionInfo> {
    const requested = versionSelector(k.version, k.options);
    const sel = requested ?? { VersionStage: "AWSCURRENT" };
    const ctx = this.ctx(k.key, requested, "describing");
    let stages: Record<string, string[]>;
    try {
      const out = await this.client.send(new DescribeSecretCommand({ SecretId: k.key }));
      if (out.DeletedDate) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found (scheduled for deletion)`);
      stages = out.VersionIdsToStages ?? {};
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    if ("VersionStage" in sel) {
      const id = Object.keys(stages).find((v) => stages[v].includes(sel.VersionStage));
      if (id === undefined) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
      return { versionId: id };
    }
    if (stages[sel.VersionId]) return { versionId: sel.VersionId };
    // A version without any staging label is not in VersionIdsToStages but may still be readable.
    return this.describeDeprecated(k.key, sel.VersionId, ctx);
  }

  /** ListSecrets pages (100 secrets each, with their stage maps; no values) until `limit`. */
  async listCurrentVersions(limit: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let next: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListSecretsCommand({ MaxResults: 100, NextToken: next }));
        for (const sec of page.SecretList ?? []) {
          const stages = sec.SecretVersionsToStages ?? {};
          const current = Object.keys(stages).find((v) => stages[v].includes("AWSCURRENT"));
          if (!current) continue;
          if (sec.Name) out.set(sec.Name, current);
          if (sec.ARN) out.set(sec.ARN, current);
        }
        next = page.NextToken;
      } while (next && out.size < limit * 2);
    } catch (e) {
      throw mapAwsError(e, this.ctx("(list)", undefined, "listing"));
    }
    return out;
  }

  private async describeDeprecated(secretId: string, versionId: string, ctx: AwsErrorContext): Promise<VersionInfo> {
    let next: string | undefined;
    try {
      do {
        const out = await this.client.send(new ListSecretVersionIdsCommand({ SecretId: secretId, IncludeDeprecated: true, NextToken: next }));
        const v = out.Versions?.find((x) => x.VersionId === versionId);
        if (v) return { versionId, ...(isoDate(v.CreatedDate) ? { updatedAt: isoDate(v.CreatedDate) } : {}) };
        next = out.NextToken;
      } while (next);
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
  }

  /** A new AWSCURRENT version (PutSecretValue); the secret is created first when it does not exist. */
  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const ctx: AwsErrorContext = { ...this.ctx(key, undefined, "writing"), carriesValue: true };
    try {
      const out = await this.client.send(new PutSecretValueCommand({ SecretId: key, SecretString: value.reveal() }));
      return this.written(out.VersionId, ctx);
    } catch (e) {
      if (awsErrorName(e) !== "ResourceNotFoundException") throw mapAwsError(e, ctx);
    }
    if (key.startsWith("arn:")) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found (a secret is created by name, not by ARN)`);
    try {
      const out = await this.client.send(
        new CreateSecretCommand({ Name: key, SecretString: value.reveal(), ...(options?.description ? { Description: options.description } : {}) }),
      );
      return this.written(out.VersionId, ctx);
    } catch (e) {
      if (awsErrorName(e) !== "ResourceExistsException") throw mapAwsError(e, ctx);
    }
    // Created by someone else in between: write the version into it.
    try {
      const out = await this.client.send(new PutSecretValueCommand({ SecretId: key, SecretString: value.reveal() }));
      return this.written(out.VersionId, ctx);
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
  }

  /**
   * A new version labelled AWSPENDING only (AWS moves the label off an older pending version).
   * A secret that does not exist is created without a value first, so it has no AWSCURRENT.
   */
  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const ctx: AwsErrorContext = { ...this.ctx(key, { VersionStage: "AWSPENDING" }, "staging"), carriesValue: true };
    const putPending = async () =>
      this.written((await this.client.send(new PutSecretValueCommand({ SecretId: key, SecretString: value.reveal(), VersionStages: ["AWSPENDING"] }))).VersionId, ctx);
    try {
      return await putPending();
    } catch (e) {
      if (awsErrorName(e) !== "ResourceNotFoundException") throw mapAwsError(e, ctx);
    }
    if (key.startsWith("arn:")) throw new NotFoundError(`store "${this.name}": secret "${key}" not found (a secret is created by name, not by ARN)`);
    try {
      await this.client.send(new CreateSecretCommand({ Name: key, ...(options?.description ? { Description: options.description } : {}) }));
    } catch (e) {
      if (awsErrorName(e) !== "ResourceExistsException") throw mapAwsError(e, { ...this.ctx(key, undefined, "creating") });
    }
    try {
      return await putPending();
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
  }

  /**
   * Move AWSCURRENT to `versionId` (AWS moves AWSPREVIOUS to the version it left), then drop
   * AWSPENDING from it. Each call is one label move, so a crash between the two leaves a state
   * the next call finishes; promoting the current version only drops its AWSPENDING.
   */
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const ctx = this.ctx(key, { VersionId: versionId }, "promoting");
    let stages = await this.versionStages(key, ctx);
    if (stages === undefined) throw new NotFoundError(`store "${this.name}": secret "${key}" not found`);
    const current = labelled(stages, "AWSCURRENT");
    if (current !== versionId) {
      if (!stages[versionId]) await this.describeDeprecated(key, versionId, ctx); // NotFoundError for an unknown version
      try {
        await this.client.send(
          new UpdateSecretVersionStageCommand({ SecretId: key, VersionStage: "AWSCURRENT", MoveToVersionId: versionId, ...(current ? { RemoveFromVersionId: current } : {}) }),
        );
      } catch (e) {
        throw mapAwsError(e, ctx);
      }
      stages = (await this.versionStages(key, ctx)) ?? {};
    }
    if (stages[versionId]?.includes("AWSPENDING")) {
      try {
        await this.client.send(new UpdateSecretVersionStageCommand({ SecretId: key, VersionStage: "AWSPENDING", RemoveFromVersionId: versionId }));
      } catch (e) {
        throw mapAwsError(e, ctx);
      }
    }
    return { versionId };
  }

  async discardPending(key: string, versionId?: string): Promise<void> {
    const ctx = this.ctx(key, { VersionStage: "AWSPENDING" }, "discarding");
    const stages = await this.versionStages(key, ctx);
    const pending = stages && labelled(stages, "AWSPENDING");
    if (!pending || (versionId !== undefined && pending !== versionId)) return;
    try {
      await this.client.send(new UpdateSecretVersionStageCommand({ SecretId: key, VersionStage: "AWSPENDING", RemoveFromVersionId: pending }));
    } catch (e) {
      const err = mapAwsError(e, ctx);
      if (!(err instanceof NotFoundError)) throw err; // gone meanwhile: nothing to discard
    }
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const stages = await this.versionStages(key, this.ctx(key, undefined, "describing"));
    if (!stages) return {};
    const out: Partial<Record<Stage, string>> = {};
    for (const st of ["current", "previous", "pending"] as const) {
      const id = labelled(stages, STAGE_LABELS[st]);
      if (id !== undefined) out[st] = id;
    }
    return out;
  }

  /** VersionIdsToStages of a secret; undefined when it does not exist (or is scheduled for deletion). */
  private async versionStages(key: string, ctx: AwsErrorContext): Promise<Record<string, string[]> | undefined> {
    try {
      const out = await this.client.send(new DescribeSecretCommand({ SecretId: key }));
      if (out.DeletedDate) return undefined;
      return out.VersionIdsToStages ?? {};
    } catch (e) {
      if (awsErrorName(e) === "ResourceNotFoundException") return undefined;
      throw mapAwsError(e, ctx);
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new ListSecretsCommand({ MaxResults: 1 }));
    } catch (e) {
      throw mapAwsError(e, { store: this.name, subject: "the secret list", action: "checking" });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.closeCredentials();
  }

  private written(versionId: string | undefined, ctx: AwsErrorContext): VersionInfo {
    if (!versionId) throw new StoreError(`store "${this.name}": ${ctx.action} ${ctx.subject}: the service returned no version id`);
    return { versionId };
  }

  private ctx(key: string, sel: VersionSelector | undefined, action: string): AwsErrorContext {
    return { store: this.name, subject: `secret "${key}"${sel ? ` ${selectorText(sel)}` : ""}`, action };
  }

  private toVersion(out: { SecretString?: string; SecretBinary?: Uint8Array; VersionId?: string; CreatedDate?: Date }, ctx: AwsErrorContext): SecretVersion {
    const updatedAt = isoDate(out.CreatedDate);
    const base = { versionId: out.VersionId ?? "", ...(updatedAt ? { updatedAt } : {}) };
    if (out.SecretString !== undefined) return { ...base, value: new Secret(out.SecretString) };
    if (out.SecretBinary !== undefined) {
      return { ...base, value: new Secret(Buffer.from(out.SecretBinary).toString("base64")), binary: true };
    }
    throw new NotFoundError(`store "${this.name}": ${ctx.subject} has no value`);
  }
}

/** The version carrying a staging label. */
function labelled(stages: Record<string, string[]>, label: string): string | undefined {
  return Object.keys(stages).find((id) => stages[id].includes(label));
}

/** Whether a batch answer is the secret `id` names: its name, its full ARN, or its ARN without the 6-character suffix. */
function matches(id: string, s: SecretValueEntry): boolean {
  if (s.Name === id || s.ARN === id) return true;
  return id.startsWith("arn:") && s.ARN !== undefined && s.ARN.length === id.length + 7 && s.ARN.startsWith(`${id}-`);
}
