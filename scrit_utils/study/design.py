"""Size the study from a pilot: the smallest design whose headline comparisons could see the paper's effects.

A pilot run (a few data sizes, the real bases, 2-3 SFT seeds, the planned evaluation sets) gives, per claim,
the noise of its estimate (:data:`scrit_utils.study.claims.NOISE_COLS`: item SE at the pilot's items per set,
seed SE at its seeds per trained arm, and how many trained arms or sweep levels add seed noise). Item noise
shrinks with ``1/sqrt(items)`` and seed noise with ``1/sqrt(seeds)``, so the pilot predicts the minimal
detectable effect (MDE, paired, 95% confidence, 80% power) of any design ``(items per set, seeds)``:

``MDE = (t_.975 + t_.80) * sqrt(se_item^2 * n0/n + se_seed^2 * k0/k)``, with Welch-Satterthwaite degrees of
freedom ``k - 1`` per seed term (the same rule as :func:`scrit_utils.study.stats.combine_se`). Items count as
infinitely many degrees of freedom, so once seed noise dominates, more items can even raise the MDE a little (the
degrees of freedom fall toward ``k - 1``): then seeds, not items, are what the design lacks.

:func:`plan` returns the cheapest design (``items x seeds``, or a cost function you pass) whose MDE is at or
below ``|paper effect|`` for every headline claim, and the whole grid so a reader sees what each claim needs.
The pilot is not the study: its effect estimates are never reused, only its noise.

Usage::

    from scrit_utils.study import design as study_design, claims as study_report
    comp = study_report.comparisons(pilot_rows)               # a pilot's points (notebooks 05/06 format)
    best, grid = study_design.plan(comp, items=(200, 400, 800), seeds=(3, 4, 5))
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from scrit_utils.study.stats import combine_se

#: the comparisons the study exists to resolve (claim, metric), in the order the report gives them
HEADLINE: tuple[tuple[str, str], ...] = (
    ("SCRIT beats the base critic", "cc_mean"),
    ("SCRIT beats the base critic", "ei_f1_strict"),
    ("more SCRIT data helps (slope over data-size levels)", "cc_mean"),
    ("contrastive critic beats the direct critic", "cc_mean"),
    ("larger base models reach higher scores after SCRIT", "cc_mean"),
    ("ablation: no_validation", "cc_mean"),
)


def scaled_mde(row, n_items: int, n_seeds: int, confidence: float = 0.95, power: float = 0.8) -> float:
    """The MDE of ``row``'s comparison (a comparisons row with the noise columns) at ``n_items`` x ``n_seeds``."""
    if n_items < 1 or n_seeds < 1:
        raise ValueError(f"a design needs >= 1 item and >= 1 seed, got {n_items} x {n_seeds}")
    n0, k0, terms = _get(row, "n_items"), _get(row, "n_seeds"), int(_get(row, "seed_terms") or 0)
    se_item, se_seed = _get(row, "se_item"), _get(row, "se_seed") or 0.0
    if se_item is None or n0 is None:
        return math.nan  # the pilot did not measure this comparison
    se_i = float(se_item) * math.sqrt(float(n0) / n_items)
    seed_terms: list[tuple[float, int]] = []
    if terms and se_seed > 0:
        if n_seeds < 2:
            return math.inf  # one seed cannot estimate training noise
        var_each = float(se_seed) ** 2 * float(k0) / n_seeds / terms
        seed_terms = [(var_each, n_seeds - 1)] * terms
    return combine_se(0.0, se_i, seed_terms, confidence, power)["mde"]


def _get(row, key):
    v = row[key] if key in row else None
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def grid(comp, items: Sequence[int], seeds: Sequence[int], claims: Sequence[tuple[str, str]] = HEADLINE):
    """One row per (claim, metric, items, seeds): the predicted MDE and whether it reaches ``|paper effect|``."""
    import pandas as pd

    rows = []
    for claim, metric in claims:
        sel = comp[(comp["claim"] == claim) & (comp["metric"] == metric)]
        if sel.empty:
            raise KeyError(f"the pilot has no comparison {claim!r} / {metric!r}")
        r = sel.iloc[0].to_dict()
        for n in items:
            for k in seeds:
                m = scaled_mde(r, int(n), int(k))
                rows.append({"claim": claim, "metric": metric, "paper_effect": r["paper_effect"], "unit": r["unit"],
                             "n_items": int(n), "n_seeds": int(k), "mde": m,
                             "detectable": bool(m <= abs(float(r["paper_effect"]))) if not math.isnan(m) else False})
    return pd.DataFrame(rows)


def plan(comp, items: Sequence[int], seeds: Sequence[int], claims: Sequence[tuple[str, str]] = HEADLINE,
         cost: Callable[[int, int], float] = lambda n, k: n * k):
    """``((items, seeds) or None, grid)``: the cheapest design in which every claim's MDE reaches its paper effect."""
    g = grid(comp, items, seeds, claims)
    ok = g.groupby(["n_items", "n_seeds"])["detectable"].all()
    designs = sorted((cost(n, k), n, k) for (n, k), good in ok.items() if good)
    return ((designs[0][1], designs[0][2]) if designs else None), g
