import { appendFileSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { Command } from "commander";
import { DsopsError } from "../../core/errors";
import { forEachAddedLine, git, hasCommits, repoRoot } from "../git";
import { IgnoreList, globToRegExp, scanLine, type Finding } from "../secret-scan";
import { EXIT, commandGroup, configPath, printJson, table } from "../util";

/** Files larger than this are not scanned in the work tree. */
const MAX_FILE = 2 * 1024 * 1024;

/** What one `guard repo` run covered. */
export interface ScanSummary {
  readonly files: number;
  readonly stagedLines: number;
  readonly commits: number;
  readonly skipped: number;
}

function readIgnore(root: string): IgnoreList {
  let text = "";
  try {
    text = readFileSync(join(root, ".dsopsignore"), "utf8");
  } catch {
    // no ignore file
  }
  const list = new IgnoreList(text);
  for (const p of list.problems) process.stderr.write(`warning: ${p}\n`);
  return list;
}

/** Scan the work tree: tracked files and untracked files that are not ignored. */
function scanWorktree(root: string, ignore: IgnoreList, findings: Finding[]): { files: number; skipped: number } {
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
    data
      .toString("utf8")
      .split(/\r?\n/)
      .forEach((text, i) => findings.push(...scanLine(text, { source: "worktree", file, line: i + 1 }, ignore)));
  }
  return { files, skipped };
}

async function scanDiff(root: string, kind: "staged" | "history", ignore: IgnoreList, findings: Finding[], allRefs = false) {
  return forEachAddedLine(
    root,
    kind,
    (l) => {
      if (!ignore.ignores(l.file)) findings.push(...scanLine(l.text, { source: kind, file: l.file, line: l.line, ...(l.commit ? { commit: l.commit } : {}) }, ignore));
    },
    { allRefs },
  );
}

/** Scan a repository: the work tree, the staged changes and the history, as asked. */
export async function scanRepository(
  dir: string,
  what: { worktree: boolean; staged: boolean; history: boolean; allRefs?: boolean },
): Promise<{ root: string; findings: Finding[]; summary: ScanSummary }> {
  const root = repoRoot(dir);
  const ignore = readIgnore(root);
  const findings: Finding[] = [];
  let files = 0;
  let skipped = 0;
  let stagedLines = 0;
  let commits = 0;
  if (what.worktree) ({ files, skipped } = scanWorktree(root, ignore, findings));
  if (what.staged) stagedLines = (await scanDiff(root, "staged", ignore, findings)).lines;
  if (what.history && hasCommits(root)) commits = (await scanDiff(root, "history", ignore, findings, what.allRefs)).commits;
  return { root, findings, summary: { files, stagedLines, commits, skipped } };
}

function where(f: Finding): string {
  return f.source === "history" ? `commit ${f.commit?.slice(0, 10)}` : f.source;
}

const EXAMPLE_ENV = /(?:^|\/)\.env\.(?:example|sample|template|dist|defaults)$/;

/** Patterns of files that hold rendered secrets or store data, with a path each is tested on. */
const OUTPUT_PATTERNS: ReadonlyArray<{ pattern: string; samples: string[]; allow?: RegExp; fix?: string[] }> = [
  { pattern: ".env", samples: [".env", "app/.env"] },
  // Example files are meant to be committed: allowed when tracked, and kept committable by --fix.
  { pattern: ".env.*", samples: [".env.local", ".env.production"], allow: EXAMPLE_ENV, fix: [".env.*", "!.env.example", "!.env.sample", "!.env.template"] },
  { pattern: "*.env", samples: ["production.env"] },
  { pattern: "secrets.store*", samples: ["secrets.store", "secrets.store.key"] },
  { pattern: "*.store.key", samples: ["team.store.key"] },
];

interface GitignoreCheck {
  readonly pattern: string;
  /** tracked: files matching it are committed (ignoring them now does not help); else ignored or missing. */
  readonly status: "ignored" | "missing" | "tracked";
  /** Every sample path of the pattern is git-ignored. */
  readonly ignored: boolean;
  readonly tracked: string[];
}

/** Paths the configuration writes to (file stores, their key files), relative to the repository. */
function configuredPaths(root: string, cmd: Command): OutputPattern[] {
  const out: OutputPattern[] = [];
  const standard = OUTPUT_PATTERNS.map((p) => globToRegExp(p.pattern));
  let config;
  try {
    const { loadConfigFile } = require("../../compose/config") as typeof import("../../compose/config");
    config = loadConfigFile(configPath(cmd));
  } catch {
    return out; // no (valid) configuration: the standard patterns only
  }
  for (const s of Object.values(config.stores)) {
    if (s.type !== "file") continue;
    const store = resolve(config.dir, s.path);
    for (const p of [store, s.key_file ? resolve(config.dir, s.key_file) : `${store}.key`]) {
      const rel = relative(root, p);
      if (rel.startsWith("..") || rel === "") continue;
      const posix = rel.split(sep).join("/");
      if (!standard.some((re) => re.test(posix))) out.push({ pattern: `/${posix}`, samples: [posix] });
    }
  }
  for (const t of Object.values(config.raw.templates)) {
    if (!t.out) continue;
    const rel = relative(root, resolve(config.dir, t.out));
    if (rel.startsWith("..") || rel === "") continue;
    const posix = rel.split(sep).join("/");
    if (!standard.some((re) => re.test(posix))) out.push({ pattern: `/${posix}`, samples: [posix] });
  }
  return out;
}

type OutputPattern = { pattern: string; samples: string[]; allow?: RegExp; fix?: string[] };

