"""Study figures (notebooks 04-06): one colour per critic type, human metric names, paper overlays.

Conventions shared by every figure here:

- colours (:data:`COLORS`): base critic grey, SCRIT (contrastive) blue, direct critic orange,
  bug-injection critic red, the paper black (dashed); ablation variants are SCRIT variants (blue);
- metric names and units from :data:`METRIC_LABELS` (CC-Acc in %, EI-F1 x100);
- panels that are compared share their axes;
- the paper's curve or effect is drawn on its analogue: gains over the base in points (the same unit
  as ours) on a sweep axis normalised to [0, 1] (first level .. last level, log-spaced), so the shapes
  compare even though the paper's sweep spans other sizes.

Inputs are the frames of :mod:`scrit_utils.study.claims` (``summarize``, ``gains``) and
:data:`scrit_utils.study.claims.PAPER`.

Usage::

    from scrit_utils.study import figures
    fig = figures.gain_figure(gains_df)           # SCRIT's gain over the base per data and model size
    common.save_figure(cfg, fig, "05_gain_over_base")
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from scrit_utils.pipeline.common import plot_style
from scrit_utils.study.paper import PAPER, _scrit_paper
from scrit_utils.study.registry import COLORS, KEY, LABELS, METRIC_LABELS, arm_label, arm_order, critic_type  # noqa: F401

def color(arm: str) -> str:
    return COLORS[critic_type(arm)]


def _style():
    plot_style()
    import matplotlib.pyplot as plt

    plt.rcParams.update({"axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
                         "legend.fontsize": 8})
    return plt


def _legend(fig, axes) -> None:
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=min(4, len(seen)), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))


def _finish(fig, legend_rows: float = 1):
    inches = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(0.3, 0.32 * legend_rows / inches + 0.01), 1, 1))
    return fig


# --- absolute scores over a sweep ----------------------------------------------------------------------------


def _arm_order(arms) -> list[str]:
    arms = list(dict.fromkeys(arms))
    order = arm_order()
    return [a for a in order if a in arms] + sorted(a for a in arms if a not in order)


def _errorbar(ax, x, g, col: str, label: str | None, fmt: str = "o-", value: str = "mean") -> None:
    v = g[value].to_numpy(float)
    ax.errorbar(x, v, yerr=[v - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - v], fmt=fmt, ms=4,
                capsize=3, lw=1.4, elinewidth=1, color=col, label=label)


def scores_figure(summ, study: str, metrics: Sequence[str] = tuple(METRIC_LABELS), xlabel: str = ""):
    """Seed mean and 95% CI per arm over the sweep's levels (the base critic, level 0, in grey and
    drawn once); one panel per metric, shared axes."""
    plt = _style()
    d = summ[summ["study"] == study]
    xs = sorted(d["x"].unique())
    pos = {x: i for i, x in enumerate(xs)}
    arms = _arm_order(d["arm"])
    ncol = min(3, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.7 * ncol, 2.9 * nrow + 0.4), squeeze=False, sharey=True, sharex=True)
    for ax, m in zip(axes.flat, metrics):
        g = d[d["metric"] == m]
        for j, arm in enumerate(arms):
            ga = g[g["arm"] == arm].sort_values("x")
            off = (j - (len(arms) - 1) / 2) * 0.08
            xp = np.array([pos[x] for x in ga["x"]], float) + np.where(ga["x"].to_numpy() == 0, 0.0, off)
            ax.plot(xp, ga["mean"], "-", lw=1.4, color=color(arm))
            trained = ga["x"].to_numpy() != 0
            _errorbar(ax, xp[trained], ga[trained], color(arm), arm_label(arm), fmt="o")
            if j == 0 and (~trained).any():
                _errorbar(ax, xp[~trained], ga[~trained], COLORS["base"], LABELS["base"], fmt="s")
        ax.set_title(METRIC_LABELS.get(m, m))
        ax.set_xticks(range(len(xs)), [_tick(study, x) for x in xs])
        ax.set_ylim(-2, 102)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel("score (seed mean, 95% CI)")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    _legend(fig, axes)
    return _finish(fig)


def _tick(study: str, x: float) -> str:
    if study == "model_size":
        return f"{x / 1e6:.2f}M"
    return "base" if x == 0 else f"{x:g}"


# --- gains over the base, with the paper's --------------------------------------------------------------------
def _frac(n: int) -> np.ndarray:
    return np.linspace(0, 1, n) if n > 1 else np.zeros(n)


def _paper_data_gain(i: int) -> tuple[np.ndarray, np.ndarray]:

    y = np.asarray(PAPER["data_cc" if i == 0 else "data_ei"])
    return _frac(len(y)), y - y[0]


def _gain_panel(ax, g, arms: Sequence[str], xfrac: dict, offsets: float = 0.015) -> None:
    for j, arm in enumerate(arms):
        ga = g[g["arm"] == arm].sort_values("x")
        if ga.empty:
            continue
        xp = np.array([xfrac[x] for x in ga["x"]]) + (j - (len(arms) - 1) / 2) * offsets
        ax.errorbar(xp, ga["delta"], yerr=[ga["delta"] - ga["ci_low"], ga["ci_high"] - ga["delta"]], fmt="o-", ms=4,
                    capsize=3, color=color(arm), label=arm_label(arm) if ":" not in arm else LABELS["contrastive"])
    ax.axhline(0, color=COLORS["base"], lw=1, ls=":")


def gain_figure(gains, metrics: Sequence[str] = KEY):
    """Gain over the base critic (paired difference, 95% CI) per data size (row 1) and per model
    size (row 2), with the paper's gains; every panel in points, one shared y axis."""

    plt = _style()
    fig, axes = plt.subplots(2, len(metrics), figsize=(4.6 * len(metrics), 6.6), squeeze=False, sharey=True)
    fig.suptitle("SCRIT's gain over the base critic (paired over items and seeds)", fontsize=11)
    ds = gains[gains["study"] == "data_size"]
    dx = sorted({0.0, *ds["x"].unique()})
    for c, m in enumerate(metrics):
        ax = axes[0, c]
        g = ds[ds["metric"] == m]
        _gain_panel(ax, g, [a for a in arm_order() if a in set(g["arm"])],
                    dict(zip(dx, _frac(len(dx)))))
        ax.plot([0.0], [0.0], "s", ms=5, color=COLORS["base"], label=LABELS["base"])
        px, py = _paper_data_gain(0 if m.startswith("cc") else 1)
        ax.plot(px, py, "--s", ms=3, color=COLORS["paper"], label="paper (72B, 0-170K examples)")
        ax.set_xticks(_frac(len(dx)), ["base" if x == 0 else f"{x:g}" for x in dx])
        ax.set_title(f"vs data size: {METRIC_LABELS.get(m, m)}")
        ax.set_xlabel("self-training examples\n(paper's 0, 10K ... 170K spread over the same axis)", fontsize=8)
        ax = axes[1, c]
        g = gains[(gains["study"] == "model_size") & (gains["metric"] == m)].assign(arm="contrastive")
        xs = sorted(g["x"].unique())
        lx = np.log2(xs) if xs else np.array([])
        frac = dict(zip(xs, (lx - lx.min()) / (lx.max() - lx.min()) if len(xs) > 1 else np.zeros(len(xs))))
        _gain_panel(ax, g, ["contrastive"], frac, offsets=0.0)
        i = 0 if m.startswith("cc") else 1
        ax.plot([1.0], [PAPER["scrit_170k"][i] - PAPER["base"][i]], "D", ms=7, color=COLORS["paper"],
                label="paper: 72B gain (base known only at 72B)")
        ax.set_xticks([frac[x] for x in xs], [f"{x / 1e6:.2f}M" for x in xs])
        ax.set_title(f"vs model size: {METRIC_LABELS.get(m, m)}")
        ax.set_xlabel("base-model parameters (log scale)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("trained minus base (points, 95% CI)")
    _legend(fig, axes)
    return _finish(fig, 1.6)


def shape_figure(summ, study: str, metrics: Sequence[str] = KEY):
    """Model size or rounds: our scores with the paper's curve shifted to start at our first
    trained point (so the shapes compare), on a shared normalised x axis."""

    plt = _style()
    d = summ[summ["study"] == study]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 3.4), squeeze=False, sharey=True)
    for ax, m in zip(axes.flat, metrics):
        i = 0 if m.startswith("cc") else 1
        g = d[d["metric"] == m]
        for arm, ga in g.groupby(g["arm"].str.split(":").str[0] if study == "model_size" else g["arm"]):
            ga = ga.sort_values("x")
            xs = np.log2(ga["x"].to_numpy()) if study == "model_size" else ga["x"].to_numpy(float)
            kind = "base" if arm == "base" else "contrastive"
            if study == "rounds":  # round 0 is the base critic
                ax.plot(xs, ga["mean"], "-", lw=1.4, color=COLORS[kind])
                b = ga["x"].to_numpy() == 0
                _errorbar(ax, xs[b], ga[b], COLORS["base"], LABELS["base"], fmt="s")
                _errorbar(ax, xs[~b], ga[~b], COLORS[kind], LABELS["scrit"], fmt="o")
                ax.set_xticks(range(0, int(max(xs.max(), 3)) + 1))
            else:
                _errorbar(ax, xs, ga, COLORS[kind], LABELS[kind])
        trained = g[g["arm"].str.startswith("scrit")].sort_values("x") if study == "model_size" else g[g["x"] >= 1]
        if not trained.empty:
            if study == "model_size":
                lx = np.log2(trained["x"].to_numpy())
                py = np.asarray([v[i] for v in PAPER["model_sizes"].values()])
                pl = np.log2(PAPER["model_params"])
                px = lx.min() + (pl - pl.min()) / (pl.max() - pl.min()) * (lx.max() - lx.min() or 1.0)
                ax.set_xticks(lx, [f"{x / 1e6:.2f}M" for x in trained["x"]])
            else:
                py = np.asarray(PAPER["rounds"]["cc" if i == 0 else "ei"])
                px = np.arange(1, len(py) + 1, dtype=float)
            ax.plot(px, py - py[0] + float(trained["mean"].iloc[0]), "--s", ms=3, color=COLORS["paper"],
                    label="paper, shifted to our first SCRIT point")
        ax.set_title(METRIC_LABELS.get(m, m))
        ax.set_xlabel("base-model parameters (log; paper's 1.5B-72B mapped onto it)" if study == "model_size"
                      else "round (0 = base critic)", fontsize=8)
    axes[0, 0].set_ylabel("score (seed mean, 95% CI)")
    _legend(fig, axes)
    return _finish(fig)


