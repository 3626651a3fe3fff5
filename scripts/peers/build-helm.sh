#!/usr/bin/env bash
# Provide `helm` (helm.sh/helm/v3 v3.22.0) and `k8s-validate` (the offline
# Kubernetes manifest validator of scripts/helm-build/k8s-validate), built from
# source through the Go module proxy with the pins of scripts/helm-build/go.mod.
# The deploy tests (tests/integration/deploy-helm.test.ts) lint and render
# deploy/helm/dsops with them.
#
# Usage:
#   scripts/peers/build-helm.sh            # build if needed, print the bin dir
#   scripts/peers/build-helm.sh --check    # print the bin dir if built, else exit 3 (no build)
#   export PATH="$(scripts/peers/build-helm.sh | tail -n1):$PATH"
#
# The last line on stdout is the bin dir; progress and build output go to
# stderr.
#
# Idempotent: a finished build is cached outside the repo, keyed by version, in
# ${DSOPS_CACHE:-$HOME/.cache/dsops}/helm/v3.22.0/bin, with a stamp of the pins
# (go.mod, go.sum), the validator's source and the recipe; when it is there the
# script only prints its path. Otherwise both are built (a few minutes on 2
# cores with an empty Go build cache) and installed atomically: the bin dir
# holds a complete build or nothing. Concurrent runs are serialised (flock).
#
# Needs: Go >= 1.26 (GOTOOLCHAIN=local: no toolchain download) and the Go
# module proxy. The Go build and module caches stay where Go puts them.
#
# Environment:
#   DSOPS_CACHE           cache root (default: $HOME/.cache/dsops)
#   DSOPS_HELM_BUILD_P    `go build -p` parallelism (default: 2)
#   DSOPS_HELM_REBUILD=1  ignore the cache

set -euo pipefail

HELM_VERSION="v3.22.0"
# Bump to force a rebuild of cached binaries when the build recipe changes.
BUILD_RECIPE="1"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="$(cd "${script_dir}/.." && pwd)/helm-build"

cache_root="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}"
version_dir="${cache_root}/helm/${HELM_VERSION}"
bin_dir="${version_dir}/bin"
stamp_file="${version_dir}/.build-stamp"

log() { printf 'build-helm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f "${build_dir}/go.mod" && -f "${build_dir}/k8s-validate/main.go" ]] \
  || die "missing build module ${build_dir}"

build_stamp() {
  {
    printf 'helm=%s recipe=%s\n' "${HELM_VERSION}" "${BUILD_RECIPE}"
    cat "${build_dir}/go.mod" "${build_dir}/go.sum" "${build_dir}/k8s-validate/main.go"
  } | sha256sum | cut -d' ' -f1
}

cache_is_valid() {
  [[ -x "${bin_dir}/helm" && -x "${bin_dir}/k8s-validate" && -f "${stamp_file}" ]] || return 1
  [[ "$(cat "${stamp_file}")" == "${want_stamp}" ]]
}

want_stamp="$(build_stamp)"
rebuild="${DSOPS_HELM_REBUILD:-0}"

if [[ "${rebuild}" != "1" ]] && cache_is_valid; then
  printf '%s\n' "${bin_dir}"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  log "not built yet (or built from other pins): run scripts/peers/build-helm.sh"
  exit 3
fi

command -v go >/dev/null 2>&1 \
  || die "go not found on PATH (need Go >= 1.26 to build helm ${HELM_VERSION})"

mkdir -p "${cache_root}/helm"
if command -v flock >/dev/null 2>&1; then
  exec 9>"${cache_root}/helm/.lock"
  flock 9
  if [[ "${rebuild}" != "1" ]] && cache_is_valid; then
    printf '%s\n' "${bin_dir}"
    exit 0
  fi
  # Holding the lock, so leftovers of killed builds can go.
  rm -rf "${cache_root}/helm/.build-"*
fi

tmp_dir="$(mktemp -d "${cache_root}/helm/.build-${HELM_VERSION}.XXXXXX")"
trap 'rm -rf "${tmp_dir}"' EXIT

export GOTOOLCHAIN=local
export CGO_ENABLED=0
# -mod=readonly: the pins in scripts/helm-build are complete; never rewrite them.
export GOFLAGS="-mod=readonly -buildvcs=false"

jobs="${DSOPS_HELM_BUILD_P:-2}"
version_pkg="helm.sh/helm/v3/internal/version"
# As helm's Makefile does: the Kubernetes version `helm lint` checks deprecated
# APIs against and `helm template` renders .Capabilities with, from the pinned
# k8s.io modules (v0.37.x: Kubernetes 1.37).
k8s_minor="$(sed -n 's|^\s*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "${build_dir}/go.mod" | head -n1)"
[[ -n "${k8s_minor}" ]] || die "cannot read the k8s.io/client-go version from ${build_dir}/go.mod"
k8s_ldflags=""
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  k8s_ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done

log "$(go version)"
log "building helm ${HELM_VERSION} and k8s-validate into ${bin_dir} (a few minutes with an empty Go build cache)"
start=${SECONDS}

(cd "${build_dir}" && go build -p "${jobs}" -trimpath \
  -ldflags "-s -w -X ${version_pkg}.version=${HELM_VERSION}${k8s_ldflags}" \
  -o "${tmp_dir}/helm" helm.sh/helm/v3/cmd/helm) >&2
(cd "${build_dir}" && go build -p "${jobs}" -trimpath -ldflags "-s -w" \
  -o "${tmp_dir}/k8s-validate" ./k8s-validate) >&2

got="$("${tmp_dir}/helm" version --template '{{.Version}}' 2>/dev/null || true)"
[[ "${got}" == "${HELM_VERSION}" ]] || die "built helm reports '${got}', expected ${HELM_VERSION}"

# Install atomically: the bin dir either holds a complete build or nothing.
printf '%s\n' "${want_stamp}" >"${tmp_dir}/.build-stamp"
mkdir -p "${version_dir}"
rm -rf "${bin_dir}.old"
[[ -e "${bin_dir}" ]] && mv "${bin_dir}" "${bin_dir}.old"
rm -f "${stamp_file}"
mkdir -p "${tmp_dir}/bin"
mv "${tmp_dir}/helm" "${tmp_dir}/k8s-validate" "${tmp_dir}/bin/"
mv "${tmp_dir}/bin" "${bin_dir}"
mv "${tmp_dir}/.build-stamp" "${stamp_file}"
rm -rf "${bin_dir}.old"

log "built in $((SECONDS - start))s"
printf '%s\n' "${bin_dir}"
