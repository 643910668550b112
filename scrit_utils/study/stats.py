"""Paired, item-level statistics for the study: one critic, two critics, trends, and power.

Every study point is a critic fine-tuned with several SFT seeds (or the base critic, evaluated once)
and scored on a fixed set of benchmark items; every critic of a comparison is scored on the *same*
items. Two sources of noise matter and both are kept:

- *evaluation noise*: the items are a sample. It is measured by a **paired bootstrap over items**:
  each replicate draws one set of item indices (per stratum, see :mod:`scrit_utils.critique.item_metrics`;
  strata with the same item ids -- the balanced set and the critic's own solutions of the same
  questions -- share the draw) and applies it to every seed of every critic in the comparison, so
  an item that is hard for both critics cancels out of a difference instead of adding to it.
  ``se_item`` is the SD of the replicates of the seed-averaged statistic.
- *training noise*: seeds are a sample. ``se_seed^2 = sum over trained arms of var(seed values) / k``
  (``k`` seeds, ``ddof=1``); the base critic (greedy, no training) has none. With 3 seeds a seed
  bootstrap would have 10 distinct resamples, so the seed term is this variance with its degrees of
  freedom ``k - 1`` instead.

A replicate SD of 0 (no item on which the critics differ, e.g. both at 0%) would claim a perfect
measurement; ``se_item`` is floored at the SE of one item in ``n`` going the other way
(:func:`item_floor`), the resolution of ``n`` items.

Both are combined as ``se = sqrt(se_item^2 + se_seed^2)`` with Welch-Satterthwaite degrees of
freedom (the item term counts as infinite), and ``CI = estimate +- t_{df, 1-alpha/2} * se``. The
per-seed values already contain the seed x item interaction that the item bootstrap also sees, so
the interval errs on the wide side (the null simulation in tests/test_study_stats.py covers 0 in
about 95% of runs).

The **minimal detectable effect** (MDE) of a comparison is ``(t_{df,1-alpha/2} + t_{df,power}) * se``:
the true effect a two-sided test at ``alpha`` detects with probability ``power``. A claim whose
paper-sized effect is below the MDE cannot be called "not reproduced" (the design is too small).
:func:`mde` / :func:`required_items` give the same number from pilot estimates for planning.

Trends (:func:`trend`) are the OLS slope of the per-level seed means on a transformed sweep
variable (data-size level, log2 parameters, round), with the same paired item bootstrap across
levels (all levels are scored on the same items) and a seed term summed over levels; replicated
rows never count as observations. Spearman's rho over the level means is reported beside it, with
its exact permutation p-value (descriptive: with 3-5 levels it can hardly reach 0.05).

Usage::

    from scrit_utils.study import stats as ss
    a = ss.Arm.from_items([items_seed0, items_seed1, items_seed2], "cc_mean")  # trained critic
    b = ss.Arm.from_items([items_base], "cc_mean")                              # base critic
    ss.paired_difference(a, b)      # {'estimate', 'ci_low', 'ci_high', 'se_item', 'se_seed', 'mde', 'p', ...}
    ss.trend([b, a16, a32], [0, 1, 2])
    ss.mde(sd_item=30.0, sd_seed=2.0, n_items=120, n_seeds=3)     # planning: points
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from scrit_utils.critique import item_metrics  # per-item strata: pure functions of arrays

Z975 = 1.959963984540054


# --- a critic on one metric ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One critic on one metric: ``hits[key]`` is a (seeds x items) 0/1 array per stratum."""

    hits: Mapping[tuple, np.ndarray]
    ids: Mapping[tuple, tuple]

    @classmethod
    def from_items(cls, per_seed: Sequence[Mapping], metric: str) -> "Arm":
        """From the per-item data (:func:`scrit_utils.study.item_scores.from_eval`) of each seed."""
        if not per_seed:
            raise ValueError("Arm.from_items: no seeds")
        strata = [item_metrics.strata(d, metric) for d in per_seed]
        ids = {k: v[0] for k, v in strata[0].items()}
        for s in strata[1:]:
            if {k: v[0] for k, v in s.items()} != ids:
                raise ValueError(f"{metric}: the seeds of one arm were scored on different items")
        return cls({k: np.stack([s[k][1] for s in strata]) for k in ids}, ids)

    @property
    def k(self) -> int:
        return int(next(iter(self.hits.values())).shape[0])

    @property
    def n_items(self) -> int:
        """Items per evaluation set (median over the metric's sets)."""
        per_set: dict[str, int] = {}
        for key, ids in self.ids.items():
            per_set[key[0]] = per_set.get(key[0], 0) + len(ids)
        return int(np.median(list(per_set.values())))

    def seed_values(self) -> np.ndarray:
        """The metric for each seed (percent)."""
        return np.atleast_1d(item_metrics.combine({k: h.mean(axis=1) for k, h in self.hits.items()}))


