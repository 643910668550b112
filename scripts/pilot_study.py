"""Pilot the study on the dev split and print the design it calls for (:mod:`scrit_utils.study.pilot`).

    .venv/bin/python scripts/pilot_study.py --profile configs/toy.yaml --out results/pilot/toy \\
        --set sweeps.data_sizes=[0,1000] sweeps.seeds=[0,1] --items 200 400 800 --seeds 3 4 5

Writes ``<out>/report.md`` (points, comparisons with their noise, predicted MDE per design), ``points.json``
and ``design_grid.csv``; every stage is cached under the profile's artifacts dir, so a rerun resumes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrit_utils.core import config
from scrit_utils.study import pilot
from scrit_utils.pipeline import common


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides")
    ap.add_argument("--items", nargs="+", type=int, default=[200, 400, 800], help="items per set to plan over")
    ap.add_argument("--seeds", nargs="+", type=int, default=[3, 4, 5], help="SFT seeds to plan over")
    ap.add_argument("--out", required=True, help="report folder")
    a = ap.parse_args(argv)
    cfg = pilot.pilot_config(config.load(a.profile), a.set)
    common.setup_torch(cfg)
    res = pilot.run(cfg, a.items, a.seeds)
    text = pilot.report(res, cfg, a.set, a.profile)
    print(text)
    print(f"wrote {pilot.save(res, Path(a.out), text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
