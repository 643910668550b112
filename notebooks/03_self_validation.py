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

from scrit_utils import config
from scrit_utils.pipeline import common, validation

cfg = config.load(profile, overrides)
common.setup_torch(cfg)
st = validation.stage(cfg)
print(f"stage {st.name}/{st.hash} ({'cached' if st.done else 'to compute'}); enabled checks: {validation.enabled_checks(cfg)}")

# %%
critiques, problems, solutions, distinct = validation.inputs(st)
print(f"{len(critiques)} critiques to validate")

# %% [markdown]
# ## Check (i): the direct critic on each correction

# %%
direct = (validation.direct_checks(cfg, st, critiques, problems, solutions)
          if cfg.validation.direct_critic_approves else None)
if direct:
    example = next(iter(direct.values()))
    print(example.prompt, "\n---\n", example.text)

# %% [markdown]
# ## All checks and pass rates
# Checks (ii) and (iii) are cheap and always reported, also when switched off (marked "off" in
# the figure). Difficulty is the number of distinct answers the generators gave (paper Fig. 2).

# %%
results = validation.validate(cfg, critiques, problems, direct)
overall, per_diff, per_gen = validation.save_outputs(cfg, results, distinct)
display(Markdown("**Overall**"), overall, Markdown("**By difficulty**"), per_diff, Markdown("**By generator**"), per_gen)

# %% [markdown]
# ## Self-training set

# %%
sft, info = validation.build_sft(cfg, critiques, results, problems, solutions)
print(info)
if sft:
    ex = sft[0]
    print("[input]\n" + ex.prompt[-1]["content"] + "\n\n[target]\n" + ex.completion)

# %%
manifest = validation.finish(st, results, sft, info)
manifest["counts"]

# %% tags=["interpretation"]
from scrit_utils import interpret

display(Markdown(interpret.validation_03(manifest["counts"])))
