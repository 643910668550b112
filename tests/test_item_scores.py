"""Per-item scores (scrit_utils.study.item_scores) reproduce the harness's metrics exactly."""
from __future__ import annotations

import numpy as np
import pytest

from scrit_utils.critique import metrics as ev
from scrit_utils.study import item_scores


def _items(rng, n=60, tasks=("a", "b")):
    task = [tasks[i % len(tasks)] for i in range(n)]
    out = {s: {"ids": [f"{s}{i}" for i in range(n)], "task": task, "ok": (rng.random(n) < 0.4).astype(int).tolist()}
           for s in ("wrong", "mix", "own")}
    label = rng.integers(-1, 4, n).tolist()
    pred = [None if rng.random() < 0.1 else int(v) for v in rng.integers(-1, 6, n)]
    out["processbench"] = {"ids": [f"p{i}" for i in range(n)], "task": task, "label": label, "pred": pred,
                           "ok": (rng.random(n) < 0.5).astype(int).tolist()}
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_from_items_equal_the_harness(seed):
    items = _items(np.random.default_rng(seed))
    for s in ("wrong", "mix", "own"):
        d = items[s]
        want = ev.summarize_cc(d["task"], [bool(x) for x in d["ok"]], n_boot=2)["mean"]["acc"]
        assert item_scores.value(items, f"cc_acc_{s}") == pytest.approx(want)
    pb = items["processbench"]
    for strict, name in ((True, "ei_f1_strict"), (False, "ei_f1_original")):
        want = ev.summarize_ei(pb["task"], pb["label"], pb["pred"], [bool(x) for x in pb["ok"]], strict=strict,
                               pred_offset=1, label_offset=0, n_boot=2)["mean"]["f1"]
        assert item_scores.value(items, name) == pytest.approx(want)
    cc = np.mean([item_scores.value(items, f"cc_acc_{s}") for s in ("wrong", "mix", "own")])
    assert item_scores.value(items, "cc_mean") == pytest.approx(cc)


def test_check_against_metrics_catches_a_drift():
    items = _items(np.random.default_rng(4), tasks=("arith",))
    v = item_scores.value(items, "cc_acc_mix")
    good = {"rows": [{"benchmark": "arith", "metric": "cc_acc_mix", "value": v}]}
    item_scores.check_against_metrics(items, good)
    with pytest.raises(ValueError, match="cc_acc_mix from per-item scores"):
        item_scores.check_against_metrics(items, {"rows": [{"benchmark": "arith", "metric": "cc_acc_mix", "value": v + 1}]})


def test_strata_split_processbench_by_class():
    items = _items(np.random.default_rng(5), tasks=("arith",))
    s = item_scores.strata(items, "ei_f1_strict")
    assert set(s) == {("processbench", "arith", "err"), ("processbench", "arith", "ok")}
    n_err = sum(lab != -1 for lab in items["processbench"]["label"])
    assert len(s[("processbench", "arith", "err")][0]) == n_err
    assert not item_scores.available({"mix": items["mix"]}, "cc_mean") and item_scores.available(items, "cc_mean")
