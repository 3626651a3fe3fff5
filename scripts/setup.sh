#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine: npm dependencies,
# the build, and the test peers (moto_server, OpenBao). Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

log() { printf '[setup] %s\n' "$*" >&2; }

# npm dependencies: reinstall only when package-lock.json changed since the last install.
stamp=node_modules/.dsops-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

log "building"
# From scratch: tsc never deletes the output of a moved or removed source file, and a stale
# dist/provider/rotation/engine.js would shadow the engine/ folder that replaced it.
rm -rf dist
npx tsc -p tsconfig.json

# Programs in this repository (the quickstart, examples) use the package as users do:
# `require("@dsops/pulumi")` resolves through node_modules, also inside Pulumi's provider host.
mkdir -p node_modules/@dsops
ln -sfn ../.. node_modules/@dsops/pulumi

for arg in "$@"; do
  case "$arg" in
    --peers) bash scripts/peers/install.sh ;;
    --pulumi) bash scripts/install-pulumi.sh >/dev/null ;;
    # The venv of Pulumi Python programs: pulumi from PyPI + the generated SDK (sdk-gen/python).
    --python) bash scripts/install-python-venv.sh >/dev/null ;;
    # helm and the offline manifest validator for the deploy/ tests (built once, then cached).
    --helm) bash scripts/peers/build-helm.sh >/dev/null ;;
  esac
done