# --- ablations, notebook 04, training loss ---------------------------------------------------------------------
def ablation_figure(gains, metrics: Sequence[str] = KEY):
    """Each variant minus the SCRIT baseline (paired 95% CI) with the paper's difference (diamond)."""

    plt = _style()
    g = gains[gains["study"] == "ablation"]
    arms = sorted(g["arm"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 0.42 * max(4, len(arms)) + 1.6),
                             squeeze=False, sharey=True, sharex=True)
    for ax, m in zip(axes.flat, metrics):
        i = 0 if m.startswith("cc") else 1
        gm = g[g["metric"] == m].set_index("arm")
        for y, arm in enumerate(arms):
            if arm in gm.index:
                r = gm.loc[arm]
                ax.errorbar([r["delta"]], [y], xerr=[[r["delta"] - r["ci_low"]], [r["ci_high"] - r["delta"]]], fmt="o",
                            capsize=3, color=COLORS["contrastive"], label="ours (paired 95% CI)")
            p = PAPER["ablations"].get(arm.split("(")[0])
            if p is not None:
                ax.plot([p[i] - PAPER["ablation_baseline"][i]], [y], "D", color=COLORS["paper"], ms=5,
                        label="paper (10K examples)")
        ax.axvline(0, color=COLORS["base"], lw=1, ls=":")
        ax.set_yticks(range(len(arms)), arms)
        ax.invert_yaxis()
        ax.set_title(METRIC_LABELS.get(m, m))
        ax.set_xlabel("variant minus SCRIT baseline (points)")
    _legend(fig, axes)
    return _finish(fig)


