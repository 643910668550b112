"""The v3 claims table: every claim analysed with build, seed and item variance, Holm across the tested
ones, verdicts against the pre-registered direction, and missing arms reported as not measured."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scrit_utils.study import preregistration as pre

N_BUILDS, N_SEEDS, N_ITEMS = 3, 2, 150


def _arm(rate: float, rng, seeds: int = N_SEEDS, build_sd: float = 0.02) -> np.ndarray:
    """0/1 hits [build, seed, item] around ``rate`` with a build effect."""
    b = rng.normal(0, build_sd, size=(N_BUILDS, 1, 1))
    return (rng.random((N_BUILDS, seeds, N_ITEMS)) < np.clip(rate + b, 0, 1)).astype(float)


def _cells(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    cells = {("base", 0.0): _arm(0.10, rng, seeds=1)}
    for x, r in ((64.0, 0.20), (256.0, 0.35), (1024.0, 0.50)):
        cells[("contrastive", x)] = _arm(r, rng)
    cells[("approve_everything", 1024.0)] = _arm(0.04, rng)
    cells[("direct", 1024.0)] = _arm(0.50, rng)  # no real difference: must not be called reproduced
    cells[("oracle", 1024.0)] = _arm(0.90, rng)
    for params, gain in ((66e3, 0.05), (409e3, 0.25), (709e3, 0.40)):
        cells[(f"base@{params:g}", 0.0)] = _arm(0.10, rng, seeds=1)
        cells[(f"contrastive@{params:g}", 1024.0)] = _arm(0.10 + gain, rng)
    return cells


def test_claims_are_data_with_one_primary_metric_the_floor_cannot_win():
    assert {c.metric for c in pre.CLAIMS} == {pre.PRIMARY_METRIC} == {"cc_acc_wrong"}
    assert len({c.key for c in pre.CLAIMS}) == len(pre.CLAIMS)
    assert "| `scrit_vs_approve_everything` |" in pre.markdown_table()


def test_analysis_gives_holm_adjusted_verdicts():
    t = pre.analyse(_cells(), n_boot=300, rng=1).set_index("claim")
    assert t.loc["scrit_vs_base", "verdict"] == "reproduced" and t.loc["scrit_vs_base", "estimate"] == pytest.approx(40, abs=5)
    assert t.loc["scrit_vs_approve_everything", "verdict"] == "reproduced"
    assert t.loc["scrit_vs_direct", "verdict"] == "inconclusive"
    assert t.loc["data_slope", "verdict"] == "reproduced" and t.loc["data_slope", "estimate"] > 0
    assert t.loc["gain_slope_model_size", "estimate"] > 0
    # arms that were not run are not measured, and leave the Holm family
    for k in ("scrit_vs_model_bugs", "validation_matters", "rounds"):
        assert t.loc[k, "verdict"].startswith("not measured (") and np.isnan(t.loc[k, "p_holm"])
    assert t.loc["scrit_vs_model_bugs", "verdict"] == "not measured (no bug_injection at 1024 examples)"
    share = t.loc["share_of_oracle_gain"]
    assert share["verdict"] == "reported, not tested" and 0.4 < share["estimate"] < 0.6
    tested = t[t["measured"] & t["tested"]]
    assert (tested["p_holm"] >= tested["p"] - 1e-12).all()  # Holm never lowers a p-value
    # one base build cannot give an interval with build variance: nothing is claimed from it
    one = pre.analyse({k: v[:1] for k, v in _cells().items()}, n_boot=100, rng=1).set_index("claim")
    assert one.loc["scrit_vs_base", "verdict"].startswith("not claimable (one build")
    assert one["p_holm"].isna().all()


def test_a_claim_with_an_unknown_metric_is_rejected():
    bad = pre.Claim("x", "x", "difference", "contrastive", "base", metric="cc_mean_typo")
    with pytest.raises(ValueError, match="unknown metric 'cc_mean_typo'"):
        pre._check([bad])


def test_the_registered_document_shows_the_code_s_table():
    doc = (Path(__file__).resolve().parents[1] / "results" / "pilot" / "PREREGISTRATION_v3.md").read_text()
    assert pre.markdown_table() in doc, "results/pilot/PREREGISTRATION_v3.md no longer shows CLAIMS: regenerate it"


def test_the_arms_are_compared_at_the_registered_claim_size_not_scrit_s_largest():
    cells = {k: v for k, v in _cells().items()}
    rng = np.random.default_rng(3)
    cells[("contrastive", 2048.0)] = _arm(0.55, rng)  # SCRIT alone goes further along the data axis
    t = pre.analyse(cells, n_boot=100, rng=1).set_index("claim")
    assert t.loc["scrit_vs_approve_everything", "verdict"].startswith("not measured")  # nothing else at 2048
    t = pre.analyse(cells, claim_size=1024.0, n_boot=100, rng=1).set_index("claim")
    assert t.loc["scrit_vs_approve_everything", "verdict"] == "reproduced"
    assert t.loc["scrit_vs_base", "estimate"] == pytest.approx(
        100 * (cells[("contrastive", 1024.0)].mean() - cells[("base", 0.0)].mean()))
    assert t.loc["data_slope", "measured"]  # the slope still takes SCRIT's whole axis

