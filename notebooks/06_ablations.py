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
# # 06 · Ablations, and our findings next to the paper's
#
# The paper's Table 4 analogues, all at one fixed data size (`ablations.data_size`) and with the
# same SFT seeds and step budget as notebook 05. Each variant changes *which* validated critiques
# become training examples; all of them are selected from the contrastive arm's stage-03 output,
# which records every check's outcome for every critique, so no variant regenerates anything:
#
# | variant | what changes |
# |---|---|
# | no_validation | every parsed critique is kept (all three checks off) |
# | only_direct_critic / only_answer / only_verdict | one of the three checks alone |
# | easiest_family | only problems with at most `ablations.easy_family_max_steps` operations (the toy analogue of "GSM8K + MATH only": the arithmetic world's families are its operation counts) |
# | easier_first / harder_first | examples taken from the problems with the fewest / most distinct generator answers first (the paper's difficulty measure) |
# | single_generator(g) | only critiques of solutions written by generator g |
# | ratio_0.75 / ratio_0.25 | good:bad = 0.75:0.25 / 0.25:0.75 instead of 1:1 |
#
# Every variant is compared with the baseline on the same items (paired bootstrap + seed spread).
# At the end, `results/README.md` opens with the pre-registered claims (study v3; computed from
# notebook 05's points over every base build, Holm-adjusted), then the arms at matched example
# counts, then puts each statement of the paper next to our measurement on one build, with its 95%
# CI, the minimal detectable effect and a verdict computed from them: descriptive, not claims.
# `results/timing.md` is written from the stage manifests.

# %% tags=["parameters"]
profile = None  # None: configs/toy-v3.yaml when its ablations are cached, else configs/smoke.yaml (minutes)
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # False: README and timing go to results/interactive/; True: rewrite results/README.md etc.

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import figures, interpret, claims as study_report
from scrit_utils.study import studies, sweeps

cfg = notebook_env.load(profile, overrides, sweeps.ablation_stage, write_results)
print(f"ablation data size {sweeps.ablation_size(cfg)}, seeds {list(cfg.sweeps.seeds)}, SFT {studies.budget_text(cfg)}")

# %% [markdown]
# ## Train and evaluate every variant
# The baseline is the same training set as the contrastive point of that size in notebook 05, so
# it comes from the cache. Then the pre-registered claims and the arms table are computed from
# notebook 05's points, every point of 05 and 06 is set against the paper's statements
# (`results/README.md`), and the timing report is written from the stage
# manifests; the summary stage is finished first, so its own wall time is part of that report.

# %%
rep = studies.ablations(cfg)
rep.counts

# %% [markdown]
# The training set each variant got: `examples` and how many of them are critiques of correct
# solutions (`correct`); `note` says why a variant got fewer examples than asked for. The profile's
# `ablations.variants` lists the variants run (the toy study: baseline and no_validation; the others
# run in `configs/toy-full.yaml`, whose results are `results/README.toy-full.md`).

# %%
display(Markdown("**Training-set size per variant** (fewer than asked = not enough validated critiques)"),
        rep.tables["06_ablation_sizes"])

# %% [markdown]
# ## Each variant minus the baseline (paired over items and seeds)
# One table per metric: the variant's score minus the baseline's on the same items, mean over SFT
# seeds with its 95% CI, at the ablation data size (the column). A CI that includes 0 means this
# design cannot tell the variant from the baseline.

# %%
for m, gains in rep.examples["wide"]:
    display(Markdown(f"**{figures.METRIC_LABELS[m]}: variant minus baseline**"), gains)
display(rep.figures["06_ablations"])

# %% [markdown]
# ## The paper's statements next to ours (descriptive)
# Notebook 05's points are read from its summary stage (it must have run). Notebook 04's loop is a
# demonstration of the pipeline, not a claim: it would re-measure 05's SCRIT-vs-base on the same
# items, so it is not counted here. The study's claims are the pre-registered ones (notebook 05,
# the README's first section); what follows describes one build. Each row gives the paper's effect,
# ours with its paired 95% CI, the minimal detectable effect (MDE) and the verdict: *inconclusive*
# where the MDE is above the paper's effect. `paper` is the paper's effect in the same unit (points,
# points per level, points per doubling), `ours [95% CI]` our paired estimate. Claims this profile
# does not measure (e.g. rounds with `sweeps.rounds: 1`, ablation variants not in
# `ablations.variants`) are listed as not measured. The bottom line below the table is the one that
# opens `results/README.md` (`sweeps.readme` under `results/interactive/` for an interactive run).

# %%
display(rep.examples["claims"], Markdown(rep.examples["bottom_line"]))
print(rep.examples["done"])

# %% tags=["interpretation"]
comp = rep.examples["comparison"]
display(Markdown(interpret.ablations_06(comp, study_report.verdict_counts(comp))))
