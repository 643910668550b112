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
# original) with a 95% CI that covers training noise (spread over SFT seeds, t-interval) *and*
# evaluation noise (item bootstrap from the harness), combined as described in
# `scrit_utils/study_stats.py`. Trends are Spearman's rho over the sweep variable with its p-value.
#
# Everything runs through the loop's stage functions with config overrides; every result is a
# cached stage (`artifacts/sweep_train/…`, `artifacts/sweep_eval/…`), so shared upstream work runs
# once and a rerun only reads metrics.

# %% tags=["parameters"]
profile = "configs/smoke.yaml"  # the study profile (papermill passes another one)
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import time

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config, study_report
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
# ## Tables: mean over seeds with pooled 95% CIs, and trends

# %%
summ = study_report.summarize(rows)
trend_rows = pd.concat([study_report.trends(rows, s) for s in ("data_size", "rounds")], ignore_index=True)
common.save_table(cfg, summ[summ["study"] == "data_size"], "05_data_scaling")
common.save_table(cfg, summ[summ["study"] == "model_size"], "05_model_size")
common.save_table(cfg, summ[summ["study"] == "rounds"], "05_rounds")
common.save_table(cfg, trend_rows, "05_trends")
key = summ[summ["metric"].isin(["cc_mean", "ei_f1_strict"]) & (summ["study"] == "data_size")]
display(Markdown("**Data size (CC-Acc mean, EI-F1 strict)**"), key[["arm", "x", "metric", "mean", "ci_low", "ci_high", "n_seeds", "n_examples", "note"]])
display(Markdown("**Spearman trends**"), trend_rows)

# %% [markdown]
# ## Figures

# %%
fig = study_report.sweep_figure(summ, "data_size", xlabel="self-training examples (symlog)", logx=True)
common.save_figure(cfg, fig, "05_data_scaling")

# %%
ms = summ[summ["study"] == "model_size"].copy()
if not ms.empty:
    ms["arm"] = ms["arm"].str.split(":").str[0].map({"base": "base critic", "scrit": "+ SCRIT"})
    fig = study_report.sweep_figure(ms, "model_size", xlabel="base-model parameters", logx=False)
    common.save_figure(cfg, fig, "05_model_size")

# %%
if sw.rounds > 1:
    fig = study_report.sweep_figure(summ, "rounds", xlabel="round (0 = base critic)")
    common.save_figure(cfg, fig, "05_rounds")

# %% [markdown]
# The points (per seed, with stage directories) are saved in the summary stage; notebook 06 reads
# them for the README. The manifest is written last.

# %%
sweeps.save_points(summary_st, rows)
manifest = summary_st.finish(counts={"points": len(rows), "trained_points": sum(r["train_stage"] is not None for r in rows)},
                             extra={"stage_dirs": sweeps.stage_dirs(rows)})
print(f"05 done in {time.time() - t_start:.0f} s")
manifest["counts"]
