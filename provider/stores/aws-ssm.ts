// Over 400 lines on purpose: one file per store type (the registry's rule); SSM's reads, batch reads,
// writes, version labels (rotation staging) and listings are that one type's surface.
import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
  UnlabelParameterVersionCommand,
  type GetParametersCommandOutput,
  type Parameter,
} from "@aws-sdk/client-ssm";
import { AuthError, DsopsError, NotFoundError, StoreError } from "../core/errors";
import { Secret } from "../core/secret";
import {
  awsErrorName,
  batchFallsBack,
  chunks,
  isoDate,
  mapAwsError,
  settleEach,
  type AwsErrorContext,
} from "./aws-common";
import { awsStoreClientConfig, dropRefusedCredentials, type AwsClientSetup } from "./aws-credentials";
import type { StoreSettings } from "./settings";
import type { PutOptions, SecretVersion, Stage, Staging, Store, StoreCapabilities, StoreContext, StoreKey, VersionInfo } from "./types";

type SsmSettings = Extract<StoreSettings, { type: "aws.ssm" }>;

/** Most names one GetParameters call takes. */
const BATCH = 10;

/**
 * The version labels of the rotation stages (a stage name read as a version reads its label).
 * `discarded` marks a discarded pending version of a parameter that has no current version
 * (a first rotation abandoned), so that it is not taken for the current one.
 */
const CURRENT = "current";
const PREVIOUS = "previous";
const PENDING = "pending";
const DISCARDED = "discarded";

/** One version of a parameter, as GetParameterHistory lists it (its value is dropped). */
interface HistoryEntry {
  readonly version: number;
  readonly labels: readonly string[];
  readonly date?: Date;
}

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
 *
 * Rotation staging: the pending value is a new parameter version labelled `pending`
 * (LabelParameterVersion); the stages are the labels `current`, `previous` and `pending`, so a
 * version keeps its number from putPending to promote and promote copies nothing. The label
 * `current` is set only while the current version is not the latest one (during a rotation,
 * after a rollback or a discarded rotation); without it the latest version is current. A read
 * of the bare name (or of "current") asks for `name:current` beside `name` (concurrently) and
 * takes the labelled version when there is one. Readers outside dsops that read the bare name
 * get the latest version: they may see the pending value for the duration of a rotation (and
 * not a rolled-back value); dsops readers never do, except on a parameter's very first
 * rotation, which has no current version to fall back to (an explicit "current" read then says
 * NotFoundError). While `current` is set, a version written by another client is not current
 * for dsops until promoted. Discarding a pending version only removes its label (SSM cannot
 * delete one version).
 */
export class AwsSsmStore implements Store, Staging {
  readonly type = "aws.ssm" as const;
  readonly capabilities: StoreCapabilities = { write: true, versions: true, batch: BATCH, binary: false, staging: true };
  private readonly client: SSMClient;
  private readonly closeCredentials: () => void;
  private readonly withDecryption: boolean;
  /** Set once a batch or describe call was refused by IAM: use GetParameter from then on. */
  private batchRefused = false;
  private describeRefused = false;

