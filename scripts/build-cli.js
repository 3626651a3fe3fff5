#!/usr/bin/env node
"use strict";
// The bundled `dsops` entry (issue 20: start-up): provider/cli/main.ts and every module of ours it
// can reach, with the packages every command loads at start-up (commander, yaml, zod), in one file,
// dist/cli/dsops.js, that bin/dsops runs when it exists (else dist/provider/cli/main.js). Our
// modules stay lazy: esbuild wraps a module that is require()d in a function run on its first
// require, so a command still loads only what it uses. Every other package (the stores' SDKs,
// pg, nodemailer, …) stays external: loaded from node_modules, and only when a command uses it.
// Run by `npm run build` (after tsc) and by `npm pack` (scripts/prepack.sh).
//
// A module that finds files next to itself (`__dirname`: the TTL watcher, a worker script, the
// package.json) finds them where tsc put it under dist/provider, which the package ships too.
const { build } = require("esbuild");
const { readFileSync } = require("node:fs");
const { dirname, join, relative, resolve } = require("node:path");

const ROOT = resolve(__dirname, "..");
const OUT = join(ROOT, "dist", "cli", "dsops.js");
/** The packages bundled: those `dsops get` loads. */
const BUNDLED = new Set(["commander", "yaml", "zod"]);

/** The folder tsc writes a source file's JavaScript to, as seen from the bundle's folder. */
function distDirFromBundle(sourceFile) {
  const distDir = join(ROOT, "dist", relative(ROOT, dirname(sourceFile)));
  return relative(dirname(OUT), distDir).split("\\").join("/");
}

/**
 * A statement (put last: lines keep their numbers) that notes, when the module has run, that it was loaded: DSOPS_DEBUG_MODULES lists
 * the bundled modules a command ran (provider/cli/main.ts), as it lists the files Node loaded.
 */
function noteLoaded(file) {
  return `\n__dsopsBundledModules.push(${JSON.stringify(relative(ROOT, file).split("\\").join("/"))});`;
}

/**
 * commander imports node:child_process at its top, for executable subcommands (`git-style`), which
 * dsops has none of: loading it costs every command ~2 ms. In the bundle its `spawn` loads the
 * module when called. The build fails if commander's import is no longer the one replaced.
 */
function lazyChildProcess(file, source) {
  if (!/[\\/]commander[\\/]lib[\\/]command\.js$/.test(file)) return source;
  const line = "import childProcess from 'node:child_process';";
  if (!source.includes(line) || /childProcess\.(?!spawn\()/.test(source)) throw new Error(`${file}: commander's use of node:child_process changed; update lazyChildProcess in scripts/build-cli.js`);
  return source.replace(line, "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };");
}

const dsopsLayout = {
  name: "dsops-layout",
  setup(b) {
    // Packages other than BUNDLED: external (`zod/v4` is zod).
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("node:")) return undefined;
      const name = args.path.startsWith("@") ? args.path.split("/").slice(0, 2).join("/") : args.path.split("/")[0];
      return BUNDLED.has(name) ? undefined : { path: args.path, external: true };
    });
    // `require("../../../package.json")`, written for the file under dist/: the same file, at run time.
    b.onResolve({ filter: /package\.json$/ }, (args) => {
      if (!args.path.startsWith(".")) return undefined;
      const target = resolve(join(ROOT, "dist", relative(ROOT, args.resolveDir)), args.path);
      return { path: "./" + relative(dirname(OUT), target).split("\\").join("/"), external: true };
    });
    // `__dirname` in our modules: the folder of the module under dist/, not the bundle's.
    b.onLoad({ filter: /[\\/]provider[\\/].*\.ts$/ }, (args) => {
      let source = readFileSync(args.path, "utf8");
      if (/\b__dirname\b/.test(source)) {
        const dir = `require("node:path").join(__dirname, ${JSON.stringify(distDirFromBundle(args.path))})`;
        source = `const __moduleDir = ${dir}; ` + source.replace(/\b__dirname\b/g, "__moduleDir");
      }
      return { contents: source + noteLoaded(args.path), loader: "ts" };
    });
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, (args) => ({ contents: lazyChildProcess(args.path, readFileSync(args.path, "utf8")) + noteLoaded(args.path), loader: "js" }));
  },
};

build({
  entryPoints: [join(ROOT, "provider", "cli", "main.ts")],
  outfile: OUT,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22",
  banner: { js: "var __dsopsBundledModules = [];" },
  // Less to read and to parse on every start. Whitespace only: the code is the code tsc's modules
  // run (minifySyntax changes stack frames: "the YAML is nested too deeply" would name another column).
  minifyWhitespace: true,
  sourcemap: true,
  sourcesContent: false,
  logLevel: "warning",
  metafile: process.env.DSOPS_BUNDLE_META === "1",
  plugins: [dsopsLayout],
})
  .then((r) => {
    if (r.metafile) require("node:fs").writeFileSync(OUT + ".meta.json", JSON.stringify(r.metafile));
  })
  .catch(() => process.exit(1));
