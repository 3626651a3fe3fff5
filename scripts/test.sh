#!/usr/bin/env bash
# The README's test command (`npm test`): sets up what the tests need, builds, lints, and runs
# the whole suite under c8. Integration tests start their own servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
t0=$SECONDS
bash scripts/setup.sh --peers --pulumi --codegen --helm --python
echo "[test] set-up took $((SECONDS - t0)) s"
# The helm build is part of the set-up above: the deploy tests must not skip for want of it.
export DSOPS_REQUIRE_HELM=1
# Likewise the Python language host (--pulumi) and the venv (--python): the Python e2e must run.
export DSOPS_REQUIRE_PYTHON=1
# Lint first (ESLint, and dependency-cruiser's layer rules): a finding fails the run.
echo "[test] npm run lint"
npm run --silent lint

out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$SECONDS
set +e
# bin/dsops runs tsc's modules here (DSOPS_UNBUNDLED=1), not the bundle, so that the coverage of
# the commands the tests spawn counts for the files it belongs to exactly as in-process coverage
# does; tests/integration/cli-bundle.test.ts runs the bundle, and so does the Node 24 smoke run
# of every CLI test below.
DSOPS_UNBUNDLED=1 npx c8 --config .c8rc.json mocha --config .mocharc.json "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
echo "[test] mocha and coverage took $((SECONDS - t0)) s"
count() { { grep -Eo "^ +[0-9]+ $1" "$out" || true; } | grep -Eo '[0-9]+' | tail -1 || true; }
passed=$(count passing)
failed=$(count failing)
skipped=$(count pending)
gate=0
if [ -f coverage/coverage-summary.json ]; then node scripts/coverage-gate.js || gate=$?; fi
# The next LTS: the CLI tests and the quickstart on it (whole-suite runs only; DSOPS_SMOKE_NODE=
# turns it off, DSOPS_SMOKE_NODE=26 picks another major).
smoke=0
if [ $# -eq 0 ] && [ -n "${DSOPS_SMOKE_NODE-24}" ]; then bash scripts/smoke-node.sh "${DSOPS_SMOKE_NODE-24}" || smoke=1; fi
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
[ "$status" -ne 0 ] && exit "$status"
[ "$smoke" -ne 0 ] && { echo "smoke run on Node ${DSOPS_SMOKE_NODE-24} failed" >&2; exit 1; }
exit "$gate"
