"""Metrics as strata of per-item hits, so paired statistics can resample items.

Per-item data of one critic (``{"wrong": {"ids", "task", "ok"}, ..., "processbench": {..., "label",
"pred"}}``, read from an evaluation stage by :mod:`scrit_utils.study.item_scores`) becomes, for one
metric, ``{(set, task, class): (ids, hits)}`` (:func:`strata`); :func:`combine` turns per-stratum mean
hit rates back into the metric exactly as the harness (:mod:`scrit_utils.critique.metrics`) computes
it. Pure functions of arrays: no stage, file or model is read here.

    s = item_metrics.strata(items, "ei_f1_strict")
    item_metrics.combine({k: h.mean() for k, (_, h) in s.items()})     # == the stage's EI-F1 strict
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from scrit_utils.critique import metrics as ev
from scrit_utils.critique.metrics import METRICS

CC_SETS = ("wrong", "mix", "own")
PB = "processbench"


# --- metrics as strata of per-item hits ---------------------------------------------------------------------
def metric_sets(metric: str) -> tuple[str, ...]:
    """The evaluation sets a metric is computed from (:data:`scrit_utils.critique.metrics.METRICS`)."""
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}")
    return METRICS[metric].sets


def available(items: Mapping, metric: str) -> bool:
    try:
        return all(s in items for s in metric_sets(metric))
    except KeyError:
        return False


def _pb_hits(d: dict, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    hits, is_err = [], []
    for lab, pred, ok in zip(d["label"], d["pred"], d["ok"]):
        if strict:
            r = ev.strict_f1([lab], [pred], [bool(ok)], pred_offset=1, label_offset=0)
        else:
            r = ev.processbench_f1([lab], [pred], pred_offset=1, label_offset=0)
        err = lab != -1
        hits.append((r["error_acc"] if err else r["correct_acc"]) / 100.0)
        is_err.append(err)
    return np.asarray(hits, dtype=float), np.asarray(is_err, dtype=bool)


def strata(items: Mapping, metric: str) -> dict[tuple, tuple[tuple, np.ndarray]]:
    """``{(set, task, cls): (ids, hits)}`` for one metric; hits are 0/1 per item (see module doc)."""
    out: dict[tuple, tuple[tuple, np.ndarray]] = {}
    for s in metric_sets(metric):
        d = items[s]
        ids, tasks = np.asarray(d["ids"], dtype=object), np.asarray(d["task"], dtype=object)
        if s == PB:
            hits, is_err = _pb_hits(d, strict=metric == "ei_f1_strict")
            for t in sorted(set(tasks.tolist())):
                for cls, m in (("err", is_err), ("ok", ~is_err)):
                    sel = (tasks == t) & m
                    out[(s, t, cls)] = (tuple(ids[sel].tolist()), hits[sel])
        else:
            hits = np.asarray(d["ok"], dtype=float)
            for t in sorted(set(tasks.tolist())):
                sel = tasks == t
                out[(s, t, "all")] = (tuple(ids[sel].tolist()), hits[sel])
    return out


def combine(means: Mapping[tuple, np.ndarray | float]) -> np.ndarray | float:
    """Metric (percent) from per-stratum mean hit rates (arrays broadcast: one value per replicate).

    Per set: mean over tasks of the task's rate (CC) or of the harmonic mean of its error-class and
    correct-class rates (EI-F1, 0 when both are 0); then the mean over sets.
    """
    sets: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for (s, t, cls), m in means.items():
        sets.setdefault(s, {}).setdefault(t, {})[cls] = np.asarray(m, dtype=float)
    per_set = []
    for s, tasks in sets.items():
        per_task = []
        for t, cl in tasks.items():
            if "all" in cl:
                per_task.append(cl["all"])
            else:
                a, b = cl.get("err"), cl.get("ok")
                if a is None or b is None:  # one class absent: F1 undefined (the harness gives NaN)
                    per_task.append(np.full_like(a if a is not None else b, np.nan))
                    continue
                tot = a + b
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_task.append(np.where(tot > 0, 2 * a * b / np.where(tot > 0, tot, 1), 0.0))
        per_set.append(np.mean(per_task, axis=0))
    res = 100.0 * np.mean(per_set, axis=0)
    return float(res) if np.ndim(res) == 0 else res


def value(items: Mapping, metric: str) -> float:
    """The metric (percent) of one critic from its per-item data."""
    return float(combine({k: (h.mean() if h.size else np.nan) for k, (_, h) in strata(items, metric).items()}))
