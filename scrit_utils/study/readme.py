"""``results/README.md`` (bottom line, limitations, claims, wide tables) and ``results/timing.md``.

Everything is computed from the frames of :mod:`scrit_utils.study.claims`; the only prose that is
not generated from numbers is the description of what the toy world is (:func:`limitations`, filled
in from the profile). Every file starts with the run's stamp (:func:`scrit_utils.core.provenance.stamp_comment`),
which ``tests/test_results_consistency.py`` compares across ``results/``.

Usage::

    from scrit_utils.study import readme as study_readme
    study_readme.write_readme(cfg, comp, summ, gains_df, design_lines)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from scrit_utils.core import config as _config
from scrit_utils.core.provenance import notebook_times, run_stamp, stamp_comment
from scrit_utils.core.records import atomic_write_text
from scrit_utils.pipeline import data, self_critic, training, validation
from scrit_utils.pipeline.common import _markdown
from scrit_utils.study.claims import EQUIVALENCE, NEGLIGIBLE, VERDICTS, verdict_counts
from scrit_utils.study.registry import METRIC_LABELS, arm_label
from scrit_utils.study.results_check import PREREGISTERED_HEAD
from scrit_utils.study import sweeps

#: the stages of notebooks 01-04, whose manifests the timing report reads
LOOP_STAGES = (data.stages, self_critic.stages, validation.stages, training.stages)


# --- the SFT budget of a sweep point (notebooks 05/06 and the README) ---
def point_training(cfg):
    """The training section every sweep point trains with (:func:`point_cfg` applied)."""
    return sweeps.point_cfg(cfg, cfg.sweeps.seeds[0]).training


def budget_text(cfg) -> str:
    t = point_training(cfg)
    if t.max_steps > 0:
        return f"fixed: {t.max_steps} steps x batch {t.per_device_train_batch_size} for every point"
    return (f"{t.num_train_epochs:g} epochs at batch {t.per_device_train_batch_size} "
            "(steps grow with data, as in the paper)")


def _f(v, signed: bool = True, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def _ci(lo, hi, signed: bool = True) -> str:
    return "" if lo is None or math.isnan(float(lo)) else f"[{_f(lo, signed)}, {_f(hi, signed)}]"


def markdown(df, floatfmt: str = ".1f") -> str:
    return _markdown(df, floatfmt)


# --- sections ----------------------------------------------------------------------------------------------
def _claim_text(r) -> str:
    m = METRIC_LABELS.get(r.metric, r.metric).split(" (")[0]
    return (f"{r.claim} ({m}): ours {_f(r.our_effect)} {_ci(r.ci_low, r.ci_high)} {r.unit}, "
            f"paper {_f(r.paper_effect)}")


def bottom_line(comp, noun: str = "claims") -> list[str]:
    """The README's first section: what reproduced, what did not, what this design cannot resolve (``noun``: what
    the rows are called; "comparisons" under pre-registered claims, which are the study's claims then)."""
    n = verdict_counts(comp)
    measured = len(comp) - n["not measured"]
    out = [f"Of {measured} measured {noun}, **{n['reproduced']} reproduced**, **{n['not reproduced']} did not** "
           f"(the design could have seen a paper-sized effect, or saw the opposite) and **{n['inconclusive']} are "
           "inconclusive** (no clear effect, and the smallest effect this design detects -- the MDE -- is larger than "
           "the paper's)." + (f" {n['not measured']} were not measured in this run." if n["not measured"] else ""), ""]
    for key, title in (("reproduced", "Reproduced"), ("not reproduced", "Not reproduced")):
        sel = comp[comp["verdict"].str.startswith(key)]
        out.append(f"- **{title}:** " + ("none." if sel.empty else ""))
        out += [f"  - {_claim_text(r)} -> {r.verdict}" for r in sel.itertuples()]
    inc = comp[comp["verdict"].str.startswith("inconclusive")]
    out.append("- **Cannot be resolved by this study** (MDE above the paper's effect; the claims table has every "
               "metric): " + ("nothing." if inc.empty else ""))
    for claim, g in inc.groupby("claim", sort=False):
        key = g[g["metric"].isin(["cc_mean", "ei_f1_strict"])]
        parts = []
        for r in (key if not key.empty else g).itertuples():
            need = r.items_needed
            need = "" if need is None or (isinstance(need, float) and math.isnan(need)) else f", ~{int(need)} items/set"
            parts.append(f"{METRIC_LABELS.get(r.metric, r.metric).split(' (')[0]} MDE {_f(r.mde, False)} vs paper "
                         f"{_f(r.paper_effect)}{need}")
        more = len(g) - len(key) if not key.empty else 0
        out.append(f"  - {claim} ({g['unit'].iloc[0]}): " + "; ".join(parts) + (f"; +{more} more metrics" if more else ""))
    return out


