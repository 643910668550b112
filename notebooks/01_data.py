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
# # 01 · Problems and solutions
#
# SCRIT starts from problems whose final answer is known and from solutions written by
# *several* generator models. Each solution is graded against the reference answer, and only
# problems with at least one correct **and** one incorrect solution are kept: those are the
# problems where a critic has something to tell apart. Each generator's share is capped so no
# single model dominates.
#
# Everything this notebook computes lands in `artifacts/01_data/<hash>/` (the hash covers the
# profile keys this stage reads); a finished stage is reused, an interrupted one resumes.

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
from IPython.display import Markdown, display

from scrit_utils.core import config
from scrit_utils.study import interpret
from scrit_utils.pipeline import data

cfg = config.load(profile, overrides)
print(f"profile {cfg.run.name}: stage {data.STAGE}/{data.stage(cfg).hash} "
      f"({'cached' if data.stage(cfg).done else 'to compute'})")

# %% [markdown]
# ## The stage
# `data.run` does the whole stage, or reuses it when it has finished:
#
# 1. **problems with reference answers**: in the toy world multi-step integer calculations with an
#    exact reference solution; with real data the sources listed in the profile;
# 2. **solutions from several generators**: each samples solutions with the solve prompt; every
#    request has its own seed derived from (profile seed, stage, generator, problem, sample), so a
#    resumed run writes the same text; each solution is graded against the reference answer as it
#    is written;
# 3. **keep problems with mixed labels, cap each generator**;
# 4. **statistics** per generator and per difficulty (tables and figure saved under
#    `results/tables/<profile>/01_*` and `results/figures/<profile>/01_solutions.*`).
#
# The manifest is written last; it marks the stage as finished.

# %%
rep = data.run(cfg)
rep.counts

# %% [markdown]
# ## Problems with reference answers

# %%
display(rep.examples["problems"])
print(rep.examples["reference_solution"])

# %% [markdown]
# ## Solutions from several generators

# %%
display(rep.examples["solutions"])
print(rep.examples["kept"])

# %% [markdown]
# ## Statistics
# Per generator: solve accuracy and what was kept. Per difficulty: the paper measures a
# problem's difficulty by how many *different* final answers the generators give.

# %%
display(Markdown("**Per generator**"), rep.tables["01_per_generator"],
        Markdown("**Per number of distinct answers**"), rep.tables["01_per_difficulty"])
if "01_per_steps" in rep.tables:  # toy world: a second difficulty axis, the number of steps
    display(Markdown("**Per number of steps**"), rep.tables["01_per_steps"])
display(rep.figures["01_solutions"])

# %% tags=["interpretation"]
display(Markdown(interpret.data_01(rep.counts, rep.tables["01_per_generator"])))
