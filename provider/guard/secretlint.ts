import { pathToFileURL } from "node:url";
import type { lintSource as LintSource } from "@secretlint/core";
import { mask, type ExternalMatch } from "./rules";

/**
 * secretlint's recommended preset (`@secretlint/secretlint-rule-preset-recommend`: AWS, GCP,
 * private keys, npm, basic auth in URLs, Slack, SendGrid, Shopify, Stripe, GitHub, GitLab,
 * OpenAI, Anthropic, database connection strings, …), run through `@secretlint/core`'s
 * `lintSource` on a whole text. Both packages are ES modules, loaded on first use only (the
 * commands that do not scan never load them). secretlint's messages quote the secret, so only
 * their rule id, message id and range are kept; the value is masked here.
 */
export const SECRETLINT_PRESET = "@secretlint/secretlint-rule-preset-recommend";

type SecretLintRulePresetCreator = (typeof import("@secretlint/secretlint-rule-preset-recommend"))["creator"];

interface Loaded {
  readonly lintSource: typeof LintSource;
  readonly preset: SecretLintRulePresetCreator;
  readonly ruleIds: readonly string[];
}

let loaded: Promise<Loaded> | undefined;

/**
 * `require` an ES module (Node 22.12+), or `import()` it on a Node that cannot. `req` is a
 * `require` of `spec` written out, so a bundler (the single executable's) sees and embeds the package.
 */
async function load<T>(spec: string, req: () => unknown): Promise<T> {
  try {
    return req() as T;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ERR_REQUIRE_ESM" && code !== "ERR_REQUIRE_ASYNC_MODULE") throw e;
    // A real dynamic import (TypeScript would turn `import()` into `require` in CommonJS output).
    const dynamicImport = new Function("url", "return import(url)") as (url: string) => Promise<T>;
    return dynamicImport(pathToFileURL(require.resolve(spec)).href);
  }
}

function secretlint(): Promise<Loaded> {
  loaded ??= (async () => {
    const core = await load<{ lintSource: typeof LintSource }>("@secretlint/core", () => require("@secretlint/core"));
    const preset = (await load<{ creator: SecretLintRulePresetCreator }>(SECRETLINT_PRESET, () => require("@secretlint/secretlint-rule-preset-recommend"))).creator;
    const ruleIds = preset.rules.map((r) => r.meta.id).filter((id) => !id.endsWith("-filter-comments"));
    return { lintSource: core.lintSource, preset, ruleIds };
  })();
  return loaded;
}

/** The preset's rule ids (`@secretlint/secretlint-rule-github` …), usable in `rule:` lines of .dsopsignore. */
export async function secretlintRuleIds(): Promise<readonly string[]> {
  return (await secretlint()).ruleIds;
}

/** A secretlint match, by line: 0-based line index into the text, and the span on that line. */
export interface LocatedMatch extends ExternalMatch {
  /** 0-based index of the line the match starts on. */
  readonly lineIndex: number;
}

/** The public prefix of a token format (`npm_`, `glpat-`, `xoxb-`, `SG.`), shown unmasked on long values. */
function publicPrefix(value: string): number {
  const m = /^[A-Za-z0-9]{2,10}[_.-]/.exec(value);
  return m && value.length >= 20 ? m[0].length : 0;
}

/**
 * Run secretlint's recommended preset on `content` (the text of `file`, a relative path used for
 * the rules' file-name checks only). A match spanning several lines (a PEM block) is reported on
 * its first line, from its start to the end of that line.
 */
export async function secretlintMatches(file: string, content: string): Promise<LocatedMatch[]> {
  const { lintSource, preset } = await secretlint();
  const ext = /\.[^./]+$/.exec(file)?.[0] ?? "";
  const result = await lintSource({
    source: { filePath: file, content, ext, contentType: "text" },
    options: { config: { rules: [{ id: SECRETLINT_PRESET, rule: preset }] }, maskSecrets: true, noPhysicFilePath: true },
  });
  const lineStarts = [0];
  for (let i = content.indexOf("\n"); i !== -1; i = content.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const out: LocatedMatch[] = [];
  for (const m of result.messages) {
    if (m.type !== "message") continue;
    const [from, to] = m.range;
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= from) lo = mid;
      else hi = mid - 1;
    }
    const lineStart = lineStarts[lo];
    const lineEnd = lo + 1 < lineStarts.length ? lineStarts[lo + 1] - 1 : content.length;
    const value = content.slice(from, to);
    out.push({
      rule: m.ruleId,
      description: `secretlint: ${m.messageId}`,
      lineIndex: lo,
      start: from - lineStart,
      end: Math.min(to, lineEnd) - lineStart,
      masked: mask(value, publicPrefix(value)),
      length: value.length,
    });
  }
  return out;
}
