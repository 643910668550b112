"""Statistics for the scaling / ablation study: CIs pooled over SFT seeds and eval items, trends.

Every study point (a data size, a model size, a round, an ablation) is trained with several SFT
seeds and each trained critic is scored on the same fixed benchmark items. Two sources of noise
therefore matter:

- *training noise*: how much the metric moves from one SFT seed to the next;
- *evaluation noise*: how much it would move on a fresh draw of benchmark items.

:func:`pooled_ci` combines them. For ``k`` seeds with point values ``v_i`` and per-seed item
bootstrap intervals ``[lo_i, hi_i]`` (percentile bootstrap over items, from the harness)::

    mean     = mean(v_i)
    se_seed  = sd(v_i) / sqrt(k)                       # training noise of the seed mean
    se_item  = mean((hi_i - lo_i) / (2 * z_.975))      # item bootstrap SE, averaged over seeds
    half     = sqrt((t_{k-1,.975} * se_seed)^2 + (z_.975 * se_item)^2)
    CI       = [mean - half, mean + half]

The item term is *not* divided by ``k``: all seeds are scored on the same items, so evaluation
noise is shared by the seeds and does not average out. Using the t quantile for the seed term
keeps the interval honest with only 3 seeds. With ``k == 1`` the seed term is unknown and left
out (the result says so via ``n_seeds``).

:func:`trend` is Spearman's rank correlation between a sweep variable (data size, model size,
round) and the per-seed values (every seed is one observation), with its two-sided p-value.

Usage::

    from scrit_utils import study_stats as ss
    ss.pooled_ci([50.0, 52.0, 51.0], [[45, 55], [47, 57], [46, 56]])
    # {'mean': 51.0, 'ci_low': ..., 'ci_high': ..., 'se_seed': 0.577, 'se_item': 2.55, 'n_seeds': 3}
    ss.trend([0, 0, 100, 100, 200, 200], [40, 41, 44, 45, 47, 46])   # {'rho': 0.97, 'p': 0.001, 'n': 6}
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z975 = 1.959963984540054


def _t975(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def pooled_ci(values: Sequence[float], item_cis: Sequence[Sequence[float] | None] | None = None,
              confidence: float = 0.95) -> dict:
    """Mean over seeds with a CI covering training (seed) and evaluation (item) noise; see module doc."""
    v = np.asarray([float(x) for x in values], dtype=float)
    v = v[~np.isnan(v)]
    k = int(v.size)
    out = {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "se_seed": float("nan"),
           "se_item": float("nan"), "n_seeds": k}
    if k == 0:
        return out
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    mean = float(v.mean())
    se_seed = float(v.std(ddof=1) / math.sqrt(k)) if k > 1 else 0.0
    tq = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) if k > 1 else 0.0
    ses = []
    for ci in item_cis or []:
        if ci is None:
            continue
        lo, hi = float(ci[0]), float(ci[1])
        if not (math.isnan(lo) or math.isnan(hi)):
            ses.append((hi - lo) / (2 * Z975))
    se_item = float(np.mean(ses)) if ses else 0.0
    half = math.sqrt((tq * se_seed) ** 2 + (z * se_item) ** 2)
    out.update(mean=mean, ci_low=mean - half, ci_high=mean + half, se_seed=se_seed, se_item=se_item)
    return out


def trend(x: Sequence[float], y: Sequence[float]) -> dict:
    """Spearman rho of ``y`` on ``x`` (one observation per seed and point) with its two-sided p."""
    from scipy import stats

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 3 or np.unique(xa).size < 2 or np.unique(ya).size < 2:
        return {"rho": float("nan"), "p": float("nan"), "n": n}
    res = stats.spearmanr(xa, ya)
    return {"rho": float(res.statistic), "p": float(res.pvalue), "n": n}


def difference(a: dict, b: dict) -> dict:
    """``a - b`` for two :func:`pooled_ci` results; CI half-widths combined in quadrature
    (conservative for shared eval items, which are positively correlated)."""
    d = a["mean"] - b["mean"]
    ha = (a["ci_high"] - a["ci_low"]) / 2
    hb = (b["ci_high"] - b["ci_low"]) / 2
    h = math.sqrt(ha ** 2 + hb ** 2)
    return {"delta": d, "ci_low": d - h, "ci_high": d + h}
