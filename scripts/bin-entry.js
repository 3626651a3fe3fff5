"use strict";
// The entry of the optional single executable (`npm run build:bin`, scripts/build-bin.sh): Bun
// compiles it, with every module and package the CLI can reach, into one file. It runs the `dsops`
// command line, or the `render --ttl` watcher when dsops started itself for that (the executable
// has no script file on disk to give Node).
const self = require("../dist/provider/core/self.js");
// DSOPS_DEBUG_MODULES lists the modules Node loaded; the executable's are compiled in, unlisted.
if (process.env.DSOPS_DEBUG_MODULES && process.env.DSOPS_DEBUG_MODULES !== "0") {
  delete process.env.DSOPS_DEBUG_MODULES;
  process.on("exit", () => process.stderr.write("dsops debug: the single executable cannot list its modules (they are compiled in); `node bin/dsops` can\n"));
}
self.markSingleExecutable();
if (process.env[self.SELF_ROLE_ENV] === "ttl-watcher") void require("../dist/provider/cli/ttl-watcher.js").watch(process.argv.slice(2));
else require("../dist/provider/cli/main.js").main(process.argv);
