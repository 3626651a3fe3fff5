#!/usr/bin/env bash
# `npm pack` and `npm publish` run this (package.json "prepack"): build what the package ships,
# dist/provider and dist/sdk with their declarations and the bundled CLI entry dist/cli, afresh
# from the sources (a fresh clone has no dist/; a stale file of an older build must not be shipped).
# Tests and benchmarks are not built.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist/provider dist/sdk dist/cli
tsc -p tsconfig.build.json
node scripts/build-cli.js
