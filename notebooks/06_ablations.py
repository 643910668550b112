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
# At the end, `results/README.md` puts every claim of the paper next to our measurement, with a
# verdict computed from the CIs, and `results/timing.md` is written from the stage manifests.

# %% tags=["parameters"]
profile = "configs/smoke.yaml"  # the study profile (papermill passes another one)
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import time

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config, study_report
from scrit_utils.pipeline import common, sweeps

t_start = time.time()
cfg = config.load(profile, overrides)
common.setup_torch(cfg)
summary_st = sweeps.ablation_stage(cfg)
summary_st.start_clock()
print(f"stage {summary_st.name}/{summary_st.hash}; ablation data size {sweeps.ablation_size(cfg)}, "
      f"seeds {list(cfg.sweeps.seeds)}, {cfg.sweeps.sft_max_steps} SFT steps")

# %% [markdown]
# ## Train and evaluate every variant
# The baseline is the same training set as the contrastive point of that size in notebook 05, so
# it comes from the cache.

# %%
jobs = sweeps.ablation_jobs(cfg)
sizes = pd.DataFrame([{"variant": j.arm, "examples": len(j.examples), "correct": sum(e.label_correct for e in j.examples),
                       "note": j.note} for j in jobs if j.seed == cfg.sweeps.seeds[0]])
common.save_table(cfg, sizes, "06_ablation_sizes")
display(Markdown("**Training-set size per variant** (fewer than asked = not enough validated critiques)"), sizes)
rows = sweeps.run_jobs(jobs, "06 ablation points")

# %% [markdown]
# ## Table and figure (mean over seeds, pooled 95% CI)

# %%
summ = study_report.summarize(rows)
common.save_table(cfg, summ, "06_ablations")
wide = summ.pivot_table(index="arm", columns="metric", values="mean").reset_index()
display(wide)

# %%
fig = study_report.ablation_figure(summ)
common.save_figure(cfg, fig, "06_ablations")

# %% [markdown]
# ## Our findings vs the paper
# Notebook 05's points are read from its summary stage (it must have run). Each comparison row
# gives the paper's effect, ours with its 95% CI (or Spearman p for trends) and the verdict.

# %%
scal_st = sweeps.scaling_stage(cfg)
if not scal_st.done:
    raise RuntimeError(f"notebook 05 has not finished for this profile ({scal_st.dir}); run it first")
scaling_rows = sweeps.load_points(scal_st)
all_rows = scaling_rows + rows
comp = study_report.comparisons(all_rows)
common.save_table(cfg, comp, "06_paper_comparison")
display(comp)

# %%
summ_all = study_report.summarize(all_rows)
trend_rows = pd.concat([study_report.trends(all_rows, s) for s in ("data_size", "rounds")], ignore_index=True)
sw = cfg.sweeps
design = "\n".join([
    f"- Toy arithmetic world; critic `{cfg.models.critic}`, generators {', '.join(g.name for g in cfg.models.generators)}.",
    f"- Data size: nested subsets {list(sweeps.data_sizes(cfg))} (1:1 correct:incorrect) of each critic mode's "
    f"validated set ({', '.join(sw.critic_modes)}); size 0 = base critic.",
    f"- Model sizes: {', '.join(sw.model_sizes) or '-'} with {sweeps.fixed_size(cfg)} examples each; rounds: {sw.rounds} "
    f"(round r's data from round r-1's first-seed critic, same solution pool).",
    f"- Ablations at {sweeps.ablation_size(cfg)} examples: {', '.join(sorted(set(r['arm'] for r in rows)))}.",
    f"- SFT seeds {list(sw.seeds)}; fixed budget {sw.sft_max_steps} steps x batch "
    f"{sw.sft_batch_size or cfg.training.per_device_train_batch_size} for every point, "
    f"lr {cfg.training.learning_rate}; evaluation on {sw.eval_items or cfg.evaluation.n_items} items per scenario "
    "and for ProcessBench-format EI-F1, greedy.",
    "- 95% CI per point: seed mean +- sqrt((t_{k-1} * sd_seeds / sqrt(k))^2 + (1.96 * se_items)^2), se_items from the "
    "harness's item bootstrap (scrit_utils/study_stats.py); differences combine the two CIs in quadrature.",
])
readme = study_report.write_readme(cfg, comp, summ_all, trend_rows, design)
print(readme.read_text()[:3000])

# %% [markdown]
# ## Timing
# The summary stage is finished first, so its own wall time is part of the timing report.

# %%
sweeps.save_points(summary_st, rows)
manifest = summary_st.finish(counts={"points": len(rows)}, extra={"stage_dirs": sweeps.stage_dirs(rows)})
timing = study_report.write_timing(
    cfg, [*sweeps.stage_dirs(all_rows), str(scal_st.dir), str(summary_st.dir)])
print(timing.read_text())
print(f"06 done in {time.time() - t_start:.0f} s")
