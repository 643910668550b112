"""Study tables, figures, the findings-vs-paper README and the timing report (notebooks 05 / 06).

Input: the point rows of :mod:`scrit_utils.pipeline.sweeps` (one row per study point and SFT
seed, with ``metrics = {metric: {value, ci_low, ci_high}}``). Everything here is computed from
those rows; the only fixed numbers are the paper's, copied from docs/SCRIT_METHOD.md into
:data:`PAPER` so the comparison can be laid side by side.

- :func:`summarize` -> one row per (study, arm, x, metric): seed mean and the pooled 95% CI of
  :func:`scrit_utils.study_stats.pooled_ci` (training + evaluation noise);
- :func:`trends` -> Spearman rho (+ p) of each metric over the sweep variable, per arm;
- :func:`comparisons` -> the paper's claims next to ours, each with a computed verdict
  (:func:`verdict`): *reproduced* when our effect has the paper's sign and its CI (or the trend's
  p < 0.05) excludes zero, *not reproduced* otherwise (no clear effect / opposite sign);
- :func:`write_readme` / :func:`write_timing` -> ``results/README.md`` and ``results/timing.md``.

Usage::

    from scrit_utils import study_report as rep
    summ = rep.summarize(rows)                     # DataFrame
    comp = rep.comparisons(scaling_rows, ablation_rows)
    rep.write_readme(cfg, comp, summ, trends_df)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from . import config as _config
from .records import atomic_write_text
from .study_stats import difference, pooled_ci, trend

#: the paper's numbers (SCRIT_METHOD.md, "Reported results"): (CC-Acc mean, EI-F1 strict)
PAPER = {
    "base": (53.0, 37.8),
    "scrit_170k": (58.3, 45.1),
    "direct_plateau": (55.1, 38.7),
    "bug_injection": (49.0, None),
    "data_sizes": [0, 10_000, 20_000, 40_000, 80_000, 170_000],
    "data_cc": [53.0, 56.8, 57.3, 57.5, 57.6, 58.3],
    "data_ei": [37.8, 40.2, 42.0, 43.2, 43.6, 45.1],
    "model_sizes": {"1.5B": (41.7, 12.5), "7B": (51.2, 29.9), "72B": (58.3, 45.1)},
    "rounds": {"cc": [58.3, 58.9, 59.1], "ei": [45.1, 46.7, 47.5]},
    "scenarios_base": {"cc_acc_wrong": 39.7, "cc_acc_mix": 57.7, "cc_acc_own": 61.7, "ei_f1_strict": 37.8},
    "scenarios_scrit": {"cc_acc_wrong": 50.0, "cc_acc_mix": 62.1, "cc_acc_own": 62.9, "ei_f1_strict": 45.0},
    "ablation_baseline": (56.8, 40.2),
    # ablation -> (CC-Acc, EI-F1) at 10K examples; single generator: midpoint of the reported range
    "ablations": {
        "no_validation": (56.0, 37.2),
        "easiest_family": (55.4, 38.8),
        "harder_first": (55.8, 38.1),
        "easier_first": (56.2, 42.3),
        "single_generator": (56.2, 40.05),
        "ratio_0.75": (55.1, 38.1),
        "ratio_0.25": (56.6, 41.0),
    },
}
NEGLIGIBLE = 0.5  # |paper effect| below this many points counts as "no effect" in the paper


# --- aggregation -------------------------------------------------------------------------------------
def long_rows(rows: Sequence[dict]) -> list[dict]:
    out = []
    for r in rows:
        for m, v in (r.get("metrics") or {}).items():
            out.append({"study": r["study"], "arm": r["arm"], "x": r["x"], "seed": r["seed"], "metric": m,
                        "value": v["value"], "ci_low": v["ci_low"], "ci_high": v["ci_high"],
                        "n_examples": r.get("n_examples", 0), "note": r.get("note", "")})
    return out


def summarize(rows: Sequence[dict]):
    """Seed mean and pooled CI per (study, arm, x, metric)."""
    import pandas as pd

    df = pd.DataFrame(long_rows(rows))
    cols = ["study", "arm", "x", "metric", "mean", "ci_low", "ci_high", "se_seed", "se_item", "n_seeds",
            "n_examples", "note"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (study, arm, x, metric), g in df.groupby(["study", "arm", "x", "metric"], sort=True):
        p = pooled_ci(g["value"].tolist(), list(zip(g["ci_low"], g["ci_high"])))
        out.append({"study": study, "arm": arm, "x": x, "metric": metric, **p,
                    "n_examples": int(g["n_examples"].max()), "note": "; ".join(sorted(set(filter(None, g["note"]))))})
    res = pd.DataFrame(out)
    res["mean"] = res.pop("mean")
    return res[cols]


def trends(rows: Sequence[dict], study: str, x_name: str = "x"):
    """Spearman rho of every metric over ``x`` per arm of one study (each seed one observation)."""
    import pandas as pd

    df = pd.DataFrame(long_rows([r for r in rows if r["study"] == study]))
    out = []
    if not df.empty:
        for (arm, metric), g in df.groupby(["arm", "metric"]):
            t = trend(g["x"].tolist(), g["value"].tolist())
            out.append({"study": study, "arm": arm, "metric": metric, "spearman_rho": t["rho"], "p_value": t["p"],
                        "n_obs": t["n"]})
    return pd.DataFrame(out, columns=["study", "arm", "metric", "spearman_rho", "p_value", "n_obs"])


def _cell(summ, study: str, arm: str, x, metric: str) -> dict | None:
    g = summ[(summ["study"] == study) & (summ["arm"] == arm) & (summ["metric"] == metric)]
    if x is not None:
        g = g[g["x"] == x]
    if g.empty or math.isnan(float(g.iloc[0]["mean"])):
        return None
    return g.iloc[0].to_dict()


# --- verdicts ----------------------------------------------------------------------------------------------
def direction(delta: float, lo: float | None = None, hi: float | None = None, p: float | None = None,
              threshold: float = 0.0) -> int:
    """+1 / -1 when the effect is clearly positive / negative (CI excludes 0, or p < 0.05), else 0."""
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return 0
    if p is not None:
        return 0 if (math.isnan(p) or p >= 0.05) else (1 if delta > 0 else -1)
    if lo is not None and lo > threshold:
        return 1
    if hi is not None and hi < -threshold:
        return -1
    return 0


def paper_direction(delta: float) -> int:
    return 0 if abs(delta) < NEGLIGIBLE else (1 if delta > 0 else -1)


def verdict(paper_delta: float, ours_dir: int, ours_delta: float) -> str:
    """Reproduced / not reproduced, from the paper's effect and ours (see module doc)."""
    pdir = paper_direction(paper_delta)
    if ours_delta is None or (isinstance(ours_delta, float) and math.isnan(ours_delta)):
        return "not measured"
    if pdir == 0:
        return "reproduced (no clear effect in either)" if ours_dir == 0 else "not reproduced (we see a clear effect)"
    if ours_dir == pdir:
        return "reproduced"
    if ours_dir == 0:
        if ours_delta == 0:
            return "not reproduced (no effect)"
        same = (ours_delta > 0) == (pdir > 0)
        return "not reproduced (no clear effect; point estimate " + ("same sign)" if same else "opposite sign)")
    return "not reproduced (clear opposite effect)"


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1f}"


