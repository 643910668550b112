"""Notebooks 05 and 06 as functions: the scaling study and the ablations, reported.

:func:`scaling` (notebook 05) and :func:`ablations` (notebook 06) compute their study points
through :mod:`scrit_utils.study.sweeps` -- or read them from their finished summary stage
(``05_scaling`` / ``06_ablations``, ``points.json``) -- then build every table and figure (saved
under ``results/``) and return a :class:`~scrit_utils.pipeline.common.StageReport`; the notebooks
only display it. :func:`ablations` also writes ``results/README.md`` (our findings next to the
paper's) and ``results/timing.md``. A summary stage is finished after its tables, so their time is
part of its wall time, and before the timing report that reads it.

Usage::

    from scrit_utils.study import studies
    rep = studies.scaling(cfg)       # rep.tables["05_trends"], rep.figures["05_data_scaling"], ...
    rep = studies.ablations(cfg)     # needs notebook 05's summary stage
"""
from __future__ import annotations

import json
import math
import time
from typing import Callable

from scrit_utils.core.config import StudyConfig
from scrit_utils.pipeline import common, training
from scrit_utils.study import sweeps
from scrit_utils.study import builds, figures, preregistration, readme as study_readme, claims as study_report, rounds
from scrit_utils.study.readme import budget_text, point_training  # noqa: F401 (notebook 06 reads budget_text here)


def design_table(cfg: StudyConfig):
    """Notebook 05's sweep design and planned time, from the profile alone. The estimate uses the
    2-core machine's measurements on the v3 bases (dev rehearsal of configs/toy-v3.yaml, 2026-12-07):
    about 0.3 s per SFT step (batch 32, toy-409k, padding-free) and about 4.7 s per 600 evaluated
    critiques; data generation (stages 01-03 and the regenerated arms' critiques) is not included."""
    import pandas as pd

    sw = cfg.sweeps
    sizes = sweeps.data_sizes(cfg)
    t = point_training(cfg)
    batch = t.per_device_train_batch_size
    trained = [n for m in sw.critic_modes for n in sweeps.mode_sizes(cfg, m) if n > 0]
    trained += [sweeps.fixed_size(cfg)] * (len(sw.model_sizes) + bool(sw.headroom_builds))  # one variant per build
    trained = trained * len(sw.seeds) + rounds_trainings(cfg)
    n_builds = len(builds.labels(cfg))  # the whole sweep runs once per base build
    n_train = len(trained) * n_builds
    steps = sum(sft_steps(t, n) for n in trained) * n_builds
    evals_per_point = (len(cfg.evaluation.scenarios) + 1) * (sw.eval_items or cfg.evaluation.n_items or 600)
    est = 0.3 * batch / 32 * steps + n_train * 4.7 * evals_per_point / 600
    items = [
        ("data sizes", str(sizes)),
        ("critic modes", ", ".join(f"{m} at {[n for n in sweeps.mode_sizes(cfg, m) if n]}" for m in sw.critic_modes)),
        ("base builds", ", ".join(sw.builds) or "1 (the profile's models)"),
        ("headroom variant builds", ", ".join(sw.headroom_builds) or "-"),
        ("SFT seeds per point", str(list(sw.seeds))),
        ("SFT budget", budget_text(cfg)),
        ("eval items per scenario / ProcessBench", str(sw.eval_items or cfg.evaluation.n_items)),
        ("model sizes", ", ".join(sw.model_sizes) or "-"),
        ("examples for model-size / round points", str(sweeps.fixed_size(cfg))),
        ("rounds", str(sw.rounds)),
        ("pair cap per regenerated arm", str(sw.max_pairs)),
        ("SFT runs (upper bound, before cache sharing)", str(n_train)),
        ("planned SFT + eval time (calibration)", f"{est / 60:.1f} min"),
    ]
    return pd.DataFrame([{"item": k, "value": v} for k, v in items])


