"""The v3 study's pre-registered claims as one table of data, and their analysis.

Each claim is a row: the contrast it tests (two arms at one example count, a slope over data size,
the gain's slope over model size, rounds), ONE primary metric, and the direction decided before any
benchmark number is seen. The analysis takes per-item scores indexed ``[build, sft_seed, item]`` for
every (arm, level) the claims name (:mod:`scrit_utils.study.hierarchical`: builds, SFT seeds and items
are all random effects), adjusts the tested claims' p-values with Holm, and gives each a verdict.

Choices fixed here (and why):

- **Primary metric: CC-Acc on the deliberately-incorrect set** (``cc_acc_wrong``) for every claim. In
  this world most own-solution items and half the balanced set are correct solutions, so a critic
  fine-tuned to approve everything wins CC-mean (measured on the v2 run: 43.4 vs SCRIT's 39.6 at 512
  examples) while it scores 4.3 on the deliberately-incorrect set: a claim must need critiquing to win.
  It is also a mean over items, which the hierarchical bootstrap needs (EI-F1 is a harmonic mean over
  classes). Every scenario, both halves of the balanced set and EI-F1 are reported beside it, not claimed.
- **Magnitudes are reported, not claimed** (toy points are not paper points): a verdict is about the
  pre-registered direction only; no row compares with a paper number.
- **SCRIT's share of the oracle's gain** is a magnitude (``tested=False``): it enters no Holm family.

Usage::

    from scrit_utils.study import preregistration as pre
    cells = {("contrastive", 512): a, ("base", 0): b, ...}     # arrays [build, seed, item], 0/1 hits
    table = pre.analyse(cells, n_boot=2000, rng=0)            # one row per claim, Holm-adjusted
    pre.markdown_table()                                      # the claims as registered (results/pilot/)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np

from scrit_utils.critique.item_metrics import strata
from scrit_utils.critique.metrics import METRICS
from scrit_utils.study import hierarchical as hi

#: the one primary metric of every claim (see the module docstring)
PRIMARY_METRIC = "cc_acc_wrong"
#: the base critic's arm name in the cells (level 0 of every axis)
BASE = "base"
#: the cells of the headroom variant (sweeps.headroom_builds): its base critic and SCRIT with it (no claim reads them)
HEADROOM_BASE, HEADROOM = "headroom_base", "headroom"


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    contrast: Literal["difference", "slope", "gain_slope", "share"]
    arm: str  # the arm the claim is about (cells key)
    vs: str | None = None  # the other arm of a difference / the reference of a gain or share
    levels: tuple[float, ...] = ()  # example counts (slope) or model sizes (gain_slope); () = the claim size
    direction: Literal["greater", "less"] = "greater"
    metric: str = PRIMARY_METRIC
    tested: bool = True  # False: a magnitude reported with its interval, outside the Holm family
    ceiling: str | None = None  # share: the arm whose gain is the denominator (the oracle)
    notes: str = field(default="", compare=False)


#: the registered claims, in report order. Arms are rows of scrit_utils.core.arms.ARMS (plus "base");
#: ``x`` of a difference is the study's claim size (the largest example count every arm reaches).
CLAIMS: tuple[Claim, ...] = (
    Claim("scrit_vs_base", "SCRIT's critic corrects deliberately incorrect solutions better than its base",
          "difference", "contrastive", BASE),
    Claim("scrit_vs_approve_everything", "SCRIT beats a critic fine-tuned on approvals only (the floor any "
          "critique fine-tuning reaches without critiquing)", "difference", "contrastive", "approve_everything"),
    Claim("scrit_vs_direct", "contrastive critiques (with a reference) train a better critic than direct ones at "
          "the same example count", "difference", "contrastive", "direct"),
    Claim("scrit_vs_model_bugs", "SCRIT beats fine-tuning on bugs the model injected itself",
          "difference", "contrastive", "bug_injection"),
    Claim("validation_matters", "full self-validation beats keeping every parsed critique",
          "difference", "contrastive", "unvalidated"),
    Claim("data_slope", "SCRIT's critic improves with more self-training examples (slope over log2 examples)",
          "slope", "contrastive"),
    Claim("gain_slope_model_size", "SCRIT's gain over its base grows with base-model size (same example count "
          "and items at every size; slope over log2 parameters)", "gain_slope", "contrastive", BASE),
    Claim("rounds", "a second and third round (round-k model as the new base, same pool) keep improving",
          "slope", "rounds", levels=(1.0, 2.0, 3.0)),
    Claim("share_of_oracle_gain", "SCRIT's gain as a share of the oracle critic's gain over the same base",
          "share", "contrastive", BASE, ceiling="oracle", tested=False),
)


def _check(claims: Sequence[Claim]) -> None:
    keys = [c.key for c in claims]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate claim keys: {sorted(k for k in keys if keys.count(k) > 1)}")
    for c in claims:
        if c.metric not in METRICS:
            raise ValueError(f"claim {c.key}: unknown metric {c.metric!r} (known: {', '.join(METRICS)})")


_check(CLAIMS)


def cell(cells: Mapping, arm: str, x: float):
    """``arm``'s scores at ``x`` examples (the base critic's at 0, whatever ``x``), or None if it was not run."""
    key = (arm, 0.0 if arm == BASE else float(x))
    return cells.get(key)


def scrit_top_size(cells: Mapping) -> float:
    """The largest example count SCRIT (the contrastive arm) reached: the comparison size when no claim size is
    given (a profile passes its own, ``sweeps.model_size_data``)."""
    return max((x for (arm, x) in cells if arm == "contrastive"), default=0.0)


class NotMeasured(Exception):
    """A claim the points do not measure: a cell it needs was not run, or the cells do not make the registered
    contrast (the reason is reported)."""


def _need(named: Mapping[str, object], claim_size: float) -> None:
    missing = [arm for arm, v in named.items() if v is None]
    if missing:
        raise NotMeasured(f"no {' / '.join(missing)} at {claim_size:g} examples")


def _one(c: Claim, cells: Mapping, claim_size: float, n_boot: int, rng, interval: str) -> dict:
    """Estimate, CI and p of one claim; :class:`NotMeasured` (with the missing cells) when the profile did not run
    what it needs."""
    kw = dict(n_boot=n_boot, rng=rng, interval=interval)
    if c.contrast == "difference":
        a, b = cell(cells, c.arm, claim_size), cell(cells, c.vs, claim_size)
        _need({c.arm: a, c.vs: b}, claim_size)
        return hi.hierarchical_difference(a, b, names=(c.arm, c.vs), **kw)
    if c.contrast == "slope":
        xs = sorted(x for (arm, x) in cells if arm == c.arm and (not c.levels or x in c.levels))
        if c.arm != "rounds":  # the data axis starts at the base critic
            xs = [0.0] + [x for x in xs if x > 0]
            lv = [cell(cells, BASE, 0) if x == 0 else cells[(c.arm, x)] for x in xs]
            base_x = np.log2(min(x for x in xs if x > 0)) - 1  # the base critic one log2 step left of the first level
            xv = [np.log2(x) if x > 0 else base_x for x in xs]
        else:
            lv, xv = [cells[(c.arm, x)] for x in xs], xs
        if len(xs) < 2 or any(v is None for v in lv):
            raise NotMeasured(f"{c.arm}: {len(xs)} level(s) {[f'{x:g}' for x in xs]}"
                              + (" (this profile runs one round)" if c.arm == "rounds" else ""))
        return hi.hierarchical_trend(lv, xv, **kw)
    if c.contrast == "gain_slope":  # cells keyed (f"{arm}@{params}", examples) and (f"base@{params}", 0)
        by_size: dict[float, list] = {}
        for (arm, x), v in cells.items():
            if arm.startswith(f"{c.arm}@"):
                by_size.setdefault(float(arm.split("@")[1]), []).append((x, v))
        if any(len(v) > 1 for v in by_size.values()):  # the claim needs one example count at every size
            raise NotMeasured(f"several example counts at one model size: "
                              f"{ {f'{s:g}': [x for x, _ in v] for s, v in by_size.items()} }")
        if len({v[0][0] for v in by_size.values()}) > 1:  # e.g. a size that validated fewer examples than asked
            raise NotMeasured(f"the model sizes were trained on different example counts: "
                              f"{ {f'{s:g}': v[0][0] for s, v in by_size.items()} }")
        sizes = sorted(by_size)
        pairs = [(by_size[s][0][1], cells.get((f"{c.vs}@{s:g}", 0.0))) for s in sizes]
        if len(sizes) < 2 or any(a is None or b is None for a, b in pairs):
            done = [f"{s:g}" for s, (a, b) in zip(sizes, pairs) if a is not None and b is not None]
            raise NotMeasured(f"model sizes with SCRIT and its base: {done}")
        return hi.hierarchical_trend(pairs, np.log2(sizes), paired_builds=False, **kw)
    if c.contrast == "share":
        a, b, o = (cell(cells, c.arm, claim_size), cell(cells, c.vs, claim_size), cell(cells, c.ceiling, claim_size))
        _need({c.arm: a, c.vs: b, c.ceiling: o}, claim_size)
        reps = hi.arm_replicates({"a": a, "b": b, "o": o}, n_boot=n_boot, rng=rng)
        gain, ceil = reps["a"] - reps["b"], reps["o"] - reps["b"]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ceil > 0, gain / ceil, np.nan)
        est = (np.mean(a) - np.mean(b)) / (np.mean(o) - np.mean(b)) if np.mean(o) > np.mean(b) else np.nan
        lo, hi_ = np.nanpercentile(share, [2.5, 97.5]) if np.isfinite(share).any() else (np.nan, np.nan)
        return {"estimate": float(est), "ci_low": float(lo), "ci_high": float(hi_), "p": np.nan, "mde": np.nan}
    raise ValueError(f"claim {c.key}: unknown contrast {c.contrast!r}")


def analyse(cells: Mapping[tuple[str, float], np.ndarray], claim_size: float | None = None,
            claims: Sequence[Claim] = CLAIMS, n_boot: int = 2000, rng=0, interval: str = "t",
            alpha: float = 0.05):
    """One row per claim: estimate and CI (points; shares as fractions), p, Holm-adjusted p over the
    tested claims that were measured, and the verdict. ``cells[(arm, examples)]`` holds the primary
    metric's per-item scores ``[build, seed, item]`` (the base critic at ``(\"base\", 0)``).

    ``claim_size``: the example count the arms are compared at, pre-registered (notebook 05 passes
    ``sweeps.model_size_data``, the count of the model-size points too); None = SCRIT's largest count, which
    compares nothing when the other arms stop below it."""
    import pandas as pd

    if claim_size is None:
        claim_size = scrit_top_size(cells)
    rows = []
    for c in claims:
        try:
            r, why = _one(c, cells, claim_size, n_boot, rng, interval), ""
        except NotMeasured as e:
            r, why = None, str(e)
        rows.append({"note": why, "claim": c.key, "statement": c.statement, "metric": c.metric, "direction": c.direction,
                     "tested": c.tested, "estimate": np.nan if r is None else r["estimate"],
                     "ci_low": np.nan if r is None else r["ci_low"], "ci_high": np.nan if r is None else r["ci_high"],
                     "p": np.nan if r is None else r["p"], "mde": np.nan if r is None else r.get("mde", np.nan),
                     "builds": _builds(c, cells), "measured": r is not None})
    df = pd.DataFrame(rows)
    # an interval from one base build leaves out the largest variance source: such a claim is not tested
    one_build = df["measured"] & (df["builds"] < 2)
    family = df[df["tested"] & df["measured"] & ~one_build]
    verdicts = hi.holm_verdicts({r.claim: {"p": r.p, "estimate": r.estimate, "direction": r.direction}
                                 for r in family.itertuples()}, alpha=alpha) if len(family) else {}
    df["p_holm"] = [verdicts[k]["p_holm"] if k in verdicts else np.nan for k in df["claim"]]
    df["verdict"] = [verdicts[k]["verdict"] if k in verdicts else
                     (f"not measured ({n})" if n else "not measured") if not m else
                     "not claimable (one build: no build variance in the interval)" if t and ob else
                     "reported, not tested"
                     for k, m, t, ob, n in zip(df["claim"], df["measured"], df["tested"], one_build, df["note"])]
    df = df.drop(columns=["note"])
    return df


# --- notebook 05's points -> the cells the claims read ----------------------------------------------------------
def _cell_key(r: Mapping) -> tuple[str, float] | None:
    """The (arm, level) a point row measures for the claims; ``None`` for rows no claim reads (ablations)."""
    study, arm, x = r["study"], r["arm"], float(r["x"])
    if study == "data_size":
        return (BASE, 0.0) if x == 0 else (arm, x)
    if study == "model_size":  # arms "base:<model>" / "scrit:<model>"; x = the model's parameter count
        kind = arm.split(":", 1)[0]
        return (f"{BASE}@{x:g}", 0.0) if kind == "base" else (f"contrastive@{x:g}", float(r["n_examples"]))
    if study == "rounds":  # arms "scrit" (the first protocol: the claim's) and "scrit:<protocol>"; x = the round
        return ("rounds" + arm[len("scrit"):], x)
    if study == "headroom":  # arms "base:<variant build>" / "scrit:<variant build>" (one variant per build)
        return (HEADROOM_BASE, 0.0) if arm.startswith("base:") else (HEADROOM, float(r["n_examples"]))
    return None


def _is_untrained(key: tuple[str, float]) -> bool:
    """The base critic's cells: one evaluation per build, whatever the SFT seed of the row that asked for it."""
    return key[1] == 0.0