def base_vs_trained_figure(scores, diffs, metrics: Sequence[str] = tuple(METRIC_LABELS)):
    """Notebook 04: base and trained critic per metric (95% CI), and their paired difference with the paper's."""

    plt = _style()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1.4, 1]}, sharey=True)
    y = np.arange(len(metrics))
    for off, who in ((-0.18, "base"), (0.18, "trained")):
        s = scores[scores["critic"] == who].set_index("metric").reindex(list(metrics))
        a1.errorbar(s["mean"], y + off, xerr=[s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]], fmt="o", capsize=3,
                    color=COLORS["base" if who == "base" else "contrastive"],
                    label=LABELS["base"] if who == "base" else "SCRIT (trained in 04)")
    a1.set_yticks(y, [METRIC_LABELS[m] for m in metrics])
    a1.invert_yaxis()
    a1.set_xlim(-2, 102)
    a1.set_xlabel("score (95% CI over items)")
    d = diffs.set_index("metric").reindex(list(metrics))
    a2.errorbar(d["delta"], y, xerr=[d["delta"] - d["ci_low"], d["ci_high"] - d["delta"]], fmt="o", capsize=3,
                color=COLORS["contrastive"], label="trained minus base (paired)")
    a2.plot([_scrit_paper(m) for m in metrics], y, "D", color=COLORS["paper"], ms=5, label="paper: +SCRIT minus base (72B)")
    a2.axvline(0, color=COLORS["base"], lw=1, ls=":")
    a2.set_xlabel("trained minus base (points, paired 95% CI)")
    _legend(fig, np.array([a1, a2]))
    return _finish(fig)


def loss_figure(curves: dict[str, Sequence[Sequence[float]]], title: str = "Self-training loss"):
    """Loss per logged optimizer step, one line per run (label -> [[step, loss], ...]), with a
    rolling mean when there are many points; None when no run logged more than one point."""
    curves = {k: np.asarray(v, float) for k, v in curves.items() if len(v) > 1}
    if not curves:
        return None
    plt = _style()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    cmap = plt.get_cmap("Blues")
    for j, (lab, c) in enumerate(curves.items()):
        col = COLORS["contrastive"] if len(curves) == 1 else cmap(0.4 + 0.6 * j / max(1, len(curves) - 1))
        ax.plot(c[:, 0], c[:, 1], "o", ms=2.5, alpha=0.45, color=col)
        w = max(1, len(c) // 10)
        smooth = np.convolve(c[:, 1], np.ones(w) / w, mode="valid")
        ax.plot(c[w - 1:, 0], smooth, "-", color=col, label=f"{lab}" + (f" ({w}-step mean)" if w > 1 else ""))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss on critique tokens")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