  constructor(
    readonly name: string,
    private readonly settings: SsmSettings,
    ctx: StoreContext,
    shared?: AwsClientSetup,
  ) {
    // The `aws` router passes the client configuration all its services share (one set of credentials).
    const setup = shared ?? awsStoreClientConfig(name, settings, ctx.env, ctx.clock);
    this.client = new SSMClient(setup.config);
    dropRefusedCredentials(this.client, setup.onRefused);
    this.closeCredentials = setup.close;
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

  /** A read by ref: the bare name and "current" follow the `current` label. */
  private read(r: ParameterRef): Promise<SecretVersion> {
    if (r.selector === undefined) return this.readCurrent(r, false);
    if (r.selector === CURRENT) return this.readCurrent(plainRef(r.name), true);
    return this.readExact(r);
  }

  /**
   * `name:current` and `name` at once; the labelled version when there is one, else the latest.
   * `strict` (an explicit "current"): the latest only when it is not a pending or discarded version.
   */
  private async readCurrent(r: ParameterRef, strict: boolean): Promise<SecretVersion> {
    const labelled = labelRef(r.name, CURRENT);
    // A failure of the labelled read (other than no such label) fails the read at once.
    const [cur, bare] = await Promise.all([
      this.readExact(labelled).catch((e: unknown) => {
        if (e instanceof NotFoundError) return undefined;
        throw e;
      }),
      this.readExact(r).catch((e: unknown) => (e instanceof Error ? e : new DsopsError(String(e)))),
    ]);
    if (cur) return cur;
    if (bare instanceof Error) throw bare;
    if (strict) {
      const st = stagesFrom((await this.history(r.name, this.ctx(labelled, "reading"))) ?? []);
      if (st.current !== bare.versionId) throw new NotFoundError(`store "${this.name}": ${this.ctx(labelled, "reading").subject} not found (no current version)`);
    }
    return bare;
  }

  private async readExact(r: ParameterRef): Promise<SecretVersion> {
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
      // ARNs (shared parameters) are read one by one: answers name them differently. So is an
      // explicit "current" (it checks the stages when the parameter has no `current` label).
      if (this.batchRefused || r.name.startsWith("arn:") || r.selector === CURRENT || batchNames.has(norm)) single.push(r);
      else batchNames.set(norm, r);
    });
    const put = (full: string, v: SecretVersion | Error) => {
      for (const i of slots.get(full) ?? []) results[i] = v;
    };

