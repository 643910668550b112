"""Per-item scores of an evaluation stage, for the paired statistics of :mod:`scrit_utils.study.stats`.

The evaluation stages (``04_eval_base``, ``04_eval_trained``, ``sweep_eval``) keep each critic's
critiques (``critiques_<set>.jsonl``) beside the aggregate ``metrics.json``, but not the per-item
grades. :func:`from_eval` re-reads the items both critics saw (the base stage's benchmark files and
``own_items.json``), re-scores the saved critiques with the stage's own scorer
(:func:`scrit_utils.pipeline.benchmark_eval.score_critiques`) and checks that the re-scored aggregate
equals the stage's ``metrics.json`` -- so the per-item view can never drift from the reported number.

Per-item data (JSON-ready, stored in the sweep points)::

    {"wrong": {"ids": [...], "task": [...], "ok": [0/1, ...]},            # CC-Acc sets
     "mix": {...}, "own": {...},
     "processbench": {"ids": [...], "task": [...], "ok": [...], "label": [...], "pred": [...]}}

:func:`strata` turns that into the per-item *hits* of one metric, keyed by
``(set, task, class)``: a metric is then ``combine`` of the per-stratum mean hit rates -- mean over
tasks of the CC-Acc hit rate, or mean over tasks of the harmonic mean of the error-class and
correct-class hit rates for EI-F1 (ProcessBench's F1), and for ``cc_mean`` the mean over the three
scenarios. Hits are computed with :func:`scrit_utils.critique.metrics.processbench_f1` / ``strict_f1`` on
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


from scrit_utils import worlds
from scrit_utils.core.records import CritiqueRecord, read_jsonl
from scrit_utils.critique.item_metrics import CC_SETS, PB, available, combine, metric_sets, strata, value  # noqa: F401 (re-exported)
from scrit_utils.pipeline import benchmark_eval as critic_eval, training



# --- reading an evaluation stage --------------------------------------------------------------------------
def _items(cfg_eval, base_dir: Path) -> dict[str, list[dict]]:
    bench = training.bench_folder(base_dir) if worlds.get(cfg_eval).builds_benchmarks else None
    items = training.benchmark_items(cfg_eval, bench)
    out = {s: items[s] for s in cfg_eval.evaluation.scenarios if s != "own"}
    if "own" in cfg_eval.evaluation.scenarios:
        out["own"] = json.loads((base_dir / "own_items.json").read_text())
    if items.get(PB):
        out[PB] = items[PB]
    return out


def from_eval(cfg_eval, eval_dir: str | Path, base_dir: str | Path | None = None, check: bool = True) -> dict:
    """Per-item data of the critic evaluated in ``eval_dir`` (items from ``base_dir``, default itself)."""
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