def _draws(arms: Sequence[Arm], n_boot: int, seed: int, paired: bool) -> list[dict[tuple, np.ndarray]]:
    """Per arm, ``{stratum: (B, n) item indices}``; shared across arms (and across strata with the
    same ids) when ``paired``."""
    rng = np.random.default_rng(seed)
    shared: dict[tuple, np.ndarray] = {}
    out = []
    for arm in arms:
        own: dict[tuple, np.ndarray] = {}
        for key, ids in arm.ids.items():
            if paired and arms[0].ids.get(key) != ids:
                raise ValueError(f"paired comparison: stratum {key} has different items in the two critics")
            cache = shared if paired else own
            if ids not in cache:
                cache[ids] = rng.integers(0, len(ids), size=(n_boot, len(ids))) if ids else np.zeros((n_boot, 0), int)
            own[key] = cache[ids]
        out.append(own)
    return out


def _replicates(arm: Arm, idx: Mapping[tuple, np.ndarray]) -> np.ndarray:
    """Seed-averaged metric per bootstrap replicate, shape (B,)."""
    means = {}
    for key, h in arm.hits.items():
        i = idx[key]
        means[key] = h[:, i].mean(axis=2) if i.shape[1] else np.full((h.shape[0], i.shape[0]), np.nan)
    return np.nanmean(np.asarray(item_metrics.combine(means)).reshape(arm.k, -1), axis=0)


def item_floor(n_items: int) -> float:
    """SE (points) of a difference of one item in ``n_items``: the smallest item SE reported."""
    n = max(int(n_items), 2)
    return 100.0 * math.sqrt((1 / n) * (1 - 1 / n) / n)


def _se_item(reps: np.ndarray, n_items: int, scale: float = 1.0) -> float:
    sd = float(np.nanstd(reps, ddof=1)) if np.isfinite(reps).sum() > 1 else 0.0
    return max(sd, scale * item_floor(n_items))


# --- combining the two noise terms ---------------------------------------------------------------------------
def combine_se(estimate: float, se_item: float, seed_terms: Sequence[tuple[float, int]], confidence: float = 0.95,
               power: float = 0.8) -> dict:
    """CI, p and MDE from the item SE and seed variance terms ``(var_of_estimate, df)``."""
    from scipy import stats

    var_s = float(sum(v for v, _ in seed_terms))
    se = math.sqrt(se_item ** 2 + var_s)
    denom = sum(v * v / d for v, d in seed_terms if d > 0 and v > 0)
    df = (se ** 4) / denom if denom > 0 else math.inf
    a = 1 - confidence
    tq = float(stats.t.ppf(1 - a / 2, df)) if math.isfinite(df) else float(stats.norm.ppf(1 - a / 2))
    tp = float(stats.t.ppf(power, df)) if math.isfinite(df) else float(stats.norm.ppf(power))
    p = float(2 * stats.t.sf(abs(estimate) / se, df)) if se > 0 else (0.0 if estimate != 0 else 1.0)
    return {"estimate": float(estimate), "ci_low": estimate - tq * se, "ci_high": estimate + tq * se, "se": se,
            "se_item": float(se_item), "se_seed": math.sqrt(var_s), "df": df, "p": p, "mde": (tq + tp) * se}


def _seed_term(arm: Arm, weight: float = 1.0) -> list[tuple[float, int]]:
    v = arm.seed_values()
    if arm.k < 2:
        return []
    return [(weight ** 2 * float(np.var(v, ddof=1)) / arm.k, arm.k - 1)]


def _trained(arm: Arm) -> bool:
    return arm.k >= 2


def point(arm: Arm, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
          bounds: tuple[float, float] = (0.0, 100.0)) -> dict:
    """Seed mean of one critic with its CI (item bootstrap + seed spread), clipped to ``bounds``."""
    (idx,) = _draws([arm], n_boot, seed, paired=True)
    est = float(arm.seed_values().mean())
    out = combine_se(est, _se_item(_replicates(arm, idx), arm.n_items), _seed_term(arm), confidence)
    out.update(ci_low=max(bounds[0], out["ci_low"]), ci_high=min(bounds[1], out["ci_high"]))
    return {**out, "n_seeds": arm.k, "n_items": arm.n_items}


def paired_difference(a: Arm, b: Arm, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
                      power: float = 0.8, paired: bool = True) -> dict:
    """``a - b`` (points) on shared items: paired item bootstrap + both arms' seed spread.

    ``paired=False`` resamples each critic's items independently -- what two separate CIs assume;
    it is here to show how much wider that is (tests), not for reporting."""
    ia, ib = _draws([a, b], n_boot, seed, paired=paired)
    est = float(a.seed_values().mean() - b.seed_values().mean())
    reps = _replicates(a, ia) - _replicates(b, ib)
    out = combine_se(est, _se_item(reps, a.n_items), _seed_term(a) + _seed_term(b), confidence, power)
    unmeasured = [n for n, arm in (("a", a), ("b", b)) if arm.k == 1]
    return {**out, "n_seeds_a": a.k, "n_seeds_b": b.k, "n_items": a.n_items,
            "single_eval": unmeasured, "n_seeds": max(a.k, b.k), "seed_terms": sum(_trained(x) for x in (a, b))}


def unpaired_difference(a: Arm, b: Arm, **kw) -> dict:
    return paired_difference(a, b, paired=False, **kw)