    await Promise.all(
      chunks([...batchNames.values()], BATCH).map(async (batch) => {
        // Bare names follow the `current` label: `name:current` is asked in a second call at once.
        const following = batch.filter((r) => r.selector === undefined);
        let out: GetParametersCommandOutput;
        let labelled: GetParametersCommandOutput | undefined;
        try {
          [out, labelled] = await Promise.all([
            this.client.send(new GetParametersCommand({ Names: batch.map((r) => r.full), WithDecryption: this.withDecryption })),
            following.length ? this.client.send(new GetParametersCommand({ Names: following.map((r) => labelRef(r.name, CURRENT).full), WithDecryption: this.withDecryption })) : undefined,
          ]);
        } catch (e) {
          const err = mapAwsError(e, { store: this.name, subject: `${batch.length} parameters`, action: "batch reading" });
          if (!batchFallsBack(err)) throw err; // the engine retries the whole call
          if (err instanceof AuthError) this.batchRefused = true;
          single.push(...batch); // e.g. one malformed name fails the whole call: give each key its own answer
          return;
        }
        const invalid = new Set(out.InvalidParameters ?? []);
        const unlabelled = new Set(labelled?.InvalidParameters ?? []);
        for (const r of batch) {
          if (r.selector === undefined && labelled) {
            const lr = labelRef(r.name, CURRENT);
            const p = unlabelled.has(lr.full) ? undefined : labelled.Parameters?.find((x) => answers(lr, x));
            if (p) {
              put(r.full, toVersion(p));
              continue;
            }
          }
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
    if (r.selector === CURRENT) {
      const ctx = this.ctx(r, "describing");
      const hist = await this.history(r.name, ctx);
      const v = hist && stagesFrom(hist).current;
      const e = v === undefined ? undefined : hist?.find((x) => String(x.version) === v);
      if (!e) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
      return info(e.version, e.date);
    }
    if (r.selector !== undefined) return this.describeExact(r);
    // The bare name: the version labelled `current`, else the latest.
    const [cur, bare] = await Promise.allSettled([this.describeExact(labelRef(r.name, CURRENT)), this.describeExact(r)]);
    if (cur.status === "fulfilled") return cur.value;
    if (!(cur.reason instanceof NotFoundError)) throw cur.reason;
    if (bare.status === "rejected") throw bare.reason;
    return bare.value;
  }

  private async describeExact(r: ParameterRef): Promise<VersionInfo> {
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
    let written: VersionInfo;
    try {
      const out = await this.client.send(new PutParameterCommand({ Name: r.name, Value: value.reveal(), Overwrite: true, ...description }));
      written = this.written(out.Version, ctx);
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    await this.afterPut(r, Number(written.versionId));
    return written;
  }

  /** After `put` on a parameter with rotation labels: the old current version becomes previous, and `current` goes (the new version is the latest). */
  private async afterPut(r: ParameterRef, v: number): Promise<void> {
    const ctx = this.ctx(r, "labelling");
    const hist = await this.history(r.name, ctx);
    if (!hist?.some((x) => x.labels.some((l) => l === CURRENT || l === PREVIOUS || l === PENDING))) return;
    const labelledCurrent = hist.find((x) => x.labels.includes(CURRENT));
    const before = labelledCurrent?.version ?? stagesFrom(hist.filter((x) => x.version < v)).current;
    if (before !== undefined && Number(before) !== v) await this.label(r.name, PREVIOUS, Number(before), ctx);
    if (labelledCurrent) await this.unlabel(r.name, CURRENT, labelledCurrent.version, ctx);
  }

  // ---------------------------------------------------------------------------------------
  // Rotation staging

  /** The parameter a staging call names (no selector). */
  private stagingRef(key: string, action: string): ParameterRef {
    const r = this.ref({ key });
    if (r.selector) throw new DsopsError(`store "${this.name}": cannot ${action} parameter "${r.full}": drop the ":${r.selector}"`);
    return r;
  }

  /**
   * A new version labelled `pending` (the label leaves an older pending version). The current
   * version is labelled `current` first, so readers keep getting it once the new one is the latest.
   */
  async putPending(key: string, value: Secret, options?: PutOptions): Promise<VersionInfo> {
    const r = this.stagingRef(key, "stage");
    const ctx: AwsErrorContext = { ...this.ctx(r, "staging"), carriesValue: true };
    const hist = await this.history(r.name, ctx);
    if (hist) {
      const current = stagesFrom(hist).current;
      if (current !== undefined && !hist.find((x) => x.labels.includes(CURRENT))) await this.label(r.name, CURRENT, Number(current), ctx);
    }
    let version: number | undefined;
    try {
      const out = await this.client.send(
        hist
          ? new PutParameterCommand({ Name: r.name, Value: value.reveal(), Overwrite: true })
          : new PutParameterCommand({ Name: r.name, Value: value.reveal(), Type: "SecureString", Overwrite: false, ...(options?.description ? { Description: options.description } : {}) }),
      );
      version = out.Version;
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    const written = this.written(version, ctx);
    await this.label(r.name, PENDING, Number(written.versionId), ctx);
    return written;
  }

  /**
   * Label `previous` the version current until now, then `current` the promoted one (unless it
   * is the latest version, which is current without a label), then drop its `pending`. Every
   * label move is one call, so a crash between them leaves a state the next call finishes.
   */
  async promote(key: string, versionId: string): Promise<VersionInfo> {
    const r = this.stagingRef(key, "promote");
    const ctx = this.ctx(labelRef(r.name, versionId), "promoting");
    const hist = await this.history(r.name, ctx);
    if (!hist) throw new NotFoundError(`store "${this.name}": parameter "${r.name}" not found`);
    const entry = /^\d+$/.test(versionId) ? hist.find((x) => String(x.version) === versionId) : undefined;
    if (!entry) throw new NotFoundError(`store "${this.name}": ${ctx.subject} not found`);
    const v = entry.version;
    const st = stagesFrom(hist);
    const labelled = (l: string) => hist.find((x) => x.labels.includes(l))?.version;
    if (st.current !== undefined && st.current !== versionId && labelled(PREVIOUS) !== Number(st.current)) {
      await this.label(r.name, PREVIOUS, Number(st.current), ctx);
    }
    const latest = Math.max(...hist.map((x) => x.version));
    if (v !== latest && labelled(CURRENT) !== v) await this.label(r.name, CURRENT, v, ctx);
    if (entry.labels.includes(PENDING)) await this.unlabel(r.name, PENDING, v, ctx);
    if (entry.labels.includes(DISCARDED)) await this.unlabel(r.name, DISCARDED, v, ctx);
    const pinned = labelled(CURRENT);
    if (v === latest && pinned !== undefined) await this.unlabel(r.name, CURRENT, pinned, ctx);
    return info(v, entry.date);
  }

  /** Remove the `pending` label (from `versionId` only, when given); SSM keeps the version itself. */
  async discardPending(key: string, versionId?: string): Promise<void> {
    const r = this.stagingRef(key, "discard the pending version of");
    const ctx = this.ctx(labelRef(r.name, PENDING), "discarding");
    const hist = await this.history(r.name, ctx);
    const pending = hist?.find((x) => x.labels.includes(PENDING));
    if (!hist || !pending || (versionId !== undefined && String(pending.version) !== versionId)) return;
    // With no current version, the unlabelled latest version would read as current: mark it.
    if (stagesFrom(hist).current === undefined) await this.label(r.name, DISCARDED, pending.version, ctx);
    await this.unlabel(r.name, PENDING, pending.version, ctx);
  }

  async stagesOf(key: string): Promise<Partial<Record<Stage, string>>> {
    const r = this.stagingRef(key, "read the stages of");
    const hist = await this.history(r.name, this.ctx(r, "describing"));
    return hist ? stagesFrom(hist) : {};
  }

  /** Every version of a parameter with its labels (GetParameterHistory, without decryption; values dropped); undefined when it does not exist. */
  private async history(name: string, ctx: AwsErrorContext): Promise<HistoryEntry[] | undefined> {
    const out: HistoryEntry[] = [];
    let next: string | undefined;
    try {
      do {
        const page = await this.client.send(new GetParameterHistoryCommand({ Name: name, WithDecryption: false, MaxResults: 50, NextToken: next }));
        for (const p of page.Parameters ?? []) {
          if (p.Version !== undefined) out.push({ version: p.Version, labels: p.Labels ?? [], ...(p.LastModifiedDate ? { date: p.LastModifiedDate } : {}) });
        }
        next = page.NextToken;
      } while (next);
    } catch (e) {
      if (awsErrorName(e) === "ParameterNotFound") return undefined;
      throw mapAwsError(e, ctx);
    }
    return out;
  }

  /** Attach `label` to `version` (SSM moves it off any other version of the parameter). */
  private async label(name: string, label: string, version: number, ctx: AwsErrorContext): Promise<void> {
    let invalid: string[] | undefined;
    try {
      invalid = (await this.client.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: [label] }))).InvalidLabels;
    } catch (e) {
      throw mapAwsError(e, ctx);
    }
    if (invalid?.length) throw new StoreError(`store "${this.name}": ${ctx.action} ${ctx.subject}: the service refused the label "${label}"`);
  }

  private async unlabel(name: string, label: string, version: number, ctx: AwsErrorContext): Promise<void> {
    try {
      await this.client.send(new UnlabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: [label] }));
    } catch (e) {
      const err = mapAwsError(e, ctx);
      if (!(err instanceof NotFoundError)) throw err; // gone meanwhile: nothing to remove
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
    this.closeCredentials();
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

function plainRef(name: string): ParameterRef {
  return { name, full: name };
}

function labelRef(name: string, selector: string): ParameterRef {
  return { name, selector, full: `${name}:${selector}` };
}

/**
 * The stages of a parameter: its labels; without a `current` label, the latest version is
 * current unless it is the pending (or a discarded) version of a first rotation.
 */
function stagesFrom(hist: readonly HistoryEntry[]): Partial<Record<Stage, string>> {
  const labelled = (l: string) => hist.find((x) => x.labels.includes(l));
  const out: Partial<Record<Stage, string>> = {};
  let current = labelled(CURRENT);
  if (!current && hist.length) {
    const latest = hist.reduce((a, b) => (b.version > a.version ? b : a));
    if (!latest.labels.includes(PENDING) && !latest.labels.includes(DISCARDED)) current = latest;
  }
  if (current) out.current = String(current.version);
  const previous = labelled(PREVIOUS);
  if (previous) out.previous = String(previous.version);
  const pending = labelled(PENDING);
  if (pending) out.pending = String(pending.version);
  return out;
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
