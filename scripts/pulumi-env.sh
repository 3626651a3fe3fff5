# Sourced by scripts that run the Pulumi CLI offline: puts the CLI, its Node.js language host and
# the dynamic provider plugin on PATH, and sets the variables for a local, offline backend.
# Usage: source scripts/pulumi-env.sh <state-dir>
_dsops_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dsops_pulumi_bin="$(bash "$_dsops_root/scripts/install-pulumi.sh" | tail -n1)"
export PATH="$_dsops_pulumi_bin:$PATH"
mkdir -p "$1"
export PULUMI_BACKEND_URL="file://$(cd "$1" && pwd)"
export PULUMI_HOME="${PULUMI_HOME:-$(cd "$1" && pwd)/.pulumi-home}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-quickstart}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_CONFIRMATIONS=true
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
