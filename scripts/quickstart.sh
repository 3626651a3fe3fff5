#!/usr/bin/env bash
# The README's main job (`npm start`): set up on a fresh machine, seed the embedded file store
# with generated secrets (first run only), and `pulumi up` the quickstart stack on a local file
# backend. Outputs are printed with secrets hidden.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
# The quickstart is a TypeScript program: no YAML or Python language host to build.
export DSOPS_PULUMI_YAML=0
export DSOPS_PULUMI_PYTHON=0
bash scripts/setup.sh --pulumi
# DSOPS_STATE_DIR: where the local backend keeps the stack (default .state/pulumi).
source scripts/pulumi-env.sh "${DSOPS_STATE_DIR:-.state/pulumi}"

cfg=quickstart/dsops.yaml
gen() { node -e 'process.stdout.write(require("crypto").randomBytes(18).toString("base64url"))'; }
if ! ./bin/dsops --config "$cfg" get --env dev --var API_TOKEN >/dev/null 2>&1; then
  echo "[quickstart] seeding quickstart/secrets.store with generated secrets" >&2
  printf '{"username":"app","password":"%s"}' "$(gen)" | ./bin/dsops --config "$cfg" secrets set --store local --key app/db
  gen | ./bin/dsops --config "$cfg" secrets set --store local --key app/api-token
fi

pulumi stack select --create dev --non-interactive >/dev/null
pulumi config set dsops:configFile dsops.yaml >/dev/null   # relative to the program folder, quickstart/
pulumi up --yes --non-interactive --skip-preview
echo
pulumi stack output
