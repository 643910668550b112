"""Sizing the study from a pilot (scrit_utils.study.design) on cases with known answers and on a synthetic pilot."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from scrit_utils.study import design as sd, claims as rep

from . import study_synth

Z = 1.959964 + 0.841621  # normal quantiles: 95% two-sided + 80% power


def _row(claim="c", metric="cc_mean", paper=3.0, se_item=1.0, n_items=100, se_seed=0.0, n_seeds=3, seed_terms=0):
    return {"claim": claim, "metric": metric, "paper_effect": paper, "unit": "points", "se_item": se_item,
            "n_items": n_items, "se_seed": se_seed, "n_seeds": n_seeds, "seed_terms": seed_terms}


def test_item_noise_shrinks_with_the_square_root_of_items():
    r = _row()
    assert sd.scaled_mde(r, 100, 3) == pytest.approx(Z, rel=1e-5)
    assert sd.scaled_mde(r, 400, 3) == pytest.approx(Z / 2, rel=1e-5)  # 4x the items: half the MDE
    assert sd.scaled_mde(r, 400, 5) == sd.scaled_mde(r, 400, 3)  # no seed noise: seeds do not matter


def test_seed_noise_needs_seeds_and_t_quantiles():
    r = _row(se_item=0.0, se_seed=1.0, n_seeds=3, seed_terms=1)  # seed SD of the arm: sqrt(3)
    assert sd.scaled_mde(r, 100, 1) == math.inf
    from scipy import stats

    want = (stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * 1.0  # the pilot's own design: its own SE, df 2
    assert sd.scaled_mde(r, 100, 3) == pytest.approx(want, rel=1e-6)
    more = sd.scaled_mde(r, 100, 12)  # 4x the seeds: half the SE and df 11
    assert more == pytest.approx((stats.t.ppf(0.975, 11) + stats.t.ppf(0.8, 11)) * 0.5, rel=1e-6)


def test_plan_is_the_cheapest_design_that_reaches_every_paper_effect():
    comp = pd.DataFrame([_row("a", paper=2.0), _row("b", paper=5.0, se_item=2.0)])
    best, grid = sd.plan(comp, items=(100, 200, 400, 800), seeds=(3,), claims=[("a", "cc_mean"), ("b", "cc_mean")])
    # a needs MDE <= 2: Z / sqrt(n / 100) <= 2 -> n >= 197; b needs 2Z / sqrt(n / 100) <= 5 -> n >= 126
    assert best == (200, 3)
    assert grid[(grid["claim"] == "a") & (grid["n_items"] == 100)]["detectable"].item() is False
    none, _ = sd.plan(comp, items=(100,), seeds=(3,), claims=[("a", "cc_mean")])
    assert none is None
    with pytest.raises(KeyError, match="no comparison"):
        sd.grid(comp, (100,), (3,), claims=[("missing", "cc_mean")])


def test_a_pilot_predicts_its_own_mde_and_sizes_the_study():
    """On a synthetic pilot: at the pilot's own design the prediction is the pilot's MDE (trained vs base)."""
    rows = study_synth.study(gain=0.01, n=60)
    comp = rep.comparisons(rows, n_boot=200)
    r = comp[(comp["claim"] == "SCRIT beats the base critic") & (comp["metric"] == "cc_mean")].iloc[0].to_dict()
    assert r["n_items"] == 60 and r["n_seeds"] == 3 and r["seed_terms"] == 1
    assert sd.scaled_mde(r, 60, 3) == pytest.approx(r["mde"], rel=1e-9)
    best, grid = sd.plan(comp, items=(60, 240, 960, 3840), seeds=(3, 5))
    assert set(grid["claim"]) == {c for c, _ in sd.HEADLINE}
    # more seeds never raise a claim's predicted MDE (more items can, a little: see the module doc)
    for _, g in grid.groupby(["claim", "metric", "n_items"]):
        assert list(g.sort_values("n_seeds")["mde"]) == sorted(g["mde"], reverse=True)
    a = grid[(grid["claim"] == "SCRIT beats the base critic") & (grid["metric"] == "cc_mean") & (grid["n_seeds"] == 3)]
    assert a["mde"].iloc[-1] > a["mde"].min()  # 3840 items x 3 seeds: seed noise at df 2 dominates
    if best is not None:
        ok = grid[(grid["n_items"] == best[0]) & (grid["n_seeds"] == best[1])]
        assert ok["detectable"].all()


def test_items_needed_in_the_claims_table_follows_the_design_tables_noise_model():
    """study_report.items_for and study_design.scaled_mde are one rule: n items give exactly the MDE asked for."""
    rows = study_synth.study(gain=0.01, n=60)
    comp = rep.comparisons(rows, n_boot=200)
    for _, r in comp[comp["n_seeds"].fillna(0) > 1].iterrows():
        r = r.to_dict()
        target = sd.scaled_mde(r, 500, int(r["n_seeds"]))
        n = rep.items_for(r, target)
        assert n is not None and n <= 500 and sd.scaled_mde(r, n, int(r["n_seeds"])) <= target
        assert sd.scaled_mde(r, n - 1, int(r["n_seeds"])) > target
    # seed noise alone above the target: no item count is enough
    r = comp[comp["se_seed"].fillna(0) > 0].iloc[0].to_dict()
    assert rep.items_for(r, sd.scaled_mde(r, 10**9, int(r["n_seeds"])) / 2) is None
