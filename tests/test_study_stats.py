"""Paired item-level statistics (scrit_utils.study.stats) on cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scrit_utils.study import stats as ss


def _arm(*seed_hits) -> ss.Arm:
    """An arm on one CC set from per-seed 0/1 hit vectors (item ids 0..n-1)."""
    n = len(seed_hits[0])
    items = [{"mix": {"ids": [f"q{i}" for i in range(n)], "task": ["arith"] * n, "ok": list(map(int, h))}}
             for h in seed_hits]
    return ss.Arm.from_items(items, "cc_acc_mix")


# --- minimal detectable effect and required items -------------------------------------------------------------
def test_mde_known_answers():
    # items only: (z_.975 + z_.80) * sd / sqrt(n)
    assert ss.mde(sd_item=10.0, n_items=100) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    # seeds only: se = 2 / sqrt(4) = 1 with 3 df -> t quantiles
    assert ss.mde(sd_item=0.0, sd_seed=2.0, n_items=10, n_seeds=4) == pytest.approx(
        stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3))
    # two trained arms double the seed variance (df 6): se = sqrt(2) * 1
    two = ss.mde(sd_item=0.0, sd_seed=2.0, n_items=10, n_seeds=4, trained_arms=2)
    assert two == pytest.approx(math.sqrt(2) * (stats.t.ppf(0.975, 6) + stats.t.ppf(0.8, 6)))
    # pilot item differences: their SD is used
    d = np.array([10.0, -10.0] * 50)
    assert ss.mde(item_diffs=d, n_items=100) == pytest.approx(2.801585 * d.std(ddof=1) / 10, rel=1e-5)
    assert ss.mde(sd_item=10.0, sd_seed=1.0, n_items=100, n_seeds=1) == math.inf
    assert ss.mde(sd_item=10.0, n_items=400, alpha=0.05, power=0.5) == pytest.approx(1.959964 * 0.5, abs=1e-5)


def test_required_items_inverts_mde():
    target = ss.mde(sd_item=10.0, n_items=100)
    assert ss.required_items(target, sd_item=10.0) == 100
    assert ss.required_items(target * 2, sd_item=10.0) == 25
    n = ss.required_items(4.0, sd_item=30.0, sd_seed=1.0, n_seeds=3)
    assert ss.mde(30.0, 1.0, n, 3) <= 4.0 < ss.mde(30.0, 1.0, n - 1, 3)
    # seed noise alone exceeds the target: no number of items is enough
    assert ss.required_items(1.0, sd_item=30.0, sd_seed=2.0, n_seeds=3) is None


# --- paired differences ---------------------------------------------------------------------------------------------
def test_paired_difference_known_answer_and_narrower_than_unpaired():
    rng = np.random.default_rng(1)
    base = rng.random(200) < 0.5
    trained = base.copy()
    flip = np.flatnonzero(~base)[:20]  # 20 of 200 items fixed: +10 points, every other item the same
    trained[flip] = True
    a, b = _arm(trained), _arm(base)
    d = ss.paired_difference(a, b, n_boot=2000, seed=0)
    assert d["estimate"] == pytest.approx(10.0)
    # per-item difference is 100 on 10% of items: SE = 100 * sqrt(.1 * .9 / 200)
    assert d["se_item"] == pytest.approx(100 * math.sqrt(0.1 * 0.9 / 200), rel=0.1)
    assert d["se_seed"] == 0.0 and d["ci_low"] > 0
    u = ss.unpaired_difference(a, b, n_boot=2000, seed=0)
    assert u["estimate"] == d["estimate"]
    # independent resampling: the two binomial SEs add (p = .6 and .5 on 200 items each)
    assert u["se_item"] == pytest.approx(100 * math.sqrt((0.6 * 0.4 + 0.5 * 0.5) / 200), rel=0.1)
    assert (u["ci_high"] - u["ci_low"]) > 2.0 * (d["ci_high"] - d["ci_low"])


def test_seed_term_is_the_variance_of_the_seed_values():
    base = np.zeros(100, bool)
    seeds = []
    for m in (2, 4, 6):  # seed s fixes m items: seed values 2, 4, 6 points
        h = base.copy()
        h[:m] = True
        seeds.append(h)
    d = ss.paired_difference(_arm(*seeds), _arm(base), n_boot=500)
    assert d["estimate"] == pytest.approx(4.0)
    assert d["se_seed"] == pytest.approx(math.sqrt(4.0 / 3))
    assert d["n_seeds_a"] == 3 and d["single_eval"] == ["b"]
    assert d["df"] < 30  # seed term dominates: few degrees of freedom, a t interval


def test_null_coverage_of_the_paired_interval_is_about_95_percent():
    # shared items of varying difficulty; 3 SFT seeds with a random shift; no true effect
    rng = np.random.default_rng(7)
    n, hits, reps = 150, 0, 300
    for _ in range(reps):
        p = rng.uniform(0.05, 0.95, n)
        base = rng.random(n) < p
        seeds = [rng.random(n) < np.clip(p + rng.normal(0, 0.03), 0, 1) for _ in range(3)]
        d = ss.paired_difference(_arm(*seeds), _arm(base), n_boot=200, seed=int(rng.integers(1 << 30)))
        hits += d["ci_low"] <= 0.0 <= d["ci_high"]
    assert 0.91 <= hits / reps <= 0.99, hits / reps


def test_paired_difference_refuses_different_items():
    a = _arm(np.ones(10, bool))
    b = ss.Arm.from_items([{"mix": {"ids": [f"z{i}" for i in range(10)], "task": ["arith"] * 10, "ok": [1] * 10}}],
                          "cc_acc_mix")
    with pytest.raises(ValueError, match="different items"):
        ss.paired_difference(a, b)


# --- trends -----------------------------------------------------------------------------------------------------------
def test_trend_known_slope_on_level_means():
    n = 200
    order = np.random.default_rng(3).permutation(n)
    arms = []
    for level in range(5):  # level l: the first 80 + 4l items (in a fixed order) are right -> +2 points per level
        h = np.zeros(n, bool)
        h[order[: 80 + 4 * level]] = True
        arms.append(_arm(h, h, h))
    t = ss.trend(arms, [0, 1, 2, 3, 4], n_boot=1000)
    assert t["estimate"] == pytest.approx(2.0)
    assert t["ci_low"] > 0 and t["rho"] == pytest.approx(1.0)
    assert t["p_rho"] == pytest.approx(2 / 120)  # exact permutation p of a perfect 5-point ranking
    assert t["levels"] == 5 and t["se_seed"] == 0.0


def test_trend_null_coverage_and_no_replicated_rows():
    rng = np.random.default_rng(11)
    n, hits, reps = 120, 0, 150
    for _ in range(reps):
        p = rng.uniform(0.05, 0.95, n)
        arms = [_arm(rng.random(n) < p)]  # base: one evaluation
        for _lvl in range(3):
            arms.append(_arm(*[rng.random(n) < np.clip(p + rng.normal(0, 0.03), 0, 1) for _ in range(3)]))
        t = ss.trend(arms, [0, 1, 2, 3], n_boot=200, seed=int(rng.integers(1 << 30)))
        hits += t["ci_low"] <= 0.0 <= t["ci_high"]
    assert 0.9 <= hits / reps <= 0.995, hits / reps


def test_spearman_exact_small_samples():
    assert ss.spearman_exact([1, 2, 3], [1, 2, 3]) == (pytest.approx(1.0), pytest.approx(1 / 3))
    rho, p = ss.spearman_exact([0, 1, 2, 3], [5, 5, 5, 5])
    assert math.isnan(rho) and math.isnan(p)


def test_point_interval_without_seed_noise_matches_the_binomial_se():
    rng = np.random.default_rng(5)
    h = rng.random(400) < 0.3
    r = ss.point(_arm(h), n_boot=3000)
    assert r["estimate"] == pytest.approx(100 * h.mean())
    assert r["se_item"] == pytest.approx(100 * math.sqrt(h.mean() * (1 - h.mean()) / 400), rel=0.08)
    assert r["n_seeds"] == 1 and r["n_items"] == 400
