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
# # 03 · Self-validation and the self-training set
#
# Not every critique from 02 is right. SCRIT keeps a critique only if its **correction** holds
# up. This project applies three checks, each switchable in the profile (`validation.*`):
#
# 1. **direct critic approves** — the same model, *without* a reference, critiques the
#    correction and must say "Correct" with first error step -1 (the check the paper states);
# 2. **answer matches reference** — the correction's final answer equals the reference answer;
# 3. **verdict matches label** — the conclusion agrees with the student solution's known label.
#
# The critiques that pass become training examples in the *direct* format: the input is the
# problem and the student solution with **no reference**, the target is the critique without
# its reference analysis. Critiques of correct and incorrect solutions are balanced (1:1 by
# default) — without critiques of correct solutions a critic learns to always find an error.

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
from IPython.display import Markdown, display

from scrit_utils.core import config
from scrit_utils.study import interpret
from scrit_utils.pipeline import validation

cfg = config.load(profile, overrides)
st = validation.stage(cfg)
print(f"stage {st.name}/{st.hash} ({'cached' if st.done else 'to compute'}); enabled checks: {validation.enabled_checks(cfg)}")

# %% [markdown]
# ## The stage
# `validation.run` runs check (i) on the critiques' corrections (resumable), computes all checks
# and builds the balanced self-training set (or reuses the finished stage). Check (i) costs one
# generation per critique; with `validation.direct_check_scope: gated` (the core toy profile) it
# runs only on the critiques that passed checks (ii) and (iii): a critique must pass every enabled
# check, so the kept set is the same. Then check (i)'s pass rate below is over the critiques it ran
# on, and the `direct_check_ran` column gives their share.

# %%
rep = validation.run(cfg)
rep.counts

# %% [markdown]
# ## Check (i): the direct critic on a correction

# %%
print(rep.examples["direct_check"] or "check (i) is switched off (validation.direct_critic_approves)")

# %% [markdown]
# ## All checks and pass rates
# Checks (ii) and (iii) are cheap and always reported, also when switched off (marked "off" in
# the figure). Difficulty is the number of distinct answers the generators gave (paper Fig. 2).

# %%
display(Markdown("**Overall**"), rep.tables["03_pass_rates"],
        Markdown("**By difficulty**"), rep.tables["03_pass_rates_by_difficulty"],
        Markdown("**By generator**"), rep.tables["03_pass_rates_by_generator"], rep.figures["03_self_validation"])

# %% [markdown]
# ## Self-training set
# One example: the input the trained critic sees (no reference) and its target.

# %%
print(rep.examples["sft"] or "the self-training set is empty")

# %% tags=["interpretation"]
display(Markdown(interpret.validation_03(rep.counts)))
