/**
 * Keeping secrets out of git, and cleaning up after a leak (`@dsops/pulumi/provider/guard/index`):
 * the repository scan (our rules plus secretlint's recommended preset, `.dsopsignore` with
 * gitignore semantics), the .gitignore check, the pre-commit hook, incident records and shred.
 * An ops layer: the engine's own index does not import it.
 */
export { scanRepository, scanText, scanLines, loadIgnoreList, MAX_FILE, type ScanScope, type ScanSummary, type RepositoryScan, type TextOrigin } from "./scan";
export { rules, ruleIds, findSecrets, shannonEntropy, mask, INLINE_IGNORE, LOCK_FILES, type Rule, type LineMatch, type ExternalMatch, type Finding } from "./rules";
export { SECRETLINT_PRESET, secretlintMatches, secretlintRuleIds, type LocatedMatch } from "./secretlint";
export { IgnoreList } from "./ignore-list";
export { OUTPUT_PATTERNS, checkGitignore, configuredPaths, missingPatterns, appendToGitignore, type OutputPattern, type GitignoreCheck } from "./gitignore";
export { HOOK_MARKER, hookScript, installHook, type HookInstall } from "./hook";
export { git, repoRoot, hasCommits, forEachAddedLine, type AddedLine } from "./git";
export { IncidentBook, normalizeId, severities, type Incident, type IncidentNote, type IncidentStatus, type Severity } from "./incidents";
export { shredFile, type FileIdentity } from "./shred";