def _model_params(cfg) -> list[tuple[str, int]]:
    out = []
    for path in [cfg.models.critic, *cfg.sweeps.model_sizes]:
        info = _config.resolve_path(path) / "build_info.json"
        n = json.loads(info.read_text()).get("n_params") if info.exists() else None
        out.append((Path(path).name, n))
    return list(dict.fromkeys(out))


def limitations(cfg, registered: bool = False) -> list[str]:
    """What the toy world is and is not (from the profile)."""
    a, sw = cfg.world.arith, cfg.sweeps
    sizes = ", ".join(f"{n} ({p / 1e6:.2f}M)" if p else n for n, p in _model_params(cfg))
    biggest = max((s for s in sw.data_sizes), default=0)
    return [
        f"- **World.** Integer arithmetic chains of {a.min_steps}-{a.max_steps} operations ({', '.join(a.ops)}), values "
        f"0..{a.max_value}, with an exact reference solution and answer: every label is known, so validation and "
        "grading are exact. The paper's problems are natural-language math (GSM8K, MATH, ...).",
        f"- **Models.** Tiny transformers trained from scratch for this world (`models/README.md`): {sizes}. "
        "The paper's critics are 1.5B-72B instruction-tuned LLMs, 3-6 orders of magnitude larger.",
        f"- **Data and training.** At most {biggest} self-training examples per point (paper: up to 170K), SFT "
        f"{budget_text(cfg)}, {len(sw.seeds)} SFT seeds.",
        f"- **Benchmarks.** Toy analogues of RealCritic (CC-Acc: deliberately incorrect, balanced, own solutions) and "
        f"ProcessBench (EI-F1), from the world's held-out split; {sw.eval_items or cfg.evaluation.n_items} items per "
        "set in the sweeps, greedy decoding. The paper uses thousands of real items.",
        "- **Comparing with the paper.** The paper's effects are in points on its benchmarks; ours in points on the toy "
        "analogues. We compare the sign, and whether an effect of the paper's size would be detectable here (MDE at "
        "95% confidence and 80% power). Trends are compared per level of the sweep (data size: per doubling; model "
        "size: per doubling of parameters; rounds: per round). Our numbers are not estimates of the paper's numbers.",
        ("- **Statistics.** The registered claims: one primary metric each, intervals over builds, SFT seeds and items, "
         "Holm across the tested claims. The paper comparison: " if registered else "- **Statistics.** ")
        + f"each comparison is tested on its own at 95% (no multiplicity correction: among ~30 of them one or two "
        f"clear effects are expected by chance). Paper effects below {NEGLIGIBLE} points count as no effect; such "
        f"a comparison is reproduced only when our whole CI lies within +-{EQUIVALENCE:g} point.",
    ]


def _verdict_kind(v) -> str:
    """The verdict's class (its first words: reproduced, not reproduced, inconclusive, not measured)."""
    v = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    return next((k for k in sorted(VERDICTS, key=len, reverse=True) if v.startswith(k)), "not measured")


def replicate_frame(cfg, comp, name: str):
    """This run's claims beside run ``name``'s (its committed ``tables/<name>/06_paper_comparison.csv``),
    with ``flip`` where both measured a claim and the verdict classes differ; ``(frame, sha)``, or
    ``(None, None)`` when that run has no comparison table yet."""
    import pandas as pd

    res = _config.resolve_path(cfg.run.results_dir)
    csv = res / "tables" / name / "06_paper_comparison.csv"
    if not csv.exists():
        return None, None
    rec = res / "runs" / name / "run.json"
    sha = (json.loads(rec.read_text())["notebooks"].get("06_ablations", {}).get("run_sha", "?")[:12]
           if rec.exists() else "?")
    other = pd.read_csv(csv)
    m = comp.merge(other, on=["claim", "metric"], how="outer", suffixes=("", "_other"), sort=False)
    rows = []
    for r in m.itertuples():
        a, b = _verdict_kind(r.verdict), _verdict_kind(r.verdict_other)
        rows.append({"claim": r.claim, "metric": METRIC_LABELS.get(r.metric, r.metric),
                     "this run [95% CI]": f"{_f(r.our_effect)} {_ci(r.ci_low, r.ci_high)}",
                     "this run": a, f"{name} [95% CI]": f"{_f(r.our_effect_other)} {_ci(r.ci_low_other, r.ci_high_other)}",
                     name: b, "flip": "FLIP" if "not measured" not in (a, b) and a != b else ""})
    return pd.DataFrame(rows), sha


