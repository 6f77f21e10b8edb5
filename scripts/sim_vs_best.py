#!/usr/bin/env python
"""How often a sweep report says "worse" when no group differs (docs/statistics.md,
Comparisons: the best is chosen after seeing the data).

    python scripts/sim_vs_best.py --groups 10 --seeds 10 --sweeps 1000

Each simulated sweep has ``--groups`` groups of ``--seeds`` normal values with the same
true mean; every group is compared with the best (lowest mean), as the catalog's
``sweep_best`` comparisons are, and judged by ``hpclab.catalog.verdicts.judge_family``
twice: with Holm over the shown k - 1 comparisons only, and with the sweep's unshown
pairs counted (what the catalog does). Prints the share of sweeps with any "worse"
(the family-wise error rate, nominal alpha = 0.05) for both.
"""

from __future__ import annotations

import argparse

import numpy as np

from hpclab.catalog.stats import compare
from hpclab.catalog.verdicts import judge_family


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--sweeps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    k = args.groups
    unshown = k * (k - 1) // 2 - (k - 1)
    worse = {"shown only": 0, "all pairs (catalog)": 0}
    for _ in range(args.sweeps):
        groups = [rng.normal(0.0, 1.0, args.seeds) for _ in range(k)]
        best = int(np.argmin([g.mean() for g in groups]))
        items = [(compare(g, groups[best]), "minimize", -1.0) for i, g in enumerate(groups)
                 if i != best]  # fmt: skip
        for name, extra in (("shown only", 0), ("all pairs (catalog)", unshown)):
            judged = judge_family(items, alpha=0.05, min_seeds=3, untested=extra)
            worse[name] += any(j.verdict == "worse" for j in judged)
    for name, count in worse.items():
        share = count / args.sweeps
        se = (share * (1 - share) / args.sweeps) ** 0.5
        print(f"{k} equal groups x {args.seeds} seeds, {args.sweeps} sweeps, Holm over {name}: "
              f"P(any 'worse') = {share:.3f} +- {se:.3f} (nominal 0.05)")  # fmt: skip


if __name__ == "__main__":
    main()
