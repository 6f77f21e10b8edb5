"""Bring your history: past runs from TensorBoard, MLflow and W&B into the store.

One module per source reads it into :class:`~hpclab.importers.common.ImportedRun`
records; :func:`~hpclab.importers.common.write_runs` stores them as hpclab runs (metrics
through the tracking layer's :class:`~hpclab.tracking.metrics.MetricWriter`), skipping any
run a previous import already brought in (``extra.imported_from``).
"""

from __future__ import annotations