def _cmp_row(claim: str, metric: str, paper_delta: float, ours: dict | None, detail: str) -> dict:
    if ours is None:
        return {"claim": claim, "metric": metric, "paper_effect": _fmt(paper_delta), "our_effect": "n/a",
                "our_95ci_or_p": "", "verdict": "not measured", "detail": detail}
    if "p" in ours:
        d = direction(ours["delta"], p=ours["p"])
        ci = f"rho={ours['delta']:+.2f}, p={ours['p']:.3g}" if not math.isnan(ours["p"]) else "rho undefined"
        eff = f"rho {ours['delta']:+.2f}" if not math.isnan(ours["delta"]) else "n/a"
    else:
        d = direction(ours["delta"], ours["ci_low"], ours["ci_high"])
        ci = f"[{ours['ci_low']:+.1f}, {ours['ci_high']:+.1f}]"
        eff = _fmt(ours["delta"])
    return {"claim": claim, "metric": metric, "paper_effect": _fmt(paper_delta) if "p" not in ours else
            ("increasing" if paper_delta > 0 else "decreasing" if paper_delta < 0 else "flat"),
            "our_effect": eff, "our_95ci_or_p": ci, "verdict": verdict(paper_delta, d, ours["delta"]), "detail": detail}


def _delta(summ, a: tuple, b: tuple, metric: str) -> dict | None:
    ca, cb = _cell(summ, *a, metric), _cell(summ, *b, metric)
    if ca is None or cb is None:
        return None
    return difference(ca, cb)


