"""The study's figures draw from the claims frames with numeric log-scaled sweep axes, and the paper's
numbers only in panels of their own (never on the toy axes)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from scrit_utils.study import figures  # noqa: E402

SIZES = [0.0, 64.0, 128.0, 256.0]
PARAMS = [66e3, 150e3, 409e3]


def _gains() -> pd.DataFrame:
    rows = []
    for m in figures.KEY:
        for arm in ("contrastive", "direct"):
            for x in SIZES[1:]:
                rows.append(dict(study="data_size", arm=arm, x=x, metric=m, delta=x / 50, ci_low=x / 50 - 2, ci_high=x / 50 + 2))
        for x in PARAMS:
            rows.append(dict(study="model_size", arm=f"scrit:models/{x:g}", x=x, metric=m, delta=3.0, ci_low=1.0, ci_high=5.0))
        for arm in ("no_validation", "easier_first"):
            rows.append(dict(study="ablation", arm=arm, x=512.0, metric=m, delta=-1.0, ci_low=-3.0, ci_high=1.0))
    return pd.DataFrame(rows)


def _summary() -> pd.DataFrame:
    rows = []
    for m in figures.KEY:
        for x in PARAMS:
            for arm in (f"base:{x:g}", f"scrit:{x:g}"):
                rows.append(dict(study="model_size", arm=arm, x=x, metric=m, mean=40.0, ci_low=38.0, ci_high=42.0))
        for r in (0, 1, 2):
            rows.append(dict(study="rounds", arm="base" if r == 0 else "contrastive", x=float(r), metric=m,
                             mean=40.0 + r, ci_low=38.0 + r, ci_high=42.0 + r))
    return pd.DataFrame(rows)


def test_gain_figure_log_axes_and_a_separate_paper_panel():
    fig = figures.gain_figure(_gains())
    axes = fig.axes
    ours, paper = axes[0], axes[len(figures.KEY)]
    assert ours.get_xscale() == "log" and "base" in [t.get_text() for t in ours.get_xticklabels()]
    assert all("paper" not in (ln.get_label() or "") for ln in ours.get_lines())  # nothing of the paper on our axes
    assert any("paper" in (ln.get_label() or "") for ln in paper.get_lines()) and "paper" in paper.get_title()
    assert [t.get_text() for t in ours.get_xticklabels()] == ["base", "64", "128", "256"]


def test_shape_and_ablation_figures_keep_the_paper_apart():
    for fig in (figures.shape_figure(_summary(), "model_size"), figures.shape_figure(_summary(), "rounds"),
                figures.ablation_figure(_gains())):
        *ours, paper = [ax for ax in fig.axes if ax.get_visible()][: len(figures.KEY) + 1]
        assert all("paper" not in (ln.get_label() or "") for ax in ours for ln in ax.get_lines())
        assert "paper" in paper.get_title()
    assert figures.shape_figure(_summary(), "model_size").axes[0].get_xscale() == "log"
