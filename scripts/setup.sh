#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh machine: npm dependencies,
# the build, and the test peers (moto_server, OpenBao). Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

log() { printf '[setup] %s\n' "$*" >&2; }

# The Go builds (the Pulumi CLI and its language hosts, helm) take most of a new machine's
# set-up and need only Go: they run in the background while npm, the build and the Debian and
# pip packages are installed, each into a log of its own, and are waited for at the end.
bg_pids=()
bg_names=()
bg_logs=()
in_background() {
  local name="$1" out
  shift
  out="$(mktemp "${TMPDIR:-/tmp}/dsops-setup-${name}.XXXXXX")"
  ("$@") >"${out}" 2>&1 &
  bg_pids+=("$!")
  bg_names+=("${name}")
  bg_logs+=("${out}")
  log "${name}: in the background (log: ${out})"
}
trap '[ ${#bg_pids[@]} -eq 0 ] || kill "${bg_pids[@]}" 2>/dev/null || true' EXIT
codegen=0
for arg in "$@"; do [ "$arg" = --codegen ] && codegen=1; done
for arg in "$@"; do
  case "$arg" in
    # The Pulumi CLI and its language hosts; with --codegen also the code generators of
    # `npm run gen:sdk` (generating into a temporary folder builds and caches them).
    --pulumi) in_background pulumi bash -c 'bash scripts/install-pulumi.sh >/dev/null && if [ "$1" = 1 ]; then d="$(mktemp -d)"; bash scripts/gen-sdk.sh "$d" && rm -rf "$d"; fi' _ "${codegen}" ;;
    # helm and the offline manifest validator for the deploy/ tests (built once, then cached).
    --helm) in_background helm bash scripts/peers/build-helm.sh ;;
  esac
done

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
# The bundled CLI entry bin/dsops runs (dist/cli/dsops.js; the tests run it too).
node scripts/build-cli.js

# Programs in this repository (the quickstart, examples) use the package as users do:
# `require("@dsops/pulumi")` resolves through node_modules, also inside Pulumi's provider host.
mkdir -p node_modules/@dsops
ln -sfn ../.. node_modules/@dsops/pulumi

for arg in "$@"; do
  case "$arg" in
    --peers) bash scripts/peers/install.sh ;;
    # The venv of Pulumi Python programs: pulumi from PyPI + the generated SDK (sdk-gen/python).
    --python) bash scripts/install-python-venv.sh >/dev/null ;;
  esac
done

failed=0
for i in "${!bg_pids[@]}"; do
  if wait "${bg_pids[$i]}"; then
    grep -E '(built|took) .*[0-9]+ ?s' "${bg_logs[$i]}" | sed "s/^/[setup] ${bg_names[$i]}: /" >&2 || true
    rm -f "${bg_logs[$i]}"
  else
    failed=1
    log "${bg_names[$i]} failed; the end of its log (${bg_logs[$i]}):"
    tail -n 40 "${bg_logs[$i]}" >&2
  fi
done
bg_pids=()
[ "${failed}" -eq 0 ] || exit 1