def comparisons(rows: Sequence[dict]):
    """The paper's claims (direction + size) next to ours, each with a computed verdict."""
    import pandas as pd

    summ = summarize(rows)
    out = []
    ds = summ[summ["study"] == "data_size"]
    xmax = float(ds[ds["arm"] == "contrastive"]["x"].max()) if not ds.empty else None
    pairs = [("cc_mean", 0), ("ei_f1_strict", 1)]
    # 1. SCRIT vs base (largest data size), each scenario
    for m in ("cc_mean", "cc_acc_wrong", "cc_acc_mix", "cc_acc_own", "ei_f1_strict", "ei_f1_original"):
        if m == "cc_mean":
            pd_ = PAPER["scrit_170k"][0] - PAPER["base"][0]
        elif m in PAPER["scenarios_scrit"]:
            pd_ = PAPER["scenarios_scrit"][m] - PAPER["scenarios_base"][m]
        else:
            pd_ = PAPER["scrit_170k"][1] - PAPER["base"][1]  # paper reports strict only; same direction expected
        dd = _delta(summ, ("data_size", "contrastive", xmax), ("data_size", "contrastive", 0.0), m) if xmax else None
        out.append(_cmp_row("SCRIT beats the base critic", m, pd_, dd, f"largest data size ({xmax:g}) vs 0" if xmax else ""))
    # 2. data-size trend (contrastive)
    tr = trends(rows, "data_size")
    for m, i in pairs:
        t = tr[(tr["arm"] == "contrastive") & (tr["metric"] == m)]
        ours = None if t.empty else {"delta": float(t.iloc[0]["spearman_rho"]), "p": float(t.iloc[0]["p_value"])}
        paper = PAPER["data_cc" if i == 0 else "data_ei"]
        out.append(_cmp_row("more SCRIT data helps (trend over data sizes)", m, paper[-1] - paper[0], ours,
                            "Spearman rho over data sizes x seeds"))
    # 3. baselines at the largest size
    for m, i in pairs:
        dd = _delta(summ, ("data_size", "contrastive", xmax), ("data_size", "direct", xmax), m) if xmax else None
        out.append(_cmp_row("contrastive critic beats the direct critic", m,
                            PAPER["scrit_170k"][i] - PAPER["direct_plateau"][i], dd, f"at {xmax:g} examples" if xmax else ""))
    dd = _delta(summ, ("data_size", "bug_injection", xmax), ("data_size", "bug_injection", 0.0), "cc_mean") if xmax else None
    out.append(_cmp_row("bug-injection critic declines below the base", "cc_mean",
                        PAPER["bug_injection"][0] - PAPER["base"][0], dd, f"bug injection at {xmax:g} vs base"))
    # 4. model size: SCRIT's score grows with model size
    trm = trends([r for r in rows if r["study"] == "model_size" and r["arm"].startswith("scrit:")], "model_size")
    for m, i in pairs:
        t = trm[trm["metric"] == m]
        ours = None
        if not t.empty:
            # pool the per-model arms into one trend over parameter count
            sub = [r for r in rows if r["study"] == "model_size" and r["arm"].startswith("scrit:")]
            tt = trend([r["x"] for r in sub if m in r["metrics"]], [r["metrics"][m]["value"] for r in sub if m in r["metrics"]])
            ours = {"delta": tt["rho"], "p": tt["p"]}
        sizes = list(PAPER["model_sizes"].values())
        out.append(_cmp_row("larger base models reach higher scores after SCRIT", m, sizes[-1][i] - sizes[0][i], ours,
                            "Spearman rho over parameter count x seeds"))
    # 5. rounds
    trr = trends(rows, "rounds")
    for m, i in pairs:
        sub = [r for r in rows if r["study"] == "rounds" and r["x"] >= 1 and m in r.get("metrics", {})]
        ours = None
        if sub:
            tt = trend([r["x"] for r in sub], [r["metrics"][m]["value"] for r in sub])
            ours = {"delta": tt["rho"], "p": tt["p"]}
        pr = PAPER["rounds"]["cc" if i == 0 else "ei"]
        out.append(_cmp_row("more rounds help (rounds 1..3)", m, pr[-1] - pr[0], ours, "Spearman rho over rounds 1..R x seeds"))
    del trr
    # 6. ablations vs baseline
    ab = summ[summ["study"] == "ablation"]
    for name, (pcc, pei) in PAPER["ablations"].items():
        arms = sorted(a for a in ab["arm"].unique() if a == name or a.startswith(name + "("))
        for arm in arms or [name]:
            for m, i in pairs:
                pdelta = (pcc if i == 0 else pei) - PAPER["ablation_baseline"][i]
                dd = _delta(summ, ("ablation", arm, None), ("ablation", "baseline", None), m) if arms else None
                out.append(_cmp_row(f"ablation: {arm}", m, pdelta, dd, "vs SCRIT baseline at the same data size"))
    return pd.DataFrame(out, columns=["claim", "metric", "paper_effect", "our_effect", "our_95ci_or_p", "verdict", "detail"])


