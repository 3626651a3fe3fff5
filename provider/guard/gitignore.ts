import { appendFileSync, readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { DsopsError } from "../core/errors";
import type { Config } from "../engine/config/load";
import { git } from "./git";

/**
 * The .gitignore check behind `dsops guard gitignore`: the files that hold rendered secrets or
 * store data must be ignored by git, and none may be committed already.
 */

/** A pattern that should be git-ignored, the paths it is tested on, committed files it allows, what --fix writes. */
export interface OutputPattern {
  readonly pattern: string;
  readonly samples: readonly string[];
  readonly allow?: RegExp;
  readonly fix?: readonly string[];
}

const EXAMPLE_ENV = /(?:^|\/)\.env\.(?:example|sample|template|dist|defaults)$/;

/** Patterns of files that hold rendered secrets or store data, with a path each is tested on. */
export const OUTPUT_PATTERNS: readonly OutputPattern[] = [
  { pattern: ".env", samples: [".env", "app/.env"] },
  // Example files are meant to be committed: allowed when tracked, and kept committable by --fix.
  { pattern: ".env.*", samples: [".env.local", ".env.production"], allow: EXAMPLE_ENV, fix: [".env.*", "!.env.example", "!.env.sample", "!.env.template"] },
  { pattern: "*.env", samples: ["production.env"] },
  { pattern: "secrets.store*", samples: ["secrets.store", "secrets.store.key"] },
  { pattern: "*.store.key", samples: ["team.store.key"] },
];

export interface GitignoreCheck {
  readonly pattern: string;
  /** tracked: files matching it are committed (ignoring them now does not help); else ignored or missing. */
  readonly status: "ignored" | "missing" | "tracked";
  /** Every sample path of the pattern is git-ignored. */
  readonly ignored: boolean;
  readonly tracked: string[];
}

/**
 * Paths a dsops.yaml writes to (file stores and their key files, template `out:` files),
 * relative to the repository, that the standard patterns do not cover. No (valid) configuration
 * (`config` undefined): none. The caller loads the configuration (the guard sits below the
 * composition of dsops.yaml's schema).
 */
export function configuredPaths(root: string, config: Config | undefined): OutputPattern[] {
  const out: OutputPattern[] = [];
  const ignore = require("ignore") as typeof import("ignore");
  const standard = ignore().add(OUTPUT_PATTERNS.map((p) => p.pattern));
  if (!config) return out;
  const add = (p: string) => {
    const rel = relative(root, p);
    if (rel.startsWith("..") || rel === "") return;
    const posix = rel.split(sep).join("/");
    if (!standard.ignores(posix)) out.push({ pattern: `/${posix}`, samples: [posix] });
  };
  for (const s of Object.values(config.stores)) {
    if (s.type !== "file") continue;
    const store = resolve(config.dir, s.path);
    for (const p of [store, s.key_file ? resolve(config.dir, s.key_file) : `${store}.key`]) add(p);
  }
  for (const t of Object.values(config.raw.templates)) if (t.out) add(resolve(config.dir, t.out));
  return out;
}

/** Check each pattern against git: ignored (every sample), missing, or with committed files. */
export function checkGitignore(root: string, patterns: readonly OutputPattern[]): GitignoreCheck[] {
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

/** The lines --fix would append for the checks that are not ignored. */
export function missingPatterns(checks: readonly GitignoreCheck[], patterns: readonly OutputPattern[]): string[] {
  return checks.filter((c) => !c.ignored).flatMap((c) => patterns.find((p) => p.pattern === c.pattern)?.fix ?? [c.pattern]);
}

/** Append `lines` to the repository's .gitignore, under a comment saying who wrote them. */
export function appendToGitignore(root: string, lines: readonly string[]): void {
  const file = join(root, ".gitignore");
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {
    // created below
  }
  const lead = current && !current.endsWith("\n") ? "\n" : "";
  appendFileSync(file, `${lead}${current ? "\n" : ""}# dsops: rendered secrets and store files (dsops guard gitignore --fix)\n${lines.join("\n")}\n`);
}
