import type { Command } from "commander";
import { repoRoot } from "../../guard/git";
import { OUTPUT_PATTERNS, appendToGitignore, checkGitignore, configuredPaths, missingPatterns } from "../../guard/gitignore";
import { patternRules, type Finding } from "../../guard/rules";
import { scanRepository } from "../../guard/scan";
import { EXIT, commandGroup, configPath, printJson, table } from "../util";

/** The configuration at `file`, or undefined when there is none or it does not load (the standard patterns are checked then). */
function configIfValid(file: string) {
  try {
    const { loadConfigFile } = require("../../compose/config") as typeof import("../../compose/config");
    return loadConfigFile(file);
  } catch {
    return undefined;
  }
}

function where(f: Finding): string {
  return f.source === "history" ? `commit ${f.commit?.slice(0, 10)}` : f.source;
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
    .option("--pattern <regex>", "also report what this regular expression matches (repeatable; rule pattern-N)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--exit-code <n>", "exit with this code (0-255) when secrets are found", "1")
    .action(async (dir: string, o: { staged?: boolean; history: boolean; all?: boolean; json?: boolean; pattern: string[]; exitCode: string }, cmd: Command) => {
      const exitCode = Number(o.exitCode);
      if (!/^\d+$/.test(o.exitCode) || exitCode > 255) cmd.error(`error: option '--exit-code <n>' must be a whole number from 0 to 255, not "${o.exitCode}"`, { exitCode: EXIT.usage });
      let extraRules;
      try {
        extraRules = patternRules(o.pattern);
      } catch (e) {
        // A pattern that cannot be used is a bad option value: a usage error.
        const hint = (e as { hint?: string }).hint;
        cmd.error(`error: ${(e as Error).message}${hint ? `\nhint: ${hint}` : ""}`, { exitCode: EXIT.usage });
      }
      const scope = o.staged ? { worktree: false, staged: true, history: false } : { worktree: true, staged: true, history: o.history, allRefs: o.all };
      const what = { ...scope, extraRules };
      const { findings, summary, problems } = await scanRepository(dir, what);
      for (const p of problems) process.stderr.write(`warning: ${p}\n`);
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
        process.exitCode = exitCode;
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
      const patterns = [...OUTPUT_PATTERNS, ...configuredPaths(root, configIfValid(configPath(cmd)))];
      let checks = checkGitignore(root, patterns);
      const missing = missingPatterns(checks, patterns);
      let added: string[] = [];
      if (o.fix && missing.length) {
        appendToGitignore(root, missing);
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
