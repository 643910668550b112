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
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
from IPython.display import Markdown, display

from scrit_utils.core import config
from scrit_utils.study import interpret
from scrit_utils.pipeline import training
from scrit_utils.study import loop

cfg = config.load(profile, overrides)
for st in training.stages(cfg):
    print(f"stage {st.name}/{st.hash}: {'cached' if st.done else 'to compute'}")

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

# %%
print(rep.examples["recipe"])
display(rep.examples["sft"])
print(rep.examples["loss"])
if "04_training_loss" in rep.figures:
    display(rep.figures["04_training_loss"])

# %% [markdown]
# ## Base vs trained critic
# Per-item scores of both critics (re-scored from the saved critiques and checked against
# `metrics.json`), the paired difference with its bootstrap 95% CI and the MDE.

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