def replicate_lines(cfg, comp) -> tuple[list[str], list[str]]:
    """(bottom-line bullets, section lines) for ``sweeps.compare_runs``."""
    bullets, section = [], []
    for name in cfg.sweeps.compare_runs:
        df, sha = replicate_frame(cfg, comp, name)
        if df is None:
            bullets.append(f"- **Replicate `{name}`:** not run yet (no `tables/{name}/06_paper_comparison.csv`).")
            continue
        both = df[(df["this run"] != "not measured") & (df[name] != "not measured")]
        flips = both[both["flip"] == "FLIP"]
        bullets.append(f"- **Replicate `{name}`** (run `{sha}`): {len(both) - len(flips)} of {len(both)} claims measured "
                       f"by both get the same verdict; {len(flips)} flip" + (":" if len(flips) else "."))
        bullets += [f"  - {r['claim']} ({r['metric'].split(' (')[0]}): {r['this run']} here, {r[name]} there"
                    for _, r in flips.iterrows()]
        section += [f"### Beside `{name}` (run `{sha}`, its README and tables under `tables/{name}/`)", "",
                    "A flip is a claim both runs measured with a different verdict (reproduced / not reproduced / "
                    "inconclusive).", "", markdown(df), ""]
    return bullets, section


def claims_table(comp):
    import pandas as pd

    return pd.DataFrame([{
        "claim": r.claim, "metric": METRIC_LABELS.get(r.metric, r.metric), "paper": f"{_f(r.paper_effect)}",
        "ours [95% CI]": f"{_f(r.our_effect)} {_ci(r.ci_low, r.ci_high)}", "MDE": _f(r.mde, False), "unit": r.unit,
        "verdict": r.verdict} for r in comp.itertuples()])


def wide(summ, study: str, metric: str, arms: Sequence[str] | None = None, value: str = "mean"):
    """One row per arm, one column per x: ``mean [lo, hi]`` (or a gains frame's ``delta``)."""
    import pandas as pd

    d = summ[(summ["study"] == study) & (summ["metric"] == metric)]
    if d.empty:
        return pd.DataFrame()
    xs = sorted(d["x"].unique())
    rows = []
    for arm in arms or sorted(d["arm"].unique()):
        g = d[d["arm"] == arm]
        if g.empty:
            continue
        row = {"critic": arm_label(arm)}
        for x in xs:
            c = g[g["x"] == x]
            row[_xlabel(study, x)] = "" if c.empty else (
                f"{_f(float(c.iloc[0][value]), value != 'mean')} {_ci(c.iloc[0]['ci_low'], c.iloc[0]['ci_high'], value != 'mean')}")
        rows.append(row)
    return pd.DataFrame(rows)


def _xlabel(study: str, x: float) -> str:
    if study == "model_size":
        return f"{x / 1e6:.2f}M params"
    if study == "rounds":
        return "base" if x == 0 else f"round {x:g}"
    return "0 (base)" if x == 0 else f"{x:g}"


def _by_kind(frame, study: str):
    """``frame`` with the study's ``kind:model`` arms renamed to their kind (``base``, ``scrit``)."""
    f = frame.copy()
    sel = f["study"] == study
    f.loc[sel, "arm"] = f.loc[sel, "arm"].astype(str).str.split(":").str[0]
    return f


