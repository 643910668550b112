"""Study v3's dev pilot: variance components of the pre-registered contrasts, and the design they call for.

The pilot (``configs/toy-v3-pilot.yaml``: dev split, the claims' arms at a few example counts, 2 SFT seeds,
3 builds) runs notebook 05; its points give, for every pre-registered difference claim it measured, the
per-unit SDs of the three random effects (:func:`scrit_utils.study.hierarchical.hierarchical_difference`:
``sd_build`` of one build's contrast, ``sd_seed`` of one SFT seed, ``sd_item`` of one item's shared contrast).
:func:`mde_grid` turns them into the minimal detectable effect of every candidate design (builds x seeds x
items, :func:`~scrit_utils.study.hierarchical.plan_mde`), so the open items of
``results/pilot/PREREGISTRATION_v3.md`` are chosen from noise measured on dev, never from a benchmark
number. The pilot's own effect estimates are printed for the record and never reused.

Usage (after ``scrit run --profile configs/toy-v3-pilot.yaml`` has finished notebook 05)::

    .venv/bin/python scripts/pilot_v3.py --profile configs/toy-v3-pilot.yaml   # -> results/pilot/v3_pilot.md
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from scrit_utils.study import hierarchical as hi
from scrit_utils.study.preregistration import BASE, CLAIMS, Claim, cell, scrit_top_size

#: the candidate designs the grid covers (the pilot itself has 3 builds and 2 seeds)
BUILDS, SEEDS, ITEMS = (3, 4, 5), (1, 2, 3), (300, 600, 1200)


def components(cells: Mapping, size: float | None = None, claims: Sequence[Claim] = CLAIMS, n_boot: int = 500,
               rng=0):
    """One row per difference claim measured at ``size`` (default: the largest count SCRIT reached; the pilot
    script passes the profile's claim size): the pilot's estimate, its per-unit SDs and the numbers of builds,
    seeds and items they come from."""
    import pandas as pd

    if size is None:
        size = scrit_top_size(cells)
    rows = []
    for c in claims:
        if c.contrast != "difference":
            continue
        a, b = cell(cells, c.arm, size), cell(cells, c.vs, size)
        if a is None or b is None:
            continue
        r = hi.hierarchical_difference(a, b, n_boot=n_boot, rng=rng, names=(c.arm, c.vs))
        rows.append({"claim": c.key, "examples": int(size), "estimate": r["estimate"], "sd_build": r["sd_build"],
                     "sd_seed": r["sd_seed"], "sd_item": r["sd_item"], "builds": r["n_builds"],
                     "seeds": int(np.shape(a)[1]), "items": r["n_items"],
                     "trained_arms": 1 if c.vs == BASE else 2})
    return pd.DataFrame(rows, columns=["claim", "examples", "estimate", "sd_build", "sd_seed", "sd_item", "builds",
                                       "seeds", "items", "trained_arms"])


def mde_grid(comp, builds: Sequence[int] = BUILDS, seeds: Sequence[int] = SEEDS, items: Sequence[int] = ITEMS):
    """The MDE (points, alpha 0.05, power 0.8) of every claim in ``comp`` under every design, one row per design
    with a column per claim and the worst claim's MDE (``max``), cheapest designs first (SFT runs per arm)."""
    import pandas as pd

    rows = []
    for nb, ns, ni in itertools.product(builds, seeds, items):
        row = {"builds": nb, "seeds": ns, "items": ni, "sft_runs_per_arm": nb * ns}
        for r in comp.itertuples():
            row[r.claim] = hi.plan_mde(r.sd_build, r.sd_seed, r.sd_item, nb, ns, ni, trained_arms=r.trained_arms)
        row["max"] = max((row[r.claim] for r in comp.itertuples()), default=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["sft_runs_per_arm", "items", "builds"]).reset_index(drop=True)
