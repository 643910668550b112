"""Evaluation metrics: CC-Acc, ProcessBench EI-F1 ("original" and SCRIT "strict"), transitions, bootstrap CIs.

All accuracies are percentages. Step indices: ProcessBench labels are 0-based paragraph indices
(-1 = no error); critiques number steps from 1 (-1 = no error). Every function that compares the two
takes the offsets explicitly (``pred_offset=1, label_offset=0`` for critiques vs ProcessBench), so
the conversion is always visible at the call site. A ``None`` prediction (unparseable critique) is
always wrong.

Usage::

    from scrit_utils.critique import metrics as ev
    ev.processbench_f1(labels, preds)                            # {'error_acc', 'correct_acc', 'f1'}
    ev.strict_f1(labels, preds, corr_ok, pred_offset=1, label_offset=0)
    ev.cc_acc(tasks, corrected_ok)                               # {'gsm8k': 61.0, ..., 'mean': 57.7}
    ev.transitions(original_ok, corrected_ok)                    # {'correct->incorrect': 12, ...}
    lo, hi = ev.bootstrap_ci(lambda t, c: ev.cc_acc(t, c)["mean"], tasks, corrected_ok, strata=tasks)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["METRICS", "Metric", "processbench_f1", "strict_f1", "cc_acc", "transitions", "bootstrap_ci", "summarize_cc", "summarize_ei"]


@dataclass(frozen=True)
class Metric:
    """One reported metric: its key in metrics files, labels, and the evaluation sets it reads."""

    key: str
    label: str  # axis / table label, with its unit
    short: str  # in running text
    sets: tuple[str, ...]  # evaluation sets (scenarios; "processbench")


#: every metric the study reports, in report order: the one table figures, claims and sweeps read
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("cc_mean", "CC-Acc, mean of 3 scenarios (%)", "CC-Acc (mean of scenarios)", ("wrong", "mix", "own")),
    Metric("cc_acc_wrong", "CC-Acc, deliberately incorrect (%)", "CC-Acc, deliberately incorrect", ("wrong",)),
    Metric("cc_acc_mix", "CC-Acc, balanced (%)", "CC-Acc, balanced", ("mix",)),
    Metric("cc_acc_own", "CC-Acc, own solutions (%)", "CC-Acc, own solutions", ("own",)),
    Metric("ei_f1_strict", "EI-F1 strict (x100)", "EI-F1 (strict)", ("processbench",)),
    Metric("ei_f1_original", "EI-F1 original (x100)", "EI-F1 (original)", ("processbench",)),
)}

_NONE = -(10**9)  # integer stand-in for a missing prediction; never equals a step index


def _steps(x: Sequence[int | None] | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return x
    return np.array([_NONE if v is None else int(v) for v in x], dtype=np.int64)


def _bools(x: Sequence[bool] | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype == bool:
        return x
    return np.array([bool(v) for v in x], dtype=bool)


def _shift(a: np.ndarray, offset: int) -> np.ndarray:
    """Map step numbers to a common 0-based index; -1 and missing stay as they are."""
    keep = (a == -1) | (a == _NONE)
    if offset == 0:
        return np.where(keep | (a >= 0), a, _NONE)
    shifted = a - offset
    # a step below the numbering's start (e.g. "step 0" from a 1-based critic) is not a valid step
    return np.where(keep, a, np.where(shifted >= 0, shifted, _NONE))


def _pct(hits: np.ndarray) -> float:
    return float(100.0 * hits.mean()) if hits.size else float("nan")


def _harmonic(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def processbench_f1(labels: Sequence[int], predictions: Sequence[int | None], *, pred_offset: int = 0,
                    label_offset: int = 0) -> dict[str, float]:
    """ProcessBench's metric: accuracy on erroneous samples (prediction == label), accuracy on correct
    samples (prediction == -1), and their harmonic mean ``f1`` (0 when both are 0). Percentages; an
    accuracy over an empty group is NaN. With the defaults both sides must use the same numbering."""
    lab = _shift(_steps(labels), label_offset)
    pred = _shift(_steps(predictions), pred_offset)
    if lab.shape != pred.shape:
        raise ValueError(f"labels ({lab.size}) and predictions ({pred.size}) differ in length")
    err = lab != -1
    error_acc = _pct(pred[err] == lab[err])
    correct_acc = _pct(pred[~err] == -1)
    return {"error_acc": error_acc, "correct_acc": correct_acc, "f1": _harmonic(error_acc, correct_acc)}


def strict_f1(labels: Sequence[int], predictions: Sequence[int | None], correction_correct: Sequence[bool], *,
              pred_offset: int, label_offset: int, tolerance: int = 1) -> dict[str, float]:
    """SCRIT's stricter EI-F1. Erroneous sample: the predicted first-error step is within
    ``tolerance`` steps of the label (after the offsets) AND the corrected answer is right.
    Correct sample: predicted -1 AND the (restated) answer is right. F1 as in :func:`processbench_f1`.
    """
    lab = _shift(_steps(labels), label_offset)
    pred = _shift(_steps(predictions), pred_offset)
    ok = _bools(correction_correct)
    if not (lab.shape == pred.shape == ok.shape):
        raise ValueError("labels, predictions and correction_correct differ in length")
    err = lab != -1
    valid = (pred != -1) & (pred != _NONE)
    hit_err = valid[err] & (np.abs(pred[err] - lab[err]) <= tolerance) & ok[err]
    hit_cor = (pred[~err] == -1) & ok[~err]
    error_acc, correct_acc = _pct(hit_err), _pct(hit_cor)
    return {"error_acc": error_acc, "correct_acc": correct_acc, "f1": _harmonic(error_acc, correct_acc)}


def cc_acc(tasks: Sequence[str], correct: Sequence[bool]) -> dict[str, float]:
    """Critique-correction accuracy per task and the unweighted ``mean`` over tasks (percent)."""
    t = np.asarray(tasks)
    c = _bools(correct)
    if t.shape != c.shape:
        raise ValueError("tasks and correct differ in length")
    out = {str(name): _pct(c[t == name]) for name in sorted(set(t.tolist()))}
    out["mean"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


TRANSITION_KEYS = ("correct->correct", "correct->incorrect", "incorrect->correct", "incorrect->incorrect")


def transitions(original_correct: Sequence[bool], corrected_correct: Sequence[bool]) -> dict[str, int]:
    """Counts of (solution's original correctness -> correctness of the critic's corrected answer)."""
    a, b = _bools(original_correct), _bools(corrected_correct)
    if a.shape != b.shape:
        raise ValueError("original_correct and corrected_correct differ in length")
    return {
        "correct->correct": int(np.sum(a & b)),
        "correct->incorrect": int(np.sum(a & ~b)),
        "incorrect->correct": int(np.sum(~a & b)),
        "incorrect->incorrect": int(np.sum(~a & ~b)),
    }


def bootstrap_ci(metric_fn: Callable[..., float], *arrays: Sequence[Any], n_boot: int = 1000, seed: int = 0,
                 strata: Sequence[Any] | None = None, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap ``(lo, hi)`` of ``metric_fn(*arrays)``, resampling items with replacement.

    With ``strata`` (e.g. the task of each item) items are resampled within each stratum, so every
    stratum keeps its size (needed for an unweighted mean over tasks). NaN replicates are dropped.
    """
    arrs = [a if isinstance(a, np.ndarray) else np.asarray(a, dtype=object) for a in arrays]
    # keep int / bool arrays typed so the metrics stay vectorised
    arrs = [_coerce(a) for a in arrs]
    n = len(arrs[0]) if arrs else 0
    if any(len(a) != n for a in arrs):
        raise ValueError("bootstrap_ci: arrays differ in length")
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [
        np.flatnonzero(np.asarray(strata) == s) for s in dict.fromkeys(np.asarray(strata).tolist())]
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        stats[b] = metric_fn(*(a[idx] for a in arrs))
    stats = stats[~np.isnan(stats)]
    if not stats.size:
        return (float("nan"), float("nan"))
    return (float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2)))


