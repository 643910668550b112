# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Scaling: data size, model size, rounds
#
# The paper's Fig. 3 asks three questions, and this notebook asks them in the toy world:
#
# 1. **Data size.** Does the critic get better with more self-training data? SFT on *nested*
#    subsets of the validated set (each smaller set is a prefix of the larger one, 1:1 correct vs
#    incorrect), for the contrastive critic (SCRIT) and for the paper's two baselines: a *direct*
#    critic (no reference while synthesising) and a *bug-injection* critic. Size 0 is the base critic.
# 2. **Model size.** SCRIT applied to several base-model sizes, each generating and validating
#    its own critiques.
# 3. **Multi-round.** Round r's critic regenerates critiques over the same solution pool, is
#    validated by itself and fine-tuned further.
#
# Every point is trained with several SFT seeds and a **fixed step budget**
# (`sweeps.sft_max_steps`), so a larger data set means more distinct examples, not more steps.
# Each point reports CC-Acc (mean of the three scenarios, and each scenario) and EI-F1 (strict and
# original). Every critic is scored on the same items as the base critic, so each comparison is
# **paired**: a bootstrap over the shared items, applied to both critics and every seed, plus the
# spread over SFT seeds (`scrit_utils/study_stats.py`). A trend is the slope of the per-level seed
# means (never the replicated per-seed rows), with the same paired CI and its minimal detectable
# effect (MDE).
#
# Everything runs through the loop's stage functions with config overrides; every result is a
# cached stage (`artifacts/sweep_train/…`, `artifacts/sweep_eval/…`), so shared upstream work runs
# once and a rerun only reads metrics.

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import time

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config, figures, interpret, study_readme, study_report
from scrit_utils.pipeline import common, sweeps

t_start = time.time()
cfg = config.load(profile, overrides)
common.setup_torch(cfg)
summary_st = sweeps.scaling_stage(cfg)  # finished = this notebook's results exist
summary_st.start_clock()
sw = cfg.sweeps
print(f"profile {cfg.run.name}: stage {summary_st.name}/{summary_st.hash} ({'cached' if summary_st.done else 'to compute'})")

# %% [markdown]
# ## Sweep design and budget
# The counts below are computed from the profile. The time estimate uses the calibration measured
# on this 2-core machine (TOY_WORLD_CALIBRATION.md): about 0.26 s per SFT step (batch 32, 0.5M
# parameters) and about 6 s per 600 evaluated critiques; it is a plan, the measured times are in
# `results/timing.md` at the end of the study.

# %%
sizes = sweeps.data_sizes(cfg)
n_pos = len([s for s in sizes if s > 0])
n_train = (n_pos * len(sw.critic_modes) + len(sw.model_sizes) + max(sw.rounds - 1, 0)) * len(sw.seeds)
evals_per_point = (len(cfg.evaluation.scenarios) + 1) * (sw.eval_items or cfg.evaluation.n_items or 600)
batch = sw.sft_batch_size or cfg.training.per_device_train_batch_size
est = n_train * (0.26 * batch / 32 * sw.sft_max_steps + 6.0 * evals_per_point / 600)
design = pd.DataFrame([
    {"item": "data sizes", "value": str(sizes)},
    {"item": "critic modes", "value": ", ".join(sw.critic_modes)},
    {"item": "SFT seeds per point", "value": str(list(sw.seeds))},
    {"item": "SFT step budget (fixed)", "value": f"{sw.sft_max_steps} steps x batch {batch} = {sw.sft_max_steps * batch} example passes"},
    {"item": "eval items per scenario / ProcessBench", "value": str(sw.eval_items or cfg.evaluation.n_items)},
    {"item": "model sizes", "value": ", ".join(sw.model_sizes) or "-"},
    {"item": "examples for model-size / round points", "value": str(sweeps.fixed_size(cfg))},
    {"item": "rounds", "value": str(sw.rounds)},
    {"item": "pair cap per regenerated arm", "value": str(sw.max_pairs)},
    {"item": "SFT runs (upper bound, before cache sharing)", "value": str(n_train)},
    {"item": "planned SFT + eval time (calibration)", "value": f"{est / 60:.1f} min"},
])
display(design)

# %% [markdown]
# ## Data for every arm, then train and evaluate every point
# `scaling_jobs` runs (or reuses) stages 01–03 for each critic mode and each base-model size, then
# lists the points. The base critic (size 0) is evaluated once per evaluation config.

