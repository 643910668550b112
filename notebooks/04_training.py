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
# Every number comes with a bootstrap 95% confidence interval; `metrics.json` records which
# profile, config hash, git commit and package versions produced it.

# %% tags=["parameters"]
profile = "configs/smoke.yaml"  # the study profile (papermill passes another one)
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import json

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config
from scrit_utils.pipeline import common, training, validation

cfg = config.load(profile, overrides)
common.setup_torch(cfg)
for st in training.stages(cfg):
    print(f"stage {st.name}/{st.hash}: {'cached' if st.done else 'to compute'}")

# %% [markdown]
# ## The self-training set

# %%
train_st = training.train_stage(cfg)
sft = validation.load_sft(train_st.up(validation.STAGE))
print(f"{len(sft)} examples, {sum(e.label_correct for e in sft)} critiques of correct solutions")
pd.DataFrame([{"label_correct": e.label_correct, "input": e.prompt[-1]["content"][:60], "target": e.completion[:80]}
              for e in sft[:4]])

# %% [markdown]
# ## Fine-tuning (TRL `SFTTrainer`)
# Mode: full fine-tuning unless `training.use_lora` is true.

# %%
t = cfg.training
print(f"{'LoRA r=' + str(t.lora.r) if t.use_lora else 'full fine-tuning'}, lr {t.learning_rate}, "
      f"{'max_steps ' + str(t.max_steps) if t.max_steps > 0 else str(t.num_train_epochs) + ' epochs'}, batch {t.per_device_train_batch_size}")
train_st = training.run_train(cfg)
train_st.manifest["counts"]

# %%
fig = training.loss_figure(train_st)
common.save_figure(cfg, fig, "04_training_loss")

# %% [markdown]
# ## Base vs trained critic
# The base evaluation is its own cached stage: every sweep point (data size, ablation) with the
# same critic and benchmarks shares it.

# %%
metrics = training.run_eval(cfg)
table = training.metrics_table(metrics)
common.save_table(cfg, table, "04_base_vs_trained", floatfmt=".1f")
display(table)

# %%
fig = training.metrics_figure(table)
common.save_figure(cfg, fig, "04_base_vs_trained")

# %% [markdown]
# `metrics.json` (with provenance) lies in the `04_eval_trained` stage directory:

# %%
eval_st = training.eval_trained_stage(cfg)
print(eval_st.dir / "metrics.json")
json.dumps(metrics["provenance"], indent=1)[:800]
