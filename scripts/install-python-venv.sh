#!/usr/bin/env bash
# Provide the Python virtual environment that Pulumi Python programs of this repository's tests
# (and the README's Python example) run in: `pulumi` from PyPI at the CLI's version, plus the
# generated SDK of sdk-gen/python (package pulumi_dsops).
#
# Usage:
#   scripts/install-python-venv.sh        # create/update if needed, print the venv dir
#
# The last line on stdout is the venv directory (for `runtime.options.virtualenv` in
# Pulumi.yaml); progress goes to stderr.
#
# Idempotent and cached outside the repo, keyed by the pins:
#   ${DSOPS_CACHE:-$HOME/.cache/dsops}/python-venv/pulumi-<version>-py<major.minor>-r<recipe>
#   * the venv is complete only once its .venv-stamp is written (last); a venv without it
#     (a killed run) is removed and made again;
#   * the generated SDK is reinstalled (from a copy: pip builds in the source tree) whenever
#     the files under sdk-gen/python change (.sdk-stamp holds their hash);
#   * concurrent runs are serialised with flock.
# Creating it: about 15 s with pip's download cache warm (more on a cold network).
#
# Needs: python3 >= 3.9 with the venv module, and access to PyPI (or a pip index configured
# for pip).
#
# Environment:
#   DSOPS_CACHE     cache root (default: $HOME/.cache/dsops)
#   DSOPS_PYTHON    the interpreter to create the venv with (default: python3)

set -euo pipefail

# The pulumi Python SDK at the CLI's version (scripts/install-pulumi.sh's PULUMI_VERSION).
PULUMI_PY_VERSION="3.259.0"
# Bump to force new venvs when this recipe changes.
VENV_RECIPE="1"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${script_dir}/.." && pwd)"
sdk_src="${root}/sdk-gen/python"
python="${DSOPS_PYTHON:-python3}"

log() { printf 'install-python-venv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "${python}" >/dev/null 2>&1 || die "${python} not found on PATH (need Python >= 3.9 with venv)"
py_version="$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"${python}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "${python} is Python ${py_version}; the generated SDK needs >= 3.9"
[[ -f "${sdk_src}/pyproject.toml" ]] || die "no generated Python SDK at ${sdk_src} (npm run gen:sdk)"

cache_root="${DSOPS_CACHE:-${HOME:-/tmp}/.cache/dsops}"
venv="${cache_root}/python-venv/pulumi-${PULUMI_PY_VERSION}-py${py_version}-r${VENV_RECIPE}"
venv_stamp="${venv}/.venv-stamp"
sdk_stamp="${venv}/.sdk-stamp"

# The generated SDK's files (names and contents), excluding what a pip build leaves behind.
sdk_hash() {
  (cd "${sdk_src}" && find . -type f ! -path './build/*' ! -path '*.egg-info/*' ! -name '*.pyc' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
want_sdk="$(sdk_hash)"
want_venv="pulumi=${PULUMI_PY_VERSION} python=${py_version} recipe=${VENV_RECIPE}"

is_current() {
  [[ -x "${venv}/bin/python" && -f "${venv_stamp}" && -f "${sdk_stamp}" ]] || return 1
  [[ "$(cat "${venv_stamp}")" == "${want_venv}" && "$(cat "${sdk_stamp}")" == "${want_sdk}" ]]
}

if is_current; then
  printf '%s\n' "${venv}"
  exit 0
fi

mkdir -p "${cache_root}/python-venv"
if command -v flock >/dev/null 2>&1; then
  exec 6>"${cache_root}/python-venv/.lock"
  flock 6
fi

pip() { "${venv}/bin/python" -m pip --disable-pip-version-check --no-input "$@" >&2; }
start=${SECONDS}

if ! [[ -x "${venv}/bin/python" && -f "${venv_stamp}" && "$(cat "${venv_stamp}")" == "${want_venv}" ]]; then
  log "creating ${venv} (pulumi ${PULUMI_PY_VERSION} from PyPI, Python ${py_version})"
  rm -rf "${venv}"
  "${python}" -m venv "${venv}" >&2 || { rm -rf "${venv}"; die "python3 -m venv failed"; }
  pip install --quiet "pulumi==${PULUMI_PY_VERSION}" \
    || { rm -rf "${venv}"; die "pip install pulumi==${PULUMI_PY_VERSION} failed"; }
  printf '%s\n' "${want_venv}" >"${venv_stamp}"
fi

if ! [[ -f "${sdk_stamp}" && "$(cat "${sdk_stamp}")" == "${want_sdk}" ]]; then
  log "installing the generated SDK (sdk-gen/python) into ${venv}"
  rm -f "${sdk_stamp}"
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  cp -R "${sdk_src}" "${work}/src"
  printf 'pulumi==%s\n' "${PULUMI_PY_VERSION}" >"${work}/constraints.txt"
  pip install --quiet --force-reinstall --no-deps "${work}/src" \
    || die "pip install of sdk-gen/python failed"
  # Its dependencies (parver, semver, …), with pulumi held at the pinned version.
  pip install --quiet -c "${work}/constraints.txt" "${work}/src" \
    || die "pip install of sdk-gen/python's dependencies failed"
  "${venv}/bin/python" -c 'import pulumi_dsops' \
    || die "the installed SDK does not import (python -c 'import pulumi_dsops')"
  printf '%s\n' "${want_sdk}" >"${sdk_stamp}"
fi

log "ready in $((SECONDS - start))s"
printf '%s\n' "${venv}"
