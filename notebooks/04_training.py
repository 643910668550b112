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
# bootstrap over the shared items (`scrit_utils/study_stats.py`) gives its 95% CI and the minimal
# detectable effect (MDE). This notebook trains with one SFT seed, so these intervals cover
# evaluation noise only; notebooks 05-06 add the spread over seeds. `metrics.json` records which
# profile, config hash, git commit and package versions produced it.

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import json

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config, figures, interpret, run, study_report
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
log = json.loads((train_st.dir / "train_log.json").read_text())
curve = [[r["step"], r["loss"]] for r in log if "loss" in r and "step" in r]
print(f"{len(curve)} logged loss values (training.logging_steps = {t.logging_steps})")
fig = figures.loss_figure({f"{len(sft)} examples, lr {t.learning_rate:g}": curve})
if fig is not None:
    _ = common.save_figure(cfg, fig, "04_training_loss")

# %% [markdown]
# ## Base vs trained critic
# The base evaluation is its own cached stage: every sweep point (data size, ablation) with the
# same critic and benchmarks shares it.

# %%
metrics = training.run_eval(cfg)
loop = study_report.loop_items(cfg)  # per-item scores of both critics, checked against metrics.json
b = cfg.evaluation.bootstrap
scores, diffs = study_report.loop_frames(loop, b.n_resamples, b.seed)
table = study_report.loop_table(scores, diffs)
common.save_table(cfg, table, "04_base_vs_trained")
display(table)

# %%
fig = figures.base_vs_trained_figure(scores, diffs)
_ = common.save_figure(cfg, fig, "04_base_vs_trained")

# %% [markdown]
# `metrics.json` (with provenance) lies in the `04_eval_trained` stage directory; a copy with the
# paired differences and this run's stamp goes to `results/runs/<profile>/04_metrics.json`.

# %%
out = config.resolve_path(cfg.run.results_dir) / "runs" / cfg.run.name / "04_metrics.json"
record = {"run": run.run_stamp(cfg), "paired": diffs.to_dict("records"), **metrics}
out.write_text(run.scrub(json.dumps(record, indent=1), run.path_replacements(cfg)) + "\n")
print(f"wrote {out.name}; stage {training.eval_trained_stage(cfg).hash}, computed at git {metrics['provenance']['git_sha']}")

# %% tags=["interpretation"]
display(Markdown(interpret.training_04(diffs, train_st.manifest["counts"], int(diffs["n_items"].max()))))
