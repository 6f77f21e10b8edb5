#!/usr/bin/env bash
# The test command: install everything the tests need on a fresh machine, start the dev
# Slurm cluster, then pytest.
#   scripts/test.sh            # the whole suite
#   scripts/test.sh -k metrics # any pytest arguments
set -euo pipefail
# shellcheck source=scripts/_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$HPCLAB_ROOT"
hpclab_apt_install git slurm-wlm slurmdbd munge mariadb-server mariadb-client chromium fonts-dejavu-core
hpclab_python_env
# DuckDB-WASM for the site's SQL tab (pinned, npm); without it the SQL tests skip, saying why
bash scripts/vendor_duckdb.sh || echo "warning: DuckDB-WASM not vendored (npm); the SQL tab says how to get it" >&2
eval "$(bash slurm/cluster.sh start)"
export SLURM_CONF
python -m pytest -q -p no:cacheprovider "$@"