def wide_sections(summ, gains) -> list[str]:
    out = []
    for m in ("cc_mean", "ei_f1_strict"):
        lab = METRIC_LABELS[m]
        for study, title in (("data_size", "Data size (self-training examples)"), ("rounds", "Rounds")):
            t = wide(summ, study, m)
            if not t.empty:
                out += [f"**{title}: {lab}**, seed mean [95% CI]", "", markdown(t), ""]
        ms = summ[(summ["study"] == "model_size") & (summ["metric"] == m)]
        if not ms.empty:  # one row per critic kind: the model is the column
            t = wide(_by_kind(summ, "model_size"), "model_size", m)
            g = wide(_by_kind(gains, "model_size"), "model_size", m, value="delta")
            if not g.empty:
                g["critic"] = "gain of SCRIT (paired)"
            import pandas as pd

            out += [f"**Model size: {lab}**", "", markdown(pd.concat([t, g], ignore_index=True)), ""]
        t = wide(gains, "data_size", m, value="delta")
        if not t.empty:
            out += [f"**Gain over the base critic: {lab}** (paired difference [95% CI], points)", "", markdown(t), ""]
        t = wide(gains, "ablation", m, value="delta")
        if not t.empty:
            out += [f"**Ablations minus the SCRIT baseline: {lab}** (paired, points)", "", markdown(t), ""]
    return out


METHOD = [
    "Each point is scored on the same benchmark items as its reference critic. A comparison is a paired bootstrap "
    "over those items (one draw of items per replicate, applied to both critics and to every SFT seed), plus the "
    "spread of the metric over SFT seeds (t with Welch-Satterthwaite degrees of freedom); the base critic is "
    "evaluated once and has no seed term. Trends are the OLS slope of the per-level seed means, with the same paired "
    "item bootstrap across levels; replicated rows never count as observations. MDE = (t_.975 + t_.80) x SE: the "
    "true effect this design would detect 80% of the time. Code: `scrit_utils/study/stats.py`.",
]


def benchmark_lines(summary: dict | None) -> list[str]:
    """The claim sets' make-up from a toy benchmark's ``summary.json`` (:mod:`scrit_utils.worlds.arith_bench`): items,
    where the wrong ones came from and how their errors look; [] for a benchmark without one (real data)."""
    import pandas as pd

    from scrit_utils.worlds import arith_errors

    if not summary:
        return []
    gens = ", ".join(f"{g['name']} (T={g['temperature']})" for g in summary.get("generators", []))
    rows = []
    for name, c in summary["claim_sets"].items():
        shapes = summary["error_shapes"][name]["shapes"]
        rows.append({"set": name, "items": c["items"], "wanted": c["wanted"], "wrong (natural)": c["natural_wrong"],
                     "origins": ", ".join(f"{k} {v}" for k, v in summary["origins"][name].items()),
                     "error shapes of the wrong items": ", ".join(f"{k} {v}" for k, v in shapes.items() if k != "correct")})
    return ["### The benchmark's claim sets", "",
            f"Split `{summary['split']}`. Every wrong item is a natural error of a held-out generator ({gens}), found by "
            f"sampling {summary['sampling']['samples']} solutions; **injected items in the claim sets: "
            f"{summary['injected_in_claim_sets']}**. The injected-error items are a separate, labelled diagnostic "
            f"(`{summary['diagnostic']['dir']}/`, the table above). Error shapes (`scrit_utils/worlds/arith_errors.py`): "
            + "; ".join(f"`{k}` {v}" for k, v in arith_errors.SHAPE_TEXT.items() if k != "correct") + ".", "",
            markdown(pd.DataFrame(rows)), ""]


