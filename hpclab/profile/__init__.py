"""Latency profiling: ``hpclab.profile.latency(fn, inputs, ...)`` times each call and
records percentiles, throughput and a histogram into the run (``profile/<name>.json``)."""

from __future__ import annotations