# %%
jobs = sweeps.scaling_jobs(cfg)
print(f"{len(jobs)} points ({sum(j.cfg_train is not None for j in jobs)} need a fine-tuned critic)")
rows = sweeps.run_jobs(jobs, "05 sweep points")

# %% [markdown]
# ## Multi-round
# Round 1 is SCRIT at the fixed size; round r's data come from round r-1's critic (its first seed),
# and round r fine-tunes that critic further. All rounds are scored on the base critic's items.

# %%
if sw.rounds > 1:
    rows += sweeps.run_jobs(sweeps.round_jobs(cfg), "05 rounds")

# %% [markdown]
# ## Tables: seed means with 95% CIs, gains over the base (paired), trends
# Wide tables: one row per critic, one column per sweep level, `mean [95% CI]`. The full long
# tables (every metric, SEs, seeds, items) are saved under `results/tables/<profile>/05_*`.

# %%
b = cfg.evaluation.bootstrap
summ = study_report.summarize(rows, b.n_resamples, b.seed)
gains = study_report.gains(rows, b.n_resamples, b.seed)
trend_rows = study_report.trends(rows, b.n_resamples, b.seed)
common.save_table(cfg, summ[summ["study"] == "data_size"], "05_data_scaling")
common.save_table(cfg, summ[summ["study"] == "model_size"], "05_model_size")
common.save_table(cfg, summ[summ["study"] == "rounds"], "05_rounds")
common.save_table(cfg, gains[gains["study"] != "ablation"], "05_gains")
common.save_table(cfg, trend_rows, "05_trends")
for m in figures.KEY:
    display(Markdown(f"**Data size: {figures.METRIC_LABELS[m]}**"), study_readme.wide(summ, "data_size", m),
            Markdown(f"**Gain over the base critic (paired): {figures.METRIC_LABELS[m]}**"),
            study_readme.wide(gains, "data_size", m, value="delta"))
display(Markdown("**Trends** (slope per level with paired 95% CI and MDE; Spearman rho of the level means, exact p)"),
        trend_rows[trend_rows["metric"].isin(figures.KEY)].drop(columns=["unit"]).round(3))

# %% [markdown]
# ## Figures
# Scores per data size (shared y axis), SCRIT's gain over the base per data size and per model size
# with the paper's gains on the same normalised sweep axis, and the model-size and round curves with
# the paper's curve shifted to start at our first SCRIT point.

# %%
fig = figures.scores_figure(summ, "data_size", xlabel="self-training examples")
_ = common.save_figure(cfg, fig, "05_data_scaling")

# %%
fig = figures.gain_figure(gains)
_ = common.save_figure(cfg, fig, "05_gain_over_base")

# %%
if (summ["study"] == "model_size").any():
    fig = figures.shape_figure(summ, "model_size")
    _ = common.save_figure(cfg, fig, "05_model_size")

# %%
if sw.rounds > 1:
    fig = figures.shape_figure(summ, "rounds")
    _ = common.save_figure(cfg, fig, "05_rounds")

# %% [markdown]
# Training loss of the SCRIT data-size points (mean over seeds per step), when the profile logs
# often enough (`training.logging_steps` below the step budget).

# %%
fig = figures.loss_figure(study_report.loss_curves(rows), "SFT loss of the SCRIT points (mean over seeds)")
if fig is not None:
    _ = common.save_figure(cfg, fig, "05_training_loss")
else:
    print(f"no loss curve: fewer than 2 logged losses per point (training.logging_steps = "
          f"{cfg.training.logging_steps}, sweeps.sft_max_steps = {sw.sft_max_steps})")

# %% [markdown]
# The points (per seed, with stage directories) are saved in the summary stage; notebook 06 reads
# them for the README. The manifest is written last.

# %%
sweeps.save_points(summary_st, rows)
manifest = summary_st.finish(counts={"points": len(rows), "trained_points": sum(r["train_stage"] is not None for r in rows)},
                             extra={"stage_dirs": sweeps.stage_dirs(rows)})
print(f"05 done in {time.time() - t_start:.0f} s")
manifest["counts"]

# %% tags=["interpretation"]
display(Markdown(interpret.scaling_05(gains, trend_rows)))