# --- files -------------------------------------------------------------------------------------------------
def markdown(df, floatfmt: str = ".2f") -> str:
    from .pipeline.common import _markdown

    return _markdown(df, floatfmt)


def write_readme(cfg, comp, summ, trend_df, design: str, path: Path | None = None) -> Path:
    """``results/<sweeps.readme>``: our findings vs the paper, computed from the metrics."""
    from .artifacts import git_sha

    path = path or (_config.resolve_path(cfg.run.results_dir) / cfg.sweeps.readme)
    n_rep = int(comp["verdict"].eq("reproduced").sum() + comp["verdict"].str.startswith("reproduced (").sum())
    n_all = int((comp["verdict"] != "not measured").sum())
    head = summ[(summ["study"] == "data_size")].copy()
    lines = [
        f"# SCRIT study results ({cfg.run.name} profile)",
        "",
        "Generated by `scrit_utils.study_report.write_readme` at the end of notebook 06 "
        f"(git {git_sha()}); every number below is computed from the run's metrics. "
        f"Figures: `figures/{cfg.run.name}/`, tables: `tables/{cfg.run.name}/`, executed notebooks: "
        f"`runs/{cfg.run.name}/`, timing: `{cfg.sweeps.timing}`.",
        "",
        "## Design",
        design,
        "",
        "## Our findings vs the paper",
        f"{n_rep} of {n_all} measured claims reproduced. A claim is *reproduced* when our effect has the "
        "paper's sign and is clear: the 95% CI of the difference (training + evaluation noise) excludes 0, or "
        f"for trends Spearman p < 0.05. Paper effects smaller than {NEGLIGIBLE} points count as no effect. "
        "Paper effects are in points (CC-Acc %, EI-F1 x100); ours likewise; trends are Spearman rho.",
        "",
        markdown(comp),
        "",
        "## What did not reproduce",
    ]
    bad = comp[comp["verdict"].str.startswith("not reproduced")]
    if n_all == 0:
        lines.append("Nothing was measured (no trained points with metrics).")
    elif bad.empty:
        lines.append("Every measured claim reproduced.")
    else:
        for r in bad.itertuples(index=False):
            lines.append(f"- {r.claim} ({r.metric}): paper {r.paper_effect}, ours {r.our_effect} {r.our_95ci_or_p} -> {r.verdict}")
    nm = comp[comp["verdict"] == "not measured"]
    if not nm.empty:
        lines += ["", "Not measured in this run: " + "; ".join(sorted(set(f"{r.claim} ({r.metric})" for r in nm.itertuples())))]
    lines += ["", "## Data scaling (mean over SFT seeds, pooled 95% CI)", "",
              markdown(head[["arm", "x", "metric", "mean", "ci_low", "ci_high", "n_seeds", "n_examples"]], ".1f"), "",
              "## Trends (Spearman rho over the sweep variable)", "", markdown(trend_df, ".3f"), ""]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def write_timing(cfg, stage_dirs: Sequence[str | Path], path: Path | None = None) -> Path:
    """``results/<sweeps.timing>``: wall time per stage kind from the manifests, plus executed notebooks."""
    import pandas as pd

    from . import run as _run

    path = path or (_config.resolve_path(cfg.run.results_dir) / cfg.sweeps.timing)
    dirs = {Path(d) for d in stage_dirs if d}
    for num in ("01", "02", "03", "04"):
        try:
            dirs.update(st.dir for st in (_run.notebook_stages(num, cfg) or []))
        except Exception:
            pass
    rows = []
    for d in sorted(dirs):
        m = d / "manifest.json"
        if m.exists():
            man = json.loads(m.read_text())
            rows.append({"stage": man["stage"], "hash": man["hash"], "wall_s": float(man["wall_time_s"]),
                         "created_at": man.get("created_at", "")})
    df = pd.DataFrame(rows, columns=["stage", "hash", "wall_s", "created_at"])
    per = (df.groupby("stage").agg(runs=("hash", "count"), total_s=("wall_s", "sum"), max_s=("wall_s", "max"))
           .reset_index() if not df.empty else pd.DataFrame(columns=["stage", "runs", "total_s", "max_s"]))
    nb_rows = []
    run_dir = _config.resolve_path(cfg.run.results_dir) / "runs" / cfg.run.name
    for nb in sorted(run_dir.glob("*.ipynb")):
        try:
            meta = json.loads(nb.read_text())["metadata"].get("papermill", {})
            nb_rows.append({"notebook": nb.stem, "wall_s": meta.get("duration"), "finished": meta.get("end_time")})
        except Exception:
            continue
    nbs = pd.DataFrame(nb_rows, columns=["notebook", "wall_s", "finished"]).dropna(subset=["wall_s"])
    summary = {"05_scaling", "06_ablations"}  # whole-notebook stages: their time includes the points'
    inner = df[~df["stage"].isin(summary)] if not df.empty else df
    lines = [f"# Timing ({cfg.run.name} profile)", "",
             "From the stage manifests (`wall_time_s`, the time the stage took when it was computed; a cached stage "
             "costs ~0 on a rerun) and the executed notebooks' papermill metadata.", "",
             f"Sum of stage wall times (01-04 stages and sweep points): {inner['wall_s'].sum():.0f} s over "
             f"{len(inner)} stage runs. Notebooks 05/06 as a whole: "
             + ", ".join(f"{r.stage} {r.wall_s:.0f} s" for r in df[df["stage"].isin(summary)].itertuples()) + ".", "",
             "## Per stage kind", "", markdown(per, ".1f"), "",
             "## Executed notebooks (last run of each)", "",
             markdown(nbs, ".1f") if not nbs.empty else "(none recorded yet)", ""]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# --- figures -------------------------------------------------------------------------------------------------