def _item_hits(items: Mapping, metric: str) -> tuple[tuple, np.ndarray]:
    st = strata(items, metric)
    if len(st) != 1:  # several tasks or classes: the metric is a mean of stratum means, not of items
        raise ValueError(f"{metric}: {len(st)} strata {sorted(st)}; the claims need a metric that is one mean over items")
    ids, hits = next(iter(st.values()))
    return ids, hits


def cells_from_points(rows: Sequence[Mapping], metric: str = PRIMARY_METRIC,
                      items_key: str = "items") -> tuple[dict, list[str]]:
    """``(cells, notes)``: per-item scores ``[build, seed, item]`` of every (arm, level) from notebook 05's points.

    Keys: ``(arm, examples)`` for the data-size arms and ``("base", 0)`` for the base critic (its one
    evaluation per build); ``("contrastive@<params>", examples)`` and ``("base@<params>", 0)`` for the
    model sizes; ``("rounds", round)`` (and ``("rounds:<protocol>", round)``) for the rounds. Builds come in
    the order of the rows (``sweeps.builds``). A cell that not every build reached (an arm capped at a
    different example count on one build) is left out and named in ``notes``: paired statistics need the
    same builds in every cell. Raises when two cells were scored on different items. ``items_key="items_injected"``:
    the same cells on the injected-error diagnostic (the points notebook 05 diagnosed)."""
    order: list[str] = []
    got: dict[tuple, dict[str, dict[int, np.ndarray]]] = {}
    ref_ids: tuple | None = None
    for r in rows:
        key = _cell_key(r)
        if key is None or not r.get(items_key):
            continue
        b = r.get("build", "")
        if b not in order:
            order.append(b)
        ids, hits = _item_hits(r[items_key], metric)
        if ref_ids is None:
            ref_ids = ids
        elif ids != ref_ids:
            raise ValueError(f"{key} on build {b!r}: scored on other items than the first cell ({len(ids)} vs "
                             f"{len(ref_ids)} items); every arm and build must be scored on the same items")
        seeds = got.setdefault(key, {}).setdefault(b, {})
        if _is_untrained(key) and seeds:
            continue  # the same base evaluation again, asked for by another seed's points
        seeds[int(r["seed"])] = hits
    cells, notes = {}, []
    for key, by_build in got.items():
        missing = [b for b in order if b not in by_build]
        if missing:
            notes.append(f"{key[0]} at {key[1]:g}: not on build(s) {missing}; left out")
            continue
        n_seeds = {len(by_build[b]) for b in order}
        if len(n_seeds) > 1:
            notes.append(f"{key[0]} at {key[1]:g}: different numbers of SFT seeds per build {sorted(n_seeds)}; left out")
            continue
        cells[key] = np.stack([np.stack([by_build[b][s] for s in sorted(by_build[b])]) for b in order])
    return cells, notes


