"""Evaluation harness: ``hpclab.eval.evaluate(run, predictions, labels, ...)`` writes a
run's metrics with bootstrap CIs, per-slice values (flagging slices significantly below
the rest) and its worst examples beside the run (``eval/``), for the catalog and site.

Modules: ``metrics`` (metrics from sums), ``bootstrap`` (CIs, the slice test, Holm),
``slices``, ``writing`` (files, summary, JSON-safe inputs), ``harness`` (``evaluate``).
"""

from __future__ import annotations

from hpclab.eval.harness import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate"]