def rounds_trainings(cfg: StudyConfig) -> list[int]:
    """Example counts of the SFT runs of rounds 2..R (round 1 is a model-size point): per protocol arm and
    chain seed, ``retrain`` pools every round so far, ``continue`` adds ``replay`` of each earlier round."""
    sw, n = cfg.sweeps, sweeps.fixed_size(cfg)
    pr = sw.rounds_protocol
    per_round = [(k, arm) for arm in pr.arms for k in range(2, sw.rounds + 1)]
    sizes = [n * k if arm == "retrain" else round(n * (1 + pr.replay * (k - 1))) for k, arm in per_round]
    return sizes * len(rounds.all_seeds(cfg)) if sizes else []


def sft_steps(t, n_examples: int) -> int:
    """Optimizer steps of one point trained with ``t`` (a training section): its fixed budget, or epochs x
    batches (steps grow with data)."""
    if t.max_steps > 0:
        return t.max_steps
    return math.ceil(math.ceil(n_examples / (t.per_device_train_batch_size * t.gradient_accumulation_steps))
                     * t.num_train_epochs)


def preregistered_claims(cfg: StudyConfig, rows: list[dict]):
    """``(cells, notes, claims)``: the claims registered for v3 over every build of notebook 05's points (builds,
    SFT seeds and items as random effects), the arms compared at the profile's claim size
    (``sweeps.model_size_data``)."""
    b = cfg.evaluation.bootstrap
    cells, notes = preregistration.cells_from_points(rows)
    claims = preregistration.analyse(cells, claim_size=sweeps.fixed_size(cfg), n_boot=b.n_resamples, rng=b.seed)
    return cells, notes, claims


def _points(st, compute: Callable[[], list[dict]]) -> list[dict]:
    """The study's points: from the finished summary stage, else computed (its clock started)."""
    if st.done:
        return sweeps.load_points(st)
    st.start_clock()
    return compute()


def _finish(st, rows: list[dict], counts: dict) -> None:
    if not st.done:
        sweeps.save_points(st, rows)
        st.finish(counts=counts, extra={"stage_dirs": sweeps.stage_dirs(rows)})


# --- notebook 05 ---------------------------------------------------------------------------------------
def scaling(cfg: StudyConfig, progress: Callable[[str], None] = print) -> common.StageReport:
    """Data size x critic mode, model size and rounds: seed means with CIs, paired gains over the
    base critic, trends; their figures; the SFT loss of the SCRIT points."""
    t0 = time.time()
    st = sweeps.scaling_stage(cfg)
    rows = all_rows = _points(st, lambda: sweeps.run_scaling(cfg, progress))
    rep = common.StageReport(st, {})
    rep.examples["design"] = design_table(cfg)
    b = cfg.evaluation.bootstrap
    _, notes, pre = preregistered_claims(cfg, rows)  # over every build
    rep.table(cfg, "05_preregistered_claims", pre)
    rep.examples["preregistered"] = pre.drop(columns=["statement"]).round(3)
    rep.examples["preregistered_notes"] = notes
    # the per-seed tables and figures below describe one build: the profile's own (the first of sweeps.builds)
    labels = builds.labels(cfg)
    rep.examples["build_note"] = (f"Tables and figures below: build {labels[0]} only, of {len(labels)} builds"
                                  if len(labels) > 1 else "")
    rows = [r for r in rows if r.get("build", "") == labels[0]] if len(labels) > 1 else rows
    summ = study_report.summarize(rows, b.n_resamples, b.seed)
    gains = study_report.gains(rows, b.n_resamples, b.seed)
    trends = study_report.trends(rows, b.n_resamples, b.seed)
    for study, name in (("data_size", "05_data_scaling"), ("model_size", "05_model_size"), ("rounds", "05_rounds")):
        rep.table(cfg, name, summ[summ["study"] == study])
    rep.table(cfg, "05_gains", gains[gains["study"] != "ablation"])
    rep.table(cfg, "05_trends", trends)
    rep.examples["wide"] = [(m, study_readme.wide(summ, "data_size", m), study_readme.wide(gains, "data_size", m, value="delta"))
                            for m in figures.KEY]
    rep.examples["trends"] = trends[trends["metric"].isin(figures.KEY)].drop(columns=["unit"]).round(3)
    rep.examples["gains"], rep.examples["trend_rows"] = gains, trends
    rep.figure(cfg, "05_data_scaling", figures.scores_figure(summ, "data_size", xlabel="self-training examples"))
    rep.figure(cfg, "05_gain_over_base", figures.gain_figure(gains))
    if (summ["study"] == "model_size").any():
        rep.figure(cfg, "05_model_size", figures.shape_figure(summ, "model_size"))
    if cfg.sweeps.rounds > 1:
        rep.figure(cfg, "05_rounds", figures.shape_figure(summ, "rounds"))
    fig = figures.loss_figure(study_report.loss_curves(rows), "SFT loss of the SCRIT points (mean over seeds)")
    if fig is not None:
        rep.figure(cfg, "05_training_loss", fig)
    else:
        rep.examples["no_loss"] = (f"no loss curve: fewer than 2 logged losses per point (training.logging_steps = "
                                   f"{cfg.training.logging_steps}, sweeps.sft_max_steps = {cfg.sweeps.sft_max_steps})")
    _finish(st, all_rows, {"points": len(all_rows), "trained_points": sum(r["train_stage"] is not None for r in all_rows),
                           "builds": len(labels)})
    rep.counts = st.manifest["counts"]
    rep.examples["done"] = f"05 done in {time.time() - t0:.0f} s"
    return rep


