"""Loaded by every Python started by ``hpclab run -- python ...`` (this directory is put
first on its ``PYTHONPATH``): attaches the process to the run the parent planned, so
``hpclab.current_run()`` and the TensorBoard ``SummaryWriter`` patch work without editing
the script. Only the first Python attaches (the marker variable is removed); an existing
``sitecustomize`` later on the path is still imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _chain() -> None:
    """Import the next ``sitecustomize`` on ``sys.path``, which this module shadows."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location(
                "_hpclab_chained_sitecustomize", candidate
            )
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


def _attach() -> None:
    if os.environ.pop("HPCLAB_AUTORUN", None) != "1":
        return
    try:
        from hpclab.launch.command import attach_child
    except ImportError as e:  # a Python without hpclab installed: run the script anyway
        print(
            f"hpclab: warning: this Python cannot import hpclab ({e}); not tracked", file=sys.stderr
        )
        return
    attach_child()


_chain()
_attach()