def preregistered_lines(claims_df, arms_df, notes: Sequence[str] = (), injected_df=None,
                        bench_summary: dict | None = None, headroom_df=None) -> list[str]:
    """The README's first section: the pre-registered claims (study v3) with their verdicts, then the arms at
    matched example counts (primary metric, intervals over builds, SFT seeds and items), then the diagnosed arms
    on natural vs injected errors (``injected_df``: :func:`scrit_utils.study.preregistration.natural_vs_injected`)."""
    import pandas as pd

    def ci(r) -> str:
        if not math.isfinite(r.estimate):
            return "-"
        if r.tested:  # a difference or slope in points
            return f"{r.estimate:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]"
        return f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] (share)"

    rows = [{"claim": f"`{r.claim}`", "statement": r.statement, "estimate [95% CI]": ci(r),
             "p (Holm)": "-" if not math.isfinite(r.p_holm) else f"{r.p_holm:.3g}", "builds": int(r.builds),
             "verdict": r.verdict} for r in claims_df.itertuples()]
    out = [PREREGISTERED_HEAD, "",
           "Registered in `results/pilot/PREREGISTRATION_v3.md` before the benchmark split was run "
           "(`scrit_utils/study/preregistration.py`). One primary metric for every claim: CC-Acc on deliberately "
           "incorrect solutions (points; the share claim: a fraction of the oracle's gain). Intervals: builds, SFT seeds "
           "and items as random effects; p adjusted with Holm across the tested claims. A claim on one base build is not "
           "claimable: its interval leaves out the build variance.", "", markdown(pd.DataFrame(rows)), ""]
    if arms_df is not None and not arms_df.empty:
        out += ["### Arms at matched example counts (CC-Acc, deliberately incorrect; mean [95% CI])", "",
                markdown(arms_df, ".1f"), ""]
    if injected_df is not None and not injected_df.empty:
        out += ["### Natural vs injected errors (CC-Acc, deliberately incorrect; mean [95% CI])", "",
                "The same critics on the claim set (natural errors of held-out generators) and on the labelled "
                "diagnostic (the same problems, each wrong solution made by the world's injector). "
                "`bug_injection_world` was trained on that injector's bugs: external supervision.", "",
                markdown(injected_df, ".1f"), ""]
    if headroom_df is not None and not headroom_df.empty:
        out += ["### SCRIT's gain and the headroom (CC-Acc, deliberately incorrect; reported, not a claim)", "",
                "The critic's size built with a smaller reference gap (`sweeps.headroom_builds`: part of its "
                "no-reference critique training in-world, a fraction fixed before any build) against the build's own "
                "critic: base and SCRIT scores, SCRIT's paired gain, and the difference of the two gains; builds "
                "paired by position.", "", markdown(headroom_df, ".1f"), ""]
    out += benchmark_lines(bench_summary)
    return out + [f"- {n}" for n in notes] + ([""] if notes else [])


def write_readme(cfg, comp, summ, gains, design: Sequence[str], trends=None, path: Path | None = None,
                 preregistered: Sequence[str] = ()) -> Path:
    """``results/<sweeps.readme>``: the pre-registered claims first (``preregistered``: their lines), then the
    bottom line, limitations, the v2 claims and wide tables."""

    stamp = run_stamp(cfg)
    path = path or (_config.resolve_path(cfg.run.results_dir) / cfg.sweeps.readme)
    name = cfg.run.name
    rep_bullets, rep_section = replicate_lines(cfg, comp)
    descriptive, claims_head = [], "## Claims"
    if preregistered:  # the pre-registered claims are the study's; the paper comparison below them only describes
        from scrit_utils.study import builds

        labels = builds.labels(cfg)
        one = f"build {labels[0]} only, of {len(labels)}" if len(labels) > 1 else "one base build"
        descriptive = [f"**Descriptive, not claims.** The claims of this study are the pre-registered ones above. Below, "
                       f"each statement of the paper is set next to ours on {one} (so the intervals leave out the build "
                       "variance), one metric at a time (the metrics of one comparison are correlated, not independent "
                       "evidence), with no multiplicity adjustment; the verdict reads the sign and the MDE, and the "
                       "magnitudes are toy points, not paper points.", ""]
        claims_head = "## The paper's statements next to ours (descriptive)"
    lines = [stamp_comment(stamp), f"# SCRIT study results ({name} profile)", "",
             f"Written by notebook 06 of run `{stamp['sha']}` from its own metrics. Figures: `figures/{name}/`, tables: "
             f"`tables/{name}/`, executed notebooks and the run record: `runs/{name}/`, timing: `{cfg.sweeps.timing}`.",
             "", *preregistered, "## Bottom line", "", *descriptive,
             *bottom_line(comp, "comparisons" if preregistered else "claims"), *rep_bullets, "",
             "## Limitations: what the toy world is and is not", "", *limitations(cfg, bool(preregistered)), "",
             claims_head, "", "Paper effect and ours in points (trends: points per level, see unit); the verdict "
             "rules are in `scrit_utils/study/claims.py:verdict`.", "", markdown(claims_table(comp)), "",
             *(["## Replicates", "", *rep_section] if rep_section else []),
             "## Scores", "", *wide_sections(summ, gains),
             "## How the numbers are computed", "", *METHOD, "", "## Design", "", *design, ""]
    if trends is not None and not trends.empty:
        t = trends[trends["metric"].isin(["cc_mean", "ei_f1_strict"])].copy()
        t["metric"] = t["metric"].map(lambda m: METRIC_LABELS.get(m, m))
        lines[-1:-1] = ["## Trends (slope per level, paired 95% CI; Spearman rho of the level means, exact p)", "",
                        markdown(t[["study", "arm", "metric", "slope", "ci_low", "ci_high", "mde", "rho", "p_rho",
                                    "levels"]], ".2f"), ""]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def stage_walls(stage_dirs: Sequence[str | Path]):
    """``stage, hash, wall_s`` of every finished stage among ``stage_dirs`` (from its manifest), in path order."""
    import pandas as pd

    rows = []
    for d in sorted({Path(x) for x in stage_dirs if x}):
        m = d / "manifest.json"
        if m.exists():
            man = json.loads(m.read_text())
            rows.append({"stage": man["stage"], "hash": man["hash"], "wall_s": float(man["wall_time_s"])})
    return pd.DataFrame(rows, columns=["stage", "hash", "wall_s"])


