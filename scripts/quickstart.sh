#!/usr/bin/env bash
# The quickstart: install, run the example training as a tracked run, show where it is.
#   scripts/quickstart.sh
#   HPCLAB_STORE=/shared/hpclab scripts/quickstart.sh
set -euo pipefail
# shellcheck source=scripts/_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$HPCLAB_ROOT"
hpclab_python_env
export HPCLAB_STORE="${HPCLAB_STORE:-$HPCLAB_ROOT/hpclab-store}"

echo
echo "== the example training, tracked (store: $HPCLAB_STORE)"
python -m hpclab.examples.train --project example --steps 300 --lr 1e-3 --seed 0
echo
echo "== hpclab runs list --project example"
hpclab runs list --project example
echo
echo "Done. The store is $HPCLAB_STORE; inspect a run with: hpclab runs show RUN_ID"
