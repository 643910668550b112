"""Hierarchical (build / SFT seed / item) statistics for the v3 claims, and Holm's step-down.

Pure functions of numpy arrays (no project imports). A critic's scores on one metric come as an
array indexed ``[build, sft_seed, item]``: per-item scores (0/1 hits or real values) of every SFT
seed trained from every base build. The base critic is not trained, so it has one "seed" per build.
Every array of one comparison must have the same items in the same order (they are scored on the
same benchmark items) and, where builds are paired, the same builds in the same order (arm A of
build ``b`` is fine-tuned from base build ``b``). Results are in points: scores times ``scale``
(default 100, so 0/1 hits give percent; pass ``scale=1`` for scores already in points).

The statistic of one arm is its grand mean (builds, then seeds, then items, all equally weighted);
non-additive metrics (an F1 over items) are outside this module.

Three sources of variance, all random effects:

- **build**: a base build is a sample of the recipe; a critic trained from it inherits it. The
  issue's measured case: the own-solution gain is +25.6 on build 0 and +11.1 on build 1, with
  non-overlapping item intervals. An interval from one build cannot cover the recipe's effect.
- **SFT seed**: training noise within a build.
- **item**: the benchmark items are a sample; they are shared by every cell, so an item's
  main effect does *not* average out over builds or seeds (it is one draw for all of them).

**Hierarchical paired bootstrap** (:func:`arm_replicates`): each replicate draws builds with
replacement (one draw shared by all arms whose builds are paired), then SFT seeds with
replacement within each drawn build (independently per arm: seed ``s`` of arm A and seed ``s``
of arm B are unrelated runs), then one set of items with replacement applied to every cell of
every arm. The replicate statistic is the same contrast of arm means as the estimate.

**Known small-sample problem.** With few builds (3) the bootstrap over builds is coarse: 3 builds
have 10 distinct resamples, the bootstrap variance of a mean of ``n`` units is ``(n-1)/n`` of the
usual unbiased one (2/3 at n=3), and normal-theory percentiles stand in for ``t`` quantiles with
``n-1`` df (1.96 for 4.30 at n=3). Resampling every level with replacement also counts the lower
levels twice (a build mean already carries its seed and item noise). The net effect depends on
which level dominates; measured on synthetic data in ``tests/test_hierarchical.py`` (2,000
datasets each): with the build dominating, percentile coverage is 86% with 3 builds and 90% with 5;
with no build effect it is 99% (too wide). Hence four interval methods:

- ``interval="t"`` (default): ``estimate +- t_{df} * se_mom`` with the method-of-moments SE below
  and Welch-Satterthwaite df in which the build level counts ``n_builds - 1`` df and the item term
  ``n_items - 1``. ``se_mom^2`` is unbiased; Welch's df is slightly liberal when one term has 2 df:
  93-95% coverage measured with 3-5 builds (tests/test_hierarchical.py). p is the matching
  two-sided t test, so ``p < alpha`` iff the CI excludes 0.
- ``interval="t_build"``: the same SE on ``n_builds - 1`` df, whatever the item term: conservative
  (98-99.9% measured with 3 builds), the option when the build df must not be pooled away.
- ``interval="percentile"``: quantiles of the bootstrap replicates. p is the *sign-based
  inversion*: ``2 * min(P*(T* <= 0), P*(T* >= 0))`` (with the +1 correction), so again
  ``p < alpha`` iff the percentile CI excludes 0 (up to that correction). Reported for
  comparison; not the default because of the coverage above.
- ``interval="basic"``: ``2 * estimate - quantiles``. p comes from the bootstrap distribution of
  the centred statistic: the share of ``|T* - T| >= |T|``.

**Variance components** (method of moments, contributions to ``Var(estimate)`` in points^2). With
``P[b, i]`` the contrast's per-build, per-item value (seeds averaged) and ``D_b`` its item mean:

- ``var_item = max(0, mean over b != b' of cov_items(P[b], P[b'])) / n_items``: two different
  builds share only the items' own effect, so their covariance over items estimates its variance
  (unbiased; the build x item and seed x item noise, independent across builds, drops out).
- ``var_seed = sum over trained arms of c^2 * s2_within / (k * n_builds)``, ``s2_within`` the
  pooled within-build variance of the seed values.
- ``var_build = max(0, var(D_b) / n_builds - var_seed)``.

``se_mom^2 = var(D_b) / n_builds + var_item`` (summed per build group when builds are not paired):
``var(D_b)`` is unbiased for everything that varies between builds (build effect, seed noise, the
build x item noise) and ``var_item`` adds what all builds share. With one build the build term
cannot be measured: ``se_mom^2 = var_seed + var_item`` and ``build_variance_measured`` is False
(such an interval describes that build, not the recipe).

**Minimal detectable effect**: ``mde = (q_{1-alpha/2} + q_{power}) * se`` with the quantiles of the
interval's own reference distribution: ``t`` on the Welch df for ``interval="t"``, normal for the
bootstrap intervals. The MDE must describe the test that will be run: with 3 builds and the build
level dominating, the t test needs ``(4.30 + 1.06) * se``, and a normal-theory ``2.80 * se`` would
promise power that the design does not have. :func:`plan_mde` gives it from pilot components.

Holm's step-down adjustment across the primary claims is :func:`holm`; :func:`verdict` and
:func:`holm_verdicts` turn an adjusted p, the estimate's sign and the pre-registered direction
into a verdict in the study's words (reproduced / not reproduced / inconclusive).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

INTERVALS = ("t", "t_build", "percentile", "basic")


# --- input checks ---------------------------------------------------------------------------------------------
def _as_scores(x, name: str, scale: float) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"arm {name!r}: expected scores indexed [build, sft_seed, item], got shape {arr.shape}")
    if min(arr.shape) < 1:
        raise ValueError(f"arm {name!r}: empty axis in shape {arr.shape} (need >= 1 build, seed and item)")
    if not np.isfinite(arr).all():
        raise ValueError(f"arm {name!r}: non-finite scores (NaN/inf); every cell must be scored on every item")
    return arr * scale


def _check_shared(xs: Sequence[np.ndarray], names: Sequence[str], groups: Sequence[int]) -> None:
    """Items are shared by all arms; builds are shared by all arms (paired or not: the same count)."""
    n0, b0 = xs[0].shape[2], xs[0].shape[0]
    for x, name in zip(xs[1:], names[1:]):
        if x.shape[2] != n0:
            raise ValueError(f"arm {name!r} has {x.shape[2]} items but arm {names[0]!r} has {n0}: the comparison "
                             "is paired over items, so every arm must be scored on the same items in the same order")
    for x, name, g in zip(xs[1:], names[1:], groups[1:]):
        if x.shape[0] != b0:
            how = "paired with" if g == groups[0] else "compared with"
            raise ValueError(f"arm {name!r} has {x.shape[0]} builds but arm {names[0]!r} has {b0}: an arm "
                             f"{how} another needs the same number of builds (build b of each from base build b)")
    if n0 < 2:
        raise ValueError(f"need >= 2 items to measure item variance, got {n0}")


# --- the hierarchical bootstrap ---------------------------------------------------------------------------------
def arm_replicates(arms: Mapping[str, np.ndarray], groups: Mapping[str, int] | None = None, n_boot: int = 2000,
                   rng: np.random.Generator | int = 0, scale: float = 100.0) -> dict[str, np.ndarray]:
    """Per arm, its grand mean (points) in each of ``n_boot`` hierarchical bootstrap replicates.

    Arms with the same ``groups`` id share the build draw (default: all arms paired); seeds are drawn
    per arm within each drawn build; one item draw per replicate serves every arm. Any smooth function
    of arm means (a difference, a slope, a share of another gain) can be bootstrapped from these."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    names = list(arms)
    if not names:
        raise ValueError("arm_replicates: no arms")
    grp = [0 if groups is None else int(groups[n]) for n in names]
    xs = [_as_scores(arms[n], n, scale) for n in names]
    _check_shared(xs, names, grp)
    return dict(zip(names, _replicates(xs, grp, n_boot, np.random.default_rng(rng))))


