#!/usr/bin/env bash
# Smoke run on another Node.js major (default 24, the next LTS), provisioned like Node 22:
# the CLI tests and the quickstart stack (a real `pulumi up` whose language host and dynamic
# provider host run on that Node). Expects a build made by scripts/setup.sh.
#   bash scripts/smoke-node.sh [major]
set -euo pipefail
cd "$(dirname "$0")/.."
export DSOPS_NODE_MAJOR="${1:-24}"
source scripts/node-env.sh
[ "$(node -p 'process.versions.node.split(".")[0]')" = "$DSOPS_NODE_MAJOR" ] || { echo "[smoke] not on Node $DSOPS_NODE_MAJOR" >&2; exit 1; }

echo "[smoke] CLI tests on $(node --version)" >&2
npx mocha --no-config --timeout 60000 --enable-source-maps --reporter dot 'dist/tests/integration/cli*.test.js'

echo "[smoke] quickstart on $(node --version)" >&2
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
out="$(DSOPS_STATE_DIR="$state" bash scripts/quickstart.sh 2>&1)" || { printf '%s\n' "$out" >&2; echo "[smoke] quickstart failed on Node $DSOPS_NODE_MAJOR" >&2; exit 1; }
printf '%s\n' "$out" | grep -q 'using v'"$DSOPS_NODE_MAJOR"'\.' || { printf '%s\n' "$out" >&2; echo "[smoke] quickstart did not run on Node $DSOPS_NODE_MAJOR" >&2; exit 1; }
printf '%s\n' "$out" | grep -Eq '^ *storeType +file$' || { printf '%s\n' "$out" >&2; echo "[smoke] quickstart outputs missing" >&2; exit 1; }
echo "[smoke] Node $DSOPS_NODE_MAJOR: CLI tests and quickstart passed" >&2
