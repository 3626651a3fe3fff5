import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { DsopsError } from "../core/errors";

/**
 * The git plumbing the repository scan and the pre-commit hook use: the git CLI, run in the repository. Paths are
 * printed verbatim (core.quotePath off); no external diff driver or colour is used.
 */
const BASE = ["-c", "core.quotePath=false", "-c", "color.ui=false"];

export function git(cwd: string, args: string[], opts: { allowFail?: boolean; input?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync("git", [...BASE, ...args], { cwd, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, input: opts.input });
  if (r.error) throw new DsopsError(`cannot run git: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`, { hint: "install git" });
  if (r.status !== 0 && !opts.allowFail) throw new DsopsError(`git ${args[0]} failed: ${r.stderr.trim().split("\n")[0]}`);
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The top folder of the work tree that holds `dir`. */
export function repoRoot(dir: string): string {
  const r = git(dir, ["rev-parse", "--show-toplevel"], { allowFail: true });
  if (r.status !== 0) throw new DsopsError(`${dir} is not inside a git repository`, { hint: "run it in a repository, or `git init` first" });
  return r.stdout.trim();
}

/** True when the repository has at least one commit. */
export function hasCommits(root: string): boolean {
  return git(root, ["rev-parse", "--verify", "-q", "HEAD"], { allowFail: true }).status === 0;
}

/** One added line of a diff. */
export interface AddedLine {
  readonly file: string;
  /** Line number in the new version of the file. */
  readonly line: number;
  readonly text: string;
  /** The commit, for `git log -p`. */
  readonly commit?: string;
}

/** Marker line between commits of `git log -p`. */
const COMMIT_MARK = "\u0001dsops-commit ";

/**
 * Stream the lines a diff adds (`git diff --cached`, `git log -p`), with their file and line
 * number, without holding the whole history in memory (`onLine` may return a promise: the
 * next line waits for it). Counts what it saw in `stats`.
 */
export async function forEachAddedLine(
  root: string,
  kind: "staged" | "history",
  onLine: (l: AddedLine) => void | Promise<void>,
  opts: { allRefs?: boolean } = {},
): Promise<{ commits: number; files: number; lines: number }> {
  const args =
    kind === "staged"
      ? [...BASE, "diff", "--cached", "--no-ext-diff", "--no-textconv", "-U0", "--diff-filter=ACMRT"]
      : [...BASE, "log", "-p", "--no-ext-diff", "--no-textconv", "-U0", "--diff-filter=ACMRT", `--format=${COMMIT_MARK}%H`, ...(opts.allRefs ? ["--all"] : [])];
  const child = spawn("git", args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const stats = { commits: 0, files: 0, lines: 0 };
  let commit: string | undefined;
  let file: string | undefined;
  let next = 0;
  const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const exited = new Promise<number>((resolve, reject) => {
    child.on("error", (e) => reject(new DsopsError(`cannot run git: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    child.on("close", (code) => resolve(code ?? 1));
  });
  let inHeader = false;
  for await (const raw of rl) {
    if (raw.startsWith(COMMIT_MARK)) {
      commit = raw.slice(COMMIT_MARK.length).trim();
      stats.commits++;
      file = undefined;
      inHeader = false;
    } else if (raw.startsWith("diff --git ")) {
      file = undefined;
      inHeader = true;
    } else if (inHeader && raw.startsWith("+++ ")) {
      const p = raw.slice(4).replace(/\t$/, "");
      file = p === "/dev/null" ? undefined : p.startsWith("b/") ? p.slice(2) : p;
      if (file) stats.files++;
    } else if (raw.startsWith("@@ ")) {
      inHeader = false;
      const m = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(raw);
      next = m ? Number(m[1]) : 0;
    } else if (inHeader) {
      // index, mode, rename and --- lines
    } else if (raw.startsWith("+") && file) {
      stats.lines++;
      await onLine({ file, line: next++, text: raw.slice(1), ...(commit ? { commit } : {}) });
    } else if (raw.startsWith(" ")) {
      next++;
    }
  }
  const code = await exited;
  if (code !== 0) throw new DsopsError(`git ${kind === "staged" ? "diff --cached" : "log -p"} failed: ${stderr.trim().split("\n")[0]}`);
  return stats;
}
