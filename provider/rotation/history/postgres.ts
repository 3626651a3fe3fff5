import { Client, escapeIdentifier, type ClientConfig } from "pg";
import { DsopsError } from "../../core/errors";
import { HistoryWriteError, RotationInProgressError } from "../errors";
import { scrubError } from "../targets/errors";
import type { HeldLock, LockOwner, RotationRecord } from "../types";
import type { HistoryBackend, HistoryFilter } from "./types";

/**
 * Rotation records and locks in PostgreSQL, shared by every runner that reaches the database.
 * Records: table `<table>` (id primary key, indexed columns + the record as jsonb), written
 * with INSERT … ON CONFLICT. Locks: a session advisory lock per secret
 * (`pg_try_advisory_lock(hashtextextended(secret, 0))`) held on a connection of its own for the
 * rotation's duration; a runner that dies loses its session and so its lock. The holder is
 * written in `<table>_locks` (upserted under the advisory lock) so a refused run can say who.
 */
export class PostgresHistory implements HistoryBackend {
  readonly kind = "postgres";
  private client?: Promise<Client>;
  private readonly t: string;
  private readonly tl: string;

  constructor(
    private readonly config: ClientConfig,
    readonly table = "dsops_rotation_history",
    /** Values to scrub from errors (the connection's password). */
    private readonly secrets: string[] = [],
  ) {
    this.t = escapeIdentifier(table);
    this.tl = escapeIdentifier(`${table}_locks`);
  }

  private async db(): Promise<Client> {
    if (!this.client) {
      this.client = (async () => {
        const c = new Client(this.config);
        c.on("error", () => (this.client = undefined));
        try {
          await c.connect();
          // Two first connections at once would race in CREATE … IF NOT EXISTS (PostgreSQL then
          // fails one with a duplicate key in pg_type): the tables are made under a transaction
          // lock of their own, one session after the other.
          await c.query("BEGIN");
          await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`dsops history schema ${this.table}`]);
          await c.query(
            `CREATE TABLE IF NOT EXISTS ${this.t} (id text PRIMARY KEY, secret text NOT NULL, service text NOT NULL, env text NOT NULL, variable text NOT NULL, status text NOT NULL, started_at timestamptz NOT NULL, record jsonb NOT NULL)`,
          );
          await c.query(`CREATE INDEX IF NOT EXISTS ${escapeIdentifier(`${this.table}_secret_idx`)} ON ${this.t} (secret, started_at DESC)`);
          await c.query(`CREATE TABLE IF NOT EXISTS ${this.tl} (secret text PRIMARY KEY, owner jsonb NOT NULL)`);
          await c.query("COMMIT");
        } catch (e) {
          await c.end().catch(() => undefined);
          throw new DsopsError(`rotation history (postgres): ${scrubError(e, this.secrets)}`);
        }
        return c;
      })();
      this.client.catch(() => (this.client = undefined));
    }
    return this.client;
  }

  async save(rec: RotationRecord): Promise<void> {
    try {
      const c = await this.db();
      await c.query(
        `INSERT INTO ${this.t} (id, secret, service, env, variable, status, started_at, record) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, record = EXCLUDED.record`,
        [rec.id, rec.secret, rec.service, rec.env, rec.variable, rec.status, rec.startedAt, JSON.stringify(rec)],
      );
    } catch (e) {
      if (e instanceof DsopsError) throw new HistoryWriteError(e.message);
      throw new HistoryWriteError(`rotation history (postgres table ${this.table}): cannot write: ${scrubError(e, this.secrets)}`);
    }
  }

  async get(id: string): Promise<RotationRecord | undefined> {
    const c = await this.db();
    const r = await c.query<{ record: RotationRecord }>(`SELECT record FROM ${this.t} WHERE id = $1`, [id]);
    return r.rows[0]?.record;
  }

  async list(filter: HistoryFilter = {}): Promise<RotationRecord[]> {
    const c = await this.db();
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (col: string, v: unknown) => {
      args.push(v);
      where.push(`${col} = $${args.length}`);
    };
    if (filter.secret) add("secret", filter.secret);
    if (filter.service) add("service", filter.service);
    if (filter.env) add("env", filter.env);
    if (filter.variable) add("variable", filter.variable);
    if (filter.status) {
      args.push(filter.status);
      where.push(`status = ANY($${args.length})`);
    }
    where.push(`COALESCE(record->>'kind', '') ${filter.governance ? "" : "NOT "}IN ('approval', 'breakglass', 'breakglass-read')`);
    const limit = filter.limit ? ` LIMIT ${Math.floor(filter.limit)}` : "";
    const r = await c.query<{ record: RotationRecord }>(
      `SELECT record FROM ${this.t}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY started_at DESC, id DESC${limit}`,
      args,
    );
    return r.rows.map((x) => x.record);
  }

  async lock(secret: string, owner: LockOwner): Promise<HeldLock> {
    await this.db(); // tables exist
    const c = new Client(this.config);
    c.on("error", () => undefined);
    try {
      await c.connect();
    } catch (e) {
      throw new DsopsError(`rotation history (postgres): ${scrubError(e, this.secrets)}`);
    }
    const r = await c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [secret]);
    if (!r.rows[0]?.ok) {
      const h = await c.query<{ owner: LockOwner }>(`SELECT owner FROM ${this.tl} WHERE secret = $1`, [secret]).catch(() => ({ rows: [] as Array<{ owner: LockOwner }> }));
      await c.end().catch(() => undefined);
      throw new RotationInProgressError(secret, h.rows[0]?.owner);
    }
    await c.query(`INSERT INTO ${this.tl} (secret, owner) VALUES ($1, $2) ON CONFLICT (secret) DO UPDATE SET owner = EXCLUDED.owner`, [secret, JSON.stringify(owner)]);
    let released = false;
    return {
      owner,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await c.query(`DELETE FROM ${this.tl} WHERE secret = $1`, [secret]);
          await c.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [secret]);
        } finally {
          await c.end().catch(() => undefined);
        }
      },
    };
  }

  async holder(secret: string): Promise<LockOwner | undefined> {
    const c = await this.db();
    // The row may outlive a dead holder: it counts only while the advisory lock is held.
    const r = await c.query<{ owner: LockOwner; held: boolean }>(
      `SELECT l.owner, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)) AS held FROM ${this.tl} l WHERE l.secret = $1`,
      [secret],
    );
    return r.rows[0]?.held ? r.rows[0].owner : undefined;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.then((x) => x.end()).catch(() => undefined);
  }
}
