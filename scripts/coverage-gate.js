#!/usr/bin/env node
// Coverage gate per folder of provider/ (c8 checks the totals itself from .c8rc.json: lines and
// branches). Reads the thresholds from .c8rc.json (perFolderLines) and c8's json-summary.
"use strict";
const { readFileSync } = require("node:fs");
const { join, relative } = require("node:path");

const root = join(__dirname, "..");
const config = JSON.parse(readFileSync(join(root, ".c8rc.json"), "utf8"));
const summary = JSON.parse(readFileSync(join(root, config["report-dir"] || "coverage", "coverage-summary.json"), "utf8"));
const min = config.perFolderLines;
const folders = {};
for (const [file, s] of Object.entries(summary)) {
  if (file === "total") continue;
  const rel = relative(root, file);
  const m = /^provider\/([^/]+)\//.exec(rel);
  if (!m) continue;
  const folder = `provider/${m[1]}`;
  const f = (folders[folder] ??= { covered: 0, total: 0 });
  f.covered += s.lines.covered;
  f.total += s.lines.total;
}
let failed = false;
for (const [folder, f] of Object.entries(folders).sort()) {
  const pct = f.total ? (100 * f.covered) / f.total : 100;
  const ok = pct >= min;
  if (!ok) failed = true;
  console.log(`coverage ${folder.padEnd(22)} lines ${pct.toFixed(1).padStart(5)}% ${ok ? "ok" : `below ${min}%`}`);
}
process.exit(failed ? 1 : 0);
