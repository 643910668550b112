"""Metrics: ProcessBench F1, strict F1, CC-Acc, transitions, bootstrap CIs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scrit_utils.critique import metrics as ev


def test_processbench_f1_hand_computed():
    # 6 erroneous samples (label != -1) and 4 correct ones (label == -1)
    labels = [2, 0, 3, 1, 5, 4, -1, -1, -1, -1]
    preds = [2, 0, 1, None, 5, -1, -1, 3, -1, None]
    # erroneous hits: idx0 (2==2), idx1 (0==0), idx4 (5==5) -> 3/6 = 50.0 %
    # correct hits:   idx6 (-1), idx8 (-1)                -> 2/4 = 50.0 %... make them differ:
    preds[9] = -1  # now 3/4 = 75.0 %
    # f1 = 2 * 50 * 75 / (50 + 75) = 7500 / 125 = 60.0
    r = ev.processbench_f1(labels, preds)
    assert r["error_acc"] == pytest.approx(50.0)
    assert r["correct_acc"] == pytest.approx(75.0)
    assert r["f1"] == pytest.approx(60.0)


def test_processbench_f1_edge_cases():
    assert ev.processbench_f1([1, -1], [0, 2])["f1"] == 0.0  # both accuracies 0 -> f1 0
    r = ev.processbench_f1([1, 2], [1, 2])
    assert r["error_acc"] == 100.0 and math.isnan(r["correct_acc"]) and math.isnan(r["f1"])
    # critique steps are 1-based, ProcessBench labels 0-based: offsets make them comparable
    assert ev.processbench_f1([0, 3, -1], [1, 4, -1], pred_offset=1)["f1"] == 100.0
    assert ev.processbench_f1([0, 3, -1], [1, 4, -1])["error_acc"] == 0.0
    with pytest.raises(ValueError):
        ev.processbench_f1([1], [1, 2])


def test_strict_f1():
    labels = [2, 2, 2, 2, 2, -1, -1, -1]  # 0-based
    preds = [3, 4, 2, 5, None, -1, -1, 1]  # 1-based critique steps -> 0-based 2, 3, 1, 4, None
    corr = [True, True, True, True, True, True, False, True]
    r = ev.strict_f1(labels, preds, corr, pred_offset=1, label_offset=0)
    # erroneous: idx0 exact, idx1 off by +1, idx2 off by -1 -> 3 hits; idx3 off by 2, idx4 None -> 3/5 = 60 %
    # correct: idx5 hit; idx6 answer wrong; idx7 predicted an error -> 1/3 = 33.33 %
    assert r["error_acc"] == pytest.approx(60.0)
    assert r["correct_acc"] == pytest.approx(100 / 3)
    assert r["f1"] == pytest.approx(2 * 60 * (100 / 3) / (60 + 100 / 3))
    # a wrong corrected answer cancels an exact step hit
    assert ev.strict_f1([2], [3], [False], pred_offset=1, label_offset=0)["error_acc"] == 0.0
    # tolerance 0 is the exact step; original F1 ignores the answer
    assert ev.strict_f1(labels, preds, corr, pred_offset=1, label_offset=0, tolerance=0)["error_acc"] == 20.0
    assert ev.processbench_f1(labels, preds, pred_offset=1)["error_acc"] == 20.0
    # a predicted "step 0" from a 1-based critic is not "no error"
    assert ev.strict_f1([-1], [0], [True], pred_offset=1, label_offset=0)["correct_acc"] == 0.0


def test_cc_acc_and_transitions():
    tasks = ["a", "a", "a", "a", "b", "b"]
    corrected = [True, True, False, True, False, True]
    r = ev.cc_acc(tasks, corrected)
    assert r == {"a": 75.0, "b": 50.0, "mean": 62.5}  # unweighted: (75 + 50) / 2
    orig = [True, False, True, False, False, True]
    t = ev.transitions(orig, corrected)
    assert t == {"correct->correct": 2, "correct->incorrect": 1, "incorrect->correct": 2,
                 "incorrect->incorrect": 1}
    assert sum(t.values()) == len(tasks)


def test_bootstrap_ci_contains_point_and_narrows():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 2000):
        x = rng.random(n) < 0.6
        point = 100 * x.mean()
        lo, hi = ev.bootstrap_ci(lambda a: 100 * a.mean(), x, n_boot=500, seed=0)
        assert lo <= point <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(20) as wide
    # deterministic for a seed
    x = rng.random(50) < 0.5
    assert ev.bootstrap_ci(lambda a: a.mean(), x, seed=3) == ev.bootstrap_ci(lambda a: a.mean(), x, seed=3)


def test_stratified_bootstrap_keeps_strata_sizes():
    tasks = np.array(["a"] * 10 + ["b"] * 90)
    seen = []

    def metric(t, c):
        seen.append((int((t == "a").sum()), int((t == "b").sum())))
        return ev.cc_acc(t, c)["mean"]

    correct = np.arange(100) % 3 == 0
    lo, hi = ev.bootstrap_ci(metric, tasks, correct, n_boot=50, strata=tasks)
    assert set(seen) == {(10, 90)}
    assert lo <= ev.cc_acc(tasks, correct)["mean"] <= hi


def test_summaries():
    tasks = ["a"] * 40 + ["b"] * 60
    corrected = [i % 2 == 0 for i in range(100)]
    s = ev.summarize_cc(tasks, corrected, original_correct=[True] * 100, n_boot=200)
    assert s["per_task"]["a"]["acc"] == 50.0 and s["mean"]["acc"] == 50.0
    assert s["mean"]["ci"][0] <= 50.0 <= s["mean"]["ci"][1]
    assert s["transitions"]["correct->incorrect"] == 50
    labels = [-1, 2, 0, -1] * 10
    preds = [-1, 3, 1, 2] * 10
    e = ev.summarize_ei(["x"] * 40, labels, preds, [True] * 40, strict=True, pred_offset=1, label_offset=0,
                        n_boot=100)
    assert e["per_task"]["x"]["error_acc"] == 100.0 and e["per_task"]["x"]["correct_acc"] == 50.0
    assert e["mean"]["f1"] == pytest.approx(200 * 50 / 150)
