# Sourced by quickstart.sh and test.sh: a Python environment with hpclab installed.
#
# Uses the active virtualenv if there is one, else $HPCLAB_VENV, else ./.venv (created).
# torch: the `train` extra asks for a range (users bring their own CUDA build); when no
# torch is installed, torch==2.13.0 goes in first (a CPU wheel that pip finds locally
# here), so the range is already satisfied and nothing multi-GB is downloaded.
set -euo pipefail

HPCLAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HPCLAB_ROOT

hpclab_python_env() {
    local venv py="${PYTHON:-python3}"
    if [ -n "${VIRTUAL_ENV:-}" ]; then venv="$VIRTUAL_ENV"; else venv="${HPCLAB_VENV:-$HPCLAB_ROOT/.venv}"; fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "hpclab: creating virtualenv $venv"
        "$py" -m venv "$venv"
    fi
    # shellcheck disable=SC1091
    . "$venv/bin/activate"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    if ! python -c 'import torch' >/dev/null 2>&1; then
        echo "hpclab: installing torch==2.13.0 (CPU)"
        hpclab_pip install "torch==2.13.0"
    fi
    echo "hpclab: installing hpclab[train,dev,search,import] into $venv"
    hpclab_pip install -e "$HPCLAB_ROOT[train,dev,search,import]"
}

# pip, quiet, without the machine-specific "Location ... is ignored" noise of local
# indexes; pip's own exit status is kept.
hpclab_pip() {
    python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

# Debian packages, installed only when missing (needs root, as on CI).
hpclab_apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "hpclab: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "hpclab: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