def _replicates(xs: Sequence[np.ndarray], groups: Sequence[int], n_boot: int,
                rng: np.random.Generator) -> list[np.ndarray]:
    nb, n = xs[0].shape[0], xs[0].shape[2]
    # one item draw per replicate, as counts: a cell's replicate mean is then one matrix product
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    weights = counts.reshape(n_boot, n).T / n  # (n, B)
    builds = {g: rng.integers(0, nb, size=(n_boot, nb)) for g in dict.fromkeys(groups)}
    r = np.arange(n_boot)[:, None, None]
    out = []
    for x, g in zip(xs, groups):
        k = x.shape[1]
        cell = (x.reshape(nb * k, n) @ weights).reshape(nb, k, n_boot)  # item-resampled cell means
        seeds = rng.integers(0, k, size=(n_boot, nb, k))
        out.append(cell[builds[g][:, :, None], seeds, r].mean(axis=(1, 2)))
    return out


# --- method of moments ------------------------------------------------------------------------------------------
def _welch_df(terms: Sequence[tuple[float, float]]) -> float:
    total = sum(v for v, _ in terms)
    denom = sum(v * v / d for v, d in terms if d > 0 and v > 0)
    return total * total / denom if denom > 0 else math.inf


def _moments(xs: Sequence[np.ndarray], coefs: Sequence[float], groups: Sequence[int]) -> dict:
    """Variance components of ``sum_j c_j * mean(x_j)`` (module docstring) and the t interval's SE/df."""
    nb, n = xs[0].shape[0], xs[0].shape[2]
    profile: dict[int, np.ndarray] = {}
    seed_terms, seed_vars = [], []
    for x, c, g in zip(xs, coefs, groups):
        profile[g] = profile.get(g, 0.0) + c * x.mean(axis=1)  # (builds, items), seeds averaged
        k = x.shape[1]
        if k >= 2:  # the base (one evaluation per build) has no training noise
            s2 = float(x.mean(axis=2).var(axis=1, ddof=1).mean())  # pooled within-build seed variance
            seed_terms.append((c * c * s2 / (k * nb), nb * (k - 1)))
            seed_vars.append(s2)
    total = sum(profile.values())
    var_seed = float(sum(v for v, _ in seed_terms))
    if nb >= 2:
        build_terms = [(float(p.mean(axis=1).var(ddof=1)) / nb, nb - 1) for p in profile.values()]
        cov = np.cov(total)  # builds x builds, over items
        sig_item2 = max(0.0, float(cov[~np.eye(nb, dtype=bool)].mean()))
        level_terms = build_terms
    else:  # one build: its between-build variance is unknowable; all item variance counts as item
        build_terms = []
        sig_item2 = float(total[0].var(ddof=1))
        level_terms = seed_terms
    var_item = sig_item2 / n
    var_level = float(sum(v for v, _ in level_terms))
    var_build = max(0.0, var_level - var_seed) if nb >= 2 else float("nan")
    terms = [*level_terms, (var_item, n - 1)]
    return {"se_mom": math.sqrt(var_level + var_item), "df": _welch_df(terms),
            "var_build": var_build, "var_seed": var_seed, "var_item": var_item,
            "sd_build": math.sqrt(var_build * nb) if nb >= 2 else float("nan"),
            "sd_seed": math.sqrt(float(np.mean(seed_vars))) if seed_vars else 0.0,
            "sd_item": math.sqrt(sig_item2), "build_variance_measured": nb >= 2, "n_builds": nb}


