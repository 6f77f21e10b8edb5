#!/usr/bin/env bash
# The quickstart: install, run the example sweep (6 runs, locally), index it, build the
# lab website, say where it is.
#   scripts/quickstart.sh
#   HPCLAB_STORE=/shared/hpclab scripts/quickstart.sh
set -euo pipefail
# shellcheck source=scripts/_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$HPCLAB_ROOT"
hpclab_python_env
# DuckDB-WASM for the site's SQL tab (pinned, npm); without it the tab says how to get it
bash scripts/vendor_duckdb.sh || echo "warning: DuckDB-WASM not vendored (npm); the SQL tab says how to get it" >&2
export HPCLAB_STORE="${HPCLAB_STORE:-$HPCLAB_ROOT/hpclab-store}"

echo
echo "== the example sweep, 6 runs on this machine (store: $HPCLAB_STORE)"
echo "   python -m hpclab.launch -m hydra/launcher=local optim.lr=1e-3,1e-4 seed=0,1,2"
python -m hpclab.launch -m hydra/launcher=local optim.lr=1e-3,1e-4 seed=0,1,2
echo
echo "== hpclab runs list --project example"
hpclab runs list --project example
echo
echo "== hpclab index && hpclab site build (the lab website)"
hpclab index
hpclab site build
echo
echo "Done. The store is $HPCLAB_STORE; inspect a run with: hpclab runs show RUN_ID"
echo "The website is in $HPCLAB_STORE/.site/html: open it with  hpclab site serve  (then"
echo "http://127.0.0.1:8000/; its charts read data files over HTTP, not from file://)."
echo "Keep it current while jobs train: hpclab site serve --watch (or hpclab watch --site)."
echo "On Slurm: python -m hpclab.launch -m hydra/launcher=slurm optim.lr=1e-3,1e-4 seed=0,1,2"
