import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { DsopsError } from "../core/errors";
import { isoNow } from "../core/clock";
import { writeFileAtomic } from "../core/fsutil";

export const severities = ["low", "medium", "high", "critical"] as const;
export type Severity = (typeof severities)[number];
export const incidentStatuses = ["open", "investigating", "resolved"] as const;
export type IncidentStatus = (typeof incidentStatuses)[number];

/** One entry of an incident's history. */
export interface IncidentNote {
  /** ISO-8601, from the project clock. */
  readonly at: string;
  /** Who wrote it (the OS user name). */
  readonly by: string;
  readonly text: string;
  /** What the entry changed, as `field: old → new`. */
  readonly changes?: string[];
}

/** A leak incident: what leaked (names only, never values), how bad, what was done. */
export interface Incident {
  /** `INC-0001`, numbered per folder. */
  readonly id: string;
  created: string;
  updated: string;
  severity: Severity;
  /** The headline (`--summary`, or dsops's `--title`). */
  summary: string;
  /** What kind of leak (`--type`: free text such as `api-key`, `password`, `certificate`). */
  type?: string;
  /** The longer account (`--description`). */
  description?: string;
  /** Files that held the secret (`--file`), as given. */
  files?: string[];
  /** Commits that added it (`--commit`), as given (7 to 64 hex digits). */
  commits?: string[];
  /** Names of the affected secrets (variables, store keys), never their values. */
  secrets: string[];
  status: IncidentStatus;
  resolved?: string;
  notes: IncidentNote[];
}

const ID = /^INC-(\d{4,})$/;
/** A secret's name: a variable, a store key or reference; not a value. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_./:@#+=-]{0,199}$/;

/**
 * Incident records: one JSON file per incident in `.dsops/incidents/` beside dsops.yaml, folder
 * mode 0700 and files 0600 (a summary may name systems an attacker would like to know of),
 * each written atomically. Timestamps come from the project clock.
 */
export class IncidentBook {
  readonly dir: string;
  constructor(configDir: string) {
    this.dir = join(configDir, ".dsops", "incidents");
  }

  create(input: {
    summary: string;
    severity: Severity;
    secrets: string[];
    note?: string;
    by: string;
    type?: string;
    description?: string;
    files?: string[];
    commits?: string[];
    status?: IncidentStatus;
  }): Incident {
    const names = checkNames(input.secrets);
    const summary = checkText(input.summary, "--summary");
    const extra = {
      ...(input.type !== undefined ? { type: checkText(input.type, "--type") } : {}),
      ...(input.description !== undefined ? { description: checkText(input.description, "--description") } : {}),
      ...(input.files?.length ? { files: input.files.map((f) => checkText(f, "--file")) } : {}),
      ...(input.commits?.length ? { commits: checkCommits(input.commits) } : {}),
    };
    this.ensureDir();
    const now = isoNow();
    for (let n = this.maxNumber() + 1; ; n++) {
      const id = `INC-${String(n).padStart(4, "0")}`;
      let fd: number;
      try {
        fd = openSync(this.file(id), "wx", 0o600); // reserve the number (concurrent reports get the next one)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw e;
      }
      closeSync(fd);
      const inc: Incident = {
        id,
        created: now,
        updated: now,
        severity: input.severity,
        summary,
        ...extra,
        secrets: names,
        status: input.status ?? "open",
        notes: [{ at: now, by: input.by, text: input.note !== undefined ? checkText(input.note, "--note") : "reported" }],
      };
      this.save(inc);
      return inc;
    }
  }

  list(): Incident[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .map((f) => f.replace(/\.json$/, ""))
      .filter((id) => ID.test(id))
      .sort()
      .map((id) => this.get(id));
  }

  get(id: string): Incident {
    const norm = normalizeId(id);
    let text: string;
    try {
      text = readFileSync(this.file(norm), "utf8");
    } catch {
      throw new DsopsError(`no incident ${id}`, { hint: "dsops leak list shows them" });
    }
    try {
      return JSON.parse(text) as Incident;
    } catch {
      throw new DsopsError(`incident ${norm}: ${this.file(norm)} is not valid JSON`);
    }
  }

