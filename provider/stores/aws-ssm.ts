import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParametersCommand,
  PutParameterCommand,
  SSMClient,
  type Parameter,
} from "@aws-sdk/client-ssm";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../engine/errors";
import { Secret } from "../engine/secret";
import {
  awsClientConfig,
  awsErrorName,
  batchFallsBack,
  chunks,
  isoDate,
  mapAwsError,
  settleEach,
  type AwsErrorContext,
} from "./aws-common";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type SsmSettings = Extract<StoreSettings, { type: "aws.ssm" }>;

/** Most names one GetParameters call takes. */
const BATCH = 10;

/** A parameter as asked for: its name (or ARN) and an optional version number or label. */
interface ParameterRef {
  /** Full parameter name after the prefix is applied, or the ARN, without selector. */
  readonly name: string;
  /** Version number (`3`) or label (`blue`), when one was asked for. */
  readonly selector?: string;
  /** What GetParameter(s) is sent: `name` or `name:selector`. */
  readonly full: string;
}

/**
 * AWS Systems Manager Parameter Store, through @aws-sdk/client-ssm.
 *
 * Keys: a parameter name; one not starting with `/` (nor `arn:`) is joined to
 * `parameter_prefix` (`/myapp/prod` + `db/url` → `/myapp/prod/db/url`). A key may carry SSM's own
 * selector (`/app/db:3`, `/app/db:blue`); a reference's `version` replaces it. Version numbers
 * are the version ids (`"3"`); labels (which cannot start with a digit) read the version they label.
 * SecureString parameters are decrypted unless `with_decryption: false`.
 * `getMany` uses GetParameters (10 names a call). Writes create SecureString parameters.
 */
