/**
 * dsops's own detection rules, line by line and synchronous: known token formats, keyword
 * assignments with high-entropy values, and long high-entropy base64/hex strings. The repository
 * scan (scan.ts) adds secretlint's recommended preset between the format rules and the weak
 * (keyword and entropy) rules. Nothing here returns a secret: a match carries the rule and a
 * masked form (the format's public prefix, then asterisks).
 */

import { DsopsError } from "../core/errors";

/** A rule: a pattern, the group holding the secret, how much of it is a public prefix. */
export interface Rule {
  readonly id: string;
  readonly description: string;
  /** Global regular expression; group `group` (default 1) is the secret. */
  readonly pattern: RegExp;
  readonly group?: number;
  /** Characters of the match shown unmasked (the token format's prefix: `AKIA`, `ghp_`). */
  readonly keep: number;
  /** Extra test on the candidate (entropy, placeholders); the whole line is given for context. */
  readonly accept?: (value: string, line: string) => boolean;
  /** Entropy rules are skipped in lock files (package-lock.json …), full of hashes. */
  readonly entropy?: boolean;
  /** The match is a marker, not a secret (a PEM header): shown as is. */
  readonly showMatch?: boolean;
  /** A heuristic (keyword or entropy), not a token format: a format rule, ours or secretlint's, found on the same span wins. */
  readonly weak?: boolean;
}