function checkGitignore(root: string, patterns: ReadonlyArray<OutputPattern>): GitignoreCheck[] {
  const samples = [...new Set(patterns.flatMap((p) => p.samples))];
  const r = git(root, ["check-ignore", "--no-index", "--", ...samples], { allowFail: true });
  if (r.status > 1) throw new DsopsError(`git check-ignore failed: ${r.stderr.trim()}`);
  const ignored = new Set(r.stdout.split("\n").filter(Boolean));
  const seen = new Set<string>();
  return patterns
    .filter((p) => !seen.has(p.pattern) && seen.add(p.pattern))
    .map((p) => {
      const glob = p.pattern.startsWith("/") ? `:(glob)${p.pattern.slice(1)}` : `:(glob)**/${p.pattern}`;
      const tracked = git(root, ["ls-files", "-z", "--", glob]).stdout.split("\0").filter((f) => f && !p.allow?.test(f));
      const isIgnored = p.samples.every((s) => ignored.has(s));
      const status = tracked.length ? "tracked" : isIgnored ? "ignored" : "missing";
      return { pattern: p.pattern, status, ignored: isIgnored, tracked };
    });
}

/** `dsops guard repo|gitignore`. */
export function register(program: Command): void {
  const guard = commandGroup(program, "guard", "find secrets in a git repository, and keep rendered files out of it");

  guard
    .command("repo")
    .description("scan the work tree, the staged changes and the history of a git repository for secrets; exit 1 on findings")
    .argument("[dir]", "a folder in the repository", ".")
    .option("--staged", "scan only the staged changes (what the pre-commit hook runs)")
    .option("--no-history", "skip the history")
    .option("--all", "scan the history of every branch and tag, not only HEAD")
    .option("--json", "machine-readable output")
    .action(async (dir: string, o: { staged?: boolean; history: boolean; all?: boolean; json?: boolean }) => {
      const what = o.staged ? { worktree: false, staged: true, history: false } : { worktree: true, staged: true, history: o.history, allRefs: o.all };
      const { findings, summary } = await scanRepository(dir, what);
      if (o.json) printJson({ findings, summary });
      else if (findings.length) {
        const rows = [["WHERE", "FILE", "LINE", "RULE", "MATCH"]];
        for (const f of findings) rows.push([where(f), f.file, String(f.line), f.rule, `${f.masked} (${f.length} chars)`]);
        process.stdout.write(table(rows));
      }
      const n = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
      const scanned = o.staged
        ? n(summary.stagedLines, "staged line")
        : `${n(summary.files, "file")}, ${n(summary.stagedLines, "staged line")}, ${n(summary.commits, "commit")}` +
          (summary.skipped ? ` (${n(summary.skipped, "file")} over 2 MB skipped)` : "");
      if (findings.length) {
        process.stderr.write(
          `dsops guard: ${findings.length} possible secret${findings.length === 1 ? "" : "s"} found (scanned ${scanned})\n` +
            `Remove ${findings.length === 1 ? "it" : "them"}, and rotate any real secret that was ever committed or pushed.\n` +
            `Not a secret? Add "dsops:ignore" in a comment on that line, or list the file in .dsopsignore.\n`,
        );
        process.exitCode = EXIT.user;
      } else if (!o.json) process.stderr.write(`dsops guard: no secrets found (scanned ${scanned})\n`);
    });

  guard
    .command("gitignore")
    .description("check that rendered files (.env …) and store files are git-ignored; --fix appends what is missing")
    .argument("[dir]", "a folder in the repository", ".")
    .option("--fix", "append the missing patterns to the repository's .gitignore")
    .option("--json", "machine-readable output")
    .action((dir: string, o: { fix?: boolean; json?: boolean }, cmd: Command) => {
      const root = repoRoot(dir);
      const patterns = [...OUTPUT_PATTERNS, ...configuredPaths(root, cmd)];
      let checks = checkGitignore(root, patterns);
      const missing = checks.filter((c) => !c.ignored).flatMap((c) => patterns.find((p) => p.pattern === c.pattern)?.fix ?? [c.pattern]);
      let added: string[] = [];
      if (o.fix && missing.length) {
        const file = join(root, ".gitignore");
        let current = "";
        try {
          current = readFileSync(file, "utf8");
        } catch {
          // created below
        }
        const lead = current && !current.endsWith("\n") ? "\n" : "";
        appendFileSync(file, `${lead}${current ? "\n" : ""}# dsops: rendered secrets and store files (dsops guard gitignore --fix)\n${missing.join("\n")}\n`);
        added = missing;
        checks = checkGitignore(root, patterns);
      }
      const bad = checks.filter((c) => c.status !== "ignored");
      if (o.json) printJson({ ok: bad.length === 0, patterns: checks, added });
      else {
        const rows = [["PATTERN", "STATUS"]];
        for (const c of checks)
          rows.push([c.pattern, (c.ignored ? "ignored" : "NOT IGNORED") + (c.tracked.length ? `, but TRACKED: ${c.tracked.join(", ")}` : "")]);
        process.stdout.write(table(rows));
        if (added.length) process.stderr.write(`appended ${added.length} pattern${added.length === 1 ? "" : "s"} to .gitignore\n`);
        if (bad.some((c) => !c.ignored)) process.stderr.write("run `dsops guard gitignore --fix` to append the missing patterns to .gitignore\n");
        if (bad.some((c) => c.status === "tracked"))
          process.stderr.write("committed files hold rendered secrets or store data: `git rm --cached FILE`, then rotate what they held\n");
      }
      if (bad.length) process.exitCode = EXIT.user;
    });
}
