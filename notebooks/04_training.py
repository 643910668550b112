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
# # 04 · Self-training and evaluation
#
# The critic is fine-tuned on its own validated critiques (from 03): input = problem + student
# solution with the *direct* prompt (no reference), target = step critique + conclusion +
# correction. The loss is computed on the target only. The profile chooses full fine-tuning or
# LoRA, and the fine-tuned critic is saved as an ordinary Hugging Face model directory.
#
# Then base and trained critic are evaluated the way the paper does, with greedy decoding:
#
# - **CC-Acc** (critique-correction accuracy: does the critique end with the right boxed answer?)
#   on deliberately incorrect solutions (`wrong`), a balanced mix (`mix`) and the critic's own
#   greedy solutions (`own`);
# - **EI-F1** (error identification, ProcessBench F1) in the *original* and SCRIT's *strict* form.
#
# Both critics are scored on the same items, so their difference is a *paired* comparison: a
# bootstrap over the shared items (`scrit_utils/study/stats.py`) gives its 95% CI and the minimal
# detectable effect (MDE). This notebook trains with one SFT seed, so these intervals cover
# evaluation noise only; notebooks 05-06 add the spread over seeds. `metrics.json` records which
# profile, config hash, git commit and package versions produced it.

# %% tags=["parameters"]
profile = None  # None: configs/toy.yaml when its stages for this notebook are cached, else configs/smoke.yaml
overrides = []  # profile overrides: a list of "dotted.key=value" strings, as with scrit run --set
write_results = False  # interactive runs write to results/interactive/; True: to results/ (the committed results)

# %%
from IPython.display import Markdown, display

from scrit_utils.core import notebook_env
from scrit_utils.study import interpret
from scrit_utils.pipeline import training
from scrit_utils.study import loop

cfg = notebook_env.load(profile, overrides, training.stages, write_results)

# %% [markdown]
# ## The stage
# `loop.run` runs stage 04, which fine-tunes the critic with TRL's `SFTTrainer` (full fine-tuning unless
# `training.use_lora` is true), then evaluates the base and the trained critic. The base
# evaluation is its own cached stage: every sweep point (data size, ablation) with the same critic
# and benchmarks shares it.

# %%
rep = loop.run(cfg)
rep.counts

# %% [markdown]
# ## The self-training set and the fine-tuning
# The recipe in one line, the first four examples of the set (input cut to 60 characters, target to
# 80; notebook 03 prints one in full) and the training loss per logged step: it should fall and level
# off; a loss that stays flat means the critic did not learn from the set.

# %%
print(rep.examples["recipe"])
display(rep.examples["sft"])
print(rep.examples["loss"])
if "04_training_loss" in rep.figures:
    display(rep.figures["04_training_loss"])

# %% [markdown]
# ## Base vs trained critic
# Per-item scores of both critics (re-scored from the saved critiques and checked against
# `metrics.json`), the paired difference with its bootstrap 95% CI and the MDE. Each row is a metric:
# `items` is how many items it is computed over, `base` and `trained` the two critics' scores with
# their 95% CIs, `trained - base (paired)` the difference on the same items, and `p` its bootstrap
# p-value. A difference whose CI excludes 0 is a measured change. The MDE is the smallest true
# difference these items detect with 80% power (two-sided, 5%): a true effect below it is easily
# missed, so a CI around 0 with an MDE above the effect you look for says "cannot tell", not "no effect".

# %%
display(rep.tables["04_base_vs_trained"], rep.figures["04_base_vs_trained"])

# %% [markdown]
# `metrics.json` (with provenance) lies in the `04_eval_trained` stage directory; a copy with the
# paired differences and this run's stamp goes to `results/runs/<profile>/04_metrics.json`.

# %%
print(rep.examples["metrics_file"])

# %% tags=["interpretation"]
diffs = rep.examples["diffs"]
display(Markdown(interpret.training_04(diffs, rep.counts, int(diffs["n_items"].max()))))