def write_timing(cfg, stage_dirs: Sequence[str | Path], path: Path | None = None) -> Path:
    """``results/<sweeps.timing>``: wall time per stage kind from the manifests, plus executed notebooks."""
    import pandas as pd

    path = path or (_config.resolve_path(cfg.run.results_dir) / cfg.sweeps.timing)
    dirs = {Path(d) for d in stage_dirs if d}
    for stages in LOOP_STAGES:  # notebooks 01-04
        try:
            dirs.update(st.dir for st in stages(cfg))
        except Exception:
            pass
    df = stage_walls(dirs)
    per = (df.groupby("stage").agg(runs=("hash", "count"), total_s=("wall_s", "sum"), max_s=("wall_s", "max"))
           .reset_index() if not df.empty else pd.DataFrame(columns=["stage", "runs", "total_s", "max_s"]))
    summary = {"05_scaling", "06_ablations"}  # whole-notebook stages: their time includes the points'
    inner = df[~df["stage"].isin(summary)] if not df.empty else df
    lines = [stamp_comment(run_stamp(cfg)), f"# Timing ({cfg.run.name} profile)", "",
             "From the stage manifests (`wall_time_s`: the time a stage took when it was computed; a cached stage costs "
             "~0 on a rerun) and the run record of the executed notebooks.", "",
             f"Sum of stage wall times (01-04 stages and sweep points): {inner['wall_s'].sum():.0f} s over "
             f"{len(inner)} stage runs. Notebooks 05/06 as a whole: "
             + ", ".join(f"{r.stage} {r.wall_s:.0f} s" for r in df[df["stage"].isin(summary)].itertuples()) + ".", "",
             "## Per stage kind", "", markdown(per, ".1f"), "", *notebook_section(cfg)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


NOTEBOOK_SECTION = "## Executed notebooks (last run of each)"
#: written by the Makefile's venv rule: seconds the last ``make setup`` took and when it finished
VENV_TIMING = ".venv/.install_seconds"


def notebook_section(cfg) -> list[str]:
    """Wall time per executed notebook (the run record) and the whole run's: its notebooks plus the venv build."""
    nbs = notebook_times(cfg)
    out = [NOTEBOOK_SECTION, "", markdown(nbs, ".1f") if not nbs.empty else "(none recorded yet)", ""]
    if nbs.empty:
        return out
    sha = run_stamp(cfg)["sha"][:12]
    this = nbs[nbs["run_sha"] == sha]
    total = float(this["wall_s"].sum())
    out.append(f"Notebooks executed by run `{sha}`: {len(this)} of {len(nbs)}, {total:.0f} s ({total / 60:.1f} min).")
    venv = _config.REPO_ROOT / VENV_TIMING
    if venv.exists():
        secs, _, when = venv.read_text().strip().partition(" ")
        out.append(f"The venv build of this checkout (`make setup`, finished {when or 'at an unrecorded time'}) took "
                   f"{float(secs):.0f} s; with it, {(total + float(secs)) / 60:.1f} min (`make study` from a fresh clone "
                   "builds the venv and then runs every notebook; issue #14's budget is 60 min).")
    return out + [""]


def refresh_notebook_section(cfg, path: Path | None = None) -> Path | None:
    """Rewrite the notebook section of an existing timing report from the run record: ``scrit run``
    calls this after its last notebook, so the notebook that wrote the report is in it too."""
    path = path or (_config.resolve_path(cfg.run.results_dir) / cfg.sweeps.timing)
    if not path.exists():
        return None
    text = path.read_text()
    head, sep, _ = text.partition(NOTEBOOK_SECTION)
    if not sep:
        return None
    atomic_write_text(path, head + "\n".join(notebook_section(cfg)) + "\n")
    return path
