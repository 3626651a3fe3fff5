#!/usr/bin/env bash
# Provide the Pulumi CLI (v3.259.0) and the Node.js language host
# (pulumi-language-nodejs), built from source through the Go module proxy.
# The bin dir holds:
#   pulumi                          CLI, github.com/pulumi/pulumi/pkg/v3 v3.259.0
#   pulumi-language-nodejs          language host, from sdk/v3 v3.68.0 (its own
#                                   module is not served by the proxy; see
#                                   scripts/pulumi-build/nodejs-langhost/go.mod)
#   pulumi-resource-pulumi-nodejs   launcher for pulumi.dynamic.Resource providers
#   pulumi-language-yaml            YAML language host, github.com/pulumi/pulumi-yaml
#                                   v1.25.0 (scripts/pulumi-build/yaml-langhost/go.mod);
#                                   a link to its own cache entry (below), so that
#                                   building it never invalidates the CLI's build
#   pulumi-language-python          Python language host, from sdk/v3 v3.68.0 (built
#   pulumi-language-python-exec     with the nodejs-langhost module, the same pins),
#                                   and the exec shim it runs (Pulumi's script, copied
#                                   from that module's source); links to their own
#                                   cache entry (below), like the YAML host
#   pulumi-language-go              Go language host, from sdk/v3 v3.66.0 (its own
#                                   module is not served by the proxy; see
#                                   scripts/pulumi-build/go-langhost/go.mod); a link
#                                   to its own cache entry, like the YAML host
#
# Usage:
#   scripts/install-pulumi.sh            # build if needed, print the bin dir
#   export PATH="$(scripts/install-pulumi.sh | tail -n1):$PATH"
#
# The last line on stdout is the directory to put on PATH; everything else
# (progress, build output) goes to stderr.
#
# Idempotent:
#   * a finished build is cached outside the repo, keyed by version, in
#     ${DSOPS_CACHE:-$HOME/.cache/dsops}/pulumi/v3.259.0/bin; when it is there
#     (and was built from the same pins) the script only prints its path;
#   * otherwise, a `pulumi` already on PATH that reports v3.259.0, together
#     with `pulumi-language-nodejs` and `pulumi-resource-pulumi-nodejs` on
#     PATH (as an official install has them), is reused;
#   * otherwise everything is built (about 5 min on 2 cores with empty Go
#     caches, seconds with a warm Go build cache) and installed atomically
#     into the cache.
#   * the YAML language host is cached on its own, keyed by its pins, in
#     ${DSOPS_CACHE:-$HOME/.cache/dsops}/pulumi/yaml-langhost/v1.25.0 (built
#     when missing: about 2.5 min on 2 cores with an empty Go build cache) and
#     linked into the bin dir; a reused pulumi from PATH is expected to come
#     with its own (official installs ship pulumi-language-yaml).
#   * the Python language host likewise, in
#     ${DSOPS_CACHE:-$HOME/.cache/dsops}/pulumi/python-langhost/v3.68.0 (about
#     35 s on 2 cores with an empty Go build cache).
#   * the Go language host likewise, in
#     ${DSOPS_CACHE:-$HOME/.cache/dsops}/pulumi/go-langhost/v3.66.0 (about
#     2 minutes with an empty Go build cache, 20 s with a warm one), linked
#     into the bin dir.
#
# Needs: Go >= 1.25.11 (GOTOOLCHAIN=local: no toolchain download) and access
# to the Go module proxy. The Go build and module caches stay where Go puts
# them by default (outside the repo).
#
# Environment:
#   DSOPS_CACHE            cache root (default: $HOME/.cache/dsops)
#   DSOPS_PULUMI_BUILD_P   `go build -p` parallelism (default: 2)
#   DSOPS_PULUMI_REBUILD=1 ignore the cache and any pulumi on PATH
#   DSOPS_PULUMI_YAML=0    do not build (or link) the YAML language host
#   DSOPS_PULUMI_PYTHON=0  do not build (or link) the Python language host
#   DSOPS_PULUMI_GO=0      do not build (or link) the Go language host

