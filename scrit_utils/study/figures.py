"""Study figures (notebooks 04-06): one colour per critic type, human metric names, paper overlays.

Conventions shared by every figure here:

- colours (:data:`COLORS`): base critic grey, SCRIT (contrastive) blue, direct critic orange,
  bug-injection critic red, the paper black (dashed); ablation variants are SCRIT variants (blue);
- metric names and units from :data:`METRIC_LABELS` (CC-Acc in %, EI-F1 x100);
- panels that are compared share their axes;
- sweep axes are numeric and log-scaled (examples, parameters); the base critic sits left of the first
  level, labelled "base";
- the paper's numbers are drawn only in panels of their own, on their own axes: never mapped onto the
  toy axes or shifted onto our points (toy points are not paper points).

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
from scrit_utils.study.paper import PAPER, _scrit_paper, reports as paper_reports
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


# --- gains over the base; the paper's numbers in their own panels -------------------------------------------
def _log_axis(ax, xs: Sequence[float], fmt) -> dict:
    """Numeric log2 x axis over the trained levels; level 0 (the base critic) sits one step left of the
    smallest level, labelled "base". Returns {level: x position}."""
    pos_levels = sorted(x for x in xs if x > 0)
    lo = pos_levels[0] / 2 if pos_levels else 1.0
    pos = {x: (x if x > 0 else lo) for x in xs}
    ax.set_xscale("log", base=2)
    ticks = sorted(set(pos.values()))
    ax.set_xticks(ticks, ["base" if t == lo and 0 in pos else fmt(t) for t in ticks])
    ax.minorticks_off()
    return pos


def _gain_panel(ax, g, arms: Sequence[str], pos: dict, spread: float = 0.04) -> None:
    for j, arm in enumerate(arms):
        ga = g[g["arm"] == arm].sort_values("x")
        if ga.empty:
            continue
        # a small multiplicative offset per arm so overlapping intervals stay readable on a log axis
        xp = np.array([pos[x] for x in ga["x"]]) * 2 ** ((j - (len(arms) - 1) / 2) * spread)
        ax.errorbar(xp, ga["delta"], yerr=[ga["delta"] - ga["ci_low"], ga["ci_high"] - ga["delta"]], fmt="o-", ms=4,
                    capsize=3, color=color(arm), label=arm_label(arm) if ":" not in arm else LABELS["contrastive"])
    ax.axhline(0, color=COLORS["base"], lw=1, ls=":")


def _paper_panel(ax, metric: str) -> None:
    """The paper's own gains (72B critic, its own axis: 10K-170K examples), never drawn on ours."""
    i = 0 if metric.startswith("cc") else 1
    y = np.asarray(PAPER["data_cc" if i == 0 else "data_ei"])
    x = np.asarray(PAPER["data_sizes"], float)
    ax.plot(x[1:], y[1:] - y[0], "--s", ms=3, color=COLORS["paper"], label="paper: 72B, gain over its base")
    ax.set_xscale("log", base=10)
    ax.axhline(0, color=COLORS["base"], lw=1, ls=":")
    ax.set_title(f"paper (its own axis): {METRIC_LABELS.get(metric, metric)}", fontsize=9)
    ax.set_xlabel("self-training examples (paper, log)", fontsize=8)


def gain_figure(gains, metrics: Sequence[str] = KEY):
    """Gain over the base critic (paired difference, 95% CI) per data size (row 1, log2 axis of examples)
    and per model size (row 2, log2 axis of parameters); the paper's gains in a panel of their own."""

    plt = _style()
    fig, axes = plt.subplots(2, len(metrics) + 1, figsize=(4.2 * (len(metrics) + 1), 6.6), squeeze=False)
    fig.suptitle("SCRIT's gain over the base critic (paired over items and seeds)", fontsize=11)
    ds = gains[gains["study"] == "data_size"]
    dx = sorted({0.0, *ds["x"].unique()})
    for c, m in enumerate(metrics):
        ax = axes[0, c]
        g = ds[ds["metric"] == m]
        pos = _log_axis(ax, dx, lambda t: f"{t:g}")
        _gain_panel(ax, g, [a for a in arm_order() if a in set(g["arm"])], pos)
        ax.plot([pos[0.0]], [0.0], "s", ms=5, color=COLORS["base"], label=LABELS["base"])
        ax.set_title(f"vs data size: {METRIC_LABELS.get(m, m)}")
        ax.set_xlabel("self-training examples (log2)", fontsize=8)
        ax = axes[1, c]
        g = gains[(gains["study"] == "model_size") & (gains["metric"] == m)].assign(arm="contrastive")
        xs = sorted(g["x"].unique())
        _gain_panel(ax, g, ["contrastive"], _log_axis(ax, xs, lambda t: f"{t / 1e6:.2f}M"), spread=0.0)
        ax.set_title(f"vs model size: {METRIC_LABELS.get(m, m)}")
        ax.set_xlabel("base-model parameters (log2)", fontsize=8)
    for r in range(2):
        axes[r, 0].set_ylabel("trained minus base (points, 95% CI)")
    _paper_panel(axes[0, -1], "cc_mean")
    ax = axes[1, -1]
    labels = [f"{k}" for k in PAPER["model_sizes"]]
    cc = [v[0] for v in PAPER["model_sizes"].values()]
    ei = [v[1] for v in PAPER["model_sizes"].values()]
    ax.plot(PAPER["model_params"], cc, "--s", ms=3, color=COLORS["paper"], label="paper: SCRIT CC-Acc (levels)")
    ax.plot(PAPER["model_params"], ei, ":s", ms=3, color=COLORS["paper"], label="paper: SCRIT EI-F1 (levels)")
    ax.set_xscale("log", base=10)
    ax.set_xticks(PAPER["model_params"], labels)
    ax.minorticks_off()
    ax.set_title("paper (its own axis): post-SCRIT levels by size;\nits base is known only at 72B", fontsize=9)
    ax.set_xlabel("paper critic parameters (log)", fontsize=8)
    _legend(fig, axes)
    return _finish(fig, 1.6)


