"""Grading throughput: every RealCritic row here (both scenarios, all local tasks), serial vs parallel.

"serial" is ``grade_batch(n_jobs=1)`` and "parallel" ``grade_batch(n_jobs=<cores>)``; both use the
same fast paths in the caller and the same killable math-verify worker processes (worker start-up
included). Prints items/s for both and the ratio, plus whether both runs gave identical grades.

    .venv/bin/python scripts/bench_grading.py [--data DIR/realcritic] [--jobs N] [--timeout 5]

``--data`` defaults to ``realcritic`` in the project's data folder (``SCRIT_DATA_DIR``, else ../shared/data;
see scrit_utils/core/data_dir.py).
"""
from __future__ import annotations

import argparse
import os
import time

from scrit_utils.core import data_dir
from scrit_utils.critique.grading import grade_batch
from scrit_utils.worlds import real



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(data_dir.data_dir() / "realcritic"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    items = []
    for scenario in real.REALCRITIC_SCENARIOS:
        items += real.load_realcritic(args.data, scenario)
    pairs = [(it.pred, it.gt) for it in items]
    print(f"{len(pairs)} items ({', '.join(real.REALCRITIC_SCENARIOS)}; "
          f"{len({it.task for it in items})} tasks), timeout {args.timeout:g} s, {os.cpu_count()} cores")
    timings = {}
    grades = {}
    for name, jobs in (("serial", 1), ("parallel", args.jobs)):
        t = time.perf_counter()
        grades[name] = grade_batch(pairs, n_jobs=jobs, timeout_s=args.timeout, progress=True)
        timings[name] = time.perf_counter() - t
        print(f"{name:8s} n_jobs={jobs:<3d} {timings[name]:7.1f} s  {len(pairs) / timings[name]:8.1f} items/s  "
              f"({sum(grades[name])} graded correct)")
    print(f"speed-up parallel/serial: {timings['serial'] / timings['parallel']:.2f}x; "
          f"identical grades: {grades['serial'] == grades['parallel']}")


if __name__ == "__main__":
    main()
