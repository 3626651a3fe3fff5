#!/usr/bin/env bash
# `npm run build:plugin`: a Pulumi plugin tarball of the dsops provider (pulumi-resource-dsops) for
# this installation of @dsops/pulumi, to install with
#   pulumi plugin install resource dsops <version> --file <tarball>
# The tarball holds one launcher that runs this package's bin/pulumi-resource-dsops with the
# Node.js that built it (both by absolute path): it is for this machine, not for redistribution.
# Prints the tarball's path (last line). Usage: scripts/build-plugin.sh [out-dir] (default dist/plugin).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
die() { printf 'build-plugin: error: %s\n' "$*" >&2; exit 1; }
node_bin="$(command -v node)" || die "node not found on PATH (Node.js 22 or newer)"
[[ -f "${root}/dist/provider/plugin/main.js" ]] || die "dist/provider/plugin/main.js is missing: run \`npm run build\` first"
version="$("${node_bin}" -p "require(process.argv[1]).version" "${root}/package.json")"
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
out="${1:-${root}/dist/plugin}"
mkdir -p "${out}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
cat >"${tmp}/pulumi-resource-dsops" <<EOF
#!/bin/sh
# dsops provider plugin v${version}: runs @dsops/pulumi installed at ${root} (built by npm run build:plugin).
exec "${node_bin}" "${root}/bin/pulumi-resource-dsops" "\$@"
EOF
chmod 0755 "${tmp}/pulumi-resource-dsops"
tarball="$(cd "${out}" && pwd)/pulumi-resource-dsops-v${version}-${os}-${arch}.tar.gz"
tar -czf "${tarball}" -C "${tmp}" pulumi-resource-dsops
printf 'build-plugin: install with: pulumi plugin install resource dsops %s --file %s\n' "${version}" "${tarball}" >&2
printf '%s\n' "${tarball}"