set -euo pipefail

PULUMI_VERSION="v3.259.0"
# The Node.js language host is built from an sdk/v3 release that still
# contained it as a package (see scripts/pulumi-build/nodejs-langhost/go.mod).
LANGHOST_SDK_VERSION="v3.68.0"
# Bump to force a rebuild of cached binaries when the build recipe changes.
BUILD_RECIPE="1"
# The YAML language host (scripts/pulumi-build/yaml-langhost/go.mod) and its recipe.
YAML_LANGHOST_VERSION="v1.25.0"
YAML_BUILD_RECIPE="1"
# The Python language host: sdk/v3 ${LANGHOST_SDK_VERSION}'s python/cmd, built with the
# nodejs-langhost module (its go.mod/go.sum pin everything that package needs).
PYTHON_BUILD_RECIPE="1"
# The Go language host (scripts/pulumi-build/go-langhost/go.mod) and its recipe.
GO_LANGHOST_SDK_VERSION="v3.66.0"
GO_BUILD_RECIPE="1"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${script_dir}/pulumi-build"
langhost_dir="${build_dir}/nodejs-langhost"

cache_root="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}"
version_dir="${cache_root}/pulumi/${PULUMI_VERSION}"
bin_dir="${version_dir}/bin"
stamp_file="${version_dir}/.build-stamp"

