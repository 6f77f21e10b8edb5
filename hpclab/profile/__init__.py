"""Latency profiling: ``hpclab.profile.latency(fn, inputs, ...)`` times each call and
records percentiles, throughput and a histogram into the run (``profile/<name>.json``),
for the catalog's ``latency`` table and the run and compare pages."""

from __future__ import annotations

from hpclab.profile.latency import LatencyResult, latency

__all__ = ["LatencyResult", "latency"]
