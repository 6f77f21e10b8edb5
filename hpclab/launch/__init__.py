"""Launching: the Hydra entry point (``python -m hpclab.launch``), the launcher plugins,
preflight, and the scheduler adapters. Heavy modules are imported lazily."""
