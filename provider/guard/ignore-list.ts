import type { Ignore } from "ignore";

/**
 * `.dsopsignore`: path patterns with git's own semantics (the `ignore` package: `dir/`, `**`,
 * `!negation`, anchoring with a leading or inner `/`, `\#` and `\!` escapes; a file under an
 * ignored folder cannot be re-included, as in .gitignore) and `rule: <id>` lines that turn a
 * rule off. The file itself is never scanned.
 */
export class IgnoreList {
  private readonly paths: Ignore;
  readonly disabledRules = new Set<string>();
  /** Lines that could not be understood. */
  readonly problems: string[] = [];

  /** `knownRules`: the rule ids a `rule:` line may name (one of them may stand for a set: `groups`). */
  constructor(text = "", knownRules: readonly string[] = [], groups: Readonly<Record<string, readonly string[]>> = {}) {
    const ignore = require("ignore") as typeof import("ignore");
    this.paths = ignore();
    const patterns: string[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const rule = /^\s*rule:\s*(\S+)\s*$/.exec(raw);
      if (!rule) {
        patterns.push(raw);
        return;
      }
      const id = rule[1];
      if (groups[id]) for (const r of groups[id]) this.disabledRules.add(r);
      if (knownRules.includes(id) || groups[id]) this.disabledRules.add(id);
      else this.problems.push(`.dsopsignore:${i + 1}: unknown rule "${id}" (rules: ${[...knownRules, ...Object.keys(groups)].join(", ")})`);
    });
    this.paths.add(patterns);
  }

  /** True when `file` (relative to the repository root, `/`-separated) is ignored. */
  ignores(file: string): boolean {
    if (file === ".dsopsignore") return true;
    try {
      return this.paths.ignores(file);
    } catch {
      return false; // not a relative path (git never gives one)
    }
  }
}