# --- notebook 06 ---------------------------------------------------------------------------------------
def ablations(cfg: StudyConfig, progress: Callable[[str], None] = print) -> common.StageReport:
    """Each ablation variant minus the SCRIT baseline (paired over items and seeds); then every
    point of 05 and 06 and notebook 04's critics next to the paper's claims (``results/README.md``)
    and the timing report (``results/timing.md``)."""
    import pandas as pd


    t0 = time.time()
    st, scal_st = sweeps.ablation_stage(cfg), sweeps.scaling_stage(cfg)
    if not scal_st.done:
        raise RuntimeError(f"notebook 05 has not finished for this profile ({scal_st.name}/{scal_st.hash}); run it first")
    jobs = sweeps.ablation_jobs(cfg, progress)
    rows = _points(st, lambda: sweeps.run_jobs(jobs, "06 ablation points"))
    rep = common.StageReport(st, {})
    rep.table(cfg, "06_ablation_sizes", pd.DataFrame([
        {"variant": j.arm, "examples": len(j.examples), "correct": sum(e.label_correct for e in j.examples),
         "note": j.note} for j in jobs if j.seed == cfg.sweeps.seeds[0]]))
    b = cfg.evaluation.bootstrap
    gains = study_report.gains(rows, b.n_resamples, b.seed)
    rep.table(cfg, "06_ablations", study_report.summarize(rows, b.n_resamples, b.seed))
    rep.table(cfg, "06_ablation_gains", gains)
    rep.examples["wide"] = [(m, study_readme.wide(gains, "ablation", m, value="delta")) for m in figures.KEY]
    rep.figure(cfg, "06_ablations", figures.ablation_figure(gains))
    scal_rows = sweeps.load_points(scal_st)  # every build
    first = builds.labels(cfg)[0]  # the v2 comparisons describe one build: the first of sweeps.builds
    all_rows = [r for r in scal_rows if r.get("build", "") == first] + rows
    # notebook 04's loop is a demonstration, not a claim: it re-measured notebook 05's SCRIT-vs-base on the same base
    # evaluation and items, which counted one comparison twice (issue #24); its own table stays in notebook 04
    comp = study_report.comparisons(all_rows, n_boot=b.n_resamples, seed=b.seed)
    rep.table(cfg, "06_paper_comparison", comp)
    rep.examples["claims"] = study_readme.claims_table(comp)
    rep.examples["comparison"] = comp
    cells, notes, claims_df = preregistered_claims(cfg, scal_rows)
    arms_df = preregistration.arms_table(cells, n_boot=b.n_resamples, rng=b.seed)
    injected_df = preregistration.natural_vs_injected(scal_rows, b.n_resamples, b.seed, natural=arms_df)
    headroom_df = preregistration.headroom_table(cells, sweeps.fixed_size(cfg), n_boot=b.n_resamples, rng=b.seed)
    # the claims table itself is notebook 05's (05_preregistered_claims): the README reads it from the same points
    for name, df in (("06_arms_matched", arms_df), ("06_natural_vs_injected", injected_df), ("06_headroom", headroom_df)):
        if not df.empty:
            rep.table(cfg, name, df)
    pre = study_readme.preregistered_lines(claims_df, arms_df, notes, injected_df, bench_summary(scal_rows),
                                           headroom_df)
    readme = study_readme.write_readme(cfg, comp, study_report.summarize(all_rows, b.n_resamples, b.seed),
                                       study_report.gains(all_rows, b.n_resamples, b.seed), design_lines(cfg, rows),
                                       trends=study_report.trends(all_rows, b.n_resamples, b.seed), preregistered=pre)
    rep.examples["bottom_line"] = "\n".join(study_readme.bottom_line(comp))
    _finish(st, rows, {"points": len(rows)})
    rep.counts = st.manifest["counts"]
    timing = study_readme.write_timing(cfg, timing_dirs(scal_rows, rows, scal_st, st))
    rep.examples["done"] = f"wrote {readme.name} and {timing.name}; 06 done in {time.time() - t0:.0f} s"
    return rep