def _coerce(a: np.ndarray) -> np.ndarray:
    if a.dtype != object:
        return a
    vals = a.tolist()
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return np.array(vals, dtype=bool)
    if all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in vals):
        return _steps(vals)
    if all(isinstance(v, str) for v in vals):
        return np.array(vals, dtype=str)
    return a


# --- summaries used by the CLI and the notebooks ----------------------------------------------------------
def summarize_cc(tasks: Sequence[str], corrected_correct: Sequence[bool], original_correct: Sequence[bool] | None = None,
                 *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """CC-Acc per task and mean, each with a 95% bootstrap CI; transitions when originals are known."""
    t, c = np.asarray(tasks, dtype=str), _bools(corrected_correct)
    point = cc_acc(t, c)
    out: dict[str, Any] = {"n": int(t.size), "per_task": {}, "metric": "cc_acc"}
    for name in point:
        if name == "mean":
            continue
        m = t == name
        lo, hi = bootstrap_ci(lambda x: _pct(x), c[m], n_boot=n_boot, seed=seed)
        out["per_task"][name] = {"n": int(m.sum()), "acc": point[name], "ci": [lo, hi]}
    lo, hi = bootstrap_ci(lambda tt, cc: cc_acc(tt, cc)["mean"], t, c, n_boot=n_boot, seed=seed, strata=t)
    out["mean"] = {"acc": point["mean"], "ci": [lo, hi]}
    if original_correct is not None:
        o = _bools(original_correct)
        out["transitions"] = transitions(o, c)
        out["transitions_per_task"] = {name: transitions(o[t == name], c[t == name]) for name in out["per_task"]}
    return out


def summarize_ei(groups: Sequence[str], labels: Sequence[int], predictions: Sequence[int | None],
                 correction_correct: Sequence[bool] | None = None, *, strict: bool, pred_offset: int,
                 label_offset: int, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """EI-F1 per group (ProcessBench subset) and the unweighted mean of the group F1s, with CIs."""
    g = np.asarray(groups, dtype=str)
    lab, pred = _steps(labels), _steps(predictions)
    if strict and correction_correct is None:
        raise ValueError("strict EI-F1 needs correction_correct")
    ok = _bools(correction_correct) if correction_correct is not None else np.ones(g.size, dtype=bool)

    def metric(la, pr, cc):
        if strict:
            return strict_f1(la, pr, cc, pred_offset=pred_offset, label_offset=label_offset)
        return processbench_f1(la, pr, pred_offset=pred_offset, label_offset=label_offset)

    out: dict[str, Any] = {"n": int(g.size), "metric": "ei_f1_strict" if strict else "ei_f1_original",
                           "per_task": {}}
    for name in sorted(set(g.tolist())):
        m = g == name
        res = metric(lab[m], pred[m], ok[m])
        lo, hi = bootstrap_ci(lambda la, pr, cc: metric(la, pr, cc)["f1"], lab[m], pred[m], ok[m],
                              n_boot=n_boot, seed=seed, strata=(lab[m] == -1))
        out["per_task"][name] = {"n": int(m.sum()), **res, "ci": [lo, hi]}

    def mean_f1(gg, la, pr, cc):
        return float(np.mean([metric(la[gg == s], pr[gg == s], cc[gg == s])["f1"] for s in out["per_task"]]))

    lo, hi = bootstrap_ci(mean_f1, g, lab, pred, ok, n_boot=n_boot, seed=seed, strata=g)
    out["mean"] = {"f1": mean_f1(g, lab, pred, ok), "ci": [lo, hi]}
    return out