def sweep_figure(summ, study: str, metrics: Sequence[str] = tuple(), xlabel: str = "", logx: bool = False):
    """One panel per metric: mean over seeds with pooled 95% CI band, one line per arm."""
    import matplotlib.pyplot as plt

    from .pipeline import common
    from .pipeline.sweeps import METRICS

    common.plot_style()
    metrics = list(metrics) or list(METRICS)
    d = summ[summ["study"] == study]
    ncol = 3
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        g = d[d["metric"] == m]
        for arm, ga in g.groupby("arm"):
            ga = ga.sort_values("x")
            ax.plot(ga["x"], ga["mean"], "-o", ms=4, label=arm)
            ax.fill_between(ga["x"], ga["ci_low"], ga["ci_high"], alpha=0.2)
        if logx:
            ax.set_xscale("symlog", linthresh=max(1.0, float(d["x"][d["x"] > 0].min()) if (d["x"] > 0).any() else 1.0))
        xs = sorted(float(v) for v in d["x"].unique())
        if 1 < len(xs) <= 8:
            ax.set_xticks(xs, [f"{v:g}" if v < 1e4 else f"{v / 1e6:.2f}M" for v in xs], fontsize=8)
        ax.set_title(METRICS.get(m, m), fontsize=10)
        ax.set_xlabel(xlabel or "x")
        ax.set_ylabel("score (%)")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def ablation_figure(summ, metrics: Sequence[str] = ("cc_mean", "ei_f1_strict", "ei_f1_original")):
    """Horizontal bars (mean over seeds) with pooled 95% CI per ablation; dashed line = baseline."""
    import matplotlib.pyplot as plt

    from .pipeline import common
    from .pipeline.sweeps import METRICS

    common.plot_style()
    d = summ[summ["study"] == "ablation"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 0.45 * max(4, d["arm"].nunique()) + 1.2),
                             squeeze=False, sharey=True)
    for ax, m in zip(axes.flat, metrics):
        g = d[d["metric"] == m].sort_values("arm")
        y = range(len(g))
        ax.barh(list(y), g["mean"], xerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]], capsize=3,
                color=["tab:orange" if a == "baseline" else "tab:blue" for a in g["arm"]])
        ax.set_yticks(list(y), g["arm"].tolist(), fontsize=8)
        b = g[g["arm"] == "baseline"]
        if not b.empty:
            ax.axvline(float(b["mean"].iloc[0]), ls="--", color="gray")
        ax.set_xlabel("score (%)")
        ax.set_title(METRICS.get(m, m), fontsize=10)
    fig.tight_layout()
    return fig
