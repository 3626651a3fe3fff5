#!/usr/bin/env bash
# The optional single executable of the `dsops` CLI (issue 20): `npm run build:bin`.
#
# Bun (`bun build --compile --bytecode`) bundles the CLI's modules and every package it can reach
# with the Bun runtime into one file, dist/bin/dsops (under dist/, never committed), with the
# modules' bytecode precompiled, so `dsops get` starts about as fast as `node -e 0`.
# Bun comes from the npm registry (the `bun` package's platform package, @oven/bun-<os>-<cpu>,
# carries the real binary), pinned, installed once into ${DSOPS_CACHE:-~/.cache/dsops}/bun/<version>
# with install scripts off, outside the repository. Running it again rebuilds the same file.
#
# Left out (they need the npm install of dsops): the bitwarden-sm store (@bitwarden/sdk-napi is a
# native add-on, an optional peer) and the 1password store's SDK mode (@1password/sdk loads a
# .wasm file from its package folder); `dsops` says so when such a store is used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUN_VERSION="1.4.5"
OUT="${DSOPS_BIN_OUT:-$ROOT/dist/bin/dsops}"
source scripts/node-env.sh

cache="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}/bun/${BUN_VERSION}"
find_bun() {
  local b
  for b in "$cache"/node_modules/@oven/bun-*/bin/bun; do
    [ -x "$b" ] && "$b" --version >/dev/null 2>&1 && { printf '%s\n' "$b"; return 0; }
  done
  return 1
}
if ! BUN="$(find_bun)"; then
  printf '[build-bin] installing bun %s from the npm registry into %s\n' "$BUN_VERSION" "$cache" >&2
  mkdir -p "$(dirname "$cache")"
  tmp="$(mktemp -d "${cache}.tmp.XXXXXX")"
  # --ignore-scripts: the platform package (an optional dependency npm picks for this os/cpu/libc)
  # already holds the binary; bun's own postinstall only links it.
  if ! npm install --prefix "$tmp" --ignore-scripts --no-audit --no-fund --no-save --loglevel=error "bun@${BUN_VERSION}" >&2; then
    rm -rf "$tmp"; echo "[build-bin] could not install bun ${BUN_VERSION} from the npm registry" >&2; exit 1
  fi
  rm -rf "$cache"; mv "$tmp" "$cache"
  BUN="$(find_bun)" || { echo "[build-bin] no working bun binary under $cache/node_modules/@oven" >&2; exit 1; }
fi

npm run --silent build
mkdir -p "$(dirname "$OUT")"
# A Bun executable reads .env and bunfig.toml from the working folder by default: off (dsops
# reads its own configuration only; `dsops exec` must not see a rendered .env as the environment).
# Whitespace-only minification: names, stack frames and error columns stay as Node shows them.
"$BUN" build --compile --bytecode --minify-whitespace --target=bun \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig --no-compile-autoload-tsconfig --no-compile-autoload-package-json \
  --external @bitwarden/sdk-napi \
  scripts/bin-entry.js --outfile "$OUT.tmp" >&2
mv -f "$OUT.tmp" "$OUT"
size="$(du -m "$OUT" | cut -f1)"
printf 'dsops single executable: %s (%s MB, bun %s)\n' "$OUT" "$size" "$BUN_VERSION"
