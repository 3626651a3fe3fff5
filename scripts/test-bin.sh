#!/usr/bin/env bash
# `npm run test:bin`: builds the optional single executable (scripts/build-bin.sh) and runs the CLI
# tests (tests/integration/cli*.test.ts, the set the Node smoke run uses) against it:
# tests/support/cli.ts starts $DSOPS_CLI_BIN instead of `node bin/dsops`. Not part of `npm test`.
#   bash scripts/test-bin.sh [mocha args…]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
bash scripts/build-bin.sh
export DSOPS_CLI_BIN="${DSOPS_BIN_OUT:-$PWD/dist/bin/dsops}"
echo "[test:bin] CLI tests against $DSOPS_CLI_BIN" >&2
npx mocha --no-config --timeout 60000 --enable-source-maps --require dist/tests/support/leak-watchdog.js "${@:-dist/tests/integration/cli*.test.js}"
