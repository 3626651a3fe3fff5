// @ts-check
const { existsSync, readFileSync, renameSync, writeFileSync } = require("node:fs");
const { isAbsolute, join } = require("node:path");
const { NotFoundError, Secret, StoreError } = require("@dsops/pulumi/plugin");

/**
 * @typedef {{ id: string, value: string, created: string }} Version
 * @typedef {{ versions: Version[], current?: string, previous?: string, pending?: string }} Entry
 * @typedef {{ secrets: Record<string, Entry> }} Data
 */

const STAGES = ["current", "previous", "pending"];

/**
 * Secrets in one JSON file: every version of every key, and which version is current, previous
 * and pending (the `Staging` part of the store interface, which rotation needs). Each change
 * rewrites the file through a temporary file and a rename, so a reader never sees half a file.
 * @implements {import("@dsops/pulumi/plugin").PluginStore}
 * @implements {import("@dsops/pulumi/plugin").Staging}
 */
class JsonFileStore {
  type = "acme.jsonfile";
  capabilities = { write: true, versions: true, batch: 0, binary: false, staging: true };

  /**
   * @param {string} name
   * @param {{ path: string }} settings
   * @param {import("@dsops/pulumi/plugin").StoreContext} ctx
   */
  constructor(name, settings, ctx) {
    this.name = name;
    this.file = isAbsolute(settings.path) ? settings.path : join(ctx.configDir, settings.path);
    this.clock = ctx.clock;
  }

  /** @returns {Data} */
  read() {
    if (!existsSync(this.file)) return { secrets: {} };
    try {
      const data = JSON.parse(readFileSync(this.file, "utf8"));
      if (!data || typeof data.secrets !== "object") throw new Error("no \"secrets\" object");
      return data;
    } catch (e) {
      throw new StoreError(`acme.jsonfile store "${this.name}": ${this.file} is not a store file (${e instanceof SyntaxError ? "invalid JSON" : /** @type {Error} */ (e).message})`);
    }
  }

  /** @param {Data} data */
  write(data) {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data, null, 2), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  /** @param {string} key @param {string=} version @returns {Version} */
  find(key, version) {
    const entry = this.read().secrets[key];
    if (!entry) throw new NotFoundError(`acme.jsonfile store "${this.name}": no secret "${key}"`);
    const id = version === undefined ? entry.current : STAGES.includes(version) ? entry[/** @type {"current"} */ (version)] : version;
    const v = id === undefined ? undefined : entry.versions.find((x) => x.id === id);
    if (!v) throw new NotFoundError(`acme.jsonfile store "${this.name}": secret "${key}" has no ${version === undefined ? "current" : `"${version}"`} version`);
    return v;
  }

  /** @param {import("@dsops/pulumi/plugin").StoreKey} k */
  async get(k) {
    const v = this.find(k.key, k.version);
    return { value: new Secret(v.value), versionId: v.id, updatedAt: v.created };
  }

  /** @param {import("@dsops/pulumi/plugin").StoreKey} k */
  async describe(k) {
    const v = this.find(k.key, k.version);
    return { versionId: v.id, updatedAt: v.created };
  }

  /** A new version of `key` (not yet in a stage). @param {Data} data @param {string} key @param {Secret} value */
  add(data, key, value) {
    const entry = (data.secrets[key] ??= { versions: [] });
    const id = String(entry.versions.reduce((m, v) => Math.max(m, Number(v.id)), 0) + 1);
    const created = new Date(this.clock.now()).toISOString();
    entry.versions.push({ id, value: value.reveal(), created });
    return { entry, info: { versionId: id, updatedAt: created } };
  }

  /** @param {string} key @param {Secret} value */
  async put(key, value) {
    const data = this.read();
    const { entry, info } = this.add(data, key, value);
    if (entry.current !== undefined) entry.previous = entry.current;
    entry.current = info.versionId;
    this.write(data);
    return info;
  }

  /** @param {string} key @param {Secret} value */
  async putPending(key, value) {
    const data = this.read();
    const { entry, info } = this.add(data, key, value);
    entry.pending = info.versionId;
    this.write(data);
    return info;
  }

  /** @param {string} key @param {string} versionId */
  async promote(key, versionId) {
    const data = this.read();
    const entry = data.secrets[key];
    const v = entry?.versions.find((x) => x.id === versionId);
    if (!entry || !v) throw new NotFoundError(`acme.jsonfile store "${this.name}": secret "${key}" has no version "${versionId}"`);
    if (entry.current !== versionId) {
      if (entry.current !== undefined) entry.previous = entry.current;
      entry.current = versionId;
    }
    if (entry.pending === versionId) delete entry.pending;
    this.write(data);
    return { versionId, updatedAt: v.created };
  }

  /** @param {string} key @param {string=} versionId */
  async discardPending(key, versionId) {
    const data = this.read();
    const entry = data.secrets[key];
    if (!entry || entry.pending === undefined || (versionId !== undefined && entry.pending !== versionId)) return;
    delete entry.pending;
    this.write(data);
  }

  /** @param {string} key */
  async stagesOf(key) {
    const entry = this.read().secrets[key];
    /** @type {Partial<Record<"current" | "previous" | "pending", string>>} */
    const out = {};
    if (!entry) return out;
    for (const s of /** @type {const} */ (["current", "previous", "pending"])) if (entry[s] !== undefined) out[s] = entry[s];
    return out;
  }

  /** `dsops doctor`: the file is readable (or not there yet). */
  async check() {
    this.read();
  }
}

module.exports = { JsonFileStore };
