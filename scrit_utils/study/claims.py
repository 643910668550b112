"""Study summaries and the paper's claims next to ours (notebooks 04-06), from per-item scores.

Input: the point rows of :mod:`scrit_utils.study.sweeps` (one row per study point and SFT
seed; ``items`` holds the point's per-item scores, :mod:`scrit_utils.study.item_scores`). Rows that share
an evaluation stage (the base critic, listed once per seed) are one measurement. Every statistic is
from :mod:`scrit_utils.study.stats`; the only fixed numbers are the paper's (:data:`PAPER`, copied
from docs/SCRIT_METHOD.md).

- :func:`summarize` -> one row per (study, arm, x, metric): seed mean, 95% CI (item bootstrap +
  seed spread), SEs, seeds and items;
- :func:`gains` -> every critic minus its reference on the same items (trained vs base for data and
  model size and rounds, variant vs baseline for ablations): paired difference, CI, MDE;
- :func:`trends` -> OLS slope over the sweep's levels with the paired CI, Spearman rho of the means;
- :func:`comparisons` -> each paper claim with our effect, CI, MDE and a :func:`verdict`.

The README and the figures are written by :mod:`scrit_utils.study.readme` and :mod:`scrit_utils.study.figures`.

Usage::

    from scrit_utils.study import claims as rep
    summ = rep.summarize(rows)
    comp = rep.comparisons(rows)  # loop=rep.loop_items(cfg) adds notebook 04's re-measurement (not a claim)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from scrit_utils.study import item_scores, stats as ss
from scrit_utils.pipeline import training
from scrit_utils.study.design import scaled_mde
from scrit_utils.study.paper import PAPER, PAPER_LEVELS, _scrit_paper, reports as paper_reports
from scrit_utils.critique.metrics import METRICS
from scrit_utils.study.registry import METRIC_LABELS

NEGLIGIBLE = 0.5  # |paper effect| below this many points counts as "no effect" in the paper
EQUIVALENCE = 1.0  # a paper null is reproduced only when our whole CI lies within +- this many points
METRIC_KEYS = tuple(METRICS)  # scrit_utils.critique.metrics.METRICS, in report order
KEY_METRICS = ("cc_mean", "ei_f1_strict")
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not measured")


# --- arms from points ----------------------------------------------------------------------------------------
def _measured(rows: Sequence[dict]) -> list[dict]:
    """Rows with per-item scores, one per evaluation (the base critic's copies per seed dropped)."""
    seen, out = set(), []
    for r in rows:
        if not r.get("items") or not r.get("eval_stage"):
            continue
        key = (r["study"], r["arm"], float(r["x"]), r["eval_stage"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _select(rows, study: str, arm: str | None = None, x: float | None = None) -> list[dict]:
    return [r for r in rows if r["study"] == study and (arm is None or r["arm"] == arm)
            and (x is None or float(r["x"]) == float(x))]


def arm_of(rows: Sequence[dict], metric: str) -> ss.Arm | None:
    """The :class:`~scrit_utils.study.stats.Arm` of the (deduplicated) rows of one point."""
    rs = [r for r in _measured(rows) if item_scores.available(r["items"], metric)]
    return ss.Arm.from_items([r["items"] for r in rs], metric) if rs else None


def _boot(n_boot: int | None, seed: int | None) -> dict:
    return {"n_boot": n_boot or 1000, "seed": 0 if seed is None else seed}


def _points(rows):
    m = _measured(rows)
    return sorted({(r["study"], r["arm"], float(r["x"])) for r in m})


# --- summaries -----------------------------------------------------------------------------------------------
SUMMARY_COLS = ["study", "arm", "x", "metric", "mean", "ci_low", "ci_high", "se_item", "se_seed", "n_seeds",
                "n_items", "n_examples", "note"]


def summarize(rows: Sequence[dict], n_boot: int | None = None, seed: int | None = None):
    """Seed mean with its 95% CI per (study, arm, x, metric)."""
    import pandas as pd

    out = []
    for study, arm, x in _points(rows):
        grp = _select(rows, study, arm, x)
        for m in METRIC_KEYS:
            a = arm_of(grp, m)
            if a is None:
                continue
            p = ss.point(a, **_boot(n_boot, seed))
            out.append({"study": study, "arm": arm, "x": x, "metric": m, "mean": p["estimate"], "ci_low": p["ci_low"],
                        "ci_high": p["ci_high"], "se_item": p["se_item"], "se_seed": p["se_seed"], "n_seeds": a.k,
                        "n_items": a.n_items, "n_examples": int(max(r.get("n_examples", 0) for r in grp)),
                        "note": "; ".join(sorted({r.get("note", "") for r in grp} - {""}))})
    return pd.DataFrame(out, columns=SUMMARY_COLS)


def reference_of(study: str, arm: str, x: float) -> tuple[str, str, float | None] | None:
    """The point a critic is compared with on the same items (None: it is a reference itself)."""
    if study == "data_size":
        return None if x == 0 else (study, arm, 0.0)
    if study in ("model_size", "headroom"):
        return (study, "base:" + arm.split(":", 1)[1], x) if arm.startswith("scrit:") else None
    if study == "rounds":
        return None if x == 0 else (study, arm, 0.0)
    if study == "ablation":
        return None if arm == "baseline" else (study, "baseline", None)
    return None


GAIN_COLS = ["study", "arm", "x", "metric", "vs", "delta", "ci_low", "ci_high", "mde", "p", "se_item", "se_seed",
             "n_seeds", "n_items"]


def _diff(rows, a: tuple, b: tuple, metric: str, boot: dict) -> dict | None:
    ra, rb = _select(rows, *a), _select(rows, *b)
    aa, ab = arm_of(ra, metric), arm_of(rb, metric)
    if aa is None or ab is None:
        return None
    return {**ss.paired_difference(aa, ab, **boot), "n_seeds": aa.k}


def gains(rows: Sequence[dict], n_boot: int | None = None, seed: int | None = None):
    """Every critic minus its reference (:func:`reference_of`), paired over items."""
    import pandas as pd

    boot, out = _boot(n_boot, seed), []
    for study, arm, x in _points(rows):
        ref = reference_of(study, arm, x)
        if ref is None:
            continue
        for m in METRIC_KEYS:
            d = _diff(rows, (study, arm, x), ref, m, boot)
            if d is not None:
                out.append({"study": study, "arm": arm, "x": x, "metric": m, "vs": ref[1], "delta": d["estimate"],
                            **{k: d[k] for k in GAIN_COLS[6:]}})
    return pd.DataFrame(out, columns=GAIN_COLS)


# --- trends ----------------------------------------------------------------------------------------------------
def trend_levels(rows: Sequence[dict], study: str, arm: str | None = None) -> tuple[list[tuple], list[float]]:
    """The points of a trend and their x on the trend's scale (see :func:`trends`)."""
    m = _measured(rows)
    if study == "model_size":
        pts = sorted({(r["study"], r["arm"], float(r["x"])) for r in m if r["study"] == study
                      and r["arm"].startswith("scrit:")}, key=lambda p: p[2])
        return [(s, a, x) for s, a, x in pts], [math.log2(x) for _, _, x in pts]
    xs = sorted({float(r["x"]) for r in m if r["study"] == study and r["arm"] == arm})
    if study == "rounds":
        xs = [x for x in xs if x >= 1]  # the paper's rounds 1..3
        return [(study, arm, x) for x in xs], xs
    return [(study, arm, x) for x in xs], [float(i) for i in range(len(xs))]


TREND_SCALE = {"data_size": "points per data-size level (0 = base, then each doubling)",
               "model_size": "points per doubling of parameters (after SCRIT)",
               "rounds": "points per round (rounds 1..R)"}
TREND_COLS = ["study", "arm", "metric", "slope", "ci_low", "ci_high", "mde", "p", "rho", "p_rho", "levels", "unit"]


def trend_of(rows, study: str, arm: str | None, metric: str, boot: dict) -> dict | None:
    pts, x = trend_levels(rows, study, arm)
    arms = [arm_of(_select(rows, *p), metric) for p in pts]
    keep = [(a, xi) for a, xi in zip(arms, x) if a is not None]
    if len(keep) < 2:
        return None
    try:
        return ss.trend([a for a, _ in keep], [xi for _, xi in keep], **boot)
    except ValueError:  # e.g. arms scored on different items
        return None


def trends(rows: Sequence[dict], n_boot: int | None = None, seed: int | None = None):
    """Slope (paired CI, MDE) and Spearman rho of the level means, per study / arm / metric."""
    import pandas as pd

    boot, out = _boot(n_boot, seed), []
    m = _measured(rows)
    specs = sorted({("data_size", r["arm"]) for r in m if r["study"] == "data_size"})
    specs += [("model_size", "scrit")] if any(r["study"] == "model_size" for r in m) else []
    specs += sorted({("rounds", r["arm"]) for r in m if r["study"] == "rounds"})
    for study, arm in specs:
        for metric in METRIC_KEYS:
            t = trend_of(rows, study, None if study == "model_size" else arm, metric, boot)
            if t is not None:
                out.append({"study": study, "arm": arm, "metric": metric, "slope": t["estimate"], "ci_low": t["ci_low"],
                            "ci_high": t["ci_high"], "mde": t["mde"], "p": t["p"], "rho": t["rho"], "p_rho": t["p_rho"],
                            "levels": t["levels"], "unit": TREND_SCALE[study]})
    return pd.DataFrame(out, columns=TREND_COLS)




def paper_total(study: str, i: int) -> float:
    """The paper's total change over its sweep (for the "no effect" test of a trend claim)."""
    if study == "model_size":
        return paper_slope(study, i) * float(np.log2(PAPER["model_params"][-1] / PAPER["model_params"][0]))
    return paper_slope(study, i) * (PAPER_LEVELS[study] - 1)


def paper_slope(study: str, i: int) -> float:
    if study == "data_size":
        y = PAPER["data_cc" if i == 0 else "data_ei"]
        return ss.slope(range(len(y)), y)
    if study == "model_size":
        return ss.slope(np.log2(PAPER["model_params"]), [v[i] for v in PAPER["model_sizes"].values()])
    y = PAPER["rounds"]["cc" if i == 0 else "ei"]
    return ss.slope(range(1, len(y) + 1), y)


# --- verdicts --------------------------------------------------------------------------------------------------
#: each comparison's noise, for sizing a study from a pilot (:mod:`scrit_utils.study.design`): item SE and seed SE
#: of the estimate, items per set, SFT seeds per trained arm, and how many trained arms (or levels) add seed noise
NOISE_COLS = ["se_item", "se_seed", "n_items", "n_seeds", "seed_terms"]


def verdict(paper: float, est: dict | None, paper_size: float | None = None) -> str:
    """Our effect's verdict against the paper's (points; ``est`` has ci_low, ci_high, mde).

    *reproduced*: the CI excludes 0 on the paper's side (for a paper null: lies within
    +-:data:`EQUIVALENCE`); *not reproduced*: a clear opposite (or, for a null, any clear) effect,
    or no clear effect although a paper-sized one was detectable (MDE <= |paper effect|);
    *inconclusive*: no clear effect and the MDE exceeds the paper's effect (the design is too small).
    ``paper_size``: the paper's effect size for the "no effect" test, when it is not ``|paper|``
    (a trend: its total change over the paper's sweep).
    """
    if est is None or any(math.isnan(float(est[k])) for k in ("ci_low", "ci_high")):
        return "not measured"
    lo, hi, mde = float(est["ci_low"]), float(est["ci_high"]), float(est["mde"])
    clear = 1 if lo > 0 else (-1 if hi < 0 else 0)
    if abs(paper if paper_size is None else paper_size) < NEGLIGIBLE:
        if clear:
            return "not reproduced (paper: no effect; ours is clear)"
        if -EQUIVALENCE <= lo and hi <= EQUIVALENCE:
            return "reproduced (no effect in either)"
        return f"inconclusive (paper: no effect; our CI is wider than +-{EQUIVALENCE:g})"
    sign = 1 if paper > 0 else -1
    if clear == sign:
        return "reproduced"
    if clear == -sign:
        return "not reproduced (clear opposite effect)"
    if mde <= abs(paper):
        return "not reproduced (a paper-sized effect was detectable)"
    return "inconclusive (underpowered: MDE above the paper's effect)"


COMP_COLS = ["claim", "metric", "paper_effect", "our_effect", "ci_low", "ci_high", "mde", "unit", "verdict",
             "items_needed", "detail", *NOISE_COLS]


def _claim(claim: str, metric: str, paper: float, est: dict | None, unit: str, detail: str,
           paper_size: float | None = None) -> dict:
    row = {"claim": claim, "metric": metric, "paper_effect": paper, "unit": unit, "detail": detail,
           "verdict": verdict(paper, est, paper_size), "our_effect": float("nan"), "ci_low": float("nan"),
           "ci_high": float("nan"), "mde": float("nan"), "items_needed": None}
    if est is not None:
        row.update(our_effect=est["estimate"], ci_low=est["ci_low"], ci_high=est["ci_high"], mde=est["mde"],
                   **{k: est.get(k) for k in NOISE_COLS})
        if row["verdict"].startswith("inconclusive (under") and "n_seeds_a" in est:
            row["items_needed"] = items_for(row, abs(paper))
    return row


def items_for(row: dict, target: float, max_items: int = 10_000_000) -> int | None:
    """Items per set needed for an MDE of ``target`` at this comparison's noise and seed count: the same
    noise model as the design tables (:func:`scrit_utils.study.design.scaled_mde`, seed noise counted once per
    trained arm); None when no item count reaches it (seed noise alone is larger: more seeds are needed)."""

    k = int(row.get("n_seeds") or 1)
    f = lambda n: scaled_mde(row, n, k)  # noqa: E731
    # the MDE falls with n until seed noise dominates, then rises a little (its degrees of freedom fall toward
    # k - 1), so find the first doubling that reaches the target, then the smallest n below it
    hi = 1
    while f(hi) > target:
        if hi >= max_items:
            return None
        hi *= 2
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if f(mid) > target else (lo, mid)
    return lo


def comparisons(rows: Sequence[dict], loop: dict | None = None, n_boot: int | None = None, seed: int | None = None):
    """The paper's claims next to ours (points, or points per level for trends), with verdicts.

    ``loop``: notebook 04's per-item scores ``{"base": items, "trained": items, "detail": str}``
    (one SFT seed: its CI covers evaluation noise only, and says so)."""
    import pandas as pd

    boot, out = _boot(n_boot, seed), []
    ds = [r for r in _measured(rows) if r["study"] == "data_size" and r["arm"] == "contrastive"]
    xmax = max((float(r["x"]) for r in ds), default=0.0)
    pair = lambda i: "cc_mean" if i == 0 else "ei_f1_strict"  # noqa: E731
    pts = "points"
    for m in filter(paper_reports, METRIC_KEYS):  # only metrics the paper gives a number for
        d = _diff(rows, ("data_size", "contrastive", xmax), ("data_size", "contrastive", 0.0), m, boot) if xmax else None
        out.append(_claim("SCRIT beats the base critic", m, _scrit_paper(m), d, pts,
                          f"notebook 05: {xmax:g} examples vs the base, paired over items and SFT seeds"))
    if loop:
        for m in filter(paper_reports, METRIC_KEYS):
            if not (item_scores.available(loop["trained"], m) and item_scores.available(loop["base"], m)):
                continue
            d = ss.paired_difference(ss.Arm.from_items([loop["trained"]], m), ss.Arm.from_items([loop["base"]], m), **boot)
            out.append(_claim("SCRIT beats the base critic (loop, notebook 04)", m, _scrit_paper(m), d, pts,
                              loop.get("detail", "notebook 04") + "; one SFT seed: CI and MDE cover item noise only"))
    for i in (0, 1):
        t = trend_of(rows, "data_size", "contrastive", pair(i), boot)
        out.append(_claim("more SCRIT data helps (slope over data-size levels)", pair(i), paper_slope("data_size", i),
                          t, "points/level", "OLS slope of the seed means over levels, paired over items",
                          paper_total("data_size", i)))
    direct = {float(r["x"]) for r in _measured(rows) if r["study"] == "data_size" and r["arm"] == "direct"}
    xc = max(({float(r["x"]) for r in ds} & direct) - {0.0}, default=0.0)  # largest size both arms reached
    for i in (0, 1):
        d = _diff(rows, ("data_size", "contrastive", xc), ("data_size", "direct", xc), pair(i), boot) if xc else None
        out.append(_claim("contrastive critic beats the direct critic", pair(i),
                          PAPER["scrit_170k"][i] - PAPER["direct_plateau"][i], d, pts, f"at {xc:g} examples"))
    bmax = max((float(r["x"]) for r in _measured(rows) if r["study"] == "data_size" and r["arm"] == "bug_injection"),
               default=0.0)
    d = _diff(rows, ("data_size", "bug_injection", bmax), ("data_size", "bug_injection", 0.0), "cc_mean", boot) if bmax else None
    out.append(_claim("bug-injection critic declines below the base", "cc_mean",
                      PAPER["bug_injection"][0] - PAPER["base"][0], d, pts, f"bug injection at {bmax:g} examples vs base"))
    for i in (0, 1):
        t = trend_of(rows, "model_size", None, pair(i), boot)
        out.append(_claim("larger base models reach higher scores after SCRIT", pair(i), paper_slope("model_size", i), t,
                          "points/doubling", "OLS slope on log2(parameters) of the seed means", paper_total("model_size", i)))
    for i in (0, 1):
        t = trend_of(rows, "rounds", "scrit", pair(i), boot)
        out.append(_claim("more rounds help (rounds 1..R)", pair(i), paper_slope("rounds", i), t, "points/round",
                          "OLS slope of the seed means over rounds", paper_total("rounds", i)))
    abl = sorted({r["arm"] for r in _measured(rows) if r["study"] == "ablation"})
    for name, vals in PAPER["ablations"].items():
        arms = [a for a in abl if a == name or a.startswith(name + "(")] or [name]
        for arm in arms:
            for i in (0, 1):
                d = _diff(rows, ("ablation", arm, None), ("ablation", "baseline", None), pair(i), boot) if arm in abl else None
                out.append(_claim(f"ablation: {arm}", pair(i), vals[i] - PAPER["ablation_baseline"][i], d, pts,
                                  "vs the SCRIT baseline at the same data size, paired"))
    return pd.DataFrame(out, columns=COMP_COLS)


def verdict_counts(comp) -> dict[str, int]:
    """How many claims got each verdict (by its first words)."""
    return {v: int(comp["verdict"].str.startswith(v).sum()) for v in VERDICTS}


def loss_curves(rows: Sequence[dict], study: str = "data_size", arm: str = "contrastive") -> dict[str, list]:
    """``{"<x> examples": [[step, mean loss over seeds], ...]}`` from the points' training logs."""
    out = {}
    for x in sorted({float(r["x"]) for r in rows if r["study"] == study and r["arm"] == arm and r.get("train_log")}):
        by_step: dict[float, list[float]] = {}
        for r in _select(rows, study, arm, x):
            for step, loss in r.get("train_log") or []:
                by_step.setdefault(step, []).append(loss)
        out[f"{x:g} examples"] = [[s, float(np.mean(v))] for s, v in sorted(by_step.items())]
    return out


# --- notebook 04's loop run ------------------------------------------------------------------------------------
def loop_items(cfg) -> dict | None:
    """Notebook 04's base and trained critic per item (None when its stages have not run)."""

    base, trained = training.eval_base_stage(cfg), training.eval_trained_stage(cfg)
    if not (base.done and trained.done):
        return None
    tr = training.train_stage(cfg)
    n = tr.manifest["counts"].get("examples") if tr.done else "?"
    return {"base": item_scores.from_eval(cfg, base.dir), "trained": item_scores.from_eval(cfg, trained.dir, base.dir),
            "detail": f"notebook 04: {n} examples, {cfg.training.max_steps} steps, {cfg.evaluation.n_items} items per set"}


def loop_frames(loop: dict, n_boot: int | None = None, seed: int | None = None):
    """Notebook 04: ``(scores, diffs)``: each critic's score per metric and trained minus base, paired."""
    import pandas as pd

    boot, scores, diffs = _boot(n_boot, seed), [], []
    for m in METRIC_KEYS:
        if not (item_scores.available(loop["base"], m) and item_scores.available(loop["trained"], m)):
            continue
        a, b = ss.Arm.from_items([loop["trained"]], m), ss.Arm.from_items([loop["base"]], m)
        for who, arm in (("base", b), ("trained", a)):
            p = ss.point(arm, **boot)
            scores.append({"critic": who, "metric": m, "mean": p["estimate"], "ci_low": p["ci_low"], "ci_high": p["ci_high"],
                           "n_items": p["n_items"]})
        d = ss.paired_difference(a, b, **boot)
        diffs.append({"metric": m, "delta": d["estimate"], "ci_low": d["ci_low"], "ci_high": d["ci_high"], "mde": d["mde"],
                      "p": d["p"], "n_items": d["n_items"]})
    return pd.DataFrame(scores), pd.DataFrame(diffs)


def loop_table(scores, diffs):
    """One row per metric: base and trained score [95% CI], paired difference [95% CI], MDE."""
    import pandas as pd


    def ci(r) -> str:
        return f"{r['ci_low']:.1f}, {r['ci_high']:.1f}"

    out = []
    for d in diffs.to_dict("records"):
        b = scores[(scores["critic"] == "base") & (scores["metric"] == d["metric"])].iloc[0]
        t = scores[(scores["critic"] == "trained") & (scores["metric"] == d["metric"])].iloc[0]
        out.append({"metric": METRIC_LABELS.get(d["metric"], d["metric"]), "items": int(d["n_items"]),
                    "base": f"{b['mean']:.1f} [{ci(b)}]", "trained": f"{t['mean']:.1f} [{ci(t)}]",
                    "trained - base (paired)": f"{d['delta']:+.1f} [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]",
                    "MDE": f"{d['mde']:.1f}", "p": f"{d['p']:.3f}"})
    return pd.DataFrame(out)
