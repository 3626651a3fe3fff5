#!/usr/bin/env bash
# Regenerate the SDKs in sdk-gen/ (Go, Python, .NET) from schema.json with
# `pulumi package gen-sdk` (Pulumi CLI v3.259.0, scripts/install-pulumi.sh).
#
# Usage:
#   scripts/gen-sdk.sh            # rewrite sdk-gen/go, sdk-gen/python and sdk-gen/dotnet
#   scripts/gen-sdk.sh OUT_DIR    # write OUT_DIR/go, OUT_DIR/python and OUT_DIR/dotnet instead
#                                 # (tests/integration/sdk-gen.test.ts diffs it)
#
# The CLI delegates code generation to the language host plugins
# (pulumi-language-go, pulumi-language-python), whose modules the Go module
# proxy does not serve; this script builds a code-generation-only host from
# scripts/pulumi-build/codegen-langhost (pkg/v3 at the CLI's version, cached
# like the CLI) and puts it first on PATH under both names for the run.
# .NET: pkg/v3 at the CLI's version no longer contains the .NET generator (it
# moved to github.com/pulumi/pulumi-dotnet, not served by the proxy either), so
# a second host, scripts/pulumi-build/codegen-dotnet, pins pkg/v3 v3.228.0 (the
# last release with codegen/dotnet) and is put on PATH as pulumi-language-dotnet.
#
# Input: schema.json with sdk-gen/codegen-options.json merged over it (Go
# import path, Python package options, .NET options and `publisher`,
# `meta.supportPack`), and the version of
# package.json (`--version`). Output is deterministic: no timestamps, the same
# bytes for the same inputs.
#
# Environment: DSOPS_CACHE (cache root, default $HOME/.cache/dsops),
# DSOPS_PULUMI_BUILD_P (`go build -p`, default 2), DSOPS_GEN_LANGUAGES and
# DSOPS_GEN_SCHEMA (tests only, see below).

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${root}/sdk-gen}"
languages=(go python dotnet)
# DSOPS_GEN_LANGUAGES (space-separated subset) and DSOPS_GEN_SCHEMA (another schema file):
# for tests of the generators; the committed SDKs always come from schema.json, every language.
if [[ -n "${DSOPS_GEN_LANGUAGES:-}" ]]; then read -r -a languages <<<"${DSOPS_GEN_LANGUAGES}"; fi
schema_in="${DSOPS_GEN_SCHEMA:-${root}/schema.json}"

