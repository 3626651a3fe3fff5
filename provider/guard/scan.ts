import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { forEachAddedLine, git, hasCommits, repoRoot } from "./git";
import { IgnoreList } from "./ignore-list";
import { INLINE_IGNORE, LOCK_FILES, findSecrets, ruleIds, type Finding, type Rule } from "./rules";
import { SECRETLINT_PRESET, secretlintMatches, secretlintRuleIds, type LocatedMatch } from "./secretlint";

/**
 * The repository scan behind `dsops guard repo` and the pre-commit hook: the work tree, the lines
 * the staged changes add, the lines each commit of the history added; each text through our
 * format rules, secretlint's recommended preset and our keyword/entropy rules (rules.ts), with
 * `.dsopsignore` and the `dsops:ignore` line marker honoured.
 */

/** Files larger than this are not scanned in the work tree. */
export const MAX_FILE = 2 * 1024 * 1024;

/** What one scan covered. */
export interface ScanSummary {
  readonly files: number;
  readonly stagedLines: number;
  readonly commits: number;
  readonly skipped: number;
}

/** Where the lines of a text come from, for the findings. */
export interface TextOrigin {
  readonly source: Finding["source"];
  /** Relative, `/`-separated path. */
  readonly file: string;
  readonly commit?: string;
}

/** The ignore list of a repository root (`.dsopsignore`, if any), with every rule id it may name. */
export async function loadIgnoreList(root: string): Promise<IgnoreList> {
  let text = "";
  try {
    text = readFileSync(join(root, ".dsopsignore"), "utf8");
  } catch {
    // no ignore file
  }
  const external = await secretlintRuleIds();
  return new IgnoreList(text, [...ruleIds, ...external], { [SECRETLINT_PRESET]: external });
}

/**
 * Secrets in `lines` (the lines of one file, or the lines a diff added to it; `numbers[i]` is
 * the line number of `lines[i]`, default i + 1).
 */
export async function scanLines(lines: readonly string[], origin: TextOrigin, ignore: IgnoreList, numbers?: readonly number[], extra?: readonly Rule[]): Promise<Finding[]> {
  const external = new Map<number, LocatedMatch[]>();
  if (!ignore.disabledRules.has(SECRETLINT_PRESET)) {
    for (const m of await secretlintMatches(origin.file, lines.join("\n"))) {
      const list = external.get(m.lineIndex) ?? [];
      list.push(m);
      external.set(m.lineIndex, list);
    }
  }
  const noEntropy = LOCK_FILES.test(origin.file);
  const out: Finding[] = [];
  lines.forEach((text, i) => {
    if (INLINE_IGNORE.test(text)) return;
    for (const m of findSecrets(text, { disabled: ignore.disabledRules, noEntropy, external: external.get(i), extra }))
      out.push({ ...m, source: origin.source, file: origin.file, line: numbers?.[i] ?? i + 1, ...(origin.commit ? { commit: origin.commit } : {}) });
  });
  return out;
}

/** Secrets in a text (a file's content): a library entry point that needs no repository. */
export async function scanText(content: string, file: string, ignore: IgnoreList = new IgnoreList("", ruleIds)): Promise<Finding[]> {
  return scanLines(content.split(/\r?\n/), { source: "worktree", file }, ignore);
}

/** Scan the work tree: tracked files and untracked files that are not ignored. */
async function scanWorktree(root: string, ignore: IgnoreList, findings: Finding[], extra?: readonly Rule[]): Promise<{ files: number; skipped: number }> {
  const names = git(root, ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout.split("\0").filter(Boolean);
  let files = 0;
  let skipped = 0;
  for (const file of [...new Set(names)]) {
    if (ignore.ignores(file)) continue;
    const abs = join(root, file);
    let data: Buffer;
    try {
      const st = statSync(abs);
      if (!st.isFile()) continue;
      if (st.size > MAX_FILE) {
        skipped++;
        continue;
      }
      data = readFileSync(abs);
    } catch {
      continue; // deleted in the work tree
    }
    if (data.subarray(0, 8000).includes(0)) continue; // binary
    files++;
    findings.push(...(await scanLines(data.toString("utf8").split(/\r?\n/), { source: "worktree", file }, ignore, undefined, extra)));
  }
  return { files, skipped };
}

/** Scan the lines a diff adds, one (commit, file) at a time, so secretlint sees each file's added lines together. */
async function scanDiff(root: string, kind: "staged" | "history", ignore: IgnoreList, findings: Finding[], allRefs = false, extra?: readonly Rule[]) {
  let key = "";
  let origin: TextOrigin | undefined;
  let lines: string[] = [];
  let numbers: number[] = [];
  const flush = async () => {
    if (origin && lines.length) findings.push(...(await scanLines(lines, origin, ignore, numbers, extra)));
    lines = [];
    numbers = [];
  };
  const stats = await forEachAddedLine(
    root,
    kind,
    async (l) => {
      if (ignore.ignores(l.file)) return;
      const k = `${l.commit ?? ""}\0${l.file}`;
      if (k !== key) {
        await flush();
        key = k;
        origin = { source: kind, file: l.file, ...(l.commit ? { commit: l.commit } : {}) };
      }
      lines.push(l.text);
      numbers.push(l.line);
    },
    { allRefs },
  );
  await flush();
  return stats;
}

/** What to scan: the work tree, the staged changes, the history (of HEAD, or of every ref). */
export interface ScanScope {
  readonly worktree: boolean;
  readonly staged: boolean;
  readonly history: boolean;
  readonly allRefs?: boolean;
  /** Extra rules (`guard repo --pattern`), run after the token-format rules. */
  readonly extraRules?: readonly Rule[];
}

/** The result of a repository scan; `problems` are `.dsopsignore` lines that were not understood. */
export interface RepositoryScan {
  readonly root: string;
  readonly findings: Finding[];
  readonly summary: ScanSummary;
  readonly problems: readonly string[];
}

/** Scan the git repository that holds `dir`: the work tree, the staged changes and the history, as asked. */
export async function scanRepository(dir: string, what: ScanScope): Promise<RepositoryScan> {
  const root = repoRoot(dir);
  const ignore = await loadIgnoreList(root);
  const findings: Finding[] = [];
  let files = 0;
  let skipped = 0;
  let stagedLines = 0;
  let commits = 0;
  if (what.worktree) ({ files, skipped } = await scanWorktree(root, ignore, findings, what.extraRules));
  if (what.staged) stagedLines = (await scanDiff(root, "staged", ignore, findings, false, what.extraRules)).lines;
  if (what.history && hasCommits(root)) commits = (await scanDiff(root, "history", ignore, findings, what.allRefs, what.extraRules)).commits;
  return { root, findings, summary: { files, stagedLines, commits, skipped }, problems: ignore.problems };
}
