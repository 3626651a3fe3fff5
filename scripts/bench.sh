#!/usr/bin/env bash
# Runs the benchmarks under bench/ (they print figures and ratios; they are not tests).
#   npm run bench                 all benchmarks
#   npm run bench -- resolve-moto one of them (file name without .ts), extra args passed on
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
bash scripts/setup.sh --peers --pulumi >&2
if [ $# -gt 0 ]; then
  name=$1; shift
  node "dist/bench/$name.js" "$@"
else
  for f in dist/bench/*.js; do echo "== $(basename "$f" .js)"; node "$f"; done
fi