def shape_figure(summ, study: str, metrics: Sequence[str] = KEY):
    """Model size (log2 parameters) or rounds: our scores per level; the paper's curve in a panel of its
    own (never shifted onto our points)."""

    plt = _style()
    d = summ[summ["study"] == study]
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.1 * (len(metrics) + 1), 3.4), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        g = d[d["metric"] == m]
        for arm, ga in g.groupby(g["arm"].str.split(":").str[0] if study == "model_size" else g["arm"]):
            ga = ga.sort_values("x")
            xs = ga["x"].to_numpy(float)
            kind = "base" if arm == "base" else "contrastive"
            if study == "rounds":  # round 0 is the base critic
                ax.plot(xs, ga["mean"], "-", lw=1.4, color=COLORS[kind])
                b = ga["x"].to_numpy() == 0
                _errorbar(ax, xs[b], ga[b], COLORS["base"], LABELS["base"], fmt="s")
                _errorbar(ax, xs[~b], ga[~b], COLORS[kind], LABELS["scrit"], fmt="o")
                ax.set_xticks(range(0, int(max(xs.max(), 3)) + 1))
            else:
                _errorbar(ax, xs, ga, COLORS[kind], LABELS[kind])
        if study == "model_size" and not g.empty:
            xs = sorted(g["x"].unique())
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [f"{x / 1e6:.2f}M" for x in xs])
            ax.minorticks_off()
        ax.set_title(METRIC_LABELS.get(m, m))
        ax.set_xlabel("base-model parameters (log2)" if study == "model_size" else "round (0 = base critic)", fontsize=8)
    axes[0, 0].set_ylabel("score (seed mean, 95% CI)")
    ax = axes[0, -1]
    if study == "model_size":
        for i, (name, ls) in enumerate((("CC-Acc", "--s"), ("EI-F1", ":s"))):
            ax.plot(PAPER["model_params"], [v[i] for v in PAPER["model_sizes"].values()], ls, ms=3,
                    color=COLORS["paper"], label=f"paper: SCRIT {name}")
        ax.set_xscale("log", base=10)
        ax.set_xticks(PAPER["model_params"], list(PAPER["model_sizes"]))
        ax.minorticks_off()
        ax.set_xlabel("paper critic parameters (log)", fontsize=8)
    else:
        for key, name, ls in (("cc", "CC-Acc", "--s"), ("ei", "EI-F1", ":s")):
            y = PAPER["rounds"][key]
            ax.plot(range(1, len(y) + 1), y, ls, ms=3, color=COLORS["paper"], label=f"paper: {name}")
        ax.set_xticks(range(1, len(PAPER["rounds"]["cc"]) + 1))
        ax.set_xlabel("paper round", fontsize=8)
    ax.set_title("paper (its own axis and scale)", fontsize=9)
    _legend(fig, axes)
    return _finish(fig)


# --- ablations, notebook 04, training loss ---------------------------------------------------------------------
def ablation_figure(gains, metrics: Sequence[str] = KEY):
    """Each variant minus the SCRIT baseline (paired 95% CI); the paper's differences (10K examples, 72B)
    in a panel of their own."""

    plt = _style()
    g = gains[gains["study"] == "ablation"]
    arms = sorted(g["arm"].unique())
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.0 * (len(metrics) + 1), 0.42 * max(4, len(arms)) + 1.6),
                             squeeze=False, sharey=True)
    for ax, m in zip(axes.flat, metrics):
        gm = g[g["metric"] == m].set_index("arm")
        for y, arm in enumerate(arms):
            if arm in gm.index:
                r = gm.loc[arm]
                ax.errorbar([r["delta"]], [y], xerr=[[r["delta"] - r["ci_low"]], [r["ci_high"] - r["delta"]]], fmt="o",
                            capsize=3, color=COLORS["contrastive"], label="ours (paired 95% CI)")
        ax.axvline(0, color=COLORS["base"], lw=1, ls=":")
        ax.set_title(METRIC_LABELS.get(m, m))
        ax.set_xlabel("variant minus SCRIT baseline (points)")
    ax = axes[0, -1]
    for y, arm in enumerate(arms):
        p = PAPER["ablations"].get(arm.split("(")[0])
        if p is not None:
            for i, mk in enumerate(("D", "s")):
                ax.plot([p[i] - PAPER["ablation_baseline"][i]], [y], mk, color=COLORS["paper"], ms=5,
                        label=f"paper, {'CC-Acc' if i == 0 else 'EI-F1'}")
    ax.axvline(0, color=COLORS["base"], lw=1, ls=":")
    ax.set_title("paper (72B, 10K examples)", fontsize=9)
    ax.set_xlabel("variant minus baseline (paper's points)")
    axes[0, 0].set_yticks(range(len(arms)), arms)
    axes[0, 0].invert_yaxis()
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
    given = [i for i, m in enumerate(metrics) if paper_reports(m)]  # no marker where the paper gives no number
    a2.plot([_scrit_paper(metrics[i]) for i in given], y[given], "D", color=COLORS["paper"], ms=5,
            label="paper: +SCRIT minus base (72B)")
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