def timing_dirs(scal_rows: list[dict], abl_rows: list[dict], scal_st, abl_st) -> list[str]:
    """The stage dirs the timing report sums: every build's 05 points (the comparisons' rows hold the first build's
    only: the v2 comparisons describe one build), 06's points, and both summary stages."""
    return [*sweeps.stage_dirs(scal_rows + abl_rows), str(scal_st.dir), str(abl_st.dir)]


def bench_summary(rows: list[dict]) -> dict | None:
    """The toy benchmark's ``summary.json`` (claim sets' make-up), from the first base evaluation that wrote one: every
    build evaluates on the same items (the benchmark's generators are outside the builds); ``None`` without one."""
    for r in rows:
        if r["train_stage"] is None and r.get("eval_stage"):
            f = training.bench_folder(r["eval_stage"]) / "summary.json"
            if f.is_file():
                return json.loads(f.read_text())
    return None


def design_lines(cfg: StudyConfig, ablation_rows: list[dict]) -> list[str]:
    """The study design as the README states it (profile, sweeps, ablations, notebook 04)."""
    sw, b = cfg.sweeps, cfg.evaluation.bootstrap
    return [
        f"- Toy arithmetic world; critic `{cfg.models.critic}`, generators {', '.join(g.name for g in cfg.models.generators)}.",
        f"- Data size: nested subsets {list(sweeps.data_sizes(cfg))} (1:1 correct:incorrect) of each critic mode's "
        f"validated set ({', '.join(f'{m} at {[n for n in sweeps.mode_sizes(cfg, m) if n]}' for m in sw.critic_modes)}); "
        f"size 0 = base critic.",
        f"- Model sizes: {', '.join(sw.model_sizes) or '-'} with {sweeps.fixed_size(cfg)} examples each; rounds: {sw.rounds} "
        f"(round r's data from round r-1's first-seed critic, same solution pool).",
        f"- Ablations at {sweeps.ablation_size(cfg)} examples: {', '.join(sorted(set(r['arm'] for r in ablation_rows)))}.",
        f"- SFT seeds {list(sw.seeds)}; {budget_text(cfg)}, lr {cfg.training.learning_rate}, warm-up "
        f"{cfg.training.warmup_ratio:g} of the steps; evaluation on {sw.eval_items or cfg.evaluation.n_items} items per scenario "
        f"and for ProcessBench-format EI-F1, greedy; {b.n_resamples} bootstrap resamples.",
        f"- Notebook 04 (the loop, one SFT seed): "
        f"{str(cfg.training.max_steps) + ' steps' if cfg.training.max_steps > 0 else '%g epochs' % cfg.training.num_train_epochs}"
        f" on the full validated set, "
        f"{cfg.evaluation.n_items} items per set.",
    ]
