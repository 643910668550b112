"""Per-item scores of an evaluation stage, for the paired statistics of :mod:`scrit_utils.study_stats`.

The evaluation stages (``04_eval_base``, ``04_eval_trained``, ``sweep_eval``) keep each critic's
critiques (``critiques_<set>.jsonl``) beside the aggregate ``metrics.json``, but not the per-item
grades. :func:`from_eval` re-reads the items both critics saw (the base stage's benchmark files and
``own_items.json``), re-scores the saved critiques with the stage's own scorer
(:func:`scrit_utils.pipeline.critic_eval.score_critiques`) and checks that the re-scored aggregate
equals the stage's ``metrics.json`` -- so the per-item view can never drift from the reported number.

Per-item data (JSON-ready, stored in the sweep points)::

    {"wrong": {"ids": [...], "task": [...], "ok": [0/1, ...]},            # CC-Acc sets
     "mix": {...}, "own": {...},
     "processbench": {"ids": [...], "task": [...], "ok": [...], "label": [...], "pred": [...]}}

:func:`strata` turns that into the per-item *hits* of one metric, keyed by
``(set, task, class)``: a metric is then ``combine`` of the per-stratum mean hit rates -- mean over
tasks of the CC-Acc hit rate, or mean over tasks of the harmonic mean of the error-class and
correct-class hit rates for EI-F1 (ProcessBench's F1), and for ``cc_mean`` the mean over the three
scenarios. Hits are computed with :func:`scrit_utils.evaluation.processbench_f1` / ``strict_f1`` on
one item at a time, so the definitions are the harness's.

Usage::

    items = item_scores.from_eval(cfg_eval, eval_dir, base_dir)     # checked against metrics.json
    s = item_scores.strata(items, "ei_f1_strict")                     # {(set, task, cls): (ids, hits)}
    item_scores.combine({k: h.mean() for k, (_, h) in s.items()})     # == the stage's EI-F1 strict
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from . import worlds

CC_SETS = ("wrong", "mix", "own")
PB = "processbench"


# --- reading an evaluation stage --------------------------------------------------------------------------
def _items(cfg_eval, base_dir: Path) -> dict[str, list[dict]]:
    from .pipeline import training

    bench = base_dir / "bench" if worlds.get(cfg_eval).builds_benchmarks else None
    items = training.benchmark_items(cfg_eval, bench)
    out = {s: items[s] for s in cfg_eval.evaluation.scenarios if s != "own"}
    if "own" in cfg_eval.evaluation.scenarios:
        out["own"] = json.loads((base_dir / "own_items.json").read_text())
    if items.get(PB):
        out[PB] = items[PB]
    return out


def from_eval(cfg_eval, eval_dir: str | Path, base_dir: str | Path | None = None, check: bool = True) -> dict:
    """Per-item data of the critic evaluated in ``eval_dir`` (items from ``base_dir``, default itself)."""
    from .pipeline import critic_eval, training
    from .records import CritiqueRecord, read_jsonl

    eval_dir, base_dir = Path(eval_dir), Path(base_dir or eval_dir)
    ecfg = training.eval_config(cfg_eval)  # the stage's own scoring settings
    out: dict[str, dict] = {}
    for name, its in _items(cfg_eval, base_dir).items():
        crits = {c.id: c for c in read_jsonl(eval_dir / f"critiques_{name}.jsonl", CritiqueRecord)}
        rows = critic_eval.score_critiques(its, [crits[it["id"]].text for it in its], ecfg, scenario=name)
        d = {"ids": [r["id"] for r in rows], "task": [r["task"] for r in rows],
             "ok": [int(bool(r["corrected_correct"])) for r in rows]}
        if name == PB:
            d["label"] = [int(r["label"]) for r in rows]
            d["pred"] = [None if r["predicted_step"] is None else int(r["predicted_step"]) for r in rows]
        out[name] = d
    if check:
        check_against_metrics(out, json.loads((eval_dir / "metrics.json").read_text()), eval_dir)
    return out


def check_against_metrics(items: dict, metrics: dict, where: Path | str = "") -> None:
    """Raise when a metric re-computed from the items differs from the stage's ``metrics.json``."""
    rows = metrics.get("rows") or metrics.get("trained", {}).get("rows") or []
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["metric"], []).append(r)
    for name, rs in by.items():
        if not available(items, name):
            continue
        r = next((x for x in rs if x["benchmark"] == "mean"), rs[0] if len(rs) == 1 else None)
        if r is None:
            continue
        v = value(items, name)
        if not math.isclose(v, float(r["value"]), abs_tol=1e-6):
            raise ValueError(f"{where}: {name} from per-item scores is {v:.6f}, metrics.json says {r['value']:.6f}")


# --- metrics as strata of per-item hits ---------------------------------------------------------------------
def metric_sets(metric: str) -> tuple[str, ...]:
    if metric == "cc_mean":
        return CC_SETS
    if metric.startswith("cc_acc_"):
        return (metric[len("cc_acc_"):],)
    if metric in ("ei_f1_strict", "ei_f1_original"):
        return (PB,)
    raise KeyError(f"unknown metric {metric!r}")


def available(items: Mapping, metric: str) -> bool:
    try:
        return all(s in items for s in metric_sets(metric))
    except KeyError:
        return False


def _pb_hits(d: dict, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    from . import evaluation as ev

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