/** Shannon entropy of `s`, in bits per character. */
export function shannonEntropy(s: string): number {
  if (!s) return 0;
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * Entropy a base64 string of this length must reach. Random base64 strings reach about
 * 4.5 bits at 32 characters, 4.8 at 40 and 5.2 at 64; English identifiers stay near 4.
 */
function base64Threshold(len: number): number {
  if (len >= 64) return 4.8;
  if (len >= 40) return 4.4;
  return 4.2;
}

const PLACEHOLDER =
  /^(?:change[-_]?me|changeit|password|passwd|secret|example|dummy|sample|placeholder|redacted|hidden|none|null|nil|undefined|true|false|todo|fixme|your[-_].*|my[-_].*|x{3,}|\*{3,}|\.{3,}|<.*>|\{\{.*\}\}|\$\{.*\}?|\$\(.*\)?|%\(.*|%s|store:\/\/.*|svc:\/\/.*|op:\/\/.*|vault:.*|arn:aws:.*)$/i;
/** `process.env.X`, `os.environ["X"]`, `config.db.password`: code, not a value. */
const CODE_REFERENCE = /^(?:[A-Za-z_$][\w$]*)(?:\.[A-Za-z_$][\w$]*)+$|^(?:process\.env|os\.environ|ENV|env)\b/;

function looksLikeValue(value: string): boolean {
  if (PLACEHOLDER.test(value) || CODE_REFERENCE.test(value)) return false;
  if (/^[A-Z][A-Z0-9_]+$/.test(value)) return false; // an environment variable's name
  return value.length >= 8 && shannonEntropy(value) >= 3.0;
}

const KEYWORD =
  "(?:[A-Za-z0-9]+[_.-])*(?:password|passwd|pwd|secret|secret[_-]?key|token|auth[_-]?token|access[_-]?token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|client[_-]?secret|private[_-]?key|credentials?)";

/** The rules, most specific first: a span matched by one rule is not reported again by a later one. */
export const rules: readonly Rule[] = [
  {
    id: "private-key",
    description: "private key (PEM)",
    pattern: /(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)/g,
    keep: 0,
    showMatch: true,
  },
  { id: "aws-access-key-id", description: "AWS access key id", pattern: /\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b/g, keep: 4 },
  {
    id: "aws-secret-access-key",
    description: "AWS secret access key",
    pattern: /aws[_.-]?secret[_.-]?(?:access[_.-]?)?key["']?\s*(?::=|=|:|=>)\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
    keep: 0,
  },
  { id: "github-token", description: "GitHub token", pattern: /\b(gh[pousr]_[A-Za-z0-9]{36,251})\b/g, keep: 4 },
  { id: "github-fine-grained-token", description: "GitHub fine-grained token", pattern: /\b(github_pat_[A-Za-z0-9_]{22,255})\b/g, keep: 11 },
  { id: "slack-token", description: "Slack token", pattern: /\b(xox[abposre]-[A-Za-z0-9-]{10,})/g, keep: 5 },
  {
    id: "slack-webhook",
    description: "Slack incoming webhook URL",
    pattern: /(https:\/\/hooks\.slack\.com\/services\/T[A-Za-z0-9_]+\/B[A-Za-z0-9_]+\/[A-Za-z0-9_]+)/g,
    keep: "https://hooks.slack.com/services/".length,
  },
  { id: "stripe-secret-key", description: "Stripe live secret key", pattern: /\b((?:sk|rk)_live_[A-Za-z0-9]{16,})\b/g, keep: 8 },
  {
    id: "jwt",
    description: "JSON Web Token",
    pattern: /\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})/g,
    keep: 3,
  },
  {
    id: "generic-secret",
    description: "secret assigned in clear (keyword = high-entropy value)",
    pattern: new RegExp(`(?:^|[^A-Za-z0-9])${KEYWORD}["']?\\s*(?::=|=>|=|:)\\s*(["'\`]?)([^\\s"'\`,;()\\[\\]{}<>]+)\\1`, "gi"),
    group: 2,
    keep: 0,
    weak: true,
    accept: (v) => looksLikeValue(v),
  },
  {
    id: "high-entropy-base64",
    description: "high-entropy base64 string",
    pattern: /(?<![A-Za-z0-9+/_=-])([A-Za-z0-9+/_-]{32,}={0,2})(?![A-Za-z0-9+/_=-])/g,
    keep: 0,
    entropy: true,
    weak: true,
    accept: (v, line) => {
      const core = v.replace(/=+$/, "");
      if ((core.match(/\//g) ?? []).length > 2 || (core.match(/[-_]/g) ?? []).length > 3) return false; // paths, identifiers
      if (!/[a-z]/.test(core) || !/[A-Z]/.test(core) || (core.match(/\d/g) ?? []).length < 2) return false;
      if (/\b(?:sha\d*|integrity|hash|digest|checksum|nonce)\b|sha\d+-/i.test(line)) return false;
      return shannonEntropy(core) >= base64Threshold(core.length);
    },
  },
  {
    id: "high-entropy-hex",
    description: "high-entropy hex string (64+ digits)",
    pattern: /(?<![0-9A-Za-z])([0-9a-fA-F]{64,})(?![0-9A-Za-z])/g,
    keep: 0,
    entropy: true,
    weak: true,
    accept: (v, line) => !/\b(?:sha\d*|hash|digest|checksum|integrity|commit|fingerprint)\b/i.test(line) && shannonEntropy(v) >= 3.5,
  },
];

export const ruleIds = rules.map((r) => r.id);

/** The masked form of a secret: the format's public prefix, then asterisks (at most 16). */
export function mask(value: string, keep: number): string {
  const shown = value.slice(0, Math.min(keep, Math.max(0, value.length - 8)));
  return shown + "*".repeat(Math.max(4, Math.min(16, value.length - shown.length)));
}

/** A secret found on one line (masked; the secret itself is not kept). */
export interface LineMatch {
  readonly rule: string;
  readonly description: string;
  /** 1-based column of the secret. */
  readonly column: number;
  readonly masked: string;
  /** Length of the secret, safe to show. */
  readonly length: number;
}

/** The inline marker that silences every rule on its line. */
export const INLINE_IGNORE = /dsops:ignore\b/;

/** Longest line scanned: minified files would only cost time. */
const MAX_LINE = 10_000;

/** A match another engine (secretlint) found on a line: its span and how to show it. */
export interface ExternalMatch {
  readonly rule: string;
  readonly description: string;
  /** 0-based start and end (exclusive) on the line. */
  readonly start: number;
  readonly end: number;
  readonly masked: string;
  readonly length: number;
}

/**
 * Secrets on one line of text (no inline-marker handling). Our format rules run first, then the
 * `external` matches (secretlint's), then our weak rules; a span taken by one is not reported
 * again by a later one.
 */
export function findSecrets(
  line: string,
  opts: { disabled?: ReadonlySet<string>; noEntropy?: boolean; external?: readonly ExternalMatch[]; extra?: readonly Rule[] } = {},
): LineMatch[] {
  const text = line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line;
  const taken: Array<[number, number]> = [];
  const out: LineMatch[] = [];
  const overlaps = (start: number, end: number) => taken.some(([a, b]) => start < b && a < end);
  const runRule = (rule: Rule) => {
    if (opts.disabled?.has(rule.id) || (rule.entropy && opts.noEntropy)) return;
    rule.pattern.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = rule.pattern.exec(text))) {
      if (m[0].length === 0) rule.pattern.lastIndex++;
      const value = m[rule.group ?? 1];
      if (value === undefined) continue;
      const start = m.index + m[0].lastIndexOf(value);
      const end = start + value.length;
      if (overlaps(start, end)) continue;
      if (rule.accept && !rule.accept(value, text)) continue;
      taken.push([start, end]);
      out.push({
        rule: rule.id,
        description: rule.description,
        column: start + 1,
        masked: rule.showMatch ? value : mask(value, rule.keep),
        length: value.length,
      });
    }
  };
  for (const rule of rules) if (!rule.weak) runRule(rule);
  for (const rule of opts.extra ?? []) runRule(rule);
  for (const x of opts.external ?? []) {
    if (opts.disabled?.has(x.rule) || overlaps(x.start, x.end)) continue;
    taken.push([x.start, x.end]);
    out.push({ rule: x.rule, description: x.description, column: x.start + 1, masked: x.masked, length: x.length });
  }
  for (const rule of rules) if (rule.weak) runRule(rule);
  return out.sort((a, b) => a.column - b.column);
}

/** Lock files: full of hashes, so the entropy rules are off in them. */
export const LOCK_FILES = /(?:^|\/)(?:package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|go\.sum|Cargo\.lock|poetry\.lock|Pipfile\.lock|Gemfile\.lock|composer\.lock|flake\.lock|bun\.lockb?)$/;

/** A finding, located. */
export interface Finding extends LineMatch {
  /** worktree: the file as it is now; staged: a line added in the index; history: a line a commit added. */
  readonly source: "worktree" | "staged" | "history";
  readonly file: string;
  readonly line: number;
  /** The commit that added the line (history). */
  readonly commit?: string;
}

/**
 * The rules of `guard repo --pattern REGEX` (each a JavaScript regular expression; the whole
 * match is the secret, shown fully masked), with ids `pattern-1`, `pattern-2` … A pattern that
 * does not compile, or matches the empty string, is refused with the reason.
 */
export function patternRules(patterns: readonly string[]): Rule[] {
  return patterns.map((source, i) => {
    let pattern: RegExp;
    try {
      pattern = new RegExp(source, "g");
    } catch (e) {
      throw new DsopsError(`--pattern ${JSON.stringify(source)}: not a valid regular expression (${e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : String(e)})`, {
        hint: "JavaScript regular expression syntax, e.g. --pattern 'ACME-[0-9A-F]{32}'",
      });
    }
    if (new RegExp(source).test("")) throw new DsopsError(`--pattern ${JSON.stringify(source)}: matches the empty string`, { hint: "make it match at least one character" });
    return { id: `pattern-${i + 1}`, description: `--pattern ${source}`, pattern, group: 0, keep: 0 };
  });
}