export class AwsSsmStore implements Store {
  readonly type = "aws.ssm" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: BATCH, binary: false };
  private readonly client: SSMClient;
  private readonly withDecryption: boolean;
  /** Set once a batch or describe call was refused by IAM: use GetParameter from then on. */
  private batchRefused = false;
  private describeRefused = false;

  constructor(
    readonly name: string,
    private readonly settings: SsmSettings,
    ctx: StoreContext,
  ) {
    this.client = new SSMClient(awsClientConfig(name, settings, ctx.env));
    this.withDecryption = settings.with_decryption !== false;
  }

  /** The parameter a key and version name. */
  ref(k: StoreKey): ParameterRef {
    let base = k.key;
    let selector: string | undefined;
    // Parameter names cannot hold ':'. In an ARN the selector can only follow the `parameter/…` part.
    const arnPath = base.startsWith("arn:") ? base.indexOf(":parameter/") : -1;
    const colon = base.startsWith("arn:") ? (arnPath < 0 ? -1 : base.indexOf(":", arnPath + 1)) : base.indexOf(":");
    if (colon >= 0) {
      selector = base.slice(colon + 1);
      base = base.slice(0, colon);
    }
    if (k.version !== undefined && k.version !== "") selector = k.version;
    const name = base.startsWith("/") || base.startsWith("arn:") || !this.settings.parameter_prefix ? base : joinPrefix(this.settings.parameter_prefix, base);
    return { name, selector, full: selector ? `${name}:${selector}` : name };
  }

  get(k: StoreKey): Promise<SecretVersion> {
    return this.read(this.ref(k));
  }

  private async read(r: ParameterRef): Promise<SecretVersion> {
    const ctx = this.ctx(r, "reading");
    let p: Parameter | undefined;
    try {
      p = (await this.client.send(new GetParameterCommand({ Name: r.full, WithDecryption: this.withDecryption }))).Parameter;
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    if (!p) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
    return toVersion(p);
  }

  async getMany(keys: readonly StoreKey[]): Promise<Array<SecretVersion | Error>> {
    const refs = keys.map((k) => this.ref(k));
    const results: Array<SecretVersion | Error | undefined> = new Array(keys.length);
    // One entry per distinct request; in a batch, one request per parameter, so every answer
    // (which carries the parameter's name, not the selector) maps back to one request.
    const slots = new Map<string, number[]>();
    const batchNames = new Map<string, ParameterRef>(); // normalized name → ref
    const single: ParameterRef[] = [];
    refs.forEach((r, i) => {
      const seen = slots.get(r.full);
      slots.set(r.full, [...(seen ?? []), i]);
      if (seen) return;
      const norm = normalize(r.name);
      // ARNs (shared parameters) are read one by one: answers name them differently.
      if (this.batchRefused || r.name.startsWith("arn:") || batchNames.has(norm)) single.push(r);
      else batchNames.set(norm, r);
    });
    const put = (full: string, v: SecretVersion | Error) => {
      for (const i of slots.get(full) ?? []) results[i] = v;
    };

    await Promise.all(
      chunks([...batchNames.values()], BATCH).map(async (batch) => {
        let out;
        try {
          out = await this.client.send(new GetParametersCommand({ Names: batch.map((r) => r.full), WithDecryption: this.withDecryption }));
        } catch (e) {
          const err = mapAwsError(e, { store: this.name, subject: `${batch.length} parameters`, action: "batch reading" });
          if (!batchFallsBack(err)) throw err; // the engine retries the whole call
          if (err instanceof AuthError) this.batchRefused = true;
          single.push(...batch); // e.g. one malformed name fails the whole call: give each key its own answer
          return;
        }
        const invalid = new Set(out.InvalidParameters ?? []);
        for (const r of batch) {
          if (invalid.has(r.full)) {
            put(r.full, new NotFoundError(`store "${this.name}": ${this.ctx(r, "reading").subject} not found`));
            continue;
          }
          const p = out.Parameters?.find((x) => answers(r, x));
          if (p) put(r.full, toVersion(p));
          else single.push(r);
        }
      }),
    );
    const alone = await settleEach(single, (r) => this.read(r));
    single.forEach((r, j) => put(r.full, alone[j]));
    return results.map((r) => r ?? new DsopsError(`store "${this.name}": no result`));
  }

  /**
   * The current version's number and date. Without a selector, DescribeParameters (filter
   * Name Equals) answers without any value. With a selector, for an ARN, or when IAM refuses
   * DescribeParameters, GetParameter with WithDecryption false: the (still encrypted, for
   * SecureString) value comes over the wire and is dropped here.
   */
  async describe(k: StoreKey): Promise<VersionInfo> {
    const r = this.ref(k);
    const ctx = this.ctx(r, "describing");
    if (!r.selector && !r.name.startsWith("arn:") && !this.describeRefused) {
      try {
        const out = await this.client.send(
          new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Option: "Equals", Values: [r.name] }] }),
        );
        const p = out.Parameters?.find((x) => x.Name !== undefined && normalize(x.Name) === normalize(r.name));
        if (!p || p.Version === undefined) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
        return info(p.Version, p.LastModifiedDate);
      } catch (e) {
        const err = mapAwsError(e, ctx);
        if (!(err instanceof AuthError)) throw err;
        this.describeRefused = true;
      }
    }
    let p: Parameter | undefined;
    try {
      p = (await this.client.send(new GetParameterCommand({ Name: r.full, WithDecryption: false }))).Parameter;
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    if (!p || p.Version === undefined) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
    return info(p.Version, p.LastModifiedDate);
  }

  /**
   * A new version. A parameter that does not exist is created as SecureString; an existing one
   * is overwritten without naming a type, so it keeps its type and KMS key.
   */
  async put(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const r = this.ref({ key });
    const ctx: AwsErrorContext = { ...this.ctx(r, "writing"), carriesValue: true };
    if (r.selector) throw new DsopsError(`store "${this.name}": cannot write ${ctx.subject}: a write creates a new version, drop the ":${r.selector}"`);
    const description = options?.description ? { Description: options.description } : {};
    try {
      const out = await this.client.send(
        new PutParameterCommand({ Name: r.name, Value: value.reveal(), Type: "SecureString", Overwrite: false, ...description }),
      );
      return this.written(out.Version, ctx);
    } catch (e) {
      if (awsErrorName(e) !== "ParameterAlreadyExists") throw mapAwsError(e, ctx);
    }
    try {
      const out = await this.client.send(new PutParameterCommand({ Name: r.name, Value: value.reveal(), Overwrite: true, ...description }));
      return this.written(out.Version, ctx);
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new DescribeParametersCommand({ MaxResults: 1 }));
    } catch (e) {
      throw mapAwsError(e, { store: this.name, subject: "the parameter list", action: "checking" });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private written(version: number | undefined, ctx: AwsErrorContext): VersionInfo {
    if (version === undefined) throw new StoreError(`store "${this.name}": ${ctx.action} ${ctx.subject}: the service returned no version`);
    return { versionId: String(version) };
  }

  private ctx(r: ParameterRef, action: string): AwsErrorContext {
    return { store: this.name, subject: `parameter "${r.full}"`, action };
  }
}

/** `/myapp/prod` + `db/url` → `/myapp/prod/db/url`. */
export function joinPrefix(prefix: string, key: string): string {
  const p = prefix.replace(/\/+$/, "");
  return p === "" ? key : `${p}/${key.replace(/^\/+/, "")}`;
}

/** SSM treats `/name` and `name` as the same top-level parameter. */
function normalize(name: string): string {
  return name.replace(/^\/+/, "");
}

/** Whether a GetParameters answer is the one for `r` (one request per parameter in a batch). */
function answers(r: ParameterRef, p: Parameter): boolean {
  if (p.Name === undefined || normalize(p.Name) !== normalize(r.name)) return false;
  if (p.Selector !== undefined && r.selector !== undefined) return p.Selector === `:${r.selector}`;
  // A version number asked for must be the version answered.
  if (r.selector !== undefined && /^\d+$/.test(r.selector)) return String(p.Version) === r.selector;
  return true;
}

function toVersion(p: Parameter): SecretVersion {
  const updatedAt = isoDate(p.LastModifiedDate);
  return { value: new Secret(p.Value ?? ""), versionId: String(p.Version ?? ""), ...(updatedAt ? { updatedAt } : {}) };
}

function info(version: number, date: Date | undefined): VersionInfo {
  const updatedAt = isoDate(date);
  return { versionId: String(version), ...(updatedAt ? { updatedAt } : {}) };
}