def arms_table(cells: Mapping, n_boot: int = 2000, rng=0):
    """Every data-size arm at every example count it was trained at, on the primary metric: mean and interval
    over builds, SFT seeds and items (the arms at matched counts are the rows with the same ``examples``)."""
    import pandas as pd

    rows = []
    for (arm, x), v in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0] != BASE, kv[0][0])):
        if "@" in arm or arm.startswith(("rounds", HEADROOM)):
            continue
        r = hi.hierarchical_mean(v, n_boot=n_boot, rng=rng, name=arm)
        rows.append({"arm": arm, "examples": int(x), "mean": r["estimate"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "per_build": " / ".join(f"{m:.1f}" for m in r["build_means"]),
                     "builds": int(np.shape(v)[0]), "seeds": int(np.shape(v)[1]), "items": int(np.shape(v)[2])})
    # per_build: each build's mean in sweeps.builds order, since with few builds the t interval is wide and the
    # per-build values show whether an arm's order is the same on every build
    return pd.DataFrame(rows, columns=["arm", "examples", "mean", "ci_low", "ci_high", "per_build", "builds", "seeds",
                                       "items"])


def headroom_table(cells: Mapping, claim_size: float, n_boot: int = 2000, rng=0):
    """SCRIT's gain with the build's own critic and with the headroom variant (the same size built with a smaller
    reference gap, ``sweeps.headroom_builds``), and the difference of the two gains, on the primary metric: intervals
    over builds (paired by position), SFT seeds and items. Reported, not a claim; empty without headroom cells."""
    import pandas as pd

    own = cell(cells, BASE, 0), cell(cells, "contrastive", claim_size)
    var_x = sorted(x for (arm, x) in cells if arm == HEADROOM)
    var = cells.get((HEADROOM_BASE, 0.0)), (cells[(HEADROOM, var_x[-1])] if var_x else None)
    if any(v is None for v in (*own, *var)):
        return pd.DataFrame()
    kw = dict(n_boot=n_boot, rng=rng)
    rows = []
    for name, (b, s), n in (("the build's critic", own, claim_size), ("headroom variant", var, var_x[-1])):
        g = hi.hierarchical_difference(s, b, names=("scrit", "base"), **kw)
        rows.append({"critic": name, "examples": int(n), "base": float(np.mean(b)) * 100,
                     "scrit": float(np.mean(s)) * 100, "gain": g["estimate"], "ci_low": g["ci_low"],
                     "ci_high": g["ci_high"], "builds": int(np.shape(s)[0]), "seeds": int(np.shape(s)[1])})
    d = hi.hierarchical_contrast({"own_scrit": (own[1], 1.0), "own_base": (own[0], -1.0),
                                  "var_scrit": (var[1], -1.0), "var_base": (var[0], 1.0)}, **kw)
    rows.append({"critic": "gain difference (build's critic - variant)", "examples": int(claim_size),
                 "base": float("nan"), "scrit": float("nan"), "gain": d["estimate"], "ci_low": d["ci_low"],
                 "ci_high": d["ci_high"], "builds": rows[0]["builds"], "seeds": rows[0]["seeds"]})
    return pd.DataFrame(rows)


def natural_vs_injected(rows: Sequence[Mapping], n_boot: int = 2000, rng=0, natural=None):
    """Every diagnosed arm (``sweeps.diagnostic_arms`` and the base) on the natural-error claim set and on the
    injected-error diagnostic: CC-Acc on deliberately incorrect solutions, intervals over builds, seeds, items.
    ``natural``: the :func:`arms_table` of the same rows' natural cells, when the caller already has it."""
    import pandas as pd

    inj, _ = cells_from_points(rows, items_key="items_injected")
    b = arms_table(inj, n_boot, rng)
    if b.empty:
        return pd.DataFrame()
    a = natural if natural is not None else arms_table(cells_from_points(rows)[0], n_boot, rng)
    on = ["arm", "examples", "builds", "seeds", "items"]
    return a.merge(b, on=on, suffixes=("_natural", "_injected"))[
        on[:2] + ["mean_natural", "ci_low_natural", "ci_high_natural", "mean_injected", "ci_low_injected",
                  "ci_high_injected"] + on[2:]]


def _builds(c: Claim, cells: Mapping) -> int:
    """The fewest builds among the cells the claim's arm has (0 when it has none)."""
    n = [np.shape(v)[0] for (arm, _), v in cells.items() if arm == c.arm or arm.startswith(f"{c.arm}@")]
    return int(min(n)) if n else 0


def markdown_table(claims: Sequence[Claim] = CLAIMS) -> str:
    """The registered claims as a markdown table (for results/pilot/)."""
    lines = ["| claim | statement | contrast | arm | vs | primary metric | direction | tested |",
             "|---|---|---|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| `{c.key}` | {c.statement} | {c.contrast} | {c.arm} | {c.vs or ''} | "
                     f"{METRICS[c.metric].short} | {c.direction} | {'Holm family' if c.tested else 'magnitude only'} |")
    return "\n".join(lines)