  /** Apply `change` to an incident and record it in its history. */
  update(
    id: string,
    change: { note?: string; severity?: Severity; summary?: string; addSecrets?: string[]; status?: IncidentStatus; by: string },
  ): Incident {
    const inc = this.get(id);
    const now = isoNow();
    const changes: string[] = [];
    if (change.severity && change.severity !== inc.severity) {
      changes.push(`severity: ${inc.severity} → ${change.severity}`);
      inc.severity = change.severity;
    }
    if (change.summary !== undefined && change.summary !== inc.summary) {
      inc.summary = checkText(change.summary, "--summary");
      changes.push("summary changed");
    }
    const added = checkNames(change.addSecrets ?? []).filter((s) => !inc.secrets.includes(s));
    if (added.length) {
      inc.secrets = [...inc.secrets, ...added];
      changes.push(`secrets: + ${added.join(", ")}`);
    }
    if (change.status && change.status !== inc.status) {
      changes.push(`status: ${inc.status} → ${change.status}`);
      inc.status = change.status;
      if (change.status === "resolved") inc.resolved = now;
      else delete inc.resolved;
    }
    if (!changes.length && change.note === undefined) throw new DsopsError("nothing to update", { hint: "pass --note, --severity, --summary or --secret" });
    inc.updated = now;
    inc.notes.push({
      at: now,
      by: change.by,
      text: change.note !== undefined ? checkText(change.note, "--note") : changes.join("; "),
      ...(changes.length ? { changes } : {}),
    });
    this.save(inc);
    return inc;
  }

  private save(inc: Incident): void {
    writeFileAtomic(this.file(inc.id), JSON.stringify(inc, null, 2) + "\n", 0o600);
  }

  private file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  private maxNumber(): number {
    try {
      return Math.max(0, ...readdirSync(this.dir).map((f) => ID.exec(f.replace(/\.json$/, ""))?.[1]).filter(Boolean).map(Number));
    } catch {
      return 0;
    }
  }
}

/** `7`, `inc-7`, `INC-0007` all name INC-0007. */
export function normalizeId(id: string): string {
  const m = /^(?:inc-)?(\d+)$/i.exec(id.trim());
  if (!m) throw new DsopsError(`${id}: not an incident id (INC-0001)`);
  return `INC-${m[1].padStart(4, "0")}`;
}

/** Commit ids: 7 to 64 hex digits (SHA-1 or SHA-256, abbreviated or not). */
function checkCommits(commits: string[]): string[] {
  const out = commits.flatMap((c) => c.split(",")).map((c) => c.trim()).filter(Boolean);
  for (const c of out) if (!/^[0-9a-f]{7,64}$/i.test(c)) throw new DsopsError(`--commit ${c}: not a commit id (7 to 64 hex digits)`, { hint: "git log --oneline shows them" });
  return [...new Set(out.map((c) => c.toLowerCase()))];
}

function checkText(text: string, what: string): string {
  const t = text.trim();
  if (!t) throw new DsopsError(`${what} is empty`);
  return t;
}

/**
 * Affected secrets are names. A "name" that looks like a credential (a known token format, or a
 * long high-entropy string) is refused, so a value pasted by mistake never lands in a record.
 */
function checkNames(names: string[]): string[] {
  const { findSecrets } = require("./rules") as typeof import("./rules");
  const out: string[] = [];
  for (const n of names.flatMap((x) => x.split(",")).map((x) => x.trim()).filter(Boolean)) {
    if (!NAME.test(n)) throw new DsopsError("--secret: not a secret name (a name is letters, digits and _ . / : @ # + = -, without spaces)", {
        hint: "record the variable or key name, never the value",
      });
    if (findSecrets(n).length)
      throw new DsopsError("--secret: that looks like a secret value, not a name; record the variable or key name only", {
        hint: "if the value did leak, rotate it now",
      });
    if (!out.includes(n)) out.push(n);
  }
  return out;
}