log() { printf 'gen-sdk: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found on PATH (source scripts/node-env.sh)"
pulumi_bin="$(bash "${root}/scripts/install-pulumi.sh" | tail -n1)"
[[ -x "${pulumi_bin}/pulumi" ]] || die "no pulumi in ${pulumi_bin}"

# 1. The code-generation-only language host, cached by the hash of its inputs.
host_src="${root}/scripts/pulumi-build/codegen-langhost"
stamp="$(cat "${host_src}/go.mod" "${host_src}/go.sum" "${host_src}/main.go" | sha256sum | cut -c1-16)"
cache_root="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}"
host_dir="${cache_root}/pulumi/codegen-langhost/${stamp}"
if [[ ! -x "${host_dir}/pulumi-language-go" ]]; then
  command -v go >/dev/null 2>&1 || die "go not found on PATH (needed to build the code generator)"
  mkdir -p "${cache_root}/pulumi/codegen-langhost"
  tmp_host="$(mktemp -d "${cache_root}/pulumi/codegen-langhost/.build-XXXXXX")"
  log "building the code-generation language host (seconds with a warm Go build cache)"
  (cd "${host_src}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -p "${DSOPS_PULUMI_BUILD_P:-2}" -trimpath -tags "osusergo,grpcnotrace" \
    -o "${tmp_host}/pulumi-language-go" .) >&2 || { rm -rf "${tmp_host}"; die "building the code generator failed"; }
  ln -s pulumi-language-go "${tmp_host}/pulumi-language-python"
  chmod 0755 "${tmp_host}"
  # Another run may have finished first: keep whichever is in place.
  mv -T "${tmp_host}" "${host_dir}" 2>/dev/null || rm -rf "${tmp_host}"
fi

# 1b. The .NET code-generation-only host (its own module and cache entry).
dotnet_src="${root}/scripts/pulumi-build/codegen-dotnet"
dotnet_stamp="$(cat "${dotnet_src}/go.mod" "${dotnet_src}/go.sum" "${dotnet_src}/main.go" | sha256sum | cut -c1-16)"
dotnet_dir="${cache_root}/pulumi/codegen-dotnet/${dotnet_stamp}"
if [[ ! -x "${dotnet_dir}/pulumi-language-dotnet" ]]; then
  command -v go >/dev/null 2>&1 || die "go not found on PATH (needed to build the .NET code generator)"
  mkdir -p "${cache_root}/pulumi/codegen-dotnet"
  tmp_host="$(mktemp -d "${cache_root}/pulumi/codegen-dotnet/.build-XXXXXX")"
  log "building the .NET code-generation language host (pkg/v3 v3.228.0; seconds with a warm Go build cache)"
  (cd "${dotnet_src}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -p "${DSOPS_PULUMI_BUILD_P:-2}" -trimpath -tags "osusergo,grpcnotrace" \
    -o "${tmp_host}/pulumi-language-dotnet" .) >&2 || { rm -rf "${tmp_host}"; die "building the .NET code generator failed"; }
  chmod 0755 "${tmp_host}"
  mv -T "${tmp_host}" "${dotnet_dir}" 2>/dev/null || rm -rf "${tmp_host}"
fi

# 2. The schema with the code generation options, and the version.
work="$(mktemp -d "${TMPDIR:-/tmp}/dsops-gen-sdk-XXXXXX")"
trap 'rm -rf "${work}"' EXIT
version="$(node -p 'require(process.argv[1]).version' "${root}/package.json")"
node - "${schema_in}" "${root}/sdk-gen/codegen-options.json" "${work}/schema.json" <<'JS'
const fs = require("node:fs");
const [schemaPath, optionsPath, outPath] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
const options = JSON.parse(fs.readFileSync(optionsPath, "utf8"));
schema.meta = { ...(schema.meta ?? {}), ...(options.meta ?? {}) };
schema.language = { ...(schema.language ?? {}), ...(options.language ?? {}) };
// Package metadata only the .NET generator reads (the .csproj's Authors/Company).
if (options.publisher !== undefined) schema.publisher = options.publisher;
fs.writeFileSync(outPath, JSON.stringify(schema, null, 2) + "\n");
JS

# 3. Generate each language into the work dir, then swap it in.
export PATH="${host_dir}:${dotnet_dir}:${pulumi_bin}:${PATH}"
export PULUMI_HOME="${work}/.pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
for lang in "${languages[@]}"; do
  rc=0
  started="$(date +%s%N)"
  (cd "${work}" && pulumi package gen-sdk ./schema.json --language "${lang}" --out ./out --version "${version}") \
    >"${work}/gen-${lang}.log" 2>&1 || rc=$?
  # The CLI warns that the host comes from PATH (that is the point): not news.
  grep -v '^warning: using pulumi-language-' "${work}/gen-${lang}.log" >&2 || true
  [[ ${rc} -eq 0 ]] || die "pulumi package gen-sdk --language ${lang} exited ${rc}"
  [[ -d "${work}/out/${lang}" && -n "$(ls -A "${work}/out/${lang}")" ]] || die "pulumi package gen-sdk --language ${lang} wrote nothing"
  log "generated ${lang} in $(( ($(date +%s%N) - started) / 1000000 )) ms"
done
mkdir -p "${out}"
for lang in "${languages[@]}"; do
  rm -rf "${out:?}/${lang}"
  cp -R "${work}/out/${lang}" "${out}/${lang}"
done
log "wrote ${languages[*]} SDKs (version ${version}) to ${out}"
