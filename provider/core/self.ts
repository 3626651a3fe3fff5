import { DsopsError } from "./errors";

/**
 * How dsops starts itself again (the `render --ttl` watcher, chaos's rotate child, the git hook):
 * as `node …/bin/dsops`, or, in the optional single executable (`npm run build:bin`), as that
 * executable alone: there `process.execPath` is dsops itself and `process.argv[1]` is a path
 * inside the executable, not a file on disk.
 */
let singleExecutable = false;

/** Called by the single executable's entry (scripts/bin-entry.js) before anything else. */
export function markSingleExecutable(): void {
  singleExecutable = true;
}

/** True in the single executable. */
export function isSingleExecutable(): boolean {
  return singleExecutable;
}

/** The program and the first arguments that run this dsops again. */
export function selfCommand(): { file: string; args: string[] } {
  return singleExecutable ? { file: process.execPath, args: [] } : { file: process.execPath, args: [process.argv[1]] };
}

/**
 * The environment variable that tells the single executable to run one of dsops's own helper
 * processes instead of the command line (Node runs their script files instead).
 */
export const SELF_ROLE_ENV = "DSOPS_SELF_ROLE";

/**
 * The error of a feature the single executable leaves out (a native add-on, a package that reads
 * files from its own folder): it names the store, the package and why, and points to the npm install.
 */
export function notInSingleExecutable(what: string, pkg: string, why: string): DsopsError {
  return new DsopsError(`${what}: not available in the single executable of dsops: ${pkg} ${why}; this store needs the npm install of dsops`, {
    hint: `this store needs the npm install of dsops (npm install @dsops/pulumi ${pkg}), run as \`npx dsops\` or node_modules/.bin/dsops`,
  });
}