# --- intervals --------------------------------------------------------------------------------------------------
def _interval(est: float, reps: np.ndarray, mom: dict, interval: str, confidence: float, power: float) -> dict:
    a = 1 - confidence
    se_boot = float(reps.std(ddof=1))
    if interval in ("t", "t_build"):
        se = mom["se_mom"]
        df = mom["df"] if interval == "t" or not mom["build_variance_measured"] else mom["n_builds"] - 1
        dist = stats.t(df) if math.isfinite(df) else stats.norm()
        q = float(dist.ppf(1 - a / 2))
        lo, hi = est - q * se, est + q * se
        p = float(2 * dist.sf(abs(est) / se)) if se > 0 else (0.0 if est != 0 else 1.0)
        mde = (q + float(dist.ppf(power))) * se
    else:
        se, nrep = se_boot, reps.size
        qlo, qhi = (float(v) for v in np.quantile(reps, [a / 2, 1 - a / 2]))
        if interval == "percentile":
            lo, hi = qlo, qhi
            tail = min(int((reps <= 0).sum()), int((reps >= 0).sum()))
            p = min(1.0, 2 * (tail + 1) / (nrep + 1))
        else:  # basic
            lo, hi = 2 * est - qhi, 2 * est - qlo
            p = min(1.0, (int((np.abs(reps - est) >= abs(est)).sum()) + 1) / (nrep + 1))
        mde = (float(stats.norm.ppf(1 - a / 2)) + float(stats.norm.ppf(power))) * se
    return {"estimate": est, "ci_low": float(lo), "ci_high": float(hi), "p": p, "se": float(se), "mde": float(mde),
            "se_boot": se_boot, "interval": interval, "confidence": confidence}


