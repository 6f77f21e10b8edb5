#!/usr/bin/env python
"""Secret scanner benchmark: loading the rules, the environment, a ~1 MB patch.

    python scripts/bench_secrets.py [--patch-mb 1] [--env 100] [--repeats 5]

Load: the first use in a fresh process that has imported hpclab (importing detect-secrets
and building the rules), what every run pays once at start. Environment:
``redact_environ`` on this process's variables, padded to ``--env`` values with ordinary
ones (paths, ids, flags) and a few token-shaped ones. Patch: ``redact_patch`` on a
synthetic unified diff of Python code (context, removed and added lines; an assignment
to a secret-looking name every 80 lines, a token every 800), median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOAD = (  # after hpclab itself is imported (a run has done that already)
    "import time; from hpclab.tracking.secret_rules import tables\n"
    "t = time.perf_counter(); tables(); print(time.perf_counter() - t)\n"
)


def synthetic_patch(target_bytes: int) -> str:
    out: list[str] = []
    size = 0
    n = 0
    while size < target_bytes:
        n += 1
        hunk = [f"diff --git a/pkg/mod{n}.py b/pkg/mod{n}.py\n", "index 1111111..2222222 100644\n",
                f"--- a/pkg/mod{n}.py\n", f"+++ b/pkg/mod{n}.py\n",
                "@@ -1,27 +1,27 @@ def f():\n"]  # fmt: skip
        # 40 lines: 14 context, 13 removed, 13 added (27 on each side)
        for i in range(40):
            kind = " -+"[i % 3]
            line = f"    value_{i} = compute(batch[{i}], lr=3e-4, key_dim=64)  # step {n}"
            if i == 7 and n % 2 == 0:
                line = f'    api_token = "Zq8Xk2Lm9Pw4Rt7Vb3Nc6Hy{n % 10}"'
            if i == 9 and n % 20 == 0:
                line = '    GH = "ghp_' + "FakeTokenForBenchmarks0123456789ab" + 'CD"'
            hunk.append(f"{kind}{line}\n")
        text = "".join(hunk)
        out.append(text)
        size += len(text)
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-mb", type=float, default=1.0)
    parser.add_argument("--env", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(REPO))
    loads = [float(subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True,
                                  text=True, check=True).stdout) for _ in range(3)]  # fmt: skip
    print(f"load rules (fresh process): {statistics.median(loads) * 1e3:.0f} ms")

    from hpclab.tracking.environment import redact_environ
    from hpclab.tracking.secrets import redact_patch

    values = dict(os.environ)
    i = 0
    while len(values) < args.env:
        i += 1
        values[f"BENCH_VAR_{i}"] = (
            "ghp_" + "FakeTokenForBenchmarks0123456789ab" + "CD"
            if i % 25 == 0
            else f"/scratch/user/project_{i}/data:/opt/lib{i}:--flag={i}"
        )
    redact_environ(values)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        redact_environ(values)
        times.append(time.perf_counter() - t)
    print(f"redact_environ, {len(values)} values: {statistics.median(times) * 1e3:.1f} ms")

    patch = synthetic_patch(int(args.patch_mb * 1e6))
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        _, findings = redact_patch(patch)
        times.append(time.perf_counter() - t)
    mb = len(patch.encode()) / 1e6
    print(
        f"redact_patch, {mb:.2f} MB, {patch.count(chr(10))} lines, {len(findings)} findings: "
        f"{statistics.median(times):.2f} s ({mb / statistics.median(times):.1f} MB/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
