"""Pooled CIs (training + evaluation noise), Spearman trend, differences (scrit_utils.study_stats)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scrit_utils import study_stats as ss


def test_identical_seeds_give_the_item_interval():
    # no training noise: the pooled CI is the (average) item-bootstrap CI around the mean
    r = ss.pooled_ci([50.0, 50.0, 50.0], [[45.0, 55.0]] * 3)
    assert r["mean"] == 50.0 and r["se_seed"] == 0.0
    assert r["ci_low"] == pytest.approx(45.0) and r["ci_high"] == pytest.approx(55.0)


def test_seed_term_is_a_t_interval_without_item_cis():
    vals = [48.0, 50.0, 52.0]
    r = ss.pooled_ci(vals)
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * np.std(vals, ddof=1) / math.sqrt(3)
    assert r["ci_high"] - r["mean"] == pytest.approx(half)
    assert r["n_seeds"] == 3


def test_both_sources_add_in_quadrature_and_widen_the_interval():
    only_items = ss.pooled_ci([50.0, 50.0, 50.0], [[46.0, 54.0]] * 3)
    only_seeds = ss.pooled_ci([47.0, 50.0, 53.0])
    both = ss.pooled_ci([47.0, 50.0, 53.0], [[43.0, 51.0], [46.0, 54.0], [49.0, 57.0]])
    h = lambda r: (r["ci_high"] - r["ci_low"]) / 2  # noqa: E731
    assert h(both) == pytest.approx(math.sqrt(h(only_items) ** 2 + h(only_seeds) ** 2))
    assert h(both) > max(h(only_items), h(only_seeds))


def test_item_noise_is_not_divided_by_the_number_of_seeds():
    # shared eval items: more seeds must not shrink the evaluation part of the interval
    few = ss.pooled_ci([50.0] * 2, [[45.0, 55.0]] * 2)
    many = ss.pooled_ci([50.0] * 10, [[45.0, 55.0]] * 10)
    assert few["ci_high"] == pytest.approx(many["ci_high"])


def test_single_seed_and_empty():
    one = ss.pooled_ci([40.0], [[35.0, 45.0]])
    assert one["n_seeds"] == 1 and one["ci_low"] == pytest.approx(35.0)
    empty = ss.pooled_ci([])
    assert empty["n_seeds"] == 0 and math.isnan(empty["mean"])
    nan_ci = ss.pooled_ci([40.0, 42.0], [None, [float("nan"), float("nan")]])
    assert nan_ci["se_item"] == 0.0


def test_coverage_of_the_pooled_interval_in_a_simulation():
    # seed effect ~ N(0, 2), item noise: 200 Bernoulli items at p = 0.5 + seed effect
    rng = np.random.default_rng(0)
    from scrit_utils.evaluation import bootstrap_ci

    hits, n_rep, truth = 0, 60, 50.0
    for _ in range(n_rep):
        items = rng.random(200)  # the shared eval items
        vals, cis = [], []
        for _s in range(3):
            p = 0.5 + rng.normal(0, 0.02)
            c = items < p
            vals.append(100 * c.mean())
            cis.append(bootstrap_ci(lambda x: 100 * x.mean(), c, n_boot=200, seed=int(rng.integers(1e9))))
        r = ss.pooled_ci(vals, cis)
        hits += r["ci_low"] <= truth <= r["ci_high"]
    assert hits / n_rep >= 0.85


def test_trend_monotone_and_flat():
    up = ss.trend([0, 0, 1, 1, 2, 2, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8])
    assert up["rho"] > 0.95 and up["p"] < 0.01 and up["n"] == 8  # ties in x keep rho just below 1
    down = ss.trend([0, 1, 2, 3, 4], [9, 7, 5, 3, 1])
    assert down["rho"] == pytest.approx(-1.0)
    flat = ss.trend([0, 1, 2], [5, 5, 5])
    assert math.isnan(flat["rho"])


def test_difference_combines_half_widths():
    a = {"mean": 60.0, "ci_low": 57.0, "ci_high": 63.0}
    b = {"mean": 50.0, "ci_low": 46.0, "ci_high": 54.0}
    d = ss.difference(a, b)
    assert d["delta"] == 10.0
    assert d["ci_high"] - d["delta"] == pytest.approx(5.0)