def _analyse(arms: Sequence[tuple[str, np.ndarray, float, int]], n_boot: int, rng, confidence: float, power: float,
             interval: str, scale: float) -> tuple[dict, list[np.ndarray]]:
    """The contrast ``sum_j c_j * mean(arm_j)`` for ``(name, scores, c_j, build group)`` rows."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if not 0 < confidence < 1 or not 0 < power < 1:
        raise ValueError(f"confidence and power must lie in (0, 1), got {confidence}, {power}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")
    names = [a[0] for a in arms]
    xs = [_as_scores(a[1], a[0], scale) for a in arms]
    coefs = [float(a[2]) for a in arms]
    groups = [int(a[3]) for a in arms]
    _check_shared(xs, names, groups)
    reps = _replicates(xs, groups, n_boot, np.random.default_rng(rng))
    est = float(sum(c * x.mean() for c, x in zip(coefs, xs)))
    contrast = sum(c * r for c, r in zip(coefs, reps))
    mom = _moments(xs, coefs, groups)
    out = {**_interval(est, contrast, mom, interval, confidence, power), **mom,
           "n_builds": int(xs[0].shape[0]), "n_items": int(xs[0].shape[2]), "n_boot": int(n_boot)}
    return out, [x.mean(axis=(1, 2)) for x in xs]


# --- public comparisons -----------------------------------------------------------------------------------------
def hierarchical_difference(a, b, *, n_boot: int = 2000, rng: np.random.Generator | int = 0,
                            confidence: float = 0.95, power: float = 0.8, interval: str = "t",
                            scale: float = 100.0, names: tuple[str, str] = ("a", "b")) -> dict:
    """``mean(a) - mean(b)`` in points, for ``a``, ``b`` indexed ``[build, sft_seed, item]``.

    Builds are paired (the same build draw for both arms: arm A of build b is trained from base b),
    seeds are drawn per arm, items once for everything. ``b`` may be the base critic (one seed per
    build). Returns ``estimate, ci_low, ci_high, p, se, mde`` (of the chosen ``interval``; see the
    module docstring), ``se_boot, se_mom, df``, the variance components ``var_build, var_seed,
    var_item`` (contributions to the estimate's variance, points^2) and per-unit SDs ``sd_build``
    (one build's contrast), ``sd_seed`` (one seed's value, pooled over trained arms), ``sd_item``
    (one item's shared contrast), ``build_means`` (per-build differences), ``n_seeds_a/b``."""
    out, means = _analyse([(names[0], a, 1.0, 0), (names[1], b, -1.0, 0)], n_boot, rng, confidence, power,
                          interval, scale)
    return {**out, "build_means": (means[0] - means[1]).tolist(),
            "n_seeds_a": int(np.shape(a)[1]), "n_seeds_b": int(np.shape(b)[1])}


def hierarchical_contrast(arms: Mapping[str, tuple], *, n_boot: int = 2000, rng: np.random.Generator | int = 0,
                          confidence: float = 0.95, power: float = 0.8, interval: str = "t",
                          scale: float = 100.0) -> dict:
    """``sum_j c_j * mean(arm_j)`` in points for ``arms = {name: (scores [build, sft_seed, item], c_j)}``, all
    builds paired (build b of every arm from build seed b), e.g. a difference of two gains ``(a - b) - (c - d)``.
    Returns what :func:`hierarchical_difference` does, without its per-arm seed counts."""
    if not arms:
        raise ValueError("hierarchical_contrast: no arms")
    rows = [(name, scores, coef, 0) for name, (scores, coef) in arms.items()]
    out, means = _analyse(rows, n_boot, rng, confidence, power, interval, scale)
    return {**out, "build_means": sum(c * m for (_, _, c, _), m in zip(rows, means)).tolist()}


def hierarchical_mean(a, *, n_boot: int = 2000, rng: np.random.Generator | int = 0, confidence: float = 0.95,
                      power: float = 0.8, interval: str = "t", scale: float = 100.0, name: str = "a",
                      bounds: tuple[float, float] | None = (0.0, 100.0)) -> dict:
    """One critic's mean (points) with the same machinery; the CI is clipped to ``bounds``."""
    out, means = _analyse([(name, a, 1.0, 0)], n_boot, rng, confidence, power, interval, scale)
    if bounds is not None:
        out.update(ci_low=max(bounds[0], out["ci_low"]), ci_high=min(bounds[1], out["ci_high"]))
    return {**out, "build_means": means[0].tolist(), "n_seeds": int(np.shape(a)[1])}


def hierarchical_trend(levels: Sequence, x: Sequence[float], *, paired_builds: bool = True, n_boot: int = 2000,
                       rng: np.random.Generator | int = 0, confidence: float = 0.95, power: float = 0.8,
                       interval: str = "t", scale: float = 100.0) -> dict:
    """OLS slope (points per unit of ``x``) of the level values on ``x``.

    Each level is an array ``[build, sft_seed, item]`` (its value: the mean) or a pair
    ``(arm, reference)`` (its value: ``mean(arm) - mean(reference)``, e.g. SCRIT's gain over the base
    of that model size). The slope ``sum_l w_l * value_l`` with ``w = (x - mean x) / sum (x - mean x)^2``
    is a contrast of arm means, so it gets the same hierarchical bootstrap, shared across levels: one
    item draw for every level; builds drawn once for all levels when ``paired_builds`` (build b of
    every level descends from base build b, e.g. data-size levels), else per level (e.g. separately
    built model sizes; a level's arm and its reference stay paired). Returns what
    :func:`hierarchical_difference` returns, with ``means`` (level values) and ``levels``."""
    xv = np.asarray(x, dtype=float)
    if len(levels) != xv.size or xv.size < 2 or np.unique(xv).size < 2:
        raise ValueError(f"trend needs one x per level and >= 2 distinct levels; got {len(levels)} levels, "
                         f"x={xv.tolist()}")
    xc = xv - xv.mean()
    w = xc / float((xc * xc).sum())
    rows = []
    for lvl, (item, wl) in enumerate(zip(levels, w)):
        g = 0 if paired_builds else lvl
        if isinstance(item, tuple):
            if len(item) != 2:
                raise ValueError(f"level {lvl}: expected an array or an (arm, reference) pair")
            rows += [(f"level {lvl}", item[0], wl, g), (f"level {lvl} reference", item[1], -wl, g)]
        else:
            rows.append((f"level {lvl}", item, wl, g))
    out, _ = _analyse(rows, n_boot, rng, confidence, power, interval, scale)
    values = []
    for item in levels:
        pair = item if isinstance(item, tuple) else (item, None)
        v = float(np.mean(pair[0])) - (float(np.mean(pair[1])) if pair[1] is not None else 0.0)
        values.append(scale * v)
    return {**out, "means": values, "levels": int(xv.size), "paired_builds": bool(paired_builds)}


def plan_mde(sd_build: float, sd_seed: float, sd_item: float, n_builds: int, n_seeds: int, n_items: int, *,
             trained_arms: int = 1, alpha: float = 0.05, power: float = 0.8) -> float:
    """Planning: the MDE (points) of a difference with ``n_builds`` builds, ``n_seeds`` seeds per trained
    arm and ``n_items`` items, from pilot per-unit SDs (``sd_build, sd_seed, sd_item`` of
    :func:`hierarchical_difference`). ``se^2 = (sd_build^2 + trained_arms * sd_seed^2 / n_seeds) / n_builds
    + sd_item^2 / n_items``; t quantiles on the Welch df (build level ``n_builds - 1``). Shows where to
    spend: seeds only shrink their own share of the build-level term, builds shrink all of it."""
    if min(n_builds, n_seeds, n_items) < 1:
        raise ValueError("n_builds, n_seeds and n_items must be >= 1")
    level = (sd_build ** 2 + trained_arms * sd_seed ** 2 / n_seeds) / n_builds
    if level > 0 and n_builds < 2:
        return math.inf  # one build: between-build variance cannot be estimated, nothing is detectable
    item = sd_item ** 2 / n_items
    se = math.sqrt(level + item)
    df = _welch_df([(level, n_builds - 1), (item, max(n_items - 1, 1))])
    dist = stats.t(df) if math.isfinite(df) else stats.norm()
    return float((dist.ppf(1 - alpha / 2) + dist.ppf(power)) * se)


# --- multiple claims --------------------------------------------------------------------------------------------
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order.

    Sort ascending, multiply the j-th smallest (1-based) by ``m - j + 1``, take the running maximum
    (so adjusted values keep the raw order) and cap at 1. Rejecting where ``adjusted < alpha`` is
    Holm's procedure, which controls the family-wise error rate at ``alpha`` under any dependence."""
    p = np.asarray(pvalues, dtype=float).ravel()
    if p.size == 0:
        return p
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out


def _direction(direction) -> int:
    if direction in (1, "+", ">", "greater", "increase"):
        return 1
    if direction in (-1, "-", "<", "less", "decrease"):
        return -1
    raise ValueError(f"pre-registered direction must be +1/'greater' or -1/'less', got {direction!r}")


def verdict(p_adjusted: float, estimate: float, direction, alpha: float = 0.05, mde: float | None = None,
            smallest_effect: float | None = None) -> str:
    """One claim's verdict from its Holm-adjusted two-sided p, its estimate and its pre-registered direction.

    *reproduced*: significant and on the pre-registered side; *not reproduced (clear opposite
    effect)*: significant on the other side; *not reproduced (an effect of the pre-registered size was
    detectable)*: not significant although ``mde <= smallest_effect`` (both given, points);
    otherwise *inconclusive*."""
    sign = _direction(direction)
    if not (math.isfinite(p_adjusted) and math.isfinite(estimate)):
        return "not measured"
    if p_adjusted < alpha and estimate != 0:
        return "reproduced" if (estimate > 0) == (sign > 0) else "not reproduced (clear opposite effect)"
    if mde is not None and smallest_effect is not None and mde <= smallest_effect:
        return "not reproduced (an effect of the pre-registered size was detectable)"
    return "inconclusive"


def holm_verdicts(claims: Mapping[str, Mapping], alpha: float = 0.05) -> dict[str, dict]:
    """Holm across ``claims`` (name -> ``{p, estimate, direction[, mde, smallest_effect]}``): per claim
    ``{p, p_holm, estimate, direction, verdict}``."""
    names = list(claims)
    adj = holm([float(claims[n]["p"]) for n in names])
    out = {}
    for name, pa in zip(names, adj):
        c = claims[name]
        v = verdict(float(pa), float(c["estimate"]), c["direction"], alpha, c.get("mde"), c.get("smallest_effect"))
        out[name] = {"p": float(c["p"]), "p_holm": float(pa), "estimate": float(c["estimate"]),
                     "direction": _direction(c["direction"]), "verdict": v}
    return out
