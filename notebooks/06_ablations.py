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
# At the end, `results/README.md` opens with the bottom line and puts every claim of the paper
# (notebook 04's included) next to our measurement, with its 95% CI, the minimal detectable effect
# and a verdict computed from them; `results/timing.md` is written from the stage manifests.

# %% tags=["parameters"]
profile = "configs/toy.yaml"  # the study profile: an interactive run reads the study's cached stages
overrides = []  # optional profile overrides: a list of strings, as with scrit run --set

# %%
import time

import pandas as pd
from IPython.display import Markdown, display

from scrit_utils import config, figures, interpret, study_readme, study_report
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
# ## Each variant minus the baseline (paired over items and seeds)

# %%
b = cfg.evaluation.bootstrap
summ = study_report.summarize(rows, b.n_resamples, b.seed)
gains = study_report.gains(rows, b.n_resamples, b.seed)
common.save_table(cfg, summ, "06_ablations")
common.save_table(cfg, gains, "06_ablation_gains")
for m in figures.KEY:
    display(Markdown(f"**{figures.METRIC_LABELS[m]}: variant minus baseline**"), study_readme.wide(gains, "ablation", m, value="delta"))

# %%
fig = figures.ablation_figure(gains)
_ = common.save_figure(cfg, fig, "06_ablations")

# %% [markdown]
# ## Our findings vs the paper
# Notebook 05's points are read from its summary stage (it must have run), notebook 04's critics
# from its evaluation stages (when they ran in this profile). Each claim gives the paper's effect,
# ours with its paired 95% CI, the minimal detectable effect (MDE) and the verdict: *inconclusive*
# where the MDE is above the paper's effect.

# %%
scal_st = sweeps.scaling_stage(cfg)
if not scal_st.done:
    raise RuntimeError(f"notebook 05 has not finished for this profile ({scal_st.name}/{scal_st.hash}); run it first")
scaling_rows = sweeps.load_points(scal_st)
all_rows = scaling_rows + rows
loop = study_report.loop_items(cfg)
comp = study_report.comparisons(all_rows, loop=loop, n_boot=b.n_resamples, seed=b.seed)
common.save_table(cfg, comp, "06_paper_comparison")
display(study_readme.claims_table(comp))

# %%
summ_all = study_report.summarize(all_rows, b.n_resamples, b.seed)
gains_all = study_report.gains(all_rows, b.n_resamples, b.seed)
trends_all = study_report.trends(all_rows, b.n_resamples, b.seed)
sw = cfg.sweeps
design = [
    f"- Toy arithmetic world; critic `{cfg.models.critic}`, generators {', '.join(g.name for g in cfg.models.generators)}.",
    f"- Data size: nested subsets {list(sweeps.data_sizes(cfg))} (1:1 correct:incorrect) of each critic mode's "
    f"validated set ({', '.join(sw.critic_modes)}); size 0 = base critic.",
    f"- Model sizes: {', '.join(sw.model_sizes) or '-'} with {sweeps.fixed_size(cfg)} examples each; rounds: {sw.rounds} "
    f"(round r's data from round r-1's first-seed critic, same solution pool).",
    f"- Ablations at {sweeps.ablation_size(cfg)} examples: {', '.join(sorted(set(r['arm'] for r in rows)))}.",
    f"- SFT seeds {list(sw.seeds)}; fixed budget {sw.sft_max_steps} steps x batch "
    f"{sw.sft_batch_size or cfg.training.per_device_train_batch_size} for every point, "
    f"lr {cfg.training.learning_rate}; evaluation on {sw.eval_items or cfg.evaluation.n_items} items per scenario "
    f"and for ProcessBench-format EI-F1, greedy; {b.n_resamples} bootstrap resamples.",
    f"- Notebook 04 (the loop, one SFT seed): {cfg.training.max_steps} steps on the full validated set, "
    f"{cfg.evaluation.n_items} items per set.",
]
readme = study_readme.write_readme(cfg, comp, summ_all, gains_all, design, trends=trends_all)
display(Markdown("\n".join(study_readme.bottom_line(comp))))

# %% [markdown]
# ## Timing
# The summary stage is finished first, so its own wall time is part of the timing report.

# %%
sweeps.save_points(summary_st, rows)
manifest = summary_st.finish(counts={"points": len(rows)}, extra={"stage_dirs": sweeps.stage_dirs(rows)})
timing = study_readme.write_timing(
    cfg, [*sweeps.stage_dirs(all_rows), str(scal_st.dir), str(summary_st.dir)])
print(f"wrote {readme.name} and {timing.name}; 06 done in {time.time() - t_start:.0f} s")

# %% tags=["interpretation"]
display(Markdown(interpret.ablations_06(comp, study_report.verdict_counts(comp))))
