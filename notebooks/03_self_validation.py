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
profile = None  # None: configs/toy.yaml when its stage for this notebook is cached, else configs/smoke.yaml
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed results)

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import interpret
from scrit_utils.pipeline import validation

cfg = notebook_env.load(profile, overrides, validation.stage, write_results)
print(f"enabled checks: {validation.enabled_checks(cfg)}")

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
# `rep.counts`: `passed` critiques passed every enabled check; of those, `dropped_*` cannot be training
# targets (no step critique after the reference analysis is cut, or a target that still mentions the
# reference), and `passed_correct` / `passed_incorrect` are the rest by the student solution's label.
# `sft_examples` of them form the balanced set (`sft_correct` : `sft_incorrect` =
# `validation.correct_ratio`, so the smaller class caps the larger); `direct_checks_run` is how many
# critiques check (i) ran on.
#
# ## Check (i): the direct critic on a correction
# The first check (i) of the stage: above `---` the input the critic sees, the problem with the
# critique's *correction* as the student solution and no reference; below it the critic's critique of
# that correction. The critique passes check (i) only if this verdict is "Correct" with first error
# step -1. In the toy study's run (`results/runs/toy/03_self_validation.ipynb`) the correction reaches
# the reference answer 80 through wrong steps (its first step, `7-2=5`, is not the problem's first
# operation, and `13*5=155` is wrong); the direct critic flags step 4 (`13*5=65|155 wrong`), so check
# (i) rejects a correction that check (ii), which compares final answers only, would have kept. It
# misses the wrong first step, though: without a reference it checks the arithmetic of each line, not
# whether the line follows the question.

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
# One example: the input the trained critic sees (no reference) and its target, the validated
# critique without its reference analysis. Stage 04 trains the critic to write the target given the
# input.

# %%
print(rep.examples["sft"] or "the self-training set is empty")

# %% tags=["interpretation"]
display(Markdown(interpret.validation_03(rep.counts)))
