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
# Every point is trained with several SFT seeds. The SFT budget is the profile's: a fixed number of epochs
# (`training.num_train_epochs` with `sweeps.sft_max_steps` <= 0, the paper's recipe: steps grow with data)
# or a fixed step budget (`sweeps.sft_max_steps` > 0: more data means more distinct examples, not more steps).
# Each point reports CC-Acc (mean of the three scenarios, and each scenario) and EI-F1 (strict and
# original). Every critic is scored on the same items as the base critic, so each comparison is
# **paired**: a bootstrap over the shared items, applied to both critics and every seed, plus the
# spread over SFT seeds (`scrit_utils/study/stats.py`). A trend is the slope of the per-level seed
# means (never the replicated per-seed rows), with the same paired CI and its minimal detectable
# effect (MDE).
#
# Everything runs through the loop's stage functions with config overrides; every result is a
# cached stage (`artifacts/sweep_train/…`, `artifacts/sweep_eval/…`), so shared upstream work runs
# once and a rerun only reads metrics.

# %% tags=["parameters"]
profile = None  # None: configs/toy.yaml when its sweep is cached, else configs/smoke.yaml (minutes, not ~28 min)
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed results)

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import figures, interpret
from scrit_utils.study import studies, sweeps

cfg = notebook_env.load(profile, overrides, sweeps.scaling_stage, write_results)  # finished = the sweep's results exist

# %% [markdown]
# ## Data for every arm, then train and evaluate every point
# `studies.scaling` runs (or reuses) stages 01–03 for each critic mode and each base-model size,
# lists the points and trains and evaluates each one; the base critic (size 0) is evaluated once
# per evaluation config. Multi-round: round 1 is SCRIT at the fixed size; round r's data come from
# round r-1's critic (its first seed), and round r fine-tunes that critic further. All rounds are
# scored on the base critic's items. The points (per seed, with stage directories) are saved in
# the summary stage, whose manifest is written last; notebook 06 reads them for the README.

# %%
rep = studies.scaling(cfg)
rep.counts

# %% [markdown]
# `rep.counts`: `points` are the measured rows (one per study, arm, size and SFT seed, the base
# critic's included); `trained_points` the rows that needed an SFT run. The "data for ..." lines above
# name the arms whose stages 01-03 were run or read.
#
# ## Sweep design and budget
# The counts below are computed from the profile. The planned time uses measurements made on the
# study's 2-core machine in the dev pilot (2026-12-03; `scrit_utils/study/studies.py`,
# `design_table`): about 0.45 s per SFT step (batch 32, toy-409k) and about 6 s per 600 evaluated
# critiques; generating the arms' data is not included. It is a plan: the measured times are in
# `results/timing.md` at the end of the study.

# %%
rep.examples["design"]

# %% [markdown]
# ## The pre-registered claims (study v3)
# The claims registered in `results/pilot/PREREGISTRATION_v3.md` (`scrit_utils/study/preregistration.py`),
# each on one primary metric, CC-Acc on deliberately incorrect solutions, with intervals over base builds
# (`sweeps.builds`), SFT seeds and items, Holm-adjusted across the tested claims. A claim whose arms were not
# run in this profile is "not measured"; one measured on a single base build is "not claimable": its interval
# leaves out the build variance. Estimates are points of CC-Acc (the share claim: a fraction).

# %%
display(rep.examples["preregistered"])
for line in rep.examples["preregistered_notes"]:
    print(line)
if rep.examples["build_note"]:
    print(rep.examples["build_note"])

# %% [markdown]
# ## Tables: seed means with 95% CIs, gains over the base (paired), trends
# Wide tables: one row per critic, one column per number of self-training examples, `mean [95% CI]`;
# an empty cell is a size that arm was not trained at. The full long tables (every metric, SEs,
# seeds, items) are saved under `results/tables/<profile>/05_*`.
#
# The data sizes are the profile's `sweeps.data_sizes` (toy study: 0, 64, 128, 256, 512, 1024) for
# SCRIT and `sweeps.baseline_data_sizes` (128 and 1024) for the two baselines. An arm with fewer
# validated critiques than a size asks for trains on all it has, and the column shows the size it
# really got: in the toy study the direct critic's 1024 became 224.
#
# **Trends.** The data-size slope is in points per *level*, the levels being the sizes measured for
# that arm in increasing order (0 = the base critic, then 1, 2, ...). For SCRIT the first level adds
# 64 examples to none and each later level doubles the data; for the baselines (0, 128, 1024) the
# second level spans three doublings, so their per-level slopes are not on SCRIT's scale: compare the
# arms through the paired gains at the same size (the gain tables), not through these slopes. (The
# `unit` column's "0 = base, then each doubling" holds from level 1 on, and only for SCRIT's sizes.)
# The model-size slope is per doubling of parameters (OLS on log2 parameters; the four toy sizes span
# 66k to 709k, about 3.4 doublings). `levels` is the number of points in each trend; Spearman's rho
# is computed over the level means, and with 3-6 levels its exact p-value can hardly reach 0.05.

# %%
for m, scores, gains in rep.examples["wide"]:
    display(Markdown(f"**Data size: {figures.METRIC_LABELS[m]}**"), scores,
            Markdown(f"**Gain over the base critic (paired): {figures.METRIC_LABELS[m]}**"), gains)
display(Markdown("**Trends** (slope per level with paired 95% CI and MDE; Spearman rho of the level means, exact p)"),
        rep.examples["trends"])

# %% [markdown]
# ## Figures
# Scores per data size (shared y axis), SCRIT's gain over the base per data size and per model size
# with the paper's gains on the same normalised sweep axis, and the model-size and round curves with
# the paper's curve shifted to start at our first SCRIT point. Last, the training loss of the SCRIT
# data-size points (mean over seeds per step), when the profile logs often enough
# (`training.logging_steps` below the step budget).

# %%
for fig in rep.figures.values():
    display(fig)
if "no_loss" in rep.examples:
    print(rep.examples["no_loss"])
print(rep.examples["done"])  # the notebook's wall time (the whole sweep when it was computed, seconds when cached)

# %% tags=["interpretation"]
display(Markdown(interpret.scaling_05(rep.examples["gains"], rep.examples["trend_rows"])))