log() { printf 'install-pulumi: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Identifies the inputs of a build: the pins (go.mod/go.sum of both build
# modules) and the recipe. Cheap: a few small files through sha256sum.
build_stamp() {
  {
    printf 'pulumi=%s langhost-sdk=%s recipe=%s\n' \
      "${PULUMI_VERSION}" "${LANGHOST_SDK_VERSION}" "${BUILD_RECIPE}"
    cat "${build_dir}/go.mod" "${build_dir}/go.sum" \
      "${langhost_dir}/go.mod" "${langhost_dir}/go.sum"
  } | sha256sum | cut -d' ' -f1
}

cache_is_valid() {
  [[ -x "${bin_dir}/pulumi" && -x "${bin_dir}/pulumi-language-nodejs" \
    && -x "${bin_dir}/pulumi-resource-pulumi-nodejs" && -f "${stamp_file}" ]] || return 1
  [[ "$(cat "${stamp_file}")" == "${want_stamp}" ]]
}

want_stamp="$(build_stamp)"
rebuild="${DSOPS_PULUMI_REBUILD:-0}"

yaml_langhost_dir="${build_dir}/yaml-langhost"
yaml_version_dir="${cache_root}/pulumi/yaml-langhost/${YAML_LANGHOST_VERSION}"
yaml_bin="${yaml_version_dir}/pulumi-language-yaml"
yaml_stamp_file="${yaml_version_dir}/.build-stamp"

yaml_build_stamp() {
  {
    printf 'pulumi-yaml=%s recipe=%s\n' "${YAML_LANGHOST_VERSION}" "${YAML_BUILD_RECIPE}"
    cat "${yaml_langhost_dir}/go.mod" "${yaml_langhost_dir}/go.sum"
  } | sha256sum | cut -d' ' -f1
}

yaml_cache_is_valid() {
  [[ -x "${yaml_bin}" && -f "${yaml_stamp_file}" ]] || return 1
  [[ "$(cat "${yaml_stamp_file}")" == "${want_yaml_stamp}" ]]
}

# The YAML language host, in its own cache entry (built when missing), linked
# into the CLI's bin dir: the engine takes a host next to `pulumi` as bundled.
ensure_yaml_langhost() {
  # DSOPS_PULUMI_YAML=0: not needed (the quickstart is a TypeScript program).
  [[ "${DSOPS_PULUMI_YAML:-1}" == "0" ]] && return 0
  want_yaml_stamp="$(yaml_build_stamp)"
  if [[ "${rebuild}" == "1" ]] || ! yaml_cache_is_valid; then
    command -v go >/dev/null 2>&1 \
      || die "go not found on PATH (need Go >= 1.25.11 to build pulumi-language-yaml ${YAML_LANGHOST_VERSION})"
    mkdir -p "${cache_root}/pulumi/yaml-langhost"
    if command -v flock >/dev/null 2>&1; then
      exec 8>"${cache_root}/pulumi/yaml-langhost/.lock"
      flock 8
      rm -rf "${cache_root}/pulumi/yaml-langhost/.build-"*
    fi
    if [[ "${rebuild}" == "1" ]] || ! yaml_cache_is_valid; then
      local tmp start
      tmp="$(mktemp -d "${cache_root}/pulumi/yaml-langhost/.build-${YAML_LANGHOST_VERSION}.XXXXXX")"
      start=${SECONDS}
      log "building pulumi-language-yaml ${YAML_LANGHOST_VERSION} (about 2.5 minutes with an empty Go build cache)"
      (cd "${yaml_langhost_dir}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -p "${DSOPS_PULUMI_BUILD_P:-2}" -trimpath -tags "osusergo,grpcnotrace" \
        -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=${YAML_LANGHOST_VERSION}" \
        -o "${tmp}/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml) >&2 \
        || { rm -rf "${tmp}"; die "building pulumi-language-yaml failed"; }
      chmod 0755 "${tmp}"
      printf '%s\n' "${want_yaml_stamp}" >"${tmp}/.build-stamp"
      rm -rf "${yaml_version_dir}"
      mv "${tmp}" "${yaml_version_dir}"
      log "built pulumi-language-yaml in $((SECONDS - start))s"
    fi
  fi
  ln -sfn "${yaml_bin}" "${bin_dir}/pulumi-language-yaml"
}

python_version_dir="${cache_root}/pulumi/python-langhost/${LANGHOST_SDK_VERSION}"
python_stamp_file="${python_version_dir}/.build-stamp"

python_build_stamp() {
  {
    printf 'python-langhost-sdk=%s recipe=%s\n' "${LANGHOST_SDK_VERSION}" "${PYTHON_BUILD_RECIPE}"
    cat "${langhost_dir}/go.mod" "${langhost_dir}/go.sum"
  } | sha256sum | cut -d' ' -f1
}

python_cache_is_valid() {
  [[ -x "${python_version_dir}/pulumi-language-python" \
    && -x "${python_version_dir}/pulumi-language-python-exec" && -f "${python_stamp_file}" ]] || return 1
  [[ "$(cat "${python_stamp_file}")" == "${want_python_stamp}" ]]
}

# The Python language host and its exec shim, in their own cache entry (built when
# missing), linked into the CLI's bin dir. The host runs the shim found next to its own
# executable (os.Executable resolves the link to the cache entry, where the shim is).
ensure_python_langhost() {
  # DSOPS_PULUMI_PYTHON=0: not needed (the quickstart is a TypeScript program).
  [[ "${DSOPS_PULUMI_PYTHON:-1}" == "0" ]] && return 0
  want_python_stamp="$(python_build_stamp)"
  if [[ "${rebuild}" == "1" ]] || ! python_cache_is_valid; then
    command -v go >/dev/null 2>&1 \
      || die "go not found on PATH (need Go >= 1.25.11 to build pulumi-language-python from sdk/v3 ${LANGHOST_SDK_VERSION})"
    mkdir -p "${cache_root}/pulumi/python-langhost"
    if command -v flock >/dev/null 2>&1; then
      exec 7>"${cache_root}/pulumi/python-langhost/.lock"
      flock 7
      rm -rf "${cache_root}/pulumi/python-langhost/.build-"*
    fi
    if [[ "${rebuild}" == "1" ]] || ! python_cache_is_valid; then
      local tmp start sdk_dir
      tmp="$(mktemp -d "${cache_root}/pulumi/python-langhost/.build-${LANGHOST_SDK_VERSION}.XXXXXX")"
      start=${SECONDS}
      log "building pulumi-language-python (sdk/v3 ${LANGHOST_SDK_VERSION}; about 35 s with an empty Go build cache)"
      (cd "${langhost_dir}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -p "${DSOPS_PULUMI_BUILD_P:-2}" -trimpath -tags "osusergo,grpcnotrace" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${LANGHOST_SDK_VERSION}" \
        -o "${tmp}/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python) >&2 \
        || { rm -rf "${tmp}"; die "building pulumi-language-python failed"; }
      # The shim is a Python script of the same sdk/v3 release, in the module cache once built.
      sdk_dir="$(cd "${langhost_dir}" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly" go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)" \
        && [[ -f "${sdk_dir}/python/cmd/pulumi-language-python-exec" ]] \
        || { rm -rf "${tmp}"; die "pulumi-language-python-exec not found in sdk/v3 ${LANGHOST_SDK_VERSION}'s module source"; }
      cp "${sdk_dir}/python/cmd/pulumi-language-python-exec" "${tmp}/pulumi-language-python-exec"
      chmod 0755 "${tmp}" "${tmp}/pulumi-language-python-exec"
      printf '%s\n' "${want_python_stamp}" >"${tmp}/.build-stamp"
      rm -rf "${python_version_dir}"
      mv "${tmp}" "${python_version_dir}"
      log "built pulumi-language-python in $((SECONDS - start))s"
    fi
  fi
  ln -sfn "${python_version_dir}/pulumi-language-python" "${bin_dir}/pulumi-language-python"
  ln -sfn "${python_version_dir}/pulumi-language-python-exec" "${bin_dir}/pulumi-language-python-exec"
}

go_langhost_dir="${build_dir}/go-langhost"
go_version_dir="${cache_root}/pulumi/go-langhost/${GO_LANGHOST_SDK_VERSION}"
go_bin="${go_version_dir}/pulumi-language-go"
go_stamp_file="${go_version_dir}/.build-stamp"

go_build_stamp() {
  {
    printf 'go-langhost-sdk=%s recipe=%s\n' "${GO_LANGHOST_SDK_VERSION}" "${GO_BUILD_RECIPE}"
    cat "${go_langhost_dir}/go.mod" "${go_langhost_dir}/go.sum"
  } | sha256sum | cut -d' ' -f1
}

go_cache_is_valid() {
  [[ -x "${go_bin}" && -f "${go_stamp_file}" ]] || return 1
  [[ "$(cat "${go_stamp_file}")" == "${want_go_stamp}" ]]
}

# The Go language host, in its own cache entry (built when missing), linked into
# the CLI's bin dir as the engine's bundled pulumi-language-go.
ensure_go_langhost() {
  # DSOPS_PULUMI_GO=0: not needed (no Go program is run).
  [[ "${DSOPS_PULUMI_GO:-1}" == "0" ]] && return 0
  want_go_stamp="$(go_build_stamp)"
  if [[ "${rebuild}" == "1" ]] || ! go_cache_is_valid; then
    command -v go >/dev/null 2>&1 \
      || die "go not found on PATH (need Go >= 1.25.11 to build pulumi-language-go)"
    mkdir -p "${cache_root}/pulumi/go-langhost"
    if command -v flock >/dev/null 2>&1; then
      exec 7>"${cache_root}/pulumi/go-langhost/.lock"
      flock 7
      rm -rf "${cache_root}/pulumi/go-langhost/.build-"*
    fi
    if [[ "${rebuild}" == "1" ]] || ! go_cache_is_valid; then
      local tmp start
      tmp="$(mktemp -d "${cache_root}/pulumi/go-langhost/.build-${GO_LANGHOST_SDK_VERSION}.XXXXXX")"
      start=${SECONDS}
      log "building pulumi-language-go (sdk/v3 ${GO_LANGHOST_SDK_VERSION}; about 2 minutes with an empty Go build cache)"
      (cd "${go_langhost_dir}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -p "${DSOPS_PULUMI_BUILD_P:-2}" -trimpath -tags "osusergo,grpcnotrace" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${GO_LANGHOST_SDK_VERSION}" \
        -o "${tmp}/pulumi-language-go" github.com/pulumi/pulumi/sdk/v3/go/pulumi-language-go) >&2 \
        || { rm -rf "${tmp}"; die "building pulumi-language-go failed"; }
      chmod 0755 "${tmp}"
      printf '%s\n' "${want_go_stamp}" >"${tmp}/.build-stamp"
      rm -rf "${go_version_dir}"
      mv "${tmp}" "${go_version_dir}"
      log "built pulumi-language-go in $((SECONDS - start))s"
    fi
  fi
  ln -sfn "${go_bin}" "${bin_dir}/pulumi-language-go"
}

# 1. Fast path: already built into the cache.
if [[ "${rebuild}" != "1" ]] && cache_is_valid; then
  ensure_yaml_langhost
  ensure_python_langhost
  ensure_go_langhost
  printf '%s\n' "${bin_dir}"
  exit 0
fi

# 2. A matching pulumi (plus the Node.js language host) already on PATH.
if [[ "${rebuild}" != "1" ]]; then
  existing="$(command -v pulumi 2>/dev/null || true)"
  if [[ -n "${existing}" ]] && command -v pulumi-language-nodejs >/dev/null 2>&1 \
    && command -v pulumi-resource-pulumi-nodejs >/dev/null 2>&1; then
    existing_dir="$(cd "$(dirname "${existing}")" && pwd)"
    if [[ "${existing_dir}" != "${bin_dir}" ]]; then
      existing_version="$(PULUMI_SKIP_UPDATE_CHECK=1 "${existing}" version 2>/dev/null \
        | tail -n1 | tr -d '[:space:]' || true)"
      if [[ "${existing_version}" == "${PULUMI_VERSION}" ]]; then
        log "reusing ${existing} (${existing_version}) from PATH"
        command -v pulumi-language-yaml >/dev/null 2>&1 \
          || log "note: no pulumi-language-yaml on PATH (Pulumi YAML programs and their tests need it)"
        command -v pulumi-language-python >/dev/null 2>&1 \
          || log "note: no pulumi-language-python on PATH (Pulumi Python programs and their tests need it)"
        command -v pulumi-language-go >/dev/null 2>&1 \
          || log "note: no pulumi-language-go on PATH (Pulumi Go programs and their tests need it)"
        printf '%s\n' "${existing_dir}"
        exit 0
      fi
    fi
  fi
fi

# 3. Build.
command -v go >/dev/null 2>&1 \
  || die "go not found on PATH (need Go >= 1.25.11 to build Pulumi ${PULUMI_VERSION})"
[[ -f "${build_dir}/go.mod" && -f "${langhost_dir}/go.mod" ]] \
  || die "missing build modules under ${build_dir}"

mkdir -p "${cache_root}/pulumi"

# Serialise concurrent runs (e.g. parallel CI jobs sharing a cache).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${cache_root}/pulumi/.lock"
  flock 9
  # Someone else may have finished the build while we waited.
  if [[ "${rebuild}" != "1" ]] && cache_is_valid; then
    printf '%s\n' "${bin_dir}"
    exit 0
  fi
  # Holding the lock, so leftovers of killed builds can go.
  rm -rf "${cache_root}/pulumi/.build-"*
fi

tmp_dir="$(mktemp -d "${cache_root}/pulumi/.build-${PULUMI_VERSION}.XXXXXX")"
cleanup() { rm -rf "${tmp_dir}"; }
trap cleanup EXIT

export GOTOOLCHAIN=local
export CGO_ENABLED=0
# -mod=readonly: the pins in scripts/pulumi-build are complete; never rewrite them.
export GOFLAGS="-mod=readonly -buildvcs=false"

jobs="${DSOPS_PULUMI_BUILD_P:-2}"
tags="osusergo,grpcnotrace"
version_pkg="github.com/pulumi/pulumi/sdk/v3/go/common/version"

log "$(go version)"
log "building into ${bin_dir} (about 5 minutes with empty Go caches)"
start=${SECONDS}

# No `go mod download` up front: it also asks the proxy for each module's
# .info, which the proxy refuses for some pinned pseudo-versions (e.g.
# gocloud.dev v0.46.1-0.20260810195832-b5401c07b5f1) although it serves their
# .mod and .zip; `go build` fetches only what it compiles.

log "building pulumi ${PULUMI_VERSION}"
(cd "${build_dir}" && go build -p "${jobs}" -trimpath -tags "${tags}" \
  -ldflags "-s -w -X ${version_pkg}.Version=${PULUMI_VERSION}" \
  -o "${tmp_dir}/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) >&2

log "building pulumi-language-nodejs (sdk/v3 ${LANGHOST_SDK_VERSION})"
(cd "${langhost_dir}" && go build -p "${jobs}" -trimpath -tags "${tags}" \
  -ldflags "-s -w -X ${version_pkg}.Version=${LANGHOST_SDK_VERSION}" \
  -o "${tmp_dir}/pulumi-language-nodejs" \
  github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs) >&2

got_version="$(PULUMI_SKIP_UPDATE_CHECK=1 "${tmp_dir}/pulumi" version | tail -n1 | tr -d '[:space:]')"
[[ "${got_version}" == "${PULUMI_VERSION}" ]] \
  || die "built pulumi reports '${got_version}', expected ${PULUMI_VERSION}"

# The official CLI distribution ships a tiny `pulumi-resource-pulumi-nodejs`
# launcher next to `pulumi` (the provider behind pulumi.dynamic.Resource). The
# engine looks for this "bundled" plugin next to its own executable first and
# warns when it has to take one from elsewhere on PATH, so provide one here.
# It runs the dynamic-provider entry point of the @pulumi/pulumi that the
# program (the provider's working directory) resolves.
cat >"${tmp_dir}/pulumi-resource-pulumi-nodejs" <<'SHIM'
#!/bin/sh
# Installed by scripts/install-pulumi.sh: Node.js dynamic-provider launcher.
entry=$(node -e "process.stdout.write(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || {
  echo "pulumi-resource-pulumi-nodejs: cannot resolve @pulumi/pulumi from $(pwd)" >&2
  exit 1
}
exec node "$entry" "$@"
SHIM
chmod 0755 "${tmp_dir}/pulumi-resource-pulumi-nodejs"

# Install atomically: the bin dir either holds a complete build or nothing.
printf '%s\n' "${want_stamp}" >"${tmp_dir}/.build-stamp"
mkdir -p "${version_dir}"
rm -rf "${bin_dir}.old"
if [[ -e "${bin_dir}" ]]; then
  mv "${bin_dir}" "${bin_dir}.old"
fi
rm -f "${stamp_file}"
mkdir -p "${tmp_dir}/bin"
mv "${tmp_dir}/pulumi" "${tmp_dir}/pulumi-language-nodejs" \
  "${tmp_dir}/pulumi-resource-pulumi-nodejs" "${tmp_dir}/bin/"
mv "${tmp_dir}/bin" "${bin_dir}"
mv "${tmp_dir}/.build-stamp" "${stamp_file}"
rm -rf "${bin_dir}.old"

log "built in $((SECONDS - start))s"
ensure_yaml_langhost
ensure_python_langhost
ensure_go_langhost
printf '%s\n' "${bin_dir}"