# --- trends -------------------------------------------------------------------------------------------------------
def spearman_exact(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman rho and its exact two-sided permutation p-value (up to 8 points; beyond: scipy's)."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return float("nan"), float("nan")
    rho = float(stats.spearmanr(x, y).statistic)
    if x.size > 8:
        return rho, float(stats.spearmanr(x, y).pvalue)
    perms = [float(stats.spearmanr(x, y[list(p)]).statistic) for p in itertools.permutations(range(y.size))]
    return rho, float(np.mean(np.abs(perms) >= abs(rho) - 1e-12))


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def trend(arms: Sequence[Arm], x: Sequence[float], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
          power: float = 0.8) -> dict:
    """OLS slope of the per-level seed means on ``x`` (points per unit of x), paired over items."""
    x = np.asarray(x, float)
    if len(arms) != x.size or x.size < 2 or np.unique(x).size < 2:
        raise ValueError(f"trend needs >= 2 distinct levels, got x={x.tolist()}")
    xc = x - x.mean()
    w = xc / (xc * xc).sum()
    means = np.array([a.seed_values().mean() for a in arms])
    idx = _draws(list(arms), n_boot, seed, paired=True)
    reps = sum(wi * _replicates(a, i) for wi, a, i in zip(w, arms, idx))
    terms = [t for wi, a in zip(w, arms) for t in _seed_term(a, wi)]
    se_i = _se_item(reps, arms[0].n_items, float(np.sqrt((w * w).sum())))
    out = combine_se(float((w * means).sum()), se_i, terms, confidence, power)
    rho, p_rho = spearman_exact(x, means)
    return {**out, "rho": rho, "p_rho": p_rho, "levels": int(x.size), "means": means.tolist(),
            "n_items": arms[0].n_items, "n_seeds": max(a.k for a in arms), "seed_terms": len(terms)}


# --- planning -----------------------------------------------------------------------------------------------------
def _sd_item(sd_item: float | None, item_diffs: Sequence[float] | None) -> float:
    if item_diffs is not None:
        d = np.asarray(item_diffs, float)
        if d.size < 2:
            raise ValueError("item_diffs: need at least 2 paired item differences")
        return float(d.std(ddof=1))
    if sd_item is None:
        raise ValueError("give sd_item or item_diffs")
    return float(sd_item)


def mde(sd_item: float | None = None, sd_seed: float = 0.0, n_items: int = 100, n_seeds: int = 3,
        alpha: float = 0.05, power: float = 0.8, *, item_diffs: Sequence[float] | None = None,
        trained_arms: int = 1) -> float:
    """Minimal detectable effect (points) of a paired comparison with ``n_items`` items and ``n_seeds`` seeds.

    - ``sd_item`` (or ``item_diffs``, the pilot's per-item paired differences in points, e.g.
      ``100 * (hit_trained - hit_base)`` averaged over seeds): SD of one item's paired difference,
      so the item SE is ``sd_item / sqrt(n_items)``. For a non-additive metric such as EI-F1 use
      ``se_item * sqrt(n_items)`` from a pilot's :func:`paired_difference`.
    - ``sd_seed``: SD over SFT seeds of one trained arm's metric (points); ``trained_arms`` is 1 for
      trained-vs-base, 2 for trained-vs-trained (each arm has ``n_seeds`` seeds).

    ``MDE = (t_{df,1-alpha/2} + t_{df,power}) * sqrt(sd_item^2/n_items + trained_arms*sd_seed^2/n_seeds)``
    with Welch-Satterthwaite ``df`` (items count as infinite). E.g. ``sd_item=10, n_items=100``,
    no seed noise: ``(1.960 + 0.842) * 1 = 2.80`` points.
    """
    if n_items < 1 or n_seeds < 1:
        raise ValueError("n_items and n_seeds must be >= 1")
    sd = _sd_item(sd_item, item_diffs)
    seed_var = trained_arms * sd_seed ** 2 / n_seeds
    if seed_var > 0 and n_seeds < 2:
        return math.inf  # one seed: training noise cannot be estimated, nothing is detectable
    terms = [(sd_seed ** 2 / n_seeds, n_seeds - 1)] * trained_arms if seed_var > 0 else []
    return combine_se(0.0, sd / math.sqrt(n_items), terms, 1 - alpha, power)["mde"]


def required_items(target: float, sd_item: float | None = None, sd_seed: float = 0.0, n_seeds: int = 3,
                   alpha: float = 0.05, power: float = 0.8, *, item_diffs: Sequence[float] | None = None,
                   trained_arms: int = 1, max_items: int = 10_000_000) -> int | None:
    """Fewest items per set whose :func:`mde` is <= ``target`` points; None when no item count
    reaches it (the seed term alone is larger: more seeds are needed)."""
    if target <= 0:
        raise ValueError("target effect must be > 0")
    sd = _sd_item(sd_item, item_diffs)
    f = lambda n: mde(sd, sd_seed, n, n_seeds, alpha, power, trained_arms=trained_arms)  # noqa: E731
    if f(max_items) > target:
        return None
    lo, hi = 1, max_items
    while lo < hi:  # mde decreases in n
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if f(mid) > target else (lo, mid)
    return lo
